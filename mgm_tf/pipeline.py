"""Stages over a run directory (DESIGN.md "Run directory"): each stage reads only the run
directory, skips itself when its marker `stages/<stage>.json` exists, resumes mid-stage from its backup after an
interruption, and refuses with a clear message when an earlier stage it needs is missing."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from mgm_tf import config as config_module
from mgm_tf.data import write_json

# What each stage needs to have finished first.
REQUIRES = {"extractor": (), "dcgan": (), "cgan": (), "synthesize": ("dcgan", "cgan"), "filter": ("synthesize",),
            "srgan": (), "export": ("filter", "srgan"), "report": (), "baseline_cgan": (), "baseline_cyclegan": ()}
STATUS_DIR = "stages"  # <run>/stages/<stage>.json marks a completed stage (with its timings and results)


class Run:
    """A run directory and its resolved configuration. Stage outputs live in <run>/<stage>/
    (synthesis writes <run>/candidates/); completion markers in <run>/stages/<stage>.json."""

    def __init__(self, path: str | Path, config: config_module.RunConfig):
        self.path = Path(path)
        self.config = config

    @classmethod
    def open(cls, path: str | Path, config: config_module.RunConfig | None = None) -> "Run":
        """Open an existing run (config.json) or start a new one. A different config for an
        existing run is refused, naming the fields that differ (stages may change freely)."""
        path = Path(path)
        saved_path = path / "config.json"
        if saved_path.exists():
            saved = config_module.RunConfig.load(saved_path)
            if config is not None:
                differences = _differences(saved.to_dict(), config.to_dict())
                if differences:
                    raise ValueError(f"{saved_path} was made with another configuration ({'; '.join(differences)}); "
                                     "use a new --out directory, or the same options to resume")
                saved.stages = config.stages
            return cls(path, saved)
        if config is None:
            raise ValueError(f"{path} is not a run directory (no config.json)")
        path.mkdir(parents=True, exist_ok=True)
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

    def require(self, stage: str) -> None:
        missing = [needed for needed in REQUIRES.get(stage, ()) if not self.is_done(needed)]
        if missing:
            raise ValueError(f"stage {stage!r} needs {', '.join(missing)} in {self.path} first "
                             f"(python -m mgm_tf run --out {self.path} --stages {' '.join(missing)})")

    def manifest(self):
        from mgm_tf import manifests

        if self.config.data_dir and self.config.dataset in ("", "folder"):
            return manifests.folder_manifest(self.config.data_dir)
        manifest = manifests.load_manifest(self.config.dataset)
        return manifest.with_handle(self.config.handle) if self.config.handle else manifest

    def prepared(self):
        from mgm_tf.prepare import prepare

        return prepare(self.manifest(), self.path / "data", data_dir=self.config.data_dir)


def _differences(saved: dict, requested: dict, prefix: str = "") -> list[str]:
    differences = []
    for key in sorted(set(saved) | set(requested)):
        if key == "stages" and not prefix:
            continue
        old, new = saved.get(key), requested.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} → {new!r}")
    return differences


def smoke_banner(config: config_module.RunConfig) -> None:
    if config.smoke:
        from mgm_tf.colab import SMOKE_BANNER

        print(SMOKE_BANNER)


def run_pipeline(run: Run, stages=None, strategy=None) -> dict:
    """Run the requested stages in order (default: the config's), skipping completed ones.
    Returns {stage: seconds} for the stages run now."""
    from mgm_tf.precision import apply_policy, cpu_kernels

    smoke_banner(run.config)
    policy, kernels = apply_policy(run.config.precision), cpu_kernels()
    print(f"run {run.path} — dataset {run.config.dataset}, precision policy {policy}, CPU kernels {kernels}")
    stages = list(stages or run.config.stages)
    unknown = [stage for stage in stages if stage not in REQUIRES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(REQUIRES)}")
    prepared = run.prepared()
    timings = {}
    for stage in stages:
        if run.is_done(stage) and stage != "report":
            print(f"[{stage}] already complete — skipped")
            continue
        run.require(stage)
        seed_everything(run.config.seed, stage)
        start = time.perf_counter()
        info = stage_function(stage)(run, prepared, strategy)
        timings[stage] = time.perf_counter() - start
        run.mark_done(stage, {**info, "wall_seconds": timings[stage], "policy": policy, "cpu_kernels": kernels})
        print(f"[{stage}] done in {timings[stage]:.1f} s")
    return timings


def stage_seed(seed: int, stage: str) -> int:
    """A seed per (run seed, stage): a stage's networks start from the same weights whether it
    runs in a full pipeline, alone (`train --stage`) or again after a crash."""
    return int(hashlib.sha256(f"{seed}:{stage}".encode()).hexdigest()[:8], 16)


def seed_everything(seed: int, stage: str) -> None:
    """Python's, NumPy's and Keras/TensorFlow's global generators, before a stage builds anything."""
    import keras

    keras.utils.set_random_seed(stage_seed(seed, stage))


def stage_function(stage: str):
    from mgm_tf import baselines, outputs, stages

    if stage in ("dcgan", "cgan", "srgan"):
        return getattr(stages, f"stage_{stage}")
    if stage in ("extractor", "baseline_cgan", "baseline_cyclegan"):
        return getattr(baselines, f"stage_{stage}")
    return getattr(outputs, f"stage_{stage}")
