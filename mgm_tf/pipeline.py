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

from mgm_tf import dcgan, export, quality_filter, refinement, srgan
from mgm_tf.baselines import cgan as baseline_cgan
from mgm_tf.baselines import cyclegan as baseline_cyclegan
from mgm_tf.device import apply_policy, cpu_kernels
from mgm_tf.evaluation import features, report
from mgm_tf.config import SMOKE_BANNER
from mgm_tf.run import Run, seed_everything


@dataclasses.dataclass(frozen=True)
class Stage:
    function: Callable  # (run, prepared, strategy) -> info dict, written to stages/<name>.json
    requires: tuple = ()  # stages that must have finished first


STAGES = {
    "extractor": Stage(features.stage_extractor),  # the domain CNN: KID features and label judge
    "dcgan": Stage(dcgan.stage_dcgan),  # §3.2
    "cgan": Stage(refinement.stage_cgan),  # §3.3, §3.6, §3.7
    "synthesize": Stage(refinement.stage_synthesize, ("dcgan", "cgan")),
    "filter": Stage(quality_filter.stage_filter, ("synthesize",)),  # §3.4
    "srgan": Stage(srgan.stage_srgan),  # §3.5
    "export": Stage(export.stage_export, ("filter", "srgan")),
    "report": Stage(report.stage_report),
    "baseline_cgan": Stage(baseline_cgan.stage_baseline_cgan),
    "baseline_cyclegan": Stage(baseline_cyclegan.stage_baseline_cyclegan),
}


def run_pipeline(run: Run, stages=None, strategy=None) -> dict:
    """Run the requested stages in order (default: the config's), skipping completed ones.
    Returns {stage: seconds} for the stages run now."""
    if run.config.smoke:
        print(SMOKE_BANNER)
    policy, kernels = apply_policy(run.config.precision), cpu_kernels()
    print(f"run {run.path} — dataset {run.config.dataset}, precision policy {policy}, CPU kernels {kernels}")
    stages = list(stages or run.config.stages)
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    prepared = run.prepared()
    timings = {}
    for stage in stages:
        if run.is_done(stage) and stage != "report":
            print(f"[{stage}] already complete — skipped")
            continue
        run.require(stage, STAGES[stage].requires)
        seed_everything(run.config.seed, stage)
        start = time.perf_counter()
        info = STAGES[stage].function(run, prepared, strategy)
        timings[stage] = time.perf_counter() - start
        run.mark_done(stage, {**info, "wall_seconds": timings[stage], "policy": policy, "cpu_kernels": kernels})
        run.clear_backup(stage)
        print(f"[{stage}] done in {timings[stage]:.1f} s")
    return timings
