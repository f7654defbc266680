"""The dataset card of an export, `synthetic/README.md`: what the images are and are not, where
they come from, what every manifest column means, which labels were checked and by what, and
what was measured. The export stage writes it with the export (so the folder never lacks it);
the report stage, which measures the export, writes it again with the measurements."""

from __future__ import annotations

import datetime
from pathlib import Path

from mgm_tf import __version__, judge
from mgm_tf.io import atomic_write, read_csv


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def share(successes: int, trials: int) -> str:
    """'18/20 = 90 % [70–97]': a count, its share and the 95 % Wilson interval."""
    if not trials:
        return "— (n = 0)"
    low, high = judge.wilson_interval(successes, trials)
    return f"{successes}/{trials} = {100 * successes / trials:.0f} % [{100 * low:.0f}–{100 * high:.0f}]"


def _rate(entry: dict, key: str) -> str:
    value, (low, high) = entry[key], entry[f"{key}_interval"]
    return "—" if value is None else f"{100 * value:.0f} % [{100 * low:.0f}–{100 * high:.0f}]"


def describe_estimate(entry: dict) -> str:
    """'87 % [71–96]' for one class of `estimated_accuracy`."""
    if entry is None:
        return "—"
    if entry.get("estimate") is None:
        return f"— ({entry.get('reason', 'not estimated')})"
    low, high = entry["interval"]
    return f"{100 * entry['estimate']:.0f} % [{100 * low:.0f}–{100 * high:.0f}]"


def threshold_text(entry: dict) -> str:
    """'≥ 0.62 (18/19 accepted held-out images right; 92 % [74–98] at a uniform class mix)'."""
    if entry.get("threshold") is None:
        return "—"
    precision = entry.get("precision")
    if not precision:
        return f"≥ {entry['threshold']:.2f}"
    low, high = precision["interval"]
    return (f"≥ {entry['threshold']:.2f} ({precision['k']}/{precision['m']} accepted calibration images right; "
            f"{100 * precision['precision']:.0f} % [{100 * low:.0f}–{100 * high:.0f}] at a uniform class mix)")


