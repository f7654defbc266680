"""How should c be drawn so that exported labels hold? A measured comparison on a dataset whose
class can be read from the pixels (the two-class fixture, `fixtures.oracle_class`).

Variants (DESIGN.md "Labels that hold"):
- class_blind: the paper read literally, c = G1(z1) whatever y is;
- class_aware (a): c = G1(z1) redrawn until the real-data judge assigns c to y;
- conditional_g1 (b): c = G1(z1, y) from a class-conditional G1 (a deviation from §3.2);
- … + drop (c): the filter never keeps a candidate the judge assigns to another class.
G1, G2 and the judge are trained once and shared (conditional_g1 trains its own G1); each
variant then synthesises and filters in its own run directory.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from mgm_tf import config as config_module
from mgm_tf.data import fixtures
from mgm_tf.evaluation import features, metrics
from mgm_tf.evaluation.label_fidelity import load_judge, probabilities
from mgm_tf.evaluation.measure import quality_metrics, to_eval_images
from mgm_tf.io import read_csv
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run

VARIANTS = {"class_blind": ("class_blind", "keep"), "class_blind+drop (c)": ("class_blind", "drop"),
            "class_aware (a)": ("class_aware", "keep"), "class_aware+drop (a+c)": ("class_aware", "drop"),
            "conditional_g1 (b)": ("conditional_g1", "keep"), "conditional_g1+drop (b+c)": ("conditional_g1", "drop")}
def default_variant() -> str:
    """The VARIANTS name of the configured default (SynthesisConfig)."""
    settings = config_module.SynthesisConfig()
    return next(name for name, value in VARIANTS.items() if value == (settings.conditioning, settings.label_check))


def study_config(data_dir: Path, train_images: int, dcgan_steps: int, cgan_steps: int, candidates_per_class: int,
                 extractor_steps: int = 300) -> config_module.RunConfig:
    """Stage sizes given in optimiser steps (what a GAN on a small set lacks), batch 16 (the
    judge: batch 32)."""
    config = config_module.RunConfig(dataset="folder", data_dir=str(data_dir), precision="float32", tensorboard=False)
    steps_per_epoch = max(1, train_images // 16)
    config.dcgan = config_module.DCGANConfig(epochs=math.ceil(dcgan_steps / steps_per_epoch), sample_every=10_000,
                                             kid_every=0)
    config.cgan = config_module.CGANConfig(epochs=math.ceil(cgan_steps / steps_per_epoch), sample_every=10_000,
                                           kid_every=0)
    config.filter = config_module.FilterConfig(candidates_per_class=candidates_per_class)
    config.evaluation = config_module.EvaluationConfig(
        extractor_epochs=math.ceil(extractor_steps / math.ceil(train_images / 32)))
    config.stages = ["extractor", "dcgan", "cgan"]
    return config


def _variant_run(path: Path, config: config_module.RunConfig, copies: dict) -> Run:
    """A run directory at `path` holding the stage outputs (and completion markers) named in
    `copies` ({stage: finished run to copy it from}); "data" is the prepared dataset."""
    (path / "stages").mkdir(parents=True, exist_ok=True)
    for stage, source in copies.items():
        if not (path / stage).exists():
            shutil.copytree(source.path / stage, path / stage)
        if stage != "data":
            shutil.copy(source.done_path(stage), path / "stages" / f"{stage}.json")
    return Run.open(path, config)


def measure_selection(run: Run, prepared) -> dict:
    """Oracle and judge agreement of the filter's selection, its domain KID/recall and diversity."""
    images = np.load(run.path / "candidates" / "images.npy")
    selected = read_csv(run.path / "filter" / "selected.csv")
    ids = np.array([int(row["id"]) for row in selected], np.int64)
    labels = np.array([int(row["label"]) for row in selected])
    chosen = images[ids] if len(ids) else images[:0]
    oracle = fixtures.oracle_class(chosen) if len(ids) else labels
    predicted = np.array([prepared.class_names.index(row["predicted_class"]) for row in selected])
    train, test = prepared.indices("train"), prepared.indices("test")
    domain = features.domain_extractor(load_judge(run, prepared.num_classes), prepared.name)
    grey = to_eval_images(chosen, 1)
    quality = quality_metrics(domain, prepared.images_gan[train], prepared.images_gan[test], grey, domain.name) \
        if len(ids) > 3 else {}
    return {"selected": int(len(ids)), "oracle_agreement": float((oracle == labels).mean()) if len(ids) else None,
            "judge_agreement": float((predicted == labels).mean()) if len(ids) else None,
            "domain_kid": quality.get("kid", {}).get("mean"), "domain_recall": quality.get("recall", {}).get("mean"),
            "pixel_diversity": metrics.normalised_pixel_diversity(grey) if len(ids) > 1 else None}


