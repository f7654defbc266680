"""What the three GAN stages share: the base trainer (two optimizers, loss scaling, trackers,
the seed generator), its optimizers and weight averaging (losses: `losses`; per-image seeds:
`sampling`; network building blocks: `blocks`). Each stage's own networks, `train_step` and stage
function live in its module (`dcgan`, `refinement`, `srgan`).

Every trainer is a `keras.Model` overriding `train_step` (the keras-io GAN idiom). A stage's
trainer writes its forward pass and losses once (`compute_losses`, in `keras.ops`); a step runs
G and D forward once and updates each from the gradient of its own loss, by the backend's means:
two gradient tapes on TensorFlow (the tf/docs DCGAN pattern), on JAX a pure function of the
variables' values (`keras.StatelessScope`), one `jax.vjp` pulled back twice and each optimizer's
`stateless_apply` (the keras-io "Customizing fit() with JAX" pattern, for two optimizers).
Losses are float32 whatever the layer policy; under `mixed_float16` the optimizers are
LossScaleOptimizers (`scale_loss` before the gradient, unscaled when applied); under
tf.distribute a replica's loss is divided by the number of replicas because Keras all-reduces
gradients with a SUM (on JAX a step sees the global batch: `backend.replicas` is 1).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mgm_tf import backend
from mgm_tf.augment import (DEFAULT_AUGMENT_POLICY, adapted_probability, diff_augment_together, parse_policy,
                            with_probability)
from mgm_tf.imaging import to_model_range
from mgm_tf.losses import generator_loss, mode_seeking_term, shared_halves

LEAK = 0.2


# --- training -------------------------------------------------------------------------------

def make_optimizer(learning_rate: float = 1e-4, beta_1: float = 0.5) -> keras.optimizers.Optimizer:
    """Adam(1e-4, β1=0.5) as in paper §4; loss-scaled under mixed_float16."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def replica_scaled(loss):
    replicas = backend.replicas()
    return loss / replicas if replicas > 1 else loss


def unpack(data):
    """(images, labels) or images alone → (model-range images, labels or None).

    uint8 batches (what `data.batches.gan_input` yields) become [-1, 1] with 3 channels here,
    inside the compiled step on the device; float batches are taken as already in model range."""
    images, labels = data, None
    if isinstance(data, (tuple, list)):
        images, labels = data[0], data[1] if len(data) > 1 else None
    images = ops.convert_to_tensor(images)
    labels = ops.convert_to_tensor(labels) if labels is not None else None
    if keras.backend.standardize_dtype(images.dtype) == "uint8":
        images = to_model_range(images)
    return images, labels


UPDATE_ORDERS = ("simultaneous", "alternating")


