"""One real step per trainer; divergence guard; precision policies (resume, mixed_float16 and
two devices on both backends: tests/test_backends.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mgm_tf import augment, dcgan, losses, refinement, srgan
from mgm_tf.baselines import cyclegan
from mgm_tf.run import fit_stage


def _images(count=4, size=64, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype("float32")


def _weights(network):
    return [w.numpy().copy() for w in network.trainable_weights]


def _changed(before, network):
    return any(not np.allclose(a, b.numpy()) for a, b in zip(before, network.trainable_weights))


def _step(trainer, generator, discriminator, data):
    g_before, d_before = _weights(generator), _weights(discriminator)
    logs = trainer.train_on_batch(*data, return_dict=True) if isinstance(data, tuple) else trainer.train_on_batch(data, return_dict=True)
    assert all(np.isfinite(value) for value in logs.values()), logs
    assert _changed(g_before, generator) and _changed(d_before, discriminator)
    return logs


@pytest.mark.parametrize("num_classes, label_conditioning", [(None, "plane"), (2, "plane"), (2, "projection")])
def test_dcgan_step(num_classes, label_conditioning):
    generator = dcgan.build_dcgan_generator(num_classes=num_classes, base_filters=64)
    discriminator = dcgan.build_dcgan_discriminator(num_classes=num_classes, base_filters=16,
                                                    label_conditioning=label_conditioning)
    trainer = dcgan.DCGANTrainer(generator, discriminator)
    trainer.compile()
    data = (_images(), np.array([0, 1, 0, 1], "int32")) if num_classes else _images()
    logs = _step(trainer, generator, discriminator, data)
    assert set(logs) == {"d_loss", "g_loss"}


@pytest.mark.parametrize("num_classes", [None, 2])
def test_conditional_refinement_step(num_classes):
    generator = refinement.build_conditional_generator(num_classes=num_classes)
    discriminator = refinement.build_conditional_discriminator(num_classes=num_classes)
    trainer = refinement.ConditionalRefinementTrainer(generator, discriminator)
    trainer.compile()
    _step(trainer, generator, discriminator, (_images(), np.array([0, 1, 1, 0], "int32")))


def test_srgan_step_with_perceptual_loss():
    generator = srgan.build_srgan_generator(num_residual_blocks=1, filters=8)
    discriminator = srgan.build_srgan_discriminator(filters=4, dense_units=16)
    trainer = srgan.SRGANTrainer(generator, discriminator, srgan.build_vgg_extractor(None))
    trainer.compile()
    high = _images(2, 32)
    low = tf.image.resize(high, (8, 8), method="bicubic", antialias=True).numpy()
    logs = _step(trainer, generator, discriminator, (low, high))
    assert logs["perceptual"] > 0 and logs["content"] > 0


def test_cyclegan_step():
    g_ab, g_ba = cyclegan.build_cycle_generator(filters=8, num_residual_blocks=1), cyclegan.build_cycle_generator(filters=8, num_residual_blocks=1)
    d_a, d_b = cyclegan.build_patch_discriminator(filters=8), cyclegan.build_patch_discriminator(filters=8)
    trainer = cyclegan.CycleGANTrainer(g_ab, g_ba, d_a, d_b)
    trainer.compile()
    before = [_weights(n) for n in (g_ab, g_ba, d_a, d_b)]
    logs = trainer.train_on_batch(_images(2), _images(2, seed=1), return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert all(_changed(b, n) for b, n in zip(before, (g_ab, g_ba, d_a, d_b)))


def test_degrade_blurs_and_stays_in_range():
    images = _images(4)
    degraded = np.asarray(refinement.degrade(images, keras.random.SeedGenerator(3)))
    again = np.asarray(refinement.degrade(images, keras.random.SeedGenerator(3)))
    assert degraded.shape == images.shape and np.allclose(degraded, again)
    assert degraded.min() >= -1 and degraded.max() <= 1
    high_frequency = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    assert high_frequency(degraded) < 0.5 * high_frequency(images)


def test_degrade_options_change_the_conditioning_image():
    images = _images(4)
    coarse, fine = (np.asarray(refinement.degrade(images, keras.random.SeedGenerator(3), min_size, 0.0))
                    for min_size in (8, 32))
    high_frequency = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    assert high_frequency(coarse) < high_frequency(fine)
    quiet, noisy = (np.asarray(refinement.degrade(images, keras.random.SeedGenerator(3), 16, noise))
                    for noise in (0.0, 0.3))
    assert 0.1 < np.std(noisy - quiet) < 0.4
    with pytest.raises(ValueError, match="degrade_min_size must divide the image size 64"):
        refinement.degrade(images, keras.random.SeedGenerator(3), 24)


def test_pair_augmentation_shares_the_transform_and_keeps_each_images_own_statistics():

    dark, bright = np.full((3, 64, 64, 3), -0.6, "float32"), np.full((3, 64, 64, 3), 0.4, "float32")
    dark[:, 20:40, 20:40] += 0.3  # some content, so contrast has something to act on
    out_dark, out_bright = (np.asarray(x) for x in augment.colour([dark, bright], keras.random.SeedGenerator(5)))
    shift_dark = out_dark.mean(axis=(1, 2, 3)) - dark.mean(axis=(1, 2, 3))
    shift_bright = out_bright.mean(axis=(1, 2, 3)) - bright.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(shift_dark, shift_bright, atol=1e-5)  # one brightness draw, each around its own mean
    np.testing.assert_allclose(out_bright.std(axis=(1, 2, 3)), 0.0, atol=1e-5)  # no content borrowed from the pair
    moved = augment.diff_augment_together([dark, bright], keras.random.SeedGenerator(7))
    zeroed_dark, zeroed_bright = (np.asarray(x) == 0 for x in moved)
    assert np.array_equal(zeroed_dark.any(axis=-1), zeroed_bright.any(axis=-1))  # same shift and cutout


def test_adaptive_augmentation_follows_how_sure_the_discriminator_is():
    step = 16 / augment.ADAPT_IMAGES
    sure, unsure = np.full((16, 1), 3.0, "float32"), np.full((16, 1), -3.0, "float32")
    assert float(augment.adapted_probability(0.5, sure, 0.6)) == pytest.approx(0.5 + step)  # r = 1 > 0.6: more
    assert float(augment.adapted_probability(0.5, unsure, 0.6)) == pytest.approx(0.5 - step)  # r = −1: less
    assert float(augment.adapted_probability(0.0, unsure, 0.6)) == 0.0
    assert float(augment.adapted_probability(1.0, sure, 0.6)) == 1.0
    images = _images(64)
    augmented = augment.diff_augment_together([images], keras.random.SeedGenerator(1))
    never = augment.with_probability([images], augmented, 0.0, keras.random.SeedGenerator(2))[0]
    always = augment.with_probability([images], augmented, 1.0, keras.random.SeedGenerator(2))[0]
    half = np.asarray(augment.with_probability([images], augmented, 0.5, keras.random.SeedGenerator(2))[0])
    np.testing.assert_array_equal(never, images)
    np.testing.assert_array_equal(always, augmented[0])
    kept = np.all(half == images, axis=(1, 2, 3))
    assert 16 < kept.sum() < 48 and np.all(half[~kept] == np.asarray(augmented[0])[~kept])


def test_ada_moves_its_probability_as_it_trains_and_ttur_gives_d_its_own_rate():
    generator = dcgan.build_dcgan_generator(base_filters=32)
    discriminator = dcgan.build_dcgan_discriminator(base_filters=8)
    trainer = dcgan.DCGANTrainer(generator, discriminator, diff_augment=True, augment_target=0.6)
    trainer.compile(learning_rate=1e-4, discriminator_learning_rate=4e-4)
    assert float(trainer.d_optimizer.learning_rate) == pytest.approx(4e-4)
    assert float(trainer.g_optimizer.learning_rate) == pytest.approx(1e-4)
    images = _images(8)
    for _ in range(6):  # D soon tells 8 fixed noise images from G's: r = 1, p rises by 8/ADAPT_IMAGES a step
        logs = trainer.train_on_batch(images, return_dict=True)
    probability = float(trainer.augment_probability.numpy())
    assert 0.0 < probability <= 6 * 8 / augment.ADAPT_IMAGES + 1e-7
    assert "augment_probability" in logs and "augment_probability" in [w.name for w in trainer.non_trainable_weights]
    with pytest.raises(ValueError, match="DiffAugment is off"):
        dcgan.DCGANTrainer(generator, discriminator, diff_augment=False, augment_target=0.6)
    with pytest.raises(ValueError, match="must be in"):
        dcgan.DCGANTrainer(generator, discriminator, diff_augment=True, augment_target=1.0)
    with pytest.raises(ValueError, match="discriminator_learning_rate must be positive"):
        trainer.compile(discriminator_learning_rate=0.0)


def test_refinement_output_depends_on_the_label():
    generator = refinement.build_conditional_generator(num_classes=2)
    noise = np.random.default_rng(0).standard_normal((2, 100)).astype("float32")
    condition = _images(1)
    both = np.asarray(generator([noise[:1].repeat(2, 0), condition.repeat(2, 0), np.array([0, 1], "int32")],
                                training=False))
    assert np.abs(both[0] - both[1]).mean() > 1e-4


def test_mode_seeking_term_penalises_a_generator_that_ignores_its_noise():
    noise = np.random.default_rng(0).standard_normal((4, 100)).astype("float32")
    varied = float(losses.mode_seeking_term(_images(4), noise))
    collapsed = float(losses.mode_seeking_term(np.repeat(_images(1), 4, axis=0), noise))
    assert collapsed > 1000 * varied


def test_vgg_extractor_loads_local_weights_file(tmp_path):
    reference = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg19_notop.weights.h5"
    reference.save_weights(str(path))
    extractor = srgan.build_vgg_extractor(str(path))
    assert not extractor.trainable and extractor.output.shape[-1] == 512
    assert np.allclose(extractor.get_layer("block1_conv1").get_weights()[0], reference.get_layer("block1_conv1").get_weights()[0])
    with pytest.raises(ValueError, match="does not exist"):
        srgan.build_vgg_extractor(str(tmp_path / "missing.h5"))


def _small_dcgan(seed=0):
    keras.utils.set_random_seed(seed)
    generator = dcgan.build_dcgan_generator(base_filters=32)
    discriminator = dcgan.build_dcgan_discriminator(base_filters=8)
    trainer = dcgan.DCGANTrainer(generator, discriminator, seed=seed)
    trainer.compile()
    return trainer


def test_non_finite_loss_stops_and_rolls_back(tmp_path):
    trainer = _small_dcgan()
    good = tf.data.Dataset.from_tensor_slices(_images(4)).batch(4)
    fit_stage(trainer, good, tmp_path, 1, None, 1, False, "")  # leaves a checkpoint after epoch 1
    checkpoint_weights = _weights(trainer.generator)
    poisoned = np.full((4, 64, 64, 3), np.nan, "float32")
    bad = tf.data.Dataset.from_tensor_slices(poisoned).batch(4)
    with pytest.raises(RuntimeError, match="non-finite loss"):
        fit_stage(trainer, bad, tmp_path, 3, None, 1, False, "")
    assert all(np.allclose(a, b.numpy()) for a, b in zip(checkpoint_weights, trainer.generator.trainable_weights))


def test_mixed_bfloat16_steps_stay_finite():
    import os

    from mgm_tf import device

    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in device.ONEDNN_ISAS_WITHOUT_BF16:
        pytest.skip("oneDNN limited below bfloat16 on a bf16 CPU: TensorFlow aborts on bf16 matmuls there")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trainer = refinement.ConditionalRefinementTrainer(refinement.build_conditional_generator(num_classes=2),
                                                          refinement.build_conditional_discriminator(num_classes=2))
        trainer.compile()
        assert trainer.generator.get_layer("image").compute_dtype == "float32"
        for _ in range(3):
            logs = trainer.train_on_batch(_images(4), np.array([0, 1, 0, 1], "int32"), return_dict=True)
        assert all(np.isfinite(value) for value in logs.values())
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_cpu_kernels_follow_the_switch_set_before_tensorflow_loads():
    """`import mgm_tf` asks for oneDNN kernels on x86 unless the user chose; it cannot once TensorFlow is loaded."""
    import os
    import platform
    import subprocess
    import sys

    probe = ("import {first}; import {second}; import os; from mgm_tf.device import cpu_kernels; "
             "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), cpu_kernels())")
    base = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}

    def kernels(first, second, **extra):
        code = probe.format(first=first, second=second)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                                env={**base, "TF_CPP_MIN_LOG_LEVEL": "3", **extra})
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.split()[-2:]

    if platform.machine().lower() in ("x86_64", "amd64"):
        assert kernels("mgm_tf", "tensorflow") == ["1", "oneDNN"]
    assert kernels("mgm_tf", "tensorflow", TF_ENABLE_ONEDNN_OPTS="0") == ["0", "Eigen"]
    assert kernels("tensorflow", "mgm_tf")[0] == "None"  # too late to choose: left to TensorFlow


XLA_PROBE = """
import sys
import numpy as np
import tensorflow as tf
from mgm_tf import dcgan, refinement, srgan

