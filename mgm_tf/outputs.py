"""Stages that turn trained generators into a dataset: synthesize → filter → export → report."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

from mgm_tf import label_fidelity
from mgm_tf import quality, synthesis
from mgm_tf.data import save_array, write_csv


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def candidate_plan(num_classes: int, per_class: int, seed: int):
    """Labels and per-image seeds for `per_class` candidates of every class."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    indices = np.tile(np.arange(per_class), num_classes)
    seeds = np.array([synthesis.image_seed(seed, int(label), int(index)) for label, index in zip(labels, indices)])
    return labels, seeds


CANDIDATE_COLUMNS = ("id", "class", "label", "seed", "lineage", "condition_attempt", "condition_verified",
                     "predicted_class", "predicted_probability")


def synthesis_conditions(run, prepared, dcgan_generator, judge, labels, seeds) -> dict:
    """Per candidate: which draw of z1 gives its condition c, and whether the judge confirmed c
    shows class y (class_aware), or the paper's single class-blind draw."""
    settings = run.config.synthesis
    if settings.conditioning not in ("class_aware", "class_blind", "conditional_g1"):
        raise ValueError(f"synthesis.conditioning must be 'class_aware', 'class_blind' or 'conditional_g1', "
                         f"got {settings.conditioning!r}")
    unverified = {"attempts": np.zeros(len(labels), np.int32), "verified": np.full(len(labels), ""),
                  "class_aware": False}
    if settings.conditioning != "class_aware":
        return unverified
    if judge is None:
        raise ValueError(f"class-aware synthesis needs the label judge of the 'extractor' stage in {run.path} "
                         f"(python -m mgm_tf run --out {run.path} --stages extractor), or synthesis.conditioning "
                         "'class_blind'")
    verdict = label_fidelity.judge_verdict(run, prepared.num_classes)
    if not verdict["trusted"]:
        print(f"warning: the label judge cannot check classes ({verdict['reason']}); conditions are drawn "
              "class-blind, and exported labels are unchecked")
        return unverified
    attempts, verified, _ = label_fidelity.class_aware_conditions(
        dcgan_generator, judge, labels, seeds, run.config.cgan.latent_dim, prepared.channels,
        settings.condition_attempts, label="class-aware conditions: c = G1(z1) that the judge assigns to y")
    return {"attempts": attempts, "verified": verified.astype(int), "class_aware": True}


def stage_synthesize(run, prepared, strategy=None) -> dict:
    """MixGANMed synthesis: c = G1(z1) drawn for class y (see `synthesis_conditions`), then
    x = G2(z2, c, y) for every class → candidates/, each scored by the label judge."""
    from mgm_tf.plots import save_grid
    from mgm_tf.stages import load_generators

    stage_dir = run.stage_dir("candidates")
    labels, seeds = candidate_plan(prepared.num_classes, run.config.filter.candidates_per_class, run.config.seed)
    dcgan_generator, conditional_generator, per_class = load_generators(run, prepared.class_names)
    judge = label_fidelity.load_judge(run, prepared.num_classes)
    drawn = synthesis_conditions(run, prepared, dcgan_generator, judge, labels, seeds)
    latent_dim = run.config.cgan.latent_dim
    conditions = synthesis.draw_conditions(dcgan_generator, labels, seeds, drawn["attempts"], latent_dim)
    refined = synthesis.refine(conditional_generator, conditions, labels, seeds, latent_dim,
                               label="synthesis: G2(z2, c, y)", class_generators=per_class)
    save_array(stage_dir / "images.npy", refined)
    save_array(stage_dir / "conditions.npy", synthesis.to_uint8(conditions))
    scores = label_fidelity.probabilities(judge, refined, prepared.channels) if judge is not None else None
    conditioning = run.config.synthesis.conditioning
    drawn_as = "class_blind" if conditioning == "class_aware" and not drawn["class_aware"] else conditioning
    lineage = f"dcgan({drawn_as})>cgan" + (">finetuned" if per_class else "")
    rows = []
    for index, (label, seed) in enumerate(zip(labels, seeds)):
        predicted = int(scores[index].argmax()) if scores is not None else None
        rows.append({"id": index, "class": prepared.class_names[label], "label": int(label), "seed": int(seed),
                     "lineage": lineage, "condition_attempt": int(drawn["attempts"][index]),
                     "condition_verified": drawn["verified"][index],
                     "predicted_class": "" if predicted is None else prepared.class_names[predicted],
                     "predicted_probability": "" if scores is None else round(float(scores[index, predicted]), 4)})
    write_csv(stage_dir / "candidates.csv", rows, CANDIDATE_COLUMNS)
    save_grid(np.concatenate([synthesis.to_uint8(conditions[:8]), refined[:8]]), stage_dir / "g1_then_g2.png",
              title="top: G1(z1) conditions; bottom: G2 refinements")
    info = {"num_candidates": len(rows), "directory": "candidates", "conditioning": run.config.synthesis.conditioning,
            "class_aware_applied": drawn["class_aware"]}
    if scores is not None:
        info["label_agreement"] = label_fidelity.agreement(labels, scores.argmax(axis=1), prepared.class_names)
    if drawn["class_aware"]:
        info["conditions_verified"] = float(np.mean(drawn["verified"]))
        info["mean_condition_attempts"] = float(np.mean(drawn["attempts"]) + 1)
    return info


