"""Each stage earns its place: the residual refiner, grey generators, and the stage table's
measurements on fixtures whose answer is known."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mgm_tf import config as config_module
from mgm_tf import blocks, dcgan, gan, refinement
from mgm_tf.data import fixtures
from mgm_tf.evaluation import stage_value


def _noise(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 100)).astype(np.float32)


def test_the_residual_refiner_starts_as_the_identity_and_a_grey_one_draws_grey():
    conditions = np.random.default_rng(1).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    refiner = refinement.build_residual_refiner(width=0.25)
    assert np.array_equal(np.asarray(refiner([_noise(3), conditions])), conditions)
    grey = refinement.build_residual_refiner(width=0.25, grey=True)
    grey.get_layer("residual_conv").kernel.assign(
        np.random.default_rng(2).normal(0, 0.05, grey.get_layer("residual_conv").kernel.shape))
    grey_conditions = np.repeat(conditions[..., :1], 3, axis=-1)
    refined = np.asarray(grey([_noise(3), grey_conditions]))
    assert np.abs(refined - grey_conditions).max() > 0.01  # no longer the identity…
    assert np.array_equal(refined[..., 0], refined[..., 1]) and np.array_equal(refined[..., 0], refined[..., 2])
    assert refined.min() >= -1.0 and refined.max() <= 1.0


def test_the_paper_variants_keep_the_papers_shapes():
    paper = config_module.CGANConfig(refiner="paper", label_conditioned=False)
    generator, discriminator = refinement.build_conditional(paper, 3)
    assert gan.count_parameters(generator)["trainable"] == 2_742_659
    assert gan.count_parameters(discriminator)["trainable"] == 678_337
    assert len(discriminator.inputs) == 2 and generator.output.shape[-1] == 3
    residual_generator, critic = refinement.build_conditional(config_module.CGANConfig(), 3)
    assert len(residual_generator.inputs) == 2 and len(critic.inputs) == 1  # D2(x): a real image has no c
    assert gan.count_parameters(dcgan.build_dcgan_generator())["trainable"] == \
        gan.count_parameters(dcgan.build_dcgan_generator(grey=True))["trainable"] + 4 * 4 * 32 * 2 + 2
    with pytest.raises(ValueError, match="refiner"):
        refinement.build_conditional(config_module.CGANConfig(refiner="sharpen"), 3)


def test_the_residual_trainer_refines_g1_samples_and_leaves_g1_alone():
    condition_generator = dcgan.build_dcgan_generator(base_filters=32)
    generator = refinement.build_residual_refiner(width=0.25)
    discriminator = refinement.build_conditional_discriminator(width=0.25, paired=False)
    trainer = refinement.ResidualRefinementTrainer(generator, discriminator, condition_generator, seed=3,
                                                   self_regularisation=1.0, diff_augment=True)
    trainer.compile(learning_rate=1e-3)
    before = [np.array(weight) for weight in condition_generator.weights]
    residual_before = np.array(generator.get_layer("residual_conv").kernel)
    critic_before = np.array(discriminator.weights[0])
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8)
    labels = np.zeros(8, np.int32)
    history = trainer.fit(images, labels, batch_size=4, epochs=1, verbose=0, shuffle=False).history
    assert {"d_loss", "g_loss", "self_regularisation"} <= set(history)
    assert all(np.array_equal(old, np.array(new)) for old, new in zip(before, condition_generator.weights))
    assert not np.array_equal(residual_before, np.array(generator.get_layer("residual_conv").kernel))
    assert not np.array_equal(critic_before, np.array(discriminator.weights[0]))
    assert np.isfinite(history["self_regularisation"][-1]) and history["self_regularisation"][0] < 0.05
    with pytest.raises(ValueError, match="self_regularisation"):
        refinement.ResidualRefinementTrainer(generator, discriminator, condition_generator, self_regularisation=-1)
    with pytest.raises(ValueError, match="self_regularisation_pool"):
        refinement.ResidualRefinementTrainer(generator, discriminator, condition_generator, self_regularisation_pool=3)


def test_the_per_pixel_tie_sees_speckle_that_a_box_average_hides():
    """Speckle that sums to zero in every 4×4 box costs nothing under a 4×4 low pass: the tie the
    residual refiner uses by default (pool 1) charges for it."""
    condition = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 64, 64, 1)).astype(np.float32)
    speckle = np.tile(np.array([[0.2, -0.2], [-0.2, 0.2]], np.float32), (32, 32))[None, :, :, None]
    refined = condition + speckle

    def tie(pool):
        return float(np.abs(np.asarray(refinement.low_pass(refined, pool)) -
                            np.asarray(refinement.low_pass(condition, pool))).mean())

    assert tie(4) < 1e-6 and tie(1) == pytest.approx(0.2, abs=1e-5)
    assert config_module.CGANConfig().self_regularisation_pool == 1


def test_the_squared_tie_charges_a_streak_more_than_the_same_move_spread_out():
    """The demo's streaks: one column moved by 0.8 and every pixel moved by 0.8/64 are one move
    to L1, and 64 times apart squared."""
    condition = np.zeros((1, 64, 64, 1), np.float32)
    streak, spread = condition.copy(), condition + 0.8 / 64
    streak[:, :, 20] = 0.8

    def tie(refined, norm):
        return float(refinement.tie_distance(condition, refined, norm))

    assert tie(streak, "l1") == pytest.approx(tie(spread, "l1"), rel=1e-5)
    assert tie(streak, "l2") == pytest.approx(64 * tie(spread, "l2"), rel=1e-4)
    generator = refinement.build_residual_refiner(width=0.25)
    with pytest.raises(ValueError, match="self_regularisation_norm"):
        refinement.ResidualRefinementTrainer(generator, refinement.build_conditional_discriminator(width=0.25, paired=False),
                                             dcgan.build_dcgan_generator(base_filters=32), self_regularisation_norm="l3")
    assert config_module.demo().cgan.self_regularisation_norm == config_module.CGANConfig().self_regularisation_norm == "l2"


def _pixel_features(images: np.ndarray) -> np.ndarray:
    return images[..., 0].reshape(len(images), -1).astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def blob_sets():
    """Real blobs in two halves: a reference, and a 'stage input' drawn from the same distribution."""
    rng = np.random.default_rng(5)
    images = np.stack([fixtures.blob_image(rng, fixtures.TWO_CLASS_NAMES[index % 2]) for index in range(120)])
    images = images[:, ::4, ::4, None]  # 16 px grey: pixel features of a manageable size
    return _pixel_features(images[:60]), images[60:]


def test_a_stage_that_adds_noise_is_judged_worse_and_an_identity_indistinguishable(blob_sets):
    real, stage_input = blob_sets
    before = _pixel_features(stage_input)
    noisy = np.clip(stage_input.astype(float) + np.random.default_rng(9).normal(0, 60, stage_input.shape), 0, 255)
    for after, expected in ((before.copy(), "indistinguishable"), (_pixel_features(noisy.astype(np.uint8)), "worse")):
        change = stage_value.kid_change(real, before, after)
        test_before = stage_value.classifier_two_sample_test(real, before)
        test_after = stage_value.classifier_two_sample_test(real, after)
        assert stage_value.verdict(change, test_before, test_after) == expected
    assert test_after["accuracy"] > 0.9 and test_before["accuracy"] < 0.75  # noise is told from real, blobs are not


def test_a_smoothing_stage_on_noisy_input_is_judged_better(blob_sets):
    real, stage_input = blob_sets
    noisy = np.clip(stage_input.astype(float) + np.random.default_rng(9).normal(0, 60, stage_input.shape), 0, 255)
    change = stage_value.kid_change(real, _pixel_features(noisy.astype(np.uint8)), _pixel_features(stage_input))
    assert change["high"] < 0


def test_density_and_coverage_of_known_sets():
    real = np.random.default_rng(0).normal(size=(200, 4))
    same = stage_value.density_coverage(real, real)
    far = stage_value.density_coverage(real, real + 100.0)
    collapsed = stage_value.density_coverage(real, np.repeat(real[:1], 50, axis=0))
    assert same["coverage"] == 1.0 and 0.9 < same["density"] < 1.5
    assert far["coverage"] == 0.0 and far["density"] == 0.0
    assert collapsed["coverage"] < 0.05  # one mode, however real, covers almost nothing


def test_the_filters_control_draws_as_many_per_class_at_random():
    labels = np.repeat([0, 1, 2], 10)
    selected = np.zeros(30, bool)
    selected[[0, 1, 10, 20, 21, 22]] = True
    chance = stage_value.random_selection(labels, selected, 0)
    assert [int(chance[labels == label].sum()) for label in range(3)] == [2, 1, 3]


def test_a_run_saved_before_these_choices_keeps_its_networks():
    old = config_module.RunConfig().to_dict()
    old.pop("generator_colour")
    old["cgan"].pop("refiner")
    old["filter"].pop("score")
    old["package_version"] = "0.0"
    restored = config_module.RunConfig.from_dict(old)
    assert (restored.generator_colour, restored.cgan.refiner, restored.filter.score) == ("rgb", "paper", "paper")
    fresh = config_module.RunConfig.from_dict(config_module.RunConfig().to_dict())
    assert (fresh.generator_colour, fresh.cgan.refiner, fresh.filter.score) == ("auto", "residual", "realism")
    tied_by_l1 = config_module.RunConfig().to_dict() | {"package_version": "0.9"}
    tied_by_l1["cgan"].pop("self_regularisation_norm")
    assert config_module.RunConfig.from_dict(tied_by_l1).cgan.self_regularisation_norm == "l1"
    assert fresh.cgan.self_regularisation_norm == "l2"
    plane_era = config_module.RunConfig().to_dict() | {"package_version": "0.9"}
    plane_era["dcgan"].pop("label_conditioning")
    assert config_module.RunConfig.from_dict(plane_era).dcgan.label_conditioning == "plane"
    assert fresh.dcgan.label_conditioning == "projection"
    keras.backend.clear_session()


@pytest.mark.parametrize("dataset, smoke_test, expected", [
    ("brain_tumor_mri", False, ("conditional_g1", "projection")),
    ("pneumonia_xray", True, ("conditional_g1", "projection")),
    ("demo", False, ("class_aware", "plane")),
    ("demo", True, ("class_aware", "plane")),
])
def test_datasets_of_hundreds_of_images_get_the_conditional_g1_and_the_demo_the_papers(dataset, smoke_test, expected):
    """The brain-slice measurements chose a class-conditional G1 with a projection D1; the demo's
    6 films per class were more varied with the paper's unconditional G1. Smoke runs test the
    G1 of the preset they shrink."""
    config = config_module.preset(dataset, smoke_test=smoke_test)
    assert (config.synthesis.conditioning, config.dcgan.label_conditioning) == expected


def test_the_realism_score_ranks_candidates_by_their_place_among_real_images_of_their_class():
    from mgm_tf.quality_filter import realism_scores

    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(0, 1, (50, 3)), rng.normal(10, 1, (50, 3))])
    real_labels = np.repeat([0, 1], 50)
    candidates = np.array([[0, 0, 0], [3, 3, 3], [10, 10, 10], [0.2, 0, 0]], float)
    labels = np.array([0, 0, 0, 1])  # inside class 0; at its edge; deep in class 1; class 0's centre, labelled 1
    realism = realism_scores(candidates, labels, real, real_labels)
    assert realism[0] > 1.0 > realism[1] > max(realism[2], realism[3]) and max(realism[2], realism[3]) < 0.2


def test_the_average_generator_follows_g_with_a_warm_up_and_is_what_is_sampled():
    generator = dcgan.build_dcgan_generator(base_filters=32)
    trainer = dcgan.DCGANTrainer(generator, dcgan.build_dcgan_discriminator(base_filters=8), seed=1,
                                 generator_average=0.9)
    trainer.compile(learning_rate=1e-3)
    start = [np.array(weight) for weight in generator.trainable_weights]
    assert trainer.sampling_generator is trainer.average_generator
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8)
    trainer.fit(images, batch_size=4, epochs=2, verbose=0, shuffle=False)  # 4 updates: decays 1/10, 2/11, 3/12, 4/13
    assert float(trainer.average_updates) == 4.0
    live = [np.array(weight) for weight in generator.trainable_weights]
    average = [np.array(weight) for weight in trainer.average_generator.weights if any(
        weight.path.endswith(name) for name in ("kernel", "bias", "gamma", "beta"))]
    assert len(average) == len(live)
    moved = [np.abs(a - s).mean() / max(np.abs(l - s).mean(), 1e-12) for a, s, l in zip(average, start, live)]
    assert 0.3 < np.median(moved) < 1.0  # between G's start and its weights now, nearer now (the warm-up)
    statistics = [(np.array(a), np.array(l)) for a, l in zip(trainer.average_generator.weights, generator.weights)
                  if not l.trainable]
    assert statistics and all(np.array_equal(a, l) for a, l in statistics)  # BatchNorm statistics copied
    with pytest.raises(ValueError, match="generator_average"):
        dcgan.DCGANTrainer(generator, dcgan.build_dcgan_discriminator(base_filters=8), generator_average=1.0)


def test_super_resolution_that_restores_detail_beats_bicubic_and_blur_is_judged_worse():
    """Real images: textured 256 px; 'bicubic': the same textures at 64 px upsampled (detail gone);
    an SR that restores the detail beats it in radial-spectrum features, one that blurs more loses."""
    import cv2

    rng = np.random.default_rng(0)

    def textured(count):
        base = rng.uniform(0, 255, (count, 32, 32)).astype(np.float32)
        coarse = np.stack([cv2.resize(image, (256, 256), interpolation=cv2.INTER_CUBIC) for image in base])
        return np.clip(coarse + rng.normal(0, 25, coarse.shape), 0, 255).astype(np.uint8)[..., None]

    def upsampled(images, size):
        return np.stack([cv2.resize(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA), (256, 256),
                                    interpolation=cv2.INTER_CUBIC) for image in images[..., 0]])[..., None]

    real, restored = textured(40), textured(40)
    bicubic = upsampled(restored, 64)
    spectra = stage_value.radial_spectra(np.concatenate([restored, bicubic]))
    assert spectra.shape == (80, 47) and spectra[:40, -10:].mean() > spectra[40:, -10:].mean() + 2
    better = stage_value.spectral_comparison(real, bicubic, restored)
    assert better["verdict"] == "better" and better["kid_change"]["high"] < 0
    worse = stage_value.spectral_comparison(real, bicubic, upsampled(restored, 16))
    assert worse["verdict"] == "worse"
    same = stage_value.spectral_comparison(real, bicubic, upsampled(textured(40), 64))
    assert same["verdict"] == "indistinguishable"


def test_a_baseline_beats_the_export_only_where_the_verdict_says_so():
    def row(kid, accuracy):
        return {"kid": {"mean": kid}, "two_sample": {"accuracy": accuracy}}

    def result(verdict):
        return {"rows": {"+ SR (export)": row(0.20, 0.95), "DCGAN alone": row(0.10, 0.90)},
                "stages": [{"stage": "+ SR (export)", "input": "DCGAN alone", "verdict": verdict}]}

    assert "**DCGAN alone beats the export**" in stage_value._baseline_lines(result("worse"), ["DCGAN alone"])[0]
    noise = stage_value._baseline_lines(result("indistinguishable"), ["DCGAN alone"])[0]
    assert "within the noise" in noise and "beats" not in noise
    behind = result("better")
    behind["rows"]["DCGAN alone"] = row(0.30, 0.99)
    assert stage_value._baseline_lines(behind, ["DCGAN alone"])[0] == "DCGAN alone does not beat the export."


def test_back_projection_keeps_the_selected_images_content_and_the_srgans_detail():
    """An 'SRGAN' that brightens by 30 grey levels and adds a fine pattern: back-projected, its
    output shrinks back to its 64 px input, and the pattern (no 64 px content) is still there."""
    import cv2

    from mgm_tf.srgan import back_project

    rng = np.random.default_rng(0)
    low = np.stack([cv2.GaussianBlur(image, (5, 5), 1.5) for image in
                    rng.integers(40, 200, (3, 64, 64, 1), dtype=np.uint8)])[..., None]
    upsampled = np.stack([cv2.resize(image, (256, 256), interpolation=cv2.INTER_CUBIC) for image in low])[..., None]
    detail = np.tile(np.array([[8, -8], [-8, 8]], np.float32), (128, 128))[None, :, :, None]  # zero in every 4×4 box
    high = np.clip(upsampled.astype(np.float32) + 30 + detail, 0, 255).astype(np.uint8)

    def shrunk(images):
        return np.stack([cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA) for image in images])[..., None]

    assert np.abs(shrunk(high).astype(float) - low).mean() > 25
    projected = back_project(high, low, rounds=3)
    assert projected.dtype == np.uint8 and projected.shape == high.shape
    assert np.abs(shrunk(projected).astype(float) - low).mean() < 1.0
    kept = (projected.astype(np.float32) - upsampled) * np.sign(detail)
    assert kept.mean() > 6  # the fine pattern survives
    assert np.array_equal(back_project(high, low, rounds=0), high)
    with pytest.raises(ValueError, match="back_projection"):
        back_project(high, low, rounds=-1)


def test_a_spectrally_normalised_discriminator_trains_with_unit_spectral_norms():
    discriminator = dcgan.build_dcgan_discriminator(base_filters=8, spectral_norm=True)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in discriminator.layers)
    trainer = dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32), discriminator, seed=1)
    trainer.compile(learning_rate=1e-3)
    spectral = [layer for layer in discriminator.layers if isinstance(layer, blocks.SpectralNormalised)]
    assert len(spectral) == 4  # three convs and the logit
    start = [np.array(layer.vector_u) for layer in spectral]
    images = np.random.default_rng(0).integers(0, 256, (16, 64, 64, 1), dtype=np.uint8)
    history = trainer.fit(images, batch_size=4, epochs=3, verbose=0, shuffle=False).history
    assert np.isfinite(history["d_loss"][-1])
    assert all(not np.allclose(before, np.array(layer.vector_u)) for before, layer in zip(start, spectral))
    for layer in spectral:  # σ of the kernel the layer uses: 1 up to the power iteration's estimate
        kernel = np.array(layer.normalised_kernel(False)).reshape(-1, layer.kernel.shape[-1])
        assert 0.8 < np.linalg.svd(kernel, compute_uv=False)[0] < 1.3
    plain = dcgan.build_dcgan_discriminator(base_filters=8)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)


def test_the_r1_estimate_matches_the_exact_input_gradient_norm_and_trains():
    """The finite-difference R1 term against ‖∇ₓD(x)‖² from an exact gradient (TensorFlow's tape
    where the backend is TensorFlow; JAX's grad on JAX), on a D without BatchNorm (whose batch
    statistics would make the two passes differ by more than the step). Seeded: the estimate
    averages random directions, and 100 of them put its mean within a few per cent."""
    keras.utils.set_random_seed(0)
    image = keras.Input((64, 64, 3))
    hidden = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(8, 4, strides=4)(image))
    critic = keras.Model(image, keras.layers.Dense(1)(keras.layers.Flatten()(hidden)))
    trainer = dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32), critic, seed=2, r1=1.0)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 64, 64, 3)).astype(np.float32)

    def total(inputs):
        return keras.ops.sum(critic(inputs))

    if keras.backend.backend() == "jax":
        import jax

        exact = np.asarray(jax.grad(total)(images))
    else:
        import tensorflow as tf

        tensor = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = total(tensor)
        exact = tape.gradient(value, tensor).numpy()
    exact_norm = float((exact ** 2).sum(axis=(1, 2, 3)).mean())
    estimates = [float(trainer.gradient_norm_estimate(images, critic(images))) for _ in range(100)]
    assert exact_norm > 0 and np.mean(estimates) == pytest.approx(exact_norm, rel=0.15)
    trainer = dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32),
                                 dcgan.build_dcgan_discriminator(base_filters=8), seed=2, r1=1.0)
    trainer.compile(learning_rate=1e-3)
    history = trainer.fit(np.random.default_rng(1).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8),
                          batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][-1])
    with pytest.raises(ValueError, match="r1"):
        dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32), critic, r1=-1.0)


def test_g1_mode_coverage_flags_a_collapsed_g1_and_passes_one_that_matches_the_training_shares():
    from mgm_tf.evaluation import modes

    train = np.repeat([0, 1, 2], [88, 115, 49])
    collapsed = modes.share_gap(np.repeat([0, 1, 2], [830, 120, 50]), train, 3)
    assert collapsed["largest_gap"] == pytest.approx(0.83 - 88 / 252, abs=1e-6) and not collapsed["within"]
    assert collapsed["low"] <= collapsed["largest_gap"] <= collapsed["high"] and collapsed["low"] > 0.4
    matched = modes.share_gap(modes.class_mix(train, 3, 1000), train, 3)
    assert matched["largest_gap"] < 0.002 and matched["within"]
    assert "**not within** 10%" in modes.mode_lines({**collapsed, "referee_on_real": [0.4, 0.4, 0.2]})[0]
    assert np.bincount(modes.class_mix(train, 3, 7)).tolist() == [3, 3, 1]  # largest remainders: 2.44, 3.19, 1.36
