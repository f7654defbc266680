"""The notebook suite's house rules; nbval executes the notebooks themselves (smoke mode)."""

import json
import re
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))

import build_notebooks  # noqa: E402

FILES = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_expected_notebooks_exist():
    names = {path.name for path in FILES}
    assert {"00_quickstart.ipynb", "01_dcgan.ipynb", "02_conditional_gan.ipynb", "03_quality_filter.ipynb",
            "04_srgan.ipynb", "05_evaluation.ipynb", "20_paper_tables.ipynb"} <= names
    for dataset in ("pneumonia_xray", "diabetic_retinopathy", "brain_tumor_mri", "skin_cancer", "leukemia"):
        assert any(name.endswith(f"_{dataset}.ipynb") for name in names), dataset


def test_notebooks_match_their_single_source():
    assert build_notebooks.check() == []


CHECK = build_notebooks.CHECK
NOISE = ("absl::InitializeLog", "cuda_platform", "cudart_stub", "oneDNN custom operations", "IProgress not found")
WORD = re.compile(r"[A-Za-z0-9]\S*")


def _outputs(cell) -> str:
    return "".join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                   for output in cell.get("outputs", []))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_notebook_house_rules(path):
    notebook = json.loads(path.read_text())
    assert path.stat().st_size < 1_000_000
    assert notebook["metadata"]["accelerator"] == "GPU"
    cells = notebook["cells"]
    first = "".join(cells[0]["source"])
    assert "colab-badge.svg" in first and "View source on GitHub" in first and build_notebooks.GITHUB in first
    assert "MIT License" in first and "MixGANMed: A Novel Hybrid Generative Framework" in first and "How long" in first
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert f'REF = "{build_notebooks.REF}"  #@param' in code[0] and "%pip install" in code[0]
    assert "notebook.setup(" in code[0] and "@main" not in code[0]
    assert any(CHECK in source for source in code), "nothing nbval can compare"
    for source in code:
        assert not re.search(r"^\s*(def|class)\s", source, re.M), source
        assert not re.search(r"\.fit\(|GradientTape|^\s*while\s", source, re.M), source  # no training loops
        assert len(source.splitlines()) <= 15, source
    assert cells[0]["cell_type"] == "markdown" and cells[-1]["cell_type"] == "markdown"  # title … next steps
    assert "Next steps" in "".join(cells[-1]["source"])
    words = " ".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert len(WORD.findall(re.sub(r"<[^>]+>", " ", words))) >= 300, "a tutorial explains its steps"
    outputs = "".join(_outputs(cell) for cell in cells if cell["cell_type"] == "code")
    assert outputs, "committed without outputs"
    assert not [noise for noise in NOISE if noise in outputs], "TensorFlow start-up noise in the outputs"
    smoke = "SMOKE TEST" in outputs
    assert smoke == (path.name != "00_quickstart.ipynb"), "00 shows a real demo run; the others say they are smoke"



def test_setup_cells_install_command_installs_the_release_from_a_clone(tmp_path):
    """The setup cell's own %pip line, pointed at a clone of this checkout tagged with the
    cell's REF, installs mgm_tf into a fresh environment (--no-deps: TensorFlow is not fetched
    twice) with its dataset cards; the import happens from that environment."""
    import shlex
    import subprocess
    import venv

    import mgm_tf

    source = "".join(json.loads((NOTEBOOKS / "00_quickstart.ipynb").read_text())["cells"][2]["source"])
    ref = re.search(r'^REF = "([^"]+)"', source, re.M).group(1)
    line = next(line.strip() for line in source.splitlines() if line.strip().startswith("%pip install"))
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(NOTEBOOKS.parent), str(clone)], check=True)
    if subprocess.run(["git", "-C", str(clone), "rev-parse", "-q", "--verify", f"refs/tags/{ref}"]).returncode:
        subprocess.run(["git", "-C", str(clone), "tag", ref], check=True)  # the release step tags the commit
    arguments = shlex.split(line.removeprefix("%pip ").replace("{REPOSITORY}", clone.as_uri()).replace("{REF}", ref))
    venv.create(tmp_path / "env", with_pip=True)
    python = str(tmp_path / "env" / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", *arguments, "--no-deps"], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    probe = "import mgm_tf; from mgm_tf.data import manifests; print(mgm_tf.__version__, len(manifests.available_manifests()), mgm_tf.__file__)"
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    version, cards, location = result.stdout.split()
    assert version == mgm_tf.__version__ and ref == f"v{version}"
    assert int(cards) >= 8 and str(tmp_path / "env") in location
