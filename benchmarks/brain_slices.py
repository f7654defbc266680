"""Development data with real anatomy, made offline: slices of the MNI152 T1 template in three
classes by orientation (axial, coronal, sagittal), as a folder dataset for `--data-dir`.

    python benchmarks/brain_slices.py --out DIR [--wheel nilearn-*.whl] [--size 128] [--step 1]
    python -m mgm_tf run --data-dir DIR --out runs/brain

The 16 demo X-rays are too few to tell whether a stage improves anatomy; these are a few hundred
real MR slices with structure a reader recognises at a glance (ventricles, gyri, cerebellum) and
classes a classifier tells apart by shape, not by one intensity. The template is the ICBM 2009a
nonlinear symmetric T1 average that the nilearn wheel ships (`nilearn/datasets/data/
mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz`); the script reads it from the wheel (downloaded
from the package registry with `pip download nilearn --no-deps` when `--wheel` is not given) and
needs neither nilearn nor nibabel installed: a NIfTI-1 file is a 348-byte header and an array.

Train and test are separated by slabs: every slice belongs to a slab of `SLAB` neighbouring slices;
every fifth slab is test, and the slice on either side of a test slab is dropped, so no test slice
has a training slice next to it (neighbouring 1-mm slices are near copies). All slices are of one
averaged brain: variety is across positions, not people — a memorised share or a two-sample test
on this set says how well a generator covers positions of one brain, not a population.

Licence and attribution: ICBM 2009a Nonlinear Symmetric template, Copyright (C) 1993–2009 Louis
Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill University
(distributed with a notice permitting use, copying and redistribution with the copyright notice;
nilearn records its licence as "unknown"). Cite Fonov et al., NeuroImage 47 (2009) S102 and
NeuroImage 54 (2011) 313–327; Collins et al., NeuroImage 1999. The slices are written at run time,
never committed.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

MEMBER = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
NIFTI_TYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 512: np.uint16}
ORIENTATIONS = {"sagittal": 0, "coronal": 1, "axial": 2}  # the axis a slice is taken across (RAS voxel order)
SLAB = 6
TEST_EVERY = 5
MIN_BRAIN_SHARE = 0.25  # a slice must show this share of the largest slice's brain area


def read_nifti(content: bytes) -> np.ndarray:
    """The float32 volume of a (gzipped or plain) single-file NIfTI-1 image, in its voxel order."""
    raw = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
    if struct.unpack("<i", raw[:4])[0] != 348:
        raise ValueError("not a little-endian NIfTI-1 file (sizeof_hdr is not 348)")
    dims = struct.unpack("<8h", raw[40:56])
    datatype = struct.unpack("<h", raw[70:72])[0]
    if datatype not in NIFTI_TYPES:
        raise ValueError(f"NIfTI datatype {datatype} is not supported")
    offset = int(struct.unpack("<f", raw[108:112])[0])
    slope, intercept = struct.unpack("<ff", raw[112:120])
    shape = tuple(int(value) for value in dims[1:1 + dims[0]])
    volume = np.frombuffer(raw, NIFTI_TYPES[datatype], count=int(np.prod(shape)), offset=offset)
    volume = volume.reshape(shape, order="F").astype(np.float32)
    return volume * (slope or 1.0) + intercept


def template_volume(wheel: Path | None) -> np.ndarray:
    """The T1 template, read from a nilearn wheel (fetched from the package registry if none given)."""
    if wheel is None:
        folder = Path(tempfile.mkdtemp(prefix="nilearn_wheel_"))
        subprocess.run([sys.executable, "-m", "pip", "download", "nilearn", "--no-deps", "-q", "-d", str(folder)],
                       check=True)
        wheel = next(folder.glob("nilearn-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        if MEMBER not in archive.namelist():
            raise ValueError(f"{wheel} holds no {MEMBER}")
        return read_nifti(archive.read(MEMBER))


def square_slice(plane: np.ndarray, size: int, scale: float) -> np.ndarray:
    """A slice as uint8 size×size: intensities over `scale`, padded to a square with black, area-
    resized; rotated so that superior/anterior is up."""
    image = np.clip(np.rot90(plane) / scale * 255.0, 0, 255).astype(np.uint8)
    side = max(image.shape)
    padded = np.zeros((side, side), np.uint8)
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    padded[top:top + image.shape[0], left:left + image.shape[1]] = image
    return cv2.resize(padded, (size, size), interpolation=cv2.INTER_AREA)


def slices(volume: np.ndarray, axis: int, step: int) -> list[tuple[int, np.ndarray]]:
    """(position, 2-D slice) across `axis`, cropped to the brain's bounding box, for every `step`-th
    position whose brain area is at least MIN_BRAIN_SHARE of the largest. Sagittal slices from
    one hemisphere only: the template is symmetric, so the slice at x and at −x are the same image
    (both halves would put copies of test slices into the training split)."""
    brain = volume > 0.15 * np.percentile(volume, 99.5)
    box = tuple(slice(int(indices.min()), int(indices.max()) + 1) for indices in np.nonzero(brain))
    volume, brain = volume[box], brain[box]
    area = brain.sum(axis=tuple(other for other in range(3) if other != axis))
    first = volume.shape[0] // 2 if axis == ORIENTATIONS["sagittal"] else 0  # one hemisphere: see below
    return [(position, np.take(volume, position, axis=axis)) for position in range(first, volume.shape[axis], step)
            if area[position] >= MIN_BRAIN_SHARE * area.max()]


def split_of(position: int) -> str | None:
    """'test' for every TEST_EVERY-th slab, None for a slice beside a test slab, else 'train'."""
    slab = position // SLAB
    if slab % TEST_EVERY == 0:
        return "test"
    neighbours = {(position - 1) // SLAB, (position + 1) // SLAB}
    return None if any(other % TEST_EVERY == 0 for other in neighbours) else "train"


def write_dataset(volume: np.ndarray, out: Path, size: int = 128, step: int = 1) -> dict:
    """out/{train,test}/<orientation>/<orientation>_<position>.png; returns counts per split and class."""
    scale = float(np.percentile(volume, 99.5))
    counts: dict = {}
    for name, axis in ORIENTATIONS.items():
        for position, plane in slices(volume, axis, step):
            split = split_of(position)
            if split is None:
                continue
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{name}_{position:03d}.png"), square_slice(plane, size, scale))
            counts.setdefault(split, {}).setdefault(name, 0)
            counts[split][name] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, default=None, help="a nilearn wheel (default: pip download it)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--step", type=int, default=1, help="take every step-th slice")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: choose a new folder (nothing there is overwritten)")
    counts = write_dataset(template_volume(args.wheel), args.out, args.size, args.step)
    for split, per_class in counts.items():
        print(f"{split}: " + ", ".join(f"{name} {count}" for name, count in per_class.items()))
    print(f"written to {args.out}; train with: python -m mgm_tf run --data-dir {args.out}")


if __name__ == "__main__":
    main()
