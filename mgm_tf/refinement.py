"""Stage 2: the refinement GAN. The residual refiner G2(z, c) = c + r trained on G1's own samples
(the default), and the paper's G2(z, c, y) / D2 (§3.3, §3.6, §3.7) trained on (c = degrade(x),
x, y) with optional per-class fine-tuning. The sampler x = G2(z2, G1(z1), y) that synthesis and
KID monitoring draw from is `mgm_tf.sampling`'s.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers, ops

from mgm_tf.callbacks import kid_callbacks
from mgm_tf.data.batches import gan_input
from mgm_tf.dcgan import load_dcgan_generator
from mgm_tf.blocks import generator_batch_norm, grey_channels, label_input, label_plane
from mgm_tf.gan import LEAK, GANTrainer, unpack
from mgm_tf.losses import discriminator_loss, generator_loss, mean_absolute_error, mean_squared_error
from mgm_tf.sampling import class_cycle, fixed_noise, refine_samples
from mgm_tf.imaging import to_model_range
from mgm_tf.run import compile_trainer, fit_stage, save_networks, strategy_scope, use_diff_augment


# --- networks -------------------------------------------------------------------------------

def scaled_width(filters: int, width: float) -> int:
    """A layer's channel count times the width multiplier (at least 1)."""
    return max(1, int(round(filters * width)))


def build_conditional_generator(latent_dim: int = 100, image_size: int = 64, channels: int = 3,
                                num_classes: int | None = None, width: float = 1.0, grey: bool = False,
                                name: str = "conditional_generator") -> keras.Model:
    """The refinement generator G2(z, c[, y]) of §3.6.

    noise (100) → Dense 16,384 → 8×8×256 → LeakyReLU
    condition 64×64×3 → Conv 5×5/4 → 16×16×64 → LeakyReLU → Conv 4×4/2 → 8×8×128 → LeakyReLU
    concat 8×8×384 (+1 label plane with num_classes) → ConvT 4×4/2 to 16×16×128, 32×32×64,
    64×64×32, each + BatchNorm + LeakyReLU → Conv 3×3 → 64×64×3 tanh.
    Kernel sizes are not given in the paper: 5×5 for the stride-4 conv (overlapping windows),
    4×4 for stride-2 layers (divisible by the stride: no checkerboard), 3×3 for the output.
    With num_classes=None this is the paper's network exactly: 2,742,659 trainable parameters
    (+448 BatchNorm statistics); the Dense layer alone has 1,654,784, more than the paper's
    0.67 M for the whole model. `width` multiplies every channel count (1.0: the paper's); the
    demo halves it (DESIGN.md "The demo on any CPU"). With grey, one grey channel is drawn and
    repeated (`blocks.grey_channels`).
    """
    inputs, hidden = _refinement_body(latent_dim, image_size, channels, num_classes, width)
    hidden = layers.Conv2D(1 if grey else channels, 3, padding="same", name="output_conv")(hidden)
    image = grey_channels(layers.Activation("tanh", dtype="float32")(hidden), channels if grey else 1)
    return keras.Model(inputs, image, name=name)


def build_residual_refiner(latent_dim: int = 100, image_size: int = 64, channels: int = 3, width: float = 1.0,
                           grey: bool = False, name: str = "residual_refiner") -> keras.Model:
    """G2(z, c) = clip(c + r(z, c), −1, 1): §3.6's network body computes a correction r that is
    added to its input (SimGAN's refiner, Shrivastava et al. 2017, is residual for the same
    reason). The output convolution starts at zero, so an untrained refiner is the identity:
    training can only move G1's samples as far as its losses pay for, never start from noise."""
    inputs, hidden = _refinement_body(latent_dim, image_size, channels, None, width)
    residual = layers.Conv2D(1 if grey else channels, 3, padding="same", kernel_initializer="zeros",
                             name="residual_conv")(hidden)
    residual = grey_channels(layers.Activation("linear", dtype="float32")(residual), channels if grey else 1,
                             name="residual")
    refined = layers.Add(dtype="float32")([inputs[1], residual])
    return keras.Model(inputs, ModelRange(name="image")(refined), name=name)