def gate_table(gates: dict, status: dict) -> list[str]:
    """Per class: label status, the judge's recall and balanced precision on the calibration part
    with their 95 % intervals, its acceptance threshold with the precision it reached, and the
    referee's recall and precision on the evaluation part (were every label right, its agreement
    would be its recall)."""
    lines = ["| class | class status | calibration images | judge recall | judge precision (uniform mix) | "
             "acceptance p(y) | evaluation images | referee recall | referee precision |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in gates["judge"]["classes"].items():
        referee = gates["referee"]["classes"][name]
        lines.append(f"| {name} | {status[name]['status']} | {entry['n']} | {_rate(entry, 'recall')} | "
                     f"{_rate(entry, 'precision')} | {threshold_text(status[name])} | {referee['n']} | "
                     f"{_rate(referee, 'recall')} | {_rate(referee, 'precision')} |")
    return lines


COLUMNS = {
    "file": "the PNG, relative to this folder (`<class>/<dataset>_<class>_synthetic_<n>.png`)",
    "class / label": "the class the image was generated for, by name and index",
    "label_status": "`checked` only when this row's class passed the gate on held-out real images, the filter dropped "
                    "what the judge refused (label_check `drop`), the row's condition was drawn for its class and "
                    "accepted, and the judge accepted the candidate and the exported image itself (p(label) at the "
                    "class's threshold, floored to refuse images between two classes; seen at 64 px); "
                    "otherwise `unchecked`",
    "label_reason": "for an unchecked row, every step that failed (empty when checked)",
    "judge_probability": "p(label) by the judge (the classifier that selected), on the exported image",
    "referee_class / referee_probability": "the class the referee (a classifier that never saw the judge's "
                                           "training images and chose nothing) assigns, and its probability",
    "candidate_id, seed": "the candidate's id and seed: `seed` regenerates the image (G1's z1 and G2's z2)",
    "lineage": "how the image was made, e.g. `dcgan(class_aware)>cgan>filter>srgan`",
    "condition_attempt / condition_draws": "which draw of G1's noise gave the condition, and how many draws were made",
    "sharpness, entropy, edges, quality_score": "the §3.4 quality filter's scores (variance of the Laplacian, "
                                                "histogram entropy, gradient magnitude) and their combined rank",
    "sha256": "of the PNG file's bytes",
    "synthetic": "always 1",
}


def _provenance(run, prepared) -> list[str]:
    manifest, config = run.manifest(), run.config
    source = prepared.report.get("source", {})
    handle = manifest.kaggle_handle or manifest.source.get("kaggle_competition") or manifest.source.get("path", "")
    version = source.get("version") or ("the embedded copy" if "path" in manifest.source else "not recorded")
    epochs = f"G1 {config.dcgan.epochs} epochs, G2 {config.cgan.epochs}, SRGAN {config.srgan.epochs}"
    return ["## Provenance", "",
            f"- Source data: {manifest.title} ({handle}; version {version}; {prepared.report['num_images']} images). "
            f"Licence: {manifest.licence}. Cite: {manifest.citation}",
            f"- Made by mgm_tf {__version__} (MixGANMed: DCGAN → conditional GAN → quality filter → SRGAN ×4) on "
            f"{datetime.date.today().isoformat()}, run `{run.path.name}`, seed {config.seed}, precision "
            f"{config.policy or config.precision}; {epochs}"
            + (" — a **smoke test**: a few steps, not results" if config.smoke else "") + ".",
            "- The full configuration is the run's `config.json`; the measurements are in its `report/`.", ""]


def independence_text(info: dict) -> str:
    """How the judge's and the referee's halves (and the held-out parts) are separated, said no
    more strongly than the dataset allows."""
    if info.get("patients_known"):
        return "no patient in common"
    return ("disjoint by image; the file names name no patient, so one patient's images may sit in both — "
            "patients unknown")


def unchecked_rows(rows: list[dict], class_name: str) -> tuple[int, int, str]:
    """(rows of the class, how many unchecked, the commonest reason among those)."""
    members = [row for row in rows if row["class"] == class_name]
    reasons = [row.get("label_reason") or "not recorded" for row in members if row.get("label_status") != "checked"]
    return len(members), len(reasons), max(set(reasons), key=reasons.count) if reasons else ""


def row_lines(rows: list[dict], class_names) -> list[str]:
    """Per class: rows checked (k/n with interval) and the most common reason a row is not."""
    lines = []
    for name in class_names:
        count, unchecked, reason = unchecked_rows(rows, name)
        lines.append(f"- {name}: {share(count - unchecked, count)} of rows checked"
                     + (f"; most common reason: {reason}" if reason else ""))
    return lines


def _referee_lines(referee: dict | None, estimate: dict | None) -> list[str]:
    if not referee:
        return []
    low, high = referee["interval"]
    lines = ["", f"The referee agrees with {share(referee['agree'], referee['n'])} of the exported labels. Raw agreement "
                 "is not the share of right labels (were every label right it would equal the referee's recall); the "
                 "estimate undoes the referee's own confusion on the evaluation images:", "",
             "| class | rows | referee agrees | estimated right labels [95 % interval] |", "|---|---|---|---|"]
    for name, entry in referee["per_class"].items():
        lines.append(f"| {name} | {entry['n']} | {share(entry['agree'], entry['n'])} | "
                     f"{describe_estimate((estimate or {}).get(name))} |")
    return lines


def _labels(status: dict, info: dict | None, rows: list[dict], referee: dict | None, estimate: dict | None) -> list[str]:
    if info is None:
        return ["## Labels", "", "**No label was checked**: the judge stage did not run.", ""]
    gates = {name: info[name] for name in judge.NETWORKS}
    unchecked = sum(row.get("label_status") != "checked" for row in rows)
    lines = ["## Labels: what was checked", ""]
    if unchecked:
        lines += [f"**{unchecked} of {len(rows)} rows are UNCHECKED** (`label_status`; `label_reason` says which step "
                  "failed): those images were generated for their class, but nothing confirmed that they show it (see "
                  "`LABELS_UNCHECKED.txt`). Do not train or test on them as labelled data without checking them yourself.",
                  ""]
    lines += row_lines(rows, list(status)) + [""]
    lines += [f"Checks ran on each image shrunk to {info.get('resolution', 64)} px with the dataset's channels. The judge "
              f"({gates['judge']['num_train']} real training images) and the referee ({gates['referee']['num_train']} "
              f"other real training images; {independence_text(info)}) were measured on two parts of the held-out "
              "images: the judge's gate and thresholds on the calibration part, the referee's figures on the "
              "evaluation part.", ""]
    lines += gate_table(gates, status) + [""]
    lines += [f"- {name}: class {entry['status']}" + (f" ({entry['reason']})" if entry["reason"] else "")
              for name, entry in status.items()]
    missing = {name: gates[name].get("missing_classes") for name in judge.NETWORKS if gates[name].get("missing_classes")}
    lines += [f"- The {name}'s half holds no image of {classes}: it cannot recognise them." for name, classes in missing.items()]
    return lines + _referee_lines(referee, estimate) + [""]


def _measured(measured: dict | None) -> list[str]:
    if not measured:
        return ["## Measured", "", "Written by the report stage (`report/report.md`, and this card again) once it has "
                                   "measured the export.", ""]
    diversity, real, pixels = measured["diversity"], measured["real_diversity"], measured["pixels"]
    memorised = pixels.get("memorisation") or {}
    count = measured["num_images"]
    return ["## Measured (64 px grey, against the real training images)", "",
            f"- Variety ({count} images): mean pairwise SSIM {diversity['pairwise_ssim']:.2f} (real images "
            f"{real['pairwise_ssim']:.2f}; 1.0 would be one image repeated); normalised-pixel diversity "
            f"{diversity['pixel_diversity']:.2f} (real {real['pixel_diversity']:.2f}).",
            f"- Pixel-space precision / recall: {pixels['precision']['mean']:.2f} ± {pixels['precision']['std']:.2f} / "
            f"{pixels['recall']['mean']:.2f} ± {pixels['recall']['std']:.2f} (mean ± std over subsamples of "
            f"{min(pixels['num_real'], pixels['num_synthetic'])} images each side).",
            "- Memorised share (closer to a training image than held-out real images come): "
            + (share(len(memorised["flagged"]), count) if memorised.get("flagged") is not None
               else "not measured (no held-out images)") + ".", ""]


def write_dataset_card(folder: Path, run, prepared, count: int, measured: dict | None = None) -> Path:
    """README.md in `folder` (the export's), from the run's judge stage and, when given, what the
    report stage measured (`evaluation.measure.measure_export`)."""
    info = run.done_info("judge") or None
    manifest = Path(folder) / "manifest.csv"
    rows = read_csv(manifest) if manifest.exists() else []
    referee, estimate = ((measured or {}).get(key) for key in ("referee_agreement", "estimated_accuracy"))
    lines = [f"# Synthetic {prepared.name} images ({count}) — dataset card", "",
             "**Every image in this folder is synthetic**: generated by a GAN, not an image of any patient. Each PNG says "
             "so in its text chunks (`Synthetic: true`) and its file name (`_synthetic_`).", "",
             "**Intended use**: research and method development — data-augmentation experiments, testing pipelines, "
             "teaching. **Not** for diagnosis, clinical decisions, or as evidence about any patient or population.", ""]
    lines += _provenance(run, prepared) + _labels(judge.label_status(run, prepared.class_names), info, rows, referee, estimate)
    lines += _measured(measured) + ["## Files and columns", "", "`manifest.csv` has one row per image:", ""]
    lines += [f"- `{name}`: {meaning}" for name, meaning in COLUMNS.items()]
    path = Path(folder) / "README.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path
