"""Decode, preprocess and resize a dataset once into a prepared folder of uint8 arrays.

Prepared folder layout (what every later stage reads):
  images_hr.npy   uint8 (N, sr_size, sr_size, C)   SRGAN targets, the working-size image resized
  images_gan.npy  uint8 (N, gan_size, gan_size, C) GAN input (64×64)
  index.csv       id, file, class, label, split, patient
  report.json     counts, skipped files with reasons, duplicates, warnings, source fingerprint
  previews/<class>.png
report.json is written last: a folder without it is incomplete and is rebuilt.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from mgm_tf.data import preprocess, sources
from mgm_tf.data.decode import DecodeError, read_image
from mgm_tf.data.manifests import DatasetManifest
from mgm_tf.plots import save_grid
from mgm_tf.io import save_array, write_csv, write_json


@dataclasses.dataclass
class PreparedDataset:
    """A prepared dataset in memory: arrays plus their labels, splits and class names."""

    path: Path
    name: str
    class_names: list[str]
    channels: int
    images_hr: np.ndarray
    images_gan: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    files: list[str]
    patients: list[str]
    report: dict

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def indices(self, split: str | None = None, label: int | None = None) -> np.ndarray:
        keep = np.ones(len(self.labels), bool)
        if split is not None:
            keep &= self.splits == split
        if label is not None:
            keep &= self.labels == label
        return np.flatnonzero(keep)


def _reinhard_target(manifest: DatasetManifest, records: list[sources.Record]) -> np.ndarray | None:
    """Median Lab statistics of up to 64 training images: the reference colour for Reinhard."""
    if "reinhard" not in manifest.preprocessing or manifest.channels != 3:
        return None
    stats = []
    for record in [r for r in records if r.split == "train"][:64]:
        try:
            image = read_image(record.path, 3, min_side=manifest.working_size)
        except DecodeError:
            continue
        stats.append(preprocess.lab_stats(preprocess.resize_square(image, manifest.working_size)))
    return np.median(np.stack(stats), axis=0) if stats else None


def process_file(path: str, manifest: DatasetManifest, target) -> tuple[np.ndarray, np.ndarray]:
    """One file → (hr image, 64×64 GAN image), both uint8 with the manifest's channels."""
    image = read_image(path, manifest.channels, min_side=manifest.working_size)
    image = preprocess.apply_steps(image, manifest.preprocessing, manifest.working_size, target)
    high = preprocess.resize_square(image, manifest.sr_size)
    low = cv2.resize(image, (manifest.gan_size, manifest.gan_size), interpolation=cv2.INTER_AREA)
    return high, low.reshape(manifest.gan_size, manifest.gan_size, manifest.channels)


def _write_index(path: Path, records: list[sources.Record]) -> None:
    rows = [{"id": index, "file": record.relative, "class": record.class_name, "label": record.label,
             "split": record.split, "patient": record.patient} for index, record in enumerate(records)]
    write_csv(path, rows, ("id", "file", "class", "label", "split", "patient"))


def decode_all(manifest: DatasetManifest, records: list[sources.Record], workers: int | None = None):
    """Decode and preprocess every record in a thread pool (OpenCV releases the GIL)."""
    target = _reinhard_target(manifest, records)
    size, gan, channels = manifest.sr_size, manifest.gan_size, manifest.channels
    high = np.zeros((len(records), size, size, channels), np.uint8)
    low = np.zeros((len(records), gan, gan, channels), np.uint8)
    ok = np.zeros(len(records), bool)
    skipped = []
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(process_file, r.path, manifest, target): i for i, r in enumerate(records)}
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                           desc=f"prepare {manifest.name}", unit="img", mininterval=1.0):
            index = futures[future]
            try:
                high[index], low[index] = future.result()
                ok[index] = True
            except (DecodeError, cv2.error) as error:
                skipped.append({"file": records[index].relative, "reason": str(error)})
    return high[ok], low[ok], [r for r, good in zip(records, ok) if good], sorted(skipped, key=lambda s: s["file"])


def prepare(manifest: DatasetManifest, out_dir: str | Path, data_dir: str | Path | None = None,
            workers: int | None = None, force: bool = False) -> PreparedDataset:
    """download → scan → check → decode/preprocess/resize once → arrays + report + previews."""
    out_dir = Path(out_dir)
    if (out_dir / "report.json").exists() and not force:
        return load_prepared(out_dir)
    root = sources.download(manifest, data_dir)
    records, scan_report = sources.scan(manifest, root)
    checked = sources.check(manifest, records, scan_report)
    if checked["problems"]:
        raise ValueError(f"dataset {manifest.name} at {root} does not match its manifest ({manifest.path}):\n  "
                         + "\n  ".join(checked["problems"])
                         + f"\nexpected layout: {manifest.source.get('layout', '?')}\nfound:\n{sources.describe_tree(root)}"
                         + (f"\nalternative source: {manifest.source['alternative']}" if "alternative" in manifest.source else ""))
    high, low, kept, skipped = decode_all(manifest, records, workers)
    check_decoded_classes(manifest, records, kept, skipped)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_array(out_dir / "images_hr.npy", high)
    save_array(out_dir / "images_gan.npy", low)
    _write_index(out_dir / "index.csv", kept)
    report = {"dataset": manifest.name, "manifest": manifest.path, "class_names": manifest.class_names,
              "channels": manifest.channels, "sizes": {"working": manifest.working_size, "hr": manifest.sr_size,
                                                       "gan": manifest.gan_size},
              "preprocessing": list(manifest.preprocessing), "num_images": len(kept),
              "num_skipped": len(skipped), "skipped": skipped, "counts": sources.count_by(kept),
              "warnings": checked["warnings"], **scan_report}
    prepared = _build(out_dir, report, high, low, kept)
    write_previews(prepared)
    save_array(out_dir / RAW_PREVIEW, raw_images(manifest, root, prepared.files[:RAW_PREVIEW_COUNT]))
    write_json(out_dir / "report.json", report)
    return prepared


