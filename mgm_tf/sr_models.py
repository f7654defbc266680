"""SRGAN ×4 networks (Ledig et al. 2017; paper §3.5), fully convolutional so they train on
crops and run on whole images."""

from __future__ import annotations

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="mgm_tf")
class PixelShuffle(layers.Layer):
    """Sub-pixel upsampling (depth-to-space): (H, W, C·r²) → (H·r, W·r, C)."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        shape = ops.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        channels = inputs.shape[-1] // (self.factor ** 2)
        hidden = ops.reshape(inputs, (batch, height, width, self.factor, self.factor, channels))
        hidden = ops.transpose(hidden, (0, 1, 3, 2, 4, 5))
        return ops.reshape(hidden, (batch, height * self.factor, width * self.factor, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        scale = lambda size: None if size is None else size * self.factor  # noqa: E731
        return batch, scale(height), scale(width), channels // (self.factor ** 2)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _prelu():
    return layers.PReLU(shared_axes=[1, 2])


def build_srgan_generator(channels: int = 3, filters: int = 64, num_residual_blocks: int = 16, scale: int = 4,
                          bicubic_skip: bool = True, input_size: int | None = None,
                          name: str = "srgan_generator") -> keras.Model:
    """SRResNet generator: conv 9×9 + PReLU, residual blocks (conv-BN-PReLU-conv-BN + skip), a
    long skip, log2(scale) sub-pixel ×2 stages, conv 9×9. Any input size.

    bicubic_skip=True (default) adds the bicubic upsampling of the input to the output and
    starts the last conv at zero, so the network begins as bicubic interpolation and learns the
    missing detail (the global residual of VDSR/ESRGAN-style models); without it (the SRGAN
    paper's form, tanh output) short runs give images far worse than bicubic."""
    if scale not in (2, 4, 8):
        raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
    low = keras.Input(shape=(input_size, input_size, channels), name="low_resolution")
    hidden = _prelu()(layers.Conv2D(filters, 9, padding="same")(low))
    skip = hidden
    for _ in range(num_residual_blocks):
        residual = _prelu()(layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(hidden)))
        residual = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(residual))
        hidden = layers.Add()([hidden, residual])
    hidden = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(hidden))
    hidden = layers.Add()([hidden, skip])
    for _ in range(int(math.log2(scale))):
        hidden = _prelu()(PixelShuffle(2)(layers.Conv2D(filters * 4, 3, padding="same")(hidden)))
    if not bicubic_skip:
        hidden = layers.Conv2D(channels, 9, padding="same")(hidden)
        return keras.Model(low, layers.Activation("tanh", dtype="float32", name="image")(hidden), name=name)
    detail = layers.Conv2D(channels, 9, padding="same", kernel_initializer="zeros", name="detail")(hidden)
    upsampled = layers.UpSampling2D(scale, interpolation="bicubic", name="bicubic")(low)
    image = layers.Add(dtype="float32", name="image")([layers.Activation("linear", dtype="float32")(upsampled),
                                                        layers.Activation("linear", dtype="float32")(detail)])
    return keras.Model(low, image, name=name)


def build_srgan_discriminator(channels: int = 3, filters: int = 64, dense_units: int = 1024,
                              input_size: int | None = None, name: str = "srgan_discriminator") -> keras.Model:
    """SRGAN discriminator: eight 3×3 convs (f, f/2, 2f, 2f/2, 4f, 4f/2, 8f, 8f/2; BatchNorm after
    the first, LeakyReLU 0.2) → global average pooling (instead of Flatten, so crops and whole
    images both work) → Dense → LeakyReLU → one logit. input_size fixes the size (FLOP counts)."""
    image = keras.Input(shape=(input_size, input_size, channels), name="image")
    hidden = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 3, padding="same")(image))
    plan = [(filters, 2), (filters * 2, 1), (filters * 2, 2), (filters * 4, 1), (filters * 4, 2),
            (filters * 8, 1), (filters * 8, 2)]
    for width, stride in plan:
        hidden = layers.Conv2D(width, 3, strides=stride, padding="same")(hidden)
        hidden = layers.LeakyReLU(0.2)(layers.BatchNormalization()(hidden))
    hidden = layers.GlobalAveragePooling2D()(hidden)
    hidden = layers.LeakyReLU(0.2)(layers.Dense(dense_units)(hidden))
    return keras.Model(image, layers.Dense(1, dtype="float32", name="logit")(hidden), name=name)
