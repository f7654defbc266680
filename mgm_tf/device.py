"""Choose the numeric policy for the hardware found: the fastest choice that stays correct.

Measured (see benchmarks/README.md): on a T4/H100 `mixed_float16` with loss scaling; on CPUs
with AVX512-BF16/AMX `mixed_bfloat16` (~1.5× faster than float32 for the conditional GAN,
training stays finite); float32 elsewhere. `mixed_float16` on a CPU is ~6× slower and is never
chosen there. Outputs and losses stay float32 (the builders give output layers dtype float32).

XLA (`jit_compile`, `resolve_jit`): off on CPUs, where with oneDNN kernels it made the
conditional GAN step 1.5× slower on a 2-core CPU (385 vs 259 ms); on accelerators Keras'
`jit_compile="auto"` decides, except for stages known not to compile (`resolve_jit`).
`steps_per_execution` (`resolve_steps_per_execution`): 1 on CPUs, where a step is long; several
steps per call on accelerators, where one conditional G/D step at batch 16 took 1.1–1.5 ms on an
H200 (Keras 3 on JAX) and Python's per-step dispatch would otherwise dominate.
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


# oneDNN instruction-set limits (ONEDNN_MAX_CPU_ISA) below AVX512_CORE_BF16: with one of them,
# oneDNN has no bfloat16 matmul even on a CPU that has one, and TensorFlow aborts the process
# ("could not create a primitive descriptor for the matmul primitive").
ONEDNN_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                                      "AVX512_CORE_VNNI"})


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16, and oneDNN allowed to use them: bfloat16 matmuls run natively
    instead of being emulated."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags()) and limit not in ONEDNN_ISAS_WITHOUT_BF16


def gpu_compute_capability() -> tuple[int, int] | None:
    from mgm_tf import backend

    return backend.gpu_compute_capability()


def select_policy(requested: str = "auto") -> str:
    """'auto' → mixed_bfloat16 on TPUs (their matrix units compute in bfloat16), mixed_float16
    on GPUs with tensor cores (compute capability ≥ 7.0), mixed_bfloat16 on bf16-capable CPUs,
    else float32. Explicit names pass through. The accelerator decides before the host's CPU
    flags: a TPU host's CPU may lack bf16."""
    if requested not in POLICIES:
        raise ValueError(f"precision {requested!r} unknown; choose one of {POLICIES}")
    if requested != "auto":
        return requested
    if accelerator() == "TPU":
        return "mixed_bfloat16"
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
    oneDNN on x86 before TensorFlow loads; see mgm_tf/__init__.py); 'XLA' on JAX, which compiles
    every step for the CPU itself. Recorded with each stage."""
    from mgm_tf import backend

    if backend.is_jax():
        return "XLA"
    try:
        from tensorflow.python.util import _pywrap_util_port

        return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"
    except (ImportError, AttributeError):  # a TensorFlow build without the query
        return "oneDNN" if os.environ.get(ONEDNN_SWITCH) == "1" else "unknown"


def describe_device() -> str:
    import keras

    from mgm_tf import backend

    devices = ", ".join(backend.device_names()) or "none"
    return (f"{backend.version_line()}, {platform.machine()}\n"
            f"devices: {devices}; CPU kernels: {cpu_kernels()}; CPU bf16: {cpu_has_bf16()}; policy in use: {keras.mixed_precision.global_policy().name}; "
            f"'auto' would pick: {select_policy('auto')}")


def accelerator() -> str | None:
    """'GPU' or 'TPU' when the backend sees one, else None (a CPU runtime)."""
    from mgm_tf import backend

    return backend.accelerator()


def resolve_jit(setting, compiles: bool = True):
    """The `jit_compile` a stage's trainer is compiled with. "auto": False on CPUs (measured
    slower); on accelerators Keras' own "auto" unless the stage is known not to compile
    (`compiles=False`: the SRGAN's bicubic upsampling and DiffAugment's image transform have no
    XLA kernels; `tests/test_training.py` compiles each trainer with XLA to keep this true).
    On JAX "auto" is always XLA: JAX has a kernel for every op here, and without `jit` each op
    of a step would be dispatched from Python one by one."""
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"jit_compile must be true, false or 'auto', got {setting!r}")
    from mgm_tf import backend

    if backend.is_jax():
        return True
    return "auto" if compiles and accelerator() is not None else False


def resolve_steps_per_execution(setting, batches_per_epoch: int | None) -> int:
    """Train steps per call of the compiled function. "auto": 1 on CPUs; on accelerators up to
    32, and never more than an epoch's batches, so per-epoch callbacks (history, backups, sample
    grids, KID) still see every epoch; batch-level ones (the NaN guard) see every 32nd step."""
    if isinstance(setting, int) and not isinstance(setting, bool):
        if setting < 1:
            raise ValueError(f"steps_per_execution must be at least 1, got {setting}")
        return setting
    if setting != "auto":
        raise ValueError(f"steps_per_execution must be a positive integer or 'auto', got {setting!r}")
    if accelerator() is None:
        return 1
    return max(1, min(32, batches_per_epoch or 32))


def _gpu_memory() -> list[str]:
    """'NAME, TOTAL MiB' per GPU from nvidia-smi (TensorFlow reports a GPU's name, not its memory)."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return []
    try:
        output = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in output.splitlines() if line.strip()]


def describe_hardware(path=".") -> str:
    """The runtime a run trains on: accelerators (a GPU's name and memory), CPU cores and flags
    that matter here, memory, and the free disk where the run lives."""
    import shutil
    from pathlib import Path

    from mgm_tf import backend

    names = backend.device_names()
    gpus = _gpu_memory() or [name for name in names if name.startswith("GPU")]
    tpus = [name for name in names if name.startswith("TPU")]
    accelerators = "; ".join(gpus) or (f"{len(tpus)} TPU core(s)" if tpus else "none (CPU only)")
    flags = ", ".join(flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in cpu_flags()) or "—"
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            memory = f"; memory {int(handle.readline().split()[1]) / 2 ** 20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    where = Path(path).resolve()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free / 2 ** 30
    return (f"accelerator: {accelerators}\nCPU: {len(os.sched_getaffinity(0))} core(s) ({flags}){memory}; "
            f"free disk at {where}: {free:.0f} GiB")
