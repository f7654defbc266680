"""The GAN losses every stage and baseline shares (paper eqs. 1–2, always in float32 whatever
the layer policy), the pixel distances and the mode-seeking term (MSGAN) with the batch layout
it needs."""

from __future__ import annotations

import keras
from keras import ops


def bce_from_logits(target: float, logits):
    """Mean binary cross-entropy of logits against a constant target (1 real, 0 fake)."""
    logits = ops.cast(logits, "float32")
    targets = ops.full_like(logits, target)
    return ops.mean(keras.losses.binary_crossentropy(targets, logits, from_logits=True))


def discriminator_loss(real_logits, fake_logits):
    """−[log D(x) + log(1 − D(G(z)))]: the sum of the two BCE terms, as reported in Table 1."""
    return bce_from_logits(1.0, real_logits) + bce_from_logits(0.0, fake_logits)


def generator_loss(fake_logits):
    """Non-saturating generator loss −log D(G(z)) (the usual practical form of eq. 1)."""
    return bce_from_logits(1.0, fake_logits)


def mean_squared_error(target, prediction):
    return ops.mean(ops.square(ops.cast(target, "float32") - ops.cast(prediction, "float32")))


def mean_absolute_error(target, prediction):
    return ops.mean(ops.abs(ops.cast(target, "float32") - ops.cast(prediction, "float32")))


def mode_seeking_term(fake, noise):
    """Mode-seeking regularisation (Mao et al., CVPR 2019, "MSGAN"): 1 / (ratio + ε), where the
    ratio is how far apart two halves of the batch's images are per unit distance of their
    noise. A generator that maps different z to one image (mode collapse, the 12-image demo's
    failure) pays for it. For a conditional generator the two halves must share their
    conditions (`shared_halves`), so the ratio measures what z changes, not what c or y do."""
    half = ops.shape(fake)[0] // 2
    image_distance = ops.mean(ops.abs(ops.cast(fake[:half] - fake[half:2 * half], "float32")))
    noise_distance = ops.mean(ops.abs(noise[:half] - noise[half:2 * half]))
    return 1.0 / (image_distance / noise_distance + 1e-5)


def shared_halves(values):
    """The batch with its second half replaced by its first: x[0..h), x[0..h), then any odd last
    item. A conditional generator fed these conditions (c, y) draws each condition twice, with
    two noise vectors, as MSGAN pairs them."""
    half = ops.shape(values)[0] // 2
    return ops.concatenate([values[:half], values[:half], values[2 * half:]], axis=0)
