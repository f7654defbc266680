"""Train-step throughput per stage and policy, trainer overhead, and the keras-io peer."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf
from common import timed

from mgm_tf import dcgan, gan, losses, refinement, srgan
from mgm_tf.baselines import cyclegan
from mgm_tf.data import tfdata
from mgm_tf.evaluation import flops


def _images(batch, size):
    return np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")


def stage_setup(stage: str, batch: int):
    """(trainer, dataset, analytic FLOPs per step) for one stage at a fixed size."""
    if stage in ("dcgan", "conditional"):
        if stage == "dcgan":
            generator, discriminator = dcgan.build_dcgan_generator(), dcgan.build_dcgan_discriminator()
            trainer = dcgan.DCGANTrainer(generator, discriminator)
            data = tf.data.Dataset.from_tensors(_images(batch, 64))
        else:
            generator = refinement.build_conditional_generator(num_classes=2)
            discriminator = refinement.build_conditional_discriminator(num_classes=2)
            trainer = refinement.ConditionalRefinementTrainer(generator, discriminator)
            data = tf.data.Dataset.from_tensors((_images(batch, 64), np.arange(batch, dtype="int32") % 2))
        step = flops.gan_step_flops(flops.model_flops(generator), flops.model_flops(discriminator), batch)
    elif stage == "srgan":
        generator = srgan.build_srgan_generator(input_size=24)
        discriminator = srgan.build_srgan_discriminator(input_size=96)
        extractor = srgan.build_vgg_extractor(None, input_size=96)
        trainer = srgan.SRGANTrainer(generator, discriminator, extractor)
        high = _images(batch, 96)
        data = tf.data.Dataset.from_tensors((tf.image.resize(high, (24, 24), method="bicubic").numpy(), high))
        step = flops.gan_step_flops(flops.model_flops(generator), flops.model_flops(discriminator), batch,
                                    extra_forward=4 * flops.model_flops(extractor))
    else:
        g_ab, g_ba = cyclegan.build_cycle_generator(), cyclegan.build_cycle_generator()
        d_a, d_b = cyclegan.build_patch_discriminator(), cyclegan.build_patch_discriminator()
        trainer = cyclegan.CycleGANTrainer(g_ab, g_ba, d_a, d_b)
        data = tf.data.Dataset.from_tensors((_images(batch, 64), _images(batch, 64)))
        step = flops.gan_step_flops(flops.model_flops(g_ab), flops.model_flops(d_a), batch, generator_calls=6,
                                    discriminator_calls=4)
    return trainer, tfdata.finished(data.repeat()), step


def fit_seconds_per_step(trainer, data, steps: int) -> float:
    """Median seconds per step of Model.fit with the overridden train_step."""
    iterator_data = data

    def run():
        trainer.fit(iterator_data, steps_per_epoch=steps, epochs=1, verbose=0)

    return timed(run, repeats=2, warmup=1) / steps


def step_seconds(trainer, iterator, steps: int) -> float:
    """Median seconds of the compiled train function (what fit calls each step), result fetched."""
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        float(trainer.train_function(iterator)["d_loss"])
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def build_config(stage: str, batch: int, policy: str, jit: bool):
    """A compiled, warmed-up trainer (trace and any XLA compile done) with its data iterator."""
    keras.mixed_precision.set_global_policy(policy)  # layers keep the policy they were built with
    try:
        trainer, data, step_flops = stage_setup(stage, batch)
        trainer.compile(jit_compile=jit)
        trainer.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return trainer, iter(data), step_flops


def measure_stage(stage: str, configs: list[tuple], steps: int, rounds: int, ceilings: dict) -> list[dict]:
    """Every (batch, policy, xla) configuration of one stage, timed in turn for several rounds
    with the matmul ceiling measured in each round: a noisy neighbour slows every configuration
    and its ceiling alike, so the per-round ratios stay comparable. Medians over rounds."""
    built = []
    for batch, policy, jit in configs:
        try:
            built.append(((batch, policy, jit), *build_config(stage, batch, policy, jit)))
        except Exception as error:  # e.g. an op XLA cannot compile on this device
            print(f"  {stage} {policy} xla={jit} batch={batch}: failed ({type(error).__name__})", flush=True)
    samples = {key: [] for key, *_ in built}
    for _ in range(rounds):
        for key, trainer, iterator, step_flops in built:
            seconds = step_seconds(trainer, iterator, steps)
            samples[key].append((seconds, step_flops / seconds / 1e9 / ceilings[key[1]]()))
    rows = []
    for (batch, policy, jit), trainer, iterator, step_flops in built:
        seconds = float(np.median([s for s, _ in samples[(batch, policy, jit)]]))
        rows.append({"stage": stage, "policy": policy, "xla": jit, "batch": batch, "ms/step": 1e3 * seconds,
                     "images/s": batch / seconds, "GFLOP/step": step_flops / 1e9, "GFLOP/s": step_flops / seconds / 1e9,
                     "ratio to matmul": float(np.median([r for _, r in samples[(batch, policy, jit)]]))})
    return rows


def minimal_conditional_step(batch: int):
    """The same networks and losses as ConditionalRefinementTrainer in a bare tf.function."""
    generator = refinement.build_conditional_generator(num_classes=2)
    discriminator = refinement.build_conditional_discriminator(num_classes=2)
    g_optimizer, d_optimizer = gan.make_optimizer(), gan.make_optimizer()
    images, labels = tf.constant(_images(batch, 64)), tf.constant(np.arange(batch, dtype="int32") % 2)
    seed = keras.random.SeedGenerator(0)

    @tf.function
    def step():
        condition = refinement.degrade(images, seed)
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


def interleaved(functions: dict, rounds: int) -> dict:
    """Median seconds of each zero-argument timing function, called in turn for several rounds."""
    samples = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            samples[name].append(function())
    return {name: float(np.median(values)) for name, values in samples.items()}


def overhead(batch: int, steps: int, rounds: int) -> dict:
    """Our trainer vs a bare tf.function of the same networks and losses: per compiled step (the
    train function fit calls), and per step of whole fit calls of `steps` steps (callbacks,
    iterator and epoch set-up included; a real epoch has hundreds of steps to spread them over)."""
    trainer, data, _ = stage_setup("conditional", batch)
    trainer.compile()
    trainer.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    iterator, minimal = iter(data), minimal_conditional_step(batch)
    seconds = interleaved({"step": lambda: step_seconds(trainer, iterator, steps),
                           "fit": lambda: fit_seconds_per_step(trainer, data, steps),
                           "minimal": lambda: timed(minimal, repeats=steps, warmup=1)}, rounds)
    return {"batch": batch, "trainer step ms": 1e3 * seconds["step"], f"fit of {steps} steps, ms/step": 1e3 * seconds["fit"],
            "minimal tf.function ms/step": 1e3 * seconds["minimal"], "overhead ratio (step)": seconds["step"] / seconds["minimal"],
            f"overhead ratio (fit of {steps} steps)": seconds["fit"] / seconds["minimal"]}


def peer(batch: int, steps: int, rounds: int) -> dict:
    """Our DCGAN stage vs the keras-io-style reference, GFLOP/s of each, timed in alternation."""
    from reference_dcgan import ReferenceGAN, build_reference, reference_step_flops

    ref_generator, ref_discriminator = build_reference()
    reference = ReferenceGAN(ref_discriminator, ref_generator, 128)
    reference.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4), keras.losses.BinaryCrossentropy())
    reference_data = tf.data.Dataset.from_tensors(_images(batch, 64)).repeat()
    reference.fit(reference_data, steps_per_epoch=2, epochs=1, verbose=0)
    reference_flops = reference_step_flops(flops.model_flops(ref_generator), flops.model_flops(ref_discriminator), batch)
    trainer, iterator, our_flops = build_config("dcgan", batch, "float32", False)
    reference_iterator = iter(reference_data)
    seconds = interleaved({"ours": lambda: step_seconds(trainer, iterator, steps),
                           "reference": lambda: step_seconds(reference, reference_iterator, max(2, steps // 2))}, rounds)
    ours, theirs = our_flops / seconds["ours"] / 1e9, reference_flops / seconds["reference"] / 1e9
    return {"batch": batch, "ours GFLOP/s": ours, "keras-io reference GFLOP/s": theirs, "ratio (ours/reference)": ours / theirs,
            "ours ms/step": 1e3 * seconds["ours"], "reference ms/step": 1e3 * seconds["reference"]}


def steps_per_execution(batch: int, steps: int, chunk: int = 32) -> dict:
    """Seconds per step of whole `fit` calls with one train step per compiled call vs `chunk`
    steps per call (Keras' steps_per_execution), the conditional GAN on this device. On a GPU a
    step is a millisecond or two and Python's per-step dispatch is a large part of it; on a CPU
    a step is ~0.2 s and the difference is noise (so mgm_tf uses 1 there)."""
    steps = max(steps, chunk)
    timings = {}
    for per_call in (1, chunk):
        trainer, data, _ = stage_setup("conditional", batch)
        trainer.compile(steps_per_execution=per_call)
        trainer.fit(data, steps_per_epoch=per_call, epochs=1, verbose=0)
        timings[per_call] = fit_seconds_per_step(trainer, data, steps)
    return {"batch": batch, "steps per fit": steps, "ms/step, 1 step per call": 1e3 * timings[1],
            f"ms/step, {chunk} steps per call": 1e3 * timings[chunk], "speed-up": timings[1] / timings[chunk]}
