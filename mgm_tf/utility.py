"""Downstream utility: does synthetic data help a classifier on real, held-out patients?

The same small CNN (`features.build_classifier`) is trained on
  (a) real training data, (b) synthetic only (train on synthetic, test on real),
  (c) real + synthetic, (d) a reduced real set (the small-data case) + synthetic,
and tested on the held-out real split: accuracy, balanced accuracy, macro-F1, one-vs-rest AUC,
mean ± std over seeds.
"""

from __future__ import annotations

import numpy as np

from mgm_tf import features


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann–Whitney) statistic, ties averaged."""
    positives = positives.astype(bool)
    count_positive, count_negative = int(positives.sum()), int((~positives).sum())
    if count_positive == 0 or count_negative == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[positives].sum() - count_positive * (count_positive + 1) / 2) / (count_positive * count_negative))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """accuracy, balanced accuracy, macro-F1 and macro one-vs-rest AUC (classes absent from the
    test labels are left out of the averages)."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    present = np.unique(labels)
    recalls, f1s, aucs = [], [], []
    for label in present:
        true_positive = float(((predicted == label) & (labels == label)).sum())
        recall = true_positive / max(1, (labels == label).sum())
        precision = true_positive / max(1, (predicted == label).sum())
        recalls.append(recall)
        f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
        aucs.append(roc_auc(probabilities[:, label], labels == label))
    return {"accuracy": float((predicted == labels).mean()), "balanced_accuracy": float(np.mean(recalls)),
            "macro_f1": float(np.mean(f1s)), "auc_ovr": float(np.nanmean(aucs)) if len(present) > 1 else float("nan")}


def reduced_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a per-class random `fraction` of the real training set (at least 1 per class)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.extend(rng.choice(members, max(1, int(round(fraction * len(members)))), replace=False).tolist())
    return np.sort(np.array(chosen, int))


def _fit_and_test(images, labels, test_images, test_labels, num_classes, seed, epochs) -> dict:
    model = features.train_classifier(images, labels, num_classes, epochs=epochs, seed=seed)
    probabilities = np.asarray(model.predict(features.to_unit_range(test_images, 64), verbose=0))
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
