"""The checked cells of the notebooks: facts about a run that hold at any size and that a
regression would change. Each function prints its facts and raises a ValueError naming every
fact that failed, so the cell fails wherever it runs (nbval, Colab, a user's Jupyter); where
nbval also compares the output with the committed one, the printed lines are the same at every
size. Notebooks call them through `mgm_tf.notebook`."""

from __future__ import annotations

import numpy as np


def hold(facts: dict[str, bool]) -> None:
    """Print each fact; a ValueError lists those that do not hold."""
    failed = [name for name, value in facts.items() if not value]
    for name, value in facts.items():
        print(f"{'holds' if value else 'FAILS'}: {name}")
    if failed:
        raise ValueError("failed: " + "; ".join(failed))


def training_facts(run, stage: str) -> None:
    """Facts a regression would change: one history row per epoch, finite losses, sample grids."""
    from mgm_tf.io import read_csv

    rows = read_csv(run.path / stage / "history.csv")
    epochs = [int(row["epoch"]) for row in rows]
    losses = np.array([float(row[name]) for row in rows for name in ("d_loss", "g_loss")])
    hold({f"{stage}: one history row per epoch": epochs == list(range(run.done_info(stage)["epochs"])),
          f"{stage}: losses finite and below 100 in size": bool(losses.size) and bool(np.all(np.abs(losses) < 100)),
          f"{stage}: sample grids saved": any((run.path / stage / "samples").glob("epoch_*.png"))})


def export_facts(run) -> None:
    """Facts about the exported dataset that hold at any size and change with a regression: every
    class of the prepared data exported, as many images as the filter selected; the manifest's
    columns; every image marked synthetic, of the stated size, with its sha256; every row's label
    status that of its class; and the card (and folder) saying which labels are unchecked."""
    import hashlib

    from mgm_tf import judge
    from mgm_tf.data.decode import read_image
    from mgm_tf.export import MANIFEST_COLUMNS, UNCHECKED_NOTE, read_marker
    from mgm_tf.io import read_csv

    folder, prepared = run.path / "synthetic", run.prepared()
    rows = read_csv(folder / "manifest.csv")
    selected = run.done_info("filter")["selected_per_class"]
    exported = {name: sum(row["class"] == name for row in rows) for name in prepared.class_names}
    status = judge.label_status(run, prepared.class_names)
    unchecked = [name for name, entry in status.items() if entry["status"] != "checked"]
    card = (folder / "README.md").read_text(encoding="utf-8")
    expected_shape = tuple(prepared.images_hr.shape[1:3]) + (prepared.channels,)
    hold({"every class of the data exported, as many as selected": all(exported.values()) and exported == selected,
          "the manifest's columns": list(rows[0]) == list(MANIFEST_COLUMNS),
          "every image marked synthetic": all(read_marker(folder / row["file"]).get("Synthetic") == "true"
                                              and "_synthetic_" in row["file"] for row in rows),
          f"image shape {expected_shape}": read_image(folder / rows[0]["file"], prepared.channels).shape == expected_shape,
          "sha256 of every file as listed": all(hashlib.sha256((folder / row["file"]).read_bytes()).hexdigest()
                                                == row["sha256"] for row in rows),
          "no row checked in an unchecked class": all(row["class"] not in unchecked for row in rows
                                                      if row["label_status"] == "checked"),
          "every unchecked row says why": all(row["label_reason"] for row in rows if row["label_status"] != "checked"),
          "card and folder name the unchecked classes": all(name in card for name in unchecked)
          and (folder / UNCHECKED_NOTE).exists() == any(row["label_status"] != "checked" for row in rows)})


def filter_facts(run) -> None:
    """The filter kept images of every class and never more than its quota."""
    selected = run.done_info("filter")["selected_per_class"]
    per_class = run.config.filter.candidates_per_class
    quota = max(1, int(np.floor(run.config.filter.keep_fraction * per_class + 0.5)))
    hold({f"classes {sorted(selected)}: every class kept images": all(selected.values()),
          f"none above its quota of {run.config.filter.keep_fraction:.0%}": all(v <= quota for v in selected.values())})


def metric_facts(metrics: dict) -> None:
    """Facts of an evaluation that hold at any size: the final dataset was measured, every measured
    row's numbers are finite, and label agreement came from the referee."""
    measured = {name: row for name, row in metrics["rows"].items() if row["status"] == "measured"}

    def values(key):
        return [row[space][key]["mean"] if isinstance(row[space][key], dict) else row[space][key]
                for row in measured.values() for space in ("domain", "pixels")]

    hold({"MixGANMed measured": "MixGANMed" in measured, "at least 5 rows measured": len(measured) >= 5,
          "every KID finite": bool(np.all(np.isfinite(values("kid")))),
          "every precision and recall within [0, 1]": all(0 <= value <= 1 for key in ("precision", "recall")
                                                           for value in values(key)),
          "label agreement by the referee, checked on held-out images":
              metrics["label_referee"].endswith("referee)") and metrics["label_ceiling"] is not None})


def variety_facts(run) -> None:
    """The export is not one repeated image: its mean pairwise SSIM (1.0 for copies) below 0.9, and
    its pixel diversity above 0. Not judged in smoke mode, whose few steps leave near-copies."""
    import json

    from mgm_tf.colab import smoke_mode

    if smoke_mode():
        print("smoke mode: a few steps of training leave near-copies; variety is judged at demo size and above")
        return
    measured = json.loads((run.path / "report" / "export_check.json").read_text(encoding="utf-8"))
    diversity, real = measured["diversity"], measured["real_diversity"]
    print(f"export: mean pairwise SSIM {diversity['pairwise_ssim']:.2f} (real {real['pairwise_ssim']:.2f}), pixel "
          f"diversity {diversity['pixel_diversity']:.2f} (real {real['pixel_diversity']:.2f})")
    hold({"not one repeated image (pairwise SSIM below 0.9)": diversity["pairwise_ssim"] < 0.9,
          "pixel diversity above 0": diversity["pixel_diversity"] > 0})


def table_facts(table: list[dict]) -> None:
    """The cross-run table has rows; every measured row has a finite KID where its run's domain
    features can judge variety, and none (shown "—") where they cannot."""
    measured = [row for row in table if row["status"] == "measured"]
    consistent = all(np.isfinite(row["kid"]) if row["domain_trusted"] else row["kid"] is None for row in measured)
    hold({"the table has rows": len(table) > 0,
          "measured rows have a finite KID where the features can judge, none where they cannot":
              bool(measured) and consistent})
