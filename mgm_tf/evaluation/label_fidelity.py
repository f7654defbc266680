"""Label fidelity: does a synthetic image show the class its label names?

The judge is the domain CNN of the `extractor` stage (`features.build_classifier`, trained on
the real training split only). Its accuracy on held-out real images is the ceiling any
synthetic set can be compared with: a label agreement far below it means labels and content
disagree. The same judge serves class-aware conditioning at synthesis
(`synthesis.class_aware_conditions`), so on real datasets it is not an independent referee of
that choice; the two-class test fixture (`fixtures.oracle_class`) is, and the choice of default
was made on it (DESIGN.md).
"""

from __future__ import annotations

import keras
import numpy as np

from mgm_tf.evaluation import features
from mgm_tf.imaging import to_channels


def load_judge(run, num_classes: int) -> keras.Model | None:
    """The extractor stage's classifier with its trained weights, or None before that stage ran."""
    weights = run.path / "extractor" / "domain.weights.h5"
    if not weights.exists():
        return None
    model = features.build_classifier(num_classes)
    model.load_weights(str(weights))
    return model


def judge_verdict(run, num_classes: int) -> dict:
    """Whether the judge can check labels: its balanced accuracy on held-out real images (from the
    extractor stage) must reach halfway from chance to perfect, (1 + 1/K) / 2 — 0.75 for two
    classes. A judge at chance (the 12-image demo) would turn class-aware draws and label drops
    into noise, or drop a whole class; below the bar the pipeline does neither, and says so."""
    metrics = run.done_info("extractor").get("test_metrics")
    bar = (1 + 1 / num_classes) / 2
    if not metrics:
        return {"trusted": False, "bar": bar, "reason": "no held-out real images to measure the judge on"}
    accuracy = float(metrics["balanced_accuracy"])
    return {"trusted": accuracy >= bar, "bar": bar, "balanced_accuracy": accuracy,
            "reason": f"held-out balanced accuracy {accuracy:.2f} (needs {bar:.2f})"}


def probabilities(judge: keras.Model, images: np.ndarray, channels: int, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of uint8 images of any size, seen as the judge saw real images (the
    dataset's channels: a 3-channel output of a grey modality is averaged to grey first)."""
    images = to_channels(np.asarray(images), channels)
    outputs = [np.asarray(judge(features.to_unit_range(images[start:start + batch_size], 64), training=False))
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, judge.output.shape[-1]), np.float32)


def agreement(labels: np.ndarray, predicted: np.ndarray, class_names) -> dict:
    """Share of images whose predicted class equals their label, overall and per class."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    per_class = {}
    for label, name in enumerate(class_names):
        members = labels == label
        per_class[name] = {"n": int(members.sum()),
                           "agreement": float((predicted[members] == label).mean()) if members.any() else None}
    return {"n": int(len(labels)), "agreement": float((predicted == labels).mean()) if len(labels) else None,
            "per_class": per_class}


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def describe(summary: dict) -> str:
    """'92 % (NORMAL 90 % of 20, PNEUMONIA 95 % of 20)' for an `agreement` summary."""
    per_class = ", ".join(f"{name} {percent(entry['agreement'])} of {entry['n']}"
                          for name, entry in summary["per_class"].items())
    return f"{percent(summary['agreement'])} ({per_class})"
