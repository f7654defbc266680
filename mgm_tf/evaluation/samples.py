"""Samples of the baselines a run trained (the cGAN alone, CycleGAN), drawn the same way for the
evaluation's comparison and for the report's stage table."""

from __future__ import annotations

import numpy as np

from mgm_tf.baselines.cyclegan import build_cyclegan, cycle_domains
from mgm_tf.dcgan import build_dcgan, unconditional_samples
from mgm_tf.sampling import class_cycle, image_seed
from mgm_tf.imaging import from_model_range


def baseline_sets(run, prepared, count: int) -> dict:
    """The cGAN-alone and CycleGAN baselines' samples, where those stages ran."""
    sets = {}
    if run.is_done("baseline_cgan"):
        generator, _ = build_dcgan(run.config.dcgan, prepared.num_classes, run.grey_output())
        generator.load_weights(str(run.path / "baseline_cgan" / "generator.weights.h5"))
        labels = class_cycle(prepared.num_classes, count)
        seeds = np.array([image_seed(run.config.seed + 11, int(label), index) for index, label in enumerate(labels)], np.uint64)
        sets["cGAN"] = (unconditional_samples(generator, seeds, run.config.dcgan.latent_dim, labels=labels,
                                              label="cGAN baseline"), labels)
    if run.is_done("baseline_cyclegan"):
        networks = build_cyclegan()
        for network, name in zip(networks[:2], ("generator_ab", "generator_ba")):
            network.load_weights(str(run.path / "baseline_cyclegan" / f"{name}.weights.h5"))
        first, second = cycle_domains(prepared)
        half = max(1, count // 2)
        to_second = from_model_range(networks[0](first[:half], training=False))
        to_first = from_model_range(networks[1](second[:half], training=False))
        sets["CycleGAN"] = (np.concatenate([to_first, to_second]),
                            np.array([0] * len(to_first) + [1] * len(to_second), np.int32))
    return sets
