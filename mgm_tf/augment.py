"""DiffAugment (Zhao et al., NeurIPS 2020): the same random, differentiable augmentations on
real and generated images before the discriminator, so D cannot memorise a small training set.
On for tiny datasets (the demo), where it measurably keeps the DCGAN from collapsing; off by
default for large ones. Written in `keras.ops` with the trainer's seed generator, so it runs
inside a compiled train step on every backend (`gan.GANTrainer.augmented` applies it).
"""

from __future__ import annotations

import keras
from keras import ops


def _per_image(batch, seed_generator, low=-0.5, high=0.5):
    return keras.random.uniform((batch, 1, 1, 1), low, high, seed=seed_generator)


def colour(images: list, seed_generator) -> list:
    """Brightness ±0.5 (in [-1, 1] units ×0.5), saturation ×[0, 2], contrast ×[0.5, 1.5]: one
    random draw per sample, applied to every image of the list, each around its own means (so
    the condition c of a pair never borrows the statistics of x, nor x those of c)."""
    batch = ops.shape(images[0])[0]
    brightness = _per_image(batch, seed_generator)
    saturation = _per_image(batch, seed_generator) * 2.0 + 1.0
    contrast = _per_image(batch, seed_generator) + 1.0
    outputs = []
    for image in images:
        image = image + brightness
        mean = ops.mean(image, axis=-1, keepdims=True)
        image = (image - mean) * saturation + mean
        mean = ops.mean(image, axis=(1, 2, 3), keepdims=True)
        outputs.append((image - mean) * contrast + mean)
    return outputs


def translation(images: list, seed_generator, ratio: float = 0.125) -> list:
    """Shift each sample by up to ratio × size pixels (the same shift for every image of the
    list), filling with zeros (nearest sampling)."""
    batch = ops.shape(images[0])[0]
    size = images[0].shape[1]
    shift = ops.round(keras.random.uniform((batch, 2), -ratio * size, ratio * size, seed=seed_generator))
    ones, zeros = ops.ones((batch, 1)), ops.zeros((batch, 1))
    transform = ops.concatenate([ones, zeros, -shift[:, :1], zeros, ones, -shift[:, 1:], zeros, zeros], axis=1)
    return [ops.image.affine_transform(image, transform, interpolation="nearest", fill_mode="constant")
            for image in images]


def cutout(images: list, seed_generator, ratio: float = 0.5) -> list:
    """Zero a random square of ratio × size per sample (the same square in every image of the list)."""
    batch = ops.shape(images[0])[0]
    size = images[0].shape[1]
    half = ratio * size / 2.0
    centre = keras.random.uniform((batch, 2), 0.0, float(size), seed=seed_generator)
    coordinates = ops.cast(ops.arange(size), "float32")
    rows = ops.abs(coordinates[None, :] - centre[:, :1]) < half
    columns = ops.abs(coordinates[None, :] - centre[:, 1:]) < half
    keep = 1.0 - ops.cast(ops.logical_and(rows[:, :, None], columns[:, None, :]), "float32")[:, :, :, None]
    return [image * keep for image in images]


AUGMENTATIONS = {"colour": colour, "translation": translation, "cutout": cutout}
# The DiffAugment paper's small-data policy is colour, translation, cutout. Colour is left out by
# default: a discriminator made blind to brightness and contrast let G1 drift in intensity (on the
# three-class blob fixture its background fell from 50 to 39 grey levels and the small dim class
# from 33 % to 3 % of samples; benchmarks/augment_policy.py), and intensity is what medical classes
# are often read from (DESIGN.md "Where the pipeline departs from the paper").
DEFAULT_AUGMENT_POLICY = "translation,cutout"


def parse_policy(policy: str) -> tuple:
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown DiffAugment transform(s) {unknown} in {policy!r}; choose from {list(AUGMENTATIONS)}")
    return names


def diff_augment_together(images: list, seed_generator, policy: str = DEFAULT_AUGMENT_POLICY) -> list:
    """The policy's transforms in order (colour → translation → cutout for the paper's), with one
    random transform per sample shared by all images in the list (x and c of a pair)."""
    images = [ops.cast(image, "float32") for image in images]
    for name in parse_policy(policy):
        images = AUGMENTATIONS[name](images, seed_generator)
    return images


def diff_augment(images, seed_generator, policy: str = DEFAULT_AUGMENT_POLICY):
    """DiffAugment of one batch of images."""
    return diff_augment_together([images], seed_generator, policy)[0]


# Adaptive augmentation (ADA, Karras et al., NeurIPS 2020): each sample is augmented with a
# probability p that follows D's overfitting. r = E[sign D(real)] is 0 when D cannot tell real
# from fake and 1 when it is sure of every real image; p rises while r is above the target (0.6
# in the ADA paper) and falls below it, by batch / ADAPT_IMAGES per step. ADA's 500k images for p
# to go from 0 to 1 is a large share of a run on a few hundred images at the CPU budget (64k
# images at 4,000 steps); 20k lets p settle within the first third of such a run.
ADAPT_IMAGES = 20_000


def adapted_probability(probability, real_logits, target: float):
    """p after one step: moved towards what keeps E[sign D(real)] at `target`, within [0, 1]."""
    real_logits = ops.cast(real_logits, "float32")
    overfitting = ops.mean(ops.sign(real_logits))
    step = ops.cast(ops.shape(real_logits)[0], "float32") / ADAPT_IMAGES
    return ops.clip(probability + ops.sign(overfitting - target) * step, 0.0, 1.0)


def with_probability(originals: list, augmented: list, probability, seed_generator) -> list:
    """Each sample augmented with probability p (the same choice for every image of the list)."""
    batch = ops.shape(originals[0])[0]
    chosen = keras.random.uniform((batch, 1, 1, 1), seed=seed_generator) < probability
    return [ops.where(chosen, new, ops.cast(old, new.dtype)) for old, new in zip(originals, augmented)]
