"""The `judge` stage: two classifiers trained on real images that decide and report whether a
synthetic image shows the class its label names.

- The **judge** selects: synthesis redraws a class's condition c = G1(z1) until the judge's
  p(y | c) reaches that class's acceptance threshold, and the filter keeps no candidate below it.
- The **referee** reports: it is trained on the other half of the training split (no image,
  and no patient, in common with the judge's half), takes no part in selection, and the
  report's label agreement is its agreement.

Trust is decided class by class on held-out real images (the test split), from each class's
recall and precision (`gate`): a class is *checked* when the lower ends of both 95 % Wilson
intervals reach `BAR`, which also asks for enough held-out images (10 of 10 right gives a lower
end of 0.72; 8 of 8 only 0.68). Classes are decided alone: a weak class does not uncheck the
others, nor do strong ones carry it. A checked class's acceptance threshold is the lowest p(y)
at which the judge's precision on held-out images reaches `TARGET_PRECISION`
(`acceptance_thresholds`). Unchecked classes are synthesised as the paper does (class-blind c)
and every row, the card and the report say their labels are unchecked.

Both networks are the small domain CNN (`build_classifier`); the judge's pooled features also
serve training-time KID, the referee's the evaluation's domain features.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os

import keras
import numpy as np
from keras import ops

from mgm_tf import backend
from mgm_tf.imaging import to_channels, to_unit_range

NETWORKS = ("judge", "referee")
BAR = 0.7               # lower end of the 95 % interval of a class's recall and precision
TARGET_PRECISION = 0.9  # the judge's held-out precision for y at its acceptance threshold
MIN_THRESHOLD = 0.5     # at least p(y) = 0.5: the accepted class is the judge's top class for any K
# BatchNorm momentum 0.9: with Keras' 0.99 the moving statistics of a few hundred steps (every
# dataset here is small) lagged the weights; on the two-class fixture the judge then ranked held-out
# images perfectly (AUC 1.0) yet called a third of them wrong (accuracy 0.67); with 0.9, 1.00.
CLASSIFIER_BN_MOMENTUM = 0.9


# --- the network --------------------------------------------------------------------------------

def build_classifier(num_classes: int, image_size: int = 64, width: int = 32, blocks: int = 3,
                     name: str = "domain_cnn") -> keras.Model:
    """A small CNN: `blocks` conv blocks (conv-BN-ReLU ×2, max-pool; widths ×1, ×2, ×4 …),
    global average pooling → `features`, dropout, softmax. The judge, the referee and (with
    other width and blocks) the utility experiment's classifier."""
    image = keras.Input((image_size, image_size, 3), name="image")
    hidden = image
    for multiple in (2 ** block for block in range(blocks)):
        for _ in range(2):
            hidden = keras.layers.Conv2D(width * multiple, 3, padding="same", use_bias=False)(hidden)
            hidden = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=CLASSIFIER_BN_MOMENTUM)(hidden))
        hidden = keras.layers.MaxPooling2D()(hidden)
    features = keras.layers.GlobalAveragePooling2D(name="features")(hidden)
    output = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                name="probabilities")(keras.layers.Dropout(0.3)(features))
    return keras.Model(image, output, name=name)


def compiled_classifier(num_classes: int, width: int = 32, blocks: int = 3) -> keras.Model:
    """`build_classifier`, compiled as it trains: Adam 1e-3, cross-entropy."""
    model = build_classifier(num_classes, width=width, blocks=blocks)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@contextlib.contextmanager
def fresh_models():
    """Around training many new classifiers: each traces its own train function, and
    TensorFlow's retracing warning, which counts them together, would fire for tracing that is
    necessary. Other messages pass. (JAX has no such warning.)"""
    if backend.is_jax():
        yield
        return
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int = 20, seed: int = 0,
                     batch_size: int = 32, width: int = 32, blocks: int = 3) -> keras.Model:
    """Fit a classifier on uint8 images with light flips and shifts as augmentation."""
    keras.utils.set_random_seed(seed)
    model = compiled_classifier(num_classes, width, blocks)
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed),
                                keras.layers.RandomTranslation(0.05, 0.05, seed=seed)])
    data = _augmented_batches(to_unit_range(images, 64), labels.astype(np.int32), augment, batch_size, seed)
    with fresh_models():
        model.fit(data, epochs=epochs, verbose=0, shuffle=False)  # the input shuffles already
    return model


