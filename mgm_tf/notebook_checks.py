"""The checked cells of the notebooks (nbval compares their output with the committed one):
facts about a run that hold at any size and that a regression would change. Notebooks call
them through `mgm_tf.notebook`."""

from __future__ import annotations

import numpy as np


def training_facts(run, stage: str) -> None:
    """Facts a regression would change: one history row per epoch, finite losses, sample grids."""
    from mgm_tf.io import read_csv

    rows = read_csv(run.path / stage / "history.csv")
    epochs = [int(row["epoch"]) for row in rows]
    losses = [float(row[name]) for row in rows for name in ("d_loss", "g_loss")]
    print(f"{stage}: one history row per epoch: {epochs == list(range(run.done_info(stage)['epochs']))}; "
          f"losses finite: {bool(losses) and all(np.isfinite(losses))}; "
          f"sample grids saved: {any((run.path / stage / 'samples').glob('epoch_*.png'))}")


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
    print(f"every class of the data exported, as many as selected: {all(exported.values()) and exported == selected}")
    print(f"manifest columns: {list(rows[0]) == list(MANIFEST_COLUMNS)}; every image marked synthetic: "
          f"{all(read_marker(folder / row['file']).get('Synthetic') == 'true' and '_synthetic_' in row['file'] for row in rows)}")
    print(f"image shape: {read_image(folder / rows[0]['file'], prepared.channels).shape}; sha256 of every file as listed: "
          f"{all(hashlib.sha256((folder / row['file']).read_bytes()).hexdigest() == row['sha256'] for row in rows)}")
    rows_unchecked = [row for row in rows if row["label_status"] != "checked"]
    print(f"no row checked in an unchecked class, every unchecked row says why: "
          f"{all(row['class'] not in unchecked for row in rows if row['label_status'] == 'checked') and all(row['label_reason'] for row in rows_unchecked)}; "
          f"card and folder name the unchecked classes: "
          f"{all(name in card for name in unchecked) and (folder / UNCHECKED_NOTE).exists() == bool(rows_unchecked)}")


def filter_facts(run) -> None:
    """The filter kept images of every class and never more than its quota."""
    selected = run.done_info("filter")["selected_per_class"]
    per_class = run.config.filter.candidates_per_class
    quota = max(1, int(np.floor(run.config.filter.keep_fraction * per_class + 0.5)))
    print(f"classes: {sorted(selected)}; every class kept images: {all(selected.values())}; "
          f"none above its quota of {run.config.filter.keep_fraction:.0%}: {all(v <= quota for v in selected.values())}")


def metric_facts(metrics: dict) -> None:
    """Facts of an evaluation that hold at any size: the final dataset was measured, every measured
    row's numbers are finite, and label agreement came from the referee."""
    measured = {name: row for name, row in metrics["rows"].items() if row["status"] == "measured"}
    values = [row[space][key]["mean"] if isinstance(row[space][key], dict) else row[space][key]
              for row in measured.values() for space in ("domain", "pixels") for key in ("kid", "precision", "recall")]
    print(f"MixGANMed measured: {'MixGANMed' in measured}; rows measured: {len(measured) >= 5}; "
          f"KID, precision, recall finite: {all(np.isfinite(values))}")
    print(f"label agreement by the referee, checked on held-out images: "
          f"{metrics['label_referee'].endswith('referee)') and metrics['label_ceiling'] is not None}")


def table_facts(table: list[dict]) -> None:
    """The cross-run table has rows; every measured row has a finite KID where its run's domain
    features can judge variety, and none (shown "—") where they cannot."""
    measured = [row for row in table if row["status"] == "measured"]
    consistent = all(np.isfinite(row["kid"]) if row["domain_trusted"] else row["kid"] is None for row in measured)
    print(f"rows: {len(table) > 0}; measured rows with a finite KID where the features can judge, none where "
          f"they cannot: {bool(measured) and consistent}")
