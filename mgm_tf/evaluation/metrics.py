"""Metrics on images and features: PSNR/SSIM, FID/KID, precision/recall, memorisation, diversity,
and classifier metrics. Plain functions of arrays: what is measured on which images is
`measure`'s and `evaluate`'s business."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mgm_tf.imaging import structural_similarity, to_grey
from mgm_tf.kid import kernel_inception_distance  # noqa: F401  (one KID, shared with training-time monitoring)


def _sqrt_trace_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr(sqrt(Σa Σb)) via symmetric eigen-decompositions: with A = Σa^½, Σa Σb is similar to
    A Σb A, which is symmetric PSD, so its eigenvalues are real and ≥ 0 (up to rounding)."""
    values, vectors = np.linalg.eigh(sigma_a)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root @ sigma_b @ root)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def summary(values: np.ndarray) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID formula ‖μa − μb‖² + tr Σa + tr Σb − 2 tr(√(Σa Σb)) on two feature sets (N × D)."""
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError(f"Fréchet distance needs at least 2 samples per set, got {len(features_a)} and {len(features_b)}")
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    sigma_a, sigma_b = np.atleast_2d(np.cov(features_a, rowvar=False)), np.atleast_2d(np.cov(features_b, rowvar=False))
    value = float(((mean_a - mean_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b)
                  - 2.0 * _sqrt_trace_product(sigma_a, sigma_b))
    return max(value, 0.0)


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distances (len(a) × len(b)), computed in chunks of rows."""
    b_norms = (b ** 2).sum(axis=1)
    rows = []
    for start in range(0, len(a), chunk):
        block = a[start:start + chunk]
        squared = (block ** 2).sum(axis=1)[:, None] + b_norms[None, :] - 2.0 * block @ b.T
        rows.append(np.sqrt(np.clip(squared, 0, None)))
    return np.concatenate(rows) if rows else np.zeros((0, len(b)))


def _kth_neighbour_radii(features: np.ndarray, k: int) -> np.ndarray:
    distances = pairwise_distances(features, features)
    return np.sort(distances, axis=1)[:, min(k, len(features) - 1)]  # column 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Improved precision/recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
    balls reaching every sample's k-th nearest neighbour. Precision = fraction of fakes inside
    the real manifold (fidelity); recall = fraction of reals inside the fake manifold
    (diversity; a collapsed generator has recall near 0)."""
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set "
                         f"(got {len(real)} real, {len(fake)} synthetic)")
    real_radii, fake_radii = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
    fake_to_real = pairwise_distances(fake, real)
    precision = float((fake_to_real <= real_radii[None, :]).any(axis=1).mean())
    recall = float((fake_to_real.T <= fake_radii[None, :]).any(axis=1).mean())
    return {"precision": precision, "recall": recall, "k": k}


def balanced_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, repeats: int = 5, seed: int = 0) -> dict:
    """Precision/recall with equal real and synthetic sample sizes: the larger set is subsampled
    to the smaller one's size, `repeats` times, and mean ± std are returned. With unequal sizes
    the k-NN radii of the larger set shrink and the smaller set's grow, which inflates recall
    (few fakes with wide balls cover many reals) or precision."""
    size = min(len(real), len(fake))
    k = max(1, min(k, size - 1))
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(repeats if len(real) != len(fake) else 1):
        real_sample = real[np.sort(rng.choice(len(real), size, replace=False))]
        fake_sample = fake[np.sort(rng.choice(len(fake), size, replace=False))]
        runs.append(precision_recall(real_sample, fake_sample, k))
    return {"precision": summary(np.array([r["precision"] for r in runs])),
            "recall": summary(np.array([r["recall"] for r in runs])), "k": k, "sample_size": size,
            "repeats": len(runs)}


def feature_trust(real_features: np.ndarray, num_training_images: int | None = None, min_images: int = 100,
                  min_spread: float = 0.05) -> dict:
    """Whether a feature space can judge variety at all. A domain CNN trained on few images, or
    one that maps every real image to nearly one point (median real-vs-real distance below
    `min_spread` × the median feature norm), cannot tell copies from variety; its numbers are
    then reported as not judged rather than printed as if they meant something."""
    reasons = []
    if num_training_images is not None and num_training_images < min_images:
        reasons.append(f"trained on {num_training_images} real images (< {min_images})")
    distances = pairwise_distances(real_features, real_features)
    off_diagonal = distances[~np.eye(len(distances), dtype=bool)]
    norm = float(np.median(np.linalg.norm(real_features, axis=1))) if len(real_features) else 0.0
    spread = float(np.median(off_diagonal) / max(norm, 1e-12)) if len(off_diagonal) else 0.0
    if spread < min_spread:
        reasons.append(f"real-vs-real feature distances collapse (median {spread:.3f} of the feature norm)")
    return {"trusted": not reasons, "reasons": reasons, "spread": spread}


def memorisation(train: np.ndarray, synthetic: np.ndarray, held_out: np.ndarray, quantile: float = 0.05,
                 margin: float = 0.5) -> dict:
    """Copies of training images among the synthetic ones.

    For each synthetic image, the distance to its nearest training image; the same for each
    held-out real image (a new patient: how close an honest, unseen image comes). A synthetic
    image is flagged when it is closer than margin × the `quantile` of the held-out distances.
    Returns the flagged fraction, the indices (with their nearest training image) and the
    ratio of median distances (≪ 1 means synthetic images hug the training set)."""
    if len(held_out) == 0:
        raise ValueError("memorisation needs held-out real images for the real-vs-real reference distance")
    synthetic_distances = pairwise_distances(synthetic, train)
    nearest = synthetic_distances.argmin(axis=1)
    synthetic_nearest = synthetic_distances.min(axis=1)
    held_out_nearest = pairwise_distances(held_out, train).min(axis=1)
    threshold = margin * float(np.quantile(held_out_nearest, quantile))
    flagged = np.flatnonzero(synthetic_nearest < threshold)
    return {"threshold": threshold, "flagged_fraction": float(len(flagged) / max(1, len(synthetic))),
            "flagged": flagged.tolist(), "nearest_train": nearest.tolist(),
            "synthetic_nearest": synthetic_nearest.tolist(), "held_out_nearest": held_out_nearest.tolist(),
            "median_ratio": float(np.median(synthetic_nearest) / max(np.median(held_out_nearest), 1e-12))}


def _grey64(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 1|3) → float32 (N, 64, 64) grey in [0, 255] (luminance, antialiased resize)."""
    grey = to_grey(images).astype(np.float32)
    if grey.shape[1] != 64 or grey.shape[2] != 64:
        grey = ops.convert_to_numpy(ops.image.resize(grey, (64, 64), interpolation="bilinear", antialias=True))
    return grey[..., 0]


