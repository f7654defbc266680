"""Choose the numeric policy for the hardware found: the fastest choice that stays correct.

Measured (see benchmarks/README.md): on a T4/H100 `mixed_float16` with loss scaling; on CPUs
with AVX512-BF16/AMX `mixed_bfloat16` (~1.5× faster than float32 for the conditional GAN,
training stays finite); float32 elsewhere. `mixed_float16` on a CPU is ~6× slower and is never
chosen there. Outputs and losses stay float32 (the builders give output layers dtype float32).

XLA (`jit_compile`) stays off unless asked for (`--jit-compile`): with oneDNN kernels it made the
conditional GAN step 1.5× slower on a 2-core CPU (385 vs 259 ms) and cannot compile the SRGAN's
bicubic upsampling there; Keras' jit_compile="auto" would turn it on silently on a GPU. The
benchmarks measure it per device.
"""

from __future__ import annotations

import functools
import os
import platform

from mgm_tf import ONEDNN_SWITCH

POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16: bfloat16 matmuls run natively instead of being emulated."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def gpu_compute_capability() -> tuple[int, int] | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return tuple(details.get("compute_capability", (0, 0)))


def select_policy(requested: str = "auto") -> str:
    """'auto' → mixed_float16 on GPUs with tensor cores (compute capability ≥ 7.0),
    mixed_bfloat16 on bf16-capable CPUs, else float32. Explicit names pass through."""
    if requested not in POLICIES:
        raise ValueError(f"precision {requested!r} unknown; choose one of {POLICIES}")
    if requested != "auto":
        return requested
    capability = gpu_compute_capability()
    if capability is not None:
        return "mixed_float16" if capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def apply_policy(requested: str = "auto") -> str:
    """Set Keras' global dtype policy (before models are built) and return its name."""
    import keras

    name = select_policy(requested)
    keras.mixed_precision.set_global_policy(name)
    return name


def cpu_kernels() -> str:
    """'oneDNN' or 'Eigen': the CPU kernels TensorFlow loaded with (`import mgm_tf` asks for
    oneDNN on x86 before TensorFlow loads; see mgm_tf/__init__.py). Recorded with each stage."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"
    except (ImportError, AttributeError):  # a TensorFlow build without the query
        return "oneDNN" if os.environ.get(ONEDNN_SWITCH) == "1" else "unknown"


def describe_device() -> str:
    import keras
    import tensorflow as tf

    devices = ", ".join(f"{d.device_type}:{d.name.split(':')[-1]}" for d in tf.config.list_physical_devices()) or "none"
    return (f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.machine()}\n"
            f"devices: {devices}; CPU kernels: {cpu_kernels()}; CPU bf16: {cpu_has_bf16()}; policy in use: {keras.mixed_precision.global_policy().name}; "
            f"'auto' would pick: {select_policy('auto')}")
