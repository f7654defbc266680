"""Where the code runs: Colab or not, smoke mode, Google Drive, Kaggle credentials, a quiet start
for TensorFlow, and showing images, figures and markdown in whatever front end runs the code
(printed paths outside a notebook). What the notebooks call is in `mgm_tf.notebook`.

Drive. A run trains in a local folder (fast, and always there) and, when Drive is connected, a
copy of it on Drive is brought up to date after every stage and every training backup
(`mirror_to_drive`). Colab writes through its Drive mount in the background and offers no
flush short of `drive.flush_and_unmount()`, which ends the mount (remounting after it has
failed for others: googlecolab/colabtools #287, #4773); copying whole files at known moments
and syncing keeps the Drive copy a consistent state of the run. A new runtime restores the
local folder from that copy (`restore_from_drive`) and the run continues.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

SMOKE_VARIABLE = "MGM_SMOKE"
DRIVE_ROOT = Path("/content/drive")
DRIVE_RUNS = DRIVE_ROOT / "MyDrive" / "mgm_tf_runs"
KAGGLE_CACHE_VARIABLE = "KAGGLEHUB_CACHE"

# What this module switched on in this Python process, so that it can switch it off again: smoke
# mode set from a notebook's form (not from the environment, as CI sets it), the offline fixture
# cache (with the KAGGLEHUB_CACHE it replaced), and the Drive folder a run is mirrored to.
_STATE: dict = {"smoke_from_form": False, "offline_cache": None, "previous_cache": None, "drive_runs": None}


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def smoke_mode() -> bool:
    """MGM_SMOKE=1: tiny sizes and a handful of steps (CI, quick checks). Not results."""
    return os.environ.get(SMOKE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def set_smoke_mode(from_form: bool) -> str:
    """Smoke mode as the notebook's form asks, and a line saying why it is on or off. Ticking the
    form turns it on for later cells; unticking it turns off what the form turned on (and the
    offline fixture cache), so a runtime that tried smoke mode first can train for real without a
    restart. MGM_SMOKE=1 set outside the notebook (CI does) stays on, and the line says so."""
    if from_form:
        if not smoke_mode():
            os.environ[SMOKE_VARIABLE] = "1"
            _STATE["smoke_from_form"] = True
        return "smoke mode: on (the form's smoke_mode field)"
    if _STATE["smoke_from_form"]:
        os.environ.pop(SMOKE_VARIABLE, None)
        _STATE["smoke_from_form"] = False
        stop_offline_cache()
    if smoke_mode():
        return (f"smoke mode: on ({SMOKE_VARIABLE}=1 is set in the environment, as CI sets it; the form's smoke_mode "
                "field is off)")
    return "smoke mode: off"


def use_offline_cache(cache: Path) -> None:
    """Serve kagglehub from the fixture cache `cache` until `stop_offline_cache`."""
    if _STATE["offline_cache"] is None:
        _STATE["previous_cache"] = os.environ.get(KAGGLE_CACHE_VARIABLE)
    _STATE["offline_cache"] = str(cache)
    os.environ[KAGGLE_CACHE_VARIABLE] = str(cache)


def stop_offline_cache() -> None:
    """Give kagglehub back the cache it had before the fixtures (or its default)."""
    if _STATE["offline_cache"] is None:
        return
    if _STATE["previous_cache"] is None:
        os.environ.pop(KAGGLE_CACHE_VARIABLE, None)
    else:
        os.environ[KAGGLE_CACHE_VARIABLE] = _STATE["previous_cache"]
    _STATE["offline_cache"] = _STATE["previous_cache"] = None


def kaggle_credentials() -> str:
    """Which Kaggle credential kagglehub will find (never the key itself): 'KAGGLE_API_TOKEN'
    (the current kind: environment, Colab secret or ~/.kaggle/access_token), 'legacy username/key'
    (KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json), or '' when none. Public datasets
    download without one; competitions (the EyePACS 2015 data) need one."""
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    if os.environ.get("KAGGLE_API_TOKEN") or (home / "access_token").exists():
        return "KAGGLE_API_TOKEN"
    if (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")) or (home / "kaggle.json").exists():
        return "legacy username/key"
    if in_colab():
        try:
            from google.colab import userdata  # Colab secrets

            if userdata.get("KAGGLE_API_TOKEN"):
                return "KAGGLE_API_TOKEN"
            if userdata.get("KAGGLE_USERNAME") and userdata.get("KAGGLE_KEY"):
                return "legacy username/key"
        except Exception:  # secret missing or not shared with this notebook
            return ""
    return ""


def quiet_tensorflow() -> None:
    """Load TensorFlow without its C++ start-up lines: TensorFlow writes them (oneDNN, CUDA
    probing, absl's pre-initialisation warning) to the process's stderr before it reads
    TF_CPP_MIN_LOG_LEVEL, so only silencing file descriptor 2 for the import keeps them out
    of a notebook or a terminal. Later C++ messages follow TF_CPP_MIN_LOG_LEVEL=3 (set here if
    unset), and TensorFlow's Python logger shows errors only."""
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
    if "tensorflow" not in sys.modules:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing prints too
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing and deprecation warnings


# --- Google Drive -------------------------------------------------------------------------------

def connect_drive(use_drive: bool = True) -> Path | None:
    """Mount Google Drive (Colab asks you to sign in) and return the folder runs are copied to,
    or None: outside Colab, with use_drive off, or when mounting fails or is declined — the run
    then lives on this runtime's disk only, and the line printed says so."""
    _STATE["drive_runs"] = None
    if not use_drive or smoke_mode():
        print("Drive: not used; runs stay on this runtime's disk (lost when the runtime is recycled)")
        return None
    if not in_colab():
        print("Drive: not in Colab; runs stay in ./runs")
        return None
    try:
        if not (DRIVE_ROOT / "MyDrive").exists():
            from google.colab import drive  # available only in Colab

            drive.mount(str(DRIVE_ROOT))
        DRIVE_RUNS.mkdir(parents=True, exist_ok=True)
    except Exception as error:  # declined, timed out, or the mount failed
        print(f"Drive: could not be mounted ({type(error).__name__}: {error}); runs stay on this runtime's disk. "
              "Run this cell again to retry.")
        return None
    _STATE["drive_runs"] = DRIVE_RUNS
    print(f"Drive: connected; each run is copied to {DRIVE_RUNS}/<run_name> after every stage and training backup")
    return DRIVE_RUNS


def drive_runs() -> Path | None:
    """The Drive folder runs are copied to, when `connect_drive` connected one."""
    return _STATE["drive_runs"]


def mirror(source: Path, target: Path) -> int:
    """Copy every file of `source` whose copy in `target` is missing or differs in size or
    modification time (copies keep the time), writing each under a temporary name first; then
    flush the file system's buffers. Returns the number of files copied."""
    source, target = Path(source), Path(target)
    copied = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        destination = target / path.relative_to(source)
        status = path.stat()
        if destination.exists():
            other = destination.stat()
            if other.st_size == status.st_size and int(other.st_mtime) == int(status.st_mtime):
                continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        shutil.copy2(path, temporary)
        os.replace(temporary, destination)
        copied += 1
    os.sync()
    return copied


def mirror_to_drive(run_path: Path) -> int:
    """Bring the Drive copy of a run up to date (no-op without Drive)."""
    root = drive_runs()
    return mirror(run_path, root / Path(run_path).name) if root is not None else 0


def restore_from_drive(run_path: Path) -> bool:
    """A new runtime: when the run is not on this disk but Drive holds a copy, copy it here."""
    root = drive_runs()
    copy = root / Path(run_path).name if root is not None else None
    if copy is None or Path(run_path).exists() or not (copy / "config.json").exists():
        return False
    mirror(copy, Path(run_path))
    print(f"restored {run_path} from its copy on Drive ({copy})")
    return True


def run_directory(name: str, local_root: str | Path = "runs") -> Path:
    """Where a run trains: ./runs/<name> (./runs/smoke/<name> in smoke mode). Re-running a
    notebook with the same name resumes it; with Drive connected, from Drive's copy when this
    runtime is new."""
    path = Path(local_root) / "smoke" / name if smoke_mode() else Path(local_root) / name
    restore_from_drive(path)
    return path


# --- data, logs and the export, in and out of the runtime ----------------------------------------

def data_source(dataset: str, images_per_class: int = 4) -> None:
    """Where this notebook's images come from. Smoke mode: tiny generated fixtures in the
    dataset's Kaggle layout, served by kagglehub's own cache (KAGGLEHUB_CACHE), so the real
    download code runs offline. Otherwise: whether kagglehub needs a Kaggle login for it."""
    from mgm_tf.data.fixtures import build_kagglehub_cache
    from mgm_tf.data.manifests import load_manifest

    if smoke_mode():
        cache = Path(tempfile.gettempdir()) / "mgm_tf_kagglehub_fixtures"
        build_kagglehub_cache(cache, [dataset], images_per_class)
        use_offline_cache(cache)
        print(f"smoke mode: {dataset} is served offline from tiny generated fixtures in its Kaggle layout ({cache})")
        return
    manifest, credential = load_manifest(dataset), kaggle_credentials()
    if manifest.source.get("kaggle_competition"):
        print(f"{dataset}: Kaggle competition data; downloading it needs a Kaggle login and the competition's rules "
              "accepted on kaggle.com. " + (f"Found: {credential}." if credential else
                                            "None found: add the secret KAGGLE_API_TOKEN (kaggle.com → Settings → API "
                                            "→ Generate New Token) in Colab's key panel, or run kagglehub.login()."))
    elif manifest.kaggle_handle:
        print(f"{dataset}: a public Kaggle dataset ({manifest.kaggle_handle}); it downloads without a Kaggle login"
              + (f" (credential found: {credential})." if credential else "."))


def tensorboard(run) -> None:
    """TensorBoard on the run's logs (every GAN stage writes <stage>/tensorboard/): started
    inline in Colab, described elsewhere (`tensorboard --logdir RUN` in a terminal). Call it
    before training: TensorBoard rereads the folder every 30 s, so each stage's curves appear
    while it trains."""
    if in_colab():
        from IPython import get_ipython

        get_ipython().run_line_magic("load_ext", "tensorboard")
        get_ipython().run_line_magic("tensorboard", f"--logdir {run.path}")
        return
    print(f"In a terminal: tensorboard --logdir {run.path}; in Jupyter: %load_ext tensorboard, then "
          f"%tensorboard --logdir {run.path}. Each GAN stage writes <stage>/tensorboard/ as it trains (the smoke "
          "preset writes none).")


def download_synthetic(run) -> Path:
    """The exported dataset as one zip beside the run (synthetic/ with its manifest and card):
    downloaded by the browser in Colab, and copied to Drive when Drive is connected."""
    folder = run.path / "synthetic"
    if not (folder / "manifest.csv").exists():
        raise ValueError(f"{run.path} has no exported dataset yet: run the stages through 'export' first")
    archive = Path(shutil.make_archive(str(run.path.parent / f"{run.path.name}_synthetic"), "zip", folder))
    count = sum(1 for _ in folder.rglob("*.png"))
    print(f"{archive} ({archive.stat().st_size / 1e6:.1f} MB, {count} images)")
    if drive_runs() is not None:
        shutil.copy2(archive, drive_runs() / archive.name)
        print(f"copied to Drive: {drive_runs() / archive.name}")
    if in_colab():
        from google.colab import files  # available only in Colab

        files.download(str(archive))
    return archive


# --- showing things -----------------------------------------------------------------------------

def _display(item, display_id=None):
    try:
        from IPython.display import display
    except ImportError:
        print(item)
        return None
    return display(item, display_id=display_id) if display_id else display(item)


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
    """Show saved figures inline (their paths are printed outside a notebook). A missing figure
    is a ValueError naming it, so a notebook cell (and nbval) fails instead of showing nothing."""
    from PIL import Image

    missing = [str(path) for path in paths if not Path(path).exists()]
    if missing:
        raise ValueError(f"figure(s) not produced: {', '.join(missing)}: run the stage that makes them first")
    for path in paths:
        with Image.open(path) as image:
            _display(_jpeg(image, width))


class LiveImage:
    """The newest sample grid of each training stage, shown in a notebook's output and replaced in
    place each time the stage saves a new one (a display handle per stage, so the progress bar
    stays where it is); nothing outside IPython."""

    def __init__(self, width: int = 640):
        self.width = width
        self.handles: dict[Path, object] = {}

    def __call__(self, path) -> None:
        from PIL import Image

        path = Path(path)
        if "IPython" not in sys.modules or not path.exists():
            return
        with Image.open(path) as image:
            picture = _jpeg(image, self.width)
        handle = self.handles.get(path.parent)
        if handle is None:
            self.handles[path.parent] = _display(picture, display_id=True)
        else:
            handle.update(picture)


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
