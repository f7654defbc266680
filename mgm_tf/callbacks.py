"""Keras callbacks of a training stage: progress, sample grids, per-epoch time, a divergence
guard, a resume-safe history, KID monitoring and backups that survive a kill at any moment."""

from __future__ import annotations

import csv
import math
import shutil
import time
from pathlib import Path

import keras

from mgm_tf import classifier, judge
from mgm_tf.kid import kernel_inception_distance, unit_scaled
from mgm_tf.plots import save_grid


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


class BatchOrderCallback(keras.callbacks.Callback):
    """Tells the input's batch order (`data.batches.BatchOrder`) where training starts: epoch 0
    of a new stage, epoch k of one resumed from its backup (known only once `fit` restored it,
    when the first epoch begins). From there the order continues by itself."""

    def __init__(self, order, steps_per_epoch: int):
        super().__init__()
        self.order, self.steps_per_epoch, self.started = order, steps_per_epoch, False

    def on_epoch_begin(self, epoch, logs=None):
        if not self.started:
            self.order.start(epoch, self.steps_per_epoch)
            self.started = True


class SampleGrid(keras.callbacks.Callback):
    """Saves a grid of images from fixed inputs every N epochs and after the last epoch
    (fixed noise / a fixed validation batch, as in the tf/docs tutorials)."""

    def __init__(self, preview_fn, directory: str | Path, every: int, epochs: int, title: str = "",
                 on_saved=None, columns: int = 8, titles=None):
        super().__init__()
        self.columns, self.titles = columns, titles  # the grid's layout: SRGAN rows are bicubic, then SR
        self.preview_fn = preview_fn
        self.directory = Path(directory)
        self.every = max(1, every)
        self.epochs = epochs
        self.title = title
        self.on_saved = on_saved  # called with the grid's path (a notebook shows it in place)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return
        path = self.directory / f"epoch_{epoch + 1:04d}.png"
        save_grid(self.preview_fn(), path, titles=self.titles, columns=self.columns, title=f"{self.title} epoch {epoch + 1}",
                  cell=1.4 * 8 / self.columns)  # every grid as wide as 8 columns: fewer columns, larger images
        if self.on_saved is not None:
            self.on_saved(path)


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


class TimedBackup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore (weights, both optimizers, the seed state and the epoch) with two
    changes of *when*, none of *how*: it writes at most every `min_interval` seconds and after
    the last epoch — saving every epoch cost more than the training itself for one-step epochs,
    and `save_freq` counts batches, not time — and it keeps the checkpoint after training, so a
    kill between saving a stage's networks and marking it done resumes at the last epoch.
    `double_checkpoint=True` keeps the previous good file: a kill while the new one is written
    leaves a truncated `latest.weights.h5`, and Keras falls back to `latest.weights.h5.bkp`."""

    def __init__(self, backup_dir: str, epochs: int, min_interval: float = 60.0, after_save=None):
        super().__init__(backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=False)
        self.epochs = epochs
        self.min_interval = min_interval
        self.after_save = after_save  # called after each backup (a notebook copies the run to Drive)
        self.last_save = time.perf_counter()

    def on_train_begin(self, logs=None):
        """Keras restores the backup (or, when it is unreadable, the previous one). A backup cut
        off during its very first write has no previous one: nothing was loaded from it, so the
        stage starts again from epoch 0 — the same start an uninterrupted run had."""
        weights = Path(self.backup_dir) / "latest.weights.h5"
        try:
            super().on_train_begin(logs)
        except OSError as error:
            print(f"warning: the backup {weights} cannot be read ({type(error).__name__}: it was cut off while being "
                  "written) and there is no earlier one; this stage starts again from epoch 0", flush=True)
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        except ValueError as error:  # the epoch file was cut off after new weights were loaded
            raise ValueError(f"the backup in {self.backup_dir} is inconsistent ({error}); delete that folder to "
                             "restart this stage from epoch 0") from error

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.last_save >= self.min_interval or epoch + 1 >= self.epochs:
            super().on_epoch_end(epoch, logs)
            if self.after_save is not None:
                self.after_save()
            self.last_save = time.perf_counter()


class EpochRows(keras.callbacks.Callback):
    """Appends one CSV row per epoch; when training starts (or resumes) at epoch k, rows of
    epochs ≥ k left by an interrupted run are dropped first, so the file never holds an epoch
    twice. Keras' CSVLogger(append=True) appends after them: after a resume from a backup a few
    epochs old, those epochs were logged twice, and summed training time and curves were wrong."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.started = False
        self.columns = None

    def on_epoch_begin(self, epoch, logs=None):
        if not self.started:
            self.started = True
            self.drop_from(epoch)

    def drop_from(self, epoch: int) -> None:
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows, self.columns = list(reader), reader.fieldnames
        kept = [row for row in rows if int(float(row["epoch"])) < epoch]
        if len(kept) < len(rows):
            self.write(kept, "w")

    def write(self, rows: list[dict], mode: str) -> None:
        with open(self.path, mode, newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, lineterminator="\n", extrasaction="ignore")
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row)
            self.write([row], "w")
        else:
            self.write([row], "a")


