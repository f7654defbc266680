"""The brain-slice development set: a NIfTI read from a wheel as written, three orientation
classes, and no test slice with a training slice beside it."""

import gzip
import importlib.util
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "brain_slices.py"


@pytest.fixture(scope="module")
def brain_slices():
    spec = importlib.util.spec_from_file_location("brain_slices", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nifti_bytes(volume: np.ndarray, slope: float = 2.0, intercept: float = 1.0) -> bytes:
    """A minimal little-endian NIfTI-1 file of an int16 volume (x fastest, as the format stores it)."""
    header = bytearray(352)
    header[0:4] = struct.pack("<i", 348)
    header[40:56] = struct.pack("<8h", 3, *volume.shape, 1, 1, 1, 1)
    header[70:74] = struct.pack("<hh", 4, 16)
    header[108:120] = struct.pack("<fff", 352.0, slope, intercept)
    header[344:348] = b"n+1\x00"
    return gzip.compress(bytes(header) + volume.astype("<i2").tobytes(order="F"))


def test_a_nifti_volume_reads_back_in_voxel_order_with_its_scaling(brain_slices):
    volume = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    read = brain_slices.read_nifti(nifti_bytes(volume))
    assert read.shape == (4, 5, 6) and np.array_equal(read, volume * 2.0 + 1.0)
    with pytest.raises(ValueError, match="sizeof_hdr"):
        brain_slices.read_nifti(b"\x00" * 400)


def test_slices_from_a_wheel_make_three_classes_split_by_slab(brain_slices, tmp_path):
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, 40),) * 3, indexing="ij"))
    ball = (1000 * ((grid ** 2).sum(axis=0) < 0.8)).astype(np.int16)  # a solid ball: every orientation sees a disc
    wheel = tmp_path / "nilearn-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(brain_slices.MEMBER, nifti_bytes(ball, 1.0, 0.0))
    counts = brain_slices.write_dataset(brain_slices.template_volume(wheel), tmp_path / "out", size=32)
    assert set(counts) == {"train", "test"} and set(counts["train"]) == set(brain_slices.ORIENTATIONS)
    for name in brain_slices.ORIENTATIONS:
        train = {int(path.stem.split("_")[1]) for path in (tmp_path / "out" / "train" / name).glob("*.png")}
        test = {int(path.stem.split("_")[1]) for path in (tmp_path / "out" / "test" / name).glob("*.png")}
        assert train and test and not train & test
        assert all(position - 1 not in train and position + 1 not in train for position in test)
        image = cv2.imread(str(next((tmp_path / "out" / "test" / name).glob("*.png"))), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (32, 32) and image.max() > 200 and image[0, 0] == 0  # a bright disc on black


def test_a_symmetric_volume_gives_no_sagittal_copies(brain_slices, tmp_path):
    """The template is left-right symmetric: sagittal slices at x and −x are the same image, so
    only one hemisphere is written (both would put copies of test slices into training)."""
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, 40),) * 3, indexing="ij"))
    blob = (1000 * ((grid ** 2).sum(axis=0) < 0.8) * (1.5 + grid[1])).astype(np.int16)  # symmetric in x
    wheel = tmp_path / "nilearn-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(brain_slices.MEMBER, nifti_bytes(blob, 1.0, 0.0))
    brain_slices.write_dataset(brain_slices.template_volume(wheel), tmp_path / "out", size=32)
    contents = [path.read_bytes() for path in sorted((tmp_path / "out").rglob("sagittal_*.png"))]
    assert len(contents) > 5 and len(set(contents)) == len(contents)
