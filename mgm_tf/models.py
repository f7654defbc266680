"""Functional builders for the 64×64 GANs: DCGAN (stage 1), label-conditioned DCGAN ("cGAN
alone" baseline), the paper's conditional refinement G/D (§3.6/§3.7) and a CycleGAN pair.

Output layers (tanh images, discriminator logits) are float32 under any mixed-precision policy
so losses are computed in float32.
"""

from __future__ import annotations

import keras
from keras import layers

LEAK = 0.2
# Generator BatchNorm momentum 0.9 (PyTorch's 0.1): moving statistics follow a fast-changing
# generator; with Keras' 0.99 the inference-mode samples of a short run came out flat grey.
GENERATOR_BN_MOMENTUM = 0.9


def _generator_batch_norm():
    return layers.BatchNormalization(momentum=GENERATOR_BN_MOMENTUM)


def _label_plane(label, num_classes: int, size: int, name: str):
    """Class label → one size×size feature plane (embedding → dense → reshape), as in §3.3's
    "label information using embedding layers" and the common Keras cGAN recipe."""
    embedded = layers.Embedding(num_classes, 50, name=f"{name}_embedding")(label)
    plane = layers.Dense(size * size, name=f"{name}_dense")(embedded)
    return layers.Reshape((size, size, 1), name=f"{name}_plane")(plane)


def _label_input():
    return keras.Input(shape=(), dtype="int32", name="label")


def build_dcgan_generator(latent_dim: int = 100, image_size: int = 64, channels: int = 3, base_filters: int = 256,
                          num_classes: int | None = None, name: str = "dcgan_generator") -> keras.Model:
    """DCGAN generator (Radford et al. conventions): z → 4×4×base → transposed convs (4×4,
    stride 2, BatchNorm, ReLU) halving channels per doubling → image_size×image_size tanh.
    With num_classes, a 50-d label embedding is concatenated to z (the cGAN baseline)."""
    noise = keras.Input(shape=(latent_dim,), name="noise")
    inputs, hidden = [noise], noise
    if num_classes:
        label = _label_input()
        inputs.append(label)
        hidden = layers.Concatenate()([noise, layers.Embedding(num_classes, 50, name="label_embedding")(label)])
    hidden = layers.Dense(4 * 4 * base_filters, use_bias=False)(hidden)
    hidden = layers.ReLU()(_generator_batch_norm()(layers.Reshape((4, 4, base_filters))(hidden)))
    size, filters = 4, base_filters
    while size < image_size // 2:
        filters //= 2
        hidden = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(hidden)
        hidden = layers.ReLU()(_generator_batch_norm()(hidden))
        size *= 2
    hidden = layers.Conv2DTranspose(channels, 4, strides=2, padding="same")(hidden)
    image = layers.Activation("tanh", dtype="float32", name="image")(hidden)
    return keras.Model(inputs if num_classes else noise, image, name=name)


