"""REFERENCE (peer), not part of mgm_tf: a keras-io-style DCGAN ("DCGAN overriding
Model.train_step", Keras 3 example) sized for 64×64×3, kept here only to compare our DCGAN
stage against a well-known implementation per FLOP. Written from the example's structure."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops


def build_reference(latent_dim: int = 128):
    discriminator = keras.Sequential([
        keras.Input(shape=(64, 64, 3)),
        layers.Conv2D(64, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Flatten(), layers.Dropout(0.2), layers.Dense(1, activation="sigmoid"),
    ], name="reference_discriminator")
    generator = keras.Sequential([
        keras.Input(shape=(latent_dim,)),
        layers.Dense(8 * 8 * 128), layers.Reshape((8, 8, 128)),
        layers.Conv2DTranspose(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(256, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(512, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(3, 5, padding="same", activation="sigmoid"),
    ], name="reference_generator")
    return generator, discriminator


class ReferenceGAN(keras.Model):
    """The keras-io train_step: D on concatenated real+fake with noisy labels, then G."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator, self.generator, self.latent_dim = discriminator, generator, latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(noise)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        misleading = ops.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(misleading, self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def reference_step_flops(generator_flops: int, discriminator_flops: int, batch_size: int) -> int:
    """D step: G forward (no grad) + D on 2·batch (fwd+bwd); G step: G+D forward+backward."""
    return batch_size * (generator_flops + 2 * 3 * discriminator_flops + 3 * (generator_flops + discriminator_flops))
