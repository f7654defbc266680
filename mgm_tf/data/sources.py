"""Find a dataset's files: kagglehub download, folder scan (and a manifest inferred from a
user's folder), duplicates, splits and checks.

`download → scan → check` is the same for every manifest. Decoding and resizing happen once,
in `mgm_tf.data.prepare`; the tf.data input pipelines live in `mgm_tf.data.tfdata`.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import os
import re
from pathlib import Path

from mgm_tf.data.decode import IMAGE_EXTENSIONS, infer_channels
from mgm_tf.data.manifests import DatasetManifest, is_pinned, package_path, parse_manifest

IGNORED_PARTS = ("__MACOSX",)


@dataclasses.dataclass(frozen=True)
class Record:
    """One image file of a dataset, labelled and assigned to a split."""

    path: str          # absolute path
    relative: str      # path relative to the dataset root, as in the download
    label: int
    class_name: str
    split: str = "train"
    patient: str = ""


def resolve_version(path: str) -> str:
    match = re.search(r"versions[/\\](\d+)", str(path))
    return match.group(1) if match else ""


def download(manifest: DatasetManifest, data_dir: str | Path | None = None) -> Path:
    """The dataset's root folder: `data_dir` if given, the packaged path, or a kagglehub download.

    kagglehub handles credentials itself (Colab secrets, ~/.kaggle/kaggle.json or `kagglehub.login()`)
    and serves a pinned handle from its cache (KAGGLEHUB_CACHE) without contacting Kaggle.
    """
    if data_dir is not None:
        root = Path(data_dir)
    elif "path" in manifest.source:
        source = manifest.source["path"]
        root = package_path(source.split(":", 1)[1]) if source.startswith("package:") else Path(source)
    elif "kaggle" in manifest.source:
        root = kaggle_dataset(manifest)
    elif "kaggle_competition" in manifest.source:
        import kagglehub  # imported here: only needed for downloads

        root = Path(kagglehub.competition_download(manifest.source["kaggle_competition"]))
    else:
        raise ValueError(f"{manifest.path}: [source] needs 'kaggle', 'kaggle_competition' or 'path'")
    if not root.is_dir():
        raise ValueError(f"dataset {manifest.name}: source folder {root} does not exist")
    return root


def kaggle_dataset(manifest: DatasetManifest) -> Path:
    """kagglehub's download of the manifest's handle. A pinned version that cannot be had fails
    with the handle named and how to choose another; an unpinned handle needs Kaggle to say
    which version is the latest, so offline it falls back to the newest version in the cache."""
    import kagglehub  # imported here: only needed for downloads

    handle = manifest.kaggle_handle
    try:
        return Path(kagglehub.dataset_download(handle))
    except Exception as error:  # kagglehub raises HTTP, auth and connection errors of several kinds
        cached = None if is_pinned(handle) else newest_cached(handle)
        if cached is not None:
            print(f"note: Kaggle could not be asked for the latest version of {handle} ({type(error).__name__}); "
                  f"using version {resolve_version(str(cached))} from the kagglehub cache")
            return cached
        raise ValueError(
            f"dataset {manifest.name}: kagglehub could not download {handle} ({type(error).__name__}: {error}). "
            "Check the Kaggle credentials and network; if the version does not exist, choose another with "
            f"--handle {handle.split('/versions/')[0]} (latest) or --handle {handle.split('/versions/')[0]}/versions/N "
            "(notebooks: the handle field of the options form).") from error


def newest_cached(handle: str) -> Path | None:
    """The newest complete version of an unpinned handle in the kagglehub cache, or None."""
    owner, slug = handle.split("/")[:2]
    base = kagglehub_cache_dir() / "datasets" / owner / slug
    versions = sorted((int(marker.stem) for marker in base.glob("*.complete") if marker.stem.isdigit()), reverse=True)
    for version in versions:
        if (base / "versions" / str(version)).is_dir():
            return base / "versions" / str(version)
    return None


def list_files(root: Path) -> list[Path]:
    """All files under root, sorted, skipping hidden files and macOS resource forks."""
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in IGNORED_PARTS)
        files.extend(Path(directory) / name for name in names if not name.startswith("."))
    return sorted(files)


COLAB_CACHE = os.environ.get("COLAB_CACHE_MOUNT_FOLDER", "/kaggle/input")  # kagglehub's mount in Colab


def recorded_version(root: Path, handle: str = "") -> str:
    """The dataset version a download is: from kagglehub's cache path (…/versions/N). In Colab,
    kagglehub mounts datasets from Colab's own cache at /kaggle/input/<slug>, a path without the
    version: a pinned handle's version is the one asked for; an unpinned one is not known."""
    version = resolve_version(str(root))
    if version or not str(root).startswith(COLAB_CACHE):
        return version
    pinned = resolve_version(handle) if handle and is_pinned(handle) else ""
    return f"{pinned} (Colab cache)" if pinned else "unknown (Colab cache: kagglehub does not say which version)"


