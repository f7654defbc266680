"""What `evaluate` adds to a run's report: the comparison's figures (methods side by side, label
disagreements, nearest real neighbours, KID over training time) and the markdown of its tables
(quality and variety per method, downstream utility, label agreement, losses for parity)."""

from __future__ import annotations

import numpy as np

from mgm_tf import classifier, plots
from mgm_tf.evaluation.label_fidelity import evaluation_label_table
from mgm_tf.evaluation.measure import pixel_features, to_eval_images
from mgm_tf.evaluation.metrics import memorisation
from mgm_tf.io import read_csv, read_history

KID_STAGES = {"dcgan": "DCGAN (G1)", "cgan": "MixGANMed sampler G2(z2, G1(z1), y)", "baseline_cgan": "cGAN alone"}


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


def write_evaluation_figures(run, prepared, sets: dict, domain, referee=None, domain_trust: dict | None = None) -> None:
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
        if not write_disagreements(exported, labels, classifier.classify(referee, exported, prepared.channels),
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
    write_kid_curves(run, report_dir / "kid_vs_time.png", domain_trust)


def write_kid_curves(run, path, trust: dict | None = None) -> bool:
    """KID (domain features) against cumulative training seconds for every monitored stage. Where
    the domain features cannot judge variety (`trust`), the figure says so and plots no KID, as
    the tables show "—" for it."""
    if trust is not None and not trust["trusted"]:
        return _untrusted_figure(path, "KID (domain features) against training time: —\n" + "; ".join(trust["reasons"]))
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


def _untrusted_figure(path, text: str) -> bool:
    """A figure that states why it shows no values, where a plot of them would mislead."""
    import textwrap

    plt = plots._pyplot()
    figure, axis = plt.subplots(figsize=(6, 1.6))
    axis.axis("off")
    axis.text(0.5, 0.5, "\n".join(textwrap.fill(line, 90) for line in text.split("\n")), ha="center", va="center",
              fontsize=8, transform=axis.transAxes)
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
