"""What the notebooks call: where the code runs (Colab or not, smoke mode, Google Drive, offline
dataset fixtures, the setup banner), opening a run, running stages, and showing what people
look at. Notebooks hold no logic (STYLE.md 8): every picture or table they show comes from here.

Imports of the pipeline happen inside the functions: the setup cell imports this module on a
fresh runtime before TensorFlow loads, and `setup()` chooses the precision policy before any
network is built.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from mgm_tf import config as config_module

SMOKE_VARIABLE = "MGM_SMOKE"
DRIVE_ROOT = Path("/content/drive")
DRIVE_RUNS = DRIVE_ROOT / "MyDrive" / "mgm_tf_runs"


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def smoke_mode() -> bool:
    """MGM_SMOKE=1: tiny sizes and a handful of steps (CI, quick checks). Not results."""
    return os.environ.get(SMOKE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def setup(precision: str = "auto") -> str:
    """Print versions, device and the precision policy in use (and apply it); returns the policy."""
    from mgm_tf import __version__
    from mgm_tf.device import apply_policy, describe_device

    policy = apply_policy(precision)
    print(f"mgm_tf {__version__} | Python {sys.version.split()[0]} | Colab: {in_colab()} | smoke mode: {smoke_mode()}")
    print(describe_device())
    if smoke_mode():
        print(config_module.SMOKE_BANNER)
    return policy


def mount_drive() -> bool:
    """Mount Google Drive once (no-op when already mounted or outside Colab)."""
    if not in_colab():
        return False
    if not (DRIVE_ROOT / "MyDrive").exists():
        from google.colab import drive  # available only in Colab

        drive.mount(str(DRIVE_ROOT))
    return True


def run_directory(name: str, use_drive: bool = True, local_root: str | Path = "runs") -> Path:
    """Where a run lives: Google Drive in Colab (survives a disconnect), ./runs/ elsewhere,
    ./runs/smoke/ in smoke mode. Re-running a notebook with the same directory resumes."""
    if smoke_mode():
        return Path(local_root) / "smoke" / name
    if use_drive and mount_drive():
        return DRIVE_RUNS / name
    return Path(local_root) / name


def offline_dataset(name: str, images_per_class: int = 4) -> Path:
    """Smoke mode: a tiny tree in the dataset's Kaggle layout, served by kagglehub's own cache
    (KAGGLEHUB_CACHE) so the real download code runs without credentials or network."""
    from mgm_tf.data.fixtures import build_kagglehub_cache, use_kagglehub_cache

    cache = Path(tempfile.gettempdir()) / "mgm_tf_kagglehub_fixtures"
    build_kagglehub_cache(cache, [name], images_per_class)
    use_kagglehub_cache(cache)
    return cache


def kaggle_ready() -> bool:
    """True when kagglehub can authenticate (Colab secrets, ~/.kaggle/kaggle.json, env vars).
    Never prints or stores a key; in Colab add KAGGLE_USERNAME / KAGGLE_KEY as secrets, or
    call `kagglehub.login()` in a cell."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if (Path.home() / ".kaggle" / "kaggle.json").exists():
        return True
    if in_colab():
        try:
            from google.colab import userdata  # Colab secrets

            return bool(userdata.get("KAGGLE_USERNAME") and userdata.get("KAGGLE_KEY"))
        except Exception:  # secret missing or access not granted to this notebook
            return False
    return False


def config_for(dataset: str, smoke: bool | None = None) -> config_module.RunConfig:
    """Smoke preset in smoke mode, the demo preset for `demo`, the paper's settings otherwise."""
    smoke = smoke_mode() if smoke is None else smoke
    if smoke:
        return config_module.smoke(dataset)
    return config_module.demo(dataset) if dataset == "demo" else config_module.RunConfig(dataset=dataset)


def open_run(name: str, dataset: str, use_drive: bool = True, data_dir: str | None = None):
    """Open (or resume) the run directory `name` for `dataset`."""
    from mgm_tf.run import Run

    config = config_for(dataset)
    config.data_dir = data_dir
    path = run_directory(name, use_drive)
    run = Run.open(path, config)
    print(f"run directory: {path} ({'resuming' if any(run.is_done(s) for s in config.stages) else 'new'})")
    return run


def run_stages(run, *stages):
    from mgm_tf.pipeline import run_pipeline

    return run_pipeline(run, list(stages) or None)


def _display(item) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(item)
        return
    display(item)


def _jpeg(image, width: int):
    """A display-sized JPEG: keeps committed notebooks small (a PNG sample grid is ~300 KB)."""
    import io

    from IPython.display import Image

    image = image.convert("RGB")
    image.thumbnail((width, 4 * width))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return Image(data=buffer.getvalue(), format="jpeg")


def show(*paths, width: int = 640) -> None:
    """Show saved figures inline (their paths are printed outside a notebook)."""
    from PIL import Image

    for path in paths:
        if Path(path).exists():
            with Image.open(path) as image:
                _display(_jpeg(image, width))
        else:
            print(f"(not produced yet: {path})")


def show_figure(figure, width: int = 640) -> None:
    """Display a matplotlib figure once, as a compact JPEG, and close it."""
    import io

    from PIL import Image

    from mgm_tf.plots import _pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    _pyplot().close(figure)
    buffer.seek(0)
    with Image.open(buffer) as image:
        _display(_jpeg(image, width))


def show_samples(run, stage: str) -> None:
    """The latest fixed-noise sample grid of a trained stage."""
    grids = sorted((run.path / stage / "samples").glob("epoch_*.png"))
    show(grids[-1]) if grids else print(f"no sample grids in {run.path / stage / 'samples'}")


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
    show(*sorted((prepared.path / "previews").glob("*.png")))


def show_preprocessing(run, prepared, count: int = 4) -> None:
    """Raw files (decoded, resized only) next to the prepared images (after the modality steps)."""
    from mgm_tf.data import preprocess, sources
    from mgm_tf.data.decode import read_image
    from mgm_tf.plots import image_grid

    manifest = run.manifest()
    root = sources.download(manifest, run.config.data_dir)
    chosen = np.arange(min(count, len(prepared.files)))
    raw = [preprocess.resize_square(read_image(root / prepared.files[i], manifest.channels), manifest.sr_size)
           for i in chosen]
    steps = ", ".join(manifest.preprocessing) or "none"
    show_figure(image_grid(np.concatenate([np.stack(raw), prepared.images_hr[chosen]]), columns=len(chosen),
                           title=f"top: raw; bottom: after {steps}", cell=2.0))


def show_filter(run) -> None:
    show(run.path / "filter" / "scores.png", run.path / "filter" / "best_and_worst.png")


def show_synthetic(run) -> None:
    show(*sorted((run.path / "report").glob("real_vs_synthetic_*.png")))


def show_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown
    except ImportError:
        print(text)
        return
    _display(Markdown(text))


def show_evaluation(run) -> None:
    """The evaluation tables and figures of report/metrics.json."""
    from mgm_tf.evaluation.evaluate import load_metrics
    from mgm_tf.evaluation.report import evaluation_markdown

    metrics = load_metrics(run.path)
    if not metrics:
        print("no metrics yet: run the evaluation first")
        return
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


def find_runs(folder: str = "runs", use_drive: bool = True) -> list[Path]:
    """Run directories with report/metrics.json under the runs folder (Drive in Colab, runs/smoke in smoke mode)."""
    if smoke_mode():
        root = Path(folder) / "smoke"
    elif use_drive and mount_drive():
        root = DRIVE_RUNS
    else:
        root = Path(folder)
    return sorted(path.parent.parent for path in root.glob("*/report/metrics.json"))