def fingerprint(root: Path, files: list[Path], handle: str = "") -> dict:
    """What was downloaded: version, count and a hash of (relative path, size) pairs."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return {"root": str(root), "version": recorded_version(root, handle), "num_files": len(files),
            "sha256": digest.hexdigest()}


def _class_by_folder(manifest: DatasetManifest, relative: Path) -> int | None:
    """The class whose folder name is the nearest parent of the file (case-insensitive)."""
    lookup = {folder.lower(): index for index, spec in enumerate(manifest.classes) for folder in spec.folders}
    for part in reversed(relative.parts[:-1]):
        if part.lower() in lookup:
            return lookup[part.lower()]
    return None


def _labels_from_csv(manifest: DatasetManifest, root: Path) -> dict[str, int]:
    """file stem → class index from a labels CSV (EyePACS trainLabels.csv)."""
    spec = manifest.labels
    found = sorted(root.rglob(spec.csv))
    if not found:
        raise ValueError(f"dataset {manifest.name}: labels file {spec.csv} not found under {root}")
    value_to_class = {value: index for index, cls in enumerate(manifest.classes) for value in cls.values}
    labels = {}
    with open(found[0], newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            value = str(row.get(spec.label_column, "")).strip()
            if value in value_to_class:
                labels[Path(row[spec.file_column]).stem] = value_to_class[value]
    return labels


def _split_of(manifest: DatasetManifest, relative: Path) -> str:
    parts = [part.lower() for part in relative.parts[:-1]]
    if any(part in (name.lower() for name in manifest.split.test) for part in parts):
        return "test"
    if any(part in (name.lower() for name in manifest.split.val) for part in parts):
        return "val"
    return "train"


def _content_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def remove_duplicates(records: list[Record]) -> tuple[list[Record], list[dict]]:
    """Drop byte-identical files (Kaggle uploads often hold the dataset twice). Only files of equal
    size are hashed. Keeps the shortest path; a file present under two classes is dropped entirely."""
    by_size = collections.defaultdict(list)
    for record in records:
        by_size[os.path.getsize(record.path)].append(record)
    dropped, keep = [], {record.path for record in records}
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_hash = collections.defaultdict(list)
        for record in group:
            by_hash[_content_hash(Path(record.path))].append(record)
        for copies in by_hash.values():
            if len(copies) < 2:
                continue
            copies.sort(key=lambda r: (len(r.relative), r.relative))
            conflicting = len({r.label for r in copies}) > 1
            for record in copies[0 if conflicting else 1:]:
                keep.discard(record.path)
                dropped.append({"file": record.relative, "duplicate_of": copies[0].relative,
                                "reason": "same bytes under different classes" if conflicting else "duplicate"})
    return [record for record in records if record.path in keep], dropped


def scan(manifest: DatasetManifest, root: str | Path) -> tuple[list[Record], dict]:
    """Map files to classes by the manifest. Returns records and a scan report (unmapped files,
    duplicates, source fingerprint) so nothing is dropped silently."""
    root = Path(root)
    files = list_files(root)
    csv_labels = _labels_from_csv(manifest, root) if manifest.labels else None
    records, unmapped = [], []
    for path in files:
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        relative = path.relative_to(root)
        label = csv_labels.get(path.stem) if csv_labels is not None else _class_by_folder(manifest, relative)
        if label is None:
            unmapped.append(relative.as_posix())
            continue
        records.append(Record(str(path), relative.as_posix(), label, manifest.classes[label].name,
                              _split_of(manifest, relative), manifest.patient_id(path.name)))
    records, duplicates = remove_duplicates(records)
    records = assign_splits(manifest, records)
    records, moved = separate_patients(records)
    report = {"source": fingerprint(root, files, manifest.kaggle_handle), "num_records": len(records),
              "unmapped_images": unmapped, "duplicates": duplicates, "patients_moved": moved}
    return records, report


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def assign_splits(manifest: DatasetManifest, records: list[Record]) -> list[Record]:
    """Fixed, patient-level splits. With rule "folders" the download's folders decide; files
    outside them (or every file, with rule "seeded") are split by patient: within each class,
    patients are ordered by a seeded hash and the first `test_fraction` go to test. Hashing
    (not shuffling) keeps a patient's split stable when other files are added or removed."""
    rule = manifest.split.rule
    if rule == "folders" and any(r.split == "test" for r in records):
        return records
    patients_by_class = collections.defaultdict(set)
    majority = {}
    for patient, group in _group_by_patient(records).items():
        majority[patient] = collections.Counter(r.label for r in group).most_common(1)[0][0]
        patients_by_class[majority[patient]].add(patient)
    test_patients = set()
    for patients in patients_by_class.values():
        ordered = sorted(patients, key=lambda p: (_unit_hash(f"{manifest.split.seed}:{p}"), p))
        count = round(manifest.split.test_fraction * len(ordered))
        if len(ordered) >= 2:
            count = min(max(count, 1), len(ordered) - 1)
        test_patients.update(ordered[:count])
    return [dataclasses.replace(r, split="test" if r.patient in test_patients else "train") for r in records]


