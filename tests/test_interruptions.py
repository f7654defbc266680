"""A runtime killed at an awkward moment (SIGKILL, in a subprocess) resumes to the result an
uninterrupted run gives, and nothing already finished is lost."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from mgm_tf import callbacks, classifier, config, dcgan
from mgm_tf.io import read_csv, recover_directory
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run, fit_stage

tf.config.experimental.enable_op_determinism()
IMAGES = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype("float32")
dataset = tf.data.Dataset.from_tensor_slices(IMAGES).batch(4)
# A killed process builds the same trainer and data by importing this module.
IMPORT_THIS = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom test_interruptions import *\n"


def small_trainer(seed=0):
    keras.utils.set_random_seed(seed)
    trainer = dcgan.DCGANTrainer(dcgan.build_dcgan_generator(base_filters=32),
                                 dcgan.build_dcgan_discriminator(base_filters=8), seed=seed)
    trainer.compile()
    return trainer


def _killed(code: str, *args) -> None:
    """Run code in a fresh Python and expect it to die by SIGKILL (it kills itself at the moment under test)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == -signal.SIGKILL, result.stdout[-2000:] + result.stderr[-3000:]


def _arrays(path) -> list:
    with h5py.File(path, "r") as handle:
        arrays = []
        handle.visititems(lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_a_backup_cut_off_while_written_falls_back_to_the_previous_one(tmp_path):
    stage_dir = tmp_path / "stage"
    _killed(IMPORT_THIS + """
import os, signal, sys
from pathlib import Path
from mgm_tf import callbacks
stage_dir = Path(sys.argv[1])
trainer = small_trainer()
original, calls = trainer.save_weights, []

def cut_off(filepath, overwrite=True):
    calls.append(filepath)
    if len(calls) < 3:
        return original(filepath, overwrite=overwrite)
    whole = stage_dir / "whole.weights.h5"
    original(str(whole))
    Path(filepath).write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # half written...
    os.kill(os.getpid(), signal.SIGKILL)  # ...when the runtime dies

trainer.save_weights = cut_off
stage_callbacks, _ = callbacks.stage_callbacks(stage_dir, 4, backup_interval=0)
trainer.fit(dataset, epochs=4, verbose=0, callbacks=stage_callbacks)
""", stage_dir)
    with pytest.raises(OSError):
        h5py.File(stage_dir / "backup" / "latest.weights.h5", "r")
    assert [row["epoch"] for row in read_csv(stage_dir / "history.csv")] == ["0", "1", "2"]

    resumed = small_trainer(seed=123)  # a fresh runtime starts from other weights
    fit_stage(resumed, dataset, stage_dir, 4, None, 1, False, "")
    uninterrupted = small_trainer()
    fit_stage(uninterrupted, dataset, tmp_path / "uninterrupted", 4, None, 1, False, "")
    assert int(resumed.g_optimizer.iterations.numpy()) == 4
    for ours, theirs in zip(resumed.generator.weights, uninterrupted.generator.weights):
        assert np.allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
    assert [row["epoch"] for row in read_csv(stage_dir / "history.csv")] == ["0", "1", "2", "3"]


def test_a_first_backup_cut_off_restarts_the_stage_from_epoch_zero(tmp_path, capsys):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # cut off, no earlier backup
    trainer = small_trainer(seed=5)
    fit_stage(trainer, dataset, tmp_path, 2, None, 1, False, "")
    assert "starts again from epoch 0" in capsys.readouterr().out
    assert int(trainer.g_optimizer.iterations.numpy()) == 2


def _smoke_config(stages):
    smoke = config.smoke("demo")
    smoke.precision, smoke.stages = "float32", list(stages)
    return smoke


def test_kill_between_saving_networks_and_marking_the_stage_done(tmp_path):
    path = tmp_path / "run"
    _killed("""
import os, signal, sys
from mgm_tf import config
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run
smoke = config.smoke("demo")
smoke.precision, smoke.stages = "float32", ["dcgan"]
run = Run.open(sys.argv[1], smoke)
Run.mark_done = lambda self, stage, info: os.kill(os.getpid(), signal.SIGKILL)
run_pipeline(run)
""", path)
    run = Run.open(path, _smoke_config(["dcgan"]))
    saved = _arrays(path / "dcgan" / "generator.weights.h5")
    assert not run.is_done("dcgan") and (path / "dcgan" / "backup" / "latest.weights.h5").exists()

    run_pipeline(run)  # resumes at the last epoch: nothing left to train, the networks are saved again
    assert run.is_done("dcgan") and not list((path / "dcgan" / "backup").glob("*.bkp"))
    assert all(np.array_equal(a, b) for a, b in zip(saved, _arrays(path / "dcgan" / "generator.weights.h5")))
    epochs = [int(row["epoch"]) for row in read_csv(path / "dcgan" / "history.csv")]
    assert epochs == list(range(run.config.dcgan.epochs))
    seconds = sum(float(row["seconds"]) for row in read_csv(path / "dcgan" / "history.csv"))
    assert run.done_info("dcgan")["train_seconds"] == pytest.approx(seconds)


def test_kill_between_the_renames_of_a_finished_folder(tmp_path):
    final, new = tmp_path / "synthetic", tmp_path / "synthetic.partial"
    for folder, text in ((final, "old"), (new, "new")):
        folder.mkdir()
        (folder / "manifest.csv").write_text(text)
    _killed("""
import os, signal, sys
from pathlib import Path
from mgm_tf import io
calls = []
rename = os.replace
def replace(source, target):
    calls.append(source)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    rename(source, target)
os.replace = replace
io.replace_directory(Path(sys.argv[1]), Path(sys.argv[2]))
""", new, final)
    assert not final.exists() and (tmp_path / "synthetic.previous" / "manifest.csv").read_text() == "old"
    recover_directory(final)  # what the export stage does first
    assert (final / "manifest.csv").read_text() == "old" and not (tmp_path / "synthetic.previous").exists()


def test_resume_keeps_one_history_and_one_kid_row_per_epoch(tmp_path):
    network = classifier.build_classifier(2)

    def feature_fn(images):
        return classifier.pooled_features(network, images, 3)

    real = feature_fn(np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8))

    def kid_monitor():
        return callbacks.KIDMonitor(lambda: np.full((4, 64, 64, 3), 128, np.uint8), feature_fn, real,
                                    tmp_path / "kid.csv", every=1, epochs=4)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt("runtime disconnected")

    first = small_trainer()
    stage_callbacks, _ = callbacks.stage_callbacks(tmp_path, 4, backup_interval=1e9)  # no backup before the end
    with pytest.raises(KeyboardInterrupt):
        first.fit(dataset, epochs=4, verbose=0, callbacks=stage_callbacks + [kid_monitor(), Interrupt()])
    assert [row["epoch"] for row in read_csv(tmp_path / "history.csv")] == ["0", "1", "2"]

    info = fit_stage(small_trainer(), dataset, tmp_path, 4, None, 1, False, "", extra_callbacks=[kid_monitor()])
    history = read_csv(tmp_path / "history.csv")
    assert [row["epoch"] for row in history] == ["0", "1", "2", "3"]
    assert [row["epoch"] for row in read_csv(tmp_path / "kid.csv")] == ["0", "1", "2", "3"]
    assert info["train_seconds"] == pytest.approx(sum(float(row["seconds"]) for row in history))
