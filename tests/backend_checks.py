"""Checks run in a process of their own per Keras backend (`tests/test_backends.py`): Keras reads
KERAS_BACKEND once, so one pytest process cannot hold both. Each check writes what it measured
to OUT (a .npz or .json) for the test to compare and assert on.

    python tests/backend_checks.py CHECK BACKEND OUT [WORKDIR]

step     three SGD steps of every trainer from the weights in WORKDIR (saved there by the first
         backend to run), with keras.random replaced by one fixed stream of numbers (the seed
         generators still advance, as the real draws advance them): losses, weights, seed states
mixed    every GAN trainer class under mixed_float16: optimizer kinds, loss scales, steps applied,
         changes, layer dtypes, and the gradients applied next to float32's (after a skipped step
         too, from the weights that step started from)
resume   a stage interrupted after 2 of 4 epochs and resumed vs one run straight through, on a
         shuffled batch order that differs every epoch
devices  `fit` on two devices (JAX: keras.distribution.DataParallel; TensorFlow: MirroredStrategy
         on two logical CPUs) and on one, from the same weights, on distinct rows; the noise
         each replica drew, the batch split, the seed's advance and the batch-size rounding
frozen   (JAX) the SRGAN's VGG19 is an input of the compiled step, not a constant in it
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CHECK, BACKEND, OUT = sys.argv[1], sys.argv[2], Path(sys.argv[3])
WORKDIR = Path(sys.argv[4]) if len(sys.argv) > 4 else OUT.parent
os.environ["KERAS_BACKEND"] = BACKEND
if CHECK == "devices" and BACKEND == "jax":
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
if CHECK == "devices" and BACKEND == "tensorflow":
    import tensorflow as tf

    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from mgm_tf import backend, callbacks, classifier, dcgan, refinement, srgan  # noqa: E402
from mgm_tf.baselines import cyclegan  # noqa: E402
from mgm_tf.gan import GANTrainer  # noqa: E402
from mgm_tf.io import read_history  # noqa: E402
from mgm_tf.run import fit_stage  # noqa: E402

TRAINERS = ("dcgan", "cgan_baseline", "conditional", "srgan", "cyclegan", "judge")


def uint8_images(count=4, size=64, seed=0, channels=1):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels), dtype=np.uint8)


def untied(images: np.ndarray) -> np.ndarray:
    """uint8 images as floats in [0, 1] with a little noise: no two neighbouring pixels equal, so
    no max pooling or normalisation sits on a tie, where backends may take different (equally
    right) subgradients."""
    noise = np.random.default_rng(11).uniform(0.0, 1e-3, images.shape)
    return (images.astype("float64") / 255.0 + noise).astype("float32")


def build(name: str):
    """(trainer, networks whose weights the check compares, one batch) at a test size."""
    images, labels = uint8_images(4), np.array([0, 1, 0, 1], "int32")
    if name == "srgan":
        high = images[:, :32, :32].astype("float32") / 127.5 - 1.0
        high = np.repeat(high, 3, axis=-1)
        networks = [srgan.build_srgan_generator(num_residual_blocks=1, filters=8),
                    srgan.build_srgan_discriminator(filters=4, dense_units=16),
                    srgan.build_vgg_extractor(None, "block2_conv2")]  # the demo's layer: VGG19 up to block 2
        return srgan.SRGANTrainer(*networks), networks, (high[:, ::4, ::4], high)
    if name == "cyclegan":
        networks = [cyclegan.build_cycle_generator(filters=8, num_residual_blocks=1) for _ in range(2)]
        networks += [cyclegan.build_patch_discriminator(filters=8) for _ in range(2)]
        pair = (untied(np.repeat(images, 3, -1)), untied(uint8_images(4, seed=1, channels=3)))
        return cyclegan.CycleGANTrainer(*networks), networks, tuple(2.0 * part - 1.0 for part in pair)
    if name == "conditional":
        networks = [refinement.build_conditional_generator(num_classes=2, width=0.25),
                    refinement.build_conditional_discriminator(num_classes=2, width=0.25)]
        trainer = refinement.ConditionalRefinementTrainer(*networks, mode_seeking=1.0, diff_augment=True)
        return trainer, networks, (images, labels)
    if name == "judge":
        model = classifier.build_classifier(2, width=8, blocks=2)
        return model, [model], (untied(np.repeat(images, 3, -1)), labels)
    conditional = name == "cgan_baseline"
    networks = [dcgan.build_dcgan_generator(base_filters=32, num_classes=2 if conditional else None),
                dcgan.build_dcgan_discriminator(base_filters=8, num_classes=2 if conditional else None)]
    trainer = dcgan.DCGANTrainer(*networks, diff_augment=not conditional, mode_seeking=0.0 if conditional else 1.0)
    return trainer, networks, (images, labels) if conditional else images


def compile_trainer(trainer, **kwargs):
    if not isinstance(trainer, GANTrainer):
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", **kwargs)
    else:
        trainer.compile(**kwargs)


def one_step(trainer, data) -> dict:
    return trainer.train_on_batch(*data, return_dict=True) if isinstance(data, tuple) else \
        trainer.train_on_batch(data, return_dict=True)


def fixed_random_stream(seed: int = 1234) -> None:
    """keras.random.normal/uniform replaced by draws from one NumPy stream, taken in call order:
    the two backends' generators differ, and parity is about the step, not the generator."""
    from keras.src.random.seed_generator import draw_seed

    stream = np.random.default_rng(seed)

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        draw_seed(seed)  # the seed generator advances as a real draw advances it
        values = stream.standard_normal(tuple(int(size) for size in shape)) * stddev + mean
        return ops.convert_to_tensor(values.astype("float32"), dtype=dtype or "float32")

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        draw_seed(seed)
        values = stream.uniform(minval, maxval, tuple(int(size) for size in shape))
        return ops.convert_to_tensor(values.astype("float32"), dtype=dtype or "float32")

    keras.random.normal, keras.random.uniform = normal, uniform


