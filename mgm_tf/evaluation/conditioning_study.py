"""How should c be drawn so that exported labels hold, and do the labels the pipeline calls
checked hold? A measured comparison on blob fixtures whose class can be read from the pixels
(`fixtures.oracle_class`): two classes, or three with one pair easy to confuse.

Variants (DESIGN.md "Labels a reader can audit"):
- class_blind: the paper read literally, c = G1(z1) whatever y is;
- class_aware (a): for classes the judge can check, c = G1(z1) redrawn until the judge's p(y | c)
  reaches the class's acceptance threshold;
- conditional_g1 (b): c = G1(z1, y) from a class-conditional G1 (a deviation from §3.2), for
  checked classes redrawn as in (a);
- … + drop (c): the filter never keeps a candidate of a checked class below its threshold.
The judge stage, the paper's unconditional G1 and G2 are trained once and shared (conditional_g1
trains its own G1); each
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
from mgm_tf import acceptance, classifier, judge
from mgm_tf.card import describe_estimate
from mgm_tf.data import fixtures
from mgm_tf.evaluation import label_fidelity
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
    config.synthesis.conditioning = config_module.UNCONDITIONAL_G1[0]  # the shared G1 is §3.2's
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


def _rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if len(hits) else None


def class_measurements(label: int, labels, status, oracle, referee_calls, estimate, offered: int) -> dict:
    """One class of a selection or export: rows, share checked, the oracle's agreement on checked
    and on unchecked rows, the referee's raw agreement and the estimated share of right labels."""
    members = labels == label
    checked = members & (status == "checked")
    unchecked = members & (status != "checked")
    return {"n": int(members.sum()), "kept_share": float(members.sum() / offered) if offered else None,
            "checked": int(checked.sum()), "checked_share": _rate(checked[members]),
            "oracle_agreement": _rate(oracle[members] == label),
            "oracle_on_checked": _rate(oracle[checked] == label), "oracle_on_unchecked": _rate(oracle[unchecked] == label),
            "referee_agreement": _rate(referee_calls[members] == label), "estimated_accuracy": estimate}


def measure_selection(run: Run, prepared, class_names, exported: bool) -> dict:
    """Per class of the selection (or of the exported PNGs): rows checked, the pixel oracle's
    agreement on checked and unchecked rows, the referee's raw agreement, the estimated share of
    right labels, the judge's agreement, the share of candidates kept, and the gate."""
    candidates = read_csv(run.path / "candidates" / "candidates.csv")
    if exported:
        images, labels = exported_dataset(run, prepared.channels)
        rows = read_csv(run.path / "synthetic" / "manifest.csv")
    else:
        rows = read_csv(run.path / "filter" / "selected.csv")
        images = np.load(run.path / "candidates" / "images.npy")[[int(row["id"]) for row in rows]]
        labels = np.array([int(row["label"]) for row in rows], np.int32)
    status = np.array([row["label_status"] for row in rows])
    oracle = fixtures.oracle_class(to_eval_images(images, 1), class_names)
    calls = {name: classifier.classify(judge.load(run, name, len(class_names)), images, prepared.channels).argmax(axis=1)
             for name in judge.NETWORKS}
    info = run.done_info("judge")
    estimates = label_fidelity.estimated_accuracy(info["referee"]["confusion"], labels, calls["referee"], class_names)
    result = {"selected": int(len(labels)), "per_class": {}}
    for label, name in enumerate(class_names):
        offered = sum(int(row["label"]) == label for row in candidates)
        entry = class_measurements(label, labels, status, oracle, calls["referee"], estimates[name], offered)
        result["per_class"][name] = {**entry, "class_status": judge.label_status(run, class_names)[name]["status"],
                                     "judge_agreement": _rate(calls["judge"][labels == label] == label),
                                     "judge_recall": info["judge"]["classes"][name]["recall"],
                                     "referee_recall": info["referee"]["classes"][name]["recall"]}
    result["oracle_agreement"] = _rate(oracle == labels)
    return result


