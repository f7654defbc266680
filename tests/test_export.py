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


def test_grid_titles_stay_inside_the_figure_and_apart():
    """A grid of two cells under a long title (the label-disagreement figure of a small run):
    the title is wrapped inside the figure, and no two titles overlap."""
    from mgm_tf.plots import image_grid

    figure = image_grid(np.full((2, 64, 64, 1), 128, np.uint8), titles=["NORMAL → PNEUMONIA\np(label) 0.41"] * 2,
                        columns=6, cell=1.7,
                        title="labelled class → the referee's class, p(label): the worst disagreements per class")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    page = figure.bbox
    boxes = [figure._suptitle.get_window_extent(renderer)] + [axis.title.get_window_extent(renderer)
                                                               for axis in figure.axes if axis.get_title()]
    assert len(boxes) == 3
    for box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1
    for index, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[index + 1:])


def test_a_class_name_with_a_slash_makes_one_folder(tmp_path):
    from mgm_tf.export import folder_name

    images = np.zeros((2, 8, 8, 1), np.uint8)
    rows = read_csv(export_dataset(tmp_path, images, _rows([0, 1]), ["benign/normal", "malignant"], 1,
                                   generator="test", dataset="skin"))
    assert rows[0]["file"].startswith("benign_normal/skin_benign_normal_synthetic_") and rows[0]["class"] == "benign/normal"
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == ["benign_normal", "malignant"]
    assert folder_name("a\\b:c") == "a_b_c" and folder_name("..") == "_"
