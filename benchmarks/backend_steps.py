"""Train-step time of every stage on this device and backend, and the two backends compared.

Needs only Keras, NumPy and the backend (no TensorFlow on JAX, no OpenCV, no matplotlib for the
step grid), so it runs on a GPU or TPU machine that has Keras on JAX and nothing else:

    KERAS_BACKEND=jax python benchmarks/backend_steps.py --grid --demo --out results/gpu_<device>.json

prints, per stage, seconds per step at batch 16/64/128 in float32, bfloat16 and float16 with 1
and 32 steps per compiled call, then (with --demo) the demo pipeline's stage times on this
device, with the device named. On a CPU:

    python benchmarks/backend_steps.py --compare

runs every stage at the paper's batch 16 in float32 on TensorFlow and on JAX, each in its own
process, and prints JAX's time over TensorFlow's per stage (measured in one run; what decides
`mgm_tf.backend`'s default per device kind, DESIGN.md "Backends").

Each step time is `mgm_tf.timing.seconds_per_step`: one fit of 1 + N calls on one
in-memory batch, a clock at the end of every call, the median call after the first (which compiles).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("dcgan", "conditional", "srgan", "cyclegan", "judge")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def stage_setup(stage: str, batch: int):
    """(trainer, one batch) of a stage at the paper's network sizes; uint8 images as the input
    pipelines give them (the SRGAN's float (LR, HR) pairs: its pipeline resamples)."""
    import keras
    import numpy as np

    from mgm_tf import classifier, dcgan, refinement, srgan
    from mgm_tf.baselines import cyclegan
    from mgm_tf.device import resolve_jit

    jit = resolve_jit("auto", compiles=stage != "srgan")  # as the pipeline compiles each stage here
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, 64, 64, 1), dtype=np.uint8)
    labels = (np.arange(batch) % 2).astype(np.int32)
    if stage == "dcgan":
        trainer, data = dcgan.DCGANTrainer(dcgan.build_dcgan_generator(), dcgan.build_dcgan_discriminator()), images
    elif stage == "conditional":
        trainer = refinement.ConditionalRefinementTrainer(refinement.build_conditional_generator(num_classes=2),
                                                          refinement.build_conditional_discriminator(num_classes=2))
        data = (images, labels)
    elif stage == "srgan":
        high = rng.uniform(-1, 1, (batch, 96, 96, 3)).astype(np.float32)
        trainer = srgan.SRGANTrainer(srgan.build_srgan_generator(input_size=24), srgan.build_srgan_discriminator(input_size=96),
                                     srgan.build_vgg_extractor(None, "block2_conv2", input_size=96))
        data = (high[:, ::4, ::4], high)
    elif stage == "cyclegan":
        trainer, data = cyclegan.CycleGANTrainer(*cyclegan.build_cyclegan()), (images, images[::-1])
    else:
        trainer = classifier.build_classifier(2)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", jit_compile=jit)
        return trainer, (rng.uniform(0, 1, (batch, 64, 64, 3)).astype(np.float32), labels)
    trainer.compile(jit_compile=jit)
    return trainer, data


def device_name() -> str:
    from mgm_tf import backend

    names = backend.device_names()
    accelerators = [name for name in names if not name.startswith("CPU")]
    if accelerators:
        return f"{len(accelerators)} × {accelerators[0]}"
    model = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            present = next(line for line in handle if line.startswith("flags")).split()
        flags = ", " + "/".join(flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in present)
    except (OSError, StopIteration):
        pass
    return f"{model} ({len(os.sched_getaffinity(0))} cores{flags})"


def matmul_rate(size: int = 2048) -> float:
    """GFLOP/s of a float32 size×size matmul on this backend (median of 5 after one warm-up): the
    device's practical ceiling, printed next to the step times it explains."""
    import numpy as np
    from keras import ops

    matrix = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((size, size)).astype("float32"))
    samples = []
    for _ in range(6):
        start = time.perf_counter()
        ops.convert_to_numpy(ops.sum(ops.matmul(matrix, matrix)))
        samples.append(time.perf_counter() - start)
    return round(2 * size ** 3 / float(np.median(samples[1:])) / 1e9, 1)


