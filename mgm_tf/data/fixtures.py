"""Tiny offline copies of each Kaggle dataset's folder layout, placed in a kagglehub cache.

Used by the tests and by the dataset notebooks in smoke mode: with KAGGLEHUB_CACHE pointing at
the folder built here, the real `kagglehub.dataset_download(handle)` call returns the tiny tree
without contacting Kaggle (files under datasets/<owner>/<slug>/versions/<N>/ plus the empty
marker datasets/<owner>/<slug>/<N>.complete). Images are synthetic: smooth shapes with some
texture and a class-dependent pattern, so classes differ and preprocessing has work to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mgm_tf.data.manifests import load_manifest

# Per dataset: (relative path template per class folder, file-name pattern, extension, extra copies)
# {split} and {folder} are filled in; names mimic each download's real naming.
LAYOUTS = {
    "pneumonia_xray": {"dirs": ["chest_xray/{split}/{folder}", "chest_xray/chest_xray/{split}/{folder}"],
                       "splits": ["train", "test", "val"], "ext": ".jpeg",
                       "names": {"NORMAL": "IM-{n:04d}-{k:04d}", "PNEUMONIA": "person{n}_bacteria_{k}"},
                       "extra": ["__MACOSX/chest_xray/._IM-0001-0001.jpeg"]},
    "diabetic_retinopathy": {"dirs": ["colored_images/{folder}"], "splits": [None], "ext": ".png",
                             "names": {}, "extra": ["train.csv"]},
    "brain_tumor_mri": {"dirs": ["{folder}", "brain_tumor_dataset/{folder}"], "splits": [None], "ext": ".jpg",
                        "names": {"no": "N{k}", "yes": "Y{k}"}, "extra": []},
    "skin_cancer": {"dirs": ["{split}/{folder}"], "splits": ["train", "test"], "ext": ".jpg", "names": {}, "extra": []},
    "leukemia": {"dirs": ["{folder}"], "splits": [None], "ext": ".jpg", "names": {}, "extra": []},
    # labelled by a CSV (EyePACS): <patient>_<left|right>.jpeg in one folder, the grade in the CSV
    "diabetic_retinopathy_eyepacs": {"csv": "trainLabels_cropped.csv",
                                     "folder": "resized_train_cropped/resized_train_cropped"},
    "diabetic_retinopathy_competition": {"csv": "trainLabels.csv", "folder": "train"},
}


def synthetic_image(rng: np.random.Generator, label: int, channels: int, size=(96, 112)) -> np.ndarray:
    """A smooth blob image with noise texture; the class shifts the blob size and brightness."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = rng.uniform(0.35, 0.65, 2) * (height, width)
    radius = (0.18 + 0.08 * label) * min(size) * rng.uniform(0.85, 1.15)
    blob = np.exp(-(((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * radius ** 2)))
    base = 40 + 150 * blob + 12 * label + rng.normal(0, 8, size)
    if channels == 1:
        return np.clip(base, 0, 255).astype(np.uint8)
    tint = np.array([1.0, 0.75 - 0.1 * label, 0.6 + 0.1 * label])
    return np.clip(base[:, :, None] * tint, 0, 255).astype(np.uint8)[:, :, ::-1]  # BGR for cv2


def _file_name(layout: dict, folder: str, index: int) -> str:
    pattern = layout["names"].get(folder, f"{folder.lower()}_{{k:03d}}")
    # two images per patient for pneumonia-style names, so patient-level splits are exercised
    return pattern.format(n=1000 + index // 2, k=index) + layout["ext"]


def build_dataset_tree(name: str, root: Path, images_per_class: int = 4, seed: int = 0) -> Path:
    """Write the tiny tree of one dataset under root; returns root."""
    layout = LAYOUTS[name]
    manifest = load_manifest(name)
    rng = np.random.default_rng(seed)
    if "csv" in layout:
        return _csv_labelled_tree(manifest, layout, root, images_per_class, rng)
    for label, spec in enumerate(manifest.classes):
        folder = spec.folders[0]
        for split in layout["splits"]:
            count = images_per_class if split in (None, "train") else max(2, images_per_class // 2)
            for index in range(count):
                image = synthetic_image(rng, label, manifest.channels)
                offset = {None: 0, "train": 0, "test": 100, "val": 200}[split]  # distinct patients per split
                file_name = _file_name(layout, folder, index + offset)
                for copy in layout["dirs"]:
                    path = root / copy.format(split=split or "", folder=folder).replace("//", "/") / file_name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(path), image)
    for extra in layout["extra"]:
        path = root / extra
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"id_code,diagnosis\n" if extra.endswith(".csv") else b"\x00\x05\x16\x07")
    return root


def _csv_labelled_tree(manifest, layout: dict, root: Path, images_per_class: int, rng) -> Path:
    """EyePACS style: every image in one folder as <patient>_<eye>.jpeg, its grade in a CSV."""
    folder = root / layout["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image,level"]
    for label, spec in enumerate(manifest.classes):
        for index in range(images_per_class):
            stem = f"{10 + 100 * label + index // 2}_{('left', 'right')[index % 2]}"
            cv2.imwrite(str(folder / f"{stem}.jpeg"), synthetic_image(rng, label, manifest.channels))
            rows.append(f"{stem},{spec.values[0]}")
    (root / layout["csv"]).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


FIXTURE_VERSION = "1"  # the version a fixture cache holds for a handle that pins none


def build_kagglehub_cache(cache_dir: str | Path, names=None, images_per_class: int = 4) -> Path:
    """Place tiny trees for the given manifests where kagglehub's cache keeps downloads: a
    dataset under datasets/<owner>/<slug>/versions/<N>/ with <N>.complete beside it, a
    competition under competitions/<slug>/ with <slug>.complete."""
    cache_dir = Path(cache_dir)
    for index, name in enumerate(names or LAYOUTS):
        manifest = load_manifest(name)
        if manifest.kaggle_handle:
            owner, slug, *pinned = manifest.kaggle_handle.split("/")
            version = pinned[1] if pinned else FIXTURE_VERSION
            base = cache_dir / "datasets" / owner / slug
            build_dataset_tree(name, base / "versions" / version, images_per_class, seed=index)
            (base / f"{version}.complete").touch()
        else:
            slug = manifest.source["kaggle_competition"]
            build_dataset_tree(name, cache_dir / "competitions" / slug, images_per_class, seed=index)
            (cache_dir / "competitions" / f"{slug}.complete").touch()
    return cache_dir


def use_kagglehub_cache(cache_dir: str | Path) -> None:
    """Point kagglehub at cache_dir for this process (what KAGGLEHUB_CACHE=... does in a shell)."""
    os.environ["KAGGLEHUB_CACHE"] = str(cache_dir)


# Blob classes whose class can be read from the pixels: one soft blob on a textured background,
# of a size and brightness per class, anywhere near the centre. `oracle_class` reads the class
# back from the blob's volume (mean brightness above the image's median), independently of any
# network, so the label agreement of synthetic images can be measured without trusting a
# classifier. Size and brightness are what a CNN judge with global pooling reads, and what a
# DCGAN learns in a few hundred steps (stripe orientation was not: G1 collapsed to one
# orientation in 1,200 steps). "medium" sits close to "small": the pair a judge confuses.
BLOBS = {"large": ((0.16, 0.20), (160, 200)), "medium": ((0.11, 0.13), (120, 140)),
         "small": ((0.07, 0.10), (90, 120))}  # radius (share of the side), amplitude (grey levels)
# Blob volume over 2,000 images per class (64 px): small 3.0–7.5, medium 8.8–13.9, large 21.7–33.1.
VOLUME_RANGES = {"small": (3.0, 7.5), "medium": (8.8, 13.9), "large": (21.7, 33.1)}
TWO_CLASS_NAMES = ("large", "small")            # sorted, as a folder dataset orders its classes
THREE_CLASS_NAMES = ("large", "medium", "small")


def blob_image(rng: np.random.Generator, class_name: str, size: int = 64) -> np.ndarray:
    """uint8 size×size grey image of a blob class."""
    (low_radius, high_radius), (low_amplitude, high_amplitude) = BLOBS[class_name]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    centre_y, centre_x = rng.uniform(0.3, 0.7, 2)
    radius = rng.uniform(low_radius, high_radius)
    blob = np.exp(-((yy - centre_y) ** 2 + (xx - centre_x) ** 2) / (2 * radius ** 2))
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.5)
    image = rng.uniform(30, 60) + rng.uniform(low_amplitude, high_amplitude) * blob + 8 * texture
    return np.clip(image, 0, 255).astype(np.uint8)


