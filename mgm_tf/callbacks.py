"""Keras callbacks for GAN stages: progress, sample grids, timing, divergence guard, resume."""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras


class EpochProgress(keras.callbacks.Callback):
    """One Keras progress bar over epochs (not one line per epoch: 1,000 one-step epochs would
    flood a notebook). Shows the latest losses."""

    def __init__(self, epochs: int, label: str = ""):
        super().__init__()
        self.epochs = epochs
        self.label = label
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.label:
            print(self.label, flush=True)
        self.bar = keras.utils.Progbar(self.epochs, unit_name="epoch", stateful_metrics=None)

    def on_epoch_end(self, epoch, logs=None):
        values = [(name, float(value)) for name, value in (logs or {}).items() if name in ("d_loss", "g_loss")]
        self.bar.update(epoch + 1, values=values, finalize=epoch + 1 >= self.epochs)


class EpochTimer(keras.callbacks.Callback):
    """Adds `seconds` (wall time of the epoch) to the logs, so history.csv holds training time
    that survives a resume (Table 2 sums it; KID-vs-time curves use it)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.start


class SampleGrid(keras.callbacks.Callback):
    """Saves a grid of images from fixed inputs every N epochs and after the last epoch
    (fixed noise / a fixed validation batch, as in the tf/docs tutorials)."""

    def __init__(self, preview_fn, directory: str | Path, every: int, epochs: int, title: str = ""):
        super().__init__()
        self.preview_fn = preview_fn
        self.directory = Path(directory)
        self.every = max(1, every)
        self.epochs = epochs
        self.title = title

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return
        from mgm_tf.plots import save_grid

        images = self.preview_fn()
        save_grid(images, self.directory / f"epoch_{epoch + 1:04d}.png", columns=8,
                  title=f"{self.title} epoch {epoch + 1}")


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first NaN/inf loss and rolls the weights back to the last good
    checkpoint (the BackupAndRestore file), instead of silently training on garbage.
    The failure message is kept in `self.failure` for the caller to raise."""

    def __init__(self, checkpoint_path: str | Path):
        super().__init__()
        self.checkpoint_path = Path(checkpoint_path)
        self.failure = ""

    def on_train_batch_end(self, batch, logs=None):
        bad = {name: float(value) for name, value in (logs or {}).items()
               if not math.isfinite(float(value))}
        if not bad:
            return
        self.model.stop_training = True
        restored = self.checkpoint_path.exists()
        if restored:
            self.model.load_weights(self.checkpoint_path)
        self.failure = (f"non-finite loss {bad} at batch {batch}: training stopped; "
                        + ("weights rolled back to the last checkpoint " + str(self.checkpoint_path) if restored
                           else "no checkpoint to roll back to yet")
                        + ". Try float32 (--precision float32) or a lower learning rate.")
        print(f"\n{self.failure}", flush=True)


class PeriodicBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that writes its checkpoint (weights, both optimizers, seed state, epoch)
    at most every `min_interval` seconds, and after the last epoch. Saving every epoch cost
    more than the training itself for small datasets (one-step epochs); a resumed run
    repeats at most `min_interval` seconds of work."""

    def __init__(self, backup_dir: str, epochs: int, min_interval: float = 60.0):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.epochs = epochs
        self.min_interval = min_interval
        self.last_save = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        due = time.perf_counter() - self.last_save >= self.min_interval or epoch + 1 >= self.epochs
        if due:
            self._save_model()
            self.last_save = time.perf_counter()


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def stage_callbacks(stage_dir: Path, epochs: int, preview_fn=None, sample_every: int = 10, tensorboard: bool = False,
                    label: str = "", backup_interval: float = 60.0) -> tuple[list, NonFiniteGuard]:
    """The standard set for one stage. Order matters: the timer writes `seconds` before the
    CSV row; the backup is written after the row so a resumed run repeats at most one epoch."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = stage_dir / "backup"
    guard = NonFiniteGuard(backup_dir / "latest.weights.h5")
    callbacks = [EpochTimer(), guard,
                 keras.callbacks.CSVLogger(str(stage_dir / "history.csv"), append=True),
                 PeriodicBackup(str(backup_dir), epochs, backup_interval),
                 EpochProgress(epochs, label)]
    if preview_fn is not None:
        callbacks.append(SampleGrid(preview_fn, stage_dir / "samples", sample_every, epochs, stage_dir.name))
    if tensorboard and tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False, profile_batch=0))
    return callbacks, guard


class KIDMonitor(keras.callbacks.Callback):
    """KID of a fixed sample against real training features every N epochs, appended to
    <stage>/kid.csv (epoch, kid, kid_std). With history.csv's per-epoch seconds this gives the
    KID-vs-wall-clock curve: the measured version of "converges in a fraction of the time"."""

    def __init__(self, sample_fn, extractor, real_features, path: str | Path, every: int, epochs: int):
        super().__init__()
        self.sample_fn = sample_fn
        self.extractor = extractor
        self.real_features = real_features
        self.path = Path(path)
        self.every = max(1, every)
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return
        from mgm_tf.features import extract
        from mgm_tf.metrics import kernel_inception_distance

        fake = extract(self.extractor, self.sample_fn())
        kid = kernel_inception_distance(self.real_features, fake, num_subsets=20, subset_size=len(fake))
        new_file = not self.path.exists()
        with open(self.path, "a", encoding="utf-8") as handle:
            if new_file:
                handle.write("epoch,kid,kid_std,num_samples,extractor\n")
            handle.write(f"{epoch},{kid['mean']:.6g},{kid['std']:.6g},{len(fake)},{self.extractor.name}\n")
