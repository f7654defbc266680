"""oneDNN vs Eigen CPU kernels: the same train steps in child processes that differ only in
TF_ENABLE_ONEDNN_OPTS (TensorFlow reads it once, when it loads). Alternates the two settings
so machine noise hits both alike. `python benchmarks/kernels.py 1 conditional` is one child."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def child(stages: list[str], steps: int) -> dict:
    """Median seconds per train step (called through the compiled train function) and the matmul ceiling."""
    sys.path.insert(0, str(HERE))
    from common import matmul_ceiling
    from train_steps import build_config, step_seconds

    from mgm_tf.device import cpu_kernels

    result = {"kernels": cpu_kernels(), "matmul GFLOP/s": matmul_ceiling()}
    for stage in stages:
        trainer, iterator, _ = build_config(stage, 16, "float32", False)
        result[f"{stage} ms/step"] = 1e3 * step_seconds(trainer, iterator, steps)
    return result


def compare(stages=("conditional", "dcgan"), steps: int = 6, rounds: int = 2) -> dict:
    """Per setting, the median over rounds of each child's numbers; then Eigen/oneDNN ratios."""
    runs = {"1": [], "0": []}
    for _ in range(rounds):
        for setting in runs:
            environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
            output = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(steps), *stages],
                                    capture_output=True, text=True, env=environment, check=True).stdout
            runs[setting].append(json.loads(output.strip().splitlines()[-1]))
    row = {}
    for setting, name in (("1", "oneDNN"), ("0", "Eigen")):
        for key in runs[setting][0]:
            if key != "kernels":
                row[f"{name} {key}"] = float(np.median([run[key] for run in runs[setting]]))
        row[f"{name} loaded as"] = runs[setting][0]["kernels"]
    for stage in stages:
        row[f"{stage} speed-up (Eigen/oneDNN)"] = row[f"Eigen {stage} ms/step"] / row[f"oneDNN {stage} ms/step"]
    return row


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[2:], int(sys.argv[1]))))
