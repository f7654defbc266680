"""Which Keras 3 backend trains: TensorFlow (the default) or JAX.

Keras reads `KERAS_BACKEND` once, when it is first imported, so the choice is made before that:
by the environment variable, the CLI's `--backend` flag or a notebook's backend field, each of
which calls `choose` first. JAX is how Keras 3 runs on a TPU (Colab's and Kaggle's TPU runtimes
no longer ship TensorFlow) and the backend Keras' distribution API (`keras.distribution`)
serves; TensorFlow keeps `tf.data` and `tf.distribute`. Everything a stage computes is written
once in `keras.ops`; what differs per backend — a trainer's gradient step (`gan.GANTrainer`),
the input pipeline (`data.batches`) and the device queries here — is chosen by `current()`.
A run records its backend in config.json and a stage's training state is not resumed under
the other one (`pipeline.check_backend`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

BACKENDS = ("tensorflow", "jax")
DEFAULT = "tensorflow"


def choose(name: str | None = None) -> str:
    """Make `name` (or, with None, $KERAS_BACKEND, else TensorFlow) the backend Keras loads with.
    After Keras has loaded, only the backend it loaded with can be chosen: the error says how to
    start again with the other."""
    name = (name or os.environ.get("KERAS_BACKEND") or DEFAULT).strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r} is not supported; choose one of {BACKENDS}")
    if "keras" in sys.modules:
        loaded = current()
        if loaded != name:
            raise ValueError(f"Keras was already loaded with the {loaded} backend; to train on {name}, start a new "
                             f"Python process (notebooks: Runtime → Restart session) and choose {name} before "
                             "anything imports keras, or set KERAS_BACKEND={name}")
        return name
    if importlib.util.find_spec(name) is None:
        raise ValueError(f"the {name} backend was chosen but {name} is not installed (pip install {name})")
    os.environ["KERAS_BACKEND"] = name
    return name


def current() -> str:
    import keras

    return keras.backend.backend()


def is_jax() -> bool:
    return current() == "jax"


def device_kinds() -> list[str]:
    """The kinds of device the backend trains on, accelerators first: e.g. ['GPU'] or ['TPU'];
    ['CPU'] on a CPU-only runtime."""
    if is_jax():
        import jax

        kinds = {device.platform.upper() for device in jax.devices()}
    else:
        import tensorflow as tf

        kinds = {device.device_type for device in tf.config.list_logical_devices()}
    accelerators = [kind for kind in ("TPU", "GPU") if kind in kinds]
    return accelerators or ["CPU"]


def accelerator() -> str | None:
    """'GPU' or 'TPU' when the backend sees one, else None (a CPU runtime)."""
    kind = device_kinds()[0]
    return None if kind == "CPU" else kind


def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's CUDA compute capability, or None without one."""
    if is_jax():
        import jax

        gpus = [device for device in jax.devices() if device.platform == "gpu"]
        capability = getattr(gpus[0], "compute_capability", "0.0") if gpus else None
        return tuple(int(part) for part in str(capability).split(".")[:2]) if gpus else None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0)))


def device_names() -> list[str]:
    """One line per device the backend sees ('CPU:0', 'GPU:0 NVIDIA H200', 'TPU:0 TPU v5 lite')."""
    if is_jax():
        import jax

        return [f"{device.platform.upper()}:{device.id} {getattr(device, 'device_kind', '')}".strip()
                for device in jax.devices()]
    import tensorflow as tf

    return [f"{device.device_type}:{device.name.split(':')[-1]}" for device in tf.config.list_physical_devices()]


def version_line() -> str:
    import keras

    if is_jax():
        import jax

        return f"Keras {keras.__version__} on JAX {jax.__version__}"
    import tensorflow as tf

    return f"Keras {keras.__version__} on TensorFlow {tf.__version__}"


def replicas() -> int:
    """Replicas a tf.distribute step's loss is divided over (Keras sums their gradients). On JAX
    a step sees the global batch (`keras.distribution` shards it) and computes global means: 1."""
    if is_jax():
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def strategy_scope(strategy):
    """Where a stage builds its networks and optimizers: a tf.distribute strategy's scope on
    TensorFlow (the default strategy on one device); on JAX the `keras.distribution` set
    globally (`distribution`) places the variables, and `strategy` is a distribution or None."""
    if is_jax():
        return strategy.scope() if strategy is not None else contextlib.nullcontext()
    import tensorflow as tf

    return (strategy or tf.distribute.get_strategy()).scope()


def training_scope(strategy):
    """Around a whole stage (building, fitting, sampling). On JAX a `keras.distribution` is
    global state that `fit` reads to shard each batch, so it must hold while the stage trains,
    not only while its variables are made; on TensorFlow the strategy's scope is entered where
    the networks are built (`strategy_scope`) and `fit` finds it from the model."""
    if is_jax() and strategy is not None:
        return strategy.scope()
    return contextlib.nullcontext()


def data_parallel(devices: list | None = None):
    """Data parallelism over the local accelerators (or the given devices) as each backend does
    it: `keras.distribution.DataParallel` on JAX (the global batch split along its first axis,
    gradients averaged by XLA), `tf.distribute.MirroredStrategy` on TensorFlow. With several
    hosts (a TPU pod slice, a multi-node GPU job) call `jax.distributed.initialize()` first in
    every process; DataParallel then spans every host's devices."""
    if is_jax():
        import keras

        return keras.distribution.DataParallel(devices=devices or keras.distribution.list_devices())
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices)
