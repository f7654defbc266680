"""What a person reads after a run: report/report.md (what ran, how long, how big the networks
are, the exported dataset measured, whether each stage earned its place, pictures). Losses are
shown for parity with the paper's Table 1, not as quality. The `evaluate` command's figures and
tables are `comparison_report`'s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mgm_tf.data.decode import read_image
from mgm_tf import plots
from mgm_tf.card import share, write_dataset_card
from mgm_tf.evaluation.comparison_report import evaluation_markdown
from mgm_tf.evaluation.label_fidelity import export_label_lines
from mgm_tf.evaluation.measure import measure_export
from mgm_tf.evaluation.stage_value import comparison_sets, stage_figure, stage_value, stage_value_lines
from mgm_tf.io import read_csv, read_history, write_json

PAPER_CLAIMED_PARAMETERS = 0.67e6
TRAINED_STAGES = ("dcgan", "cgan", "srgan")
BASELINE_STAGES = ("baseline_cgan", "baseline_cyclegan")


# --- report.md of every run -----------------------------------------------------------------

def write_run_report(run, prepared) -> Path:
    """report/report.md: data, training, super-resolution, filter, the exported dataset measured,
    figures, and — after `evaluate` — the comparison tables."""
    report_dir = run.path / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# MixGANMed run: {prepared.name}", ""]
    if run.config.smoke:
        lines += ["> **Smoke test**: tiny epochs and sizes. These outputs show the code runs; they are not results.", ""]
    lines += _data_lines(run, prepared) + _training_lines(run) + _super_resolution_lines(run) + _filter_lines(run)
    if (run.path / "synthetic" / "manifest.csv").exists():
        measured = measure_export(run, prepared)
        write_json(report_dir / "export_check.json", measured)
        write_dataset_card(run.path / "synthetic", run, prepared, measured["num_images"], measured)
        lines += [""] + export_check_lines(measured)
    if (run.path / "filter" / "scores.csv").exists():
        lines += [""] + stage_value_section(run, prepared, report_dir)
    lines += ["", "## Figures", ""] + _figures(run, prepared, report_dir)
    lines += ["", "Synthetic images are in `synthetic/<class>/`, listed in `synthetic/manifest.csv`; each PNG is "
                  "marked synthetic in its text chunks. Losses say nothing about image quality."]
    metrics_path = report_dir / "metrics.json"
    if metrics_path.exists():
        lines += [""] + evaluation_markdown(json.loads(metrics_path.read_text(encoding="utf-8")))
    else:
        lines += ["Run `python -m mgm_tf evaluate --run RUN` for FID/KID, precision/recall, memorisation and utility.", ""]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def stage_value_section(run, prepared, report_dir: Path) -> list[str]:
    """"Does each stage earn its place?": the table (`stage_value`), kept as stage_value.json,
    and the figure of real images above the same candidates after each stage."""
    measured = stage_value(run, prepared, comparison_sets, seed=run.config.seed)
    write_json(report_dir / "stage_value.json", measured)
    figure = stage_figure(run, prepared, report_dir / "stages.png",
                          "the same candidates after each stage, under real held-out images")
    return stage_value_lines(measured) + [f"![real and each stage]({figure.name})", ""]


def _data_lines(run, prepared) -> list[str]:
    lines = [f"Dataset `{prepared.name}`: {prepared.report['num_images']} images "
             f"({prepared.report['num_skipped']} unreadable files skipped), classes "
             f"{', '.join(prepared.class_names)}; precision policy `{run.done_info('dcgan').get('policy', '?')}`.", ""]
    source = prepared.report.get("source", {})
    if source.get("version"):
        lines += [f"Downloaded version: {source['version']} ({source.get('num_files', '?')} files, fingerprint "
                  f"{str(source.get('sha256', ''))[:12]}).", ""]
    counts = prepared.report["counts"]
    return lines + _table(["class", "train", "test", "total"],
                          [[name, counts[name]["train"], counts[name]["test"], counts[name]["total"]] for name in counts])


def _training_lines(run) -> list[str]:
    rows = stage_rows(run)
    total = sum(row["g_params"] + row["d_params"] for row in rows)
    lines = ["", "## Training (losses for parity with the paper's Table 1 — not a quality measure)", ""]
    lines += _table(["stage", "epochs", "train time (s)", "final G loss", "final D loss", "G params", "D params"],
                    [[r["stage"], r["epochs"], f"{r['train_seconds']:.1f}", f"{r['g_loss']:.3f}", f"{r['d_loss']:.3f}",
                      f"{r['g_params']:,}", f"{r['d_params']:,}"] for r in rows])
    return lines + ["", f"Trainable parameters of all trained networks: **{total:,}** (the paper claims 0.67 M for the "
                        f"whole model; its §3.7 discriminator alone has 678,337 with 4×4 kernels).", ""]


def _super_resolution_lines(run) -> list[str]:
    evaluation = run.done_info("srgan").get("evaluation")
    if not evaluation:
        return []
    if evaluation.get("status"):
        return ["## Super-resolution", f"PSNR/SSIM {evaluation['status']}.", ""]
    lines = [f"## Super-resolution on {evaluation['num_images']} held-out real images ({evaluation['split']} split)",
             f"VGG19 weights for the perceptual loss: {run.done_info('srgan').get('vgg_weights')}.", ""]
    return lines + _table(["method", "PSNR (dB)", "SSIM"],
                          [[name, f"{evaluation[name]['psnr']['mean']:.2f} ± {evaluation[name]['psnr']['std']:.2f}",
                            f"{evaluation[name]['ssim']['mean']:.3f} ± {evaluation[name]['ssim']['std']:.3f}"]
                           for name in ("bicubic", "srgan")])


def _filter_lines(run) -> list[str]:
    selected = run.done_info("filter").get("selected_per_class")
    if not selected:
        return []
    return ["", f"## Quality filter: kept {run.config.filter.keep_fraction:.0%} of "
                f"{run.config.filter.candidates_per_class} candidates per class: {selected}", "",
            "![scores](../filter/scores.png)", "![best and worst](../filter/best_and_worst.png)"]


def stage_report(run, prepared, strategy=None) -> dict:
    """The `report` stage: report/report.md (rewritten every time the pipeline runs)."""
    return {"report": str(write_run_report(run, prepared).relative_to(run.path))}


def stage_rows(run, all_stages: bool = False) -> list[dict]:
    """One row per trained network stage: epochs, training seconds, final losses, parameters
    (the pipeline's stages; with all_stages the baselines too)."""
    rows = []
    for stage in TRAINED_STAGES + (BASELINE_STAGES if all_stages else ()):
        info = run.done_info(stage)
        if not info:
            continue
        parameters = info.get("parameters", {})
        epochs = info.get("epochs", 0)
        if info.get("steps_per_epoch"):
            epochs = f"{epochs} × {info['steps_per_epoch']} steps"
        rows.append({"stage": stage, "epochs": epochs, "train_seconds": info.get("train_seconds", 0.0),
                     "g_loss": info.get("final", {}).get("g_loss", float("nan")),
                     "d_loss": info.get("final", {}).get("d_loss", float("nan")),
                     "g_params": parameters.get("generator", {}).get("trainable", 0),
                     "d_params": parameters.get("discriminator", {}).get("trainable", 0)})
    return rows


def _table(headers, rows) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _figures(run, prepared, report_dir: Path) -> list[str]:
    """Loss curves per stage, real vs synthetic per class; returns markdown image lines."""
    lines = []
    for stage in TRAINED_STAGES:
        history = read_history(run.path / stage / "history.csv")
        series = {name: history[name] for name in ("d_loss", "g_loss") if history.get(name)}
        if series:
            plots.save_figure(plots.curves(series, title=f"{stage} losses"), report_dir / f"losses_{stage}.png")
            lines.append(f"![{stage} losses](losses_{stage}.png)")
    synthetic = run.path / "synthetic"
    if (synthetic / "manifest.csv").exists():
        rows = read_csv(synthetic / "manifest.csv")
        for label, name in enumerate(prepared.class_names):
            files = [row["file"] for row in rows if int(row["label"]) == label][:6]
            real = prepared.images_hr[prepared.indices("train", label)[:6]]
            fake = [read_image(synthetic / file, prepared.channels) for file in files]
            if len(real) and fake:  # one row each when both have as many images; each image is titled anyway
                titles = ["real"] * len(real) + ["synthetic"] * len(fake)
                plots.save_grid(np.concatenate([real, np.stack(fake)]), report_dir / f"real_vs_synthetic_{name}.png",
                                titles=titles, columns=max(len(real), len(fake)),
                                title=f"{name}: real training images, then synthetic ones (titled)")
                lines.append(f"![real vs synthetic {name}](real_vs_synthetic_{name}.png)")
    return lines


def variety_targets(measured: dict) -> dict:
    """The demo's variety targets, each True/False: pairwise SSIM at most 0.2 above the real
    images', normalised-pixel diversity at least half theirs, pixel recall above 0, and no
    memorised image."""
    diversity, real, pixels = measured["diversity"], measured["real_diversity"], measured["pixels"]
    memorised = pixels.get("memorisation") or {}
    return {"pairwise SSIM": diversity["pairwise_ssim"] <= real["pairwise_ssim"] + 0.2,
            "pixel diversity": diversity["pixel_diversity"] >= real["pixel_diversity"] / 2,
            "recall": pixels["recall"]["mean"] > 0,
            "memorised share": memorised.get("flagged_fraction", 0.0) == 0.0}


def _met(value: bool) -> str:
    return "✔ met" if value else "✘ **missed**"


def _spread(summary: dict) -> str:
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def export_check_lines(measured: dict) -> list[str]:
    """report.md's verdict on the exported dataset, every number next to its real reference and
    whether its target is met; a missed target is said, not left to be noticed."""
    diversity, real, pixels = measured["diversity"], measured["real_diversity"], measured["pixels"]
    targets = variety_targets(measured)
    count = measured["num_images"]
    lines = ["## The exported dataset, measured", "",
             f"{count} exported images against {pixels['num_real']} real training images; precision and recall are "
             f"mean ± std over subsamples of {min(pixels['num_real'], pixels['num_synthetic'])} images a side.", "",
             "| measure | synthetic | real training images | target | |", "|---|---|---|---|---|",
             f"| mean pairwise SSIM (64 px grey) | {diversity['pairwise_ssim']:.2f} | {real['pairwise_ssim']:.2f} | "
             f"at most {real['pairwise_ssim'] + 0.2:.2f} (1.0: one image repeated) | {_met(targets['pairwise SSIM'])} |",
             f"| normalised-pixel diversity | {diversity['pixel_diversity']:.2f} | {real['pixel_diversity']:.2f} | "
             f"at least {real['pixel_diversity'] / 2:.2f} (0: copies) | {_met(targets['pixel diversity'])} |",
             f"| recall (pixels, equal sizes) | {_spread(pixels['recall'])} | — | above 0: the images cover some "
             f"real ones | {_met(targets['recall'])} |",
             f"| precision (pixels, equal sizes) | {_spread(pixels['precision'])} | — | reported, no target: see "
             "below | |"]
    memorised = pixels.get("memorisation")
    if memorised:
        lines.append(f"| memorised share (pixels) | {share(len(memorised['flagged']), count)} | — | 0: no near-copy of a "
                     f"training image | {_met(targets['memorised share'])} |")
    lines += ["", "Pixel precision is the share of synthetic images within some real image's k-nearest-neighbour "
                  "radius in raw pixels. With few real images those radii are small and a new image, however plausible, "
                  "rarely falls inside one; noise scores 0 too, which is why precision is not a target here and the "
                  "pictures and the diversity measures are read with it."
              + (f" Here it is {pixels['precision']['mean']:.2f}." if pixels["precision"]["mean"] == 0 else "")]
    missed = [name for name, value in targets.items() if not value]
    if missed:
        lines += ["", f"**Target(s) missed: {', '.join(missed)}.** The export does not meet what this table asks of it; "
                      "look at the images before using them."]
    lines += [""] + export_label_lines(measured) + [""]
    if memorised and memorised["flagged"]:
        lines.append(f"**{len(memorised['flagged'])} exported image(s) are near-copies of training images** (closer to "
                     "one than held-out real images come): check `report/nearest_pairs.png` after `evaluate`, and do not "
                     "share them as synthetic.")
    return lines
