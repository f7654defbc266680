"""Shared helpers: timing, the matmul ceiling, table printing. Ratios are measured in one run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf


def timed(function, repeats: int, warmup: int = 2) -> float:
    """Median seconds per call after warm-up calls (tracing, autotuning)."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def matmul_probe(dtype: str = "float32", size: int | None = None):
    """A function returning the achieved GFLOP/s of a large square matmul right now (median of
    3): the practical ceiling of this device, re-measured next to each timed configuration."""
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    size = size or (8192 if on_gpu else 2048)
    a = tf.cast(tf.random.normal((size, size), dtype=tf.float32), dtype)
    step = tf.function(lambda x: tf.reduce_sum(tf.matmul(x, x)))
    step(a).numpy()
    return lambda: 2 * size ** 3 / timed(lambda: step(a).numpy(), 3, warmup=1) / 1e9


def matmul_ceiling(dtype: str = "float32", size: int | None = None, repeats: int = 5) -> float:
    """Achieved GFLOP/s of a large square matmul: the practical ceiling of this device."""
    probe = matmul_probe(dtype, size)
    return float(np.median([probe() for _ in range(max(1, repeats // 3))]))


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    import platform

    model = "CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{model} ({os.cpu_count()} cores, {platform.machine()})"


def print_table(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    print(f"\n{title}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def save(results: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


def write_results(stem: str, text: str, result: dict) -> None:
    """Print a benchmark's table and keep it, with its numbers, as results/STEM.{md,json}."""
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    (results / f"{stem}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
