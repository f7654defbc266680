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


def replica_id():
    """The data-parallel replica this code runs as, inside a tf.distribute step (a tensor); None
    on one device, outside a step, and on JAX, where a step computes the global batch at once."""
    if is_jax():
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return None
    return context.replica_id_in_sync_group


def device_count() -> int:
    """Devices a training batch is split over now: the replicas of the tf.distribute strategy in
    scope, or the devices of the global `keras.distribution` on JAX (every host's); 1 without."""
    if is_jax():
        import keras

        distribution = keras.distribution.distribution()
        return int(distribution.device_mesh.devices.size) if distribution is not None else 1
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def process_share() -> tuple[int, int]:
    """(this process's index, processes): on multi-host JAX each process feeds its own rows of
    the global batch (`data.batches.IndexedBatches`); (0, 1) elsewhere."""
    if not is_jax():
        return 0, 1
    import jax

    return int(jax.process_index()), int(jax.process_count())


def on_host():
    """Where input-side `keras.ops` work runs (a batch's resizing or augmentation): the host CPU,
    so the accelerator never computes a batch only for it to be copied back to NumPy on the main
    thread. On TensorFlow the tf.data pipeline already runs on the host."""
    if is_jax():
        import jax

        return jax.default_device(jax.devices("cpu")[0])
    return contextlib.nullcontext()


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
    not only while its variables are made; on TensorFlow the strategy's scope, so the input side
    sees how many replicas a batch is split over (`device_count`)."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def data_parallel(devices: list | None = None):
    """Data parallelism over the local accelerators (or the given devices) as each backend does
    it: `keras.distribution.DataParallel` on JAX (the global batch split along its first axis,
    gradients averaged by XLA), `tf.distribute.MirroredStrategy` on TensorFlow (each replica a
    share of the batch, gradients all-reduced). With several hosts (a TPU pod slice, a
    multi-node GPU job) call `jax.distributed.initialize()` first in every process;
    DataParallel then spans every host's devices and each process feeds its own rows."""
    if is_jax():
        import keras

        return keras.distribution.DataParallel(devices=devices or keras.distribution.list_devices())
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices)


def training_devices(setting) -> list | None:
    """The devices a run's `devices` setting names: "all" → every local accelerator (on a CPU
    runtime, every CPU device the backend was started with); an integer N → the first N of
    them; 1 → None (one device, no distribution)."""
    text = str(setting).strip().lower()
    if text == "all":
        wanted = None
    elif text.isdigit() and int(text) >= 1:
        wanted = int(text)
    else:
        raise ValueError(f"devices must be 'all' or a positive number, got {setting!r}")
    if wanted == 1:
        return None
    kind = accelerator() or "CPU"
    if is_jax():
        import jax

        found = [f"{kind.lower()}:{device.id}" for device in jax.devices(kind.lower())]
    else:
        import tensorflow as tf

        found = [device.name for device in tf.config.list_logical_devices(kind)]
    if wanted is not None and wanted > len(found):
        raise ValueError(f"devices {wanted} asked for, but this runtime has {len(found)} {kind} device(s): "
                         f"{', '.join(found)}")
    chosen = found[:wanted] if wanted else found
    return chosen if len(chosen) > 1 else None


def device_count_of(strategy) -> int:
    """Devices a strategy (TensorFlow) or distribution (JAX) trains on; 1 for None."""
    if strategy is None:
        return 1
    if is_jax():
        return int(strategy.device_mesh.devices.size)
    return int(strategy.num_replicas_in_sync)


def distribution_for(setting):
    """The strategy (TensorFlow) or distribution (JAX) a run trains under, or None for one device."""
    devices = training_devices(setting)
    return data_parallel(devices) if devices else None
