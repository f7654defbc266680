"""Modality preprocessing (paper §3.1): pure functions on uint8 (H, W, C) images.

Each runs once per image in `prepare`, never per epoch. Grey images are (H, W, 1), colour
images RGB (H, W, 3); every function returns the same layout it was given.
"""

from __future__ import annotations

import cv2
import numpy as np


def _grey(image: np.ndarray) -> np.ndarray:
    return image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size×size as the paper does (aspect ratio not kept); area filter when shrinking."""
    height, width = image.shape[:2]
    interpolation = cv2.INTER_AREA if min(height, width) >= size else cv2.INTER_CUBIC
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    return resized.reshape(size, size, image.shape[2])


def pad_square(image: np.ndarray) -> np.ndarray:
    """Zero-pad the short side so the image is square (keeps aspect ratio before a resize)."""
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    padded = np.zeros((side, side, image.shape[2]), image.dtype)
    padded[top:top + height, left:left + width] = image
    return padded


def clahe(image: np.ndarray, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (X-ray contrast normalisation); colour
    images are equalised on the L channel of Lab so hues are kept."""
    equaliser = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))
    if image.shape[2] == 1:
        return equaliser.apply(image[:, :, 0])[:, :, None]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = equaliser.apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    flood = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(flood, None, (0, 0), 1)
    return mask | (flood[1:-1, 1:-1] == 0)


def skull_strip(image: np.ndarray, opening_fraction: float = 0.06) -> np.ndarray:
    """Brain mask = largest bright component after an opening that cuts the thin skull ring off:
    Otsu threshold → morphological opening (kernel ~6 % of the side) → largest component →
    holes filled. Pixels outside the mask are zeroed."""
    grey = cv2.GaussianBlur(_grey(image), (5, 5), 0)
    _, mask = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    side = max(3, int(round(opening_fraction * min(grey.shape))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    brain = _fill_holes(_largest_component(opened))
    if brain.sum() < 0.01 * brain.size:  # nothing brain-like: leave the image alone
        return image
    return image * brain[:, :, None].astype(image.dtype)


def remove_hair(image: np.ndarray, kernel_size: int = 17, threshold: int = 10) -> np.ndarray:
    """DullRazor-style hair removal for dermoscopy: black-hat finds thin dark lines, which are
    then filled by inpainting from their surroundings."""
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (kernel_size, kernel_size))
    blackhat = cv2.morphologyEx(_grey(image), cv2.MORPH_BLACKHAT, kernel)
    _, mask = cv2.threshold(blackhat, threshold, 255, cv2.THRESH_BINARY)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    inpainted = cv2.inpaint(image if image.shape[2] == 3 else image[:, :, 0], mask, 3, cv2.INPAINT_TELEA)
    return inpainted.reshape(image.shape)


def lab_stats(image: np.ndarray) -> np.ndarray:
    """(2, 3) array: per-channel mean and std in Lab (float, OpenCV's 8-bit Lab scale)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    return np.stack([lab.mean(axis=0), lab.std(axis=0)])


def reinhard(image: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """Reinhard colour transfer: match the image's Lab mean/std to `target` (from `lab_stats`
    of a reference, e.g. the dataset median). Reduces stain and camera colour variation."""
    if image.shape[2] != 3:
        return image
    if target is None:
        target = np.array([[140.0, 145.0, 150.0], [45.0, 10.0, 12.0]], np.float32)
    source = lab_stats(image)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab = (lab - source[0]) * (target[1] / np.maximum(source[1], 1e-3)) + target[0]
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def grey_world(image: np.ndarray) -> np.ndarray:
    """Grey-world white balance: scale each channel to the common mean (illumination colour)."""
    if image.shape[2] != 3:
        return image
    means = image.reshape(-1, 3).astype(np.float32).mean(axis=0)
    gains = means.mean() / np.maximum(means, 1e-3)
    return np.clip(image.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def fundus_crop(image: np.ndarray, threshold: int = 10) -> np.ndarray:
    """Crop the black frame around a fundus photo to the retina's bounding box, padded square."""
    rows, cols = np.nonzero(_grey(image) > threshold)
    if rows.size < 0.05 * image.shape[0] * image.shape[1]:
        return image
    return pad_square(image[rows.min():rows.max() + 1, cols.min():cols.max() + 1])


STEPS = {"clahe": clahe, "skull_strip": skull_strip, "hair_removal": remove_hair, "reinhard": reinhard,
         "grey_world": grey_world, "fundus_crop": fundus_crop, "pad_square": pad_square}


def check_steps(steps) -> None:
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {unknown}; known: {sorted(STEPS)}")


def apply_steps(image: np.ndarray, steps, working_size: int, reinhard_target: np.ndarray | None = None) -> np.ndarray:
    """Geometry first (crop/pad), then resize to the working size, then intensity steps."""
    check_steps(steps)
    for step in steps:
        if step in ("fundus_crop", "pad_square"):
            image = STEPS[step](image)
    image = resize_square(image, working_size)
    for step in steps:
        if step == "reinhard":
            image = reinhard(image, reinhard_target)
        elif step not in ("fundus_crop", "pad_square"):
            image = STEPS[step](image)
    return image
