"""Simultaneous or alternating G/D updates? G1 trained on the three-class blob fixture (whose
class is the blob's volume, read from the pixels) once per update order and seed, same steps;
its samples measured against the real training images: background level, blob volume, the
share the pixel oracle puts in each class and how far those shares are from the real ones
(total variation), and the seconds per step.

simultaneous: G and D updated from one forward pass (G's gradient through the D of before the
step, on the same z); alternating: D's update, then G's from a second forward pass through the
updated D with fresh noise (keras-io's DCGAN) — a third more network passes per step.

    python benchmarks/update_order.py [--steps 1200] [--seeds 0 1] [--samples 600]

Writes benchmarks/results/update_order.{md,json}; DESIGN.md "Update order" quotes it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import mgm_tf  # noqa: F401  (CPU kernel switch before TensorFlow loads)
from augment_policy import blob_fixture, describe, fixture_parser, g1_samples
from common import write_results
from mgm_tf.evaluation.conditioning_study import study_config
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run

ORDERS = ("simultaneous", "alternating")


def train_g1(work: Path, data_dir: Path, order: str, seed: int, steps: int, train_images: int) -> tuple[Run, float]:
    config = study_config(data_dir, train_images, steps, 1, 1)
    config.seed, config.dcgan.update_order, config.stages = seed, order, ["dcgan"]
    config.dcgan.epochs = math.ceil(steps / max(1, train_images // config.dcgan.batch_size))
    run = Run.open(work / f"{order}_{seed}", config)
    start = time.perf_counter()
    run_pipeline(run, ["dcgan"])
    return run, time.perf_counter() - start


def total_variation(shares: dict, real: dict) -> float:
    return 0.5 * sum(abs(shares[name] - real[name]) for name in real)


def main() -> None:
    parser = fixture_parser(__doc__, steps=1200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    work, names, data_dir, train_images = blob_fixture(args, "update_order_")
    result = {"steps": args.steps, "samples": args.samples, "runs": []}
    for seed in args.seeds:
        for order in ORDERS:
            run, seconds = train_g1(work, data_dir, order, seed, args.steps, train_images)
            prepared = run.prepared()
            result.setdefault("real", describe(prepared.images_gan[prepared.indices("train")], names))
            entry = {**describe(g1_samples(run, len(names), args.samples), names), "order": order, "seed": seed,
                     "seconds_per_step": seconds / (run.config.dcgan.epochs * (train_images // run.config.dcgan.batch_size))}
            entry["total_variation"] = total_variation(entry["class_share"], result["real"]["class_share"])
            result["runs"].append(entry)
    write_results("update_order", markdown(result, names), result)


def markdown(result: dict, names) -> str:
    header = " | ".join(f"oracle: {name}" for name in names)
    lines = [f"G1 on the three-class blob fixture, {result['steps']} steps, {result['samples']} samples per run.", "",
             f"| images | seed | background | blob volume | {header} | TV to real | s/step |", "|---" * (6 + len(names)) + "|"]
    real = result["real"]
    shares = " | ".join(f"{100 * real['class_share'][name]:.0f} %" for name in names)
    lines.append(f"| real training images | | {real['background']:.1f} | {real['volume']:.2f} | {shares} | | |")
    for entry in result["runs"]:
        shares = " | ".join(f"{100 * entry['class_share'][name]:.0f} %" for name in names)
        lines.append(f"| G1, {entry['order']} | {entry['seed']} | {entry['background']:.1f} | {entry['volume']:.2f} | "
                     f"{shares} | {entry['total_variation']:.2f} | {entry['seconds_per_step']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
