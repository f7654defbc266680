"""Where the code runs: smoke mode switched on and off by the form, the offline cache given back,
Kaggle credentials named, Colab's kagglehub cache path, Google Drive mirrored (and its failures
falling back to local), the export zipped, and the hooks that show training live."""

import os
import sys
import types

import numpy as np
import pytest

from mgm_tf import colab
from mgm_tf.data import sources


@pytest.fixture
def clean_state(monkeypatch):
    """The colab module's process state and the variables it touches, restored afterwards."""
    monkeypatch.setattr(colab, "_STATE", {"smoke_from_form": False, "offline_cache": None, "previous_cache": None,
                                          "drive_runs": None})
    for name in (colab.SMOKE_VARIABLE, colab.KAGGLE_CACHE_VARIABLE, "KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_unticking_smoke_mode_switches_it_and_the_offline_cache_off(clean_state, tmp_path):
    clean_state.setenv(colab.KAGGLE_CACHE_VARIABLE, "/my/kagglehub")
    assert colab.set_smoke_mode(True).startswith("smoke mode: on (the form")
    colab.use_offline_cache(tmp_path / "fixtures")
    assert colab.smoke_mode() and os.environ[colab.KAGGLE_CACHE_VARIABLE] == str(tmp_path / "fixtures")
    assert colab.set_smoke_mode(False) == "smoke mode: off"
    assert not colab.smoke_mode() and os.environ[colab.KAGGLE_CACHE_VARIABLE] == "/my/kagglehub"


def test_smoke_mode_set_outside_the_notebook_stays_on_and_says_why(clean_state):
    clean_state.setenv(colab.SMOKE_VARIABLE, "1")
    line = colab.set_smoke_mode(False)
    assert colab.smoke_mode() and "MGM_SMOKE=1 is set in the environment" in line and "field is off" in line


def test_kaggle_credentials_are_named_never_shown(clean_state, tmp_path):
    clean_state.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    assert colab.kaggle_credentials() == ""
    clean_state.setenv("KAGGLE_USERNAME", "someone")
    clean_state.setenv("KAGGLE_KEY", "secret")
    assert colab.kaggle_credentials() == "legacy username/key"
    clean_state.setenv("KAGGLE_API_TOKEN", "KGAT_secret")
    assert colab.kaggle_credentials() == "KAGGLE_API_TOKEN"


def test_colab_cache_paths_record_what_is_known_of_the_version():
    assert sources.recorded_version("/root/.cache/kagglehub/datasets/o/s/versions/4", "o/s") == "4"
    assert sources.recorded_version("/kaggle/input/chest-xray-pneumonia", "o/s/versions/2") == "2 (Colab cache)"
    assert sources.recorded_version("/kaggle/input/leukemia", "o/s").startswith("unknown (Colab cache")
    assert sources.recorded_version("/data/my_folder", "") == ""


def test_mirror_copies_new_and_changed_files_only(tmp_path):
    source, target = tmp_path / "run", tmp_path / "drive" / "run"
    (source / "dcgan").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "dcgan" / "weights.h5").write_bytes(b"1")
    assert colab.mirror(source, target) == 2 and (target / "dcgan" / "weights.h5").read_bytes() == b"1"
    assert colab.mirror(source, target) == 0  # nothing changed
    (source / "dcgan" / "weights.h5").write_bytes(b"22")
    assert colab.mirror(source, target) == 1 and (target / "dcgan" / "weights.h5").read_bytes() == b"22"
    assert not list(target.rglob("*.tmp"))


def test_a_new_runtime_restores_the_run_from_drive(clean_state, tmp_path):
    drive = tmp_path / "drive"
    (drive / "demo_run").mkdir(parents=True)
    (drive / "demo_run" / "config.json").write_text('{"dataset": "demo"}')
    clean_state.setitem(colab._STATE, "drive_runs", drive)
    local = colab.run_directory("demo_run", local_root=tmp_path / "runs")
    assert (local / "config.json").read_text() == '{"dataset": "demo"}'
    (local / "more.txt").write_text("trained")
    assert colab.mirror_to_drive(local) == 1 and (drive / "demo_run" / "more.txt").exists()


def test_drive_that_cannot_be_mounted_falls_back_to_this_disk(clean_state, capsys):
    failing = types.ModuleType("google.colab.drive")

    def mount(path):
        raise RuntimeError("the user declined")

    failing.mount = mount
    package = types.ModuleType("google.colab")
    package.drive = failing
    clean_state.setitem(sys.modules, "google", types.ModuleType("google"))
    clean_state.setitem(sys.modules, "google.colab", package)
    clean_state.setitem(sys.modules, "google.colab.drive", failing)
    clean_state.setattr(colab, "DRIVE_ROOT", colab.Path("/nonexistent-drive-root"))
    assert colab.connect_drive(True) is None and colab.drive_runs() is None
    assert "could not be mounted (RuntimeError: the user declined)" in capsys.readouterr().out
    assert colab.connect_drive(False) is None


