"""How should c be drawn so that exported labels hold, and do the labels the pipeline calls
checked hold? A measured comparison on blob fixtures whose class can be read from the pixels
(`fixtures.oracle_class`): two classes, or three with one pair easy to confuse.

Variants (DESIGN.md "Labels a reader can audit"):
- class_blind: the paper read literally, c = G1(z1) whatever y is;
- class_aware (a): for classes the judge can check, c = G1(z1) redrawn until the judge's p(y | c)
  reaches the class's acceptance threshold;
- conditional_g1 (b): c = G1(z1, y) from a class-conditional G1 (a deviation from §3.2);
- … + drop (c): the filter never keeps a candidate of a checked class below its threshold.
The judge stage, G1 and G2 are trained once and shared (conditional_g1 trains its own G1); each
variant then synthesises and filters (and, with `through_export`, super-resolves and exports)
in its own run directory. Per class the study reports the pixel oracle's agreement with the
labels, the referee's and the judge's, the judge's gate, and the share of candidates kept.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from mgm_tf import config as config_module
from mgm_tf import judge
from mgm_tf.data import fixtures
from mgm_tf.evaluation.measure import exported_dataset, to_eval_images
from mgm_tf.io import read_csv
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run

VARIANTS = {"class_blind": ("class_blind", "keep"), "class_blind+drop (c)": ("class_blind", "drop"),
            "class_aware (a)": ("class_aware", "keep"), "class_aware+drop (a+c)": ("class_aware", "drop"),
            "conditional_g1 (b)": ("conditional_g1", "keep"), "conditional_g1+drop (b+c)": ("conditional_g1", "drop")}
# Networks for the study: the blobs are simple, and the study must fit CI on a 2-core CPU.
# G2 at half width follows c in 85 % of draws after 300 steps (a quarter: 69 %), and the
# mode-seeking term, which asks G2 to vary with z for one c, lowered that to 73 %: off here.
SMALL = {"dcgan": {"base_filters": 128, "discriminator_filters": 32}, "cgan": {"width": 0.5}}


def default_variant() -> str:
    """The VARIANTS name of the configured default (SynthesisConfig)."""
    settings = config_module.SynthesisConfig()
    return next(name for name, value in VARIANTS.items() if value == (settings.conditioning, settings.label_check))


def study_config(data_dir: Path, train_images: int, dcgan_steps: int, cgan_steps: int, candidates_per_class: int,
                 judge_epochs: int = 60, small_networks: bool = True) -> config_module.RunConfig:
    """Stage sizes given in optimiser steps (what a GAN on a small set lacks), batch 16; the tiny
    SRGAN of the smoke preset for the export."""
    config = config_module.RunConfig(dataset="folder", data_dir=str(data_dir), precision="float32", tensorboard=False)
    steps_per_epoch = max(1, train_images // 16)
    config.dcgan = config_module.DCGANConfig(epochs=math.ceil(dcgan_steps / steps_per_epoch), sample_every=10_000,
                                             kid_every=0, learning_rate=2e-4, mode_seeking=1.0)
    config.cgan = config_module.CGANConfig(epochs=math.ceil(cgan_steps / steps_per_epoch), sample_every=10_000,
                                           kid_every=0, learning_rate=2e-4)
    for section, values in (SMALL.items() if small_networks else ()):
        for field, value in values.items():
            setattr(getattr(config, section), field, value)
    config.filter = config_module.FilterConfig(candidates_per_class=candidates_per_class)
    config.srgan = config_module.smoke().srgan
    config.evaluation = config_module.EvaluationConfig(extractor_epochs=judge_epochs)
    config.stages = ["judge", "dcgan", "cgan"]
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


def measure_selection(run: Run, prepared, class_names, exported: bool) -> dict:
    """Per class of the selection (or of the exported PNGs): the pixel oracle's, the referee's and
    the judge's agreement with the labels, the share of candidates kept, and the gate."""
    candidates = read_csv(run.path / "candidates" / "candidates.csv")
    if exported:
        images, labels = exported_dataset(run, prepared.channels)
    else:
        selected = [int(row["id"]) for row in read_csv(run.path / "filter" / "selected.csv")]
        images = np.load(run.path / "candidates" / "images.npy")[selected]
        labels = np.array([int(candidates[index]["label"]) for index in selected], np.int32)
    grey = to_eval_images(images, 1)
    oracle = fixtures.oracle_class(grey, class_names)
    calls = {name: judge.classify(judge.load(run, name, len(class_names)), images, prepared.channels).argmax(axis=1)
             for name in judge.NETWORKS}
    info = run.done_info("judge")
    result = {"selected": int(len(labels)), "per_class": {}}
    for label, name in enumerate(class_names):
        members = labels == label
        offered = sum(int(row["label"]) == label for row in candidates)
        result["per_class"][name] = {
            "n": int(members.sum()), "kept_share": float(members.sum() / offered) if offered else None,
            "status": judge.label_status(run, class_names)[name]["status"],
            "oracle_agreement": float((oracle[members] == label).mean()) if members.any() else None,
            "referee_agreement": float((calls["referee"][members] == label).mean()) if members.any() else None,
            "judge_agreement": float((calls["judge"][members] == label).mean()) if members.any() else None,
            "judge_precision": info["judge"]["classes"][name]["precision"],
            "judge_recall": info["judge"]["classes"][name]["recall"],
            "referee_precision": info["referee"]["classes"][name]["precision"]}
    result["oracle_agreement"] = float((oracle == labels).mean()) if len(labels) else None
    result["judge_agreement"] = float((calls["judge"] == labels).mean()) if len(labels) else None
    return result


