"""What the notebooks call: the setup banner, Drive, Kaggle and offline dataset fixtures, opening
a run, running stages while showing them, time estimates, and showing what people look at, with
the facts CI checks. Notebooks hold no logic (STYLE.md 8): every picture or table they show
comes from here (the runtime environment itself — Colab, smoke mode, Drive — is `mgm_tf.colab`).

Imports of the pipeline happen inside the functions: the setup cell imports this module on a
fresh runtime before Keras loads, and `setup()` chooses the backend before Keras loads and the
precision policy before any network is built.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from mgm_tf import config as config_module
from mgm_tf.colab import (LiveImage, connect_drive, data_source, download_synthetic, drive_runs,  # noqa: F401
                          in_colab, mirror_to_drive, quiet_tensorflow, run_directory, set_smoke_mode, show,
                          show_figure, show_markdown, smoke_mode, tensorboard)
from mgm_tf.notebook_checks import (export_facts, filter_facts, metric_facts, table_facts, training_facts,  # noqa: F401
                                    variety_facts)
from mgm_tf.notebook_figures import show_untrained_and_trained_g1, show_untrained_and_trained_srgan  # noqa: F401

# Full-size training time (paper settings: 1,000 epochs for each GAN, the SRGAN's 100 epochs on 96 px
# crops) on a 2-core AVX2 CPU: measured step times × steps, 17.6 + 26.4 + 49.6 h (benchmarks/README.md).
FULL_SIZE_CPU_HOURS = 95


def setup(precision: str = "auto", full_size: bool = False, backend: str = "") -> str:
    """Choose the Keras backend (the form's field; "" keeps $KERAS_BACKEND, else TensorFlow),
    print versions, device and the precision policy in use (and apply it); returns the policy.
    A full-size notebook on a runtime without a GPU says so before any long cell."""
    from mgm_tf import backend as backends

    if backends.choose(backend or None) == "tensorflow" or importlib.util.find_spec("tensorflow") is not None:
        quiet_tensorflow()  # on JAX too where TensorFlow is installed: Keras loads it for its data adapters
    from mgm_tf import __version__
    from mgm_tf.device import accelerator, apply_policy, describe_device

    policy = apply_policy(precision)
    print(f"mgm_tf {__version__} | Python {sys.version.split()[0]} | Colab: {in_colab()} | smoke mode: {smoke_mode()}")
    print(describe_device())
    if smoke_mode():
        print(config_module.SMOKE_BANNER)
    elif full_size and accelerator() is None:
        warn_without_gpu()
    return policy


def warn_without_gpu() -> None:
    print("\n" + "!" * 100 + f"\nNO GPU: this notebook trains at the paper's size, about {FULL_SIZE_CPU_HOURS} hours "
          "on a 2-core CPU (measured step times × steps; the resources cell below measures this runtime).\n"
          "In Colab: Runtime → Change runtime type → T4 GPU, then run the setup cell again. Or set the epochs and "
          "sr_epochs fields to a few epochs, or tick smoke_mode, to see the pipeline work on this CPU.\n" + "!" * 100)


def open_run(name: str, dataset: str, data_dir: str = "", epochs: int = 0, num_images: int = 0,
             precision: str = "auto", smoke: bool = False, handle: str = "", sr_epochs: int = 0, devices: str = "1"):
    """Open (or resume) the run `name` for `dataset`, with the notebook's form fields as
    overrides of the preset (0 or "" keeps it): `epochs` of the DCGAN and conditional GAN,
    `sr_epochs` of the SRGAN, `handle` a Kaggle handle (owner/slug or owner/slug/versions/N),
    `devices` "1", N or "all" (data parallel over a runtime's GPUs or TPU cores).
    Smoke mode (the form, or MGM_SMOKE=1) uses the tiny preset; unticking the form switches it
    off again. Reopening with more epochs continues training. While its stages run, each new
    sample grid replaces the last in the cell's output, and with Drive connected the run is
    copied there after every stage and training backup. A full-size run on a runtime without a
    GPU is refused unless `epochs` is set: "Run all" must not start a ~95-hour job by default."""
    from mgm_tf.run import Run, RunHooks

    print(set_smoke_mode(smoke))
    smoke = smoke_mode()
    dataset = "folder" if data_dir else dataset
    config = config_module.preset(dataset, smoke_test=smoke)
    config.data_dir, config.handle = data_dir or None, handle or None
    config_module.override(config, epochs=epochs, sr_epochs=sr_epochs, num_images=num_images, precision=precision,
                           devices=devices)
    if not smoke and dataset != "demo" and not epochs:
        from mgm_tf.device import accelerator

        if accelerator() is None:
            warn_without_gpu()
            raise ValueError(f"no GPU on this runtime: the paper's size would train for about {FULL_SIZE_CPU_HOURS} hours "
                             "here. Set the epochs field (a few epochs to try it on this CPU), tick smoke_mode, or switch "
                             "to a T4 GPU runtime and run the setup cell again")
    run = Run.open(run_directory(name), config)
    run.hooks = RunHooks(after_stage=lambda stage: mirror_to_drive(run.path),
                         after_backup=lambda: mirror_to_drive(run.path), on_sample_grid=LiveImage(width=480))
    state = "resuming" if any(run.is_done(stage) for stage in config.stages) else "new"
    copy = f"; copied to Drive: {drive_runs() / run.path.name}" if drive_runs() else ""
    print(f"run directory: {run.path} ({state}{copy}); GAN epochs {config.dcgan.epochs} (paper: 1,000), SRGAN epochs "
          f"{config.srgan.epochs}, {config.filter.keep_fraction * config.filter.candidates_per_class:.0f} exported "
          "images per class")
    return run


def require(run, *stages) -> None:
    """Stages this notebook builds on. In smoke mode missing ones are run here (seconds), so a
    notebook runs alone; otherwise the message names the notebooks that make them."""
    missing = [stage for stage in stages if not run.is_done(stage)]
    if not missing:
        return
    if smoke_mode():
        print(f"smoke mode: running the stages this notebook needs first: {', '.join(missing)}")
        run_stages(run, *missing)
        return
    made_by = {"judge": "01", "dcgan": "01", "cgan": "02", "synthesize": "03", "filter": "03", "srgan": "04",
               "export": "04", "report": "04"}
    raise RuntimeError(f"run {run.path} has not finished {', '.join(missing)} yet: run notebook(s) "
                       f"{', '.join(sorted({made_by.get(stage, '00') for stage in missing}))} with the same run_name "
                       "first, or use 00_quickstart for everything at once")


def run_stages(run, *stages):
    from mgm_tf.pipeline import run_pipeline

    return run_pipeline(run, list(stages) or None)


def show_resources(run, prepared) -> list[dict]:
    """This runtime (GPU and its memory, CPU cores, memory, free disk) and how long the run's
    configuration will take on it, evaluation and baselines included: a few train steps of each
    stage measured here × the steps the configuration asks for."""
    from mgm_tf import timing
    from mgm_tf.device import describe_hardware

    print(describe_hardware(run.path))
    rows = timing.estimate(run, prepared)
    lines = ["| stage | part | steps | measured s/step | time here |", "|---|---|---|---|---|"]
    lines += [f"| {row['stage']} | {row['part']} | {row['steps']:,} | {row['seconds_per_step']:.3f} | "
              f"{timing.format_duration(row['seconds'])} |" for row in rows]
    for part in ("pipeline", "evaluation"):
        total = sum(row["seconds"] for row in rows if row["part"] == part)
        lines.append(f"| **{part}** | | | | **{timing.format_duration(total)}** |")
    show_markdown("\n".join(lines) + "\n\nSynthesis, the filter, the export and the measurements add seconds to "
                  "minutes. Steps are measured after warm-up on random data of the configured shapes.")
    return rows


def show_estimate_against_measured(estimate: list[dict], timings: dict) -> None:
    """After training: each stage's estimate (the resources cell's) next to the time it took."""
    from mgm_tf import timing

    rows = timing.against_measured(estimate, timings)
    if not rows:
        print("no stage of the estimate ran in this session (finished stages are skipped when a run resumes)")
        return
    lines = ["| stage | estimated | took | took / estimated |", "|---|---|---|---|"]
    lines += [f"| {row['stage']} | {timing.format_duration(row['predicted'])} | {timing.format_duration(row['measured'])} "
              f"| {row['ratio']:.2f} |" for row in rows if row["ratio"] is not None]
    show_markdown("\n".join(lines) + "\n\nA stage's time includes what its steps do not: building and tracing its "
                  "networks, saving, sample grids and (stage 2) KID during training.")


def show_train_step(trainer_class) -> None:
    """A trainer's forward pass and losses (`compute_losses`, the same on every backend) and the
    gradient step of the backend in use (`GANTrainer.tensorflow_train_step` or `jax_train_step`)."""
    from mgm_tf import backend

    show_code(trainer_class.compute_losses)
    show_code(trainer_class.jax_train_step if backend.is_jax() else trainer_class.tensorflow_train_step)


def show_code(*functions) -> None:
    """The source of functions (a trainer's `train_step`, a loss): the code a reader came to learn."""
    import inspect

    source = "\n\n".join(inspect.getsource(function) for function in functions)
    try:
        from IPython.display import Code

        from mgm_tf.colab import _display

        _display(Code(source, language="python"))
    except ImportError:
        print(source)


def show_samples(run, stage: str) -> None:
    """The latest fixed-noise sample grid of a trained stage."""
    show(sample_grids(run, stage)[-1])


def sample_grids(run, stage: str) -> list[Path]:
    """A trained stage's fixed-noise sample grids, oldest first; a ValueError when there are none."""
    grids = sorted((run.path / stage / "samples").glob("epoch_*.png"))
    if not grids:
        raise ValueError(f"no sample grids in {run.path / stage / 'samples'}: run the {stage} stage first")
    return grids


def show_history(run, stage: str) -> None:
    from mgm_tf.io import read_history
    from mgm_tf.plots import curves

    history = read_history(run.path / stage / "history.csv")
    series = {name: values for name, values in history.items() if name in ("d_loss", "g_loss", "content", "perceptual")}
    if series:
        show_figure(curves(series, title=f"{stage}: losses per epoch (parity with the paper, not a quality measure)"))


def show_counts(prepared) -> None:
    from mgm_tf.plots import _pyplot
    from mgm_tf.data.prepare import summary_table

    print(summary_table(prepared))
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 2.6))
    counts = [prepared.report["counts"].get(name, {}).get("total", 0) for name in prepared.class_names]
    axis.bar(prepared.class_names, counts, color="tab:blue")
    axis.set_ylabel("images")
    axis.set_title(f"{prepared.name}: images per class")
    figure.tight_layout()
    show_figure(figure)


