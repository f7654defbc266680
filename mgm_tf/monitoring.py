"""KID monitoring during training with the run's domain feature extractor."""

from __future__ import annotations

import numpy as np

from mgm_tf import features
from mgm_tf.callbacks import KIDMonitor
from mgm_tf.label_fidelity import load_judge


def load_domain_extractor(run, prepared):
    """The trained domain extractor, or None when the extractor stage has not run."""
    model = load_judge(run, prepared.num_classes)
    return None if model is None else features.domain_extractor(model, prepared.name)


def kid_callbacks(run, prepared, stage_config, stage_dir, sample_fn) -> list:
    """[KIDMonitor] when a domain extractor exists and kid_every > 0, else []."""
    extractor = load_domain_extractor(run, prepared) if stage_config.kid_every else None
    if extractor is None:
        return []
    real = features.extract(extractor, prepared.images_gan[prepared.indices("train")])
    return [KIDMonitor(sample_fn, extractor, real, stage_dir / "kid.csv", stage_config.kid_every, stage_config.epochs)]


def class_cycle(num_classes: int, count: int) -> np.ndarray:
    return (np.arange(count) % num_classes).astype(np.int32)
