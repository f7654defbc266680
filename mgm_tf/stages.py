"""The stage functions called by `pipeline.run_pipeline`: stage_<name>(run, prepared, strategy) → info.

Trainers are created inside a tf.distribute strategy scope (the default strategy on one
device), so MirroredStrategy / TPUStrategy run the same code.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil

import numpy as np
import tensorflow as tf

from mgm_tf import inputs, models, synthesis, training
from mgm_tf.callbacks import stage_callbacks
from mgm_tf.data import write_json
from mgm_tf.models import count_parameters
from mgm_tf.monitoring import class_cycle, kid_callbacks


def _scope(strategy):
    return (strategy or tf.distribute.get_strategy()).scope()


def read_history(path) -> dict[str, list[float]]:
    """history.csv as columns; an epoch logged twice (resume after a crash) keeps its last row."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    except FileNotFoundError:
        return {}
    ordered = [rows[epoch] for epoch in sorted(rows)]
    columns = {}
    for key in (ordered[0].keys() if ordered else []):
        values = [_number(row.get(key)) for row in ordered]
        if all(value is not None for value in values):
            columns[key] = values
    return columns


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def fit_stage(trainer, dataset, stage_dir, epochs: int, preview_fn, sample_every: int, tensorboard: bool,
              label: str, extra_callbacks=(), steps_per_epoch: int | None = None) -> dict:
    """fit with the standard callbacks; raises if the divergence guard stopped training.
    With steps_per_epoch, the dataset repeats and an epoch is that many steps: a 12-image set
    gives one step per pass, and per-epoch work (logging, backups, KID) would dominate."""
    callbacks, guard = stage_callbacks(stage_dir, epochs, preview_fn, sample_every, tensorboard, label)
    callbacks += list(extra_callbacks)
    if steps_per_epoch:
        dataset = dataset.repeat()
    trainer.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=callbacks, shuffle=False)
    if guard.failure:
        raise RuntimeError(f"{stage_dir.name}: {guard.failure}")
    history = read_history(stage_dir / "history.csv")
    final = {key: values[-1] for key, values in history.items() if key not in ("epoch", "seconds") and values}
    return {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "train_seconds": float(sum(history.get("seconds", []))),
            "final": final}


def save_networks(stage_dir, stage_config, networks: dict) -> dict:
    """*.weights.h5 per network + the stage config JSON; returns parameter counts."""
    for name, network in networks.items():
        network.save_weights(str(stage_dir / f"{name}.weights.h5"))
    write_json(stage_dir / "config.json", dataclasses.asdict(stage_config))
    shutil.rmtree(stage_dir / "backup", ignore_errors=True)
    return {name: count_parameters(network) for name, network in networks.items()}


def build_dcgan(stage_config, num_classes=None):
    generator = models.build_dcgan_generator(stage_config.latent_dim, base_filters=stage_config.base_filters,
                                             num_classes=num_classes)
    return generator, models.build_dcgan_discriminator(num_classes=num_classes)


def build_conditional(stage_config, num_classes):
    classes = num_classes if stage_config.label_conditioned else None
    return (models.build_conditional_generator(stage_config.latent_dim, num_classes=classes),
            models.build_conditional_discriminator(num_classes=classes))


def _compile(trainer, stage_config, run):
    trainer.compile(learning_rate=stage_config.learning_rate, beta_1=stage_config.beta_1,
                    jit_compile=run.config.jit_compile)
    return trainer


def use_diff_augment(stage_config, prepared) -> bool:
    """DiffAugment keeps D from memorising small sets: on the 12 demo training images D's loss
    fell to 0.007 in 200 steps and G produced noise without it; 0.23 and lung-like shapes with it."""
    setting = stage_config.diff_augment
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"diff_augment must be 'auto', 'on' or 'off', got {setting!r}")
    return setting == "on" or (setting == "auto" and len(prepared.indices("train")) < 1000)


def fixed_noise(seed: int, count: int, latent_dim: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def g1_classes(run, num_classes: int):
    """The number of classes G1 is conditioned on: None (the paper's unconditional §3.2 DCGAN)
    unless synthesis.conditioning is "conditional_g1", a named deviation (DESIGN.md)."""
    return num_classes if run.config.synthesis.conditioning == "conditional_g1" else None


def train_dcgan(run, prepared, strategy, stage_name: str, num_classes, label: str) -> dict:
    """A DCGAN G(z) — or, with num_classes, G(z, y) — with stage 1's settings, into <run>/<stage_name>/."""
    stage_config, stage_dir = run.config.dcgan, run.stage_dir(stage_name)
    with _scope(strategy):
        generator, discriminator = build_dcgan(stage_config, num_classes)
        trainer = training.DCGANTrainer(generator, discriminator, stage_config.latent_dim, run.config.seed,
                                        diff_augment=use_diff_augment(stage_config, prepared),
                                        mode_seeking=stage_config.mode_seeking)
        _compile(trainer, stage_config, run)
    dataset = inputs.gan_dataset(prepared, "train", stage_config.batch_size, run.config.seed, stage_config.balanced,
                                 labels=bool(num_classes))
    noise = fixed_noise(run.config.seed, 16, stage_config.latent_dim)
    preview_labels = class_cycle(num_classes, 16) if num_classes else None
    monitor_seeds = np.arange(stage_config.kid_samples) + 10_000
    monitor_labels = class_cycle(num_classes, stage_config.kid_samples) if num_classes else None

    def preview():
        return generator([noise, preview_labels] if num_classes else noise, training=False)

    def sample():
        return synthesis.unconditional_samples(generator, monitor_seeds, stage_config.latent_dim,
                                               labels=monitor_labels, label="")

    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, label,
                     extra_callbacks=kid_callbacks(run, prepared, stage_config, stage_dir, sample),
                     steps_per_epoch=stage_config.steps_per_epoch)
    info["parameters"] = save_networks(stage_dir, stage_config, {"generator": generator, "discriminator": discriminator})
    return info


