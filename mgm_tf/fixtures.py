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

from mgm_tf.manifests import load_manifest

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
    for label, spec in enumerate(manifest.classes):
        folder = spec.folders[0]
        for split in layout["splits"]:
            count = images_per_class if split in (None, "train") else max(2, images_per_class // 2)
            for index in range(count):
                image = synthetic_image(rng, label, manifest.channels)
                file_name = _file_name(layout, folder, index + (0 if split in (None, "train") else 100))
                for copy in layout["dirs"]:
                    path = root / copy.format(split=split or "", folder=folder).replace("//", "/") / file_name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(path), image)
    for extra in layout["extra"]:
        path = root / extra
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"id_code,diagnosis\n" if extra.endswith(".csv") else b"\x00\x05\x16\x07")
    return root


def build_kagglehub_cache(cache_dir: str | Path, names=None, images_per_class: int = 4) -> Path:
    """Place tiny trees for the given manifests where kagglehub looks for pinned handles."""
    cache_dir = Path(cache_dir)
    for index, name in enumerate(names or LAYOUTS):
        owner, slug, _, version = load_manifest(name).kaggle_handle.split("/")
        base = cache_dir / "datasets" / owner / slug
        build_dataset_tree(name, base / "versions" / version, images_per_class, seed=index)
        (base / f"{version}.complete").touch()
    return cache_dir


def use_kagglehub_cache(cache_dir: str | Path) -> None:
    """Point kagglehub at cache_dir for this process (what KAGGLEHUB_CACHE=... does in a shell)."""
    os.environ["KAGGLEHUB_CACHE"] = str(cache_dir)
