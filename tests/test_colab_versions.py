"""The versions Colab ships, tested: Python 3.13, TensorFlow 2.20.0, Keras 3.13.2, numpy 2.1.3,
kagglehub 1.0.2, OpenCV 5.0 (Colab's GPU image, googlecolab/backend-info, August 2026).

The rest of the suite runs on the newest releases; here the package is installed (as a wheel,
without its dependencies) into a virtual environment of exactly those versions, and the smoke
pipeline and one executed notebook must pass there. The environment is kept under
~/.cache/mgm_tf/ between runs (its packages do not change; the package under test is installed
afresh each time), so only the first run downloads TensorFlow. A machine without Python 3.13
skips these tests and says why.
"""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLAB_PYTHON = "3.13"
COLAB_PACKAGES = ("tensorflow==2.20.0", "keras==3.13.2", "numpy==2.1.3", "kagglehub==1.0.2",
                  "opencv-python-headless==5.0.0.93", "tensorboard==2.20.0")
UNPINNED = ("matplotlib", "pillow", "tqdm", "nbclient", "nbformat", "ipykernel", "setuptools>=68")


def colab_python() -> str | None:
    """A working Python 3.13 interpreter: installed by pyenv, or on PATH (a pyenv shim on PATH
    may name a version that is not selected, so each candidate is asked for its version)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(path) for path in sorted(root.glob(f"{COLAB_PYTHON}.*/bin/python{COLAB_PYTHON}"))[::-1]]
    candidates += [found for found in [shutil.which(f"python{COLAB_PYTHON}")] if found]
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True)
        if probe.returncode == 0 and probe.stdout.strip() == f"({COLAB_PYTHON.replace('.', ', ')})":
            return candidate
    return None


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory) -> tuple[Path, Path]:
    """(python of an environment with Colab's versions, a folder holding this checkout installed)."""
    python = colab_python()
    if python is None:
        pytest.skip(f"no Python {COLAB_PYTHON} on this machine (pyenv install {COLAB_PYTHON}) to test Colab's versions")
    key = hashlib.sha256(json.dumps([python, COLAB_PACKAGES, UNPINNED]).encode()).hexdigest()[:12]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mgm_tf" / f"colab-{key}"
    env_python = home / "bin" / "python"
    if not (home / "complete").exists():
        shutil.rmtree(home, ignore_errors=True)
        _run([python, "-m", "venv", str(home)], timeout=300)
        _run([str(env_python), "-m", "pip", "install", "-q", *COLAB_PACKAGES, *UNPINNED], timeout=1800)
        (home / "complete").touch()
    build = tmp_path_factory.mktemp("colab_build")
    _run([str(env_python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall",
          "--target", str(build / "site"), str(ROOT)], timeout=600)
    return env_python, build / "site"


def _environment(site: Path) -> dict:
    """The package under test first on the path; the checkout itself never is (cwd is elsewhere)."""
    return {**os.environ, "PYTHONPATH": str(site), "MGM_SMOKE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_versions_are_colabs(colab_env):
    python, site = colab_env
    probe = ("import sys, tensorflow, keras, numpy, cv2, mgm_tf; "
             "print(sys.version_info[:2], tensorflow.__version__, keras.__version__, numpy.__version__, "
             "cv2.__version__.split('.')[0], mgm_tf.__file__)")
    output = _run([str(python), "-c", probe], cwd=site.parent, env=_environment(site), timeout=300).stdout
    assert output.startswith("(3, 13) 2.20.0 3.13.2 2.1.3 5 ") and str(site) in output


def test_smoke_pipeline_on_colabs_versions(colab_env, tmp_path):
    python, site = colab_env
    result = _run([str(python), "-m", "mgm_tf", "run", "--dataset", "demo", "--smoke", "--out", str(tmp_path / "run")],
                  cwd=tmp_path, env=_environment(site), timeout=1200)
    assert "[srgan] done" in result.stdout and "[export] done" in result.stdout
    assert "oneDNN custom operations" not in result.stderr + result.stdout  # the CLI starts quietly
    assert (tmp_path / "run" / "synthetic" / "manifest.csv").exists()


def test_a_notebook_on_colabs_versions(colab_env, tmp_path):
    """04_srgan (the stage that crashed on Keras 3.13), executed cell by cell in smoke mode."""
    python, site = colab_env
    shutil.copy(ROOT / "notebooks" / "04_srgan.ipynb", tmp_path)
    script = ("import nbformat, nbclient, sys\n"
              "notebook = nbformat.read('04_srgan.ipynb', as_version=4)\n"
              "nbclient.NotebookClient(notebook, timeout=900, kernel_name='python3',\n"
              "                        resources={'metadata': {'path': '.'}}).execute()\n"
              "nbformat.write(notebook, 'executed.ipynb')\n")
    _run([str(python), "-c", script], cwd=tmp_path, env=_environment(site), timeout=1800)
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    outputs = "".join("".join(output.get("text", "")) for cell in executed["cells"] for output in cell.get("outputs", []))
    assert "holds: every class of the data exported, as many as selected" in outputs and "FAILS" not in outputs \
        and "Traceback" not in outputs
