"""Each preprocessing step changes what it should, on images built to show it."""

import cv2
import numpy as np

from mgm_tf.data import preprocess


def _local_contrast(image):
    grey = image[:, :, 0].astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def test_clahe_raises_local_contrast_on_flat_image():
    rng = np.random.default_rng(0)
    low_contrast = (120 + rng.integers(0, 8, (128, 128))).astype(np.uint8)[:, :, None]
    equalised = preprocess.clahe(low_contrast)
    assert equalised.shape == low_contrast.shape
    assert _local_contrast(equalised) > 2 * _local_contrast(low_contrast)


def test_skull_strip_zeroes_bright_ring_and_keeps_brain():
    image = np.zeros((128, 128), np.uint8)
    cv2.circle(image, (64, 64), 35, 150, -1)  # brain
    cv2.circle(image, (64, 64), 52, 230, 4)   # skull ring, separated by a dark gap
    stripped = preprocess.skull_strip(image[:, :, None])[:, :, 0]
    ring = np.zeros_like(image)
    cv2.circle(ring, (64, 64), 52, 1, 4)
    assert stripped[ring.astype(bool)].max() == 0
    assert stripped[64, 64] == 150 and (stripped == 150).sum() > 0.9 * np.pi * 35 ** 2


def test_hair_removal_removes_thin_dark_lines():
    smooth = np.full((128, 128, 3), (190, 140, 120), np.uint8)
    hairy = smooth.copy()
    for offset in (20, 50, 80):
        cv2.line(hairy, (0, offset), (127, offset + 40), (20, 15, 10), 2)
    cleaned = preprocess.remove_hair(hairy)
    before = np.abs(hairy.astype(int) - smooth).mean()
    after = np.abs(cleaned.astype(int) - smooth).mean()
    assert after < 0.2 * before


def test_reinhard_matches_target_statistics():
    rng = np.random.default_rng(1)
    image = np.clip(rng.normal((90, 60, 150), 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    reference = np.clip(rng.normal((200, 120, 90), 30, (64, 64, 3)), 0, 255).astype(np.uint8)
    target = preprocess.lab_stats(reference)
    normalised = preprocess.reinhard(image, target)
    assert np.abs(preprocess.lab_stats(normalised)[0] - target[0]).max() < 3.0
    assert np.abs(preprocess.lab_stats(image)[0] - target[0]).max() > 20.0


def test_grey_world_equalises_channel_means():
    tinted = np.zeros((32, 32, 3), np.uint8)
    tinted[..., 0], tinted[..., 1], tinted[..., 2] = 180, 120, 60
    means = preprocess.grey_world(tinted).reshape(-1, 3).mean(axis=0)
    assert means.max() - means.min() < 2.0


def test_fundus_crop_removes_black_frame_and_resize_square():
    image = np.zeros((100, 160, 3), np.uint8)
    cv2.circle(image, (80, 50), 45, (200, 80, 40), -1)
    cropped = preprocess.fundus_crop(image)
    assert cropped.shape[0] == cropped.shape[1] and cropped.shape[0] <= 92
    assert preprocess.resize_square(cropped, 64).shape == (64, 64, 3)
    assert preprocess.pad_square(np.ones((10, 20, 1), np.uint8)).shape == (20, 20, 1)