RAW_PREVIEW = "raw_preview.npy"  # the first files as decoded, before the modality's steps
RAW_PREVIEW_COUNT = 8


def raw_images(manifest: DatasetManifest, root: Path, files: list[str]) -> np.ndarray:
    """Files decoded and resized to the high-resolution size only, nothing else: what the
    modality's preprocessing starts from. Kept with the prepared data, so showing the
    preprocessing after a restore needs no download."""
    images = [preprocess.resize_square(read_image(root / name, manifest.channels), manifest.sr_size) for name in files]
    return np.stack(images) if images else np.zeros((0, manifest.sr_size, manifest.sr_size, manifest.channels), np.uint8)


def check_decoded_classes(manifest: DatasetManifest, records, kept, skipped) -> None:
    """Every class must keep at least one readable training image after decoding: a class
    whose files all fail would otherwise vanish from the prepared data, and every later stage,
    without a word. The error lists the class's files and why each failed."""
    reasons = {entry["file"]: entry["reason"] for entry in skipped}
    lost = []
    for name in manifest.class_names:
        if any(record.class_name == name and record.split == "train" for record in kept):
            continue
        files = [record.relative for record in records if record.class_name == name]
        listed = "; ".join(f"{file}: {reasons.get(file, 'not in the training split')}" for file in files[:10])
        lost.append(f"class {name!r}: none of its {len(files)} file(s) gives a readable training image "
                    f"({listed}{'; …' if len(files) > 10 else ''})")
    if lost:
        raise ValueError(f"dataset {manifest.name}: " + "\n  ".join(lost) + "\nReplace or remove these files; a class "
                         "without training images cannot be synthesised.")


def _build(out_dir, report, high, low, records) -> PreparedDataset:
    return PreparedDataset(out_dir, report["dataset"], list(report["class_names"]), int(report["channels"]),
                           high, low, np.array([r.label for r in records], np.int32),
                           np.array([r.split for r in records]), [r.relative for r in records],
                           [r.patient for r in records], report)


def load_prepared(out_dir: str | Path) -> PreparedDataset:
    out_dir = Path(out_dir)
    report_path = out_dir / "report.json"
    if not report_path.exists():
        raise ValueError(f"{out_dir} is not a prepared dataset (no report.json); run `python -m mgm_tf prepare`")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    with open(out_dir / "index.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    records = [sources.Record("", row["file"], int(row["label"]), row["class"], row["split"], row["patient"]) for row in rows]
    high = np.load(out_dir / "images_hr.npy")
    low = np.load(out_dir / "images_gan.npy")
    if len(high) != len(records) or len(low) != len(records):
        raise ValueError(f"{out_dir}: arrays hold {len(high)}/{len(low)} images but index.csv lists {len(records)}")
    return _build(out_dir, report, high, low, records)


def write_previews(prepared: PreparedDataset, per_class: int = 8) -> list[Path]:
    """One grid per class of the first training images (after preprocessing)."""
    paths = []
    for label, name in enumerate(prepared.class_names):
        chosen = prepared.indices(label=label)[:per_class]
        if len(chosen):
            paths.append(save_grid(prepared.images_hr[chosen], prepared.path / "previews" / f"{name}.png",
                                   titles=[Path(prepared.files[i]).stem[:18] for i in chosen], columns=per_class,
                                   title=f"{prepared.name} / {name} ({len(prepared.indices(label=label))} images)"))
    return paths


def summary_table(prepared: PreparedDataset) -> str:
    """Per-class counts by split, for the CLI and notebooks."""
    lines = [f"{'class':<20}{'train':>8}{'val':>6}{'test':>7}{'total':>8}"]
    for name in prepared.class_names:
        row = prepared.report["counts"].get(name, {"train": 0, "val": 0, "test": 0, "total": 0})
        lines.append(f"{name:<20}{row['train']:>8}{row['val']:>6}{row['test']:>7}{row['total']:>8}")
    lines.append(f"{prepared.report['num_images']} images prepared, {prepared.report['num_skipped']} unreadable "
                 "file(s) skipped" + duplicates_line(prepared.report["duplicates"]))
    return "\n".join(lines)


def duplicates_line(duplicates: list[dict]) -> str:
    """What the removed duplicates were, with one example: byte-identical copies of a file (a
    download that holds the dataset twice keeps one), and files found under two classes (no label
    can be trusted, so every copy goes)."""
    if not duplicates:
        return ""
    copies = [entry for entry in duplicates if entry["reason"] == "duplicate"]
    conflicting = [entry for entry in duplicates if entry["reason"] != "duplicate"]
    parts = []
    if copies:
        parts.append(f"{len(copies)} byte-identical copies removed (one kept), e.g. {copies[0]['file']} = "
                     f"{copies[0]['duplicate_of']}")
    if conflicting:
        parts.append(f"{len(conflicting)} file(s) with the same bytes under two classes dropped, e.g. "
                     f"{conflicting[0]['file']} = {conflicting[0]['duplicate_of']}")
    return "; " + "; ".join(parts)
