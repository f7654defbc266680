"""Train-step throughput per stage and policy, trainer overhead, and the keras-io peer."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from common import timed

from mgm_tf import cyclegan, flops, losses, models, sr_models, training


def _images(batch, size):
    return np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")


def stage_setup(stage: str, batch: int):
    """(trainer, dataset, analytic FLOPs per step) for one stage at a fixed size."""
    if stage in ("dcgan", "conditional"):
        if stage == "dcgan":
            generator, discriminator = models.build_dcgan_generator(), models.build_dcgan_discriminator()
            trainer = training.DCGANTrainer(generator, discriminator)
            data = tf.data.Dataset.from_tensors(_images(batch, 64))
        else:
            generator = models.build_conditional_generator(num_classes=2)
            discriminator = models.build_conditional_discriminator(num_classes=2)
            trainer = training.ConditionalRefinementTrainer(generator, discriminator)
            data = tf.data.Dataset.from_tensors((_images(batch, 64), np.arange(batch, dtype="int32") % 2))
        step = flops.gan_step_flops(flops.model_flops(generator), flops.model_flops(discriminator), batch)
    elif stage == "srgan":
        generator = sr_models.build_srgan_generator(input_size=24)
        discriminator = sr_models.build_srgan_discriminator(input_size=96)
        extractor = losses.build_vgg_extractor(None, input_size=96)
        trainer = training.SRGANTrainer(generator, discriminator, extractor)
        high = _images(batch, 96)
        data = tf.data.Dataset.from_tensors((tf.image.resize(high, (24, 24), method="bicubic").numpy(), high))
        step = flops.gan_step_flops(flops.model_flops(generator), flops.model_flops(discriminator), batch,
                                    extra_forward=4 * flops.model_flops(extractor))
    else:
        g_ab, g_ba = models.build_cycle_generator(), models.build_cycle_generator()
        d_a, d_b = models.build_patch_discriminator(), models.build_patch_discriminator()
        trainer = cyclegan.CycleGANTrainer(g_ab, g_ba, d_a, d_b)
        data = tf.data.Dataset.from_tensors((_images(batch, 64), _images(batch, 64)))
        step = flops.gan_step_flops(flops.model_flops(g_ab), flops.model_flops(d_a), batch, generator_calls=6,
                                    discriminator_calls=4)
    return trainer, data.repeat(), step


def fit_seconds_per_step(trainer, data, steps: int) -> float:
    """Median seconds per step of Model.fit with the overridden train_step."""
    iterator_data = data

    def run():
        trainer.fit(iterator_data, steps_per_epoch=steps, epochs=1, verbose=0)

    return timed(run, repeats=2, warmup=1) / steps


def measure_stage(stage: str, batch: int, policy: str, jit: bool, steps: int) -> dict:
    keras.mixed_precision.set_global_policy(policy)
    try:
        trainer, data, step_flops = stage_setup(stage, batch)
        trainer.compile(jit_compile=jit)
        seconds = fit_seconds_per_step(trainer, data, steps)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"stage": stage, "policy": policy, "xla": jit, "batch": batch, "ms/step": 1e3 * seconds,
            "images/s": batch / seconds, "GFLOP/step": step_flops / 1e9, "GFLOP/s": step_flops / seconds / 1e9}


def minimal_conditional_step(batch: int):
    """The same networks and losses as ConditionalRefinementTrainer in a bare tf.function."""
    generator = models.build_conditional_generator(num_classes=2)
    discriminator = models.build_conditional_discriminator(num_classes=2)
    g_optimizer, d_optimizer = training.make_optimizer(), training.make_optimizer()
    images, labels = tf.constant(_images(batch, 64)), tf.constant(np.arange(batch, dtype="int32") % 2)
    seed = keras.random.SeedGenerator(0)

    @tf.function
    def step():
        condition = training.degrade(images, seed)
        noise = keras.random.normal((batch, 100), seed=seed)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator([noise, condition, labels], training=True)
            real_logits = discriminator([images, condition, labels], training=True)
            fake_logits = discriminator([fake, condition, labels], training=True)
            d_loss = losses.discriminator_loss(real_logits, fake_logits)
            g_loss = losses.generator_loss(fake_logits)
        d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables),
                                        discriminator.trainable_variables))
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables),
                                        generator.trainable_variables))
        return d_loss

    return lambda: step().numpy()


def overhead(batch: int, steps: int) -> dict:
    trainer, data, _ = stage_setup("conditional", batch)
    trainer.compile()
    ours = fit_seconds_per_step(trainer, data, steps)
    minimal = timed(minimal_conditional_step(batch), repeats=steps)
    return {"batch": batch, "trainer ms/step": 1e3 * ours, "minimal tf.function ms/step": 1e3 * minimal,
            "overhead ratio": ours / minimal}


def peer(batch: int, steps: int) -> dict:
    from reference_dcgan import ReferenceGAN, build_reference, reference_step_flops

    ref_generator, ref_discriminator = build_reference()
    reference = ReferenceGAN(ref_discriminator, ref_generator, 128)
    reference.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4), keras.losses.BinaryCrossentropy())
    reference_seconds = fit_seconds_per_step(reference, tf.data.Dataset.from_tensors(_images(batch, 64)).repeat(), steps)
    reference_flops = reference_step_flops(flops.model_flops(ref_generator), flops.model_flops(ref_discriminator), batch)
    trainer, data, our_flops = stage_setup("dcgan", batch)
    trainer.compile()
    our_seconds = fit_seconds_per_step(trainer, data, steps)
    ours, theirs = our_flops / our_seconds / 1e9, reference_flops / reference_seconds / 1e9
    return {"batch": batch, "ours GFLOP/s": ours, "keras-io reference GFLOP/s": theirs, "ratio (ours/reference)": ours / theirs,
            "ours ms/step": 1e3 * our_seconds, "reference ms/step": 1e3 * reference_seconds}
