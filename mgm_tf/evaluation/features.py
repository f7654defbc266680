"""Feature extractors for FID/KID, precision/recall and memorisation, each with an honest name.

- InceptionV3 pool3 (2048-d), images resized to 299×299: the standard FID features only with
  ImageNet weights (`weights="imagenet"`, e.g. on Colab). With `weights=None` or a missing file
  the extractor is named "inception_v3_random" and its numbers are never called standard FID.
- A domain extractor: the pooled penultimate layer of a small CNN trained on the dataset's real
  training split (the medical analogue of RadImageNet features). The evaluation uses the label
  referee of the `judge` stage (`mgm_tf.judge`), which took no part in selecting the images.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from mgm_tf.imaging import to_unit_range


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


def domain_extractor(model: keras.Model, dataset: str, role: str = "referee") -> Extractor:
    """The pooled features of a trained domain CNN (`classifier.build_classifier`), named with its role."""
    features = keras.Model(model.input, model.get_layer("features").output, name="domain_features")
    return Extractor(f"domain_cnn({dataset}, {role})", False, features, 64, "unit")


def extract(extractor: Extractor, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """float64 (N, D) features of uint8 images."""
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = to_unit_range(images[start:start + batch_size], extractor.image_size)
        if extractor.preprocess == "inception":
            batch = batch * 2.0 - 1.0
        outputs.append(np.asarray(extractor.model(batch, training=False), np.float64))
    return np.concatenate(outputs) if outputs else np.zeros((0, extractor.model.output.shape[-1]))
