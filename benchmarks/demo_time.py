"""The README's main command, timed per stage next to this machine's matmul rate.

    python benchmarks/demo_time.py                        # as the machine is
    python benchmarks/demo_time.py --cpu-isa AVX2         # oneDNN limited to AVX2 (an AVX2-only CPU's kernels)
    python benchmarks/demo_time.py --cpu-isa AVX2 --cores 1

A stage's seconds alone say little across machines; next to the float32 matmul rate measured
in the same run (before and after the pipeline, so a noisy neighbour shows) they can be
compared: `stage seconds × matmul GFLOP/s` is roughly constant for a stage that is
compute-bound, and the table also gives each stage's time scaled to a 71 GFLOP/s machine (the
2-core AVX2 CPU whose 17-minute demo started this measurement). `--cpu-isa` and `--cores` are
applied before TensorFlow loads (ONEDNN_MAX_CPU_ISA, the process's CPU affinity), so an AVX512
machine can measure what an AVX2-only one would do. Before training it makes the estimate the
notebooks' resources cell prints (`timing.estimate`) and prints it next to each stage's wall time.
Writes benchmarks/results/demo_time.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE_GFLOPS = 71.0  # the AVX2-only 2-core machine of the first report (float32 matmul, oneDNN)


def measure(out_dir: Path) -> dict:
    sys.path.insert(0, str(HERE))
    import mgm_tf  # noqa: F401  (CPU kernels chosen before TensorFlow loads, as the CLI does)
    from mgm_tf.colab import quiet_tensorflow

    quiet_tensorflow()
    from common import device_name, matmul_ceiling

    from mgm_tf import config
    from mgm_tf.pipeline import run_pipeline
    from mgm_tf.run import Run

    from mgm_tf import timing

    before = matmul_ceiling()
    run = Run.open(out_dir, config.demo())
    estimate_start = time.perf_counter()
    rows = timing.estimate(run, run.prepared())
    estimate_seconds = time.perf_counter() - estimate_start
    start = time.perf_counter()
    timings = run_pipeline(run)
    wall = time.perf_counter() - start
    after = matmul_ceiling()
    check = json.loads((out_dir / "report" / "export_check.json").read_text(encoding="utf-8"))
    return {"device": device_name(), "cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
            "cores": len(os.sched_getaffinity(0)), "matmul_gflops": [round(before, 1), round(after, 1)],
            "stages": {stage: round(seconds, 1) for stage, seconds in timings.items()},
            "total_seconds": round(sum(timings.values()), 1), "wall_seconds": round(wall, 1),
            "estimate": {"seconds_to_estimate": round(estimate_seconds, 1),
                         "stages": [{key: (round(value, 2) if isinstance(value, float) else value) for key, value in row.items()}
                                    for row in timing.against_measured(rows, timings)]},
            "export": {"pairwise_ssim": check["diversity"]["pairwise_ssim"],
                       "real_pairwise_ssim": check["real_diversity"]["pairwise_ssim"],
                       "pixel_diversity": check["diversity"]["pixel_diversity"],
                       "real_pixel_diversity": check["real_diversity"]["pixel_diversity"],
                       "recall": check["pixels"]["recall"]["mean"], "precision": check["pixels"]["precision"]["mean"]}}


def table(result: dict) -> str:
    rate = sum(result["matmul_gflops"]) / 2
    lines = [f"device: {result['device']}; oneDNN ISA: {result['cpu_isa']}; cores: {result['cores']}; "
             f"float32 matmul {result['matmul_gflops'][0]} GFLOP/s before, {result['matmul_gflops'][1]} after",
             "", "| stage | seconds | at 71 GFLOP/s (scaled) |", "|---|---|---|"]
    for stage, seconds in result["stages"].items():
        lines.append(f"| {stage} | {seconds:.1f} | {seconds * rate / REFERENCE_GFLOPS:.0f} |")
    total = result["total_seconds"]
    lines.append(f"| **all stages** | **{total:.1f}** | **{total * rate / REFERENCE_GFLOPS:.0f}** |")
    if result.get("estimate"):
        lines += ["", f"the notebooks' estimate (`timing.estimate`, {result['estimate']['seconds_to_estimate']:.0f} s to make) "
                      "against the stages' wall time:", "", "| stage | predicted s | measured s | measured / predicted |",
                  "|---|---|---|---|"]
        lines += [f"| {row['stage']} | {row['predicted']:.1f} | {row['measured']:.1f} | {row['ratio']:.2f} |"
                  for row in result["estimate"]["stages"]]
    export = result["export"]
    lines += ["", f"export: pairwise SSIM {export['pairwise_ssim']:.2f} (real {export['real_pairwise_ssim']:.2f}, "
                  f"target ≤ {export['real_pairwise_ssim'] + 0.2:.2f}); pixel diversity {export['pixel_diversity']:.2f} "
                  f"(real {export['real_pixel_diversity']:.2f}, target ≥ {export['real_pixel_diversity'] / 2:.2f}); "
                  f"recall {export['recall']:.2f} (target > 0); precision {export['precision']:.2f}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-isa", help="limit oneDNN's instruction set, e.g. AVX2 (ONEDNN_MAX_CPU_ISA)")
    parser.add_argument("--cores", type=int, help="run on this many CPU cores (affinity)")
    parser.add_argument("--out", default=str(HERE / "results" / "demo_time.json"))
    args = parser.parse_args(argv)
    if "tensorflow" in sys.modules:
        raise ValueError("run this script in a fresh process: the CPU settings apply before TensorFlow loads")
    if args.cpu_isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.cpu_isa
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    with tempfile.TemporaryDirectory() as work:
        result = measure(Path(work) / "demo")
    print(table(result))
    results = json.loads(Path(args.out).read_text(encoding="utf-8")) if Path(args.out).exists() else []
    results.append({"date": time.strftime("%Y-%m-%d"), **result})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