def show_class_previews(prepared) -> None:
    if smoke_mode() and prepared.name != "demo":
        print(f"SMOKE TEST FIXTURES: generated blobs in the {prepared.name} folder layout, not real images.")
    show(*sorted((prepared.path / "previews").glob("*.png")))


def show_preprocessing(run, prepared, count: int = 4) -> None:
    """Raw files (decoded, resized only) next to the prepared images (after the modality steps).
    The raw side comes from the prepared data (`prepare.RAW_PREVIEW`), so a run restored from
    Drive shows it without downloading the dataset again; data prepared before that was kept
    reads the files, downloading them if they are not on this runtime."""
    from mgm_tf.data import prepare, sources
    from mgm_tf.plots import image_grid

    saved = prepared.path / prepare.RAW_PREVIEW
    chosen = np.arange(min(count, len(prepared.files)))
    if saved.exists():
        raw = np.load(saved)[chosen]
    else:
        manifest = run.manifest()
        raw = prepare.raw_images(manifest, sources.download(manifest, run.config.data_dir),
                                 [prepared.files[i] for i in chosen])
    steps = ", ".join(prepared.report.get("preprocessing", [])) or "none"
    show_figure(image_grid(np.concatenate([raw, prepared.images_hr[chosen]]), columns=len(chosen),
                           title=f"top: raw; bottom: after {steps}", cell=2.0))


