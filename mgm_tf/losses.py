"""GAN losses (binary cross-entropy from logits, paper eqs. 1–2), SRGAN content and VGG19
perceptual losses (eq. 3). Everything is computed in float32 whatever the layer policy."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import ops

VGG_MEAN_BGR = (103.939, 116.779, 123.68)
VGG_FEATURE_SCALE = 12.75  # SRGAN's rescaling of VGG feature maps (Ledig et al. 2017)


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


def vgg_preprocess(images):
    """[-1, 1] RGB (grey already repeated to 3 channels) → VGG19's 'caffe' input: 0–255 BGR
    minus the ImageNet channel means."""
    images = (ops.cast(images, "float32") + 1.0) * 127.5
    images = ops.flip(images, axis=-1)
    return images - ops.convert_to_tensor(VGG_MEAN_BGR, dtype="float32")


def build_vgg_extractor(weights: str | None = "imagenet", layer: str = "block5_conv4",
                        input_size: int | None = None) -> keras.Model:
    """Frozen VGG19 feature extractor (SRGAN's φ5,4 by default), built once per trainer.

    weights: "imagenet" (downloads on first use, e.g. on Colab), None (random, for tests and
    offline runs: the perceptual term then measures nothing useful — the report says so), or a
    path to a `.weights.h5`/`.h5` file saved from `keras.applications.VGG19(include_top=False)`.
    """
    local = weights not in (None, "imagenet")
    if local and not Path(weights).is_file():
        raise ValueError(f"VGG19 weights file {weights} does not exist")
    vgg = keras.applications.VGG19(include_top=False, weights=None if local else weights,
                                   input_shape=(input_size, input_size, 3))
    if local:
        vgg.load_weights(weights)
    extractor = keras.Model(vgg.input, vgg.get_layer(layer).output, name=f"vgg19_{layer}")
    extractor.trainable = False
    return extractor


def perceptual_loss(extractor: keras.Model, target, prediction):
    """MSE between VGG19 feature maps of HR and SR images (rescaled as in SRGAN)."""
    target_features = ops.cast(extractor(vgg_preprocess(target), training=False), "float32") / VGG_FEATURE_SCALE
    predicted_features = ops.cast(extractor(vgg_preprocess(prediction), training=False), "float32") / VGG_FEATURE_SCALE
    return ops.mean(ops.square(target_features - predicted_features))
