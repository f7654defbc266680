"""The `judge` stage: two classifiers trained on real images that decide and report whether a
synthetic image shows the class its label names.

- The **judge** selects: synthesis redraws a class's condition c = G1(z1) until the judge's
  p(y | c) reaches that class's acceptance threshold, and the filter keeps no candidate below it.
- The **referee** reports: it is trained on the other half of the training split (no image,
  and no patient, in common with the judge's half), takes no part in selection, and the
  report's label agreement is its agreement.

The held-out real images (the test split) are divided by patient into two parts with separate
jobs. The **calibration** part decides trust, class by class (`gate`): a class is *checked* when
the lower ends of the 95 % Wilson intervals of its recall and of its precision reweighted to a
uniform class mix both reach `BAR` (enough images are needed too: 10 of 10 right gives a lower
end of 0.72; 8 of 8 only 0.68), and only when at least two classes have held-out images (one
class has nothing to be told from). Reweighting makes the gate blind to class balance: a judge
that calls everything the majority class does not pass it. Classes are decided alone: a weak
class does not uncheck the others, nor do strong ones carry it. The same part fits each checked
class's acceptance threshold (`calibrate_thresholds`), floored so that it refuses images known
to lie between classes (`mgm_tf.acceptance`). The **evaluation** part, which neither saw, gives the referee's
figures (its confusion matrix, from which `label_fidelity.estimated_accuracy` estimates how many
labels are right) and is the utility test's test set.

Both networks are the small domain CNN (`mgm_tf.classifier`); the judge's pooled features also
serve training-time KID, the referee's the evaluation's domain features.
"""

from __future__ import annotations

import hashlib
import math
import os

import keras
import numpy as np

from mgm_tf import acceptance
from mgm_tf.classifier import build_classifier, classify, train_classifier

NETWORKS = ("judge", "referee")
BAR = 0.7               # lower end of the 95 % interval of a class's recall and precision
TARGET_PRECISION = 0.9  # the judge's held-out precision for y at its acceptance threshold
MIN_THRESHOLD = 0.5     # at least p(y) = 0.5: the accepted class is the judge's top class for any K
JUDGE_MIXUP = 0.2       # mixup's Beta(α, α) for the judge and the referee (`mgm_tf.acceptance` says why)


# --- the gate -----------------------------------------------------------------------------------