class HistoryLog(EpochRows):
    """history.csv: epoch, the logged losses and `seconds` (from EpochTimer)."""

    def on_epoch_end(self, epoch, logs=None):
        self.append({"epoch": epoch, **{name: float(value) for name, value in (logs or {}).items()}})


class KIDMonitor(EpochRows):
    """KID of a fixed sample against real training features every N epochs, appended to
    <stage>/kid.csv (epoch, kid, kid_std). With history.csv's per-epoch seconds this gives the
    KID-vs-wall-clock curve: the measured version of "converges in a fraction of the time".
    Features are scaled as the report scales them (`kid.unit_scaled`), so the two agree."""

    def __init__(self, sample_fn, feature_fn, real_features, path: str | Path, every: int, epochs: int,
                 extractor: str = "domain_cnn(judge)"):
        super().__init__(path)
        self.sample_fn = sample_fn
        self.feature_fn = feature_fn
        self.real_features = real_features
        self.every = max(1, every)
        self.epochs = epochs
        self.extractor = extractor

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return
        real, fake = unit_scaled(self.real_features, self.feature_fn(self.sample_fn()))
        kid = kernel_inception_distance(real, fake, num_subsets=20, subset_size=len(fake))
        self.append({"epoch": epoch, "kid": f"{kid['mean']:.6g}", "kid_std": f"{kid['std']:.6g}",
                     "num_samples": len(fake), "extractor": self.extractor})


def kid_callbacks(run, prepared, stage_config, stage_dir, sample_fn) -> list:
    """[KIDMonitor] on the judge's pooled features when the judge stage has run and kid_every > 0,
    else []."""
    model = judge.load(run, "judge", prepared.num_classes) if stage_config.kid_every else None
    if model is None:
        return []

    def feature_fn(images):
        return classifier.pooled_features(model, images, prepared.channels)

    real = feature_fn(prepared.images_gan[prepared.indices("train")])
    return [KIDMonitor(sample_fn, feature_fn, real, stage_dir / "kid.csv", stage_config.kid_every, stage_config.epochs,
                       f"domain_cnn({prepared.name}, judge)")]


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def stage_callbacks(stage_dir: Path, epochs: int, preview_fn=None, sample_every: int = 10, tensorboard: bool = False,
                    label: str = "", backup_interval: float = 60.0, after_backup=None,
                    on_sample_grid=None, grid_columns: int = 8, grid_titles=None) -> tuple[list, NonFiniteGuard]:
    """The standard set for one stage. Order matters: the timer writes `seconds` before the
    history row; the backup is written after the row, so a resumed run repeats at most the
    epochs since the last backup, and their rows are replaced, not duplicated."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = stage_dir / "backup"
    guard = NonFiniteGuard(backup_dir / "latest.weights.h5")
    callbacks = [EpochTimer(), guard, HistoryLog(stage_dir / "history.csv"),
                 TimedBackup(str(backup_dir), epochs, backup_interval, after_backup), EpochProgress(epochs, label)]
    if preview_fn is not None:
        callbacks.append(SampleGrid(preview_fn, stage_dir / "samples", sample_every, epochs, stage_dir.name,
                                    on_sample_grid, grid_columns, grid_titles))
    if tensorboard and tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(str(stage_dir / "tensorboard"), write_graph=False, profile_batch=0))
    return callbacks, guard
