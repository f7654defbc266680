"""GAN trainers: `keras.Model` subclasses overriding `train_step` (Keras 3 idiom, keras-io).

Each step runs the generator and discriminator forward once and updates both from two
gradient tapes (the tf/docs DCGAN pattern): half the generator compute of a second forward
pass. Losses are float32; under `mixed_float16` the optimizers are wrapped in
LossScaleOptimizer; under tf.distribute the per-replica loss is divided by the number of
replicas because Keras all-reduces gradients with a SUM.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from mgm_tf import augment, inputs, losses


def make_optimizer(learning_rate: float = 1e-4, beta_1: float = 0.5) -> keras.optimizers.Optimizer:
    """Adam(1e-4, β1=0.5) as in paper §4; loss-scaled under mixed_float16."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def replica_scaled(loss):
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def unpack(data):
    """(images, labels) or images alone → (model-range images, labels or None).

    uint8 batches (what `inputs.gan_dataset` yields) become [-1, 1] with 3 channels here, inside
    the compiled step on the device; float batches are taken as already in model range."""
    images, labels = data, None
    if isinstance(data, (tuple, list)):
        images, labels = data[0], data[1] if len(data) > 1 else None
    if images.dtype == tf.uint8:
        images = inputs.to_model_range(images)
    return images, labels