def wilson_interval(successes: float, trials: float, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion; (0, 1) for no trials. Trials may be a
    reweighted (non-integer) count."""
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z * math.sqrt(max(0.0, share * (1 - share)) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true class, predicted class]."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts


def balanced_calls(counts_called: np.ndarray, class_sizes: np.ndarray, label: int) -> float:
    """How many calls of `label` there would be were every class as large as `label`'s: each
    other class's calls are scaled by n_label / n_class. Precision = right / this is the
    precision at a uniform class mix, which a judge cannot raise by favouring a large class."""
    scale = np.divide(class_sizes[label], class_sizes, out=np.zeros(len(class_sizes)), where=class_sizes > 0)
    return float((np.asarray(counts_called, np.float64) * scale).sum())


def gate(labels: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Per class, from held-out real images: n, recall and balanced precision (`balanced_calls`)
    with their 95 % intervals, and whether the class is checked (both lower ends ≥ BAR), with the
    reason when it is not; plus the confusion matrix. A class with no held-out image cannot be
    checked, and nothing is checked unless two classes or more have held-out images."""
    labels = np.asarray(labels, np.int64)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    counts = confusion_matrix(labels, predicted, len(class_names))
    sizes = counts.sum(axis=1)
    present = int((sizes > 0).sum())
    classes = {}
    for index, name in enumerate(class_names):
        held_out, called, right = int(sizes[index]), int(counts[:, index].sum()), int(counts[index, index])
        balanced = balanced_calls(counts[:, index], sizes, index)
        recall_interval, precision_interval = wilson_interval(right, held_out), wilson_interval(right, balanced)
        reasons = []
        if held_out == 0:
            reasons.append("no held-out images")
        elif present < 2:
            reasons.append("only one class has held-out images: nothing to tell it from")
        elif recall_interval[0] < BAR:
            reasons.append(f"recall {right}/{held_out} (95 % interval from {recall_interval[0]:.2f})")
        if held_out and present >= 2 and not called:
            reasons.append("never predicted on held-out images")
        elif held_out and present >= 2 and precision_interval[0] < BAR:
            reasons.append(f"precision {right}/{called}, {right / balanced:.2f} at a uniform class mix "
                           f"(95 % interval from {precision_interval[0]:.2f})")
        classes[name] = {"n": held_out, "recall": right / held_out if held_out else None,
                         "recall_interval": list(recall_interval), "called": called,
                         "precision": right / balanced if called else None,
                         "precision_interval": list(precision_interval), "checked": not reasons,
                         "reason": "; ".join(reasons) + (f"; both intervals must start at {BAR} or more"
                                                         if reasons and held_out and present >= 2 else "")}
    return {"bar": BAR, "classes": classes, "confusion": counts.tolist(), "class_names": list(class_names)}


def calibrate_thresholds(labels: np.ndarray, probabilities: np.ndarray, checked, floors=None) -> list[dict]:
    """Per class: the largest set of held-out images {p(y) ≥ t}, t ≥ MIN_THRESHOLD, that are y at
    least TARGET_PRECISION of the time (at a uniform class mix, as in `gate`), with k of its m
    images right and the Wilson interval. Sets are cut only between distinct scores, so images
    with equal p(y) are accepted or refused together whatever their order; the threshold lies
    midway between the set's lowest score and the next lower one (every t there accepts the same
    held-out images; the set's own lowest score would refuse a synthetic image a hair below a
    real one). A class's floor (`acceptance.mixture_floors`) raises its lowest allowed t. None for
    an unchecked class or one no t serves."""
    labels = np.asarray(labels, np.int64)
    num_classes = probabilities.shape[1] if probabilities.ndim == 2 else len(checked)
    sizes = np.bincount(labels, minlength=num_classes) if len(labels) else np.zeros(num_classes, np.int64)
    result = []
    for label, is_checked in enumerate(checked):
        scores = probabilities[:, label] if len(labels) else np.zeros(0)
        found = {"threshold": None, "k": 0, "m": 0, "precision": None, "interval": [0.0, 1.0]}
        lowest = max(MIN_THRESHOLD, floors[label] if floors is not None else 0.0)
        distinct = np.unique(scores)[::-1] if is_checked else np.zeros(0)
        for position, candidate in enumerate(distinct):  # high to low: the last that serves is the lowest
            if candidate < lowest:
                break
            accepted = scores >= candidate
            right = int((labels[accepted] == label).sum())
            balanced = balanced_calls(np.bincount(labels[accepted], minlength=num_classes), sizes, label)
            if right / balanced >= TARGET_PRECISION:
                below = distinct[position + 1] if position + 1 < len(distinct) else 0.0
                # any t in (next lower score, candidate] accepts the same images: take the middle of that gap
                found = {"threshold": float(max(lowest, (candidate + below) / 2)), "k": right,
                         "m": int(accepted.sum()), "precision": right / balanced,
                         "interval": list(wilson_interval(right, balanced))}
        result.append(found)
    return result


def acceptance_thresholds(labels: np.ndarray, probabilities: np.ndarray, checked) -> list[float | None]:
    """The thresholds of `calibrate_thresholds` alone."""
    return [entry["threshold"] for entry in calibrate_thresholds(labels, probabilities, checked)]


# --- per-image acceptance (`mgm_tf.acceptance`) ----------------------------------------------

def fit_floors(selector, images: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> dict:
    """The floors of a judge on mixtures of the calibration images, and how many mixtures each
    class had."""
    mixed, mixed_labels = acceptance.calibration_mixtures(images, labels, seed)
    probabilities = classify(selector, mixed, 3) if len(mixed) else np.zeros((0, num_classes))
    return {"floors": acceptance.mixture_floors(probabilities, mixed_labels, num_classes),
            "mixtures": np.bincount(mixed_labels, minlength=num_classes).tolist(),
            "shares": list(acceptance.MIXTURE_SHARES), "refusal": acceptance.MIXTURE_REFUSAL}


def judge_images(selector, images: np.ndarray, labels: np.ndarray, channels: int, thresholds) -> dict:
    """The judge's verdict on uint8 images of any size (seen at 64 px, the dataset's channels):
    the probabilities, p(label), accepted, and the reason per image."""
    labels = np.asarray(labels, np.int64)
    probabilities = classify(selector, images, channels)
    accepted, reasons = acceptance.accept_images(probabilities, labels, thresholds)
    return {"probabilities": probabilities, "probability": probabilities[np.arange(len(labels)), labels],
            "accepted": accepted, "reasons": reasons}


# --- the stage ----------------------------------------------------------------------------------

def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def deal_by_patient(prepared, indices: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint parts of `indices`: within each class, patients are ordered by a seeded hash
    and dealt alternately, so both parts hold every class about equally and no patient (the unit
    of a split) is in both. A class with one patient goes wholly to the first part."""
    patients = np.asarray(prepared.patients, dtype=object)
    first = []
    for label in range(prepared.num_classes):
        members = indices[prepared.labels[indices] == label]
        ordered = sorted({str(patient) for patient in patients[members]},
                         key=lambda patient: (_unit_hash(f"{seed}:{patient}"), patient))
        first += [patient for index, patient in enumerate(ordered) if index % 2 == 0]
    in_first = np.isin(patients[indices].astype(str), first)
    return indices[in_first], indices[~in_first]


def training_halves(prepared, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The training split dealt by patient (`deal_by_patient`): the judge's half, the referee's."""
    return deal_by_patient(prepared, prepared.indices("train"), seed)


def held_out_parts(prepared, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The test split dealt by patient: the calibration part (gate, thresholds, mixture floors)
    and the evaluation part (the referee's figures, the utility test), which nothing was fitted on.
    A class with one held-out patient goes to evaluation: one patient calibrates nothing, and the
    referee's figures and the utility test still see the class."""
    evaluation, calibration = deal_by_patient(prepared, prepared.indices("test"), seed + 1)
    return calibration, evaluation


def patients_known(run) -> bool:
    """Whether the dataset's file names name patients (a manifest's patient_pattern); without
    one, parts are disjoint by image, and one patient's images may sit in two of them."""
    return bool(run.manifest().patient_pattern)


def _missing_classes(prepared, chosen: np.ndarray, name: str) -> list[str]:
    missing = [class_name for label, class_name in enumerate(prepared.class_names)
               if not (prepared.labels[chosen] == label).any()]
    if missing:
        print(f"warning: the {name}'s half of the training split holds no image of {missing} (a class with one "
              f"training patient goes to the judge): the {name} cannot recognise it", flush=True)
    return missing


def stage_judge(run, prepared, strategy=None) -> dict:
    """Train the judge and the referee (with mixup) on disjoint halves of the training split;
    measure the judge on the calibration part of the held-out images (its per-class gate, its
    acceptance thresholds with their mixture floors) and the referee on the evaluation part (its gate and confusion matrix,
    what its agreement with synthetic labels is read against)."""
    halves = dict(zip(NETWORKS, training_halves(prepared, run.config.seed)))
    calibration, evaluation = held_out_parts(prepared, run.config.seed)
    parts = {"judge": ("calibration", calibration), "referee": ("evaluation", evaluation)}
    epochs = run.config.evaluation.extractor_epochs
    stage_dir = run.stage_dir("judge")
    info = {"epochs": epochs, "num_test": int(len(calibration) + len(evaluation)), "resolution": 64,
            "calibration_indices": calibration.tolist(), "evaluation_indices": evaluation.tolist(),
            "patients_known": patients_known(run)}
    for offset, (name, chosen) in enumerate(halves.items()):
        if not len(chosen):
            raise ValueError(f"the {name}'s half of the training split is empty: {len(prepared.indices('train'))} "
                             "training image(s) cannot be shared by a judge and a referee")
        print(f"training the label {name} on {len(chosen)} real training images", flush=True)
        model = train_classifier(prepared.images_gan[chosen], prepared.labels[chosen], prepared.num_classes,
                                 epochs=epochs, seed=run.config.seed + offset, mixup=JUDGE_MIXUP)
        model.save_weights(str(stage_dir / f".{name}.partial.weights.h5"))
        os.replace(stage_dir / f".{name}.partial.weights.h5", stage_dir / f"{name}.weights.h5")
        part_name, part = parts[name]
        probabilities = classify(model, prepared.images_gan[part], 3)
        info[name] = {"num_train": int(len(chosen)), "train_indices": chosen.tolist(),
                      "missing_classes": _missing_classes(prepared, chosen, name), "held_out": part_name,
                      **gate(prepared.labels[part], probabilities, prepared.class_names)}
    checked = [info["judge"]["classes"][name]["checked"] for name in prepared.class_names]
    selector = load(run, "judge", prepared.num_classes)
    info["acceptance"] = fit_floors(selector, prepared.images_gan[calibration], prepared.labels[calibration],
                                               prepared.num_classes, run.config.seed)
    calibrated = calibrate_thresholds(prepared.labels[calibration],
                                      classify(selector, prepared.images_gan[calibration], 3), checked,
                                      info["acceptance"]["floors"])
    info["thresholds"] = [entry["threshold"] for entry in calibrated]
    info["threshold_precision"] = calibrated
    return info


def load(run, name: str, num_classes: int) -> keras.Model | None:
    """The judge or the referee with its trained weights, or None before the stage ran."""
    weights = run.path / "judge" / f"{name}.weights.h5"
    if name not in NETWORKS:
        raise ValueError(f"no network {name!r} in the judge stage; choose one of {NETWORKS}")
    if not weights.exists():
        return None
    model = build_classifier(num_classes)
    model.load_weights(str(weights))
    return model


def label_status(run, class_names) -> dict:
    """Per class: 'checked' with the judge's acceptance threshold (and the calibration precision
    it reached), or 'unchecked' with the reason (from stages/judge.json; everything unchecked
    before the stage ran). A checked class is what allows a row to be checked (`row_status`)."""
    info = run.done_info("judge")
    if not info:
        return {name: {"status": "unchecked", "threshold": None, "reason": "the judge stage has not run"}
                for name in class_names}
    gates, thresholds = info["judge"]["classes"], info["thresholds"]
    details = info.get("threshold_precision") or [None] * len(class_names)
    status = {}
    for label, name in enumerate(class_names):
        threshold = thresholds[label]
        reason = gates[name]["reason"] or ("" if threshold is not None else
                                           f"no threshold gives {TARGET_PRECISION:.0%} precision on held-out images")
        if threshold is not None and "floors" not in info.get("acceptance", {}):
            threshold, reason = None, "the judge stage predates per-image acceptance: run it again"
        status[name] = {"status": "checked" if threshold is not None else "unchecked", "threshold": threshold,
                        "precision": details[label] if threshold is not None else None, "reason": reason}
    return status


def condition_reason(conditioning: str, aware: bool, accepted: bool) -> str:
    """Why a row's condition c does not support its label ('' when it does): a class-blind draw
    was never asked to show y; a class-aware draw none of whose attempts the judge accepted was
    kept as the likeliest. (A class-conditional G1 draws c for y; for a checked class it is redrawn
    as a class-aware one is.)"""
    if conditioning == "class_blind" or (conditioning == "class_aware" and not aware):
        return "condition drawn class-blind"
    if aware and not accepted:
        return "no condition draw was accepted"
    return ""


def row_status(class_entry: dict, label_check: str, *reasons: str) -> tuple[str, str]:
    """('checked', '') only when the class passed the gate, the filter dropped what the judge
    refused (label_check 'drop'), and no step has a reason against the row (its condition, the
    candidate's and the exported image's acceptance); otherwise ('unchecked', every reason)."""
    against = []
    if class_entry["status"] != "checked":
        against.append(f"class unchecked ({class_entry['reason'].split(';')[0]})")
    if label_check != "drop":
        against.append(f"label_check is {label_check!r}: the filter did not drop refused images")
    against += [reason for reason in reasons if reason]
    return ("unchecked", "; ".join(against)) if against else ("checked", "")
