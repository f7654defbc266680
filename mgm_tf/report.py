"""report/report.md for a run: what was run, how long it took, how big the networks are, and
pictures of the result. Losses are shown for parity with the paper's Table 1, not as quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAPER_CLAIMED_PARAMETERS = 0.67e6
TRAINED_STAGES = ("dcgan", "cgan", "srgan")
BASELINE_STAGES = ("baseline_cgan", "baseline_cyclegan")


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
    from mgm_tf.plots import curves, save_figure, save_grid
    from mgm_tf.stages import read_history

    lines = []
    for stage in TRAINED_STAGES:
        history = read_history(run.path / stage / "history.csv")
        series = {name: history[name] for name in ("d_loss", "g_loss") if history.get(name)}
        if series:
            save_figure(curves(series, title=f"{stage} losses"), report_dir / f"losses_{stage}.png")
            lines.append(f"![{stage} losses](losses_{stage}.png)")
    synthetic = run.path / "synthetic"
    if (synthetic / "manifest.csv").exists():
        from mgm_tf.decode import read_image
        from mgm_tf.export import read_manifest_rows

        rows = read_manifest_rows(synthetic / "manifest.csv")
        for label, name in enumerate(prepared.class_names):
            files = [row["file"] for row in rows if int(row["label"]) == label][:6]
            real = prepared.images_hr[prepared.indices("train", label)[:6]]
            fake = [read_image(synthetic / file, prepared.channels) for file in files]
            if len(real) and fake:
                save_grid(np.concatenate([real, np.stack(fake)]), report_dir / f"real_vs_synthetic_{name}.png",
                          columns=6, title=f"{name}: top real (training), bottom synthetic")
                lines.append(f"![real vs synthetic {name}](real_vs_synthetic_{name}.png)")
    return lines


def export_check_lines(measured: dict) -> list[str]:
    """report.md's verdict on the exported dataset, every number next to its real reference."""
    from mgm_tf.label_fidelity import describe

    diversity, real, pixels = measured["diversity"], measured["real_diversity"], measured["pixels"]
    lines = ["## The exported dataset, measured", "",
             "| measure | synthetic | real training images | what good looks like |", "|---|---|---|---|",
             f"| mean pairwise SSIM (64 px grey) | {diversity['pairwise_ssim']:.2f} | {real['pairwise_ssim']:.2f} | "
             "at most 0.2 above real (1.0: one image repeated) |",
             f"| normalised-pixel diversity | {diversity['pixel_diversity']:.2f} | {real['pixel_diversity']:.2f} | "
             "at least half the real value (0: copies) |",
             f"| precision / recall (pixels, equal sizes) | {pixels['precision']['mean']:.2f} / "
             f"{pixels['recall']['mean']:.2f} | — | precision > 0: images lie near real ones (noise scores 0); "
             "recall > 0: they cover some real images |"]
    memorised = pixels.get("memorisation")
    if memorised:
        lines.append(f"| memorised share (pixels) | {memorised['flagged_fraction']:.2f} | — | 0: no near-copy of a "
                     "training image |")
    lines.append("")
    if "labels" in measured:
        ceiling = measured.get("label_ceiling")
        lines.append(f"Label agreement of the exported images with the label judge: {describe(measured['labels'])}"
                     + (f"; the same judge on held-out real images: {describe(ceiling)}." if ceiling else "."))
    verdict = measured.get("judge")
    if verdict and not verdict["trusted"]:
        lines.append(f"**The label judge cannot check these labels** ({verdict['reason']}): the labels come from the "
                     "generators' conditioning alone and no image was drawn or dropped by the judge. Its agreement "
                     "numbers above mean little.")
    if memorised and memorised["flagged"]:
        lines.append(f"**{len(memorised['flagged'])} exported image(s) are near-copies of training images** (closer to "
                     "one than held-out real images come): check `report/nearest_pairs.png` after `evaluate`, and do not "
                     "share them as synthetic.")
    return lines


def write_run_report(run, prepared) -> Path:
    report_dir = run.path / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    config = run.config
    lines = [f"# MixGANMed run: {prepared.name}", ""]
    if config.smoke:
        lines += ["> **Smoke test**: tiny epochs and sizes. These outputs show the code runs; they are not results.", ""]
    lines += [f"Dataset `{prepared.name}`: {prepared.report['num_images']} images "
              f"({prepared.report['num_skipped']} unreadable files skipped), classes "
              f"{', '.join(prepared.class_names)}; precision policy `{run.done_info('dcgan').get('policy', '?')}`.", ""]
    counts = prepared.report["counts"]
    lines += _table(["class", "train", "test", "total"],
                    [[name, counts[name]["train"], counts[name]["test"], counts[name]["total"]] for name in counts])
    rows = stage_rows(run)
    total = sum(row["g_params"] + row["d_params"] for row in rows)
    lines += ["", "## Training (losses for parity with the paper's Table 1 — not a quality measure)", ""]
    lines += _table(["stage", "epochs", "train time (s)", "final G loss", "final D loss", "G params", "D params"],
                    [[r["stage"], r["epochs"], f"{r['train_seconds']:.1f}", f"{r['g_loss']:.3f}", f"{r['d_loss']:.3f}",
                      f"{r['g_params']:,}", f"{r['d_params']:,}"] for r in rows])
    lines += ["", f"Trainable parameters of all trained networks: **{total:,}** (the paper claims 0.67 M for the "
              f"whole model; its §3.7 discriminator alone has 678,337 with 4×4 kernels).", ""]
    evaluation = run.done_info("srgan").get("evaluation")
    if evaluation and evaluation.get("status"):
        lines += ["## Super-resolution", f"PSNR/SSIM {evaluation['status']}.", ""]
    elif evaluation:
        lines += [f"## Super-resolution on {evaluation['num_images']} held-out real images ({evaluation['split']} split)",
                  f"VGG19 weights for the perceptual loss: {run.done_info('srgan').get('vgg_weights')}.", ""]
        lines += _table(["method", "PSNR (dB)", "SSIM"],
                        [[name, f"{evaluation[name]['psnr']['mean']:.2f} ± {evaluation[name]['psnr']['std']:.2f}",
                          f"{evaluation[name]['ssim']['mean']:.3f} ± {evaluation[name]['ssim']['std']:.3f}"]
                         for name in ("bicubic", "srgan")])
    selected = run.done_info("filter").get("selected_per_class")
    if selected:
        lines += ["", f"## Quality filter: kept {run.config.filter.keep_fraction:.0%} of "
                      f"{run.config.filter.candidates_per_class} candidates per class: {selected}", "",
                  "![scores](../filter/scores.png)", "![best and worst](../filter/best_and_worst.png)"]
    if (run.path / "synthetic" / "manifest.csv").exists():
        from mgm_tf.data import write_json
        from mgm_tf.evaluate import measure_export

        measured = measure_export(run, prepared)
        write_json(report_dir / "export_check.json", measured)
        lines += [""] + export_check_lines(measured)
    lines += ["", "## Figures", ""] + _figures(run, prepared, report_dir)
    lines += ["", "Synthetic images are in `synthetic/<class>/`, listed in `synthetic/manifest.csv`; each PNG is "
                  "marked synthetic in its text chunks. Losses say nothing about image quality."]
    metrics_path = report_dir / "metrics.json"
    if metrics_path.exists():
        import json

        from mgm_tf.evaluation_report import evaluation_markdown

        lines += [""] + evaluation_markdown(json.loads(metrics_path.read_text(encoding="utf-8")))
    else:
        lines += ["Run `python -m mgm_tf evaluate --run RUN` for FID/KID, precision/recall, memorisation and utility.", ""]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
