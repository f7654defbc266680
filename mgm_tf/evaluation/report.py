"""What a person reads after a run: report/report.md (what ran, how long, how big the networks
are, the exported dataset measured, pictures) and, after `evaluate`, the comparison's figures
and tables. Losses are shown for parity with the paper's Table 1, not as quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mgm_tf.data.decode import read_image
from mgm_tf import plots
from mgm_tf import judge
from mgm_tf.card import share, write_dataset_card
from mgm_tf.evaluation.label_fidelity import evaluation_label_table, export_label_lines
from mgm_tf.evaluation.measure import measure_export, pixel_features, to_eval_images
from mgm_tf.evaluation.metrics import memorisation
from mgm_tf.evaluation.stage_value import comparison_sets, stage_figure, stage_value, stage_value_lines
from mgm_tf.io import read_csv, read_history, write_json

PAPER_CLAIMED_PARAMETERS = 0.67e6
TRAINED_STAGES = ("dcgan", "cgan", "srgan")
BASELINE_STAGES = ("baseline_cgan", "baseline_cyclegan")
KID_STAGES = {"dcgan": "DCGAN (G1)", "cgan": "MixGANMed sampler G2(z2, G1(z1), y)", "baseline_cgan": "cGAN alone"}


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


# --- evaluation figures and tables ------------------------------------------------------------

def _fmt(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def _pm(summary, digits=3):
    return "—" if not summary else f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def write_disagreements(images, labels, probabilities, class_names, path, per_class: int = 6) -> bool:
    """Per class, the synthetic images whose label the referee doubts most (lowest p(label))
    among those it assigns to another class; one row per class. False when all agree."""
    predicted = probabilities.argmax(axis=1)
    chosen, titles = [], []
    for label, name in enumerate(class_names):
        wrong = np.flatnonzero((labels == label) & (predicted != label))
        worst = wrong[np.argsort(probabilities[wrong, label])][:per_class]
        chosen += worst.tolist()
        titles += [f"{name} → {class_names[predicted[i]]}\np(label) {probabilities[i, label]:.2f}" for i in worst]
    if not chosen:
        return False
    plots.save_grid(images[chosen], path, titles=titles, columns=per_class, cell=1.9,
                    title="labelled class → the referee's class, p(label): the worst disagreements per class")
    return True


def write_evaluation_figures(run, prepared, sets: dict, domain, referee=None) -> None:
    report_dir = run.path / "report"
    real = prepared.images_gan[prepared.indices("train")]
    strips = [to_eval_images(real[:8], prepared.channels)]
    titles = ["real"] * len(strips[0])
    for name, (images, _) in sets.items():
        chosen = to_eval_images(images[:8], prepared.channels)
        strips.append(chosen)
        titles += [name] * len(chosen)
    plots.save_grid(np.concatenate(strips), report_dir / "methods_side_by_side.png", titles=titles, columns=8,
                    title="the first images of each method (not cherry-picked), titled by method; 'real': training images")
    images, labels = sets["MixGANMed"]
    if referee is not None:
        exported = to_eval_images(images, prepared.channels)
        if not write_disagreements(exported, labels, judge.classify(referee, exported, prepared.channels),
                                   prepared.class_names, report_dir / "label_disagreements.png"):
            (report_dir / "label_disagreements.png").unlink(missing_ok=True)
    held_out = prepared.images_gan[prepared.indices("test")]
    if len(held_out):
        result = memorisation(pixel_features(real), pixel_features(images), pixel_features(held_out))
        order = np.argsort(result["synthetic_nearest"])[:8]
        pairs = np.concatenate([to_eval_images(images[order], prepared.channels),
                                real[np.array(result["nearest_train"])[order]]])
        plots.save_grid(pairs, report_dir / "nearest_pairs.png", columns=len(order),
                        title="MixGANMed: the synthetic images closest to a training image (top row) and that image (bottom row)")
        plots.save_figure(plots.histograms({"synthetic → nearest train": result["synthetic_nearest"],
                                            "held-out real → nearest train": result["held_out_nearest"]},
                                           title=f"pixel distances; flag threshold {result['threshold']:.3f}"),
                          report_dir / "nearest_distances.png")
    write_kid_curves(run, report_dir / "kid_vs_time.png")


def write_kid_curves(run, path) -> bool:
    """KID (domain features) against cumulative training seconds for every monitored stage."""
    series, times = {}, {}
    for stage, label in KID_STAGES.items():
        kid_path = run.path / stage / "kid.csv"
        if not kid_path.exists():
            continue
        seconds = np.cumsum(read_history(run.path / stage / "history.csv").get("seconds", []))
        rows = [row for row in read_csv(kid_path) if int(row["epoch"]) < len(seconds)]
        if rows:
            offset = 0.0
            if stage == "cgan":  # the sampler needs G1 too: its clock starts after stage 1
                offset = float(np.sum(read_history(run.path / "dcgan" / "history.csv").get("seconds", [])))
            times[label] = [offset + seconds[int(row["epoch"])] for row in rows]
            series[label] = [float(row["kid"]) for row in rows]
    if not series:
        return False
    plt = plots._pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.2))
    for label, values in series.items():
        axis.plot(times[label], values, marker="o", label=label)
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("KID (domain features)")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    plots.save_figure(figure, path)
    return True


def evaluation_markdown(result: dict) -> list[str]:
    """Tables of report.md's evaluation section, naming extractors and sample sizes."""
    lines = ["## Evaluation", "",
             f"Real reference: {result['num_real_train']} training images; held out: {result['num_real_test']}. "
             f"Feature extractors: `{result['extractors']['domain']}` (a CNN trained on this dataset's training "
             f"split — not standard FID), pixel space (64×64 grey), InceptionV3: `{result['extractors']['inception']}`"
             + (" (standard FID/KID)." if result["extractors"]["standard_fid"] else " (no standard FID in this report)."),
             ""]
    lines += _quality_table(result) + _sr_note(result) + [""] + evaluation_label_table(result)
    if any("inception" in row for row in result["rows"].values()):
        lines += ["", f"InceptionV3 (`{result['extractors']['inception']}`): FID / KID×100", ""]
        lines += [f"- {name}: FID {row[key]['fid']:.2f}, KID×100 {100 * row[key]['kid']['mean']:.2f} ({row[key]['space']})"
                  for name, row in result["rows"].items() for key in ("inception", "inception_hr") if key in row]
    lines += ["", "### The paper's Table 1 (final losses, parity only) and Table 2 (measured cost)", "",
              "| method | final G loss | final D loss | training time (s) | trainable parameters |", "|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        if row["status"] != "measured" and not row.get("stages"):
            lines.append(f"| {name} | not run | not run | not run | not run |")
            continue
        lines.append(f"| {name} | {_fmt(row.get('final_g_loss'))} | {_fmt(row.get('final_d_loss'))} | "
                     f"{row.get('train_seconds', 0):.1f} | {row.get('trainable_parameters', 0):,} |")
    lines += ["", "### Downstream utility: the same CNN, tested on the evaluation part of the held-out real images", "",
              "| training data | n train | accuracy | balanced accuracy | macro-F1 | AUC (OvR) |", "|---|---|---|---|---|---|"]
    for name, entry in result["utility"].items():
        for setting, summary in ([(name, entry)] if "accuracy" in entry else [(f"{name}: {k}", v) for k, v in entry.items()]):
            lines.append(f"| {setting} | {summary['n_train']} | {_pm(summary['accuracy'])} | "
                         f"{_pm(summary['balanced_accuracy'])} | {_pm(summary['macro_f1'])} | {_pm(summary['auc_ovr'])} |")
    seeds = next(iter(result["utility"].values()), {}).get("seeds", 0)
    lines += ["", f"Means ± std over {seeds} seed(s). With few test images these numbers are coarse: "
                  "one image more or less correct moves accuracy by 1/n. " + _auc_note(result), "",
              "![methods](methods_side_by_side.png)", "![label disagreements](label_disagreements.png)", "![nearest pairs](nearest_pairs.png)",
              "![nearest distances](nearest_distances.png)", "![KID vs time](kid_vs_time.png)", ""]
    return lines


def _auc_note(result: dict) -> str:
    """What an AUC below 0.5 means, said when one appears: the classifier ranks held-out images
    in reverse (0: every pair of a positive and a negative image the wrong way round), which on
    a handful of held-out images happens by chance."""
    low = sorted({name for name, entry in result["utility"].items()
                  for summary in ([entry] if "accuracy" in entry else entry.values())
                  if summary["auc_ovr"]["mean"] < 0.5})
    if not low:
        return ""
    return (f"An AUC below 0.5 ({', '.join(low)}) means the classifier ranked the held-out images in reverse; with "
            f"{result.get('num_utility_test', result['num_real_test'])} held-out images that is chance (a classifier that learned nothing orders "
            "two images of each class all wrong 1 time in 6), not a finding.")


def _sr_note(result: dict) -> list[str]:
    """Why the ×4 rows look like their 64-px inputs in these columns."""
    if "SRGAN (on DCGAN)" not in result["rows"]:
        return []
    return ["", "Every row is measured at 64 px (domain and pixel columns). Super-resolution ×4 followed by the "
                "downsampling back to 64 px returns nearly its input, so `SRGAN (on DCGAN)` reads like `DCGAN` "
                "here by construction; its 256-px effect is measured on held-out real images (PSNR/SSIM next to "
                "bicubic, above) and, with `--inception imagenet`, by InceptionV3 at 256 px."]


def _trust_lines(result: dict) -> tuple[list[str], set]:
    """One line per feature space that cannot judge variety, and the set of those spaces."""
    untrusted = {space for space, verdict in result.get("feature_trust", {}).items() if not verdict["trusted"]}
    lines = [f"> **`{space}` cannot judge variety here**: {'; '.join(result['feature_trust'][space]['reasons'])}. "
             "Its KID, precision and recall are not shown." for space in sorted(untrusted)]
    return lines, untrusted


def _quality_table(result: dict) -> list[str]:
    """Diversity (pairwise SSIM, normalised-pixel distance) next to the real images' own values,
    KID and precision/recall in each feature space that can judge, memorisation."""
    trust_lines, untrusted = _trust_lines(result)
    real = result.get("real_diversity") or {}
    lines = ["### Fidelity, diversity and memorisation", ""] + trust_lines + ([""] if trust_lines else [])
    lines += [f"Real training images: pairwise SSIM {_fmt(real.get('pairwise_ssim'), 2)}, normalised-pixel diversity "
              f"{_fmt(real.get('pixel_diversity'), 2)}. A copy of one image repeated scores SSIM 1 and diversity 0; "
              "precision/recall compare equal numbers of real and synthetic images (mean ± std over subsamples).", ""]
    header = ["method", "n", "labelled", "pairwise SSIM", "pixel diversity", "KID ×100 (domain)", "P / R (domain)",
              "P / R (pixels)", "memorised (feat. / pixels)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in result["rows"].items():
        if row["status"] != "measured":
            lines.append(f"| {name} | — | — | not run |" + " |" * (len(header) - 4))
            continue
        domain, pixels, diversity = row["domain"], row["pixels"], row.get("diversity", {})
        judged = domain["space"] not in untrusted
        kid = f"{100 * domain['kid']['mean']:.2f} ± {100 * domain['kid']['std']:.2f}" if judged else "not judged"
        lines.append(f"| {name} | {row['num_images']} | {'yes' if row['labelled'] else 'no'} | "
                     f"{_fmt(diversity.get('pairwise_ssim'), 2)} | {_fmt(diversity.get('pixel_diversity'), 2)} | {kid} | "
                     f"{_pr(domain) if judged else 'not judged'} | {_pr(pixels)} | "
                     f"{_fmt(domain.get('memorisation', {}).get('flagged_fraction'), 2)} / "
                     f"{_fmt(pixels.get('memorisation', {}).get('flagged_fraction'), 2)} |")
    return lines


def _pr(space: dict) -> str:
    precision, recall = space["precision"], space["recall"]
    if isinstance(precision, dict):
        return f"{precision['mean']:.2f}±{precision['std']:.2f} / {recall['mean']:.2f}±{recall['std']:.2f}"
    return f"{precision:.2f} / {recall:.2f}"