images, labels = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype("float32"), np.array([0, 1, 0, 1])
trainers = {
    "dcgan": (dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32),
                                 dcgan.build_dcgan_discriminator(base_filters=8)), (images,)),
    "dcgan+diffaugment": (dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32),
                                             dcgan.build_dcgan_discriminator(base_filters=8), diff_augment=True), (images,)),
    "conditional": (refinement.ConditionalRefinementTrainer(refinement.build_conditional_generator(num_classes=2),
                                                            refinement.build_conditional_discriminator(num_classes=2)),
                    (images, labels.astype("int32"))),
    "srgan": (srgan.SRGANTrainer(srgan.build_srgan_generator(filters=8, num_residual_blocks=1),
                                 srgan.build_srgan_discriminator(filters=8), srgan.build_vgg_extractor(None)),
              (images[:, :16, :16], images)),
}
for name, (trainer, data) in trainers.items():
    trainer.compile(jit_compile=True)
    try:
        trainer.train_on_batch(*data)
        print(name, "compiles")
    except tf.errors.InvalidArgumentError as error:
        print(name, "refused" if "unsupported operations" in str(error) else "error")
"""


def test_the_stages_said_not_to_compile_are_the_ones_xla_refuses():
    """device.resolve_jit lets Keras compile a stage on accelerators unless it is flagged; XLA's CPU
    and GPU backends share the op set, so compiling on this CPU checks the flags. In a fresh
    process: with TensorFlow's op determinism on (as some tests here turn it on), Keras takes
    another path for DiffAugment's image transform, one that compiles."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", XLA_PROBE], capture_output=True, text=True, timeout=600)
    verdicts = dict(line.split() for line in result.stdout.splitlines() if line.split()[-1] in ("compiles", "refused"))
    assert verdicts == {"dcgan": "compiles", "dcgan+diffaugment": "refused",  # DiffAugment: ImageProjectiveTransform
                        "conditional": "compiles", "srgan": "refused"}, result.stdout + result.stderr[-2000:]
