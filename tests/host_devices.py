"""`python -m mgm_tf ...` on N simulated host devices (default 2), for tests of data parallelism
on a CPU-only machine: JAX's XLA host platform split into N devices, or TensorFlow's CPU split
into N logical devices, before either backend starts; then the CLI's own `main`.

    python tests/host_devices.py N ARGS...
"""

from __future__ import annotations

import os
import sys

count, arguments = int(sys.argv[1]), sys.argv[2:]
if os.environ.get("KERAS_BACKEND", "tensorflow") == "jax":
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"
else:
    import tensorflow as tf

    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * count)

from mgm_tf.__main__ import main  # noqa: E402

sys.exit(main(arguments))
