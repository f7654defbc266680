"""Stages that turn trained generators into a dataset: synthesize → filter → export → report."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

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


def stage_synthesize(run, prepared, strategy=None) -> dict:
    """MixGANMed synthesis: c = G1(z1), x = G2(z2, c, y) for every class → candidates/."""
    from mgm_tf.stages import load_generators

    stage_dir = run.stage_dir("candidates")
    labels, seeds = candidate_plan(prepared.num_classes, run.config.filter.candidates_per_class, run.config.seed)
    dcgan_generator, conditional_generator, per_class = load_generators(run, prepared.class_names)
    refined, conditions = synthesis.refine_samples(dcgan_generator, conditional_generator, labels, seeds,
                                                   run.config.cgan.latent_dim, label="synthesis: G2(z2, G1(z1), y)",
                                                   class_generators=per_class)
    save_array(stage_dir / "images.npy", refined)
    save_array(stage_dir / "conditions.npy", conditions)
    lineage = "dcgan>cgan" + (">finetuned" if per_class else "")
    rows = [{"id": index, "class": prepared.class_names[label], "label": int(label), "seed": int(seed),
             "lineage": lineage} for index, (label, seed) in enumerate(zip(labels, seeds))]
    write_csv(stage_dir / "candidates.csv", rows, ("id", "class", "label", "seed", "lineage"))
    from mgm_tf.plots import save_grid

    save_grid(np.concatenate([conditions[:8], refined[:8]]), stage_dir / "g1_then_g2.png",
              title="top: G1(z1) conditions; bottom: G2 refinements")
    return {"num_candidates": len(rows), "directory": "candidates"}


def stage_filter(run, prepared=None, strategy=None) -> dict:
    """§3.4: score every candidate, keep the best fraction per class → filter/*.csv."""
    from mgm_tf.plots import histograms, save_figure, save_grid

    stage_dir = run.stage_dir("filter")
    images = np.load(run.path / "candidates" / "images.npy")
    rows = read_csv(run.path / "candidates" / "candidates.csv")
    labels = np.array([int(row["label"]) for row in rows])
    ids = np.array([int(row["id"]) for row in rows])
    table = quality.scores(images)
    combined, keep = quality.select(table, labels, run.config.filter.keep_fraction, ids)
    scored = [{**row, **dict(zip(quality.SCORE_NAMES, map(float, table[index]))),
               "quality_score": float(combined[index]), "selected": int(keep[index])} for index, row in enumerate(rows)]
    columns = ("id", "class", "label", "seed", "lineage", *quality.SCORE_NAMES, "quality_score", "selected")
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
    return {"num_scored": len(rows), "num_selected": int(keep.sum()), "selected_per_class": counts}


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
    for row in selected:
        row["lineage"] = row["lineage"] + ">filter>srgan"
    partial = run.path / "synthetic.partial"
    shutil.rmtree(partial, ignore_errors=True)
    export_dataset(partial, high, selected, prepared.class_names, prepared.channels,
                   generator="mgm_tf MixGANMed (DCGAN>cGAN>filter>SRGANx4)", dataset=prepared.name)
    final = run.path / "synthetic"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return {"num_images": len(selected), "size": int(high.shape[1]) if len(high) else 0,
            "channels": prepared.channels}


def stage_report(run, prepared, strategy=None) -> dict:
    from mgm_tf.report import write_run_report

    return {"report": str(write_run_report(run, prepared).relative_to(run.path))}
