"""DiffAugment (Zhao et al., NeurIPS 2020): the same random, differentiable augmentations on
real and generated images before the discriminator, so D cannot memorise a small training set.
Off by default for large datasets; on for tiny ones (the demo), where it measurably keeps the
DCGAN from collapsing (see the pipeline issue note / benchmarks).
"""

from __future__ import annotations

import keras
from keras import ops


def _per_image(batch, seed_generator, low=-0.5, high=0.5):
    return keras.random.uniform((batch, 1, 1, 1), low, high, seed=seed_generator)


def colour(images, seed_generator):
    """Brightness ±0.5 (in [-1, 1] units ×0.5), saturation ×[0, 2], contrast ×[0.5, 1.5]."""
    batch = ops.shape(images)[0]
    images = images + _per_image(batch, seed_generator)
    mean = ops.mean(images, axis=-1, keepdims=True)
    images = (images - mean) * (_per_image(batch, seed_generator) * 2.0 + 1.0) + mean
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * (_per_image(batch, seed_generator) + 1.0) + mean


def translation(images, seed_generator, ratio: float = 0.125):
    """Shift each image by up to ratio × size pixels, filling with zeros (nearest sampling)."""
    batch = ops.shape(images)[0]
    size = images.shape[1]
    shift = ops.round(keras.random.uniform((batch, 2), -ratio * size, ratio * size, seed=seed_generator))
    ones, zeros = ops.ones((batch, 1)), ops.zeros((batch, 1))
    transform = ops.concatenate([ones, zeros, -shift[:, :1], zeros, ones, -shift[:, 1:], zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation="nearest", fill_mode="constant")


def cutout(images, seed_generator, ratio: float = 0.5):
    """Zero a random square of ratio × size per image."""
    batch = ops.shape(images)[0]
    size = images.shape[1]
    half = ratio * size / 2.0
    centre = keras.random.uniform((batch, 2), 0.0, float(size), seed=seed_generator)
    coordinates = ops.cast(ops.arange(size), "float32")
    rows = ops.abs(coordinates[None, :] - centre[:, :1]) < half
    columns = ops.abs(coordinates[None, :] - centre[:, 1:]) < half
    mask = ops.logical_and(rows[:, :, None], columns[:, None, :])
    return images * (1.0 - ops.cast(mask, images.dtype))[:, :, :, None]


def diff_augment(images, seed_generator):
    """colour → translation → cutout, the policy the DiffAugment paper uses for small data."""
    images = ops.cast(images, "float32")
    return cutout(translation(colour(images, seed_generator), seed_generator), seed_generator)
