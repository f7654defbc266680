"""Feature extractors for FID/KID, precision/recall and memorisation, each with an honest name.

- InceptionV3 pool3 (2048-d), images resized to 299×299: the standard FID features only with
  ImageNet weights (`weights="imagenet"`, e.g. on Colab). With `weights=None` or a missing file
  the extractor is named "inception_v3_random" and its numbers are never called standard FID.
- A domain extractor: a small CNN classifier trained on the dataset's real training split
  (the medical analogue of RadImageNet features); features are its pooled penultimate layer.
  The `extractor` stage trains it; it is also the label judge (`label_fidelity`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mgm_tf.data.tfdata import finished
from mgm_tf.evaluation.metrics import classification_metrics


@dataclasses.dataclass
class Extractor:
    name: str            # reported next to every number computed from it
    standard: bool       # True only for ImageNet InceptionV3 (standard FID/KID)
    model: keras.Model
    image_size: int
    preprocess: str      # "inception" ([-1, 1]) or "unit" ([0, 1])


def build_inception(weights: str | None = "imagenet") -> Extractor:
    """InceptionV3 without top, average-pooled 2048-d features at 299×299."""
    local = weights not in (None, "imagenet")
    if local and not Path(weights).is_file():
        raise ValueError(f"InceptionV3 weights file {weights} does not exist")
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", input_shape=(299, 299, 3),
                                           weights=None if local else weights)
    if local:
        model.load_weights(weights)
    name = "inception_v3_imagenet" if weights is not None else "inception_v3_random"
    return Extractor(name, weights is not None, model, 299, "inception")


# BatchNorm momentum 0.9: with Keras' 0.99 the moving statistics of a few hundred steps (every
# dataset here is small) lagged the weights; on the two-class fixture the judge then ranked held-out
# images perfectly (AUC 1.0) yet called a third of them wrong (accuracy 0.67); with 0.9, 1.00.
CLASSIFIER_BN_MOMENTUM = 0.9


def build_classifier(num_classes: int, image_size: int = 64, width: int = 32, name: str = "domain_cnn") -> keras.Model:
    """The small CNN used as domain feature extractor and as the downstream-utility classifier:
    three conv blocks (conv-BN-ReLU ×2, max-pool), global average pooling → 4·width features,
    dropout, softmax."""
    image = keras.Input((image_size, image_size, 3), name="image")
    hidden = image
    for multiple in (1, 2, 4):
        for _ in range(2):
            hidden = keras.layers.Conv2D(width * multiple, 3, padding="same", use_bias=False)(hidden)
            hidden = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=CLASSIFIER_BN_MOMENTUM)(hidden))
        hidden = keras.layers.MaxPooling2D()(hidden)
    features = keras.layers.GlobalAveragePooling2D(name="features")(hidden)
    output = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                name="probabilities")(keras.layers.Dropout(0.3)(features))
    return keras.Model(image, output, name=name)


def to_unit_range(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 1|3) → float32 (N, size, size, 3) in [0, 1], grey repeated. Bilinear with
    antialiasing, as the reference FID code resizes to 299 (area resizing blocks pixels when it
    upsamples, which shifts InceptionV3 features)."""
    tensor = tf.cast(images, tf.float32) / 255.0
    if tensor.shape[1] != size or tensor.shape[2] != size:
        tensor = tf.image.resize(tensor, (size, size), method="bilinear", antialias=True)
    if tensor.shape[-1] == 1:
        tensor = tf.repeat(tensor, 3, axis=-1)
    return tensor.numpy()


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int = 20, seed: int = 0,
                     batch_size: int = 32, verbose: int = 0) -> keras.Model:
    """Fit `build_classifier` on uint8 images (light flips/shifts as augmentation)."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed),
                                keras.layers.RandomTranslation(0.05, 0.05, seed=seed)])
    data = tf.data.Dataset.from_tensor_slices((to_unit_range(images, 64), labels.astype(np.int32)))
    data = data.shuffle(len(labels), seed=seed).batch(batch_size).map(lambda x, y: (augment(x, training=True), y))
    model.fit(finished(data), epochs=epochs, verbose=verbose, shuffle=False)  # tf.data shuffles already
    return model


def domain_extractor(model: keras.Model, dataset: str) -> Extractor:
    features = keras.Model(model.input, model.get_layer("features").output, name="domain_features")
    return Extractor(f"domain_cnn({dataset})", False, features, 64, "unit")


def extract(extractor: Extractor, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """float64 (N, D) features of uint8 images."""
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = to_unit_range(images[start:start + batch_size], extractor.image_size)
        if extractor.preprocess == "inception":
            batch = batch * 2.0 - 1.0
        outputs.append(np.asarray(extractor.model(batch, training=False), np.float64))
    return np.concatenate(outputs) if outputs else np.zeros((0, extractor.model.output.shape[-1]))


def stage_extractor(run, prepared, strategy=None) -> dict:
    """Train the small domain CNN on the real training split; its pooled features serve KID
    monitoring and evaluation (never reported as standard FID)."""
    train, test = prepared.indices("train"), prepared.indices("test")
    settings = run.config.evaluation
    model = train_classifier(prepared.images_gan[train], prepared.labels[train], prepared.num_classes,
                             epochs=settings.extractor_epochs, seed=run.config.seed)
    stage_dir = run.stage_dir("extractor")
    model.save_weights(str(stage_dir / ".domain.partial.weights.h5"))
    os.replace(stage_dir / ".domain.partial.weights.h5", stage_dir / "domain.weights.h5")
    info = {"epochs": settings.extractor_epochs, "num_train": int(len(train))}
    if len(test):
        probabilities = np.asarray(model.predict(to_unit_range(prepared.images_gan[test], 64), verbose=0))
        info["test_metrics"] = classification_metrics(prepared.labels[test], probabilities)
    return info
