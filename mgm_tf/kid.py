"""Kernel inception distance, in one place for the two that need it: the training-time monitor
(`callbacks.KIDMonitor`, a stage's machinery) and the evaluation (`mgm_tf.evaluation`), which
sits above every stage and so cannot be imported by one."""

from __future__ import annotations

import numpy as np


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> dict:
    """KID (Bińkowski et al. 2018): unbiased MMD² with the cubic kernel (x·y/d + 1)³, mean ± std
    over random subsets. Unbiased, so it is trustworthy at small sample sizes (unlike FID)."""
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(features_a)} and {len(features_b)}")
    rng = np.random.default_rng(seed)
    dimension = features_a.shape[1]
    values = []
    for _ in range(num_subsets):
        a = features_a[rng.choice(len(features_a), size, replace=False)]
        b = features_b[rng.choice(len(features_b), size, replace=False)]
        k_aa, k_bb = (a @ a.T / dimension + 1) ** 3, (b @ b.T / dimension + 1) ** 3
        k_ab = (a @ b.T / dimension + 1) ** 3
        off_diagonal = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (size * (size - 1))
        values.append(off_diagonal - 2.0 * k_ab.mean())
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "subset_size": size,
            "num_subsets": num_subsets}


def unit_scaled(real: np.ndarray, *others: np.ndarray) -> tuple:
    """Domain-CNN features divided by the real features' RMS per dimension. KID's cubic kernel
    (x·y/d + 1)³ assumes features of unit scale, as InceptionV3's roughly are; a domain CNN's
    scale is arbitrary (its pooled BatchNorm-ReLU features gave KID×100 in the hundreds of
    thousands on the two-class fixture), which made its KID incomparable between runs.
    Precision/recall and memorisation ratios do not change; FID scales by the same factor²."""
    scale = float(np.sqrt(np.mean(real ** 2))) or 1.0
    return (real / scale, *(other / scale for other in others))
