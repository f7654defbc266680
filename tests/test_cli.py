import subprocess
import sys

import pytest


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mgm_tf", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_prepare_demo_prints_counts_and_writes_previews(tmp_path):
    result = _run("prepare", "--dataset", "demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert lines["NORMAL"][-1] == "8" and lines["PNEUMONIA"][-1] == "8"
    assert (tmp_path / "demo" / "previews" / "NORMAL.png").exists()
    assert (tmp_path / "demo" / "previews" / "PNEUMONIA.png").exists()


def test_datasets_lists_every_manifest():
    result = _run("datasets")
    assert result.returncode == 0, result.stderr
    for name in ("demo", "pneumonia_xray", "diabetic_retinopathy", "brain_tumor_mri", "skin_cancer", "leukemia"):
        assert name in result.stdout
    assert "embedded" in result.stdout


def test_datasets_says_what_is_available_offline(tmp_path):
    import os

    from mgm_tf.data import fixtures

    fixtures.build_kagglehub_cache(tmp_path, ["pneumonia_xray", "leukemia", "diabetic_retinopathy_competition"])
    result = subprocess.run([sys.executable, "-m", "mgm_tf", "datasets"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KAGGLEHUB_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    available = {line.split()[0]: line.rsplit("  ", 1)[-1].strip() for line in result.stdout.splitlines()[1:]}
    assert available["demo"] == "embedded" and available["pneumonia_xray"] == "cached"
    assert available["leukemia"] == "cached v1" and available["diabetic_retinopathy_competition"] == "cached"
    assert available["skin_cancer"] == "download"


def test_bad_dataset_name_is_a_clear_error():
    result = _run("prepare", "--dataset", "nonexistent")
    assert result.returncode == 2 and "unknown dataset 'nonexistent'" in result.stderr


def test_train_stage_twice_with_one_seed_gives_identical_weights(tmp_path):
    """Networks are seeded from the run seed before a stage builds them, so a stage started
    alone (or again after a crash) starts from, and here ends at, the same weights."""
    import h5py
    import numpy as np

    weights = []
    for name in ("first", "second"):
        out = tmp_path / name
        result = _run("train", "--stage", "dcgan", "--dataset", "demo", "--smoke", "--out", str(out), "--seed", "3")
        assert result.returncode == 0, result.stderr[-2000:]
        with h5py.File(out / "dcgan" / "generator.weights.h5") as handle:
            arrays = []
            handle.visititems(lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
        weights.append(arrays)
    assert len(weights[0]) > 10 and len(weights[0]) == len(weights[1])
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


@pytest.mark.parametrize("devices, message", [("4", "devices 4 asked for, but this runtime has 1 CPU device(s)"),
                                              ("many", "devices must be 'all' or a positive number, got 'many'")])
def test_devices_the_runtime_lacks_are_refused_before_a_run_starts(tmp_path, capsys, devices, message):
    """`--devices` names what it wanted and what exists, and no run directory is made."""
    from mgm_tf.__main__ import main

    out = tmp_path / "run"
    assert main(["run", "--dataset", "demo", "--smoke", "--devices", devices, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()
