"""How long a configured run takes: on this device, measured; on a GPU not at hand, modelled.

`estimate` builds every trainer of a run's configuration (the pipeline's, the evaluation's
baselines and its classifiers), times a few train steps of each here after warm-up, and
multiplies by the steps the configuration asks for. That is what the notebooks' resources cell
prints before a long run, evaluation included.

`modelled_gpu_seconds` is for a GPU that was not measured (the T4 of the notebooks' "How
long"): a step costs at least what the fastest measured GPU took for it — one conditional G/D
step at batch 16 took 1.1–1.5 ms on an H200 (Keras 3 on JAX, launch-bound: 2 % of its matmul
rate) and a slower GPU cannot beat that — and at least its FLOPs at 10–35 % of the GPU's peak.
The range is the uncertainty: 35 % of peak and the H200's time below, 10 % of peak and twice
the H200's time (a slower host CPU launches kernels more slowly) above.
"""

from __future__ import annotations

import math
import time

import numpy as np

# Measured on an H200 with this project's networks (Keras 3 on JAX), seconds per step at batch
# 16: the floor any other GPU's step time is bounded by.
H200_STEP_SECONDS = {"dcgan": 1.1e-3, "cgan": 1.5e-3}
GPU_PEAK_FLOPS = {"T4": {"mixed_float16": 65e12, "float32": 8.1e12}}
PEAK_FRACTION = (0.10, 0.35)  # achieved share of peak: small convolutions (low) to large ones (high)


def modelled_gpu_seconds(step_flops: float, stage: str, steps: int, gpu: str = "T4",
                         policy: str = "mixed_float16") -> tuple[float, float]:
    """(low, high) seconds for `steps` train steps of `step_flops` each on a GPU not measured."""
    peak = GPU_PEAK_FLOPS[gpu][policy]
    floor = H200_STEP_SECONDS.get(stage, 0.0)
    low = max(floor, step_flops / (PEAK_FRACTION[1] * peak))
    high = max(2 * floor, step_flops / (PEAK_FRACTION[0] * peak))
    return low * steps, high * steps


# The paper's configuration (§4): batch 16, 1,000 epochs for each GAN (the baselines too), the
# SRGAN's preset 100 epochs on 96 px crops; on its chest X-rays, 5,863 images. FLOPs per train step
# at batch 16 (the classifiers: the domain CNN at batch 32, standing for the judge, the referee and
# the utility experiment's classifiers) are analytic (`evaluation.flops`; tests/test_flops.py
# recounts them).
PAPER_IMAGES, PAPER_BATCH, PAPER_GAN_EPOCHS, PAPER_SR_EPOCHS = 5863, 16, 1000, 100
PAPER_CYCLE_IMAGES = 4273  # the larger class of the two translated (pneumonia), one pass an epoch
STEP_GFLOPS = {"dcgan": 16.1, "cgan": 27.0, "srgan": 748.0, "baseline_cgan": 16.4, "baseline_cyclegan": 393.0,
               "classifier": 29.7}


