"""The dataset card of an export, `synthetic/README.md`: what the images are and are not, where
they come from, what every manifest column means, which labels were checked and by what, and
what was measured. The export stage writes it with the export (so the folder never lacks it);
the report stage, which measures the export, writes it again with the measurements."""

from __future__ import annotations

import datetime
from pathlib import Path

from mgm_tf import __version__, judge
from mgm_tf.io import atomic_write


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def _rate(entry: dict, key: str) -> str:
    value, (low, high) = entry[key], entry[f"{key}_interval"]
    return "—" if value is None else f"{100 * value:.0f} % [{100 * low:.0f}–{100 * high:.0f}]"


def gate_table(gates: dict, status: dict) -> list[str]:
    """Per class: label status, held-out images, the judge's recall and precision with their 95 %
    intervals, its acceptance threshold, and the referee's precision (what its agreement is read
    against)."""
    lines = ["| class | labels | held-out images | judge recall | judge precision | acceptance p(y) ≥ | "
             "referee precision |", "|---|---|---|---|---|---|---|"]
    for name, entry in gates["judge"]["classes"].items():
        threshold = status[name]["threshold"]
        lines.append(f"| {name} | {status[name]['status']} | {entry['n']} | {_rate(entry, 'recall')} | "
                     f"{_rate(entry, 'precision')} | {'—' if threshold is None else f'{threshold:.2f}'} | "
                     f"{_rate(gates['referee']['classes'][name], 'precision')} |")
    return lines


COLUMNS = {
    "file": "the PNG, relative to this folder (`<class>/<dataset>_<class>_synthetic_<n>.png`)",
    "class / label": "the class the image was generated for, by name and index",
    "label_status": "`checked`: the judge passed this class's gate on held-out real images and accepted the image's "
                    "condition and the image itself at the class's threshold; `unchecked`: nothing confirmed the "
                    "image shows its class",
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


def _labels(status: dict, gates: dict | None, referee: dict | None) -> list[str]:
    if gates is None:
        return ["## Labels", "", "**No label was checked**: the judge stage did not run.", ""]
    unchecked = [name for name, entry in status.items() if entry["status"] != "checked"]
    lines = ["## Labels: what was checked", ""]
    if unchecked:
        lines += [f"**The labels of {', '.join(unchecked)} are UNCHECKED**: those images were generated for their "
                  "class, but no classifier confirmed that they show it (see `LABELS_UNCHECKED.txt`). Do not train or "
                  "test on them as labelled data without checking them yourself.", ""]
    lines += gate_table(gates, status) + [""]
    lines += [f"- {name}: {entry['status']}" + (f" ({entry['reason']})" if entry["reason"] else
                                               f" (acceptance p(y) ≥ {entry['threshold']:.2f})")
              for name, entry in status.items()]
    if referee:
        lines += ["", f"The referee agrees with {percent(referee['agreement'])} of the exported labels: "
                      + ", ".join(f"{name} {percent(entry['agreement'])} of {entry['n']}"
                                  for name, entry in referee["per_class"].items())
                      + ". Read each against the referee's own precision on held-out real images (table above)."]
    return lines + [""]


def _measured(measured: dict | None) -> list[str]:
    if not measured:
        return ["## Measured", "", "Written by the report stage (`report/report.md`, and this card again) once it has "
                                   "measured the export.", ""]
    diversity, real, pixels = measured["diversity"], measured["real_diversity"], measured["pixels"]
    memorised = (pixels.get("memorisation") or {}).get("flagged_fraction")
    return ["## Measured (64 px grey, against the real training images)", "",
            f"- Variety: mean pairwise SSIM {diversity['pairwise_ssim']:.2f} (real images {real['pairwise_ssim']:.2f}; "
            f"1.0 would be one image repeated); normalised-pixel diversity {diversity['pixel_diversity']:.2f} "
            f"(real {real['pixel_diversity']:.2f}).",
            f"- Pixel-space precision / recall: {pixels['precision']['mean']:.2f} / {pixels['recall']['mean']:.2f}.",
            "- Memorised share (closer to a training image than held-out real images come): "
            + ("not measured (no held-out images)" if memorised is None else f"{memorised:.2f}") + ".", ""]


def write_dataset_card(folder: Path, run, prepared, count: int, measured: dict | None = None) -> Path:
    """README.md in `folder` (the export's), from the run's judge stage and, when given, what the
    report stage measured (`evaluation.measure.measure_export`)."""
    info = run.done_info("judge")
    gates = {name: info[name] for name in judge.NETWORKS} if info else None
    referee = (measured or {}).get("referee_agreement")
    lines = [f"# Synthetic {prepared.name} images ({count}) — dataset card", "",
             "**Every image in this folder is synthetic**: generated by a GAN, not an image of any patient. Each PNG says "
             "so in its text chunks (`Synthetic: true`) and its file name (`_synthetic_`).", "",
             "**Intended use**: research and method development — data-augmentation experiments, testing pipelines, "
             "teaching. **Not** for diagnosis, clinical decisions, or as evidence about any patient or population.", ""]
    lines += _provenance(run, prepared) + _labels(judge.label_status(run, prepared.class_names), gates, referee)
    lines += _measured(measured) + ["## Files and columns", "", "`manifest.csv` has one row per image:", ""]
    lines += [f"- `{name}`: {meaning}" for name, meaning in COLUMNS.items()]
    path = Path(folder) / "README.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path