def measure(stages, batches, policies, steps_per_call, steps: int) -> list[dict]:
    import keras

    from mgm_tf import timing

    rows = []
    for policy in policies:
        for stage in stages:
            for batch in batches:
                keras.mixed_precision.set_global_policy(POLICIES[policy])
                try:
                    trainer, data = stage_setup(stage, batch)
                    for per_call in steps_per_call:
                        seconds, first = timing.seconds_per_step(trainer, data, steps, per_call)
                        row = {"stage": stage, "batch": batch, "precision": policy, "steps_per_call": per_call,
                               "ms_per_step": round(1000 * seconds, 3), "first_call_s": round(first, 2)}
                        print(json.dumps(row), flush=True)
                        rows.append(row)
                except Exception as error:  # a policy the device lacks (bf16 on an old CPU) is a row, not a stop
                    print(json.dumps({"stage": stage, "batch": batch, "precision": policy,
                                      "error": f"{type(error).__name__}: {str(error)[:200]}"}), flush=True)
                finally:
                    keras.mixed_precision.set_global_policy("float32")
    return rows


def demo_run(out: Path) -> dict:
    """The demo pipeline (`python -m mgm_tf run --dataset demo`) on this device and backend:
    each stage's wall seconds, from its stages/<stage>.json."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mgm_tf", "run", "--dataset", "demo", "--out", str(out)],
                            capture_output=True, text=True)
    if result.returncode:
        return {"error": result.stderr[-1500:]}
    stages = {path.stem: round(json.loads(path.read_text())["wall_seconds"], 1) for path in (out / "stages").glob("*.json")}
    return {"stages": stages, "total_s": round(time.perf_counter() - start, 1)}


def compare(stages, steps: int) -> dict:
    """Each stage at batch 16, float32, one step per call, on TensorFlow and on JAX (own processes)."""
    results = {}
    for name in ("tensorflow", "jax"):
        command = [sys.executable, __file__, "--stages", *stages, "--batches", "16", "--precisions", "float32",
                   "--steps-per-call", "1", "--steps", str(steps)]
        output = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": name})
        rows = [json.loads(line) for line in output.stdout.splitlines() if line.startswith("{")]
        results[name] = {row["stage"]: row for row in rows if "stage" in row}
        results[name]["matmul_gflops"] = next((row["matmul_gflops"] for row in rows if "matmul_gflops" in row), None)
        if output.returncode:
            print(output.stderr[-2000:])
    print(f"\n{device_name()}: ms per train step, batch 16, float32 (first call: compilation); float32 matmul "
          f"{results['tensorflow']['matmul_gflops']} GFLOP/s on TensorFlow, {results['jax']['matmul_gflops']} on JAX")
    print("| stage | TensorFlow | JAX | JAX / TensorFlow | first call TF / JAX (s) |\n|---|---|---|---|---|")
    for stage in stages:
        ours, theirs = results["tensorflow"].get(stage, {}), results["jax"].get(stage, {})
        if "ms_per_step" in ours and "ms_per_step" in theirs:
            print(f"| {stage} | {ours['ms_per_step']:.1f} | {theirs['ms_per_step']:.1f} | "
                  f"{theirs['ms_per_step'] / ours['ms_per_step']:.2f} | {ours['first_call_s']} / {theirs['first_call_s']} |")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", action="store_true", help="TensorFlow vs JAX on this device (own processes)")
    parser.add_argument("--grid", action="store_true", help="batch 16/64/128 × float32/bfloat16/float16 × 1/32 per call")
    parser.add_argument("--demo", action="store_true", help="also time the demo pipeline on this device")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--batches", nargs="+", type=int, default=[16])
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=list(POLICIES))
    parser.add_argument("--steps-per-call", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--out", help="write the rows (and the device) to this JSON file")
    args = parser.parse_args()
    if args.compare:
        results = compare(args.stages, args.steps)
        if args.out:
            Path(args.out).write_text(json.dumps({"device": device_name(), "backends": results}, indent=1))
        return
    if args.grid:
        args.batches, args.precisions, args.steps_per_call = [16, 64, 128], list(POLICIES), [1, 32]
    from mgm_tf import backend

    rate = matmul_rate()
    print(f"{device_name()} — {backend.version_line()}", flush=True)
    print(json.dumps({"matmul_gflops": rate}), flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "device": device_name(), "backend": backend.version_line(),
              "matmul_gflops": rate,
              "rows": measure(args.stages, args.batches, args.precisions, args.steps_per_call, args.steps)}
    if args.demo:
        with tempfile.TemporaryDirectory() as folder:
            report["demo"] = demo_run(Path(folder) / "demo")
        print(json.dumps({"demo": report["demo"]}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
