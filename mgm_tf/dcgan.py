"""Stage 1 (§3.2): the DCGAN G1(z) on all training images — networks, trainer, stage.

Also the "cGAN alone" baseline's network (`num_classes` given: G(z, y), D(x, y)), trained by the
same `train_dcgan`, and the sampler every later stage uses to draw from a trained G1.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from mgm_tf.callbacks import kid_callbacks
from mgm_tf.data.batches import gan_input
from mgm_tf.blocks import SpectralConv2D, SpectralDense, generator_batch_norm, grey_channels, label_input, label_plane
from mgm_tf.gan import LEAK, GANTrainer, unpack
from mgm_tf.losses import discriminator_loss
from mgm_tf.sampling import class_cycle, fixed_noise, noise_for, progress
from mgm_tf.imaging import from_model_range
from mgm_tf.run import compile_trainer, fit_stage, save_networks, strategy_scope, use_diff_augment


LABEL_CONDITIONINGS = ("plane", "projection")


def build_dcgan_generator(latent_dim: int = 100, image_size: int = 64, channels: int = 3, base_filters: int = 256,
                          num_classes: int | None = None, grey: bool = False,
                          name: str = "dcgan_generator") -> keras.Model:
    """DCGAN generator (Radford et al. conventions): z → 4×4×base → transposed convs (4×4,
    stride 2, BatchNorm, ReLU) halving channels per doubling → image_size×image_size tanh.
    With num_classes, a 50-d label embedding is concatenated to z (the cGAN baseline). With
    grey, the last layer draws one grey channel, repeated to `channels` (`grey_channels`)."""
    noise = keras.Input(shape=(latent_dim,), name="noise")
    inputs, hidden = [noise], noise
    if num_classes:
        label = label_input()
        inputs.append(label)
        hidden = layers.Concatenate()([noise, layers.Embedding(num_classes, 50, name="label_embedding")(label)])
    hidden = layers.Dense(4 * 4 * base_filters, use_bias=False)(hidden)
    hidden = layers.ReLU()(generator_batch_norm()(layers.Reshape((4, 4, base_filters))(hidden)))
    size, filters = 4, base_filters
    while size < image_size // 2:
        filters //= 2
        hidden = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(hidden)
        hidden = layers.ReLU()(generator_batch_norm()(hidden))
        size *= 2
    hidden = layers.Conv2DTranspose(1 if grey else channels, 4, strides=2, padding="same")(hidden)
    image = grey_channels(layers.Activation("tanh", dtype="float32")(hidden), channels if grey else 1)
    return keras.Model(inputs if num_classes else noise, image, name=name)


def build_dcgan_discriminator(image_size: int = 64, channels: int = 3, base_filters: int = 64,
                              num_classes: int | None = None, spectral_norm: bool = False,
                              label_conditioning: str = "plane", name: str = "dcgan_discriminator") -> keras.Model:
    """DCGAN discriminator: strided 4×4 convs 64→128→256 with LeakyReLU(0.2), BatchNorm on all
    but the first, flatten → one logit. With num_classes the label enters as a plane beside the
    image ("plane", §3.3's embedding) or, with "projection", as an inner product of a class
    embedding with the last features added to the logit (Miyato & Koyama 2018): D then asks
    "is this a real image of class y", not only "is this real", which ties G's samples to y.
    With spectral_norm every conv and the logit are spectrally normalised and BatchNorm is
    left out (SN-GAN's discriminator, Miyato et al. 2018)."""
    if label_conditioning not in LABEL_CONDITIONINGS:
        raise ValueError(f"dcgan.label_conditioning must be one of {LABEL_CONDITIONINGS}, got {label_conditioning!r}")
    convolution, dense = (SpectralConv2D, SpectralDense) if spectral_norm else (layers.Conv2D, layers.Dense)
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    inputs, hidden = [image], image
    if num_classes:
        label = label_input()
        inputs.append(label)
        if label_conditioning == "plane":
            hidden = layers.Concatenate()([image, label_plane(label, num_classes, image_size, "label")])
    for index, filters in enumerate((base_filters, base_filters * 2, base_filters * 4)):
        hidden = convolution(filters, 4, strides=2, padding="same")(hidden)
        if index and not spectral_norm:
            hidden = layers.BatchNormalization()(hidden)
        hidden = layers.LeakyReLU(LEAK)(hidden)
    features = layers.Flatten()(hidden)
    logit = dense(1, dtype="float32", name="logit")(features)
    if num_classes and label_conditioning == "projection":
        embedded = layers.Embedding(num_classes, features.shape[-1], name="label_projection")(label)
        projection = layers.Dot(axes=1, dtype="float32", name="projection")([features, embedded])
        logit = layers.Add(dtype="float32", name="conditional_logit")([logit, projection])
    return keras.Model(inputs if num_classes else image, logit, name=name)


def build_dcgan(stage_config, num_classes=None, grey: bool = False):
    generator = build_dcgan_generator(stage_config.latent_dim, base_filters=stage_config.base_filters,
                                      num_classes=num_classes, grey=grey)
    return generator, build_dcgan_discriminator(base_filters=stage_config.discriminator_filters,
                                                num_classes=num_classes, spectral_norm=stage_config.spectral_norm,
                                                label_conditioning=stage_config.label_conditioning)


class DCGANTrainer(GANTrainer):
    """G1(z) — or, with label-conditioned networks, the "cGAN alone" baseline G(z, y). With
    r1 > 0, D's loss adds r1/2 · E‖∇ₓD(x)‖² on real images (Mescheder et al. 2018), estimated
    by `gradient_norm_estimate`."""

    def __init__(self, generator, discriminator, latent_dim: int = 100, seed: int = 0, r1: float = 0.0, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed, **kwargs)
        if r1 < 0:
            raise ValueError(f"dcgan.r1 (the R1 penalty's weight) must be at least 0, got {r1}")
        self.conditional = len(generator.inputs) > 1
        self.r1 = float(r1)

    def compute_losses(self, data) -> dict:
        images, labels = unpack(data)
        noise = self.noise(ops.shape(images)[0])
        if self.conditional:
            fake_labels = self.generator_conditions(labels)
            fake = self.generator([noise, fake_labels], training=True)
            real_inputs = self.augmented([images, labels])
            real_logits = self.discriminator(real_inputs, training=True)
            fake_logits = self.discriminator(self.augmented([fake, fake_labels]), training=True)
        else:
            fake = self.generator(noise, training=True)
            real_inputs = self.augmented(images)
            real_logits = self.discriminator(real_inputs, training=True)
            fake_logits = self.discriminator(self.augmented(fake), training=True)
        d_loss = discriminator_loss(real_logits, fake_logits)
        if self.r1:
            d_loss = d_loss + 0.5 * self.r1 * self.gradient_norm_estimate(real_inputs, real_logits)
        return {"d_loss": d_loss, "g_loss": self.generator_objective(fake_logits, fake, noise),
                **self.adapt_augmentation(real_logits)}

    def gradient_norm_estimate(self, inputs, logits, step: float = 0.01):
        """E‖∇ₓD(x)‖² from one more forward pass: for ε ~ N(0, I), (D(x + hε) − D(x))² / h² has
        expectation ‖∇ₓD(x)‖² + O(h) (Roth et al. 2017 read noise on D's inputs as this
        penalty). The same code on every backend and under every distribution strategy, where
        an exact R1 needs a second-order gradient written per backend."""
        items = list(inputs) if isinstance(inputs, list) else [inputs]
        images = ops.cast(items[0], "float32")
        items[0] = images + step * keras.random.normal(ops.shape(images), seed=self.seed_generator)
        moved = self.discriminator(items if isinstance(inputs, list) else items[0], training=True)
        return ops.mean(ops.square(ops.cast(moved, "float32") - ops.cast(logits, "float32"))) / step ** 2


def g1_classes(run, num_classes: int):
    """The number of classes G1 is conditioned on: None (the paper's unconditional §3.2 DCGAN)
    unless synthesis.conditioning is "conditional_g1", a named deviation (DESIGN.md)."""
    return num_classes if run.config.synthesis.conditioning == "conditional_g1" else None


def dcgan_trainer(run, num_classes, diff_augment: bool, strategy=None) -> DCGANTrainer:
    """Stage 1's trainer as the run's configuration builds it, compiled."""
    stage_config = run.config.dcgan
    with strategy_scope(strategy):
        generator, discriminator = build_dcgan(stage_config, num_classes, run.grey_output())
        trainer = DCGANTrainer(generator, discriminator, stage_config.latent_dim, run.config.seed,
                               diff_augment=diff_augment, mode_seeking=stage_config.mode_seeking,
                               augment_policy=stage_config.augment_policy, augment_target=stage_config.augment_target,
                               generator_average=stage_config.generator_average, r1=stage_config.r1,
                               update_order=stage_config.update_order)
        compile_trainer(trainer, stage_config, run, compiles=not diff_augment)  # see device.resolve_jit
    return trainer


def train_dcgan(run, prepared, strategy, stage_name: str, num_classes, label: str) -> dict:
    """A DCGAN G(z) — or, with num_classes, G(z, y) — with stage 1's settings, into <run>/<stage_name>/."""
    stage_config, stage_dir = run.config.dcgan, run.stage_dir(stage_name)
    trainer = dcgan_trainer(run, num_classes, use_diff_augment(stage_config, prepared), strategy)
    generator, discriminator = trainer.sampling_generator, trainer.discriminator
    dataset = gan_input(prepared, "train", stage_config.batch_size, run.config.seed, stage_config.balanced,
                        labels=bool(num_classes), steps=stage_config.steps_per_epoch)
    noise = fixed_noise(run.config.seed, 16, stage_config.latent_dim)
    preview_labels = class_cycle(num_classes, 16) if num_classes else None
    monitor_seeds = np.arange(stage_config.kid_samples) + 10_000
    monitor_labels = class_cycle(num_classes, stage_config.kid_samples) if num_classes else None

    def preview():
        return generator([noise, preview_labels] if num_classes else noise, training=False)

    def sample():
        return unconditional_samples(generator, monitor_seeds, stage_config.latent_dim,
                                     labels=monitor_labels, label="")

    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, label,
                     extra_callbacks=kid_callbacks(run, prepared, stage_config, stage_dir, sample),
                     steps_per_epoch=stage_config.steps_per_epoch,
                     steps_per_execution=run.config.steps_per_execution, hooks=run.hooks)
    networks = {"generator": generator, "discriminator": discriminator}
    if trainer.average_generator is not None:  # "generator" is what every later stage samples: the average
        networks["generator_live"] = trainer.generator
    info["parameters"] = save_networks(stage_dir, stage_config, networks)
    if "generator_live" in networks:  # the average's weights are not trainable; its network's are
        info["parameters"]["generator"] = info["parameters"].pop("generator_live")
    return info


def stage_dcgan(run, prepared, strategy=None) -> dict:
    """Stage 1 (§3.2): unconditional DCGAN on all training images of the dataset."""
    classes = g1_classes(run, prepared.num_classes)
    label = "stage 1/4: DCGAN" + (" (class-conditional G1: a deviation from §3.2)" if classes else "")
    return train_dcgan(run, prepared, strategy, "dcgan", classes, label)


def load_dcgan_generator(run, num_classes: int):
    """G1 with its trained weights (class-conditional when the run was made so)."""
    generator, _ = build_dcgan(run.config.dcgan, g1_classes(run, num_classes), run.grey_output())
    generator.load_weights(str(run.path / "dcgan" / "generator.weights.h5"))
    return generator


def unconditional_samples(generator, seeds: np.ndarray, latent_dim: int = 100, batch_size: int = 128,
                          labels: np.ndarray | None = None, label: str = "synthesis") -> np.ndarray:
    """G(z) or, for a label-conditioned generator, G(z, y): uint8 images, one seed per image."""
    images = []
    bar = progress(len(seeds), label)
    for start in range(0, len(seeds), batch_size):
        stop = min(start + batch_size, len(seeds))
        (noise,) = noise_for(seeds[start:stop], latent_dim)
        inputs = [noise, np.asarray(labels[start:stop], np.int32)] if labels is not None else noise
        images.append(from_model_range(generator(inputs, training=False)))
        bar.update(stop)
    return np.concatenate(images) if images else np.zeros((0, 64, 64, 3), np.uint8)