def run_study(work_dir: str | Path, class_names=fixtures.THREE_CLASS_NAMES, per_class: int = 100,
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
    result["mixtures"] = mixture_study(base, class_names)
    return result


MIXTURE_PROPORTIONS = (0.3, 0.4, 0.5, 0.6, 0.7)


def mixture_fixture(class_names, per_class: int = 30, per_pair: int = 4, seed: int = 7):
    """Candidates with known answers: `per_class` pure blob images of every class, and for every
    pair of classes `per_pair` pixel mixtures α·x_a + (1 − α)·x_b at each α of MIXTURE_PROPORTIONS,
    labelled with the class of the larger share (a at 0.5). Returns uint8 images, labels, and
    whether each is pure (a mixture between 0.3 and 0.7 shows neither class)."""
    rng, images, labels, pure = np.random.default_rng(seed), [], [], []
    for label, name in enumerate(class_names):
        images += [fixtures.blob_image(rng, name) for _ in range(per_class)]
        labels += [label] * per_class
        pure += [True] * per_class
    for first in range(len(class_names)):
        for second in range(first + 1, len(class_names)):
            for share in MIXTURE_PROPORTIONS:
                for _ in range(per_pair):
                    mixed = share * fixtures.blob_image(rng, class_names[first]).astype(np.float64) \
                        + (1 - share) * fixtures.blob_image(rng, class_names[second])
                    images.append(np.clip(np.round(mixed), 0, 255).astype(np.uint8))
                    labels.append(first if share >= 0.5 else second)
                    pure.append(False)
    return np.stack(images)[..., None], np.array(labels, np.int64), np.array(pure)


ACCEPTANCE_RULES = ("p(y) at the precision threshold", "p(y) at the threshold with its mixture floor (default)")


def mixture_study(run: Run, class_names, per_class: int = 30, per_pair: int = 4, seed: int = 7) -> dict:
    """Per acceptance rule and class, on `mixture_fixture` judged by the run's judge: rows checked,
    the oracle's agreement (pure = right) on checked and unchecked rows, the referee's raw agreement
    and the estimated share of right labels; and overall, mixtures refused and pure images kept.
    The first rule is the threshold without its floor (`judge.calibrate_thresholds` on the
    calibration part again), the second the stage's."""
    images, labels, pure = mixture_fixture(class_names, per_class, per_pair, seed)
    prepared, info = run.prepared(), run.done_info("judge")
    selector = judge.load(run, "judge", len(class_names))
    calibration = np.asarray(info["calibration_indices"], np.int64)
    checked = [info["judge"]["classes"][name]["checked"] for name in class_names]
    unfloored = judge.acceptance_thresholds(prepared.labels[calibration],
                                            classifier.classify(selector, prepared.images_gan[calibration], 3), checked)
    probabilities = classifier.classify(selector, images, prepared.channels)
    referee = classifier.classify(judge.load(run, "referee", len(class_names)), images, prepared.channels).argmax(axis=1)
    estimates = label_fidelity.estimated_accuracy(info["referee"]["confusion"], labels, referee, class_names)
    truth = np.where(pure, labels, -1)  # a mixture is no class's image
    result = {"num_pure": int(pure.sum()), "num_mixtures": int((~pure).sum()), "rules": {}}
    for rule, thresholds in zip(ACCEPTANCE_RULES, (unfloored, info["thresholds"])):
        accepted, _ = acceptance.accept_images(probabilities, labels, thresholds)
        row_status = np.where(accepted, "checked", "unchecked")
        result["rules"][rule] = {
            "thresholds": thresholds,
            "mixtures_refused": float(1 - accepted[~pure].mean()), "pure_kept": float(accepted[pure].mean()),
            "per_class": {name: class_measurements(label, labels, row_status, truth, referee, estimates[name],
                                                   int((labels == label).sum()))
                          for label, name in enumerate(class_names)}}
    return result


ROW_HEADER = ["class", "rows", "checked", "oracle agrees: checked rows", "oracle agrees: unchecked rows",
              "referee agrees (raw)", "estimated right labels"]


def _class_cells(name: str, entry: dict) -> list[str]:
    return [name, str(entry["n"]), f"{entry['checked']} ({_pct(entry['checked_share'])})",
            _pct(entry["oracle_on_checked"]), _pct(entry["oracle_on_unchecked"]), _pct(entry["referee_agreement"]),
            describe_estimate(entry["estimated_accuracy"])]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |" for row in rows]


def study_markdown(result: dict) -> str:
    """The study as tables: the gate; per variant and class the rows checked and the oracle's,
    the referee's and the estimated agreement; and the mixture fixture per acceptance rule."""
    names = result["class_names"]
    lines = [f"Blob fixture, classes {', '.join(names)}: {result['num_train']} training images, {result['num_test']} "
             f"held out (half calibration, half evaluation); G1 {result['dcgan_steps']} steps, G2 {result['cgan_steps']} "
             f"steps. The pixel oracle is right on {100 * result['oracle_accuracy_held_out']:.0f} % of held-out real "
             "images.", ""]
    gate_rows = []
    for index, name in enumerate(names):
        gate, referee, threshold = result["gates"]["judge"][name], result["gates"]["referee"][name], result["thresholds"][index]
        gate_rows.append([name, _pct(gate["recall"]), _pct(gate["precision"]), _pct(referee["recall"]),
                          "unchecked" if threshold is None else f"{threshold:.2f}"])
    lines += _table(["class", "judge recall", "judge precision (uniform mix)", "referee recall", "acceptance p(y) ≥"],
                    gate_rows) + [""]
    variant_rows = []
    for variant, row in result["variants"].items():
        if "stopped" in row:
            variant_rows.append([variant, f"stopped: {row['stopped'][:120]}"] + ["—"] * (len(ROW_HEADER) - 1))
            continue
        variant_rows += [[variant] + _class_cells(name, entry) for name, entry in row["per_class"].items()]
    lines += _table(["variant"] + ROW_HEADER, variant_rows)
    mixtures = result.get("mixtures")
    if mixtures:
        lines += ["", f"Mixture fixture: {mixtures['num_pure']} pure blob images and {mixtures['num_mixtures']} two-class "
                      f"pixel mixtures (shares {', '.join(map(str, MIXTURE_PROPORTIONS))}, labelled with the larger "
                      "share), judged by the same judge; a mixture is right for no label.", ""]
        rule_rows = []
        for rule, entry in mixtures["rules"].items():
            rule_rows += [[rule, f"{_pct(entry['mixtures_refused'])} / {_pct(entry['pure_kept'])}"]
                          + _class_cells(name, values) for name, values in entry["per_class"].items()]
        lines += _table(["acceptance", "mixtures refused / pure kept"] + ROW_HEADER, rule_rows)
    return "\n".join(lines)


def _pct(value):
    return "—" if value is None else f"{100 * value:.1f} %"