def run_study(work_dir: str | Path, per_class: int = 60, dcgan_steps: int = 600, cgan_steps: int = 600,
              candidates_per_class: int = 100, variants=tuple(VARIANTS), seed: int = 0) -> dict:
    """Train once, synthesise and filter per variant; returns {variant: measurements} plus the
    judge's and the oracle's accuracy on held-out real images (the ceilings)."""
    work_dir = Path(work_dir)
    data_dir = fixtures.write_two_class_folder(work_dir / "two_class", per_class, seed)
    train_images = round(0.8 * per_class) * 2
    config = study_config(data_dir, train_images, dcgan_steps, cgan_steps, candidates_per_class)
    base = Run.open(work_dir / "runs" / "shared", config)
    run_pipeline(base)
    prepared = base.prepared()
    test = prepared.indices("test")
    judge = load_judge(base, prepared.num_classes)
    ceiling = float((probabilities(judge, prepared.images_gan[test], prepared.channels).argmax(axis=1) == prepared.labels[test]).mean())
    result = {"judge_accuracy_held_out": ceiling,
              "oracle_accuracy_held_out": float((fixtures.oracle_class(prepared.images_gan[test]) ==
                                                 prepared.labels[test]).mean()),
              "num_train": int(len(prepared.indices("train"))), "dcgan_steps": dcgan_steps, "cgan_steps": cgan_steps,
              "variants": {}}
    g1_runs = {False: base}  # class-conditional G1? → a run that holds that G1, trained
    for name in variants:
        conditioning, label_check = VARIANTS[name]
        config = config_module.RunConfig.from_dict(base.config.to_dict())
        config.synthesis.conditioning, config.synthesis.label_check = conditioning, label_check
        conditional = conditioning == "conditional_g1"
        copies = {"data": base, "extractor": base, "cgan": base}
        if conditional in g1_runs:
            copies["dcgan"] = g1_runs[conditional]
        run = _variant_run(work_dir / "runs" / name.split(" ")[0].replace("+", "_"), config, copies)
        run_pipeline(run, ["dcgan", "synthesize", "filter"])  # dcgan skips itself where it was copied
        g1_runs.setdefault(conditional, run)
        result["variants"][name] = measure_selection(run, prepared)
    return result


def study_markdown(result: dict) -> str:
    lines = [f"Two-class fixture: {result['num_train']} training images; G1 {result['dcgan_steps']} steps, "
             f"G2 {result['cgan_steps']} steps. Held-out real images: judge {100 * result['judge_accuracy_held_out']:.0f} %, "
             f"oracle {100 * result['oracle_accuracy_held_out']:.0f} %.", "",
             "| variant | selected | label agreement (oracle) | label agreement (judge) | domain KID ×100 | domain recall "
             "| pixel diversity |", "|---|---|---|---|---|---|---|"]
    for name, row in result["variants"].items():
        cells = [row["selected"], _pct(row["oracle_agreement"]), _pct(row["judge_agreement"]),
                 _num(row["domain_kid"], 100), _num(row["domain_recall"]), _num(row["pixel_diversity"])]
        lines.append(f"| {name} | " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _pct(value):
    return "—" if value is None else f"{100 * value:.1f} %"


def _num(value, scale=1.0):
    return "—" if value is None else f"{scale * value:.2f}"