def label_eligible(rows: list[dict], label_check: str) -> np.ndarray:
    """Candidates the filter may select: all ("keep"), or those the judge assigns to their own
    class ("drop"; a candidate without a prediction stays eligible)."""
    if label_check not in ("drop", "keep"):
        raise ValueError(f"synthesis.label_check must be 'drop' or 'keep', got {label_check!r}")
    if label_check == "keep":
        return np.ones(len(rows), bool)
    return np.array([row.get("predicted_class", "") in ("", row["class"]) for row in rows])


def stage_filter(run, prepared=None, strategy=None) -> dict:
    """§3.4: score every candidate, keep the best fraction per class → filter/*.csv. With
    synthesis.label_check "drop", a candidate the judge assigns to another class is never kept."""
    from mgm_tf.plots import histograms, save_figure, save_grid

    stage_dir = run.stage_dir("filter")
    images = np.load(run.path / "candidates" / "images.npy")
    rows = read_csv(run.path / "candidates" / "candidates.csv")
    labels = np.array([int(row["label"]) for row in rows])
    ids = np.array([int(row["id"]) for row in rows])
    label_check = run.config.synthesis.label_check
    verdict = label_fidelity.judge_verdict(run, len({row["label"] for row in rows}))
    if label_check == "drop" and not verdict["trusted"]:
        print(f"warning: no candidate is dropped for its label: the judge cannot check classes ({verdict['reason']})")
        label_check = "keep"
    eligible = label_eligible(rows, label_check)
    table = quality.scores(images)
    combined, keep = quality.select(table, labels, run.config.filter.keep_fraction, ids, eligible)
    scored = [{**row, **dict(zip(quality.SCORE_NAMES, map(float, table[index]))),
               "quality_score": float(combined[index]), "label_eligible": int(eligible[index]),
               "selected": int(keep[index])} for index, row in enumerate(rows)]
    columns = (*CANDIDATE_COLUMNS, *quality.SCORE_NAMES, "quality_score", "label_eligible", "selected")
    write_csv(stage_dir / "scores.csv", scored, columns)
    write_csv(stage_dir / "selected.csv", [row for row in scored if row["selected"]], columns)
    save_figure(histograms({name: table[:, column] for column, name in enumerate(quality.SCORE_NAMES)}
                           | {"combined rank score": combined}, title="quality filter scores (all candidates)"),
                stage_dir / "scores.png")
    order = np.lexsort((ids, -combined))
    save_grid(np.concatenate([images[order[:8]], images[order[-8:]]]), stage_dir / "best_and_worst.png",
              title="top: highest combined score; bottom: lowest")
    names = {int(row["label"]): row["class"] for row in rows}
    counts = {names[label]: int(keep[labels == label].sum()) for label in sorted(names)}
    dropped = {names[label]: int((~eligible[labels == label]).sum()) for label in sorted(names)}
    quota = {names[label]: max(1, int(np.floor(run.config.filter.keep_fraction * (labels == label).sum() + 0.5)))
             for label in sorted(names)}
    short = {name: f"{counts[name]} of {quota[name]}" for name in counts if counts[name] < quota[name]}
    if short:
        print(f"warning: the label judge assigned too few candidates to their own class to fill the quota: {short}; "
              "train longer, synthesise more candidates, or set synthesis.label_check 'keep'")
    return {"num_scored": len(rows), "num_selected": int(keep.sum()), "selected_per_class": counts,
            "label_check": label_check, "ineligible_per_class": dropped}


def stage_export(run, prepared, strategy=None) -> dict:
    """Super-resolve the selected candidates ×4 and write the marked, labelled dataset."""
    from mgm_tf.export import export_dataset
    from mgm_tf.stages import build_srgan

    selected = read_csv(run.path / "filter" / "selected.csv")
    candidates = np.load(run.path / "candidates" / "images.npy")
    generator, _ = build_srgan(run.config.srgan)
    generator.load_weights(str(run.path / "srgan" / "generator.weights.h5"))
    high = synthesis.super_resolve(generator, candidates[[int(row["id"]) for row in selected]],
                                   label="super-resolving the selected images x4")
    judge = label_fidelity.load_judge(run, prepared.num_classes)
    scores = label_fidelity.probabilities(judge, high, prepared.channels) if judge is not None else None
    for index, row in enumerate(selected):
        row["lineage"] = row["lineage"] + ">filter>srgan"
        if scores is not None:  # the judge's view of the final image, as exported
            predicted = int(scores[index].argmax())
            row["predicted_class"] = prepared.class_names[predicted]
            row["predicted_probability"] = round(float(scores[index, predicted]), 4)
    partial = run.path / "synthetic.partial"
    shutil.rmtree(partial, ignore_errors=True)
    export_dataset(partial, high, selected, prepared.class_names, prepared.channels,
                   generator="mgm_tf MixGANMed (DCGAN>cGAN>filter>SRGANx4)", dataset=prepared.name)
    final = run.path / "synthetic"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    info = {"num_images": len(selected), "size": int(high.shape[1]) if len(high) else 0, "channels": prepared.channels}
    if scores is not None:
        info["label_agreement"] = label_fidelity.agreement([int(row["label"]) for row in selected],
                                                           scores.argmax(axis=1), prepared.class_names)
    return info


def stage_report(run, prepared, strategy=None) -> dict:
    from mgm_tf.report import write_run_report

    return {"report": str(write_run_report(run, prepared).relative_to(run.path))}