def _augmented_batches(images: np.ndarray, labels: np.ndarray, augment, batch_size: int, seed: int):
    """Shuffled, augmented (image, label) batches: tf.data on TensorFlow (a pass's last batch may
    be smaller), on JAX full batches gathered from the arrays (`data.batches.IndexedBatches`),
    as many per epoch as cover a pass."""
    if backend.is_jax():
        from mgm_tf.data.batches import IndexedBatches

        def make(items, _):
            return ops.convert_to_numpy(augment(items[0], training=True)), items[1]

        size = min(batch_size, len(labels))
        return IndexedBatches([images, labels], size, seed, steps=-(-len(labels) // size), make=make)
    import tensorflow as tf

    from mgm_tf.data.tfdata import finished

    data = tf.data.Dataset.from_tensor_slices((images, labels))
    return finished(data.shuffle(len(labels), seed=seed).batch(batch_size).map(lambda x, y: (augment(x, training=True), y)))


def classify(model: keras.Model, images: np.ndarray, channels: int, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of uint8 images of any size, seen as the classifier saw real images
    (the dataset's channels: a 3-channel output of a grey modality is made grey first). Direct
    calls, not `predict`: no function is traced per model."""
    images = to_channels(np.asarray(images), channels)
    outputs = [np.asarray(model(to_unit_range(images[start:start + batch_size], 64), training=False))
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output.shape[-1]), np.float32)


def pooled_features(model: keras.Model, images: np.ndarray, channels: int, batch_size: int = 256) -> np.ndarray:
    """float64 (N, D) pooled features (the `features` layer) of uint8 images, seen as in `classify`."""
    extractor = keras.Model(model.input, model.get_layer("features").output)
    images = to_channels(np.asarray(images), channels)
    outputs = [np.asarray(extractor(to_unit_range(images[start:start + batch_size], 64), training=False), np.float64)
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, extractor.output.shape[-1]))


# --- the gate -----------------------------------------------------------------------------------

def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion; (0, 1) for no trials."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true class, predicted class]."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts


def gate(labels: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Per class, from held-out real images: n, recall and precision with their 95 % intervals,
    and whether the class is checked (both lower ends ≥ BAR), with the reason when it is not;
    plus the confusion matrix. A class with no held-out image cannot be checked."""
    labels = np.asarray(labels, np.int64)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    counts = confusion_matrix(labels, predicted, len(class_names))
    classes = {}
    for index, name in enumerate(class_names):
        held_out, called = int(counts[index].sum()), int(counts[:, index].sum())
        right = int(counts[index, index])
        recall_interval, precision_interval = wilson_interval(right, held_out), wilson_interval(right, called)
        reasons = []
        if held_out == 0:
            reasons.append("no held-out images")
        elif recall_interval[0] < BAR:
            reasons.append(f"recall {right}/{held_out} (95 % interval from {recall_interval[0]:.2f})")
        if held_out and not called:
            reasons.append("never predicted on held-out images")
        elif held_out and precision_interval[0] < BAR:
            reasons.append(f"precision {right}/{called} (95 % interval from {precision_interval[0]:.2f})")
        classes[name] = {"n": held_out, "recall": right / held_out if held_out else None,
                         "recall_interval": list(recall_interval), "precision": right / called if called else None,
                         "precision_interval": list(precision_interval), "checked": not reasons,
                         "reason": "; ".join(reasons) + (f"; both intervals must start at {BAR} or more"
                                                         if reasons and held_out else "")}
    return {"bar": BAR, "classes": classes, "confusion": counts.tolist(), "class_names": list(class_names)}


def acceptance_thresholds(labels: np.ndarray, probabilities: np.ndarray, checked) -> list[float | None]:
    """Per class: the lowest t ≥ MIN_THRESHOLD such that the held-out images with p(y) ≥ t — those
    the judge would accept as y — are y at least TARGET_PRECISION of the time, or None for an
    unchecked class or one no threshold serves. The lowest such t keeps as many candidates as the
    target allows."""
    labels = np.asarray(labels)
    thresholds = []
    for label, is_checked in enumerate(checked):
        scores = probabilities[:, label] if len(labels) else np.zeros(0)
        order = np.argsort(-scores, kind="stable")
        precision = np.cumsum(labels[order] == label) / np.arange(1, len(order) + 1)
        serving = [float(scores[order[position]]) for position in np.flatnonzero(precision >= TARGET_PRECISION)
                   if scores[order[position]] >= MIN_THRESHOLD]
        thresholds.append(min(serving) if is_checked and serving else None)
    return thresholds


# --- the stage ----------------------------------------------------------------------------------

def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def training_halves(prepared, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint halves of the training split, the judge's and the referee's:
    within each class, patients are ordered by a seeded hash and dealt alternately, so both
    halves hold every class about equally and no patient (the unit of a split) is in both."""
    train = prepared.indices("train")
    patients = np.asarray(prepared.patients, dtype=object)
    first = []
    for label in range(prepared.num_classes):
        members = train[prepared.labels[train] == label]
        ordered = sorted({str(patient) for patient in patients[members]},
                         key=lambda patient: (_unit_hash(f"{seed}:{patient}"), patient))
        first += [patient for index, patient in enumerate(ordered) if index % 2 == 0]
    in_first = np.isin(patients[train].astype(str), first)
    return train[in_first], train[~in_first]


def stage_judge(run, prepared, strategy=None) -> dict:
    """Train the judge and the referee on disjoint halves of the training split, then measure
    each on the held-out real images: the per-class gate, and the judge's acceptance thresholds."""
    halves = dict(zip(NETWORKS, training_halves(prepared, run.config.seed)))
    test = prepared.indices("test")
    epochs = run.config.evaluation.extractor_epochs
    stage_dir, info = run.stage_dir("judge"), {"epochs": epochs, "num_test": int(len(test))}
    for offset, (name, chosen) in enumerate(halves.items()):
        if not len(chosen):
            raise ValueError(f"the {name}'s half of the training split is empty: {len(prepared.indices('train'))} "
                             "training image(s) cannot be shared by a judge and a referee")
        print(f"training the label {name} on {len(chosen)} real training images", flush=True)
        model = train_classifier(prepared.images_gan[chosen], prepared.labels[chosen], prepared.num_classes,
                                 epochs=epochs, seed=run.config.seed + offset)
        model.save_weights(str(stage_dir / f".{name}.partial.weights.h5"))
        os.replace(stage_dir / f".{name}.partial.weights.h5", stage_dir / f"{name}.weights.h5")
        probabilities = classify(model, prepared.images_gan[test], 3)
        measured = gate(prepared.labels[test], probabilities, prepared.class_names)
        info[name] = {"num_train": int(len(chosen)), "train_indices": chosen.tolist(), **measured}
    checked = [info["judge"]["classes"][name]["checked"] for name in prepared.class_names]
    judge_probabilities = classify(load(run, "judge", prepared.num_classes), prepared.images_gan[test], 3)
    info["thresholds"] = acceptance_thresholds(prepared.labels[test], judge_probabilities, checked)
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
    """Per class: 'checked' with the judge's acceptance threshold, or 'unchecked' with the reason
    (from stages/judge.json; everything unchecked before the stage ran)."""
    info = run.done_info("judge")
    if not info:
        return {name: {"status": "unchecked", "threshold": None, "reason": "the judge stage has not run"}
                for name in class_names}
    gates, thresholds = info["judge"]["classes"], info["thresholds"]
    status = {}
    for label, name in enumerate(class_names):
        threshold = thresholds[label]
        reason = gates[name]["reason"] or ("" if threshold is not None else
                                           f"no threshold gives {TARGET_PRECISION:.0%} precision on held-out images")
        status[name] = {"status": "checked" if threshold is not None else "unchecked", "threshold": threshold,
                        "reason": reason}
    return status