class ModelRange(layers.Layer):
    """Clips to the networks' image range [−1, 1] (float32 under every precision policy)."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float32", **kwargs)

    def call(self, images):
        return ops.clip(images, -1.0, 1.0)


def _refinement_body(latent_dim: int, image_size: int, channels: int, num_classes: int | None, width: float):
    """§3.6's inputs and body up to its last 64×64×32 features (shared by both refiners)."""
    if image_size != 64:
        raise ValueError(f"the paper's conditional generator is defined for 64×64 images, got {image_size}")
    noise = keras.Input(shape=(latent_dim,), name="noise")
    condition = keras.Input(shape=(image_size, image_size, channels), name="condition")
    noise_channels = scaled_width(256, width)
    noise_path = layers.Reshape((8, 8, noise_channels))(layers.Dense(64 * noise_channels, name="noise_dense")(noise))
    noise_path = layers.LeakyReLU(LEAK)(noise_path)
    condition_path = layers.LeakyReLU(LEAK)(layers.Conv2D(scaled_width(64, width), 5, strides=4, padding="same",
                                                          name="condition_conv1")(condition))
    condition_path = layers.LeakyReLU(LEAK)(layers.Conv2D(scaled_width(128, width), 4, strides=2, padding="same",
                                                          name="condition_conv2")(condition_path))
    parts, inputs = [noise_path, condition_path], [noise, condition]
    if num_classes:
        label = label_input()
        inputs.append(label)
        parts.append(label_plane(label, num_classes, 8, "label"))
    hidden = layers.Concatenate(name="bottleneck")(parts)
    for filters in (128, 64, 32):
        hidden = layers.Conv2DTranspose(scaled_width(filters, width), 4, strides=2, padding="same")(hidden)
        hidden = layers.LeakyReLU(LEAK)(generator_batch_norm()(hidden))
    return inputs, hidden