def offset_biases(network, scale: float = 0.01) -> None:
    """Biases that start at zero moved to small random values. Where DiffAugment's cutout or
    translation zero a region of a one-input discriminator, its first convolution outputs exactly
    its bias there, 0 at the start, and LeakyReLU's gradient at exactly 0 is α on TensorFlow and 1
    on JAX: two right subgradients of a kink, which the comparison must not sit on."""
    rng = np.random.default_rng(7)
    for weight in network.weights:
        if weight.path.endswith("bias") and not np.any(ops.convert_to_numpy(weight)):
            weight.assign(rng.normal(0.0, scale, weight.shape).astype("float32"))


SGD_RATE = {"judge": 0.05, "srgan": 1e-4}  # plain SGD: a step moves each weight by rate × its gradient


def sgd_optimizers(name: str) -> dict:
    rate = SGD_RATE.get(name, 0.01)
    if name == "judge":
        return {"optimizer": keras.optimizers.SGD(rate)}
    return {"d_optimizer": keras.optimizers.SGD(rate), "g_optimizer": keras.optimizers.SGD(rate)}


def check_step(steps: int = 3) -> None:
    fixed_random_stream()
    results = {}
    for name in TRAINERS:
        keras.utils.set_random_seed(0)
        trainer, networks, data = build(name)
        for index, network in enumerate(networks):
            path = WORKDIR / f"{name}_{index}.weights.h5"
            if path.exists():
                network.load_weights(str(path))
            else:
                offset_biases(network)
                network.save_weights(str(path))
            if name == "judge":
                for layer in network.layers:
                    if isinstance(layer, keras.layers.Dropout):
                        layer.rate = 0.0  # Keras' own dropout draws are the backend's
        compared = networks[:3 if name != "srgan" else 2]
        before = [[ops.convert_to_numpy(w) for w in network.weights] for network in compared]
        optimizers = sgd_optimizers(name)
        if name == "judge":
            trainer.compile(loss="sparse_categorical_crossentropy", run_eagerly=True, **optimizers)
        else:
            trainer.compile(run_eagerly=True, **optimizers)  # eager: each step draws from the stream anew
        for step in range(steps):
            for key, value in one_step(trainer, data).items():
                results[f"{name}/loss/{step}/{key}"] = np.asarray(float(value))
        for index, network in enumerate(compared):
            for number, weight in enumerate(network.weights):
                results[f"{name}/weight/{index}/{number}"] = ops.convert_to_numpy(weight)
                results[f"{name}/before/{index}/{number}"] = before[index][number]
        if isinstance(trainer, GANTrainer):
            results[f"{name}/seed_state"] = ops.convert_to_numpy(trainer.seed_generator.state).astype(np.int64)
    np.savez(OUT, **results)


