"""Does DiffAugment's colour transform let G1 drift in intensity? G1 trained on the three-class
blob fixture (whose class is the blob's volume, read from the pixels) once per policy, same
seed and steps; its samples measured against the real training images: background level,
blob volume, and the share the pixel oracle puts in each class.

    python benchmarks/augment_policy.py [--steps 1500] [--samples 600] [--policies "colour,translation,cutout" "translation,cutout"]

Writes benchmarks/results/augment_policy.{md,json}; DESIGN.md "DiffAugment without colour" quotes it.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

import mgm_tf  # noqa: F401  (CPU kernel switch before TensorFlow loads)
from common import write_results
from mgm_tf import dcgan
from mgm_tf.data import fixtures
from mgm_tf.evaluation.conditioning_study import study_config
from mgm_tf.evaluation.measure import to_eval_images
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run


def describe(images: np.ndarray, class_names) -> dict:
    """Background (median grey level), blob volume and the oracle's class shares of uint8 images."""
    grey = to_eval_images(images, 1)
    grey = grey.mean(axis=-1) if grey.ndim == 4 else grey
    oracle = fixtures.oracle_class(grey, class_names)
    return {"background": float(np.median(np.asarray(grey, np.float32), axis=(1, 2)).mean()),
            "volume": float(fixtures.blob_volume(grey).mean()),
            "class_share": {name: float((oracle == index).mean()) for index, name in enumerate(class_names)}}


def train_g1(work: Path, data_dir: Path, policy: str, steps: int, train_images: int) -> tuple[Run, float]:
    config = study_config(data_dir, train_images, steps, 1, 1)
    config.dcgan.diff_augment, config.dcgan.augment_policy = "on", policy
    config.stages = ["dcgan"]
    config.dcgan.epochs = math.ceil(steps / max(1, train_images // 16))
    run = Run.open(work / policy.replace(",", "_"), config)
    start = time.perf_counter()
    run_pipeline(run, ["dcgan"])
    return run, time.perf_counter() - start


def fixture_parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """Options of a G1 study on the blob fixture: steps, images per class, samples, work folder."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--out", type=Path, default=None)
    return parser


def blob_fixture(args, prefix: str):
    """(work folder, class names, the three-class blob folder, training images) for a G1 study."""
    work = args.out or Path(tempfile.mkdtemp(prefix=prefix))
    names = fixtures.THREE_CLASS_NAMES
    data_dir = fixtures.write_blob_folder(work / "blobs", names, args.per_class)
    return work, names, data_dir, round(0.8 * args.per_class) * len(names)


def main() -> None:
    parser = fixture_parser(__doc__, steps=1500)
    parser.add_argument("--policies", nargs="+", default=["colour,translation,cutout", "translation,cutout"])
    args = parser.parse_args()
    work, names, data_dir, train_images = blob_fixture(args, "augment_policy_")
    result = {"steps": args.steps, "samples": args.samples, "policies": {}}
    for policy in args.policies:
        run, seconds = train_g1(work, data_dir, policy, args.steps, train_images)
        prepared = run.prepared()
        result.setdefault("real", describe(prepared.images_gan[prepared.indices("train")], names))
        result["policies"][policy] = {**describe(g1_samples(run, len(names), args.samples), names), "seconds": seconds}
    write_results("augment_policy", markdown(result, names), result)


def g1_samples(run, num_classes: int, count: int) -> np.ndarray:
    """`count` samples of the run's trained G1, from seeds 0 … count − 1."""
    generator = dcgan.load_dcgan_generator(run, num_classes)
    return dcgan.unconditional_samples(generator, np.arange(count, dtype=np.uint64), run.config.dcgan.latent_dim)


def markdown(result: dict, names) -> str:
    header = " | ".join(f"oracle: {name}" for name in names)
    lines = [f"G1 on the three-class blob fixture, {result['steps']} steps, {result['samples']} samples per policy.", "",
             f"| images | background | blob volume | {header} |", "|---" * (3 + len(names)) + "|"]
    rows = [("real training images", result["real"])] + [(f"G1, DiffAugment {policy}", entry)
                                                          for policy, entry in result["policies"].items()]
    for label, entry in rows:
        shares = " | ".join(f"{100 * entry['class_share'][name]:.0f} %" for name in names)
        lines.append(f"| {label} | {entry['background']:.1f} | {entry['volume']:.2f} | {shares} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