class OptimizerPair:
    """What Keras' JAX trainer carries as "the optimizer" between steps (its state holds
    `model.optimizer.variables`): the variables of both of a GAN's optimizers, D's then G's,
    then the trainer's frozen variables (the SRGAN's VGG19). A network the trainer holds
    outside Keras' tracking would otherwise be read by the jitted step as concrete arrays and
    compiled into it as constants (80 MB of VGG19 per compilation); carried here, they are
    inputs of the step, returned unchanged, and never written to a backup."""

    built = True

    def __init__(self, *optimizers, frozen=()):
        self.optimizers = optimizers
        self.frozen = list(frozen)

    @property
    def variables(self) -> list:
        return [variable for optimizer in self.optimizers for variable in optimizer.variables] + self.frozen


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A SeedGenerator whose draws differ per data-parallel replica. Keras keeps a seed
    generator's state as a variable with aggregation "none", so under tf.distribute every
    replica's copy advances in lockstep and every replica would draw the same noise, DiffAugment
    and degradation: N devices would train on N× fewer distinct draws. Each draw here adds the
    replica's id (`backend.replica_id`, 0 on one device and on JAX, where one step draws for the
    global batch) to the first half of the seed, so replica r's stream is the run's stream for
    seed + r·REPLICA_STRIDE; the state, and so a backup, stays the same on every replica."""

    REPLICA_STRIDE = 1_000_003

    def next(self, ordered=True):
        value = super().next(ordered)
        replica = backend.replica_id()
        if replica is None:
            return value
        offset = ops.convert_to_tensor([1, 0], dtype=value.dtype) * ops.cast(replica * self.REPLICA_STRIDE, value.dtype)
        return value + offset


class GANTrainer(keras.Model):
    """Shared machinery of the stage trainers: a generator and a discriminator, their two
    optimizers, a seed generator whose state is checkpointed, loss trackers, DiffAugment and the
    gradient step of each backend. Subclasses write `compute_losses(data)`: one forward pass of
    G and D on a batch, returning {"d_loss", "g_loss", other tracked values} (and, with more than
    one generator or discriminator, `generator_variables`/`discriminator_variables`)."""

    tracked = ("d_loss", "g_loss")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int = 100, seed: int = 0,
                 diff_augment: bool = False, mode_seeking: float = 0.0, augment_policy: str = DEFAULT_AUGMENT_POLICY,
                 generator_average: float = 0.0, update_order: str = "simultaneous", augment_target: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if update_order not in UPDATE_ORDERS:
            raise ValueError(f"update_order must be one of {UPDATE_ORDERS}, got {update_order!r}")
        self.update_order = update_order
        if not 0.0 <= generator_average < 1.0:
            raise ValueError(f"generator_average (the EMA decay of G's weights) must be in [0, 1), got {generator_average}")
        self.diff_augment = diff_augment
        self.augment_policy = ",".join(parse_policy(augment_policy))
        self.mode_seeking = float(mode_seeking)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.seed_generator = ReplicaSeedGenerator(seed)
        # The RNG state is saved with the weights, so a resumed run draws the same noise.
        self._track_variable(self.seed_generator.state)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.tracked}
        self.augment_target = self.adaptive_augmentation(diff_augment, augment_target)
        self.generator_average = float(generator_average)
        self.average_generator = average_copy(generator) if generator_average else None
        if self.average_generator is not None:
            self.average_updates = keras.Variable(0.0, trainable=False, name="average_updates")
        self.built = True  # sub-networks are functional models, already built

    def adaptive_augmentation(self, diff_augment: bool, target: float) -> float:
        """With a target r in (0, 1), DiffAugment is applied with a probability p that starts at 0
        and follows D's overfitting (ADA, `augment.adapted_probability`); p is saved with the
        weights and logged as `augment_probability`. 0: always applied (DiffAugment)."""
        if not 0.0 <= target < 1.0:
            raise ValueError(f"augment_target (ADA's target for E[sign D(real)]) must be in [0, 1), got {target}")
        if target and not diff_augment:
            raise ValueError("augment_target adapts DiffAugment's probability, but DiffAugment is off "
                             "(diff_augment 'off', or 'auto' on 1,000 or more images): set diff_augment 'on'")
        if target:
            self.augment_probability = keras.Variable(0.0, trainable=False, name="augment_probability",
                                                      aggregation="mean")
            self.trackers["augment_probability"] = keras.metrics.Mean(name="augment_probability")
        return float(target)

    def adapt_augmentation(self, real_logits) -> dict:
        """Under ADA, moves p after D has seen this step's real images; the value to log."""
        if not self.augment_target:
            return {}
        self.augment_probability.assign(adapted_probability(self.augment_probability, real_logits,
                                                            self.augment_target))
        return {"augment_probability": self.augment_probability.value}

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator to draw samples from: the moving average of G's weights when kept."""
        return self.average_generator if self.average_generator is not None else self.generator

    def average_decay(self, updates):
        """EMA decay with a warm-up, min(β, (1 + t) / (10 + t)) after t updates (as TensorFlow's
        ExponentialMovingAverage with num_updates): a short run's average is not its first weights."""
        return ops.minimum(self.generator_average, (1.0 + updates) / (10.0 + updates))

    def update_average(self):
        """After G's step (TensorFlow): trainable weights averaged, BatchNorm statistics copied."""
        decay = self.average_decay(self.average_updates)
        for average, live in zip(self.average_generator.weights, self.generator.weights):
            value = decay * average + (1.0 - decay) * live if live.trainable else live
            average.assign(ops.cast(value, average.dtype))
        self.average_updates.assign(self.average_updates + 1.0)

    def compile(self, d_optimizer=None, g_optimizer=None, learning_rate: float = 1e-4, beta_1: float = 0.5,
                discriminator_learning_rate: float | None = None, **kwargs):
        """Adam for each network; `discriminator_learning_rate` gives D its own rate (the two
        time-scale update rule, TTUR), None the generator's (the paper's single rate)."""
        if discriminator_learning_rate is not None and discriminator_learning_rate <= 0:
            raise ValueError(f"discriminator_learning_rate must be positive (or None: the generator's), "
                             f"got {discriminator_learning_rate}")
        super().compile(optimizer=None, **kwargs)  # the two optimizers below do the work; no unused default
        self.d_optimizer = d_optimizer or make_optimizer(discriminator_learning_rate or learning_rate, beta_1)
        self.g_optimizer = g_optimizer or make_optimizer(learning_rate, beta_1)
        # Variables exist before a BackupAndRestore checkpoint is loaded into them.
        self.d_optimizer.build(self.discriminator_variables())
        self.g_optimizer.build(self.generator_variables())
        if backend.is_jax():
            self.optimizer = OptimizerPair(self.d_optimizer, self.g_optimizer, frozen=self.frozen_variables())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def generator_variables(self) -> list:
        return self.generator.trainable_variables

    def discriminator_variables(self) -> list:
        return self.discriminator.trainable_variables

    def frozen_variables(self) -> list:
        """Variables of networks the trainer uses but neither trains nor saves (none here)."""
        return []

    def noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def scaled(self, optimizer, loss):
        """The loss to differentiate: divided by the replicas, multiplied by the loss scale."""
        return optimizer.scale_loss(replica_scaled(loss))

    def generator_conditions(self, values):
        """The conditions the generator draws this step's images from: as given, or with the
        mode-seeking term on, each condition of the first half twice (`shared_halves`)."""
        return shared_halves(values) if self.mode_seeking else values

    def generator_objective(self, fake_logits, fake, noise):
        """−log D(G(z)), plus the weighted mode-seeking term when it is on."""
        g_loss = generator_loss(fake_logits)
        return g_loss + self.mode_seeking * mode_seeking_term(fake, noise) if self.mode_seeking else g_loss

    def report(self, **values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, *arguments):
        """Keras calls `train_step(data)` on TensorFlow and `train_step(state, data)` on JAX."""
        if backend.is_jax():
            return self.jax_train_step(*arguments)
        return self.tensorflow_train_step(*arguments)

    def tensorflow_train_step(self, data):
        """Two tapes over one forward pass; each network's gradients of its scaled loss, applied
        by its optimizer (which unscales them). Alternating: D's update from one forward pass,
        then G's from a second one through the updated D, with fresh noise."""
        import tensorflow as tf

        updates = ((self.d_optimizer, "d_loss", self.discriminator_variables()),
                   (self.g_optimizer, "g_loss", self.generator_variables()))
        if self.update_order == "alternating":
            passes = []
            for optimizer, key, variables in updates:
                with tf.GradientTape() as tape:
                    passes.append(self.compute_losses(data))
                    scaled = self.scaled(optimizer, passes[-1][key])
                optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            losses = {**passes[1], "d_loss": passes[0]["d_loss"]}
        else:
            with tf.GradientTape(persistent=True) as tape:
                losses = self.compute_losses(data)
                scaled = [self.scaled(optimizer, losses[key]) for optimizer, key, _ in updates]
            for (optimizer, _, variables), loss in zip(updates, scaled):
                optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            del tape
        if self.average_generator is not None:
            self.update_average()
        return self.report(**losses)

    def jax_train_step(self, state, data):
        """The same step as a pure function of the variables' values: the forward pass runs in a
        StatelessScope (BatchNorm statistics and the seed state it advances are read back from
        the scope), `jax.vjp` pulls the scaled losses back once per network, and each
        optimizer's `stateless_apply` updates its network (unscaling, and under loss scaling
        skipping a non-finite step, as `apply_gradients` does). Alternating: a second forward
        pass, from the state the first left, through D's updated values, for G's gradients."""
        import jax

        trainable, non_trainable, optimizer_values, metric_values = state
        d_variables, g_variables = self.discriminator_variables(), self.generator_variables()
        position = {id(variable): index for index, variable in enumerate(self.trainable_variables)}
        d_values = [trainable[position[id(variable)]] for variable in d_variables]
        g_values = [trainable[position[id(variable)]] for variable in g_variables]
        fixed = list(zip(self.trainable_variables, trainable)) + list(zip(self.optimizer.variables, optimizer_values))

        def forward(non_trainable):
            def scaled_losses(d_values, g_values):
                mapping = (fixed + list(zip(self.non_trainable_variables, non_trainable))
                           + list(zip(d_variables, d_values)) + list(zip(g_variables, g_values)))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    losses = self.compute_losses(data)
                    scaled = (self.scaled(self.d_optimizer, losses["d_loss"]),
                              self.scaled(self.g_optimizer, losses["g_loss"]))
                updated = [scope.get_current_value(variable) for variable in self.non_trainable_variables]
                return scaled, (losses, updated)
            return scaled_losses

        (d_scaled, g_scaled), pull_back, (losses, non_trainable) = jax.vjp(forward(non_trainable), d_values, g_values,
                                                                         has_aux=True)
        d_gradients = pull_back((ops.ones_like(d_scaled), ops.zeros_like(g_scaled)))[0]
        d_count, g_count = len(self.d_optimizer.variables), len(self.g_optimizer.variables)
        d_values, d_state = self.d_optimizer.stateless_apply(optimizer_values[:d_count], d_gradients, d_values)
        if self.update_order == "alternating":
            d_loss = losses["d_loss"]
            (d_scaled, g_scaled), pull_back, (losses, non_trainable) = jax.vjp(
                forward(non_trainable), d_values, g_values, has_aux=True)
            losses = {**losses, "d_loss": d_loss}
        g_gradients = pull_back((ops.zeros_like(d_scaled), ops.ones_like(g_scaled)))[1]
        g_values, g_state = self.g_optimizer.stateless_apply(optimizer_values[d_count:d_count + g_count], g_gradients,
                                                             g_values)
        trainable = list(trainable)
        for variables, values in ((d_variables, d_values), (g_variables, g_values)):
            for variable, value in zip(variables, values):
                trainable[position[id(variable)]] = value
        if self.average_generator is not None:
            non_trainable = self.averaged_values(trainable, non_trainable, position)
        with keras.StatelessScope(state_mapping=list(zip(self.metrics_variables, metric_values))) as scope:
            logs = self.report(**losses)
        metric_values = [scope.get_current_value(variable) for variable in self.metrics_variables]
        optimizer_values = list(d_state) + list(g_state) + list(optimizer_values[d_count + g_count:])
        return logs, (trainable, non_trainable, optimizer_values, metric_values)

    def averaged_values(self, trainable: list, non_trainable: list, position: dict) -> list:
        """The JAX step's `update_average`: new values of the average generator's variables (and of
        its update count) among the non-trainable values, from G's values after its step."""
        slot = {id(variable): index for index, variable in enumerate(self.non_trainable_variables)}
        non_trainable = list(non_trainable)
        updates = non_trainable[slot[id(self.average_updates)]]
        decay = self.average_decay(updates)
        for average, live in zip(self.average_generator.weights, self.generator.weights):
            if live.trainable:
                value = decay * non_trainable[slot[id(average)]] + (1.0 - decay) * trainable[position[id(live)]]
            else:
                value = non_trainable[slot[id(live)]]
            non_trainable[slot[id(average)]] = ops.cast(value, average.dtype)
        non_trainable[slot[id(self.average_updates)]] = updates + 1.0
        return non_trainable

    def augmented(self, inputs):
        """DiffAugment on what D sees (each sample with probability p under ADA). The images of a
        pair (x or G(.), and c) get the same random transform, each computed with its own
        statistics (`diff_augment_together`)."""
        if not self.diff_augment:
            return inputs
        items = list(inputs) if isinstance(inputs, list) else [inputs]
        images = [index for index, item in enumerate(items) if len(item.shape) == 4]
        originals = [items[i] for i in images]
        augmented = diff_augment_together(originals, self.seed_generator, self.augment_policy)
        if self.augment_target:
            augmented = with_probability(originals, augmented, self.augment_probability, self.seed_generator)
        for index, image in zip(images, augmented):
            items[index] = image
        return items if isinstance(inputs, list) else items[0]


# --- network building blocks ------------------------------------------------------------------

def average_copy(generator: keras.Model) -> keras.Model:
    """A copy of G (same architecture, its current weights) that is not trained but averaged."""
    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    copy.trainable = False
    return copy


def count_parameters(model: keras.Model) -> dict:
    """Trainable and non-trainable parameter counts (BatchNorm moving statistics are
    non-trainable). Keras' `count_params()` gives the total only; the split is what the
    paper's "0.67 M parameters" is compared with."""
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    total = model.count_params()
    return {"trainable": trainable, "non_trainable": total - trainable, "total": total}
