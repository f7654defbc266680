"""Does each stage earn its place? On a development set with real anatomy (the MNI152 brain
slices of `brain_slices.py`, or any folder dataset), the judge, G1, the SRGAN and the cGAN
baseline are trained once; each refiner variant then trains its G2 and synthesises, filters and
exports in its own run directory, and the same candidates are measured after every stage
(`mgm_tf.evaluation.stage_value`: KID, a 1-NN two-sample test, P/R, density/coverage, label
agreement, class shares, memorised share; a verdict per stage; the filter against a random
selection; the export against DCGAN alone and the cGAN baseline).

    python benchmarks/brain_slices.py --out DATA
    python benchmarks/stage_value.py --data-dir DATA [--refiners residual paper] [--dcgan-steps 2000]
                                     [--cgan-steps 800] [--candidates 100] [--out DIR]

Prints one table per variant and writes them, with the raw numbers, to
benchmarks/results/stage_value[_TAG].{md,json}, and each variant's real-vs-stages figure beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import mgm_tf  # noqa: F401  (CPU kernel switch before TensorFlow loads)
from mgm_tf import config as config_module
from mgm_tf.dcgan import LABEL_CONDITIONINGS
from mgm_tf.evaluation.conditioning_study import _variant_run
from mgm_tf.evaluation.stage_value import comparison_sets, stage_figure, stage_value, stage_value_lines
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run
from mgm_tf.synthesis import CONDITIONINGS

RESULTS = Path(__file__).parent / "results"


def development_config(data_dir: Path, dcgan_steps: int, cgan_steps: int, candidates: int,
                       g1_average: float = 0.0, tie: tuple[float, int, str] = (10.0, 1, "l2"),
                       spectral_norm: bool = False, r1: float = 0.0, augment_target: float = 0.0,
                       discriminator_learning_rate: float | None = None,
                       conditioning: str = config_module.SynthesisConfig.conditioning,
                       label_conditioning: str = config_module.DCGANConfig.label_conditioning) -> config_module.RunConfig:
    """The paper's networks at batch 16, sized in optimiser steps at learning rate 2e-4 (the demo's),
    a demo-sized SRGAN and a 30-epoch judge."""
    config = config_module.RunConfig(dataset="folder", data_dir=str(data_dir), precision="float32", tensorboard=False)
    train_images = sum(1 for path in (data_dir / "train").rglob("*.png"))
    steps_per_epoch = max(1, train_images // 16)
    config.dcgan = config_module.DCGANConfig(epochs=math.ceil(dcgan_steps / steps_per_epoch), learning_rate=2e-4,
                                             mode_seeking=1.0, sample_every=20, kid_every=0,
                                             generator_average=g1_average, spectral_norm=spectral_norm,
                                             r1=r1, augment_target=augment_target,
                                             discriminator_learning_rate=discriminator_learning_rate,
                                             label_conditioning=label_conditioning)
    config.cgan = config_module.CGANConfig(epochs=math.ceil(cgan_steps / steps_per_epoch), learning_rate=2e-4,
                                           sample_every=10, kid_every=0, self_regularisation=tie[0],
                                           self_regularisation_pool=tie[1], self_regularisation_norm=tie[2])
    config.synthesis = config_module.SynthesisConfig(conditioning=conditioning)
    config.filter = config_module.FilterConfig(candidates_per_class=candidates)
    config.srgan = config_module.demo().srgan
    config.evaluation = config_module.EvaluationConfig(extractor_epochs=30)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--refiners", nargs="+", default=["residual", "paper"], choices=["residual", "paper"])
    parser.add_argument("--dcgan-steps", type=int, default=2000)
    parser.add_argument("--cgan-steps", type=int, default=800)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--filters", nargs="+", default=["paper", "realism"], choices=["paper", "realism", "paper+realism", "inside"],
                        help="filter scores; the first is each refiner's own run, the others reuse its candidates")
    parser.add_argument("--g1-average", type=float, default=0.0, help="EMA decay of G1's weights (0: none)")
    parser.add_argument("--r1", type=float, default=0.0, help="R1 penalty weight on D1 (0: none)")
    parser.add_argument("--spectral-norm", action="store_true", help="spectrally normalised D1 (SN-GAN)")
    parser.add_argument("--ada-target", type=float, default=0.0,
                        help="G1's adaptive augmentation target for E[sign D(real)] (ADA; 0: DiffAugment always)")
    parser.add_argument("--discriminator-lr", type=float, default=None,
                        help="D1's learning rate (TTUR; default: G1's, 2e-4)")
    parser.add_argument("--conditioning", default=config_module.SynthesisConfig.conditioning, choices=CONDITIONINGS,
                        help="how c is drawn; conditional_g1 trains a class-conditional G1 (a deviation from §3.2)")
    parser.add_argument("--label-conditioning", default=config_module.DCGANConfig.label_conditioning, choices=LABEL_CONDITIONINGS,
                        help="how a label-conditioned D1 (conditional G1, the cGAN baseline) reads the label")
    parser.add_argument("--self-regularisation", type=float, default=10.0, help="residual refiner's tie weight")
    parser.add_argument("--self-regularisation-pool", type=int, default=1, help="its box size (1: every pixel)")
    parser.add_argument("--self-regularisation-norm", default="l2", choices=["l1", "l2"], help="its distance")
    parser.add_argument("--tag", default="", help="suffix of the results' file names (stage_value_<tag>.md)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the cGAN baseline")
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="stage_value_"))
    stem = "stage_value" + (f"_{args.tag}" if args.tag else "")
    config = development_config(args.data_dir, args.dcgan_steps, args.cgan_steps, args.candidates, args.g1_average,
                                (args.self_regularisation, args.self_regularisation_pool, args.self_regularisation_norm), args.spectral_norm, args.r1,
                                args.ada_target, args.discriminator_lr, args.conditioning,
                                args.label_conditioning)
    shared = Run.open(work / "shared", config)
    started = time.perf_counter()
    timings = run_pipeline(shared, ["judge", "dcgan", "srgan"] + ([] if args.no_baseline else ["baseline_cgan"]))
    prepared = shared.prepared()
    result = {"settings": vars(args) | {"data_dir": str(args.data_dir), "out": str(work)}, "shared_seconds": timings,
              "variants": {}}
    lines = []
    for refiner in args.refiners:
        variant = config_module.RunConfig.from_dict(shared.config.to_dict())
        variant.cgan.refiner, variant.filter.score = refiner, args.filters[0]
        copies = {stage: shared for stage in ("data", "judge", "dcgan", "srgan", "baseline_cgan")
                  if stage == "data" or shared.is_done(stage)}
        run = _variant_run(work / refiner, variant, copies)
        seconds = run_pipeline(run, ["cgan", "synthesize", "filter", "export"])
        for score in args.filters:
            if score != args.filters[0]:
                run = filter_variant(run, work / f"{refiner}_{score.replace('+', '_')}", score)
                seconds = {**seconds, **run_pipeline(run, ["filter", "export"])}
            name = f"{refiner} refiner, filter {score}"
            measured = stage_value(run, prepared, comparison_sets)
            figure = stage_figure(run, prepared, RESULTS / f"{stem}_{refiner}_{score.replace('+', '_')}.png",
                                  f"{prepared.name}: {name}; G1 {args.dcgan_steps} steps, G2 {args.cgan_steps} steps")
            result["variants"][name] = {"seconds": seconds, "figure": figure.name, **_plain(measured)}
            lines += [f"# {name} (stage seconds: "
                      f"{', '.join(f'{k} {v:.0f}' for k, v in {**timings, **seconds}.items())})", ""]
            lines += stage_value_lines(measured) + [f"![{name}]({figure.name})", ""]
            print("\n".join(lines[-40:]), flush=True)
    result["total_seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    shutil.copy(RESULTS / f"{stem}.md", work / f"{stem}.md")


def filter_variant(run: Run, path: Path, score: str) -> Run:
    """A copy of `run` up to its candidates, with another filter score (filter and export to run)."""
    if not path.exists():
        shutil.copytree(run.path, path, ignore=shutil.ignore_patterns("filter", "synthetic", "report", "backup"))
        for stage in ("filter", "export", "report"):
            (path / "stages" / f"{stage}.json").unlink(missing_ok=True)
        config = config_module.RunConfig.load(path / "config.json")
        config.filter.score = score
        config.save(path / "config.json")
    return Run.open(path)


def _plain(value):
    """JSON-ready: arrays to lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


if __name__ == "__main__":
    main()
