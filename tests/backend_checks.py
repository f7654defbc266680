"""Checks run in a process of their own per Keras backend (`tests/test_backends.py`): Keras reads
KERAS_BACKEND once, so one pytest process cannot hold both. Each check writes what it measured
to OUT (a .npz or .json) for the test to compare and assert on.

    python tests/backend_checks.py CHECK BACKEND OUT [WORKDIR]

step     one step of every trainer from the weights in WORKDIR (saved there by the first backend
         to run), with keras.random replaced by one fixed stream of numbers: losses and weights
mixed    every GAN trainer class under mixed_float16: optimizer kinds, loss scales, steps applied,
         changes, and the gradients applied next to float32's
resume   a stage interrupted after 2 of 4 epochs and resumed vs one run straight through
devices  a few steps on two devices (JAX: keras.distribution.DataParallel; TensorFlow:
         MirroredStrategy on two logical CPUs) and on one, from the same weights
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

from mgm_tf import backend, callbacks, dcgan, judge, refinement, srgan  # noqa: E402
from mgm_tf.baselines import cyclegan  # noqa: E402
from mgm_tf.data.batches import IndexedBatches  # noqa: E402
from mgm_tf.gan import GANTrainer  # noqa: E402
from mgm_tf.io import read_history  # noqa: E402
from mgm_tf.run import fit_stage  # noqa: E402

TRAINERS = ("dcgan", "cgan_baseline", "conditional", "srgan", "cyclegan", "judge")


def uint8_images(count=4, size=64, seed=0, channels=1):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels), dtype=np.uint8)


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
        return cyclegan.CycleGANTrainer(*networks), networks, (np.repeat(images, 3, -1), uint8_images(4, seed=1, channels=3))
    if name == "conditional":
        networks = [refinement.build_conditional_generator(num_classes=2, width=0.25),
                    refinement.build_conditional_discriminator(num_classes=2, width=0.25)]
        trainer = refinement.ConditionalRefinementTrainer(*networks, mode_seeking=1.0, diff_augment=True)
        return trainer, networks, (images, labels)
    if name == "judge":
        model = judge.build_classifier(2, width=8, blocks=2)
        return model, [model], (np.repeat(images, 3, -1).astype("float32") / 255.0, labels)
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
    stream = np.random.default_rng(seed)

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        values = stream.standard_normal(tuple(int(size) for size in shape)) * stddev + mean
        return ops.convert_to_tensor(values.astype("float32"), dtype=dtype or "float32")

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        values = stream.uniform(minval, maxval, tuple(int(size) for size in shape))
        return ops.convert_to_tensor(values.astype("float32"), dtype=dtype or "float32")

    keras.random.normal, keras.random.uniform = normal, uniform


def check_step() -> None:
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
                network.save_weights(str(path))
            if name == "judge":
                for layer in network.layers:
                    if isinstance(layer, keras.layers.Dropout):
                        layer.rate = 0.0  # Keras' own dropout draws are the backend's
        compile_trainer(trainer, run_eagerly=BACKEND == "tensorflow")  # eager TF: shapes are concrete
        logs = one_step(trainer, data)
        for key, value in logs.items():
            results[f"{name}/loss/{key}"] = np.asarray(float(value))
        for index, network in enumerate(networks[:3 if name != "srgan" else 2]):
            for number, weight in enumerate(network.weights):
                results[f"{name}/weight/{index}/{number}"] = ops.convert_to_numpy(weight)
    np.savez(OUT, **results)


def second_moments(optimizer) -> list[float]:
    """Adam's second moments (0.001 × squared gradient after one step), summed over the variables."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(sum(np.sum(ops.convert_to_numpy(velocity), dtype=np.float64) for velocity in inner._velocities))