def build_conditional_discriminator(image_size: int = 64, channels: int = 3, num_classes: int | None = None,
                                    width: float = 1.0, paired: bool = True,
                                    name: str = "conditional_discriminator") -> keras.Model:
    """The pair discriminator D(x, c[, y]) of §3.7: image and condition concatenated to
    64×64×6 (+1 label plane) → Conv 4×4/2 with 64, 128, 256 filters, LeakyReLU, no BatchNorm →
    8×8×256 → Flatten 16,384 → Dense 1 (logit). Paper-exact (num_classes=None): 678,337
    parameters — this network alone matches the paper's "0.67 M". `width` multiplies the filters.
    paired=False: the same network on the image alone, D(x), the residual refiner's critic
    (a real image has no G1 sample to pair it with)."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")
    parts, inputs = [image], [image]
    if paired:
        condition = keras.Input(shape=(image_size, image_size, channels), name="condition")
        parts.append(condition)
        inputs.append(condition)
    if num_classes:
        label = label_input()
        inputs.append(label)
        parts.append(label_plane(label, num_classes, image_size, "label"))
    hidden = layers.Concatenate(name="pair")(parts) if len(parts) > 1 else image
    for filters in (64, 128, 256):
        hidden = layers.LeakyReLU(LEAK)(layers.Conv2D(scaled_width(filters, width), 4, strides=2, padding="same")(hidden))
    logit = layers.Dense(1, dtype="float32", name="logit")(layers.Flatten(name="flatten")(hidden))
    return keras.Model(inputs if len(inputs) > 1 else image, logit, name=name)


REFINERS = ("residual", "paper")


def build_conditional(stage_config, num_classes, grey: bool = False):
    """G2 and D2 of the configured refiner: "paper" (§3.6/§3.7, trained on degrade(x)) or
    "residual" (G2(z, c) = c + r, D2(x), trained on G1's samples)."""
    if stage_config.refiner not in REFINERS:
        raise ValueError(f"cgan.refiner must be one of {REFINERS}, got {stage_config.refiner!r}")
    if stage_config.refiner == "residual":
        return (build_residual_refiner(stage_config.latent_dim, width=stage_config.width, grey=grey),
                build_conditional_discriminator(width=stage_config.width, paired=False))
    classes = num_classes if stage_config.label_conditioned else None
    return (build_conditional_generator(stage_config.latent_dim, num_classes=classes, width=stage_config.width,
                                        grey=grey),
            build_conditional_discriminator(num_classes=classes, width=stage_config.width))


# --- training ------------------------------------------------------------------------------

def degrade(images, seed_generator, min_size: int = 16, noise_std: float = 0.05, jitter: float = 0.1):
    """The stage-2 conditioning image c = degrade(x): down/up-sampling blur (to 16 or 32 px and
    back), additive Gaussian noise and brightness/contrast jitter — the kind of softness and
    artefacts a 64×64 DCGAN sample has, so G2 learns to refine G1's outputs (DESIGN.md)."""
    size = images.shape[1]
    if min_size < 1 or size % min_size or size % min(size, 2 * min_size):
        raise ValueError(f"degrade_min_size must divide the image size {size} (as must twice it, up to {size}), "
                         f"got {min_size}")
    batch = ops.shape(images)[0]

    def down_up(low_size):  # box-filter downsample (average pooling: XLA-friendly), bilinear back up
        factor = size // low_size
        low = ops.average_pool(images, pool_size=factor, strides=factor, padding="valid")
        return ops.image.resize(low, (size, size), interpolation="bilinear")

    coarse = ops.cast(keras.random.uniform((batch, 1, 1, 1), seed=seed_generator) < 0.5, images.dtype)
    blurred = coarse * down_up(min_size) + (1.0 - coarse) * down_up(min(size, 2 * min_size))
    contrast = 1.0 + keras.random.uniform((batch, 1, 1, 1), -jitter, jitter, seed=seed_generator)
    brightness = keras.random.uniform((batch, 1, 1, 1), -jitter, jitter, seed=seed_generator)
    noisy = blurred * contrast + brightness + noise_std * keras.random.normal(ops.shape(images), seed=seed_generator)
    return ops.clip(noisy, -1.0, 1.0)


class ConditionalRefinementTrainer(GANTrainer):
    """G2(z, c[, y]) learns x from c = degrade(x); D2 judges the pair (x, c[, y]) (§3.3, §3.6, §3.7)."""

    def __init__(self, generator, discriminator, latent_dim: int = 100, seed: int = 0, degrade_min_size: int = 16,
                 degrade_noise: float = 0.05, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed, **kwargs)
        self.labelled = len(generator.inputs) > 2
        self.degrade_min_size = degrade_min_size
        self.degrade_noise = degrade_noise

    def compute_losses(self, data) -> dict:
        images, labels = unpack(data)
        condition = degrade(images, self.seed_generator, self.degrade_min_size, self.degrade_noise)
        noise = self.noise(ops.shape(images)[0])
        label = [labels] if self.labelled else []
        fake_condition = [self.generator_conditions(value) for value in [condition] + label]
        fake = self.generator([noise] + fake_condition, training=True)
        real_logits = self.discriminator(self.augmented([images, condition] + label), training=True)
        fake_logits = self.discriminator(self.augmented([fake] + fake_condition), training=True)
        return {"d_loss": discriminator_loss(real_logits, fake_logits),
                "g_loss": self.generator_objective(fake_logits, fake, noise), **self.adapt_augmentation(real_logits)}


def low_pass(images, factor: int = 4):
    """A factor×factor box average: what the residual refiner must leave as G1 drew it (factor 1:
    every pixel; 4: 16×16 at 64 px, the layout and grey levels but not the texture)."""
    return ops.average_pool(images, pool_size=factor, strides=factor, padding="valid")


TIE_NORMS = ("l1", "l2")


def tie_distance(condition, refined, norm: str):
    """How far the refinement moved its input: the mean absolute difference (SimGAN's L1) or the
    mean squared one. L1 charges a move by its size wherever it is, so a few pixels moved far cost
    what many moved a little do: on the 12-image demo G2 spent it on thin dark streaks (3.6 % of
    pixels moved over 40 grey levels at weight 10). Squared, a large local move costs its size
    squared: at weight 100 G2 moved the films as far on average (5.9 grey levels) and no pixel
    over 40."""
    return mean_absolute_error(condition, refined) if norm == "l1" else mean_squared_error(condition, refined)


class ResidualRefinementTrainer(GANTrainer):
    """G2(z2, c) refines G1's own samples c = G1(z1) (G1 frozen, drawn in the step as synthesis
    draws it): −log D2(G2(z2, c)) plus λ·d(low_pass(G2(z2, c)), low_pass(c)), SimGAN's
    self-regularisation (d: `tie_distance`, mean squared by default, SimGAN's L1 selectable), which ties the output to its input so the refiner adds realism without
    moving the anatomy (or the class the judge accepted c for). The low pass is a box of
    `self_regularisation_pool` pixels; 1 (every pixel, SimGAN's) is the default: with 4×4 boxes the
    texture inside each box was free, and a D2 still near chance let G2 fill it with speckle. D2(x) sees real images and
    refined ones, DiffAugment on both. The paper's refiner never sees a G1 sample in training."""

    tracked = ("d_loss", "g_loss", "self_regularisation")

    def __init__(self, generator, discriminator, condition_generator, latent_dim: int = 100, seed: int = 0,
                 self_regularisation: float = 1.0, self_regularisation_pool: int = 1,
                 self_regularisation_norm: str = "l1", **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed, **kwargs)
        if self_regularisation < 0:
            raise ValueError(f"cgan.self_regularisation must be at least 0, got {self_regularisation}")
        size = int(generator.outputs[0].shape[1])
        if self_regularisation_pool < 1 or size % self_regularisation_pool:
            raise ValueError(f"cgan.self_regularisation_pool must divide the image size {size}, "
                             f"got {self_regularisation_pool}")
        if self_regularisation_norm not in TIE_NORMS:
            raise ValueError(f"cgan.self_regularisation_norm must be one of {TIE_NORMS}, got {self_regularisation_norm!r}")
        self.self_regularisation_pool = int(self_regularisation_pool)
        self.self_regularisation_norm = self_regularisation_norm
        condition_generator.trainable = False
        self.condition_generator = condition_generator
        self.conditional_g1 = len(condition_generator.inputs) > 1
        self.self_regularisation = float(self_regularisation)
        self.latent_dim_g1 = int(condition_generator.inputs[0].shape[-1])

    def compute_losses(self, data) -> dict:
        images, labels = unpack(data)
        batch = ops.shape(images)[0]
        first = keras.random.normal((batch, self.latent_dim_g1), seed=self.seed_generator)
        condition = self.condition_generator([first, labels] if self.conditional_g1 else first, training=False)
        condition = ops.stop_gradient(condition)
        refined = self.generator([self.noise(batch), condition], training=True)
        real_logits = self.discriminator(self.augmented(images), training=True)
        fake_logits = self.discriminator(self.augmented(refined), training=True)
        pool = self.self_regularisation_pool
        tie = tie_distance(low_pass(condition, pool), low_pass(refined, pool), self.self_regularisation_norm)
        return {"d_loss": discriminator_loss(real_logits, fake_logits),
                "g_loss": generator_loss(fake_logits) + self.self_regularisation * tie,
                "self_regularisation": tie, **self.adapt_augmentation(real_logits)}


def conditional_trainer(run, num_classes: int, diff_augment: bool, strategy=None,
                        first_generator=None) -> GANTrainer:
    """Stage 2's trainer as the run's configuration builds it, compiled: the residual refiner's
    (with the trained G1 inside it, frozen) or the paper's. `first_generator` stands in for the
    trained G1 where none exists yet (timing a run before it starts)."""
    stage_config = run.config.cgan
    with strategy_scope(strategy):
        generator, discriminator = build_conditional(stage_config, num_classes, run.grey_output())
        shared = dict(diff_augment=diff_augment, augment_policy=stage_config.augment_policy,
                      augment_target=stage_config.augment_target,
                      update_order=stage_config.update_order)
        if stage_config.refiner == "residual":
            first = first_generator if first_generator is not None else load_dcgan_generator(run, num_classes)
            trainer = ResidualRefinementTrainer(generator, discriminator, first,
                                                stage_config.latent_dim, run.config.seed,
                                                self_regularisation=stage_config.self_regularisation,
                                                self_regularisation_pool=stage_config.self_regularisation_pool,
                                                self_regularisation_norm=stage_config.self_regularisation_norm, **shared)
        else:
            trainer = ConditionalRefinementTrainer(generator, discriminator, stage_config.latent_dim, run.config.seed,
                                                   degrade_min_size=stage_config.degrade_min_size,
                                                   degrade_noise=stage_config.degrade_noise,
                                                   mode_seeking=stage_config.mode_seeking, **shared)
        compile_trainer(trainer, stage_config, run, compiles=not diff_augment)  # see device.resolve_jit
    return trainer


def preview_batch(prepared, count: int = 8):
    """A fixed, class-cycling batch of real training images (uint8 → model range) for previews."""
    chosen = []
    for index in range(count):
        members = prepared.indices("train", index % prepared.num_classes)
        if len(members):
            chosen.append(members[(index // prepared.num_classes) % len(members)])
    images = ops.convert_to_numpy(to_model_range(prepared.images_gan[chosen]))
    return images, prepared.labels[chosen].astype(np.int32)


def stage_cgan(run, prepared, strategy=None) -> dict:
    """Stage 2: the refinement GAN. The residual refiner (default) trains on G1's own samples and
    needs stage 1; the paper's (§3.3, §3.6, §3.7) trains on (degrade(x), x, y) pairs, then
    optionally fine-tunes per class ("training set divided by class")."""
    stage_config, stage_dir = run.config.cgan, run.stage_dir("cgan")
    residual = stage_config.refiner == "residual"
    if residual:
        run.require("cgan", ("dcgan",))
        if stage_config.finetune_epochs_per_class:
            raise ValueError("cgan.finetune_epochs_per_class is the paper's per-class fine-tuning of its refiner; "
                             "with cgan.refiner 'residual' set it to 0 (or choose refiner 'paper')")
    trainer = conditional_trainer(run, prepared.num_classes, use_diff_augment(stage_config, prepared), strategy)
    condition, extra, title, grid_titles = preview_conditions(run, prepared, trainer)
    noise = fixed_noise(run.config.seed + 1, len(condition), stage_config.latent_dim)

    def preview():
        return np.concatenate([condition, np.asarray(trainer.generator([noise, condition] + extra, training=False))])

    dataset = gan_input(prepared, "train", stage_config.batch_size, run.config.seed, stage_config.balanced,
                        steps=stage_config.steps_per_epoch)
    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, f"stage 2/4: {title}",
                     extra_callbacks=_pipeline_kid(run, prepared, trainer.generator),
                     steps_per_epoch=stage_config.steps_per_epoch,
                     steps_per_execution=run.config.steps_per_execution, hooks=run.hooks, grid_titles=grid_titles)
    info["parameters"] = save_networks(stage_dir, stage_config, {"generator": trainer.generator,
                                                                 "discriminator": trainer.discriminator})
    info["refiner"] = stage_config.refiner
    if stage_config.finetune_epochs_per_class:
        info["finetuned_classes"] = finetune_per_class(run, prepared, strategy)
    return info


def preview_conditions(run, prepared, trainer):
    """The conditions of stage 2's preview grids (top row) and its title: G1's samples for the
    residual refiner, degrade(x) of real images for the paper's."""
    stage_config = run.config.cgan
    if stage_config.refiner == "residual":
        labels = class_cycle(prepared.num_classes, 8)
        first = fixed_noise(run.config.seed + 2, 8, run.config.dcgan.latent_dim)
        generator = trainer.condition_generator
        condition = np.asarray(generator([first, labels] if trainer.conditional_g1 else first, training=False))
        names = [f", {prepared.class_names[label]}" if trainer.conditional_g1 else "" for label in labels]
        titles = [f"c = G1(z1){name}" for name in names] + [f"G2(z2, c){name}" for name in names]
        return condition, [], "residual refiner on G1's samples (top row: c = G1(z1))", titles
    images, labels = preview_batch(prepared)
    condition = np.asarray(degrade(images, keras.random.SeedGenerator(run.config.seed),
                                   stage_config.degrade_min_size, stage_config.degrade_noise))
    extra = [labels] if stage_config.label_conditioned else []
    names = [prepared.class_names[int(label)] for label in np.asarray(labels)]
    titles = [f"c = degrade(x), {name}" for name in names] + [f"G2, {name}" for name in names]
    return condition, extra, "the paper's conditional refinement GAN (top row: c = degrade(x))", titles


def _pipeline_kid(run, prepared, conditional_generator) -> list:
    """KID of the whole MixGANMed sampler G2(z2, G1(z1), y) during stage 2 (needs stage 1)."""
    stage_config = run.config.cgan
    if not (run.path / "dcgan" / "generator.weights.h5").exists():
        return []
    dcgan_generator = load_dcgan_generator(run, prepared.num_classes)
    labels = class_cycle(prepared.num_classes, stage_config.kid_samples)
    seeds = np.arange(stage_config.kid_samples) + 10_000

    def sample():
        return refine_samples(dcgan_generator, conditional_generator, labels, seeds,
                              stage_config.latent_dim, label="")[0]

    return kid_callbacks(run, prepared, stage_config, run.path / "cgan", sample)


def finetune_per_class(run, prepared, strategy) -> list[str]:
    """One fine-tuned copy of G2/D2 per class, started from the shared weights (§3.3)."""
    stage_config, done = run.config.cgan, []
    for label, class_name in enumerate(prepared.class_names):
        class_dir = run.stage_dir(f"cgan/finetune/{class_name}")
        if not (class_dir / "generator.weights.h5").exists():
            trainer = conditional_trainer(run, prepared.num_classes, use_diff_augment(stage_config, prepared),
                                          strategy)
            trainer.generator.load_weights(str(run.path / "cgan" / "generator.weights.h5"))
            trainer.discriminator.load_weights(str(run.path / "cgan" / "discriminator.weights.h5"))
            subset = dataclasses.replace(prepared, splits=np.where(prepared.labels == label, prepared.splits, "none"))
            dataset = gan_input(subset, "train", stage_config.batch_size, run.config.seed)
            fit_stage(trainer, dataset, class_dir, stage_config.finetune_epochs_per_class, None, 1, False,
                      f"fine-tuning G2 on class {class_name}")
            save_networks(class_dir, stage_config, {"generator": trainer.generator,
                                                    "discriminator": trainer.discriminator})
            run.clear_backup(f"cgan/finetune/{class_name}")
        done.append(class_name)
    return done
