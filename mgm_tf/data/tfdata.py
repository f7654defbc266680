"""tf.data input pipelines over a prepared dataset (arrays already decoded and resized): the
TensorFlow backend's input (`mgm_tf.data.batches` chooses; JAX gathers from the arrays itself).

The uint8 arrays stay in memory (a 5,863-image 64×64 grey set is ~24 MB), so an epoch is a
shuffle and a gather: the input pipeline never starves a GPU, and no decoding happens per epoch.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mgm_tf.data import effective_batch_size
from mgm_tf.data.prepare import PreparedDataset
from mgm_tf.imaging import to_model_range

MAP_THREADS = min(8, os.cpu_count() or 2)


def finished(dataset: tf.data.Dataset, prefetch: int = 2) -> tf.data.Dataset:
    """A fixed prefetch and tf.data autotuning off. These pipelines gather from memory and leave
    nothing to tune, and with autotuning on every iterator's end (each epoch under `fit`) waited
    for the autotuner's thread: 3.5-5 s per 20-step epoch on a 2-core CPU, longer than the
    epoch's training; measured in benchmarks/README.md."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(prefetch).with_options(options)


def _batched(dataset: tf.data.Dataset, num_images: int, batch_size: int) -> tf.data.Dataset:
    batch_size = effective_batch_size(num_images, batch_size)
    return dataset.batch(batch_size, drop_remainder=True)


def gan_dataset(prepared: PreparedDataset, split: str | None = "train", batch_size: int = 16, seed: int = 0,
                balanced: bool = False, labels: bool = True) -> tf.data.Dataset:
    """Batches of (uint8 image, 64×64×C; label int32) — or images alone with labels=False.

    Images stay uint8 here: the trainer maps them to [-1, 1] × 3 channels on the device
    (`to_model_range`), which moves 4 KB per grey image to a GPU instead of 48 KB of float32 and
    took cached epochs from 23,000-29,000 to 52,000-58,000 images/s on a 2-core CPU. The pipeline
    shuffles and batches indices, then gathers whole batches from in-memory tensors.

    balanced=True draws classes with equal probability ("class balancing techniques", §3.1): an
    epoch has the same number of images, but minority classes are oversampled.
    """
    chosen = prepared.indices(split)
    images = tf.constant(prepared.images_gan[chosen])
    classes = tf.constant(prepared.labels[chosen].astype(np.int32))
    if balanced:
        order = _balanced_order(prepared.labels[chosen], seed)
    else:
        order = tf.data.Dataset.range(len(chosen)).shuffle(len(chosen), seed=seed, reshuffle_each_iteration=True)
    order = _batched(order, len(chosen), batch_size)
    if labels:
        dataset = order.map(lambda index: (tf.gather(images, index), tf.gather(classes, index)))
    else:
        dataset = order.map(lambda index: tf.gather(images, index))
    return finished(dataset)


def _balanced_order(classes: np.ndarray, seed: int) -> tf.data.Dataset:
    """Indices drawn class by class with equal weights; each class reshuffled as it repeats."""
    present = sorted({int(c) for c in classes})
    per_class = [tf.data.Dataset.from_tensor_slices(np.flatnonzero(classes == c).astype(np.int64))
                 .shuffle(int((classes == c).sum()), seed=seed + c).repeat() for c in present]
    mixed = tf.data.Dataset.sample_from_datasets(per_class, weights=[1.0 / len(present)] * len(present), seed=seed)
    return mixed.take(len(classes))


def random_crop_pair(high: tf.Tensor, seed: tf.Tensor, crop: int, scale: int):
    """A random HR crop and its bicubic ×`scale` downsample (the SRGAN training pair)."""
    high = tf.image.stateless_random_crop(high, (crop, crop, high.shape[-1]), seed=seed)
    return bicubic_pair(high, scale)


def bicubic_pair(high: tf.Tensor, scale: int):
    """(LR, HR) in [-1, 1]: LR is the antialiased bicubic downsample of HR."""
    high = to_model_range(high)
    size = tf.shape(high)[-3] // scale
    low = tf.image.resize(high, (size, size), method="bicubic", antialias=True)
    return tf.clip_by_value(low, -1.0, 1.0), high


def sr_dataset(prepared: PreparedDataset, split: str | None = "train", batch_size: int = 16, crop: int = 96,
               scale: int = 4, seed: int = 0) -> tf.data.Dataset:
    """Batches of (LR, HR): random crops (crop×crop HR, crop/scale LR) as in the SRGAN paper."""
    chosen = prepared.indices(split)
    high = prepared.images_hr[chosen]
    if crop > high.shape[1]:
        raise ValueError(f"crop {crop} is larger than the prepared HR images ({high.shape[1]})")
    dataset = tf.data.Dataset.from_tensor_slices(high).cache()
    dataset = dataset.shuffle(len(chosen), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))
    dataset = dataset.map(lambda x, s: random_crop_pair(x, s, crop, scale), num_parallel_calls=MAP_THREADS)
    return finished(_batched(dataset, len(chosen), batch_size))


def unpaired_dataset(first: np.ndarray, second: np.ndarray, count: int, batch_size: int) -> tf.data.Dataset:
    """(a, b) batches from two unpaired image sets, each reshuffled as it repeats; `count` pairs."""
    pairs = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(first).repeat().shuffle(len(first), seed=1),
                                 tf.data.Dataset.from_tensor_slices(second).repeat().shuffle(len(second), seed=2)))
    return finished(pairs.take(count).batch(batch_size, drop_remainder=True))
