"""Which rows each training step takes, as a function of (seed, step) alone: the batch order both
backends' inputs draw from (`batches.IndexedBatches` on JAX, `tfdata` on TensorFlow), so the two
take the same batches and a resumed stage continues where it stopped."""

from __future__ import annotations

import functools

import numpy as np


def _pass_order(count: int, seed: int, pass_index: int, classes: np.ndarray | None = None) -> np.ndarray:
    """The indices of one pass over `count` items, shuffled from (seed, pass). With `classes`,
    classes are drawn with equal probability and each class's images in its own shuffled turn
    (minority classes oversampled), as `tfdata.gan_dataset(balanced=True)` draws them."""
    rng = np.random.default_rng([seed, pass_index])
    if classes is None:
        return rng.permutation(count)
    present = np.unique(classes)
    members = [rng.permutation(np.flatnonzero(classes == value)) for value in present]
    drawn = rng.integers(0, len(present), count)
    order = np.empty(count, np.int64)
    for position, members_of_class in enumerate(members):
        where = np.flatnonzero(drawn == position)
        order[where] = members_of_class[np.arange(len(where)) % len(members_of_class)]
    return order


@functools.lru_cache(maxsize=16)
def _plain_order(count: int, seed: int, pass_index: int) -> np.ndarray:
    return _pass_order(count, seed, pass_index)


def stream_indices(count: int, seed: int, start: int, length: int) -> np.ndarray:
    """Items start … start+length−1 of the endless stream of shuffled passes over `count` items."""
    positions = np.arange(start, start + length)
    return np.array([_plain_order(count, seed, int(p // count))[p % count] for p in positions], np.int64)


class BatchOrder:
    """Which rows each training step takes: step t takes items t·B … t·B + B − 1 of the endless
    stream of shuffled passes (balanced by class when `classes` is given). The order is a
    function of (seed, step) alone, so a stage resumed at epoch k continues at its first step
    instead of taking epoch 0's batches again: `callbacks.BatchOrderCallback` calls `start` as
    the first epoch of a `fit` begins. Both backends' pipelines draw from it: `IndexedBatches`
    (epoch · steps + index) and `tfdata.gan_dataset` (a counter, `next_step`)."""

    def __init__(self, count: int, batch_size: int, seed: int = 0, steps: int | None = None,
                 classes: np.ndarray | None = None):
        self.count, self.batch_size, self.seed, self.classes = count, batch_size, seed, classes
        self.steps = steps or max(1, count // batch_size)
        self.epoch = 0
        self.next_step = 0
        self.balanced_passes: dict[int, np.ndarray] = {}

    def start(self, epoch: int, steps_per_epoch: int) -> None:
        """Training (re)starts at `epoch` of `steps_per_epoch` steps."""
        self.epoch, self.next_step = epoch, epoch * steps_per_epoch

    def rows(self, step: int) -> np.ndarray:
        start = step * self.batch_size
        if self.classes is None:
            return stream_indices(self.count, self.seed, start, self.batch_size)
        chosen = []
        for position in range(start, start + self.batch_size):
            pass_index, offset = divmod(position, self.count)
            if pass_index not in self.balanced_passes:
                self.balanced_passes = {pass_index: _pass_order(self.count, self.seed, pass_index, self.classes)}
            chosen.append(self.balanced_passes[pass_index][offset])
        return np.asarray(chosen, np.int64)