def separate_patients(records: list[Record]) -> tuple[list[Record], list[dict]]:
    """A patient whose images sit in two splits of a download (the `folders` rule) would let a
    classifier or a memorisation check see the same person in training and test. Each such
    patient is moved whole to the split holding most of their images (ties go to train, so the
    test set never gains images), and every move is returned for the prepared report."""
    moved, target = [], {}
    for patient, group in _group_by_patient(records).items():
        splits = collections.Counter(r.split for r in group)
        if len(splits) > 1:
            side = max(splits, key=lambda split: (splits[split], split == "train", split))
            target[patient] = side
            moved.append({"patient": patient, "to": side, "images_moved": sum(n for s, n in splits.items() if s != side),
                          "from": sorted(s for s in splits if s != side)})
    return [dataclasses.replace(r, split=target.get(r.patient, r.split)) for r in records], moved


def _group_by_patient(records: list[Record]) -> dict[str, list[Record]]:
    groups = collections.defaultdict(list)
    for record in records:
        groups[record.patient].append(record)
    return groups


def count_by(records: list[Record]) -> dict[str, dict[str, int]]:
    """{class: {split: count, 'total': count}} in manifest order of appearance."""
    table: dict[str, dict[str, int]] = {}
    for record in records:
        row = table.setdefault(record.class_name, {"train": 0, "val": 0, "test": 0, "total": 0})
        row[record.split] += 1
        row["total"] += 1
    return table


