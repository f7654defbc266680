"""Pixel conversions every stage shares, each written once: network range ↔ uint8, grey
conversion (luminance, ITU-R BT.601, as OpenCV computes it) and the dataset's channel count.
OpenCV is imported where it is used: the train steps need only Keras and NumPy from here, so a
step can be timed where only Keras and JAX are installed (benchmarks/backend_steps.py)."""

from __future__ import annotations

import numpy as np


def from_model_range(images) -> np.ndarray:
    """[-1, 1] floats (arrays or tensors) → uint8 [0, 255]; uint8 input passes through."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_model_range(images):
    """uint8 [0, 255] → float32 [-1, 1] with 3 channels (grey repeated) for the paper's 64×64×3
    nets, in `keras.ops`: it runs inside a compiled train step on every backend, so a batch
    travels to the device as uint8 (4 KB per grey image instead of 48 KB of float32)."""
    from keras import ops

    images = ops.cast(images, "float32") / 127.5 - 1.0
    if images.shape[-1] == 1:
        images = ops.repeat(images, 3, axis=-1)
    return images


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
    import cv2

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


def resize_all(images: np.ndarray, size: int, interpolation: str = "area") -> np.ndarray:
    """(N, H, W, C) uint8 or float32 → (N, size, size, C), "area" or "cubic" interpolation; same
    size passes through."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    import cv2

    method = {"area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}[interpolation]
    return np.stack([cv2.resize(image, (size, size), interpolation=method).reshape(size, size, -1)
                     for image in images])


def _gaussian_filter(images: np.ndarray, size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """float64 (N, H, W, C) → (N, H−size+1, W−size+1, C): a 'valid' Gaussian filter per channel."""
    import cv2

    kernel = cv2.getGaussianKernel(size, sigma).astype(np.float64)[:, 0]
    half = size // 2
    count, height, width, channels = images.shape
    planes = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(-1, height, width))
    filtered = np.stack([cv2.sepFilter2D(plane, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
                         for plane in planes])
    filtered = filtered[:, half:height - half, half:width - half]
    return filtered.reshape(count, channels, height - 2 * half, width - 2 * half).transpose(0, 2, 3, 1)


def structural_similarity(reference: np.ndarray, candidate: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Per-image SSIM (Wang et al. 2004) of (N, H, W, C) images, averaged over channels: an 11×11
    Gaussian window of σ 1.5, K1 0.01, K2 0.03, valid positions only — the definition
    `tf.image.ssim` computes, written with OpenCV so that no backend is needed (a test checks the
    two agree)."""
    x, y = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"SSIM needs two (N, H, W, C) batches of one shape, got {x.shape} and {y.shape}")
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    mean_x, mean_y = _gaussian_filter(x), _gaussian_filter(y)
    luminance = (2 * mean_x * mean_y + c1) / (mean_x ** 2 + mean_y ** 2 + c1)
    covariance = 2 * _gaussian_filter(x * y) - 2 * mean_x * mean_y
    variances = _gaussian_filter(x * x + y * y) - mean_x ** 2 - mean_y ** 2
    structure = (covariance + c2) / (variances + c2)
    return (luminance * structure).mean(axis=(1, 2, 3))


def peak_signal_to_noise(reference: np.ndarray, candidate: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Per-image PSNR in dB of (N, H, W, C) images (infinite for identical images)."""
    error = np.mean((np.asarray(reference, np.float64) - np.asarray(candidate, np.float64)) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value ** 2 / error)
