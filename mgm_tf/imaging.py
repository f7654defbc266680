"""Pixel conversions every stage shares, each written once: network range ↔ uint8, grey
conversion (luminance, ITU-R BT.601, as OpenCV computes it) and the dataset's channel count."""

from __future__ import annotations

import cv2
import numpy as np


def from_model_range(images) -> np.ndarray:
    """[-1, 1] floats (arrays or tensors) → uint8 [0, 255]; uint8 input passes through."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_grey(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 1|3) → uint8 (N, H, W, 1) by luminance (one grey rule for the filter,
    the export, the judge and the metrics)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected (N, H, W, 1|3) images, got shape {images.shape}")
    if images.shape[-1] == 1:
        return images
    count, height, width = images.shape[:3]
    flat = np.ascontiguousarray(images).reshape(-1, width, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(count, height, width, 1)


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """The networks make 3-channel images; a grey modality's images become 1-channel."""
    images = np.asarray(images)
    return to_grey(images) if channels == 1 and images.shape[-1] == 3 else images


def to_unit_range(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 1|3) → float32 (N, size, size, 3) in [0, 1], grey repeated: what the
    classifiers and feature extractors see. Bilinear with antialiasing, as the reference FID code
    resizes to 299 (area resizing blocks pixels when it upsamples, which shifts InceptionV3
    features). Keras is imported here, so that this module stays light for data preparation."""
    from keras import ops

    images = np.asarray(images)
    if images.shape[1] != size or images.shape[2] != size:
        resized = ops.image.resize(images.astype(np.float32), (size, size), interpolation="bilinear", antialias=True)
        unit = ops.convert_to_numpy(resized) / 255.0
    else:
        unit = images.astype(np.float32) / 255.0
    return np.repeat(unit, 3, axis=-1) if unit.shape[-1] == 1 else unit


def resize_all(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) → (N, size, size, C) with area interpolation; same size passes through."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, -1)
                     for image in images])
