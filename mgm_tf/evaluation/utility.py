"""Downstream utility: does synthetic data help a classifier on real, held-out patients?

One classifier architecture, deliberately not the judge's (`classifier.build_classifier` with
`UTILITY_WIDTH` filters and `UTILITY_BLOCKS` blocks instead of 32 and 3), with seeds of its own
(`UTILITY_SEED_OFFSET` + i), is trained on
  (a) real training data, (b) synthetic only (train on synthetic, test on real),
  (c) real + synthetic, (d) a reduced real set (the small-data case) + synthetic,
and tested on the held-out real split: accuracy, balanced accuracy, macro-F1, one-vs-rest AUC,
mean ± std over seeds.
"""

from __future__ import annotations

import numpy as np

from mgm_tf import classifier
from mgm_tf.evaluation.metrics import classification_metrics


# Not the judge's network nor its seeds: a classifier that only re-learned the judge (which chose
# the synthetic images) would flatter them.
UTILITY_WIDTH, UTILITY_BLOCKS, UTILITY_SEED_OFFSET = 24, 4, 1000


def reduced_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a per-class random `fraction` of the real training set (at least 1 per class)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.extend(rng.choice(members, max(1, int(round(fraction * len(members)))), replace=False).tolist())
    return np.sort(np.array(chosen, int))


def _fit_and_test(images, labels, test_images, test_labels, num_classes, seed, epochs) -> dict:
    model = classifier.train_classifier(images, labels, num_classes, epochs=epochs, seed=UTILITY_SEED_OFFSET + seed,
                                   width=UTILITY_WIDTH, blocks=UTILITY_BLOCKS)
    probabilities = classifier.classify(model, test_images, test_images.shape[-1])
    return classification_metrics(test_labels, probabilities)


def _summarise(runs: list[dict], n_train: int, n_test: int) -> dict:
    return {"n_train": n_train, "n_test": n_test, "seeds": len(runs),
            **{metric: {"mean": float(np.nanmean([run[metric] for run in runs])),
                        "std": float(np.nanstd([run[metric] for run in runs]))} for metric in runs[0]}}


def utility_experiments(real_train, real_train_labels, real_test, real_test_labels, synthetic_sets: dict,
                        num_classes: int, seeds=(0, 1, 2), epochs: int = 20, reduced_fraction: float = 0.25) -> dict:
    """{"real": …, "realNN%": …, "<method>": {"synthetic_only", "real+synthetic", "realNN%+synthetic"}}
    with metric means ± std over seeds. synthetic_sets maps a method name to (images, labels)."""
    import keras

    reduced_name = f"real{int(round(reduced_fraction * 100))}%"
    runs: dict = {}
    print(f"downstream utility: {len(seeds) * (2 + 3 * len(synthetic_sets))} classifier trainings", flush=True)
    bar = keras.utils.Progbar(len(seeds) * (2 + 3 * len(synthetic_sets)), unit_name="classifier")

    def record(key, images, labels, seed):
        if len(images):
            result = _fit_and_test(images, labels, real_test, real_test_labels, num_classes, seed, epochs)
            runs.setdefault(key, ([], len(images)))[0].append(result)
        bar.add(1)

    for seed in seeds:
        reduced = reduced_subset(real_train_labels, reduced_fraction, seed)
        record(("real",), real_train, real_train_labels, seed)
        record((reduced_name,), real_train[reduced], real_train_labels[reduced], seed)
        for method, (images, labels) in synthetic_sets.items():
            record((method, "synthetic_only"), images, labels, seed)
            record((method, "real+synthetic"), np.concatenate([real_train, images]),
                   np.concatenate([real_train_labels, labels]), seed)
            record((method, f"{reduced_name}+synthetic"), np.concatenate([real_train[reduced], images]),
                   np.concatenate([real_train_labels[reduced], labels]), seed)
    summary: dict = {}
    for key, (results, n_train) in runs.items():
        entry = _summarise(results, n_train, int(len(real_test_labels)))
        if len(key) == 1:
            summary[key[0]] = entry
        else:
            summary.setdefault(key[0], {})[key[1]] = entry
    return summary
