"""FID/KID, precision/recall, memorisation, PSNR/SSIM and classification metrics on cases
whose answers are known."""

import numpy as np
import pytest
import tensorflow as tf

from mgm_tf import srgan
from mgm_tf.evaluation import metrics


def _gaussian(mean, std, count=40_000, seed=0):
    return np.random.default_rng(seed).normal(mean, std, (count, len(mean)))


def test_fid_of_a_set_with_itself_is_zero():
    features = _gaussian([0.0, 1.0, 2.0], [1.0, 2.0, 0.5], 500)
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_fid_matches_closed_form_for_gaussians():
    """Diagonal covariances: FID = ‖μa − μb‖² + Σ (σa − σb)²."""
    mean_a, std_a = np.array([0.0, 1.0, -1.0, 0.5]), np.array([1.0, 2.0, 0.5, 1.5])
    mean_b, std_b = np.array([1.0, 1.0, 0.0, 0.5]), np.array([2.0, 1.0, 0.5, 1.0])
    expected = ((mean_a - mean_b) ** 2).sum() + ((std_a - std_b) ** 2).sum()
    measured = metrics.frechet_distance(_gaussian(mean_a, std_a, seed=1), _gaussian(mean_b, std_b, seed=2))
    assert measured == pytest.approx(expected, rel=0.03)


def test_fid_trace_term_matches_general_eigenvalue_route():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = np.sqrt(np.clip(np.linalg.eigvals(sigma_a @ sigma_b).real, 0, None)).sum()
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * reference
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_kid_near_zero_for_one_distribution_and_positive_when_shifted():
    same = metrics.kernel_inception_distance(_gaussian([0] * 8, [1] * 8, 400, 4), _gaussian([0] * 8, [1] * 8, 400, 5),
                                             num_subsets=50, subset_size=200)
    assert abs(same["mean"]) < 3 * same["std"] + 1e-3
    shifted = metrics.kernel_inception_distance(_gaussian([0] * 8, [1] * 8, 400, 4), _gaussian([1] * 8, [1] * 8, 400, 5),
                                                num_subsets=50, subset_size=200)
    assert shifted["mean"] > 10 * max(shifted["std"], same["std"]) and shifted["mean"] > 0.1


def test_precision_recall_identical_and_collapsed():
    real = _gaussian([0] * 5, [1] * 5, 300, 6)
    assert metrics.precision_recall(real, real.copy()) == {"precision": 1.0, "recall": 1.0, "k": 3}
    collapsed = np.repeat(real[:1], 300, axis=0) + 1e-3 * _gaussian([0] * 5, [1] * 5, 300, 7)
    result = metrics.precision_recall(real, collapsed)
    assert result["precision"] > 0.9 and result["recall"] < 0.05


def test_memorisation_flags_copies_not_distinct_images():
    rng = np.random.default_rng(8)
    train, held_out = rng.normal(size=(200, 64)), rng.normal(size=(100, 64))
    exact, noisy, distinct = train[:10], train[10:20] + 0.05 * rng.normal(size=(10, 64)), rng.normal(size=(30, 64))
    result = metrics.memorisation(train, np.concatenate([exact, noisy, distinct]), held_out)
    assert sorted(result["flagged"]) == list(range(20))
    assert result["flagged_fraction"] == pytest.approx(20 / 50)
    assert result["nearest_train"][:20] == list(range(20))
    clean = metrics.memorisation(train, distinct, held_out)
    assert clean["flagged"] == [] and 0.8 < clean["median_ratio"] < 1.2


def test_psnr_ssim_agree_with_definitions_and_tf_image():
    rng = np.random.default_rng(9)
    reference = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    noisy = np.clip(reference.astype(int) + rng.integers(-10, 11, reference.shape), 0, 255).astype(np.uint8)
    psnr, ssim = srgan.psnr_ssim(reference, noisy)
    mse = ((reference.astype(float) - noisy) ** 2).reshape(2, -1).mean(axis=1)
    assert np.allclose(psnr, 10 * np.log10(255.0 ** 2 / mse), atol=1e-3)
    assert np.allclose(ssim, tf.image.ssim(tf.constant(reference), tf.constant(noisy), 255).numpy(), atol=1e-5)
    assert np.allclose(srgan.psnr_ssim(reference, reference)[1], 1.0)


def test_super_resolution_report_has_bicubic_row(demo_prepared):
    from mgm_tf import srgan

    generator = srgan.build_srgan_generator(num_residual_blocks=1, filters=8)  # untrained: exactly bicubic
    result = srgan.super_resolution_quality(generator, demo_prepared, "test")
    assert set(result) >= {"bicubic", "srgan", "num_images", "split"}
    assert result["num_images"] == (demo_prepared.splits == "test").sum()
    assert result["srgan"]["psnr"]["mean"] == pytest.approx(result["bicubic"]["psnr"]["mean"], abs=0.05)