def second_moments(optimizer) -> list[float]:
    """Adam's second moments (0.001 × squared gradient after one step), summed over the variables."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(sum(np.sum(ops.convert_to_numpy(velocity), dtype=np.float64) for velocity in inner._velocities))


def weights_of(networks) -> list:
    return [[ops.convert_to_numpy(w) for w in network.weights] for network in networks]


def float32_moments(name: str, weights: list, data, steps: int) -> list[float]:
    """Adam's second moments of both optimizers after `steps` float32 steps from `weights`."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    reference, networks, _ = build(name)
    for network, values in zip(networks, weights):
        network.set_weights(values)
    compile_trainer(reference)
    for _ in range(steps):
        one_step(reference, data)
    return [second_moments(reference.d_optimizer), second_moments(reference.g_optimizer)]


def layer_dtypes(network) -> dict:
    """compute dtypes of the network's first hidden conv/dense layer and of its output layer."""
    hidden = next(layer for layer in network.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)))
    return {"hidden": hidden.compute_dtype, "output": network.layers[-1].compute_dtype,
            "variables": sorted({weight.dtype for weight in network.weights})}


def check_mixed() -> None:
    """Each trainer under mixed_float16 until both optimizers have applied a step (an overflow
    makes a loss-scaling optimizer skip one and halve its scale). An optimizer that applied
    every step is compared with float32 steps from the same first weights; one that skipped
    steps and then applied one (the SRGAN generator's, whose ×100/×200 weighted loss overflows
    at first) with one float32 step from the weights its applied step started from."""
    report = {}
    for name in ("dcgan", "conditional", "srgan", "cyclegan"):  # every GAN trainer class
        keras.mixed_precision.set_global_policy("mixed_float16")
        keras.utils.set_random_seed(0)
        trainer, networks, data = build(name)
        compile_trainer(trainer)
        keras.mixed_precision.set_global_policy("float32")
        optimizers = (trainer.d_optimizer, trainer.g_optimizer)
        first = weights_of(networks)
        steps, before_step = 0, first
        while steps < 12 and not all(int(ops.convert_to_numpy(o.iterations)) for o in optimizers):
            before_step = weights_of(networks)
            logs = one_step(trainer, data)
            steps += 1
        applied = [int(ops.convert_to_numpy(o.iterations)) for o in optimizers]
        from_start = float32_moments(name, first, data, steps)
        from_last = float32_moments(name, before_step, data, 1) if min(applied) < steps else from_start
        ratios = []
        for index, (optimizer, count) in enumerate(zip(optimizers, applied)):
            reference = from_start[index] if count == steps else from_last[index] if count == 1 else None
            ratios.append(second_moments(optimizer) / reference if reference else None)
        report[name] = {
            "loss_scale_optimizers": all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers),
            "applied": applied, "steps": steps,
            "scales": [float(ops.convert_to_numpy(o.dynamic_scale)) for o in optimizers],
            "finite": all(bool(np.isfinite(float(v))) for v in logs.values()),
            "changed": [any(not np.array_equal(a, ops.convert_to_numpy(b)) for a, b in zip(old, network.weights))
                        for old, network in zip(first, networks[:4])],
            "dtypes": [layer_dtypes(network) for network in networks[:2]],
            # the unscaled gradients each optimizer applied, relative to float32's: ~1 when its loss
            # was scaled and unscaled; 1/scale (3e-5) when it was differentiated unscaled
            "moment_ratios": ratios}
    OUT.write_text(json.dumps(report, indent=1))


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("simulated disconnect")