def show_filter(run) -> None:
    show(run.path / "filter" / "scores.png", run.path / "filter" / "best_and_worst.png")


def show_synthetic(run) -> None:
    figures = sorted((run.path / "report").glob("real_vs_synthetic_*.png"))
    if not figures:
        raise ValueError(f"no real_vs_synthetic_*.png in {run.path / 'report'}: run the report stage first")
    show(*figures)


def show_evaluation(run) -> None:
    """The evaluation tables and figures of report/metrics.json."""
    from mgm_tf.evaluation.evaluate import load_metrics
    from mgm_tf.evaluation.comparison_report import evaluation_markdown

    metrics = load_metrics(run.path)
    if not metrics:
        raise ValueError(f"{run.path / 'report' / 'metrics.json'} is missing: run the evaluation first")
    show_markdown("\n".join(line for line in evaluation_markdown(metrics) if not line.startswith("![")))
    names = ("methods_side_by_side.png", "label_disagreements.png", "nearest_pairs.png", "nearest_distances.png",
             "kid_vs_time.png")
    show(*(run.path / "report" / name for name in names if (run.path / "report" / name).exists()))


def paper_tables(run_paths) -> list[dict]:
    """The cross-run table of `python -m mgm_tf compare`, shown as markdown; runs without
    metrics are listed and skipped."""
    from mgm_tf.evaluation.compare import compare_runs, comparison_markdown

    ready = [Path(p) for p in run_paths if (Path(p) / "report" / "metrics.json").exists()]
    missing = [str(p) for p in run_paths if Path(p) not in ready]
    if missing:
        print(f"no metrics yet (skipped): {', '.join(missing)}")
    table = compare_runs(ready) if ready else []
    if table:
        show_markdown(comparison_markdown(table))
    return table


