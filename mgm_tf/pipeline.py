"""The stages, in one table, and the loop that runs them over a run directory.

Each stage reads only the run directory, skips itself when its marker `stages/<stage>.json`
exists, resumes mid-training from `<stage>/backup/` after an interruption, and refuses with a
clear message when a stage it needs has not finished. Where is stage X? `STAGES[X].function`
names its module.

The table lives here, not in `mgm_tf.run`: it imports every stage module, and every stage
module imports `run` for the machinery they share, so one module holding both would import
itself in a circle.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from mgm_tf import backend, dcgan, export, judge, quality_filter, refinement, srgan, synthesis
from mgm_tf.baselines import cgan as baseline_cgan
from mgm_tf.baselines import cyclegan as baseline_cyclegan
from mgm_tf.device import apply_policy, cpu_kernels
from mgm_tf.evaluation import report
from mgm_tf.config import SMOKE_BANNER
from mgm_tf.run import Run, seed_everything


@dataclasses.dataclass(frozen=True)
class Stage:
    function: Callable  # (run, prepared, strategy) -> info dict, written to stages/<name>.json
    requires: tuple = ()  # stages that must have finished first


STAGES = {
    "judge": Stage(judge.stage_judge),  # the label judge and referee (also KID features)
    "dcgan": Stage(dcgan.stage_dcgan),  # §3.2
    "cgan": Stage(refinement.stage_cgan),  # §3.3, §3.6, §3.7
    "synthesize": Stage(synthesis.stage_synthesize, ("judge", "dcgan", "cgan")),
    "filter": Stage(quality_filter.stage_filter, ("synthesize",)),  # §3.4
    "srgan": Stage(srgan.stage_srgan),  # §3.5
    "export": Stage(export.stage_export, ("filter", "srgan")),
    "report": Stage(report.stage_report),  # measures the export: evaluation's entry point in the pipeline
    "baseline_cgan": Stage(baseline_cgan.stage_baseline_cgan),
    "baseline_cyclegan": Stage(baseline_cyclegan.stage_baseline_cyclegan),
}


EPOCHS_OF = {"dcgan": "dcgan", "cgan": "cgan", "srgan": "srgan", "baseline_cgan": "dcgan", "baseline_cyclegan": "dcgan"}


def downstream(stage: str) -> list[str]:
    """Every stage that needs `stage`, directly or through another."""
    found = [name for name, entry in STAGES.items() if stage in entry.requires]
    return found + [later for name in found for later in downstream(name)]


def in_training(run: Run, stages) -> list[str]:
    """Training stages of this call with a training state on disk that they would resume from."""
    return [stage for stage in stages if stage in EPOCHS_OF and (run.path / stage / "backup" / "latest.weights.h5").exists()
            and (not run.is_done(stage) or run.done_info(stage).get("epochs", 0) < _epochs(run, stage))]


def _epochs(run: Run, stage: str) -> int:
    return getattr(run.config, EPOCHS_OF[stage]).epochs


def check_recorded(run: Run, field: str, value: str, stages, refusal: str, setting: str) -> None:
    """A fact of the runtime a run recorded in config.json (`field`: its precision policy, its
    Keras backend) against this runtime's `value`: a stage in the middle of training is refused
    (`refusal` says why and how to resume); between stages the change is allowed and recorded.
    `setting` words a value in the note ("under {}", "on the {} backend")."""
    recorded = getattr(run.config, field)
    if not recorded or recorded == value:
        return
    resuming = in_training(run, stages)
    if resuming:
        raise ValueError(f"{run.path}: stage(s) {', '.join(resuming)} {refusal}")
    print(f"note: this run began {setting.format(recorded)}; from here on it runs {setting.format(value)} "
          f"(each stage's {field} is in stages/<stage>.json)")
    setattr(run.config, field, value)
    run.config.save(run.path / "config.json")


def check_policy(run: Run, policy: str, stages) -> None:
    """A training state saved under one precision policy is not resumed under another: the
    optimizers differ (mixed_float16 wraps Adam in a LossScaleOptimizer) and so would the
    numbers. Finished stages are safe — their weights are float32 under every policy — so a
    change between stages is allowed and recorded; one inside a stage is refused."""
    recorded = run.config.policy
    check_recorded(run, "policy", policy, stages,
                   f"were training under the {recorded} precision policy and this runtime gives {policy}. Resume where "
                   f"the run started (e.g. the same GPU type), or pass --precision {recorded} (notebooks: the precision "
                   f"field) to continue under {recorded} here, or use a new run directory.", "under {}")


def check_backend(run: Run, name: str, stages) -> None:
    """A training state saved under one Keras backend is not resumed under the other: the
    random streams differ (the noise a resumed stage draws would not continue its own), and the
    run would no longer say what trained it. Finished stages are saved weights, the same on both
    backends, so later stages may run under the other backend; the change is recorded."""
    recorded = run.config.backend
    check_recorded(run, "backend", name, stages,
                   f"were training on the {recorded} backend and this process runs {name}. Resume with --backend "
                   f"{recorded} (or KERAS_BACKEND={recorded}; notebooks: the BACKEND field), or use a new run "
                   "directory.", "on the {} backend")


def continue_training(run: Run, stages) -> None:
    """A finished GAN stage whose configured epochs grew is marked not done, with every stage
    that used its networks, so it continues from its kept training state."""
    for stage in stages:
        if stage not in EPOCHS_OF or not run.is_done(stage):
            continue
        trained, wanted = run.done_info(stage).get("epochs", 0), _epochs(run, stage)
        if wanted < trained:
            raise ValueError(f"{run.path}: stage {stage} was trained for {trained} epochs; it cannot be made shorter "
                             f"({wanted}). Use a new run directory for a shorter run.")
        if wanted > trained:
            if not (run.path / stage / "backup" / "latest.weights.h5").exists():
                raise ValueError(f"{run.path}: stage {stage} finished {trained} epochs and its training state was not "
                                 "kept (a run made by an older mgm_tf); use a new run directory for more epochs.")
            for name in [stage] + downstream(stage):
                run.done_path(name).unlink(missing_ok=True)
            print(f"[{stage}] continues from epoch {trained} to {wanted}")


def run_pipeline(run: Run, stages=None, strategy=None) -> dict:
    """Run the requested stages in order (default: the config's), skipping completed ones.
    Returns {stage: seconds} for the stages run now."""
    if run.config.smoke:
        print(SMOKE_BANNER)
    stages = list(stages or run.config.stages)
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    policy, kernels, keras_backend = apply_policy(run.config.precision), cpu_kernels(), backend.current()
    if strategy is None:
        strategy = backend.distribution_for(run.config.devices)
    devices = backend.device_count_of(strategy)
    print(f"run {run.path} — dataset {run.config.dataset}, {backend.version_line()}, precision policy {policy}, "
          f"CPU kernels {kernels}, {devices} device(s)")
    check_policy(run, policy, stages)
    check_backend(run, keras_backend, stages)
    continue_training(run, stages)
    prepared = run.prepared()
    timings = {}
    for stage in stages:
        if run.is_done(stage) and stage != "report":
            print(f"[{stage}] already complete — skipped")
            continue
        run.require(stage, STAGES[stage].requires)
        seed_everything(run.config.seed, stage)
        start = time.perf_counter()
        with backend.training_scope(strategy):
            info = STAGES[stage].function(run, prepared, strategy)
        timings[stage] = time.perf_counter() - start
        run.mark_done(stage, {**info, "wall_seconds": timings[stage], "policy": policy, "cpu_kernels": kernels,
                              "backend": keras_backend, "devices": devices})
        run.clear_backup(stage)
        print(f"[{stage}] done in {timings[stage]:.1f} s")
        run.hooks.after_stage(stage)
    return timings