def small_dcgan(seed=0):
    keras.utils.set_random_seed(seed)
    trainer = dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32), dcgan.build_dcgan_discriminator(base_filters=8),
                                 seed=seed)
    trainer.compile(jit_compile=BACKEND == "jax")
    return trainer


def shuffled_input(seed: int = 5):
    """8 distinct images in batches of 4 through the stages' own pipeline (`gan_input`: tf.data
    on TensorFlow, IndexedBatches on JAX): every epoch pairs them differently, so a resumed
    run that replayed epoch 0's order would train on other batches."""
    from mgm_tf.data.batches import gan_input
    from mgm_tf.data.prepare import PreparedDataset

    images = uint8_images(8)
    prepared = PreparedDataset(WORKDIR, "resume", ["one"], 1, images, images, np.zeros(8, np.int64),
                               np.array(["train"] * 8), [], [], {})
    return gan_input(prepared, "train", 4, seed=seed, labels=False)


def check_resume() -> None:
    uninterrupted = small_dcgan()
    fit_stage(uninterrupted, shuffled_input(), WORKDIR / "a", 4, None, 1, False, "")
    first = small_dcgan()
    stage_dir = WORKDIR / "b"
    stage_callbacks, _ = callbacks.stage_callbacks(stage_dir, 4, backup_interval=0)
    data = shuffled_input()  # as `fit_stage` fits it: its batch order told where training starts
    try:
        first.fit(data, epochs=4, verbose=0, shuffle=False,
                  callbacks=stage_callbacks + [callbacks.BatchOrderCallback(data.order, 2), Interrupt()])
    except KeyboardInterrupt:
        pass
    interrupted_at = json.loads((stage_dir / "backup" / "training_metadata.json").read_text())["epoch"]
    rows_before = read_history(stage_dir / "history.csv")["epoch"]
    resumed = small_dcgan(seed=123)  # a fresh process would start from other weights, and a new input
    fit_stage(resumed, shuffled_input(), stage_dir, 4, None, 1, False, "")
    differences = [float(np.abs(ops.convert_to_numpy(a) - ops.convert_to_numpy(b)).max())
                   for a, b in zip(resumed.generator.weights, uninterrupted.generator.weights)]
    OUT.write_text(json.dumps({
        "interrupted_at": interrupted_at, "rows_before_resume": rows_before,
        "rows": read_history(stage_dir / "history.csv")["epoch"],
        "iterations": [int(ops.convert_to_numpy(t.g_optimizer.iterations)) for t in (resumed, uninterrupted)],
        "seed_states_equal": bool(np.array_equal(ops.convert_to_numpy(resumed.seed_generator.state),
                                                 ops.convert_to_numpy(uninterrupted.seed_generator.state))),
        "max_weight_difference": max(differences),
        "backup_files": sorted(path.name for path in (stage_dir / "backup").iterdir())}, indent=1))


def devices_trainer(name: str, devices: int):
    """The CycleGAN (instance norm, no random draws: a split batch computes what the whole one
    does) or the conditional GAN, from weights kept in WORKDIR, compiled with plain SGD: a step
    moves each weight by the rate × its gradient, so a difference in the gradients, not Adam's
    ±rate first step on a gradient within rounding of zero, is what the comparison sees."""
    keras.utils.set_random_seed(0)
    trainer, networks, _ = build(name)
    for index, network in enumerate(networks):
        path = WORKDIR / f"devices_{name}_{index}.weights.h5"
        network.load_weights(str(path)) if path.exists() else network.save_weights(str(path))
    trainer.compile(jit_compile=BACKEND == "jax", **sgd_optimizers(name))
    return trainer, networks