def test_the_export_zips_with_its_card(smoke_run_dir, tmp_path, clean_state):
    import zipfile

    archive = colab.download_synthetic(types.SimpleNamespace(path=smoke_run_dir))
    with zipfile.ZipFile(archive) as handle:
        names = handle.namelist()
    assert "manifest.csv" in names and "README.md" in names and any(name.endswith(".png") for name in names)


@pytest.fixture(scope="module")
def smoke_run_dir(tmp_path_factory):
    from mgm_tf import config
    from mgm_tf.pipeline import run_pipeline
    from mgm_tf.run import Run, RunHooks

    configured = config.smoke("demo")
    configured.precision = "float32"
    configured.stages = ["judge", "dcgan", "cgan", "synthesize", "filter", "srgan", "export"]
    run = Run.open(tmp_path_factory.mktemp("runs") / "demo", configured)
    heard = {"stages": [], "backups": 0, "grids": []}
    run.hooks = RunHooks(after_stage=heard["stages"].append,
                         after_backup=lambda: heard.__setitem__("backups", heard["backups"] + 1),
                         on_sample_grid=heard["grids"].append)
    run_pipeline(run)
    assert heard["stages"] == configured.stages  # the Drive copy follows every stage
    assert heard["backups"] >= 3  # and the last backup of each GAN stage
    assert {path.parent.parent.name for path in heard["grids"]} == {"dcgan", "cgan", "srgan"}
    assert all(path.exists() for path in heard["grids"])
    return run.path


def test_live_image_replaces_each_stages_grid_in_place(tmp_path, monkeypatch):
    """A new grid of a stage updates that stage's picture (a display handle); another stage gets
    a picture of its own; outside IPython nothing is shown."""
    from mgm_tf.plots import save_grid

    shown = []

    class Handle:
        def update(self, item):
            shown.append("update")

    display_module = types.ModuleType("IPython.display")
    display_module.display = lambda item, display_id=None: shown.append("display") or (Handle() if display_id else None)
    display_module.Image = lambda data, format: (format, len(data))
    ipython = types.ModuleType("IPython")
    ipython.display = display_module
    paths = [tmp_path / "dcgan/samples/epoch_0001.png", tmp_path / "dcgan/samples/epoch_0002.png",
             tmp_path / "cgan/samples/epoch_0001.png"]
    for path in paths:
        save_grid(np.zeros((2, 8, 8, 1), np.uint8), path)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    colab.LiveImage()(paths[0])
    assert shown == []
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    live = colab.LiveImage()
    for path in paths:
        live(path)
    assert shown == ["display", "update", "display"]


def test_quiet_tensorflow_lowers_tensorflows_python_logger_to_errors(monkeypatch):
    """TensorFlow's retracing and deprecation warnings go through its Python logger; after
    quiet_tensorflow only errors are shown, also when TensorFlow was imported before."""
    import logging

    pytest.importorskip("tensorflow")
    logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(logger, "level", logging.WARNING)
    colab.quiet_tensorflow()
    assert logger.getEffectiveLevel() == logging.ERROR
    assert not logger.isEnabledFor(logging.WARNING)


def test_a_full_size_run_without_a_gpu_is_refused_unless_the_epochs_are_set(clean_state, tmp_path, capsys):
    """"Run all" on a CPU runtime must not start the paper's ~95-hour training: open_run refuses,
    naming the fields that make it a run this CPU can do; with epochs set it opens."""
    from mgm_tf import device, notebook

    clean_state.setattr(device, "accelerator", lambda: None)
    clean_state.setattr(notebook, "run_directory", lambda name: tmp_path / name)
    with pytest.raises(ValueError, match="no GPU on this runtime.*epochs field"):
        notebook.open_run("xray", "pneumonia_xray")
    assert not (tmp_path / "xray").exists()
    assert "NO GPU" in capsys.readouterr().out
    run = notebook.open_run("xray", "pneumonia_xray", epochs=2)
    assert run.config.dcgan.epochs == 2
    assert notebook.open_run("quick", "demo").config.dataset == "demo"  # the demo is sized for a CPU


def test_sample_grid_lays_bicubic_over_srgan_in_two_rows(tmp_path):
    """The SRGAN's grid: 4 bicubic images over the 4 SRGAN images, titled, as wide as an 8-column
    grid (so each 256-px image is shown twice as large as in one row of 8)."""
    import cv2

    from mgm_tf.callbacks import SampleGrid

    images = np.linspace(-1, 1, 8 * 32 * 32 * 3, dtype=np.float32).reshape(8, 32, 32, 3)
    shapes = {}
    for columns, titles in ((8, None), (4, ["bicubic ×4"] * 4 + ["SRGAN ×4"] * 4)):
        grid = SampleGrid(lambda: images, tmp_path / str(columns), every=1, epochs=1, title="srgan",
                          columns=columns, titles=titles)
        grid.on_epoch_end(0)
        shapes[columns] = cv2.imread(str(tmp_path / str(columns) / "epoch_0001.png")).shape[:2]
    (height_8, width_8), (height_4, width_4) = shapes[8], shapes[4]
    assert abs(width_4 - width_8) <= 0.1 * width_8
    assert 0.45 <= height_4 / width_4 <= 0.75 and height_8 / width_8 <= 0.3
