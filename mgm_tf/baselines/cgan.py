"""The "cGAN alone" baseline of the paper's comparison: a label-conditioned DCGAN G(z, y),
D(x, y) trained with stage 1's settings (`dcgan.train_dcgan`)."""

from __future__ import annotations

from mgm_tf.dcgan import train_dcgan


def stage_baseline_cgan(run, prepared, strategy=None) -> dict:
    """"cGAN alone": a label-conditioned DCGAN G(z, y), same settings as stage 1."""
    return train_dcgan(run, prepared, strategy, "baseline_cgan", prepared.num_classes,
                       "baseline: cGAN alone (label-conditioned DCGAN)")