def build_dcgan_discriminator(image_size: int = 64, channels: int = 3, base_filters: int = 64,
                              num_classes: int | None = None, name: str = "dcgan_discriminator") -> keras.Model:
    """DCGAN discriminator: strided 4×4 convs 64→128→256 with LeakyReLU(0.2), BatchNorm on all
    but the first, flatten → one logit. With num_classes a label plane joins the image."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    inputs, hidden = [image], image
    if num_classes:
        label = _label_input()
        inputs.append(label)
        hidden = layers.Concatenate()([image, _label_plane(label, num_classes, image_size, "label")])
    for index, filters in enumerate((base_filters, base_filters * 2, base_filters * 4)):
        hidden = layers.Conv2D(filters, 4, strides=2, padding="same")(hidden)
        if index:
            hidden = layers.BatchNormalization()(hidden)
        hidden = layers.LeakyReLU(LEAK)(hidden)
    logit = layers.Dense(1, dtype="float32", name="logit")(layers.Flatten()(hidden))
    return keras.Model(inputs if num_classes else image, logit, name=name)


def build_conditional_generator(latent_dim: int = 100, image_size: int = 64, channels: int = 3,
                                num_classes: int | None = None, name: str = "conditional_generator") -> keras.Model:
    """The refinement generator G2(z, c[, y]) of §3.6.

    noise (100) → Dense 16,384 → 8×8×256 → LeakyReLU
    condition 64×64×3 → Conv 5×5/4 → 16×16×64 → LeakyReLU → Conv 4×4/2 → 8×8×128 → LeakyReLU
    concat 8×8×384 (+1 label plane with num_classes) → ConvT 4×4/2 to 16×16×128, 32×32×64,
    64×64×32, each + BatchNorm + LeakyReLU → Conv 3×3 → 64×64×3 tanh.
    Kernel sizes are not given in the paper: 5×5 for the stride-4 conv (overlapping windows),
    4×4 for stride-2 layers (divisible by the stride: no checkerboard), 3×3 for the output.
    With num_classes=None this is the paper's network exactly: 2,742,659 trainable parameters
    (+448 BatchNorm statistics); the Dense layer alone has 1,654,784, more than the paper's
    0.67 M for the whole model.
    """
    if image_size != 64:
        raise ValueError(f"the paper's conditional generator is defined for 64×64 images, got {image_size}")
    noise = keras.Input(shape=(latent_dim,), name="noise")
    condition = keras.Input(shape=(image_size, image_size, channels), name="condition")
    noise_path = layers.Reshape((8, 8, 256))(layers.Dense(16384, name="noise_dense")(noise))
    noise_path = layers.LeakyReLU(LEAK)(noise_path)
    condition_path = layers.LeakyReLU(LEAK)(layers.Conv2D(64, 5, strides=4, padding="same", name="condition_conv1")(condition))
    condition_path = layers.LeakyReLU(LEAK)(layers.Conv2D(128, 4, strides=2, padding="same", name="condition_conv2")(condition_path))
    parts, inputs = [noise_path, condition_path], [noise, condition]
    if num_classes:
        label = _label_input()
        inputs.append(label)
        parts.append(_label_plane(label, num_classes, 8, "label"))
    hidden = layers.Concatenate(name="bottleneck")(parts)
    for filters in (128, 64, 32):
        hidden = layers.Conv2DTranspose(filters, 4, strides=2, padding="same")(hidden)
        hidden = layers.LeakyReLU(LEAK)(_generator_batch_norm()(hidden))
    hidden = layers.Conv2D(channels, 3, padding="same", name="output_conv")(hidden)
    image = layers.Activation("tanh", dtype="float32", name="image")(hidden)
    return keras.Model(inputs, image, name=name)


def build_conditional_discriminator(image_size: int = 64, channels: int = 3, num_classes: int | None = None,
                                    name: str = "conditional_discriminator") -> keras.Model:
    """The pair discriminator D(x, c[, y]) of §3.7: image and condition concatenated to
    64×64×6 (+1 label plane) → Conv 4×4/2 with 64, 128, 256 filters, LeakyReLU, no BatchNorm →
    8×8×256 → Flatten 16,384 → Dense 1 (logit). Paper-exact (num_classes=None): 678,337
    parameters — this network alone matches the paper's "0.67 M"."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    condition = keras.Input(shape=(image_size, image_size, channels), name="condition")
    parts, inputs = [image, condition], [image, condition]
    if num_classes:
        label = _label_input()
        inputs.append(label)
        parts.append(_label_plane(label, num_classes, image_size, "label"))
    hidden = layers.Concatenate(name="pair")(parts)
    for filters in (64, 128, 256):
        hidden = layers.LeakyReLU(LEAK)(layers.Conv2D(filters, 4, strides=2, padding="same")(hidden))
    logit = layers.Dense(1, dtype="float32", name="logit")(layers.Flatten(name="flatten")(hidden))
    return keras.Model(inputs, logit, name=name)


def _instance_norm():
    return layers.GroupNormalization(groups=-1, epsilon=1e-5)  # groups=-1: one group per channel


def build_cycle_generator(image_size: int = 64, channels: int = 3, filters: int = 32, num_residual_blocks: int = 6,
                          name: str = "cycle_generator") -> keras.Model:
    """CycleGAN ResNet generator (Zhu et al.) sized for 64×64: c7s1-f, d2f, d4f, residual
    blocks, u2f, uf, c7s1-3; instance normalisation, ReLU, tanh output."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    hidden = layers.ReLU()(_instance_norm()(layers.Conv2D(filters, 7, padding="same")(image)))
    for multiple in (2, 4):
        hidden = layers.ReLU()(_instance_norm()(layers.Conv2D(filters * multiple, 3, strides=2, padding="same")(hidden)))
    for _ in range(num_residual_blocks):
        residual = layers.ReLU()(_instance_norm()(layers.Conv2D(filters * 4, 3, padding="same")(hidden)))
        residual = _instance_norm()(layers.Conv2D(filters * 4, 3, padding="same")(residual))
        hidden = layers.Add()([hidden, residual])
    for multiple in (2, 1):
        hidden = layers.Conv2DTranspose(filters * multiple, 3, strides=2, padding="same")(hidden)
        hidden = layers.ReLU()(_instance_norm()(hidden))
    hidden = layers.Conv2D(channels, 7, padding="same")(hidden)
    return keras.Model(image, layers.Activation("tanh", dtype="float32")(hidden), name=name)


def build_patch_discriminator(image_size: int = 64, channels: int = 3, filters: int = 64,
                              name: str = "patch_discriminator") -> keras.Model:
    """PatchGAN discriminator: 4×4 convs f, 2f (stride 2), 4f (stride 1) → a map of patch logits."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    hidden = layers.LeakyReLU(LEAK)(layers.Conv2D(filters, 4, strides=2, padding="same")(image))
    hidden = layers.LeakyReLU(LEAK)(_instance_norm()(layers.Conv2D(filters * 2, 4, strides=2, padding="same")(hidden)))
    hidden = layers.LeakyReLU(LEAK)(_instance_norm()(layers.Conv2D(filters * 4, 4, padding="same")(hidden)))
    logits = layers.Conv2D(1, 4, padding="same", dtype="float32")(hidden)
    return keras.Model(image, logits, name=name)


def count_parameters(model: keras.Model) -> dict:
    """Trainable and non-trainable parameter counts (BatchNorm moving statistics are non-trainable)."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": non_trainable, "total": trainable + non_trainable}