def two_class_image(rng: np.random.Generator, label: int, size: int = 64) -> np.ndarray:
    """uint8 size×size grey image of class `label` (0: large bright blob, 1: small dim blob)."""
    return blob_image(rng, TWO_CLASS_NAMES[label], size)


def write_blob_folder(root: str | Path, class_names=TWO_CLASS_NAMES, per_class: int = 60, seed: int = 0,
                      size: int = 64) -> Path:
    """`root/<class>/*.png` for `python -m mgm_tf prepare --data-dir root` (seeded 20 % test split)."""
    root, rng = Path(root), np.random.default_rng(seed)
    for name in class_names:
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            cv2.imwrite(str(root / name / f"{name}_{index:04d}.png"), blob_image(rng, name, size))
    return root


def write_two_class_folder(root: str | Path, per_class: int = 60, seed: int = 0, size: int = 64) -> Path:
    return write_blob_folder(root, TWO_CLASS_NAMES, per_class, seed, size)


def blob_volume(images: np.ndarray) -> np.ndarray:
    """Mean brightness above each image's median: the blob's volume, what the oracle reads."""
    grey = np.asarray(images, np.float32)
    grey = grey.mean(axis=-1) if grey.ndim == 4 else grey
    return np.clip(grey - np.median(grey, axis=(1, 2), keepdims=True), 0, None).mean(axis=(1, 2))


def oracle_class(images: np.ndarray, class_names=TWO_CLASS_NAMES) -> np.ndarray:
    """The class (an index into class_names) of blob-fixture images from their pixels: each image
    goes to the class whose volume range is nearest, the boundary between two classes lying
    midway through the gap between their ranges. Right on every real fixture image."""
    order = sorted(class_names, key=lambda name: VOLUME_RANGES[name][0])
    bounds = [(VOLUME_RANGES[low][1] + VOLUME_RANGES[high][0]) / 2 for low, high in zip(order, order[1:])]
    ranked = np.searchsorted(np.array(bounds), blob_volume(images))
    return np.array([list(class_names).index(order[rank]) for rank in ranked], np.int32)
