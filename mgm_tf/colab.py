"""Where the code runs: Colab or not, smoke mode, run directories (Google Drive in Colab),
offline dataset fixtures for smoke runs, and the notebook setup banner."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SMOKE_VARIABLE = "MGM_SMOKE"
DRIVE_ROOT = Path("/content/drive")
DRIVE_RUNS = DRIVE_ROOT / "MyDrive" / "mgm_tf_runs"
SMOKE_BANNER = "SMOKE TEST: tiny epochs and sizes — these outputs check that the code runs; they are not results."


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def smoke_mode() -> bool:
    """MGM_SMOKE=1: tiny sizes and a handful of steps (CI, quick checks). Not results."""
    return os.environ.get(SMOKE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def setup(precision: str = "auto") -> str:
    """Print versions, device and the precision policy in use (and apply it); returns the policy."""
    from mgm_tf import __version__
    from mgm_tf.precision import apply_policy, describe_device

    policy = apply_policy(precision)
    print(f"mgm_tf {__version__} | Python {sys.version.split()[0]} | Colab: {in_colab()} | smoke mode: {smoke_mode()}")
    print(describe_device())
    if smoke_mode():
        print(SMOKE_BANNER)
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
    from mgm_tf.fixtures import build_kagglehub_cache, use_kagglehub_cache

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
