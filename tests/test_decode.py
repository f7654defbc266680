"""Bad and unusual files: decoded or reported, never a crash, counts right."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from mgm_tf.data import sources
from mgm_tf.data.decode import DecodeError, decode_bytes, jpeg_size, read_image
from mgm_tf.data.prepare import prepare


def _png(array) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _jpeg(array) -> bytes:
    return cv2.imencode(".jpg", array)[1].tobytes()


def test_sixteen_bit_png_is_stretched_over_its_range():
    twelve_bit = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    image = decode_bytes(_png(twelve_bit), channels=1)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 1)
    assert image.min() == 0 and image.max() == 255


def test_rgba_png_is_composited_on_black():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGRA
    rgba[:4, :, 3] = 255
    image = decode_bytes(_png(rgba), channels=3)
    assert image.shape == (8, 8, 3)
    assert image[0, 0].tolist() == [200, 0, 0] and image[7, 7].tolist() == [0, 0, 0]


def test_cmyk_jpeg_decodes_to_rgb():
    buffer = io.BytesIO()
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(buffer, "JPEG")  # pure red
    image = decode_bytes(buffer.getvalue(), channels=3)
    assert image.shape == (24, 32, 3)
    red, green, blue = image[12, 16].astype(int)
    assert red > 200 and green < 50 and blue < 50


def test_palette_png_and_grey_to_colour():
    buffer = io.BytesIO()
    palette_image = Image.new("P", (10, 10))
    palette_image.putpalette([0, 0, 255] * 256)
    palette_image.save(buffer, "PNG")
    assert decode_bytes(buffer.getvalue(), channels=3)[0, 0].tolist() == [0, 0, 255]
    grey = decode_bytes(_png(np.full((5, 5), 77, np.uint8)), channels=3)
    assert grey.shape == (5, 5, 3) and grey[0, 0].tolist() == [77, 77, 77]


def test_exif_rotation_is_applied():
    buffer = io.BytesIO()
    wide = Image.new("L", (40, 20), 128)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    wide.save(buffer, "JPEG", exif=exif.tobytes())
    assert decode_bytes(buffer.getvalue(), channels=1).shape == (40, 20, 1)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"just some text pretending to be a picture", "not an image"),
])
def test_unusable_bytes_raise_decode_error(content, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_bytes(content, channels=1)


def test_truncated_jpeg_is_rejected():
    whole = _jpeg(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(DecodeError, match="truncated"):
        decode_bytes(whole[: len(whole) // 2], channels=1)


def test_reduced_jpeg_decoding_keeps_at_least_min_side():
    big = _jpeg(np.zeros((1200, 1500), np.uint8))
    assert jpeg_size(big) == (1200, 1500)
    image = decode_bytes(big, channels=1, min_side=256)
    assert min(image.shape[:2]) >= 256 and image.shape[0] <= 600


def test_read_image_reports_missing_file(tmp_path):
    with pytest.raises(DecodeError, match="cannot read"):
        read_image(tmp_path / "absent.png", 1)


def test_prepare_reports_every_bad_file(tmp_path):
    """A folder dataset with good files plus one of each bad kind: good ones are kept, bad ones
    listed with reasons, and the counts add up."""
    rng = np.random.default_rng(1)
    for label in ("a", "b"):
        (tmp_path / "src" / label).mkdir(parents=True)
        for index in range(3):
            cv2.imwrite(str(tmp_path / "src" / label / f"{label}{index}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    whole = _jpeg(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "src/a/truncated.jpg").write_bytes(whole[:300])
    (tmp_path / "src/a/empty.png").write_bytes(b"")
    (tmp_path / "src/b/notes.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "src/b/deep.png").write_bytes(_png(rng.integers(0, 65535, (40, 40), dtype=np.uint16)))
    buffer = io.BytesIO()
    Image.new("CMYK", (40, 40), (10, 200, 30, 5)).save(buffer, "JPEG")
    (tmp_path / "src/b/cmyk.jpg").write_bytes(buffer.getvalue())
    rgba = np.dstack([rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), np.full((40, 40), 255, np.uint8)])
    (tmp_path / "src/a/alpha.png").write_bytes(_png(rgba))

    manifest = sources.folder_manifest(tmp_path / "src")
    assert manifest.channels == 3 and manifest.class_names == ["a", "b"]
    prepared = prepare(manifest, tmp_path / "out")
    skipped = {entry["file"]: entry["reason"] for entry in prepared.report["skipped"]}
    assert set(skipped) == {"a/truncated.jpg", "a/empty.png", "b/notes.jpg"}
    assert "truncated" in skipped["a/truncated.jpg"] and "empty" in skipped["a/empty.png"]
    assert prepared.report["num_skipped"] == 3
    assert prepared.report["num_images"] == len(prepared.labels) == 9  # 6 plain + 16-bit + CMYK + RGBA
    assert sorted(prepared.files) == sorted(r.relative for r in sources.scan(manifest, tmp_path / "src")[0]
                                            if r.relative not in skipped)


def test_a_class_whose_every_file_is_unreadable_stops_prepare_naming_its_files(tmp_path):
    """The class check before decoding sees files; after decoding, a class with none left would
    vanish silently from every later stage. prepare stops instead, and writes nothing."""
    rng = np.random.default_rng(2)
    for index in range(4):
        (tmp_path / "src" / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "src" / "good" / f"g{index}.png"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
    (tmp_path / "src" / "broken").mkdir()
    (tmp_path / "src/broken/one.jpg").write_bytes(b"not an image")
    (tmp_path / "src/broken/two.png").write_bytes(b"")
    manifest = sources.folder_manifest(tmp_path / "src", channels=1)
    with pytest.raises(ValueError, match=r"class 'broken': none of its 2 file\(s\)") as error:
        prepare(manifest, tmp_path / "out")
    assert "broken/one.jpg" in str(error.value) and "broken/two.png" in str(error.value)
    assert not (tmp_path / "out" / "report.json").exists()