def run_study(work_dir: str | Path, class_names=fixtures.THREE_CLASS_NAMES, per_class: int = 60,
              dcgan_steps: int = 600, cgan_steps: int = 600, candidates_per_class: int = 100,
              variants=tuple(VARIANTS), seed: int = 0, through_export: bool = False, small_networks: bool = True) -> dict:
    """Train once, synthesise and filter (and export) per variant; returns {variant: measurements}
    with the oracle's accuracy on held-out real images (1.0 by construction) and both classifiers' gates."""
    work_dir = Path(work_dir)
    data_dir = fixtures.write_blob_folder(work_dir / "blobs", class_names, per_class, seed)
    train_images = round(0.8 * per_class) * len(class_names)
    config = study_config(data_dir, train_images, dcgan_steps, cgan_steps, candidates_per_class,
                          small_networks=small_networks)
    config.stages += ["srgan"] if through_export else []
    base = Run.open(work_dir / "runs" / "shared", config)
    run_pipeline(base)
    prepared = base.prepared()
    test = prepared.indices("test")
    result = {"class_names": list(class_names), "shared_run": str(base.path),
              "num_train": int(len(prepared.indices("train"))),
              "num_test": int(len(test)), "dcgan_steps": dcgan_steps, "cgan_steps": cgan_steps,
              "oracle_accuracy_held_out": float((fixtures.oracle_class(prepared.images_gan[test], class_names) ==
                                                 prepared.labels[test]).mean()),
              "gates": {name: base.done_info("judge")[name]["classes"] for name in judge.NETWORKS},
              "thresholds": base.done_info("judge")["thresholds"], "variants": {}}
    g1_runs = {False: base}  # class-conditional G1? → a run that holds that G1, trained
    stages = ["dcgan", "synthesize", "filter"] + (["export"] if through_export else [])
    for name in variants:
        conditioning, label_check = VARIANTS[name]
        config = config_module.RunConfig.from_dict(base.config.to_dict())
        config.synthesis.conditioning, config.synthesis.label_check = conditioning, label_check
        conditional = conditioning == "conditional_g1"
        copies = {"data": base, "judge": base, "cgan": base, **({"srgan": base} if through_export else {})}
        if conditional in g1_runs:
            copies["dcgan"] = g1_runs[conditional]
        run = _variant_run(work_dir / "runs" / name.split(" ")[0].replace("+", "_"), config, copies)
        try:
            run_pipeline(run, stages)  # dcgan skips itself where it was copied
        except ValueError as error:  # a variant the pipeline refuses (a class with no acceptable candidate)
            result["variants"][name] = {"stopped": str(error)}
            continue
        finally:
            if run.done_info("dcgan"):
                g1_runs.setdefault(conditional, run)
        result["variants"][name] = measure_selection(run, prepared, class_names, through_export)
    return result


def study_markdown(result: dict) -> str:
    """The study as tables: the gate, then per variant and class the agreements and kept share."""
    names = result["class_names"]
    lines = [f"Blob fixture, classes {', '.join(names)}: {result['num_train']} training images, {result['num_test']} "
             f"held out; G1 {result['dcgan_steps']} steps, G2 {result['cgan_steps']} steps. The pixel oracle is right "
             f"on {100 * result['oracle_accuracy_held_out']:.0f} % of held-out real images.", "",
             "| class | judge recall | judge precision | referee precision | acceptance p(y) ≥ |", "|---|---|---|---|---|"]
    for index, name in enumerate(names):
        gate, referee, threshold = result["gates"]["judge"][name], result["gates"]["referee"][name], result["thresholds"][index]
        lines.append(f"| {name} | {_pct(gate['recall'])} | {_pct(gate['precision'])} | {_pct(referee['precision'])} | "
                     f"{'unchecked' if threshold is None else f'{threshold:.2f}'} |")
    lines += ["", "| variant | class | labels | kept | oracle agrees | referee agrees | judge agrees |",
              "|---|---|---|---|---|---|---|"]
    for variant, row in result["variants"].items():
        if "stopped" in row:
            lines.append(f"| {variant} | — | stopped: {row['stopped'].split(':')[0]}: {row['stopped'].split(':')[1].strip()} "
                         "| — | — | — | — |")
            continue
        for name, entry in row["per_class"].items():
            lines.append(f"| {variant} | {name} | {entry['status']} | {entry['n']} ({_pct(entry['kept_share'])}) | "
                         f"{_pct(entry['oracle_agreement'])} | {_pct(entry['referee_agreement'])} | "
                         f"{_pct(entry['judge_agreement'])} |")
    return "\n".join(lines)


def _pct(value):
    return "—" if value is None else f"{100 * value:.1f} %"