def training_class_counts(dataset: str) -> list[int]:
    """Training images per class of a dataset, from its manifest's expected counts less its test
    share; a dataset whose counts are not known (0) is modelled with the paper's 5,863 images."""
    from mgm_tf.data.manifests import load_manifest

    manifest = load_manifest(dataset)
    counts = [spec.expected for spec in manifest.classes]
    if not all(counts):
        return [PAPER_IMAGES // len(counts)] * len(counts)
    return [max(1, round(count * (1 - manifest.split.test_fraction))) for count in counts]


def paper_gpu_hours(gpu: str = "T4", dataset: str = "pneumonia_xray") -> dict:
    """{stage: (low, high) hours} of a dataset's run at the paper's settings on a GPU not measured,
    every training stage of the pipeline (label judge and referee included) and of the evaluation
    (baselines and utility classifiers), and the two parts' totals (`modelled_gpu_seconds`)."""
    from mgm_tf.config import RunConfig

    planned = configured_steps(RunConfig(dataset=dataset), training_class_counts(dataset))
    hours = {}
    for stage, (steps, _) in planned.items():
        flops = STEP_GFLOPS["classifier" if stage in ("judge", "utility") else stage] * 1e9
        hours[stage] = tuple(seconds / 3600 for seconds in
                             modelled_gpu_seconds(flops, "dcgan" if stage == "baseline_cgan" else stage, steps, gpu))
    for part, stages in (("pipeline", PIPELINE_STAGES), ("evaluation", EVALUATION_STAGES)):
        hours[part] = tuple(sum(hours[stage][end] for stage in stages if stage in hours) for end in (0, 1))
    return hours


def hours_range(low_high: tuple) -> str:
    low, high = low_high
    if 60 * high < 1:
        return "under a minute"
    return f"{low:.1f}–{high:.1f} h" if low >= 0.1 else f"{60 * low:.0f}–{60 * high:.0f} min"


def batches_per_epoch(num_images: int, batch_size: int, steps_per_epoch: int | None = None) -> int:
    """Steps in one epoch: the configured count, or one pass over the images in whole batches
    (a set smaller than a batch is one batch, as `data.effective_batch_size` makes it)."""
    if steps_per_epoch:
        return int(steps_per_epoch)
    return max(1, num_images // max(1, min(batch_size, num_images)))


def configured_steps(config, class_counts: list[int]) -> dict[str, tuple[int, int]]:
    """(train steps, fresh trainings) of each training stage of this configuration, for training
    classes of these sizes: the pipeline's GANs, the evaluation's baselines, and the classifier
    trainings (judge and referee; the utility experiment's, one per seed and training set)."""
    images = sum(class_counts)
    dcgan, cgan, srgan, evaluation = config.dcgan, config.cgan, config.srgan, config.evaluation
    gan_epoch = batches_per_epoch(images, dcgan.batch_size, dcgan.steps_per_epoch)
    pairs = max(class_counts[:2]) if len(class_counts) > 1 else 0
    steps = {"judge": (2 * evaluation.extractor_epochs * math.ceil(images / 2 / 32), 2),  # two classifiers, half each
             "dcgan": (dcgan.epochs * gan_epoch, 1),
             "cgan": (cgan.epochs * batches_per_epoch(images, cgan.batch_size, cgan.steps_per_epoch)
                      + cgan.finetune_epochs_per_class * sum(batches_per_epoch(n, cgan.batch_size) for n in class_counts),
                      1 + (len(class_counts) if cgan.finetune_epochs_per_class else 0)),
             "srgan": (srgan.epochs * batches_per_epoch(images, srgan.batch_size), 1)}
    if evaluation.baselines:
        steps["baseline_cgan"] = (dcgan.epochs * gan_epoch, 1)
        steps["baseline_cyclegan"] = (dcgan.epochs * batches_per_epoch(pairs, dcgan.batch_size) if pairs else 0, 1)
    exported = round(config.filter.keep_fraction * config.filter.candidates_per_class) * len(class_counts)
    reduced = round(evaluation.reduced_fraction * images)
    methods = (5 if evaluation.baselines else 3) if evaluation.utility_methods == "all" else 1
    sets = [images, reduced] + methods * [exported, images + exported, reduced + exported]
    steps["utility"] = (evaluation.utility_seeds * evaluation.utility_epochs * sum(math.ceil(n / 32) for n in sets),
                        evaluation.utility_seeds * len(sets))
    return steps


def seconds_per_step(trainer, batch, steps: int = 8, steps_per_call: int = 1) -> tuple[float, float]:
    """(seconds per train step after warm-up, the first call's seconds: the tracing or
    compilation every fresh trainer pays once). Timed the same way on every backend, inside one
    `fit` on one in-memory batch of 1 + `steps` calls, `steps_per_call` steps each: a clock at
    the end of every call (reading a weight back waits for steps dispatched asynchronously, as
    on JAX and GPUs) gives each call's seconds, and the median of the calls after the first is
    robust to a call that the machine slowed. (The difference of two whole fits of 1 and 3 calls,
    used before, was as noisy as what it measured: 0.003 s per cGAN step on the demo, 22.7 s
    measured for 300 steps.)"""
    import keras
    from keras import ops

    from mgm_tf.data.batches import IndexedBatches

    if steps < 1 or steps_per_call < 1:
        raise ValueError(f"steps and steps_per_call must be at least 1, got {steps} and {steps_per_call}")
    arrays = list(batch) if isinstance(batch, (tuple, list)) else [batch]
    trainer.steps_per_execution = steps_per_call
    trainer.train_function = None  # rebuilt for this many steps per call
    ends = []

    class CallClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            ends.append(time.perf_counter())

        def on_train_batch_end(self, batch_index, logs=None):
            ops.convert_to_numpy(trainer.trainable_variables[0])
            ends.append(time.perf_counter())

    data = IndexedBatches(arrays, len(arrays[0]), steps=(1 + steps) * steps_per_call)
    trainer.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[CallClock()])
    calls = np.diff(ends)
    return float(np.median(calls[1:])) / steps_per_call, float(calls[0])


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


PIPELINE_STAGES = ("judge", "dcgan", "cgan", "srgan")
EVALUATION_STAGES = ("baseline_cgan", "baseline_cyclegan", "utility")


def _trainers(run, prepared):
    """(stage, trainer or classifier, one batch) for every training stage the configuration runs."""
    from mgm_tf.baselines import cyclegan
    from mgm_tf import classifier
    from mgm_tf.dcgan import dcgan_trainer, g1_classes
    from mgm_tf.device import resolve_jit
    from mgm_tf.refinement import conditional_trainer
    from mgm_tf.run import use_diff_augment
    from mgm_tf.srgan import srgan_trainer

    config, classes = run.config, prepared.num_classes
    rng = np.random.default_rng(0)
    batch = min(config.dcgan.batch_size, max(1, len(prepared.indices("train"))))
    images = rng.integers(0, 256, (batch, 64, 64, prepared.channels), dtype=np.uint8)
    labels = (np.arange(batch) % classes).astype(np.int32)
    augment = use_diff_augment(config.dcgan, prepared)
    g1 = g1_classes(run, classes)
    first = dcgan_trainer(run, g1, augment)
    yield "dcgan", first, (images, labels) if g1 else images
    # stage 2 is timed after stage 1, with stage 1's untrained G1 inside it: a step costs the same before training
    yield "cgan", conditional_trainer(run, classes, use_diff_augment(config.cgan, prepared),
                                      first_generator=first.generator), (images, labels)
    crop, sr_batch = config.srgan.crop, config.srgan.batch_size
    high = rng.uniform(-1, 1, (sr_batch, crop, crop, 3)).astype(np.float32)
    yield "srgan", srgan_trainer(run, None)[0], (high[:, ::4, ::4], high)
    judge_network = classifier.compiled_classifier(classes)
    classifier_batch = min(32, max(1, len(prepared.indices("train")) // 2))
    yield "judge", judge_network, (rng.uniform(0, 1, (classifier_batch, 64, 64, 3)).astype(np.float32),
                                (np.arange(classifier_batch) % classes).astype(np.int32))
    from mgm_tf.evaluation.utility import UTILITY_BLOCKS, UTILITY_WIDTH

    utility = classifier.compiled_classifier(classes, UTILITY_WIDTH, UTILITY_BLOCKS)
    yield "utility", utility, (rng.uniform(0, 1, (32, 64, 64, 3)).astype(np.float32),
                               (np.arange(32) % classes).astype(np.int32))
    if config.evaluation.baselines:
        yield "baseline_cgan", dcgan_trainer(run, classes, augment), (images, labels)
        trainer = cyclegan.CycleGANTrainer(*cyclegan.build_cyclegan())
        trainer.compile(learning_rate=config.dcgan.learning_rate, beta_1=config.dcgan.beta_1,
                        jit_compile=resolve_jit(config.jit_compile))
        pair = rng.uniform(-1, 1, (batch, 64, 64, 3)).astype(np.float32)
        yield "baseline_cyclegan", trainer, (pair, pair)


def estimate(run, prepared, steps: int = 8) -> list[dict]:
    """One row per training stage of this run's configuration, evaluation included: the steps it
    takes, the seconds per step measured here (random data of the configured shapes), and the
    time that makes with each fresh trainer's first call (its tracing). Stages that train nothing
    (synthesis, filter, export, report) take seconds to minutes and are not listed."""
    from mgm_tf import classifier

    counts = [len(prepared.indices("train", label)) for label in range(prepared.num_classes)]
    planned = configured_steps(run.config, counts)
    rows, measured = [], {}
    with classifier.fresh_models():
        for stage, trainer, batch in _trainers(run, prepared):
            measured[stage] = seconds_per_step(trainer, batch, steps)
    for stage, (per_step, first_call) in measured.items():
        count, trainings = planned.get(stage, (0, 0))
        rows.append({"stage": stage, "part": "evaluation" if stage in EVALUATION_STAGES else "pipeline",
                     "steps": count, "seconds_per_step": per_step,
                     "seconds": per_step * count + first_call * trainings})
    return rows


def against_measured(rows: list[dict], measured: dict[str, float]) -> list[dict]:
    """The estimate next to what the stages took: per stage in both, predicted and measured
    seconds and their ratio (measured / predicted; 1.0 is a perfect estimate)."""
    predicted = {row["stage"]: row["seconds"] for row in rows}
    return [{"stage": stage, "predicted": predicted[stage], "measured": float(measured[stage]),
             "ratio": float(measured[stage]) / predicted[stage] if predicted[stage] > 0 else None}
            for stage in predicted if stage in measured]


def cpu_hours(dataset: str, paper_hours: float) -> float:
    """A dataset's full-size CPU hours from the pneumonia run's measured `paper_hours` (step times ×
    steps on 5,863 images): the steps grow with the training images, the step times do not."""
    return paper_hours * sum(training_class_counts(dataset)) / PAPER_IMAGES