def find_runs(folder: str = "runs") -> list[Path]:
    """Run directories with report/metrics.json under the local runs folder (runs/smoke in smoke
    mode) and, when Drive is connected, under its copy of the runs (a run found in both counts
    once, from this disk). In smoke mode with none yet, a tiny demo run is made and evaluated, so
    the notebook that gathers runs also runs alone."""
    roots = [Path(folder) / "smoke"] if smoke_mode() else [Path(folder)] + ([drive_runs()] if drive_runs() else [])
    found: dict[str, Path] = {}
    for root in roots:
        for metrics in sorted(root.glob("*/report/metrics.json")):
            found.setdefault(metrics.parent.parent.name, metrics.parent.parent)
    if not found and smoke_mode():
        from mgm_tf.evaluation.evaluate import evaluate_run

        run = open_run("tables_demo", "demo", smoke=True)
        run_stages(run)
        evaluate_run(run)
        found[run.path.name] = run.path
    return list(found.values())


def show_dataset_card(dataset: str) -> None:
    """What the data is, where it comes from, under which licence, and how to cite it."""
    from mgm_tf.data import manifests, sources

    manifest = manifests.load_manifest(dataset)
    handle = manifest.kaggle_handle
    source = handle or manifest.source.get("kaggle_competition") or manifest.source.get("path")
    version = ("pinned version" if manifests.is_pinned(handle) else "latest version, recorded when downloaded") \
        if handle else "fixed copy"
    print(f"{manifest.title}\n  {manifest.modality}; classes: {', '.join(manifest.class_names)}")
    print(f"  source: {source} ({version}; here: {sources.availability(manifest)}) {manifest.source.get('url', '')}")
    print(f"  licence: {manifest.licence}\n  cite: {manifest.citation}")


def stage_networks(run, stage: str, num_classes: int) -> dict:
    """The networks a stage trains, built from the run's config (untrained), by name."""
    if stage == "dcgan":
        from mgm_tf.dcgan import build_dcgan, g1_classes

        generator, discriminator = build_dcgan(run.config.dcgan, g1_classes(run, num_classes), run.grey_output())
    elif stage == "cgan":
        from mgm_tf.refinement import build_conditional

        generator, discriminator = build_conditional(run.config.cgan, num_classes, run.grey_output())
    elif stage == "srgan":
        from mgm_tf.srgan import build_srgan

        generator, discriminator = build_srgan(run.config.srgan)
    else:
        raise ValueError(f"stage {stage!r} trains no networks; choose dcgan, cgan or srgan")
    return {"generator": generator, "discriminator": discriminator}


def show_networks(run, stage: str, num_classes: int) -> None:
    """Keras summaries of the stage's generator and discriminator, as this run builds them."""
    for network in stage_networks(run, stage, num_classes).values():
        network.summary(line_length=110, expand_nested=False, show_trainable=False)


def show_sample_progress(run, stage: str, count: int = 3) -> None:
    """Fixed-noise sample grids from early, middle and last epochs: what training changed."""
    grids = sample_grids(run, stage)
    show(*sorted({grids[round(i * (len(grids) - 1) / max(1, count - 1))] for i in range(count)}))


def show_super_resolution(run) -> None:
    """PSNR/SSIM of the SRGAN and of bicubic upsampling on held-out real images."""
    evaluation = run.done_info("srgan").get("evaluation", {})
    if evaluation.get("status"):
        print(f"PSNR/SSIM {evaluation['status']}")
        return
    print(f"{evaluation.get('num_images')} held-out real images ({evaluation.get('split')} split); "
          f"VGG19 weights: {run.done_info('srgan').get('vgg_weights')}")
    for method in ("bicubic", "srgan"):
        scores = evaluation[method]
        print(f"  {method:8s} PSNR {scores['psnr']['mean']:.2f} ± {scores['psnr']['std']:.2f} dB   "
              f"SSIM {scores['ssim']['mean']:.3f} ± {scores['ssim']['std']:.3f}")


def report_section(run, heading: str) -> str:
    """One "## heading" section of the run's report.md, figure links left out; a ValueError names
    the report and the heading when the report lacks it (the report stage has not run)."""
    path = run.path / "report" / "report.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if f"## {heading}" not in text:
        raise ValueError(f"{path} has no section '{heading}': run the report stage first")
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if not line.startswith("!["))


def show_export_check(run) -> None:
    """The report's section on the exported dataset: each measure next to the real images' value."""
    show_markdown("### The exported dataset, measured" + report_section(run, "The exported dataset, measured"))


def show_stage_value(run) -> None:
    """The report's stage table: each stage against its input on held-out real images, with the
    verdicts, the filter against a random selection, and real images beside every stage."""
    show_markdown("### Does each stage earn its place?" + report_section(run, "Does each stage earn its place?"))
    figure = run.path / "report" / "stages.png"
    if not figure.exists():
        raise ValueError(f"{figure} is missing: run the report stage first")
    show(figure)
