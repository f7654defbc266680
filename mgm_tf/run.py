"""A run directory and what every training stage does with it (DESIGN.md "Run directory").

Stage outputs live in <run>/<stage>/, completion markers in <run>/stages/<stage>.json. A
training stage builds its trainer inside its backend's distribution scope (`backend.strategy_scope`:
on TensorFlow a tf.distribute strategy's, the default strategy on one device, so MirroredStrategy /
TPUStrategy run the same code; on JAX a `keras.distribution`), fits it with the standard
callbacks (`fit_stage`) and saves its networks atomically (`save_networks`). Which stages exist
and in what order they run is `mgm_tf.pipeline`'s business.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import keras

from mgm_tf import __version__
from mgm_tf import backend
from mgm_tf import config as config_module
from mgm_tf.callbacks import BatchOrderCallback, stage_callbacks
from mgm_tf.device import resolve_jit, resolve_steps_per_execution, select_policy
from mgm_tf.gan import count_parameters
from mgm_tf.io import read_history, write_json

STATUS_DIR = "stages"  # <run>/stages/<stage>.json marks a completed stage (with its timings and results)


def _nothing(*_) -> None:
    return None


@dataclasses.dataclass
class RunHooks:
    """What the front end that runs the stages wants to hear of: a notebook shows each new
    sample grid in place while a stage trains and copies the run to Drive after every stage and
    training backup (`mgm_tf.notebook.open_run`). The CLI and the tests hear nothing."""

    after_stage: Callable[[str], None] = _nothing       # a stage finished (its name)
    after_backup: Callable[[], None] = _nothing         # a training backup was written
    on_sample_grid: Callable[[Path], None] = _nothing   # a sample grid was saved (its path)


class Run:
    """A run directory and its resolved configuration. Stage outputs live in <run>/<stage>/
    (synthesis writes <run>/candidates/); completion markers in <run>/stages/<stage>.json."""

    def __init__(self, path: str | Path, config: config_module.RunConfig):
        self.path = Path(path)
        self.config = config
        self.hooks = RunHooks()
        self._channels = None

    @classmethod
    def open(cls, path: str | Path, config: config_module.RunConfig | None = None) -> "Run":
        """Open an existing run (config.json) or start a new one. A different config for an
        existing run is refused, naming the fields that differ; the stages to run may change
        freely, and a larger number of epochs for a GAN stage continues its training
        (`pipeline.run_pipeline` picks it up from the stage's kept training state). A new run
        records the precision policy `precision` resolves to here, the Keras backend and the
        package version."""
        path = Path(path)
        saved_path = path / "config.json"
        if saved_path.exists():
            saved = config_module.RunConfig.load(saved_path)
            if config is not None:
                saved = _reconciled(saved, config, saved_path)
            return cls(path, saved)
        if config is None:
            raise ValueError(f"{path} is not a run directory (no config.json)")
        path.mkdir(parents=True, exist_ok=True)
        config.policy, config.package_version = select_policy(config.precision), __version__
        config.backend = backend.current()
        config.save(saved_path)
        return cls(path, config)

    def stage_dir(self, stage: str) -> Path:
        directory = self.path / stage
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def done_path(self, stage: str) -> Path:
        return self.path / STATUS_DIR / f"{stage}.json"

    def is_done(self, stage: str) -> bool:
        return self.done_path(stage).exists()

    def done_info(self, stage: str) -> dict:
        path = self.done_path(stage)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def mark_done(self, stage: str, info: dict) -> None:
        write_json(self.done_path(stage), info)

    def require(self, stage: str, needed) -> None:
        missing = [name for name in needed if not self.is_done(name)]
        if missing:
            raise ValueError(f"stage {stage!r} needs {', '.join(missing)} in {self.path} first "
                             f"(python -m mgm_tf run --out {self.path} --stages {' '.join(missing)})")

    def clear_backup(self, stage: str) -> None:
        """After a stage is marked done (not before: until then the backup is what a killed run
        resumes from), keep only its last training state — weights, optimizers, epoch — so a
        larger epoch count can continue it; the previous-checkpoint copies go."""
        for previous in (self.path / stage / "backup").glob("*.bkp"):
            previous.unlink()

    def manifest(self):
        from mgm_tf.data import manifests, sources

        if self.config.data_dir and self.config.dataset in ("", "folder"):
            return sources.folder_manifest(self.config.data_dir)
        manifest = manifests.load_manifest(self.config.dataset)
        return manifest.with_handle(self.config.handle) if self.config.handle else manifest

    def grey_output(self) -> bool:
        """Whether the generators draw one grey channel (repeated to three): for a grey modality
        unless `generator_colour` is "rgb" (the paper's three free channels)."""
        setting = self.config.generator_colour
        if setting not in ("auto", "rgb"):
            raise ValueError(f"generator_colour must be 'auto' or 'rgb', got {setting!r}")
        if setting == "rgb":
            return False
        if self._channels is None:
            report = self.path / "data" / "report.json"
            self._channels = int(json.loads(report.read_text(encoding="utf-8"))["channels"]) if report.exists() \
                else int(self.manifest().channels)
        return self._channels == 1

    def prepared(self):
        from mgm_tf.data.prepare import prepare

        return prepare(self.manifest(), self.path / "data", data_dir=self.config.data_dir)


def _reconciled(saved: config_module.RunConfig, requested: config_module.RunConfig, saved_path: Path):
    """The saved config with what may change on resume taken from the request: the stages, and
    epochs of GAN stages (recorded in config.json so the run says what it was trained for)."""
    saved_values, requested_values = saved.to_dict(), requested.to_dict()
    differences = _differences(saved_values, requested_values)

    def grows(key: str) -> bool:
        section, field = key.split(".")
        return requested_values[section][field] > saved_values[section][field]

    refused = [text for key, text in differences if key not in config_module.CONTINUABLE or not grows(key)]
    if refused:
        raise ValueError(f"{saved_path} was made with another configuration ({'; '.join(refused)}); "
                         "use a new --out directory, or the same options to resume (only the number of epochs "
                         "of dcgan, cgan and srgan may change, and only grow: training then continues)")
    saved.stages = requested.stages
    if differences:
        for key, text in differences:
            section, field = key.split(".")
            setattr(getattr(saved, section), field, getattr(getattr(requested, section), field))
        print(f"epochs changed ({'; '.join(text for _, text in differences)}): training continues where it stopped")
        saved.save(saved_path)
    return saved


def _differences(saved: dict, requested: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, 'key: old → new') for every field that differs, runtime facts left out."""
    differences = []
    for key in sorted(set(saved) | set(requested)):
        if not prefix and key in config_module.RUNTIME_FACTS:
            continue
        old, new = saved.get(key), requested.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append((f"{prefix}{key}", f"{prefix}{key}: {old!r} → {new!r}"))
    return differences


def stage_seed(seed: int, stage: str) -> int:
    """A seed per (run seed, stage): a stage's networks start from the same weights whether it
    runs in a full pipeline, alone (`train --stage`) or again after a crash."""
    return int(hashlib.sha256(f"{seed}:{stage}".encode()).hexdigest()[:8], 16)


def seed_everything(seed: int, stage: str) -> None:
    """Python's, NumPy's and Keras/TensorFlow's global generators, before a stage builds anything."""
    keras.utils.set_random_seed(stage_seed(seed, stage))




def strategy_scope(strategy):
    return backend.strategy_scope(strategy)


def compile_trainer(trainer, stage_config, run, compiles: bool = True):
    """Adam(lr, β1) for both networks (D at its own rate under TTUR); XLA as `device.resolve_jit`
    decides for this device."""
    trainer.compile(learning_rate=stage_config.learning_rate, beta_1=stage_config.beta_1,
                    discriminator_learning_rate=getattr(stage_config, "discriminator_learning_rate", None),
                    jit_compile=resolve_jit(run.config.jit_compile, compiles))
    return trainer


def use_diff_augment(stage_config, prepared) -> bool:
    """DiffAugment keeps D from memorising small sets: on the 12 demo training images D's loss
    fell to 0.007 in 200 steps and G produced noise without it; 0.23 and lung-like shapes with it."""
    setting = stage_config.diff_augment
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"diff_augment must be 'auto', 'on' or 'off', got {setting!r}")
    return setting == "on" or (setting == "auto" and len(prepared.indices("train")) < 1000)


def fit_stage(trainer, dataset, stage_dir, epochs: int, preview_fn, sample_every: int, tensorboard: bool,
              label: str, extra_callbacks=(), steps_per_epoch: int | None = None,
              steps_per_execution="auto", hooks: RunHooks | None = None, grid_columns: int = 8,
              grid_titles=None) -> dict:
    """fit with the standard callbacks; raises if the divergence guard stopped training.
    With steps_per_epoch, the dataset repeats and an epoch is that many steps: a 12-image set
    gives one step per pass, and per-epoch work (logging, backups, KID) would dominate.
    steps_per_execution is resolved here, where the epoch's length is known (Keras reads the
    trainer's attribute when it builds the train function)."""
    hooks = hooks or RunHooks()
    callbacks, guard = stage_callbacks(stage_dir, epochs, preview_fn, sample_every, tensorboard, label,
                                       after_backup=hooks.after_backup, on_sample_grid=hooks.on_sample_grid,
                                       grid_columns=grid_columns, grid_titles=grid_titles)
    callbacks += list(extra_callbacks)
    tensorflow_input = hasattr(dataset, "cardinality")  # tf.data; on JAX a PyDataset of `steps_per_epoch` batches
    batches = steps_per_epoch or (int(dataset.cardinality()) if tensorflow_input else len(dataset))
    if getattr(dataset, "order", None) is not None:  # a resumed stage continues its batch order
        callbacks.append(BatchOrderCallback(dataset.order, batches))
    trainer.steps_per_execution = resolve_steps_per_execution(steps_per_execution, batches if batches > 0 else None)
    if steps_per_epoch and tensorflow_input:
        dataset = dataset.repeat()
    trainer.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=callbacks, shuffle=False)
    if guard.failure:
        raise RuntimeError(f"{stage_dir.name}: {guard.failure}")
    history = read_history(stage_dir / "history.csv")
    final = {key: values[-1] for key, values in history.items() if key not in ("epoch", "seconds") and values}
    return {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "train_seconds": float(sum(history.get("seconds", []))),
            "final": final, "steps_per_execution": trainer.steps_per_execution, "jit_compile": str(trainer.jit_compile)}


def save_networks(stage_dir, stage_config, networks: dict) -> dict:
    """*.weights.h5 per network + the stage config JSON; returns parameter counts. Each file is
    written under a temporary name and renamed: a kill mid-write never leaves a truncated file
    under the name that says the network is trained."""
    for name, network in networks.items():
        temporary = stage_dir / f".{name}.partial.weights.h5"
        network.save_weights(str(temporary))
        os.replace(temporary, stage_dir / f"{name}.weights.h5")
    write_json(stage_dir / "config.json", dataclasses.asdict(stage_config))
    return {name: count_parameters(network) for name, network in networks.items()}
