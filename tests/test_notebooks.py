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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_notebook_house_rules(path):
    notebook = json.loads(path.read_text())
    assert path.stat().st_size < 1_000_000
    assert notebook["metadata"]["accelerator"] == "GPU"
    cells = notebook["cells"]
    assert "colab-badge.svg" in "".join(cells[0]["source"]) and build_notebooks.REPOSITORY in "".join(cells[0]["source"])
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert any("#@param" in source for source in code), "no Colab form cell"
    assert "notebook.setup()" in code[0]
    for source in code:
        assert not re.search(r"^\s*(def|class)\s", source, re.M), source
        assert not re.search(r"\.fit\(|GradientTape|^\s*while\s", source, re.M), source  # no training loops
        assert len(source.splitlines()) <= 15, source
    assert cells[0]["cell_type"] == "markdown" and cells[-1]["cell_type"] == "markdown"  # title … next steps