def check_mixed() -> None:
    """Each trainer under mixed_float16 until both optimizers have applied a step (an overflow
    makes a loss-scaling optimizer skip one and halve its scale), then the same number of
    float32 steps from the same weights, to compare the gradients each optimizer applied."""
    report = {}
    for name in ("dcgan", "conditional", "srgan", "cyclegan"):  # every GAN trainer class
        keras.mixed_precision.set_global_policy("mixed_float16")
        keras.utils.set_random_seed(0)
        trainer, networks, data = build(name)
        compile_trainer(trainer)
        keras.mixed_precision.set_global_policy("float32")
        optimizers = (trainer.d_optimizer, trainer.g_optimizer)
        before = [[ops.convert_to_numpy(w) for w in network.trainable_weights] for network in networks[:4]]
        steps = 0
        while steps < 12 and not all(int(ops.convert_to_numpy(o.iterations)) for o in optimizers):
            logs = one_step(trainer, data)
            steps += 1
        keras.utils.set_random_seed(0)
        reference, _, reference_data = build(name)
        compile_trainer(reference)
        for _ in range(steps):
            one_step(reference, reference_data)
        applied = [int(ops.convert_to_numpy(o.iterations)) for o in optimizers]
        report[name] = {
            "loss_scale_optimizers": all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers),
            "applied": applied, "steps": steps,
            "scales": [float(ops.convert_to_numpy(o.dynamic_scale)) for o in optimizers],
            "finite": all(bool(np.isfinite(float(v))) for v in logs.values()),
            "changed": [any(not np.array_equal(a, ops.convert_to_numpy(b)) for a, b in zip(old, network.trainable_weights))
                        for old, network in zip(before, networks[:4])],
            "layer_dtype": networks[0].layers[-2].compute_dtype,
            # the unscaled gradients each optimizer applied, relative to float32's: ~1 when its loss
            # was scaled and unscaled; 1/scale (3e-5) when it was differentiated unscaled. None for
            # an optimizer that skipped a step (its moments hold fewer steps than float32's)
            "moment_ratios": [second_moments(o) / second_moments(r) if count == steps else None
                              for o, r, count in zip(optimizers, (reference.d_optimizer, reference.g_optimizer), applied)]}
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


def check_resume() -> None:
    images = uint8_images(4)
    dataset = IndexedBatches([images], 4, steps=1) if BACKEND == "jax" else \
        __import__("tensorflow").data.Dataset.from_tensor_slices(images).batch(4)
    uninterrupted = small_dcgan()
    fit_stage(uninterrupted, dataset, WORKDIR / "a", 4, None, 1, False, "")
    first = small_dcgan()
    stage_dir = WORKDIR / "b"
    stage_callbacks, _ = callbacks.stage_callbacks(stage_dir, 4, backup_interval=0)
    try:
        first.fit(dataset, epochs=4, verbose=0, callbacks=stage_callbacks + [Interrupt()])
    except KeyboardInterrupt:
        pass
    interrupted_at = json.loads((stage_dir / "backup" / "training_metadata.json").read_text())["epoch"]
    rows_before = read_history(stage_dir / "history.csv")["epoch"]
    resumed = small_dcgan(seed=123)  # a fresh process would start from other weights
    fit_stage(resumed, dataset, stage_dir, 4, None, 1, False, "")
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


def cycle_and_conditional(seed=0):
    keras.utils.set_random_seed(seed)
    trainers = {"cyclegan": build("cyclegan"), "conditional": build("conditional")}
    for name, (trainer, networks, _) in trainers.items():
        for index, network in enumerate(networks):
            path = WORKDIR / f"devices_{name}_{index}.weights.h5"
            network.load_weights(str(path)) if path.exists() else network.save_weights(str(path))
        trainer.compile(jit_compile=BACKEND == "jax")
    return trainers


def run_steps(trainers, steps=3) -> dict:
    results = {}
    for name, (trainer, networks, data) in trainers.items():
        data = data if isinstance(data, tuple) else (data,)
        batch = tuple(np.concatenate([part, part]) for part in data)  # global batch 8: 4 per device
        losses = [float(one_step(trainer, batch)["g_loss"]) for _ in range(steps)]
        results[name] = {"losses": losses, "weights": [ops.convert_to_numpy(w).tolist()
                                                      for w in networks[0].trainable_weights[:2]]}
    return results


def check_devices() -> None:
    names = backend.device_names()
    single = run_steps(cycle_and_conditional())
    distribution = backend.data_parallel() if BACKEND == "jax" else backend.data_parallel(["/cpu:0", "/cpu:1"])
    split = None
    with backend.training_scope(distribution), backend.strategy_scope(distribution):
        trainers = cycle_and_conditional()
        if BACKEND == "jax":
            import jax

            layout = distribution.get_data_layout((8, 64, 64, 1))
            shards = jax.device_put(uint8_images(8), layout.backend_layout).addressable_shards
            split = [int(shard.data.shape[0]) for shard in shards]
            replicas = len(distribution.device_mesh.devices.ravel())
        else:
            import tensorflow as tf

            dataset = distribution.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(uint8_images(8)).batch(8))
            split = [int(value.shape[0]) for value in next(iter(dataset)).values]
            replicas = distribution.num_replicas_in_sync
        several = run_steps(trainers)
    OUT.write_text(json.dumps({"devices": names, "replicas": replicas, "split": split, "single": single,
                               "several": several}))


if __name__ == "__main__":
    {"step": check_step, "mixed": check_mixed, "resume": check_resume, "devices": check_devices}[CHECK]()
    print(f"{CHECK} on {BACKEND}: done")
