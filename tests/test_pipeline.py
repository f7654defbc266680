"""End to end on the demo set in smoke mode, resume by stage, refusals with clear messages."""

import json

import numpy as np
import pytest

from mgm_tf import config as config_module
from mgm_tf.export import read_marker
from mgm_tf.io import read_csv
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run


def _smoke_config():
    config = config_module.smoke("demo")
    config.precision = "float32"
    return config


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run = Run.open(tmp_path_factory.mktemp("runs") / "demo", _smoke_config())
    timings = run_pipeline(run)
    return run, timings


def test_smoke_run_produces_the_run_directory(smoke_run):
    run, timings = smoke_run
    assert list(timings) == ["judge", "dcgan", "cgan", "synthesize", "filter", "srgan", "export", "report"]
    for path in ("config.json", "dcgan/generator.weights.h5", "dcgan/history.csv", "dcgan/samples/epoch_0002.png",
                 "cgan/generator.weights.h5", "cgan/config.json", "srgan/generator.weights.h5",
                 "filter/scores.csv", "filter/selected.csv", "synthetic/manifest.csv", "report/report.md",
                 "data/report.json"):
        assert (run.path / path).exists(), path
    assert (run.path / "dcgan" / "backup" / "latest.weights.h5").exists()  # kept: more epochs continue from it
    for name in ("images.npy", "conditions.npy"):  # a grey modality: what the filter and the judge score is grey
        candidates = np.load(run.path / "candidates" / name).astype(int)
        assert candidates.shape[-1] == 3 and np.array_equal(candidates[..., 0], candidates[..., 2]), name
    assert "Does each stage earn its place?" in (run.path / "report" / "report.md").read_text()
    assert (run.path / "report" / "stages.png").exists()
    assert not list((run.path / "dcgan" / "backup").glob("*.bkp"))


def test_export_matches_filter_selection(smoke_run):
    run, _ = smoke_run
    rows = read_csv(run.path / "synthetic" / "manifest.csv")
    selected = read_csv(run.path / "filter" / "selected.csv")
    assert len(rows) == len(selected) == 4  # round(0.2 × 10) = 2 per class, two classes
    assert {row["class"] for row in rows} == {"NORMAL", "PNEUMONIA"}
    first = run.path / "synthetic" / rows[0]["file"]
    assert read_marker(first)["Synthetic"] == "true"
    from PIL import Image

    with Image.open(first) as image:
        assert image.size == (256, 256) and image.mode == "L"
    # the 4 held-out demo images cannot check any class: every row is unchecked, drawn class-blind, and says so
    assert json.loads((run.path / "stages" / "synthesize.json").read_text())["class_aware_classes"] == []
    assert {row["label_status"] for row in rows} == {"unchecked"}
    assert {row["lineage"] for row in rows} == {"dcgan(class_blind)>cgan>filter>srgan"}
    for row in rows:  # the smoke preset keeps what the judge refuses: no row can be checked, and each says why
        assert "label_check is 'keep'" in row["label_reason"] and "condition drawn class-blind" in row["label_reason"]
    assert read_marker(first)["LabelStatus"] == "unchecked"
    assert "NORMAL: 2 of 2 rows unchecked" in (run.path / "synthetic" / "LABELS_UNCHECKED.txt").read_text()
    card = (run.path / "synthetic" / "README.md").read_text()
    assert "4 of 4 rows are UNCHECKED" in card and "Not** for diagnosis" in card and "| NORMAL | unchecked | 1 |" in card
    assert "shrunk to 64 px" in card and "no patient in common" in card  # the chest X-ray names carry patients


def test_export_rows_tie_to_their_candidates_by_id(smoke_run):
    from mgm_tf import srgan
    from mgm_tf.data.decode import read_image
    from mgm_tf.imaging import to_channels
    from mgm_tf.srgan import build_srgan

    run, _ = smoke_run
    rows = read_csv(run.path / "synthetic" / "manifest.csv")
    candidates = {row["id"]: row for row in read_csv(run.path / "candidates" / "candidates.csv")}
    selected = {row["id"] for row in read_csv(run.path / "filter" / "selected.csv")}
    class_names = ["NORMAL", "PNEUMONIA"]
    assert {row["candidate_id"] for row in rows} == selected
    generator, _ = build_srgan(run.config.srgan)
    generator.load_weights(str(run.path / "srgan" / "generator.weights.h5"))
    images = np.load(run.path / "candidates" / "images.npy")
    for row in rows:
        candidate = candidates[row["candidate_id"]]
        assert (row["label"], row["seed"]) == (candidate["label"], candidate["seed"])
        assert row["lineage"] == candidate["lineage"] + ">filter>srgan"
        assert row["class"] == class_names[int(row["label"])] == candidate["class"]
        assert row["file"].startswith(f"{row['class']}/demo_{row['class']}_synthetic_") and row["file"].endswith(".png")
        assert row["referee_class"] in class_names and 0.5 <= float(row["referee_probability"]) <= 1.0
        assert 0.0 <= float(row["judge_probability"]) <= 1.0 and row["label_status"] in ("checked", "unchecked")
        expected = srgan.super_resolve(generator, images[[int(row["candidate_id"])]], label="",
                                       back_projection=run.config.srgan.back_projection)
        np.testing.assert_array_equal(read_image(run.path / "synthetic" / row["file"], 1), to_channels(expected, 1)[0])


