import hashlib

import numpy as np

from mgm_tf.data.decode import read_image
from mgm_tf.export import export_dataset, read_marker
from mgm_tf.io import read_csv


def _rows(labels):
    return [{"label": label, "lineage": "dcgan>cgan>filter>srgan", "seed": 100 + index, "sharpness": 1.5,
             "entropy": 6.0, "edges": 3.0, "quality_score": 0.9} for index, label in enumerate(labels)]


def test_grey_export_writes_marked_one_channel_pngs_listed_in_manifest(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (5, 32, 32, 1), dtype=np.uint8)
    images = np.repeat(grey, 3, axis=-1)  # networks output 3 channels
    manifest = export_dataset(tmp_path, images, _rows([0, 1, 1, 0, 1]), ["NORMAL", "PNEUMONIA"], 1,
                              generator="test generator", dataset="demo")
    rows = read_csv(manifest)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert sorted(row["file"] for row in rows) == files and len(files) == 5
    for row, original in zip(rows, grey):
        path = tmp_path / row["file"]
        assert row["file"].startswith(f"{row['class']}/demo_{row['class']}_synthetic_")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        marker = read_marker(path)
        assert marker["Synthetic"] == "true" and marker["Generator"] == "test generator"
        assert marker["Class"] == row["class"] and row["synthetic"] == "1"
        from PIL import Image

        with Image.open(path) as image:
            assert image.mode == "L"
        assert np.array_equal(read_image(path, 1), original)
    assert not list(tmp_path.rglob("*.tmp"))


def test_colour_export_keeps_three_channels(tmp_path):
    images = np.random.default_rng(1).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    manifest = export_dataset(tmp_path, images, _rows([0, 0]), ["benign"], 3, generator="g", dataset="skin")
    first = read_csv(manifest)[0]
    assert np.array_equal(read_image(tmp_path / first["file"], 3), images[0])
