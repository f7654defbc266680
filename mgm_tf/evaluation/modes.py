"""Does G1 cover the classes as the training data has them? An unconditional G1 that collapses
onto one mode (the brain slices' first failure: 83 % of its samples in one of three classes)
still scores a plausible KID on the images it does make; the referee's class shares of many
fresh samples show it. Part of the stage table (`stage_value`)."""

from __future__ import annotations

import numpy as np

from mgm_tf import classifier

MODE_SAMPLES = 1000  # fresh G1 samples whose class shares are compared with the training data's
MODE_TOLERANCE = 0.10  # largest gap between G1's class shares and the training data's that counts as covered
BOOTSTRAPS = 1000


def shares_text(shares) -> str:
    return " / ".join(f"{value:.0%}" for value in shares)


def class_mix(train_labels: np.ndarray, num_classes: int, count: int) -> np.ndarray:
    """`count` labels in the training data's class proportions (largest remainders), classes
    interleaved: what an unconditional G1 that covered every mode would be measured against."""
    shares = np.bincount(train_labels, minlength=num_classes) / len(train_labels) * count
    counts = np.floor(shares).astype(int)
    counts[np.argsort(counts - shares)[:count - counts.sum()]] += 1
    position = np.concatenate([(np.arange(n) + 0.5) / n for n in counts])  # spread each class over the list
    return np.repeat(np.arange(num_classes), counts)[np.argsort(position, kind="stable")].astype(np.int32)


def g1_samples(run, prepared, count: int, seed_offset: int = 7):
    """G1's own samples for fresh seeds, as `evaluate` draws them: G(z), or for a class-conditional
    G1, G(z, y) with y in the training data's class proportions. Returns (images, labels or None)."""
    from mgm_tf.dcgan import load_dcgan_generator, unconditional_samples
    from mgm_tf.sampling import image_seed

    seeds = np.array([image_seed(run.config.seed + seed_offset, 0, index) for index in range(count)], np.uint64)
    generator = load_dcgan_generator(run, prepared.num_classes)
    labels = None
    if len(generator.inputs) > 1:  # a class-conditional G1 alone draws its classes as the training data has them
        labels = class_mix(prepared.labels[prepared.indices("train")], prepared.num_classes, count)
    return unconditional_samples(generator, seeds, run.config.dcgan.latent_dim, labels=labels, label=""), labels


def mode_coverage(run, prepared, space: dict, count: int = MODE_SAMPLES, seed: int = 0) -> dict:
    """Does G1 cover the classes as the training data has them? The referee's class calls on
    `count` fresh G1 samples against the training images' class shares (`share_gap`). The
    referee's own shares on the held-out real images are beside them: how far the instrument
    alone moves shares (its errors on real images)."""
    images, _ = g1_samples(run, prepared, count, seed_offset=11)
    calls = classifier.classify(space["referee"], images, space["channels"]).argmax(axis=1)
    test = prepared.indices("test")
    real_calls = classifier.classify(space["referee"], prepared.images_gan[test], space["channels"]).argmax(axis=1)
    classes = space["num_classes"]
    return {**share_gap(calls, prepared.labels[prepared.indices("train")], classes, seed),
            "referee_on_real": (np.bincount(real_calls, minlength=classes) / len(real_calls)).tolist()}


def share_gap(calls: np.ndarray, train_labels: np.ndarray, num_classes: int, seed: int = 0) -> dict:
    """The class shares of `calls` against those of `train_labels`: the largest gap, with a
    bootstrap 95 % interval over the calls, and whether it is within MODE_TOLERANCE."""
    target = np.bincount(train_labels, minlength=num_classes) / len(train_labels)
    shares = np.bincount(calls, minlength=num_classes) / len(calls)
    rng = np.random.default_rng(seed)
    gaps = [np.abs(np.bincount(rng.choice(calls, len(calls)), minlength=num_classes) / len(calls) - target).max()
            for _ in range(BOOTSTRAPS)]
    gap = float(np.abs(shares - target).max())
    return {"n": int(len(calls)), "shares": shares.tolist(), "training_shares": target.tolist(), "largest_gap": gap,
            "low": float(np.percentile(gaps, 2.5)), "high": float(np.percentile(gaps, 97.5)),
            "within": gap <= MODE_TOLERANCE}


def mode_lines(modes: dict | None) -> list[str]:
    """G1's class shares against the training data's, and the target they are held to."""
    if not modes:
        return []
    mark = "within" if modes["within"] else "**not within**"
    return [f"G1's classes: the referee's shares of {modes['n']} fresh G1 samples {shares_text(modes['shares'])} against "
            f"the training images' {shares_text(modes['training_shares'])}: largest gap {modes['largest_gap']:.0%} "
            f"[{modes['low']:.0%}, {modes['high']:.0%}], {mark} {MODE_TOLERANCE:.0%}. (The referee on the held-out "
            f"real images: {shares_text(modes['referee_on_real'])}.)", ""]