def _files(folder) -> dict:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_kill_during_export_keeps_the_previous_dataset_whole(smoke_run, tmp_path):
    """The runtime dies while a new export is being written (after 3 of its files): the previous
    synthetic/ is untouched, and running the stage again gives the uninterrupted result."""
    import shutil
    import signal
    import subprocess
    import sys

    run, _ = smoke_run
    path = tmp_path / "copy"
    shutil.copytree(run.path, path)
    before = _files(path / "synthetic")
    (path / "stages" / "export.json").unlink()
    code = ("import os, signal, sys\n"
            "from mgm_tf import config, export\nfrom mgm_tf.pipeline import run_pipeline\nfrom mgm_tf.run import Run\n"
            "written, write = [], export.atomic_write\n"
            "def dying_write(target, content):\n"
            "    written.append(target)\n"
            "    if len(written) == 4:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    write(target, content)\n"
            "export.atomic_write = dying_write\n"
            "run_pipeline(Run.open(sys.argv[1]), ['export'])\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert _files(path / "synthetic") == before
    assert len(list((path / "synthetic.partial").rglob("*.png"))) == 3
    run_pipeline(Run.open(path), ["export"])
    assert not (path / "synthetic.partial").exists() and (path / "synthetic" / "README.md").exists()
    run_pipeline(Run.open(path), ["report"])  # the card's measurements come from the report stage
    after = _files(path / "synthetic")
    card = after.pop("README.md").decode()
    assert after == {name: content for name, content in before.items() if name != "README.md"}
    assert "run `copy`" in card and "## Measured (64 px grey" in card  # the card names the run it describes


def test_report_names_parameters_and_smoke_status(smoke_run):
    from mgm_tf.gan import count_parameters
    from mgm_tf.refinement import build_conditional

    run, _ = smoke_run
    text = (run.path / "report" / "report.md").read_text()
    refiner = build_conditional(run.config.cgan, 2, grey=run.grey_output())[0]  # the configured G2
    trainable = count_parameters(refiner)["trainable"]
    assert "Smoke test" in text and f"| {trainable:,} |" in text
    assert "678,337" in text and "bicubic" in text
    info = json.loads((run.path / "stages" / "srgan.json").read_text())
    assert info["evaluation"]["bicubic"]["psnr"]["mean"] > 20


def test_time_estimate_before_any_stage_has_run(tmp_path):
    """Notebooks time every stage before training: the residual refiner must not need G1's weights."""
    from mgm_tf import timing

    run = Run.open(tmp_path / "fresh", _smoke_config())
    rows = timing.estimate(run, run.prepared(), steps=1)
    assert not (run.path / "dcgan" / "generator.weights.h5").exists()
    assert {"dcgan", "cgan", "srgan"} <= {row["stage"] for row in rows}
    pipeline = [row for row in rows if row["stage"] in ("dcgan", "cgan", "srgan")]
    assert all(row["steps"] > 0 and row["seconds"] > 0 and row["seconds_per_step"] >= 0 for row in pipeline)


def test_rerun_skips_completed_stages(smoke_run):
    run, _ = smoke_run
    before = (run.path / "dcgan" / "generator.weights.h5").stat().st_mtime_ns
    timings = run_pipeline(Run.open(run.path, _smoke_config()), ["dcgan", "cgan", "filter"])
    assert timings == {}
    assert (run.path / "dcgan" / "generator.weights.h5").stat().st_mtime_ns == before


def test_different_config_for_existing_run_is_refused(smoke_run):
    run, _ = smoke_run
    changed = _smoke_config()
    changed.dcgan.learning_rate = 2e-4  # more epochs would be allowed: training continues (tests/test_resume.py)
    with pytest.raises(ValueError, match=r"dcgan.learning_rate: 0.0001 → 0.0002"):
        Run.open(run.path, changed)


def test_stage_without_its_input_is_refused(tmp_path):
    run = Run.open(tmp_path / "fresh", _smoke_config())
    with pytest.raises(ValueError, match=r"stage 'synthesize' needs judge, dcgan, cgan"):
        run_pipeline(run, ["synthesize"])


def test_candidates_are_regenerable_from_their_seeds(smoke_run):
    from mgm_tf import sampling
    from mgm_tf.synthesis import load_generators

    run, _ = smoke_run
    rows = read_csv(run.path / "candidates" / "candidates.csv")
    images = np.load(run.path / "candidates" / "images.npy")
    g1, g2, per_class = load_generators(run, ["NORMAL", "PNEUMONIA"])
    again, _ = sampling.refine_samples(g1, g2, np.array([int(rows[3]["label"])]), np.array([int(rows[3]["seed"])]), label="")
    assert np.abs(again[0].astype(int) - images[3]).max() <= 1


def test_evaluate_and_compare_on_smoke_run(smoke_run, tmp_path):
    from mgm_tf.evaluation.compare import compare_runs, write_comparison
    from mgm_tf.evaluation.evaluate import ROWS, evaluate_run

    run, _ = smoke_run
    opened = Run.open(run.path)
    opened.config.evaluation.baselines = True  # smoke preset skips them; every row is measured here
    result = evaluate_run(opened)
    assert list(result["rows"]) == list(ROWS)
    assert all(row["status"] == "measured" for row in result["rows"].values())
    assert result["extractors"] == {"domain": "domain_cnn(demo, referee)", "inception": "not computed",
                                    "standard_fid": False}
    full = result["rows"]["MixGANMed"]
    assert full["num_images"] == 4 and full["output_size"] == 256 and full["labelled"]
    assert full["domain"]["space"] == "domain_cnn(demo, referee)" and full["domain"]["num_real"] == 12
    assert 0.0 <= full["pixels"]["memorisation"]["flagged_fraction"] <= 1.0
    assert result["rows"]["DCGAN"]["labelled"] is False
    assert set(result["utility"]) == {"real", "real25%", "MixGANMed"}
    assert set(result["utility"]["MixGANMed"]) == {"synthetic_only", "real+synthetic", "real25%+synthetic"}
    assert result["utility"]["real"]["n_test"] == 2  # the evaluation part: the other 2 held-out images calibrate
    report = (run.path / "report" / "report.md").read_text()
    assert "## Evaluation" in report and "not standard FID" in report
    for figure in ("methods_side_by_side.png", "nearest_pairs.png", "nearest_distances.png", "kid_vs_time.png"):
        assert (run.path / "report" / figure).exists(), figure
    kid_rows = (run.path / "cgan" / "kid.csv").read_text().splitlines()
    assert kid_rows[0].startswith("epoch,kid") and len(kid_rows) == 3
    table = compare_runs([run.path])
    assert [row["method"] for row in table] == list(ROWS)
    text = write_comparison(table, tmp_path)
    assert "MixGANMed" in text and (tmp_path / "compare.json").exists()


def test_an_export_that_would_lose_a_class_stops_before_replacing_the_previous_one(smoke_run, tmp_path):
    import shutil

    from mgm_tf.export import stage_export
    from mgm_tf.io import write_csv

    run, _ = smoke_run
    copy = Run.open(shutil.copytree(run.path, tmp_path / "copy"))
    before = _files(copy.path / "synthetic")
    selected = read_csv(copy.path / "filter" / "selected.csv")
    write_csv(copy.path / "filter" / "selected.csv", [row for row in selected if row["class"] == "NORMAL"],
              tuple(selected[0]))
    with pytest.raises(ValueError, match=r"no image of class\(es\) \['PNEUMONIA'\].*selected.csv"):
        stage_export(copy, copy.prepared())
    assert _files(copy.path / "synthetic") == before


def test_teaching_figures_put_the_untrained_network_next_to_the_trained_one(smoke_run):
    """The stage notebooks' before/after figures: the same noise through a fresh G1 and the
    trained one (the fresh one is near-uniform, the trained one is not the same images), and
    held-out images through bicubic, a fresh SRGAN, the trained SRGAN and the real image."""
    from mgm_tf import notebook_figures

    run, _ = smoke_run
    g1 = notebook_figures.untrained_and_trained_g1(run, 2, count=4)
    assert g1.shape[0] == 8 and g1.dtype == np.uint8
    assert not np.array_equal(g1[:4], g1[4:])
    sr = notebook_figures.untrained_and_trained_srgan(run, run.prepared(), count=2)
    assert sr.shape[0] == 8 and sr.shape[1] == run.prepared().images_hr.shape[1]
    real = sr[6:].astype(float)
    assert np.abs(sr[:2].astype(float) - real).mean() < 60  # bicubic of the real image is near it


def test_checked_facts_raise_when_one_fails_and_missing_figures_are_errors(smoke_run, tmp_path, capsys):
    from mgm_tf import colab, notebook_checks

    run, _ = smoke_run
    notebook_checks.training_facts(run, "dcgan")
    notebook_checks.filter_facts(run)
    notebook_checks.export_facts(run)
    assert "FAILS" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="failed: a fact that does not hold"):
        notebook_checks.hold({"a fact that holds": True, "a fact that does not hold": False})
    assert "FAILS: a fact that does not hold" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not produced"):
        colab.show(tmp_path / "missing.png")