def distinct_rows(name: str, steps: int):
    """steps × 8 distinct rows, fed 8 per step (4 per device on two)."""
    count = steps * 8
    if name == "cyclegan":
        return uint8_images(count, seed=3, channels=3), uint8_images(count, seed=4, channels=3)  # (a, b)
    return uint8_images(count, seed=3), np.arange(count, dtype="int32") % 2


def fit_rows(name: str, devices: int, steps: int = 3) -> dict:
    trainer, networks = devices_trainer(name, devices)
    before = weights_of(networks[:2])
    x, y = distinct_rows(name, steps)
    history = trainer.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return {"losses": {key: [float(value) for value in values] for key, values in history.history.items()},
            "before": [[w.tolist() for w in network] for network in before],
            "after": [[ops.convert_to_numpy(w).tolist() for w in network.weights] for network in networks[:2]],
            "seed_state": ops.convert_to_numpy(trainer.seed_generator.state).astype(np.int64).tolist()}


def replica_noise(distribution) -> list:
    """The noise each device's share of a batch of 8 is drawn with, by the trainers' seed generator."""
    trainer, _ = devices_trainer("conditional", 2)
    if BACKEND == "jax":
        noise = ops.convert_to_numpy(trainer.noise(8))
        return [noise[:4].tolist(), noise[4:].tolist()]
    drawn = distribution.run(lambda: trainer.noise(4))
    return [ops.convert_to_numpy(value).tolist() for value in distribution.experimental_local_results(drawn)]


def batch_split(distribution) -> list[int]:
    if BACKEND == "jax":
        import jax

        layout = distribution.get_data_layout((8, 64, 64, 1))
        return [int(shard.data.shape[0]) for shard in jax.device_put(uint8_images(8), layout.backend_layout).addressable_shards]
    import tensorflow as tf

    dataset = distribution.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(uint8_images(8)).batch(8))
    return [int(value.shape[0]) for value in next(iter(dataset)).values]


def check_devices() -> None:
    from mgm_tf.data import effective_batch_size

    names = backend.device_names()
    trainers = ("cyclegan", "conditional")
    single = {name: fit_rows(name, 1) for name in trainers}
    distribution = backend.distribution_for("all")
    with backend.training_scope(distribution):
        several = {name: fit_rows(name, 2) for name in trainers}
        report = {"devices": names, "replicas": backend.device_count(), "split": batch_split(distribution),
                  "noise": replica_noise(distribution), "rounded": effective_batch_size(100, 15)}
    report.update(single=single, several=several, one_device_batch=effective_batch_size(100, 15))
    OUT.write_text(json.dumps(report))


def check_frozen() -> None:
    """One SRGAN step compiles the step; then VGG19's weights are zeroed. Were they constants of
    the compiled step, its perceptual term would stay what it was; as inputs, it becomes 0."""
    trainer, networks, data = build("srgan")
    trainer.compile(jit_compile=True)
    first = float(one_step(trainer, data)["perceptual"])
    for weight in networks[2].weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    trainer.reset_metrics()
    second = float(one_step(trainer, data)["perceptual"])
    OUT.write_text(json.dumps({"before": first, "after_zeroing": second,
                               "frozen_in_state": len(trainer.optimizer.variables) - len(trainer.d_optimizer.variables)
                               - len(trainer.g_optimizer.variables)}))


if __name__ == "__main__":
    {"step": check_step, "mixed": check_mixed, "resume": check_resume, "devices": check_devices,
     "frozen": check_frozen}[CHECK]()
    print(f"{CHECK} on {BACKEND}: done")
