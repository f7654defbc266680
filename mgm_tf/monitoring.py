"""KID monitoring during training with the run's domain feature extractor."""

from __future__ import annotations

import numpy as np

from mgm_tf import features
from mgm_tf.callbacks import KIDMonitor


def load_domain_extractor(run, prepared):
    """The trained domain extractor, or None when the extractor stage has not run."""
    weights = run.path / "extractor" / "domain.weights.h5"
    if not weights.exists():
        return None
    model = features.build_classifier(prepared.num_classes)
    model.load_weights(str(weights))
    return features.domain_extractor(model, prepared.name)


def kid_callbacks(run, prepared, stage_config, stage_dir, sample_fn) -> list:
    """[KIDMonitor] when a domain extractor exists and kid_every > 0, else []."""
    extractor = load_domain_extractor(run, prepared) if stage_config.kid_every else None
    if extractor is None:
        return []
    real = features.extract(extractor, prepared.images_gan[prepared.indices("train")])
    return [KIDMonitor(sample_fn, extractor, real, stage_dir / "kid.csv", stage_config.kid_every, stage_config.epochs)]


def class_cycle(num_classes: int, count: int) -> np.ndarray:
    return (np.arange(count) % num_classes).astype(np.int32)
