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
from pathlib import Path

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
_STAGE_ORDER = PIPELINE_STAGES + EVALUATION_STAGES


def _trainers(run, prepared):
    """(stage, trainer, one batch) for every GAN the configuration trains."""
    from mgm_tf.baselines import cyclegan
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
    if config.evaluation.baselines:
        yield "baseline_cgan", dcgan_trainer(run, classes, augment), (images, labels)
        trainer = cyclegan.CycleGANTrainer(*cyclegan.build_cyclegan())
        trainer.compile(learning_rate=config.dcgan.learning_rate, beta_1=config.dcgan.beta_1,
                        jit_compile=resolve_jit(config.jit_compile))
        pair = rng.uniform(-1, 1, (batch, 64, 64, 3)).astype(np.float32)
        yield "baseline_cyclegan", trainer, (pair, pair)


def classifier_costs(num_classes: int, batch_size: int, width: int = 32, blocks: int = 3, mixup: float = 0.0,
                     epochs: int = 4) -> dict:
    """What a classifier training (`classifier.train_classifier`, its augmented input included)
    costs here, from one real training on random images, 3 batches per epoch: seconds per step
    (the median batch after each epoch's first), per epoch beyond its steps (making the epoch's
    input, its first batch's wait), and per training beyond its epochs (building the network,
    tracing). A classifier's epochs are short (the judge's: one step each on a small dataset), so
    the per-epoch and per-training costs are most of its time there: steps alone predicted half of
    the demo's judge stage."""
    import keras

    from mgm_tf import classifier

    if epochs < 2:
        raise ValueError(f"epochs must be at least 2 to tell an epoch's cost from the first one's, got {epochs}")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3 * batch_size, 64, 64, 3), dtype=np.uint8)
    labels = np.arange(3 * batch_size) % num_classes
    epoch_ends, batch_ends = [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            batch_ends.append([time.perf_counter()])

        def on_train_batch_end(self, batch_index, logs=None):
            batch_ends[-1].append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            epoch_ends.append(time.perf_counter())

    start = time.perf_counter()
    classifier.train_classifier(images, labels, num_classes, epochs=epochs, batch_size=batch_size, width=width,
                                blocks=blocks, mixup=mixup, callbacks=[Clock()])
    per_step = float(np.median(np.concatenate([np.diff(ends)[1:] for ends in batch_ends[1:]])))
    per_epoch_total = float(np.median(np.diff(epoch_ends)))
    return {"per_step": per_step, "per_epoch": max(0.0, per_epoch_total - 3 * per_step),
            "per_training": max(0.0, epoch_ends[0] - start - per_epoch_total)}


GRID_SHAPES = {"dcgan": (16, 64, 8), "cgan": (16, 64, 8), "srgan": (8, 256, 4)}  # a preview grid's images, size, columns


def sample_grid_seconds(run, stage: str) -> float:
    """What a stage's preview grids cost (every `sample_every` epochs and after the last): one
    grid of the stage's shape drawn here with matplotlib, times their number. On the demo the
    SRGAN's eight one-step epochs draw two 256-px grids, a third of a second each."""
    import tempfile

    from mgm_tf.plots import save_grid

    if stage not in GRID_SHAPES:
        return 0.0
    stage_config = getattr(run.config, stage)
    every = max(1, stage_config.sample_every)
    grids = stage_config.epochs // every + (1 if stage_config.epochs % every else 0)
    count, size, columns = GRID_SHAPES[stage]
    images = np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        seconds = []
        for _ in range(2):  # the first draw also pays matplotlib's warm-up, once per process
            start = time.perf_counter()
            save_grid(images, Path(folder) / "grid.png", titles=[stage] * count, columns=columns, title=stage,
                      cell=1.4 * 8 / columns)
            seconds.append(time.perf_counter() - start)
    return grids * seconds[-1]


def _classifier_rows(run, prepared, planned: dict) -> dict:
    """{stage: (seconds per step, seconds)} of the label judge and the utility classifiers."""
    from mgm_tf.evaluation.utility import UTILITY_BLOCKS, UTILITY_WIDTH
    from mgm_tf.judge import JUDGE_MIXUP

    evaluation, classes = run.config.evaluation, prepared.num_classes
    half = max(1, len(prepared.indices("train")) // 2)
    shapes = {"judge": (min(32, half), 32, 3, JUDGE_MIXUP, evaluation.extractor_epochs),
              "utility": (32, UTILITY_WIDTH, UTILITY_BLOCKS, 0.0, evaluation.utility_epochs)}
    rows = {}
    for stage, (batch, width, blocks, mixup, epochs) in shapes.items():
        costs = classifier_costs(classes, batch, width, blocks, mixup)
        steps, trainings = planned.get(stage, (0, 0))
        rows[stage] = (costs["per_step"], costs["per_step"] * steps
                       + trainings * (epochs * costs["per_epoch"] + costs["per_training"]))
    return rows


def estimate(run, prepared, steps: int = 8) -> list[dict]:
    """One row per training stage of this run's configuration, evaluation included: the steps it
    takes, the seconds per step measured here (random data of the configured shapes), and the
    time that makes with each fresh trainer's first call (its tracing); the classifiers' from a
    short real training (`classifier_costs`). Stages that train nothing (synthesis, filter,
    export, report) take seconds to minutes and are not listed."""
    from mgm_tf import classifier

    counts = [len(prepared.indices("train", label)) for label in range(prepared.num_classes)]
    planned = configured_steps(run.config, counts)
    times, trainers = {}, _trainers(run, prepared)
    with classifier.fresh_models():
        while True:
            start = time.perf_counter()
            found = next(trainers, None)  # the generator builds the next stage's networks until it yields them
            if found is None:
                break
            stage, trainer, batch = found
            build = time.perf_counter() - start
            per_step, first_call = seconds_per_step(trainer, batch, steps)
            count, trainings = planned.get(stage, (0, 0))
            times[stage] = (per_step, per_step * count + (first_call + build) * trainings + sample_grid_seconds(run, stage))
        times.update(_classifier_rows(run, prepared, planned))
    return [{"stage": stage, "part": "evaluation" if stage in EVALUATION_STAGES else "pipeline",
             "steps": planned.get(stage, (0, 0))[0], "seconds_per_step": per_step, "seconds": seconds}
            for stage, (per_step, seconds) in sorted(times.items(), key=lambda item: _STAGE_ORDER.index(item[0]))]


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
