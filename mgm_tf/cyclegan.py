"""CycleGAN baseline (paper §4 compares against it): class→class translation at 64×64.

Two generators (A→B, B→A) and two PatchGAN discriminators; adversarial BCE from logits (as the
other trainers, for Table 1 parity), cycle-consistency L1 (λ = 10) and identity L1 (λ/2).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mgm_tf import losses
from mgm_tf.training import make_optimizer, replica_scaled


class CycleGANTrainer(keras.Model):
    tracked = ("d_loss", "g_loss", "cycle", "identity")

    def __init__(self, generator_ab, generator_ba, discriminator_a, discriminator_b, cycle_weight: float = 10.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.generator_ab, self.generator_ba = generator_ab, generator_ba
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.cycle_weight = cycle_weight
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.tracked}
        self.built = True

    @property
    def generator(self):
        """The A→B translator: what the baseline uses to synthesise class-B images."""
        return self.generator_ab

    def compile(self, learning_rate: float = 2e-4, beta_1: float = 0.5, **kwargs):
        super().compile(optimizer=None, **kwargs)  # the two optimizers below do the work; no unused default
        self.g_optimizer = make_optimizer(learning_rate, beta_1)
        self.d_optimizer = make_optimizer(learning_rate, beta_1)
        self.g_optimizer.build(self._generator_variables())
        self.d_optimizer.build(self._discriminator_variables())

    def _generator_variables(self):
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    def _discriminator_variables(self):
        return self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.generator_ab(inputs, training=training)

    def train_step(self, data):
        real_a, real_b = data[0], data[1]
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_b = self.generator_ab(real_a, training=True)
            fake_a = self.generator_ba(real_b, training=True)
            cycle = (losses.mean_absolute_error(real_a, self.generator_ba(fake_b, training=True))
                     + losses.mean_absolute_error(real_b, self.generator_ab(fake_a, training=True)))
            identity = (losses.mean_absolute_error(real_a, self.generator_ba(real_a, training=True))
                        + losses.mean_absolute_error(real_b, self.generator_ab(real_b, training=True)))
            fake_a_logits = self.discriminator_a(fake_a, training=True)
            fake_b_logits = self.discriminator_b(fake_b, training=True)
            adversarial = losses.generator_loss(fake_a_logits) + losses.generator_loss(fake_b_logits)
            g_loss = adversarial + self.cycle_weight * cycle + 0.5 * self.cycle_weight * identity
            d_loss = 0.5 * (losses.discriminator_loss(self.discriminator_a(real_a, training=True), fake_a_logits)
                            + losses.discriminator_loss(self.discriminator_b(real_b, training=True), fake_b_logits))
            g_scaled = self.g_optimizer.scale_loss(replica_scaled(g_loss))
            d_scaled = self.d_optimizer.scale_loss(replica_scaled(d_loss))
        g_variables, d_variables = self._generator_variables(), self._discriminator_variables()
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_variables), g_variables))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_variables), d_variables))
        for name, value in (("d_loss", d_loss), ("g_loss", g_loss), ("cycle", cycle), ("identity", identity)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
