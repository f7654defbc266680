"""Run every benchmark and print its tables: `python benchmarks/run_all.py [--quick] [--out FILE]`.

Each number that matters is a ratio measured in this one run (our step vs the matmul
ceiling, vs a bare tf.function step, vs the keras-io reference), because shared machines
are noisy. Writes JSON (default benchmarks/results/<device>.json).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mgm_tf  # noqa: E402,F401  (chooses the CPU kernels before TensorFlow loads, as a run does)
import tensorflow as tf  # noqa: E402
from common import device_name, matmul_probe, print_table, save  # noqa: E402

PAPER = {"epochs": 1000, "images": 5863, "batch": 16}
T4_PEAK = {"mixed_float16": 65e12, "float32": 8.1e12}


def policies(on_gpu: bool) -> list[str]:
    from mgm_tf.device import cpu_has_bf16

    if on_gpu:
        return ["float32", "mixed_float16"]
    return ["float32"] + (["mixed_bfloat16"] if cpu_has_bf16() else [])


def paper_model(steps_rows: list[dict], ceiling: dict, on_gpu: bool) -> list[dict]:
    """Hours for the paper's configuration (1,000 epochs of 5,863 images at batch 16) per
    stage, from measured step time here and, for a T4, from our fraction of this device's
    matmul rate applied to the T4's peak (a GPU measurement when this runs on a GPU)."""
    steps_per_run = PAPER["epochs"] * -(-PAPER["images"] // PAPER["batch"])
    rows = []
    for row in steps_rows:
        if row["batch"] != PAPER["batch"] or row["xla"]:
            continue
        fraction = row["ratio to matmul"]
        t4_peak = T4_PEAK["mixed_float16" if row["policy"] == "mixed_float16" else "float32"]
        t4_hours = steps_per_run * row["GFLOP/step"] * 1e9 / (fraction * t4_peak) / 3600 if on_gpu else None
        rows.append({"stage": row["stage"], "policy": row["policy"], "hours here": steps_per_run * row["ms/step"] / 3.6e6,
                     "fraction of matmul": fraction, "T4 hours (modelled)": t4_hours})
    return rows


def main(argv=None) -> int:
    from data_speed import filter_speed, input_pipeline, prepare_speed
    from train_steps import measure_stage, overhead, peer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps, sizes and configurations")
    parser.add_argument("--out", help="JSON output path")
    parser.add_argument("--sections", nargs="+",
                        default=["kernels", "steps", "overhead", "per_call", "peer", "input", "filter", "prepare"])
    args = parser.parse_args(argv)
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    steps, rounds = (3, 2) if args.quick else (4, 4)
    from mgm_tf.device import cpu_kernels

    results = {"device": device_name(), "tensorflow": tf.__version__, "quick": args.quick, "cpu_kernels": cpu_kernels()}
    print(f"device: {results['device']}; TensorFlow {tf.__version__}; CPU kernels {results['cpu_kernels']}")
    probes = {"float32": matmul_probe("float32")}
    if on_gpu:
        probes["mixed_float16"] = matmul_probe("float16")
    elif "mixed_bfloat16" in policies(on_gpu):
        probes["mixed_bfloat16"] = matmul_probe("bfloat16")
    ceiling = {policy: probe() for policy, probe in probes.items()}
    results["matmul_gflops"] = ceiling
    print_table("matmul ceiling (GFLOP/s)", [ceiling])
    if "kernels" in args.sections and not on_gpu:
        from kernels import compare

        results["cpu_kernels_ab"] = compare(steps=4 if args.quick else 6, rounds=1 if args.quick else 2)
        print_table("CPU kernels: oneDNN vs Eigen (child processes, alternating)", [results["cpu_kernels_ab"]])
    if "steps" in args.sections:
        stages = ["dcgan", "conditional"] + ([] if args.quick else ["srgan", "cyclegan"])
        rows = []
        for stage in stages:
            heavy = stage in ("srgan", "cyclegan") and not on_gpu  # CPU: paper batch only, fewer rounds
            batches = [16] if args.quick or heavy else [16, 64]
            xla = [False] if args.quick and not on_gpu else [False, True]
            configs = [(batch, policy, jit) for batch in batches for policy in policies(on_gpu) for jit in xla]
            stage_rows = measure_stage(stage, configs, steps=2 if heavy else steps, rounds=2 if heavy else rounds,
                                       ceilings=probes)
            for row in stage_rows:
                print(f"  {row}", flush=True)
            rows += stage_rows
        results["train_steps"] = rows
        print_table("train step per stage", rows)
        results["paper_model"] = paper_model(rows, ceiling, on_gpu)
        print_table("paper configuration (1,000 epochs × 5,863 images, batch 16)", results["paper_model"])
    if "overhead" in args.sections:
        results["overhead"] = overhead(16, 5 * steps, rounds)
        print_table("trainer overhead (conditional GAN, fit vs bare tf.function)", [results["overhead"]])
    if "per_call" in args.sections:
        from train_steps import steps_per_execution

        results["steps_per_execution"] = steps_per_execution(16, 32 if args.quick else 64)
        print_table("steps per compiled call (conditional GAN, whole fit calls)", [results["steps_per_execution"]])
    if "peer" in args.sections:
        results["peer"] = peer(16, steps, rounds)
        print_table("peer: our DCGAN vs keras-io-style reference, per FLOP", [results["peer"]])
    if "input" in args.sections:
        results["input_pipeline"] = input_pipeline(500 if args.quick else 3000)
        print_table("input pipeline (64×64, grey, CLAHE in prepare)", [results["input_pipeline"]])
    if "filter" in args.sections:
        results["quality_filter"] = filter_speed(2000 if args.quick else 10000)
        print_table("quality filter at 64×64", [results["quality_filter"]])
    if "prepare" in args.sections:
        results["prepare"] = prepare_speed(100 if args.quick else 600)
        print_table("prepare on full-size X-ray-like JPEGs (1,500×1,200)", [results["prepare"]])
    out = args.out or Path(__file__).resolve().parent / "results" / (("gpu" if on_gpu else "cpu") + ("_quick" if args.quick else "") + ".json")
    save(results, out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
