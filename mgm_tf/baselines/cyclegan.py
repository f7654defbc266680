"""The CycleGAN baseline (paper §4 compares against it): class 0 ↔ class 1 translation at 64×64
— networks, trainer and stage.

Two generators (A→B, B→A) and two PatchGAN discriminators; adversarial BCE from logits (as the
other trainers, for Table 1 parity), cycle-consistency L1 (λ = 10) and identity L1 (λ/2).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from mgm_tf.data.batches import pair_input
from mgm_tf.gan import LEAK, GANTrainer, unpack
from mgm_tf.losses import discriminator_loss, generator_loss, mean_absolute_error
from mgm_tf.imaging import to_model_range
from mgm_tf.run import compile_trainer, fit_stage, save_networks, strategy_scope


class CycleGANTrainer(GANTrainer):
    """Two translators (A→B, B→A) and two discriminators; `generator` is the A→B translator, what
    the baseline uses to synthesise class-B images. Gradients as every GAN trainer takes them
    (`GANTrainer.train_step`): the generators' from g_loss, the discriminators' from d_loss."""

    tracked = ("d_loss", "g_loss", "cycle", "identity")

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b, cycle_weight: float = 10.0,
                 **kwargs):
        super().__init__(generator_ab, discriminator_a, latent_dim=0, **kwargs)
        self.generator_ab, self.generator_ba = generator_ab, generator_ba
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.cycle_weight = cycle_weight

    def generator_variables(self):
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    def discriminator_variables(self):
        return self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables

    def compute_losses(self, data) -> dict:
        real_a, real_b = unpack(data[0])[0], unpack(data[1])[0]
        fake_b = self.generator_ab(real_a, training=True)
        fake_a = self.generator_ba(real_b, training=True)
        cycle = (mean_absolute_error(real_a, self.generator_ba(fake_b, training=True))
                 + mean_absolute_error(real_b, self.generator_ab(fake_a, training=True)))
        identity = (mean_absolute_error(real_a, self.generator_ba(real_a, training=True))
                    + mean_absolute_error(real_b, self.generator_ab(real_b, training=True)))
        fake_a_logits = self.discriminator_a(fake_a, training=True)
        fake_b_logits = self.discriminator_b(fake_b, training=True)
        adversarial = generator_loss(fake_a_logits) + generator_loss(fake_b_logits)
        d_loss = 0.5 * (discriminator_loss(self.discriminator_a(real_a, training=True), fake_a_logits)
                        + discriminator_loss(self.discriminator_b(real_b, training=True), fake_b_logits))
        return {"d_loss": d_loss, "g_loss": adversarial + self.cycle_weight * cycle + 0.5 * self.cycle_weight * identity,
                "cycle": cycle, "identity": identity}


def instance_norm():
    return layers.GroupNormalization(groups=-1, epsilon=1e-5)  # groups=-1: one group per channel


def build_cycle_generator(image_size: int = 64, channels: int = 3, filters: int = 32, num_residual_blocks: int = 6,
                          name: str = "cycle_generator") -> keras.Model:
    """CycleGAN ResNet generator (Zhu et al.) sized for 64×64: c7s1-f, d2f, d4f, residual
    blocks, u2f, uf, c7s1-3; instance normalisation, ReLU, tanh output."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    hidden = layers.ReLU()(instance_norm()(layers.Conv2D(filters, 7, padding="same")(image)))
    for multiple in (2, 4):
        hidden = layers.ReLU()(instance_norm()(layers.Conv2D(filters * multiple, 3, strides=2, padding="same")(hidden)))
    for _ in range(num_residual_blocks):
        residual = layers.ReLU()(instance_norm()(layers.Conv2D(filters * 4, 3, padding="same")(hidden)))
        residual = instance_norm()(layers.Conv2D(filters * 4, 3, padding="same")(residual))
        hidden = layers.Add()([hidden, residual])
    for multiple in (2, 1):
        hidden = layers.Conv2DTranspose(filters * multiple, 3, strides=2, padding="same")(hidden)
        hidden = layers.ReLU()(instance_norm()(hidden))
    hidden = layers.Conv2D(channels, 7, padding="same")(hidden)
    return keras.Model(image, layers.Activation("tanh", dtype="float32")(hidden), name=name)


def build_patch_discriminator(image_size: int = 64, channels: int = 3, filters: int = 64,
                              name: str = "patch_discriminator") -> keras.Model:
    """PatchGAN discriminator: 4×4 convs f, 2f (stride 2), 4f (stride 1) → a map of patch logits."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    hidden = layers.LeakyReLU(LEAK)(layers.Conv2D(filters, 4, strides=2, padding="same")(image))
    hidden = layers.LeakyReLU(LEAK)(instance_norm()(layers.Conv2D(filters * 2, 4, strides=2, padding="same")(hidden)))
    hidden = layers.LeakyReLU(LEAK)(instance_norm()(layers.Conv2D(filters * 4, 4, padding="same")(hidden)))
    logits = layers.Conv2D(1, 4, padding="same", dtype="float32")(hidden)
    return keras.Model(image, logits, name=name)


def cycle_domains(prepared, split: str = "train"):
    """(class 0 images, class 1 images) as model-range arrays: the translated pair of classes."""
    first = ops.convert_to_numpy(to_model_range(prepared.images_gan[prepared.indices(split, 0)]))
    second = ops.convert_to_numpy(to_model_range(prepared.images_gan[prepared.indices(split, 1)]))
    return first, second


def build_cyclegan(filters: int = 32, residual_blocks: int = 6):
    return ([build_cycle_generator(filters=filters, num_residual_blocks=residual_blocks, name=n)
             for n in ("generator_ab", "generator_ba")]
            + [build_patch_discriminator(name=n) for n in ("discriminator_a", "discriminator_b")])


def stage_baseline_cyclegan(run, prepared, strategy=None) -> dict:
    """CycleGAN between the first two classes (class 0 ↔ class 1), epochs and batch of stage 1."""
    stage_config, stage_dir = run.config.dcgan, run.stage_dir("baseline_cyclegan")
    first, second = cycle_domains(prepared)
    if not len(first) or not len(second):
        raise ValueError("CycleGAN baseline needs training images of the first two classes")
    with strategy_scope(strategy):
        networks = build_cyclegan()
        trainer = CycleGANTrainer(*networks)
        compile_trainer(trainer, stage_config, run)
    dataset = pair_input(first, second, stage_config.batch_size)
    preview_a = first[:8]

    def preview():
        return np.concatenate([preview_a, np.asarray(networks[0](preview_a, training=False))])

    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, "baseline: CycleGAN (class 0 <-> class 1)",
                     steps_per_execution=run.config.steps_per_execution, hooks=run.hooks)
    names = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
    info["parameters"] = save_networks(stage_dir, stage_config, dict(zip(names, networks)))
    info["parameters"]["generator"] = {"trainable": sum(info["parameters"][n]["trainable"] for n in names[:2])}
    info["parameters"]["discriminator"] = {"trainable": sum(info["parameters"][n]["trainable"] for n in names[2:])}
    return info
