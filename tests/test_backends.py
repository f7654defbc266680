"""The pipeline on both Keras backends: trainer parity, mixed precision, resume, two devices, and
the smoke pipeline on JAX with TensorFlow made unimportable. Keras reads its backend once per
process, so each backend runs in a subprocess (`tests/backend_checks.py`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mgm_tf import backend

CHECKS = Path(__file__).with_name("backend_checks.py")
BACKENDS = ("tensorflow", "jax")
GAN_LEARNING_RATE, JUDGE_LEARNING_RATE = 1e-4, 1e-3
# XLA's CPU compiler at optimisation level 0 in these subprocesses: at test sizes a JAX check is
# mostly compilation (about 13 s per trainer at the default level, 4-8 s at 0), not steps.
FAST_COMPILE = {"XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()}


def run_check(check: str, name: str, out: Path, workdir: Path | None = None, timeout: int = 600, env=None) -> Path:
    command = [sys.executable, str(CHECKS), check, name, str(out)] + ([str(workdir)] if workdir else [])
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **FAST_COMPILE, **(env or {})})
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return out


def test_one_step_of_every_trainer_matches_between_tensorflow_and_jax(tmp_path):
    """From the same weights and the same random draws, in float32: the losses agree to 1e-5
    (relative) and the updated weights to 1e-6 except where Adam's first step, ±learning rate
    per weight, takes a different sign for a gradient within rounding of zero: at most 0.5 % of
    weights (measured: 0.03-0.11 %), and those by no more than two steps."""
    results = {name: np.load(run_check("step", name, tmp_path / f"{name}.npz", tmp_path)) for name in BACKENDS}
    first, second = results["tensorflow"], results["jax"]
    assert sorted(first.files) == sorted(second.files)
    trainers = sorted({key.split("/")[0] for key in first.files})
    assert trainers == ["cgan_baseline", "conditional", "cyclegan", "dcgan", "judge", "srgan"]
    for trainer in trainers:
        losses = [key for key in first.files if key.startswith(f"{trainer}/loss/")]
        assert losses, trainer
        for key in losses:
            assert float(second[key]) == pytest.approx(float(first[key]), rel=1e-5, abs=1e-7), key
        weights = [key for key in first.files if key.startswith(f"{trainer}/weight/")]
        differences = np.concatenate([np.abs(first[key] - second[key]).ravel() for key in weights])
        step = JUDGE_LEARNING_RATE if trainer == "judge" else GAN_LEARNING_RATE
        assert np.mean(differences > 1e-6) <= 0.005, (trainer, np.mean(differences > 1e-6))
        assert differences.max() <= 2 * step + 1e-6, (trainer, differences.max())


@pytest.mark.parametrize("name", BACKENDS)
def test_mixed_float16_scales_both_losses_and_trains_every_network(tmp_path, name):
    """For each GAN trainer class (the cGAN baseline is the DCGAN's with labels): both optimizers are loss-scaling ones and apply a step within a few (a step whose scaled
    gradients overflow is skipped and the scale halved: the SRGAN's ×100 and ×200 weighted
    generator loss at first); every network's weights change; and the gradients each optimizer
    applied, unscaled, match float32's from the same weights (Adam's second moments within 20 %:
    a loss differentiated without its scale would give 1/32768 of them)."""
    report = json.loads(run_check("mixed", name, tmp_path / "mixed.json").read_text())
    assert sorted(report) == ["conditional", "cyclegan", "dcgan", "srgan"]
    for trainer, facts in report.items():
        assert facts["loss_scale_optimizers"] and facts["finite"], (trainer, facts)
        assert all(applied >= 1 for applied in facts["applied"]), (trainer, facts)
        trained = facts["changed"][:2] if trainer == "srgan" else facts["changed"]  # SRGAN's third: frozen VGG
        assert all(trained), (trainer, facts)
        compared = [ratio for ratio in facts["moment_ratios"] if ratio is not None]
        assert compared and all(0.8 < ratio < 1.25 for ratio in compared), (trainer, facts)
        for ratio, scale in zip(facts["moment_ratios"], facts["scales"]):
            assert ratio is not None or scale < 2 ** 15, (trainer, facts)  # a skipped step: an overflow
        assert facts["layer_dtype"] in ("float16", "float32")  # the float32 output layers stay float32


@pytest.mark.parametrize("name", BACKENDS)
def test_a_resumed_stage_continues_as_if_never_interrupted(tmp_path, name):
    """Interrupted at epoch 2 of 4 and resumed in a trainer built from other weights: the backup
    restores weights, both optimizers and the seed state; history.csv holds each epoch once."""
    report = json.loads(run_check("resume", name, tmp_path / "resume.json", tmp_path).read_text())
    assert report["interrupted_at"] == 2 and report["rows_before_resume"] == [0, 1]
    assert report["rows"] == [0, 1, 2, 3]
    assert report["iterations"] == [4, 4] and report["seed_states_equal"]
    assert report["max_weight_difference"] < 1e-5
    assert "latest.weights.h5.bkp" in report["backup_files"]


@pytest.mark.parametrize("name", BACKENDS)
def test_two_devices_split_the_batch_and_match_one_device(tmp_path, name):
    """JAX: keras.distribution.DataParallel over two host devices; TensorFlow: MirroredStrategy
    over two logical CPUs. The global batch of 8 is split 4 + 4, and three steps of the CycleGAN
    and the conditional GAN give the losses of one device (rtol 1e-5) and its weights: 90 % or more
    within 1e-5, every one within one learning rate per step. A device with half the threads sums a
    convolution's terms in another order, and Adam turns a gradient within rounding of zero into a
    step of up to one learning rate: measured with oneDNN on AVX2, 3 % of the CycleGAN's first
    kernel differed by more than 1e-5, at most by 9.5e-5 (learning rate 1e-4)."""
    report = json.loads(run_check("devices", name, tmp_path / "devices.json", tmp_path).read_text())
    assert report["replicas"] == 2 and report["split"] == [4, 4], report
    if name == "jax":
        assert len(report["devices"]) == 2
    steps, learning_rate = 3, 1e-4
    for trainer in ("cyclegan", "conditional"):
        single, several = report["single"][trainer], report["several"][trainer]
        assert np.allclose(single["losses"], several["losses"], rtol=1e-5), (trainer, single["losses"], several["losses"])
        difference = np.concatenate([np.abs(np.asarray(ours) - np.asarray(theirs)).ravel()
                                     for ours, theirs in zip(single["weights"], several["weights"])])
        assert (difference <= 1e-5).mean() >= 0.9 and difference.max() <= steps * learning_rate, \
            (trainer, float((difference <= 1e-5).mean()), float(difference.max()))


def test_the_smoke_pipeline_runs_on_jax_with_tensorflow_unimportable(tmp_path):
    """`KERAS_BACKEND=jax python -m mgm_tf run --dataset demo --smoke` where `import tensorflow`
    raises: every stage of `run` works without TensorFlow, and the run records its backend."""
    blocker = tmp_path / "blocked" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("tensorflow is blocked in this test")\n')
    out = tmp_path / "run"
    env = {**os.environ, **FAST_COMPILE, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(
        [str(blocker.parent)] + [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path])}
    result = subprocess.run([sys.executable, "-m", "mgm_tf", "run", "--dataset", "demo", "--smoke", "--out", str(out)],
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert "on JAX" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "jax"
    for stage in config["stages"]:
        assert json.loads((out / "stages" / f"{stage}.json").read_text())["backend"] == "jax", stage
    assert len(list((out / "synthetic").rglob("*.png"))) > 0
    assert (out / "report" / "report.md").exists()


def test_choosing_a_backend_after_keras_loaded_says_how_to_switch():
    assert backend.choose() == backend.current() == "tensorflow"
    with pytest.raises(ValueError, match="start a new Python process"):
        backend.choose("jax")
    with pytest.raises(ValueError, match="not supported"):
        backend.choose("torch")