def check(manifest: DatasetManifest, records: list[Record], scan_report: dict) -> dict:
    """Problems (missing or empty classes: preparing would be wrong) and warnings (counts that
    differ from the manifest, unmapped images, patients in two splits)."""
    counts = count_by(records)
    problems, warnings = [], []
    for spec in manifest.classes:
        found = counts.get(spec.name, {}).get("total", 0)
        if found == 0:
            where = ", ".join(spec.folders) or f"CSV values {', '.join(spec.values)}"
            problems.append(f"class {spec.name!r}: no images found (looked for folders/labels: {where})")
        elif spec.expected and found != spec.expected:
            warnings.append(f"class {spec.name!r}: {found} images, manifest expects {spec.expected}")
    if manifest.expected_total and records and len(records) != manifest.expected_total:
        warnings.append(f"{len(records)} images in all, manifest expects {manifest.expected_total}")
    if scan_report["unmapped_images"]:
        sample = ", ".join(scan_report["unmapped_images"][:5])
        warnings.append(f"{len(scan_report['unmapped_images'])} image file(s) in no class folder, e.g. {sample}")
    moved = scan_report.get("patients_moved", [])
    if moved:
        images = sum(entry["images_moved"] for entry in moved)
        warnings.append(f"{len(moved)} patient(s) were in more than one split of the download; {images} image(s) moved "
                        f"so each patient is in one split, e.g. {[entry['patient'] for entry in moved[:3]]}")
    return {"counts": counts, "problems": problems, "warnings": warnings}


def describe_tree(root: Path, depth: int = 3, limit: int = 20) -> str:
    """A short listing of what a download holds, for error messages about layout mismatches."""
    lines = []
    for directory, subdirs, names in os.walk(root):
        level = len(Path(directory).relative_to(root).parts)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))[:limit] if level < depth else []
        relative = Path(directory).relative_to(root).as_posix()
        lines.append(f"  {relative}/ ({len(names)} files)")
        if len(lines) >= limit:
            lines.append("  ...")
            break
    return "\n".join(lines)


def kagglehub_cache_dir() -> Path:
    return Path(os.environ.get("KAGGLEHUB_CACHE", Path.home() / ".cache" / "kagglehub"))


def availability(manifest: DatasetManifest) -> str:
    """'embedded', 'local', 'missing', 'cached' (kagglehub holds the pinned version, or for an
    unpinned handle 'cached vN'), 'download' or 'download (latest)'."""
    source = manifest.source
    if "path" in source:
        return "embedded" if source["path"].startswith("package:") else ("local" if Path(source["path"]).is_dir() else "missing")
    if "kaggle" in source:
        handle = manifest.kaggle_handle
        if not is_pinned(handle):
            cached = newest_cached(handle)
            return f"cached v{resolve_version(str(cached))}" if cached else "download (latest)"
        owner, slug, _, version = handle.split("/")
        marker = kagglehub_cache_dir() / "datasets" / owner / slug / f"{version}.complete"
        return "cached" if marker.exists() else "download"
    if "kaggle_competition" in source:
        slug = source["kaggle_competition"]
        return "cached" if (kagglehub_cache_dir() / "competitions" / f"{slug}.complete").exists() else "download"
    return "download"


SPLIT_NAMES = ("train", "val", "test")


def folder_manifest(root: str | Path, channels: int | None = None, name: str = "") -> DatasetManifest:
    """A manifest inferred from a user's folder: one subfolder per class (optionally under train/test).

    Channels are inferred from the images unless given: 1 when every sampled image is grey.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data-dir {root} is not a folder")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
    split_folders = [p for p in subfolders if p.name.lower() in SPLIT_NAMES]
    class_parents = split_folders if split_folders else [root]
    class_names = sorted({p.name for parent in class_parents for p in parent.iterdir()
                          if p.is_dir() and not p.name.startswith((".", "__"))})
    if not class_names:
        raise ValueError(f"{root}: expected one subfolder per class (e.g. {root}/normal/*.png), found none")
    if channels is None:
        channels = infer_channels(root)
    data = {
        "name": name or root.name, "title": f"Folder dataset {root}", "modality": "unknown (user folder)",
        "channels": channels, "citation": "user data", "licence": "user data",
        "source": {"path": str(root.resolve()), "layout": "<class>/* or {train,test}/<class>/*"},
        "split": {"rule": "folders" if split_folders else "seeded", "test": ["test"], "val": ["val"],
                  "test_fraction": 0.2, "seed": 0},
        "classes": [{"name": class_name, "folders": [class_name]} for class_name in class_names],
    }
    return parse_manifest(data, root)