class GANTrainer(keras.Model):
    """Shared machinery: two networks, two optimizers, a seed generator, loss trackers."""

    tracked = ("d_loss", "g_loss")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int = 100, seed: int = 0,
                 diff_augment: bool = False, mode_seeking: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.diff_augment = diff_augment
        self.mode_seeking = float(mode_seeking)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The RNG state is saved with the weights, so a resumed run draws the same noise.
        self._track_variable(self.seed_generator.state)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.tracked}
        self.built = True  # sub-networks are functional models, already built

    def compile(self, d_optimizer=None, g_optimizer=None, learning_rate: float = 1e-4, beta_1: float = 0.5, **kwargs):
        super().compile(optimizer=None, **kwargs)  # the two optimizers below do the work; no unused default
        self.d_optimizer = d_optimizer or make_optimizer(learning_rate, beta_1)
        self.g_optimizer = g_optimizer or make_optimizer(learning_rate, beta_1)
        # Variables exist before a BackupAndRestore checkpoint is loaded into them.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def apply(self, optimizer, tape, loss, variables):
        """Gradients of the (replica- and loss-scaled) loss, applied by the optimizer."""
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))

    def scaled(self, optimizer, loss):
        return optimizer.scale_loss(replica_scaled(loss))

    def report(self, **values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def augmented(self, inputs):
        """DiffAugment on what D sees. The images of a pair (x or G(.), and c) get the same random
        transform, each computed with its own statistics (`augment.diff_augment_together`)."""
        if not self.diff_augment:
            return inputs
        items = list(inputs) if isinstance(inputs, list) else [inputs]
        images = [index for index, item in enumerate(items) if len(item.shape) == 4]
        for index, augmented in zip(images, augment.diff_augment_together([items[i] for i in images],
                                                                           self.seed_generator)):
            items[index] = augmented
        return items if isinstance(inputs, list) else items[0]

    def mode_seeking_term(self, fake, noise):
        """Mode-seeking regularisation (Mao et al., CVPR 2019, "MSGAN"): 1 / (ratio + ε), where the
        ratio is how far apart two halves of the batch's images are per unit distance of their
        noise. A generator that maps different z to one image (mode collapse, the 12-image demo's
        failure) pays for it; 0 when the weight is 0."""
        half = ops.shape(fake)[0] // 2
        image_distance = ops.mean(ops.abs(fake[:half] - fake[half:2 * half]))
        noise_distance = ops.mean(ops.abs(noise[:half] - noise[half:2 * half]))
        return 1.0 / (image_distance / noise_distance + 1e-5)

    def adversarial_step(self, real_inputs, generate, fake_inputs_fn, extra_generator_loss=None):
        """One simultaneous update. generate() runs the generator (inside the tapes);
        fake_inputs_fn(fake) builds the discriminator's fake inputs; extra_generator_loss(fake,
        g_loss) adds terms (content, perceptual, mode seeking) and returns (total, dict)."""
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generate()
            real_logits = self.discriminator(self.augmented(real_inputs), training=True)
            fake_logits = self.discriminator(self.augmented(fake_inputs_fn(fake)), training=True)
            d_loss = losses.discriminator_loss(real_logits, fake_logits)
            g_loss = losses.generator_loss(fake_logits)
            extras = {}
            if extra_generator_loss is not None:
                g_loss, extras = extra_generator_loss(fake, g_loss)
            d_scaled = self.scaled(self.d_optimizer, d_loss)
            g_scaled = self.scaled(self.g_optimizer, g_loss)
        self.apply(self.d_optimizer, d_tape, d_scaled, self.discriminator.trainable_variables)
        self.apply(self.g_optimizer, g_tape, g_scaled, self.generator.trainable_variables)
        return self.report(d_loss=d_loss, g_loss=g_loss, **extras)

    def with_mode_seeking(self, noise):
        """extra_generator_loss adding the weighted mode-seeking term (None when its weight is 0)."""
        if not self.mode_seeking:
            return None
        return lambda fake, g_loss: (g_loss + self.mode_seeking * self.mode_seeking_term(fake, noise), {})


class DCGANTrainer(GANTrainer):
    """Stage 1 (§3.2) G1(z) — or, with label-conditioned networks, the "cGAN alone" baseline."""

    def __init__(self, generator, discriminator, latent_dim: int = 100, seed: int = 0, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed, **kwargs)
        self.conditional = len(generator.inputs) > 1

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        images, labels = unpack(data)
        noise = self.noise(ops.shape(images)[0])
        if self.conditional:
            real, generator_inputs = [images, labels], [noise, labels]
        else:
            real, generator_inputs = images, noise

        def generate():
            return self.generator(generator_inputs, training=True)

        def fake_inputs(fake):
            return [fake, labels] if self.conditional else fake

        return self.adversarial_step(real, generate, fake_inputs, self.with_mode_seeking(noise))


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
    """Stage 2 (§3.3, §3.6, §3.7): G2(z, c, y) learns x from c = degrade(x); D judges (x, c, y)."""

    def __init__(self, generator, discriminator, latent_dim: int = 100, seed: int = 0, degrade_min_size: int = 16,
                 degrade_noise: float = 0.05, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed, **kwargs)
        self.labelled = len(generator.inputs) > 2
        self.degrade_min_size = degrade_min_size
        self.degrade_noise = degrade_noise

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        images, labels = unpack(data)
        condition = degrade(images, self.seed_generator, self.degrade_min_size, self.degrade_noise)
        noise = self.noise(ops.shape(images)[0])
        extra = [labels] if self.labelled else []

        def generate():
            return self.generator([noise, condition] + extra, training=True)

        return self.adversarial_step([images, condition] + extra, generate, lambda fake: [fake, condition] + extra,
                                     self.with_mode_seeking(noise))


class SRGANTrainer(GANTrainer):
    """Stage 4 (§3.5): L = L_adv + λ1·MSE + λ2·VGG19 feature MSE on (LR, HR) pairs (eq. 3).

    Defaults λ1 = 100, λ2 = 200 keep the adversarial term at ~1/200 of the perceptual one, the
    ratio ESRGAN uses (SRGAN: 1/1000); Adam is insensitive to the overall scale of the loss.
    """

    tracked = ("d_loss", "g_loss", "adversarial", "content", "perceptual")

    def __init__(self, generator, discriminator, feature_extractor, content_weight: float = 100.0,
                 perceptual_weight: float = 200.0, seed: int = 0, **kwargs):
        super().__init__(generator, discriminator, 0, seed, **kwargs)
        self.feature_extractor = feature_extractor
        self.content_weight = content_weight
        self.perceptual_weight = perceptual_weight

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        low, high = data[0], data[1]

        def generator_terms(fake, adversarial):
            content = losses.mean_squared_error(high, fake)
            perceptual = losses.perceptual_loss(self.feature_extractor, high, fake)
            total = adversarial + self.content_weight * content + self.perceptual_weight * perceptual
            return total, {"adversarial": adversarial, "content": content, "perceptual": perceptual}

        return self.adversarial_step(high, lambda: self.generator(low, training=True), lambda fake: fake,
                                     generator_terms)
