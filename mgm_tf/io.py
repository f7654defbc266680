"""Files of a run directory, written so that a crash at any moment leaves the old file or the
new one, never half of one (temporary file in the same folder + `os.replace`), and read back
in one way. Light on purpose: the CLI's `datasets`/`info` import it without TensorFlow."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

PREVIOUS_SUFFIX = ".previous"


def atomic_write(path: Path, content: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def save_array(path: Path, array) -> None:
    """Atomic .npy write (numpy appends .npy to other names, so the temporary keeps it)."""
    import numpy as np

    temporary = path.with_name(path.stem + ".tmp.npy")
    np.save(temporary, array)
    os.replace(temporary, path)


def write_csv(path: Path, rows: list[dict], columns) -> None:
    """Atomic CSV write of dict rows in the given column order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a CSV file as dicts (candidates, selections, manifests, histories)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_json(path: Path, content: dict) -> None:
    """Atomic JSON write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)


def read_history(path) -> dict[str, list[float]]:
    """history.csv as numeric columns, rows as written (the callbacks keep one row per epoch)."""
    try:
        rows = read_csv(path)
    except FileNotFoundError:
        return {}
    columns = {}
    for key in (rows[0].keys() if rows else []):
        values = [_number(row.get(key)) for row in rows]
        if all(value is not None for value in values):
            columns[key] = values
    return columns


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def replace_directory(new: Path, final: Path) -> None:
    """Put the finished folder `new` in place of `final`. A folder cannot be replaced in one
    rename, so the old one is first renamed aside: a crash between the two renames leaves
    `<final>.previous` whole, and `recover_directory` puts it back."""
    aside = final.with_name(final.name + PREVIOUS_SUFFIX)
    shutil.rmtree(aside, ignore_errors=True)
    if final.exists():
        os.replace(final, aside)
    os.replace(new, final)
    shutil.rmtree(aside, ignore_errors=True)


def recover_directory(final: Path) -> None:
    """Undo a `replace_directory` cut short between its renames."""
    aside = final.with_name(final.name + PREVIOUS_SUFFIX)
    if aside.exists() and not final.exists():
        os.replace(aside, final)
