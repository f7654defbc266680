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
from mgm_tf.data.order import BatchOrder
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
    # one host: MirroredStrategy splits each batch over its replicas; there are no workers to shard files over
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.prefetch(prefetch).with_options(options)


def gan_dataset(prepared: PreparedDataset, split: str | None = "train", batch_size: int = 16, seed: int = 0,
                balanced: bool = False, labels: bool = True) -> tf.data.Dataset:
    """Batches of (uint8 image, 64×64×C; label int32) — or images alone with labels=False.

    Images stay uint8 here: the trainer maps them to [-1, 1] × 3 channels on the device
    (`to_model_range`), which moves 4 KB per grey image to a GPU instead of 48 KB of float32 and
    took cached epochs from 23,000-29,000 to 52,000-58,000 images/s on a 2-core CPU. Each batch's
    indices come from `order.BatchOrder` (the order JAX's input takes too, a function of the
    seed and the epoch, so a resumed stage continues it; the dataset's `order` attribute), then
    whole batches are gathered from in-memory tensors.

    balanced=True draws classes with equal probability ("class balancing techniques", §3.1): an
    epoch has the same number of images, but minority classes are oversampled.
    """
    chosen = prepared.indices(split)
    images = tf.constant(prepared.images_gan[chosen])
    classes = tf.constant(prepared.labels[chosen].astype(np.int32))
    batch_size = effective_batch_size(len(chosen), batch_size)
    order = BatchOrder(len(chosen), batch_size, seed, classes=prepared.labels[chosen] if balanced else None)

    def one_epoch():
        first = order.next_step
        for step in range(first, first + order.steps):
            yield order.rows(step)
        order.next_step = first + order.steps  # where the next pass of a repeated dataset continues

    rows = tf.data.Dataset.from_generator(one_epoch, output_signature=tf.TensorSpec((batch_size,), tf.int64))
    rows = rows.apply(tf.data.experimental.assert_cardinality(order.steps))
    if labels:
        dataset = rows.map(lambda index: (tf.gather(images, index), tf.gather(classes, index)))
    else:
        dataset = rows.map(lambda index: tf.gather(images, index))
    dataset = finished(dataset)
    dataset.order = order
    return dataset


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
    """Batches of (LR, HR): random crops (crop×crop HR, crop/scale LR) as in the SRGAN paper. The
    images of each step come from `order.BatchOrder` (the dataset's `order`) and each crop's
    window from (seed, its place in the stream), so a resumed stage continues both."""
    chosen = prepared.indices(split)
    high = prepared.images_hr[chosen]
    if crop > high.shape[1]:
        raise ValueError(f"crop {crop} is larger than the prepared HR images ({high.shape[1]})")
    batch_size = effective_batch_size(len(chosen), batch_size)
    order = BatchOrder(len(chosen), batch_size, seed)
    images = tf.constant(high)

    def one_epoch():
        first = order.next_step
        for step in range(first, first + order.steps):
            for offset, index in enumerate(order.rows(step)):
                yield index, step * batch_size + offset
        order.next_step = first + order.steps

    items = tf.data.Dataset.from_generator(one_epoch, output_signature=(tf.TensorSpec((), tf.int64),
                                                                        tf.TensorSpec((), tf.int64)))
    pairs = items.map(lambda index, position: random_crop_pair(tf.gather(images, index),
                                                               tf.stack([tf.constant(seed, tf.int64), position]),
                                                               crop, scale), num_parallel_calls=MAP_THREADS)
    dataset = pairs.batch(batch_size, drop_remainder=True).apply(tf.data.experimental.assert_cardinality(order.steps))
    dataset = finished(dataset)
    dataset.order = order
    return dataset


def unpaired_dataset(first: np.ndarray, second: np.ndarray, count: int, batch_size: int) -> tf.data.Dataset:
    """(a, b) batches from two unpaired image sets, each reshuffled as it repeats; `count` pairs."""
    pairs = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(first).repeat().shuffle(len(first), seed=1),
                                 tf.data.Dataset.from_tensor_slices(second).repeat().shuffle(len(second), seed=2)))
    return finished(pairs.take(count).batch(batch_size, drop_remainder=True))