def _pair_indices(count: int, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.triu_indices(count, k=1)
    if len(first) > max_pairs:
        chosen = np.random.default_rng(seed).choice(len(first), max_pairs, replace=False)
        first, second = first[chosen], second[chosen]
    return first, second


def pairwise_ssim(images: np.ndarray, max_pairs: int = 2000, seed: int = 0) -> float:
    """Mean SSIM over pairs of distinct images (64 px grey). High means the set repeats itself:
    forty copies of one image give 1.0; the 16 demo X-rays give about 0.2."""
    if len(images) < 2:
        raise ValueError(f"pairwise SSIM needs at least 2 images, got {len(images)}")
    grey = _grey64(images)[..., None]
    first, second = _pair_indices(len(grey), max_pairs, seed)
    return float(np.mean(structural_similarity(grey[first], grey[second])))


def normalised_pixel_diversity(images: np.ndarray, max_pairs: int = 2000, seed: int = 0) -> float:
    """Mean pairwise RMS distance of intensity-normalised images (64 px grey, each image to zero
    mean and unit variance): brightness and contrast changes do not count as variety, different
    content does. 0 for copies of one image, √2 for uncorrelated images."""
    if len(images) < 2:
        raise ValueError(f"pixel diversity needs at least 2 images, got {len(images)}")
    grey = _grey64(images).reshape(len(images), -1).astype(np.float64)
    grey = (grey - grey.mean(axis=1, keepdims=True)) / np.maximum(grey.std(axis=1, keepdims=True), 1e-6)
    first, second = _pair_indices(len(grey), max_pairs, seed)
    return float(np.sqrt(((grey[first] - grey[second]) ** 2).mean(axis=1)).mean())


def diversity(images: np.ndarray) -> dict:
    """The two diversity measures the report shows for every set of images."""
    return {"pairwise_ssim": pairwise_ssim(images), "pixel_diversity": normalised_pixel_diversity(images)}


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve by `keras.metrics.AUC` with a threshold at every distinct score,
    which makes its trapezoid rule exact (equal to the Mann–Whitney statistic with ties
    averaged); with its default 200 fixed thresholds it is an approximation. NaN when one of
    the two groups is empty (Keras would report 0)."""
    scores, positives = np.asarray(scores, np.float32), np.asarray(positives).astype(bool)
    if positives.all() or not positives.any():
        return float("nan")
    auc = keras.metrics.AUC(thresholds=np.unique(scores).tolist())
    auc.update_state(positives.astype(np.float32), scores)
    return float(auc.result())


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """accuracy, balanced accuracy, macro-F1 (`keras.metrics.F1Score`) and macro one-vs-rest AUC.
    Classes absent from the test labels are left out of the averages: F1 is computed on the
    present classes' columns of the one-hot argmax, so a prediction of an absent class still
    counts as a miss."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    present = np.unique(labels)
    recalls = [float((predicted[labels == label] == label).mean()) for label in present]
    columns = np.searchsorted(present, labels)
    predicted_onehot = (predicted[:, None] == present[None, :]).astype(np.float32)
    f1 = keras.metrics.F1Score(average="macro", threshold=0.5)
    f1.update_state(np.eye(len(present), dtype=np.float32)[columns], predicted_onehot)
    aucs = [roc_auc(probabilities[:, label], labels == label) for label in present]
    return {"accuracy": float((predicted == labels).mean()), "balanced_accuracy": float(np.mean(recalls)),
            "macro_f1": float(f1.result()), "auc_ovr": float(np.nanmean(aucs)) if len(present) > 1 else float("nan")}
