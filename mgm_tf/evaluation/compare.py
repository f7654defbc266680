"""Cross-run tables: the paper's Table 1 (losses) and Table 2 (time, parameters) as measured,
next to the metrics that say something about the images (KID, precision/recall, memorisation,
utility). Used by `python -m mgm_tf compare` and notebooks/paper_tables.ipynb."""

from __future__ import annotations

import json
from pathlib import Path

from mgm_tf.io import write_json

PAPER_TABLE_2 = {"DCGAN": "4–7 h, 0.9–1.4 M", "cGAN": "5–8 h, 1.1–1.7 M", "CycleGAN": "6–9 h, 1.4–2.0 M",
                 "SRGAN (on DCGAN)": "7–10 h, 1.7–2.3 M", "MixGANMed": "0.75 h, 0.67 M"}


def _utility_score(metrics: dict, name: str) -> float | None:
    entry = metrics.get("utility", {}).get(name, {}).get("real+synthetic")
    return entry["balanced_accuracy"]["mean"] if entry else None


def compare_runs(paths: list[Path]) -> list[dict]:
    """One row per (run, method) from each run's report/metrics.json. A method that did not run
    shows "—" for its time and parameters, not 0; a feature space the run found unable to judge
    variety (`feature_trust`) shows "—" for its KID, FID and precision/recall, as the report does."""
    table = []
    for path in paths:
        metrics_path = Path(path) / "report" / "metrics.json"
        if not metrics_path.exists():
            raise ValueError(f"{path} has no report/metrics.json; run `python -m mgm_tf evaluate --run {path}` first")
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        real = metrics.get("utility", {}).get("real", {}).get("balanced_accuracy", {}).get("mean")
        trusted = metrics.get("feature_trust", {}).get(metrics["extractors"]["domain"], {}).get("trusted", True)
        for name, row in metrics["rows"].items():
            ran = bool(row.get("stages")) or row["status"] == "measured"
            domain = row.get("domain", {}) if trusted else {}
            table.append({"run": str(path), "dataset": metrics["dataset"], "smoke": metrics.get("smoke", False),
                          "method": name, "status": row["status"], "num_images": row.get("num_images"),
                          "final_g_loss": row.get("final_g_loss"), "final_d_loss": row.get("final_d_loss"),
                          "train_seconds": row.get("train_seconds") if ran else None,
                          "trainable_parameters": row.get("trainable_parameters") if ran else None,
                          "domain_trusted": trusted,
                          "kid": domain.get("kid", {}).get("mean"), "fid_domain": domain.get("fid"),
                          "precision": _mean(domain.get("precision")), "recall": _mean(domain.get("recall")),
                          "pairwise_ssim": row.get("diversity", {}).get("pairwise_ssim"),
                          "pixel_diversity": row.get("diversity", {}).get("pixel_diversity"),
                          "label_agreement": row.get("labels", {}).get("agreement"),
                          "memorised_pixels": row.get("pixels", {}).get("memorisation", {}).get("flagged_fraction"),
                          "balanced_accuracy_real": real, "balanced_accuracy_real_plus_synthetic": _utility_score(metrics, name),
                          "extractor": metrics["extractors"]["domain"], "paper_table_2": PAPER_TABLE_2.get(name, "")})
    return table


def _mean(value):
    """A mean ± std summary's mean (or a plain number from metrics.json files of older runs)."""
    return value.get("mean") if isinstance(value, dict) else value


def _cell(value, digits=3):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def comparison_markdown(table: list[dict]) -> str:
    columns = [("dataset", "dataset"), ("method", "method"), ("final_g_loss", "G loss"), ("final_d_loss", "D loss"),
               ("train_seconds", "train s"), ("trainable_parameters", "params"), ("paper_table_2", "paper claims"),
               ("kid", "KID"), ("precision", "P"), ("recall", "R"), ("pairwise_ssim", "pairwise SSIM"),
               ("pixel_diversity", "pixel diversity"), ("label_agreement", "label agreement"),
               ("memorised_pixels", "memorised"),
               ("balanced_accuracy_real_plus_synthetic", "bal. acc. real+syn"), ("balanced_accuracy_real", "bal. acc. real")]
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        lines.append("| " + " | ".join(_cell(row[key]) for key, _ in columns) + " |")
    if not all(row["domain_trusted"] for row in table):
        lines.append("\nKID, P and R show \"—\" for runs whose domain features cannot judge variety (see each run's report).")
    if any(row["smoke"] for row in table):
        lines.append("\nRows from smoke runs check that the code runs; they are not results.")
    return "\n".join(lines)


def write_comparison(table: list[dict], out_dir: Path | None = None) -> str:
    text = comparison_markdown(table)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "compare.md").write_text(text + "\n", encoding="utf-8")
        write_json(out_dir / "compare.json", {"rows": table})
    return text
