"""The domain feature extractor stage, KID monitoring during training, and the two baselines
that need their own training: cGAN alone (label-conditioned DCGAN) and CycleGAN (class→class).
The other rows of the paper's comparison reuse the main run's networks (see `evaluate`)."""

from __future__ import annotations

import numpy as np

from mgm_tf import features, inputs, models
from mgm_tf.stages import _scope, fit_stage, save_networks, train_dcgan


def stage_extractor(run, prepared, strategy=None) -> dict:
    """Train the small domain CNN on the real training split; its pooled features serve KID
    monitoring and evaluation (never reported as standard FID)."""
    train, test = prepared.indices("train"), prepared.indices("test")
    settings = run.config.evaluation
    model = features.train_classifier(prepared.images_gan[train], prepared.labels[train], prepared.num_classes,
                                      epochs=settings.extractor_epochs, seed=run.config.seed)
    stage_dir = run.stage_dir("extractor")
    model.save_weights(str(stage_dir / "domain.weights.h5"))
    info = {"epochs": settings.extractor_epochs, "num_train": int(len(train))}
    if len(test):
        from mgm_tf.utility import classification_metrics

        probabilities = np.asarray(model.predict(features.to_unit_range(prepared.images_gan[test], 64), verbose=0))
        info["test_metrics"] = classification_metrics(prepared.labels[test], probabilities)
    return info


def stage_baseline_cgan(run, prepared, strategy=None) -> dict:
    """"cGAN alone": a label-conditioned DCGAN G(z, y), same settings as stage 1."""
    return train_dcgan(run, prepared, strategy, "baseline_cgan", prepared.num_classes,
                       "baseline: cGAN alone (label-conditioned DCGAN)")


def cycle_domains(prepared, split: str = "train"):
    """(class 0 images, class 1 images) as model-range arrays: the translated pair of classes."""
    first = inputs.to_model_range(prepared.images_gan[prepared.indices(split, 0)]).numpy()
    second = inputs.to_model_range(prepared.images_gan[prepared.indices(split, 1)]).numpy()
    return first, second


def build_cyclegan(filters: int = 32, residual_blocks: int = 6):
    return ([models.build_cycle_generator(filters=filters, num_residual_blocks=residual_blocks, name=n)
             for n in ("generator_ab", "generator_ba")]
            + [models.build_patch_discriminator(name=n) for n in ("discriminator_a", "discriminator_b")])


def stage_baseline_cyclegan(run, prepared, strategy=None) -> dict:
    """CycleGAN between the first two classes (class 0 ↔ class 1), epochs and batch of stage 1."""
    import tensorflow as tf

    from mgm_tf.cyclegan import CycleGANTrainer

    stage_config, stage_dir = run.config.dcgan, run.stage_dir("baseline_cyclegan")
    first, second = cycle_domains(prepared)
    if not len(first) or not len(second):
        raise ValueError("CycleGAN baseline needs training images of the first two classes")
    with _scope(strategy):
        networks = build_cyclegan()
        trainer = CycleGANTrainer(*networks)
        trainer.compile(learning_rate=stage_config.learning_rate, beta_1=stage_config.beta_1,
                        jit_compile=run.config.jit_compile)
    count = max(len(first), len(second))
    batch = inputs.effective_batch_size(count, stage_config.batch_size)
    pairs = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(first).repeat().shuffle(len(first), seed=1),
                                 tf.data.Dataset.from_tensor_slices(second).repeat().shuffle(len(second), seed=2)))
    dataset = inputs.finished(pairs.take(count).batch(batch, drop_remainder=True))
    preview_a = first[:8]

    def preview():
        return np.concatenate([preview_a, np.asarray(networks[0](preview_a, training=False))])

    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, "baseline: CycleGAN (class 0 <-> class 1)")
    names = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
    info["parameters"] = save_networks(stage_dir, stage_config, dict(zip(names, networks)))
    info["parameters"]["generator"] = {"trainable": sum(info["parameters"][n]["trainable"] for n in names[:2])}
    info["parameters"]["discriminator"] = {"trainable": sum(info["parameters"][n]["trainable"] for n in names[2:])}
    return info
