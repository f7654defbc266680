"""The input pipeline of every backend: `tf.data` on TensorFlow (`tfdata`, tuned there), and on
JAX batches gathered by index from the uint8 arrays in memory (`keras.utils.PyDataset`), so a
run on JAX never needs TensorFlow. Both draw the same kind of batches — GAN batches of uint8
images (and labels), SRGAN (LR, HR) pairs of random crops, CycleGAN (a, b) pairs — shuffled each
pass from the run's seed; which images a given step sees differs between the two backends.

The functions here are what the stages call; they pick the backend's pipeline.
"""

from __future__ import annotations

import keras
import numpy as np

from mgm_tf import backend
from mgm_tf.backend import is_jax
from mgm_tf.data import effective_batch_size
from mgm_tf.data.order import BatchOrder, stream_indices
from mgm_tf.imaging import to_model_range


class IndexedBatches(keras.utils.PyDataset):
    """Batches gathered from in-memory arrays by shuffled index (`BatchOrder`): `steps` batches
    per epoch (a full pass without it). `make(arrays, position)` turns the gathered arrays into
    the batch the trainer takes. On multi-host JAX each process yields its own share of the
    global batch (rows p·B/P … (p+1)·B/P), which Keras' DataParallel reads as that process's
    part; on one host the whole batch."""

    def __init__(self, arrays: list[np.ndarray], batch_size: int, seed: int = 0, steps: int | None = None,
                 classes: np.ndarray | None = None, make=None, process: tuple[int, int] | None = None):
        super().__init__()
        self.arrays = arrays
        self.order = BatchOrder(len(arrays[0]), batch_size, seed, steps, classes)
        self.batch_size = batch_size
        self.make = make or (lambda items, _: tuple(items) if len(items) > 1 else items[0])
        self.process_index, self.process_count = process or backend.process_share()
        if batch_size % self.process_count:
            raise ValueError(f"batch size {batch_size} cannot be shared by {self.process_count} processes")

    @property
    def epoch(self) -> int:
        return self.order.epoch

    def __len__(self) -> int:
        return self.order.steps

    def __getitem__(self, index: int):
        chosen = self.order.rows(self.order.epoch * self.order.steps + index)
        share = self.batch_size // self.process_count
        chosen = chosen[self.process_index * share:(self.process_index + 1) * share]
        position = (self.order.epoch * self.order.steps + index) * self.batch_size + self.process_index * share
        return self.make([array[chosen] for array in self.arrays], position)

    def on_epoch_end(self) -> None:
        self.order.epoch += 1


def gan_input(prepared, split: str | None = "train", batch_size: int = 16, seed: int = 0, balanced: bool = False,
              labels: bool = True, steps: int | None = None):
    """uint8 64×64×C images (with int32 labels unless labels=False) for a GAN stage."""
    if not is_jax():
        from mgm_tf.data.tfdata import gan_dataset

        return gan_dataset(prepared, split, batch_size, seed, balanced, labels)
    chosen = prepared.indices(split)
    classes = prepared.labels[chosen].astype(np.int32)
    arrays = [prepared.images_gan[chosen]] + ([classes] if labels else [])
    batch_size = effective_batch_size(len(chosen), batch_size)
    return IndexedBatches(arrays, batch_size, seed, steps, classes if balanced else None)


def _lr_hr(high: np.ndarray, scale: int):
    """(LR, HR) float32 in [-1, 1]: LR is the antialiased bicubic ×1/scale of HR (keras.ops, the
    same resampling kernel on every backend)."""
    from keras import ops

    with backend.on_host():
        high = to_model_range(high)
        size = high.shape[1] // scale
        low = ops.clip(ops.image.resize(high, (size, size), interpolation="bicubic", antialias=True), -1.0, 1.0)
        return ops.convert_to_numpy(low), ops.convert_to_numpy(high)


def random_crops(images: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """One random crop×crop window per image."""
    size = images.shape[1]
    if crop > size:
        raise ValueError(f"crop {crop} is larger than the prepared HR images ({size})")
    corners = rng.integers(0, size - crop + 1, (len(images), 2))
    return np.stack([image[top:top + crop, left:left + crop] for image, (top, left) in zip(images, corners)])


def sr_input(prepared, split: str | None = "train", batch_size: int = 16, crop: int = 96, scale: int = 4,
             seed: int = 0):
    """(LR, HR) training pairs: random crop×crop HR windows and their bicubic downsample (the
    SRGAN paper's recipe)."""
    if crop % scale:
        raise ValueError(f"crop {crop} must be a multiple of the scale {scale}")
    if not is_jax():
        from mgm_tf.data.tfdata import sr_dataset

        return sr_dataset(prepared, split, batch_size, crop, scale, seed)
    return sr_batches(prepared.images_hr[prepared.indices(split)], batch_size, crop, scale, seed)


def sr_batches(high: np.ndarray, batch_size: int, crop: int, scale: int, seed: int) -> IndexedBatches:
    """JAX's (LR, HR) input: each batch's crops drawn from (seed, its place in the stream)."""
    def make(items, position):
        return _lr_hr(random_crops(items[0], crop, np.random.default_rng([seed, position])), scale)

    return IndexedBatches([high], effective_batch_size(len(high), batch_size), seed, make=make)


def sr_full_pairs(prepared, split: str | None, batch_size: int = 8, scale: int = 4):
    """(LR, HR) pairs of whole images (256 → 64) in a fixed order, for previews and evaluation."""
    high = prepared.images_hr[prepared.indices(split)]
    for start in range(0, len(high), batch_size):
        yield _lr_hr(high[start:start + batch_size], scale)


def pair_input(first: np.ndarray, second: np.ndarray, batch_size: int):
    """(a, b) batches of uint8 images from two unpaired sets, each reshuffled as it repeats; an
    epoch is one pass over the larger set (the CycleGAN baseline)."""
    count = max(len(first), len(second))
    batch = effective_batch_size(count, batch_size)
    if not is_jax():
        from mgm_tf.data.tfdata import unpaired_dataset

        return unpaired_dataset(first, second, count, batch)

    def make(items, position):
        return items[0], second[stream_indices(len(second), 2, position, len(items[0]))]

    return IndexedBatches([first], batch, seed=1, steps=count // batch, make=make)