def test_classification_metrics_known_values():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.1
    result = metrics.classification_metrics(labels, probabilities)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def _denman_beavers_sqrt(matrix, iterations=60):
    """An independent matrix square root (Denman–Beavers iteration, no eigen-decomposition)."""
    y, z = matrix.copy(), np.eye(len(matrix))
    for _ in range(iterations):
        y, z = 0.5 * (y + np.linalg.inv(z)), 0.5 * (z + np.linalg.inv(y))
    return y


def test_fid_against_an_independent_matrix_square_root():
    rng = np.random.default_rng(11)
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 1.0
    b = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _denman_beavers_sqrt(sigma_a @ sigma_b)
    np.testing.assert_allclose(root @ root, sigma_a @ sigma_b, rtol=1e-6, atol=1e-8)
    assert np.all(np.linalg.eigvals(root).real > 0)  # a genuine PSD-like root: nothing to clip
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(root)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_kid_against_an_explicit_mmd_loop():
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(30, 4)), rng.normal(0.5, 1.0, size=(30, 4))
    kernel = lambda x, y: (x @ y / 4 + 1) ** 3  # noqa: E731
    m = len(a)
    within = sum(kernel(a[i], a[j]) + kernel(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(kernel(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    result = metrics.kernel_inception_distance(a, b, num_subsets=3, subset_size=m)  # every subset is the whole set
    assert result["mean"] == pytest.approx(within - 2 * across, rel=1e-10) and result["std"] == pytest.approx(0, abs=1e-12)


def test_precision_recall_on_hand_computed_one_dimensional_sets():
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    fake = np.array([[0.5], [1.5], [9.0], [20.0]])
    # k=1 radii: real 1, 1, 1, 8; fake 1, 1, 7.5, 11. Fakes inside a real ball: 0.5, 1.5, 9 (→ 10 has radius 8).
    # Reals inside a fake ball: 0 (0.5±1), 1, 2 (1.5±1), 10 (9±7.5, 20±11).
    assert metrics.precision_recall(real, fake, k=1) == {"precision": 0.75, "recall": 1.0, "k": 1}
    far = np.array([[100.0], [101.0], [102.0], [103.0]])
    assert metrics.precision_recall(real, far, k=1) == {"precision": 0.0, "recall": 0.0, "k": 1}


def test_precision_recall_uses_equal_sample_sizes():
    real, fake = _gaussian([0] * 3, [1] * 3, 200, 13), _gaussian([0] * 3, [1] * 3, 20, 14)
    result = metrics.balanced_precision_recall(real, fake, k=3, repeats=4)
    assert result["sample_size"] == 20 and result["repeats"] == 4
    unequal = metrics.precision_recall(real, fake, k=3)["recall"]  # 20 fakes with wide balls over 200 reals
    assert result["recall"]["mean"] < unequal
    assert 0 <= result["precision"]["std"] and 0 <= result["recall"]["std"]


def test_copies_of_one_image_have_no_recall_and_no_diversity(demo_prepared):
    from mgm_tf.evaluation.measure import quality_metrics

    train, test = demo_prepared.indices("train"), demo_prepared.indices("test")
    real, held_out = demo_prepared.images_gan[train], demo_prepared.images_gan[test]
    copies = np.repeat(real[:1], 40, axis=0)
    assert quality_metrics(None, real, held_out, copies, "pixels")["recall"]["mean"] == pytest.approx(0.0, abs=0.1)
    collapsed = metrics.diversity(copies)
    assert collapsed["pairwise_ssim"] == pytest.approx(1.0, abs=1e-4) and collapsed["pixel_diversity"] < 1e-3
    varied = metrics.diversity(real)
    assert varied["pairwise_ssim"] < 0.5 and varied["pixel_diversity"] > 0.5


def test_feature_trust_refuses_few_images_and_collapsed_features():
    spread = _gaussian([0] * 8, [1] * 8, 50, 15) + 5
    assert metrics.feature_trust(spread, 500)["trusted"]
    few = metrics.feature_trust(spread, 12)
    assert not few["trusted"] and "12 real images" in few["reasons"][0]
    collapsed = metrics.feature_trust(5 + 1e-4 * _gaussian([0] * 8, [1] * 8, 50, 16), 500)
    assert not collapsed["trusted"] and "collapse" in collapsed["reasons"][0]


def test_inception_inputs_are_resized_bilinearly_not_blockwise():
    from mgm_tf.evaluation.features import to_unit_range

    board = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)[None, :, :, None]
    resized = to_unit_range(board, 299)
    expected = tf.image.resize(board.astype(np.float32) / 255.0, (299, 299), method="bilinear", antialias=True)
    np.testing.assert_allclose(resized[..., :1], expected.numpy(), atol=1e-6)
    assert len(np.unique(np.round(resized[0, :, 150, 0], 3))) > 10  # blocks would give two values


def test_super_resolution_refuses_the_training_split(demo_prepared):
    from mgm_tf import srgan

    generator = srgan.build_srgan_generator(num_residual_blocks=1, filters=8)
    with pytest.raises(ValueError, match="held-out images only"):
        srgan.super_resolution_quality(generator, demo_prepared, "train")


def test_domain_features_are_unit_scaled_for_kid():
    from mgm_tf.evaluation.measure import unit_scaled

    real, fake = 40.0 * _gaussian([0] * 6, [1] * 6, 200, 17), 40.0 * _gaussian([0.5] * 6, [1] * 6, 200, 18)
    scaled_real, scaled_fake = unit_scaled(real, fake)
    assert np.sqrt(np.mean(scaled_real ** 2)) == pytest.approx(1.0)
    np.testing.assert_allclose(scaled_fake, fake / np.sqrt(np.mean(real ** 2)), rtol=1e-12)  # one factor for both
    raw = metrics.kernel_inception_distance(real, fake, num_subsets=5, subset_size=100)["mean"]
    unit = metrics.kernel_inception_distance(scaled_real, scaled_fake, num_subsets=5, subset_size=100)["mean"]
    assert unit > 0 and raw > 1000 * unit  # the cubic kernel at scale 40 blows KID up by orders of magnitude
    assert metrics.precision_recall(real, fake) == metrics.precision_recall(scaled_real, scaled_fake)


def test_ssim_and_psnr_without_tensorflow_equal_tf_image():
    """`imaging.structural_similarity`/`peak_signal_to_noise` (OpenCV, what runs on JAX) compute
    what `tf.image.ssim`/`tf.image.psnr` did, on grey and colour images of other sizes."""
    from mgm_tf.imaging import peak_signal_to_noise, structural_similarity

    rng = np.random.default_rng(0)
    for shape in ((3, 64, 64, 3), (2, 40, 48, 1)):
        reference = rng.integers(0, 256, shape).astype(np.uint8)
        candidate = np.clip(reference.astype(int) + rng.integers(-40, 40, shape), 0, 255).astype(np.uint8)
        ours = structural_similarity(reference, candidate)
        theirs = tf.image.ssim(tf.constant(reference, tf.float32), tf.constant(candidate, tf.float32), 255.0).numpy()
        assert np.allclose(ours, theirs, atol=1e-6) and 0.5 < ours.min() < 0.99
        psnr = tf.image.psnr(tf.constant(reference, tf.float32), tf.constant(candidate, tf.float32), 255.0).numpy()
        assert np.allclose(peak_signal_to_noise(reference, candidate), psnr, atol=1e-4)
    assert structural_similarity(reference, reference) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one shape"):
        structural_similarity(reference, reference[:, :20])


def test_compare_shows_a_dash_for_rows_not_run_and_for_untrusted_features(tmp_path):
    """A baseline that never ran has no time or parameter count (not 0), and a run whose domain
    features cannot judge variety shows no KID, P or R; trusted runs keep theirs."""
    import json

    from mgm_tf.evaluation.compare import compare_runs, comparison_markdown

    def write(name, trusted):
        rows = {"MixGANMed": {"status": "measured", "stages": ["dcgan"], "train_seconds": 12.5, "trainable_parameters": 1000,
                              "domain": {"kid": {"mean": 0.25}, "precision": {"mean": 0.5}, "recall": {"mean": 0.75}}},
                "CycleGAN": {"status": "not run", "stages": [], "train_seconds": 0.0, "trainable_parameters": 0}}
        metrics = {"dataset": "demo", "rows": rows, "extractors": {"domain": "cnn"},
                   "feature_trust": {"cnn": {"trusted": trusted}}}
        (tmp_path / name / "report").mkdir(parents=True)
        (tmp_path / name / "report" / "metrics.json").write_text(json.dumps(metrics))
        return tmp_path / name

    table = compare_runs([write("trusted", True), write("untrusted", False)])
    by = {(row["run"].split("/")[-1], row["method"]): row for row in table}
    assert by["trusted", "MixGANMed"]["kid"] == 0.25 and by["trusted", "MixGANMed"]["train_seconds"] == 12.5
    assert by["trusted", "CycleGAN"]["train_seconds"] is None and by["trusted", "CycleGAN"]["trainable_parameters"] is None
    assert by["untrusted", "MixGANMed"]["kid"] is None and by["untrusted", "MixGANMed"]["precision"] is None
    text = comparison_markdown(table)
    cyclegan_line = next(line for line in text.splitlines() if "CycleGAN" in line)
    assert "0.000" not in cyclegan_line and "| 0 |" not in cyclegan_line
    assert "cannot judge variety" in text
