"""Where the code runs: Colab or not, smoke mode, Google Drive for run directories, a quiet
start for TensorFlow, and showing images, figures and markdown in whatever front end runs the
code (printed paths outside a notebook). What the notebooks call is in `mgm_tf.notebook`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SMOKE_VARIABLE = "MGM_SMOKE"
DRIVE_ROOT = Path("/content/drive")
DRIVE_RUNS = DRIVE_ROOT / "MyDrive" / "mgm_tf_runs"


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def smoke_mode() -> bool:
    """MGM_SMOKE=1: tiny sizes and a handful of steps (CI, quick checks). Not results."""
    return os.environ.get(SMOKE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


# Full-size training time (paper settings: 1,000 epochs for each GAN, SRGAN on 96 px crops):
# measured step times × steps on a 2-core AVX2 CPU, and modelled for a T4 at 35 % of its fp16
# peak (benchmarks/README.md, "How long"). Estimates, not measurements of a whole run.
FULL_SIZE_HOURS = {"cpu": 540, "t4": 3.5}


def quiet_tensorflow() -> None:
    """Load TensorFlow without its C++ start-up lines: TensorFlow 2.21 writes them (oneDNN,
    CUDA probing, absl's pre-initialisation warning) to the process's stderr before it reads
    TF_CPP_MIN_LOG_LEVEL, so only silencing file descriptor 2 for the import keeps them out
    of the notebook. Later C++ messages follow TF_CPP_MIN_LOG_LEVEL=3 (set here if unset)."""
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
    if "tensorflow" in sys.modules:
        return
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA probing prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def warn_without_gpu() -> None:
    print("\n" + "!" * 100 + f"\nNO GPU: this notebook trains at the paper's size, about {FULL_SIZE_HOURS['cpu']} hours "
          f"on a 2-core CPU (measured step times; a T4 needs about {FULL_SIZE_HOURS['t4']} h, modelled).\n"
          "In Colab: Runtime → Change runtime type → T4 GPU, then run the setup cell again. Or set the epochs "
          "field to a few epochs, or tick smoke_mode, to see the pipeline work on this CPU.\n" + "!" * 100)


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


def show_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown
    except ImportError:
        print(text)
        return
    _display(Markdown(text))
