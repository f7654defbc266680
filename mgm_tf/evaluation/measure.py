"""Measurements of one set of synthetic images against the real ones, shared by the report
stage (the exported dataset, every run) and `evaluate` (every row of the paper's comparison):
quality in a feature space, label agreement with the judge, diversity."""

from __future__ import annotations

import numpy as np

from mgm_tf.data.decode import read_image
from mgm_tf import classifier, judge
from mgm_tf.evaluation import features, label_fidelity, metrics
from mgm_tf.imaging import resize_all, to_channels
from mgm_tf.io import read_csv
from mgm_tf.kid import unit_scaled


def to_eval_images(images: np.ndarray, channels: int, size: int = 64) -> np.ndarray:
    """Any synthetic set → uint8 size×size with the dataset's channels (area resize)."""
    return resize_all(to_channels(np.asarray(images), channels), size)


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Grey 64×64 pixels in [0, 1], flattened: the space where a copied image is obvious."""
    return to_eval_images(images, 1).reshape(len(images), -1).astype(np.float64) / 255.0


def exported_dataset(run, channels: int):
    """The final exported dataset, read back from its PNGs (what users actually get)."""
    rows = read_csv(run.path / "synthetic" / "manifest.csv")
    images = np.stack([read_image(run.path / "synthetic" / row["file"], channels) for row in rows])
    return images, np.array([int(row["label"]) for row in rows], np.int32)


def measure_export(run, prepared) -> dict:
    """What a user needs to know about the exported dataset before trusting it, measured in
    the report stage of every run: diversity next to the real images', pixel-space
    precision/recall (equal sample sizes) and the memorised share — pixel space needs no trained
    network, so it works on the 16-image demo — and the labels: each class's status and gate,
    the referee's agreement per class next to its precision on held-out real images, and the
    judge's (selecting) agreement for comparison."""
    images, labels = exported_dataset(run, prepared.channels)
    train, test = prepared.indices("train"), prepared.indices("test")
    real_train, real_test = prepared.images_gan[train], prepared.images_gan[test]
    evaluation_images = to_eval_images(images, prepared.channels)
    result = {"num_images": int(len(images)), "diversity": metrics.diversity(evaluation_images),
              "real_diversity": metrics.diversity(real_train),
              "pixels": lean(quality_metrics(None, real_train, real_test, evaluation_images, "pixels (64x64 grey)"))}
    return {**result, **label_measurements(run, prepared, images, labels)}


def label_measurements(run, prepared, images: np.ndarray, labels: np.ndarray) -> dict:
    """Status per class and rows checked per class; the gates of judge (calibration part) and
    referee (evaluation part); agreement with the labels of the referee (the report's number), the
    share of right labels estimated from it, and the judge's agreement (it selected: not independent)."""
    info = run.done_info("judge")
    if not info:
        return {}
    rows = read_csv(run.path / "synthetic" / "manifest.csv")
    result = {"label_status": judge.label_status(run, prepared.class_names),
              "rows_checked": {name: {"n": sum(row["class"] == name for row in rows),
                                      "checked": sum(row["class"] == name and row["label_status"] == "checked"
                                                     for row in rows)} for name in prepared.class_names},
              "patients_known": info.get("patients_known", False),
              "gates": {name: {key: info[name][key] for key in ("classes", "confusion", "bar", "num_train")}
                        for name in judge.NETWORKS}}
    for name in judge.NETWORKS:
        model = judge.load(run, name, prepared.num_classes)
        result[f"{name}_agreement"] = label_metrics(model, images, labels, prepared.channels, prepared.class_names,
                                                    info["referee"]["confusion"] if name == "referee" else None)
    result["estimated_accuracy"] = result["referee_agreement"].pop("estimated_accuracy")
    return result


def quality_metrics(extractor, real_train, real_test, images, space: str) -> dict:
    """FID, KID, precision/recall and memorisation of one synthetic set in one feature space,
    real and synthetic images at the same resolution. Precision/recall compare equal sample
    sizes (`metrics.balanced_precision_recall`). No FID in pixel space: a 4,096-d covariance
    needs far more samples than any test set has (and ~50 s of eigen-decompositions per row);
    KID, being unbiased, is kept."""
    if extractor is None:
        real, held_out, fake = pixel_features(real_train), pixel_features(real_test), pixel_features(images)
    else:
        real, held_out, fake = (features.extract(extractor, x) for x in (real_train, real_test, images))
        if not extractor.standard:
            real, held_out, fake = unit_scaled(real, held_out, fake)
    result = {"space": space, "num_real": len(real), "num_synthetic": len(fake),
              "fid": metrics.frechet_distance(real, fake) if extractor is not None else None,
              "kid": metrics.kernel_inception_distance(real, fake, num_subsets=50),
              **metrics.balanced_precision_recall(real, fake)}
    if len(held_out):
        result["memorisation"] = metrics.memorisation(real, fake, held_out)
    return result


def feature_trust(extractor, real_train: np.ndarray, num_training_images: int | None) -> dict:
    """Can this feature space judge variety? (`metrics.feature_trust` on the real training images.)"""
    real = pixel_features(real_train) if extractor is None else features.extract(extractor, real_train)
    return metrics.feature_trust(real, num_training_images)


def label_metrics(model, images, labels, channels: int, class_names, confusion=None) -> dict:
    """Agreement of each image's label with a classifier's prediction, overall and per class; with
    the classifier's confusion matrix on real held-out images, the estimated share of right labels
    (`label_fidelity.estimated_accuracy`)."""
    scores = classifier.classify(model, images, channels)
    predicted = scores.argmax(axis=1)
    result = {**label_fidelity.agreement(labels, predicted, class_names),
              "mean_label_probability": float(scores[np.arange(len(labels)), labels].mean()) if len(labels) else None}
    if confusion is not None:
        result["estimated_accuracy"] = label_fidelity.estimated_accuracy(confusion, labels, predicted, class_names)
    return result


def lean(result: dict) -> dict:
    """metrics.json keeps summaries; per-image distance lists stay out (figures show them)."""
    memorised = result.get("memorisation")
    if memorised:
        result = {**result, "memorisation": {key: value for key, value in memorised.items()
                                             if key not in ("nearest_train", "synthetic_nearest", "held_out_nearest")}}
    return result