def stage_dcgan(run, prepared, strategy=None) -> dict:
    """Stage 1 (§3.2): unconditional DCGAN on all training images of the dataset."""
    classes = g1_classes(run, prepared.num_classes)
    label = "stage 1/4: DCGAN" + (" (class-conditional G1: a deviation from §3.2)" if classes else "")
    return train_dcgan(run, prepared, strategy, "dcgan", classes, label)


def preview_batch(prepared, count: int = 8):
    """A fixed, class-cycling batch of real training images (uint8 → model range) for previews."""
    chosen = []
    for index in range(count):
        members = prepared.indices("train", index % prepared.num_classes)
        if len(members):
            chosen.append(members[(index // prepared.num_classes) % len(members)])
    images = inputs.to_model_range(prepared.images_gan[chosen]).numpy()
    return images, prepared.labels[chosen].astype(np.int32)


def _conditional_trainer(run, prepared, strategy):
    stage_config = run.config.cgan
    with _scope(strategy):
        generator, discriminator = build_conditional(stage_config, prepared.num_classes)
        trainer = training.ConditionalRefinementTrainer(generator, discriminator, stage_config.latent_dim, run.config.seed,
                                                        degrade_min_size=stage_config.degrade_min_size,
                                                        degrade_noise=stage_config.degrade_noise,
                                                        diff_augment=use_diff_augment(stage_config, prepared),
                                                        mode_seeking=stage_config.mode_seeking)
        _compile(trainer, stage_config, run)
    return trainer


def stage_cgan(run, prepared, strategy=None) -> dict:
    """Stage 2 (§3.3, §3.6, §3.7): conditional refinement GAN on (degrade(x), x, y) pairs, then
    optional per-class fine-tuning ("training set divided by class")."""
    import keras

    stage_config, stage_dir = run.config.cgan, run.stage_dir("cgan")
    trainer = _conditional_trainer(run, prepared, strategy)
    images, labels = preview_batch(prepared)
    condition = np.asarray(training.degrade(images, keras.random.SeedGenerator(run.config.seed),
                                            stage_config.degrade_min_size, stage_config.degrade_noise))
    noise = fixed_noise(run.config.seed + 1, len(images), stage_config.latent_dim)
    extra = [labels] if stage_config.label_conditioned else []

    def preview():
        return np.concatenate([condition, np.asarray(trainer.generator([noise, condition] + extra, training=False))])

    dataset = inputs.gan_dataset(prepared, "train", stage_config.batch_size, run.config.seed, stage_config.balanced)
    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, "stage 2/4: conditional refinement GAN (top row: c = degrade(x))",
                     extra_callbacks=_pipeline_kid(run, prepared, trainer.generator),
                     steps_per_epoch=stage_config.steps_per_epoch)
    info["parameters"] = save_networks(stage_dir, stage_config, {"generator": trainer.generator,
                                                                 "discriminator": trainer.discriminator})
    if stage_config.finetune_epochs_per_class:
        info["finetuned_classes"] = finetune_per_class(run, prepared, strategy)
    return info


def _pipeline_kid(run, prepared, conditional_generator) -> list:
    """KID of the whole MixGANMed sampler G2(z2, G1(z1), y) during stage 2 (needs stage 1)."""
    stage_config = run.config.cgan
    if not (run.path / "dcgan" / "generator.weights.h5").exists():
        return []
    dcgan_generator = load_dcgan_generator(run, prepared.num_classes)
    labels = class_cycle(prepared.num_classes, stage_config.kid_samples)
    seeds = np.arange(stage_config.kid_samples) + 10_000

    def sample():
        return synthesis.refine_samples(dcgan_generator, conditional_generator, labels, seeds,
                                        stage_config.latent_dim, label="")[0]

    return kid_callbacks(run, prepared, stage_config, run.path / "cgan", sample)


def finetune_per_class(run, prepared, strategy) -> list[str]:
    """One fine-tuned copy of G2/D2 per class, started from the shared weights (§3.3)."""
    stage_config, done = run.config.cgan, []
    for label, class_name in enumerate(prepared.class_names):
        class_dir = run.stage_dir(f"cgan/finetune/{class_name}")
        if not (class_dir / "generator.weights.h5").exists():
            trainer = _conditional_trainer(run, prepared, strategy)
            trainer.generator.load_weights(str(run.path / "cgan" / "generator.weights.h5"))
            trainer.discriminator.load_weights(str(run.path / "cgan" / "discriminator.weights.h5"))
            subset = dataclasses.replace(prepared, splits=np.where(prepared.labels == label, prepared.splits, "none"))
            dataset = inputs.gan_dataset(subset, "train", stage_config.batch_size, run.config.seed)
            fit_stage(trainer, dataset, class_dir, stage_config.finetune_epochs_per_class, None, 1, False,
                      f"fine-tuning G2 on class {class_name}")
            save_networks(class_dir, stage_config, {"generator": trainer.generator,
                                                    "discriminator": trainer.discriminator})
        done.append(class_name)
    return done


def load_dcgan_generator(run, num_classes: int):
    """G1 with its trained weights (class-conditional when the run was made so)."""
    generator, _ = build_dcgan(run.config.dcgan, g1_classes(run, num_classes))
    generator.load_weights(str(run.path / "dcgan" / "generator.weights.h5"))
    return generator


def load_generators(run, class_names):
    """G1 and G2 with their trained weights, plus per-class fine-tuned G2s where present."""
    dcgan_generator = load_dcgan_generator(run, len(class_names))
    conditional_generator, _ = build_conditional(run.config.cgan, len(class_names))
    conditional_generator.load_weights(str(run.path / "cgan" / "generator.weights.h5"))
    per_class = {}
    for label, class_name in enumerate(class_names):
        weights = run.path / "cgan" / "finetune" / class_name / "generator.weights.h5"
        if weights.exists():
            per_class[label], _ = build_conditional(run.config.cgan, len(class_names))
            per_class[label].load_weights(str(weights))
    return dcgan_generator, conditional_generator, per_class


def resolve_vgg_weights(setting):
    """'auto': ImageNet weights when they can be had (Colab, or a filled Keras cache), else
    random weights with a warning — the perceptual term then only regularises, and the run's
    report says so. 'imagenet' insists (and fails offline); None or a file path pass through."""
    from mgm_tf.losses import build_vgg_extractor

    if setting != "auto":
        return build_vgg_extractor(setting), str(setting)
    try:
        return build_vgg_extractor("imagenet"), "imagenet"
    except Exception as error:  # no network / no cached file: every failure mode of the download
        print(f"warning: VGG19 ImageNet weights unavailable ({type(error).__name__}); using random VGG19 "
              "features for the perceptual loss. Pass --vgg-weights PATH for a local weights file.")
        return build_vgg_extractor(None), "random (ImageNet weights unavailable)"


def build_srgan(stage_config):
    from mgm_tf import sr_models

    generator = sr_models.build_srgan_generator(filters=stage_config.filters,
                                                num_residual_blocks=stage_config.residual_blocks)
    return generator, sr_models.build_srgan_discriminator(filters=stage_config.discriminator_filters)


def stage_srgan(run, prepared, strategy=None) -> dict:
    """Stage 4 (§3.5): SRGAN ×4 trained on real images (random HR crops, bicubic LR), then
    PSNR/SSIM on held-out real images next to bicubic upsampling."""
    from mgm_tf import metrics

    stage_config, stage_dir = run.config.srgan, run.stage_dir("srgan")
    with _scope(strategy):
        generator, discriminator = build_srgan(stage_config)
        extractor, vgg_used = resolve_vgg_weights(stage_config.vgg_weights)
        trainer = training.SRGANTrainer(generator, discriminator, extractor, stage_config.content_weight,
                                        stage_config.perceptual_weight, seed=run.config.seed)
        _compile(trainer, stage_config, run)
    dataset = inputs.sr_dataset(prepared, "train", stage_config.batch_size, stage_config.crop, seed=run.config.seed)
    held_out = "test" if len(prepared.indices("test")) else None
    low, _ = next(iter(inputs.sr_dataset(prepared, held_out or "train", batch_size=4, full_images=True)))

    def preview():
        upscaled = tf.image.resize(low, (256, 256), method="bicubic")
        return np.concatenate([np.clip(upscaled.numpy(), -1, 1), np.asarray(generator(low, training=False))])

    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, "stage 4/4: SRGAN x4 on real images (top row: bicubic)")
    info["parameters"] = save_networks(stage_dir, stage_config, {"generator": generator, "discriminator": discriminator})
    info["vgg_weights"] = vgg_used
    info["evaluation"] = (metrics.super_resolution_quality(generator, prepared, held_out) if held_out else
                          {"split": "test", "num_images": 0,
                           "status": "not measured: the dataset has no held-out images (training images would flatter it)"})
    write_json(stage_dir / "evaluation.json", info["evaluation"])
    return info
