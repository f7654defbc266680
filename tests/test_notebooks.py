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


def test_readme_opens_every_notebook_in_colab_at_the_release():
    """README links each notebook in Colab at REF, and REF is the tag of this package's version."""
    from mgm_tf import __version__

    assert build_notebooks.REF == f"v{__version__}"
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"https://colab\.research\.google\.com/github/([^)\s]+)", readme))
    expected = {f"{build_notebooks.GITHUB}/blob/{build_notebooks.REF}/notebooks/{path.name}" for path in FILES}
    assert linked == expected


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
    executed = path.name in build_notebooks.EXECUTED
    assert any(CHECK in source for source in code) == executed, "nbval compares the checked cells of executed ones"
    assert any("_facts(" in source for source in code), "no checked facts"
    for source in code:
        assert not re.search(r"^\s*(def|class)\s", source, re.M), source
        assert not re.search(r"\.fit\(|GradientTape|^\s*while\s", source, re.M), source  # no training loops
        assert len(source.splitlines()) <= 15, source
    assert cells[0]["cell_type"] == "markdown" and cells[-1]["cell_type"] == "markdown"  # title … next steps
    assert "Next steps" in "".join(cells[-1]["source"])
    words = " ".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert len(WORD.findall(re.sub(r"<[^>]+>", " ", words))) >= 300, "a tutorial explains its steps"
    outputs = "".join(_outputs(cell) for cell in cells if cell["cell_type"] == "code")
    assert bool(outputs) == executed, "00–05 keep a demo-size run's outputs; the others keep none"
    assert not [noise for noise in NOISE if noise in outputs], "TensorFlow start-up noise in the outputs"
    assert "SMOKE TEST" not in outputs and "smoke mode: True" not in outputs, "smoke outputs committed as results"
    assert "FAILS:" not in outputs and "Traceback" not in outputs


def test_the_shared_text_is_said_once_and_every_notebook_links_it():
    """Setup, Drive, options and TensorBoard are explained in notebooks/README.md; each notebook
    links each section, and no notebook repeats the setup paragraph."""
    shared = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for section in ("Setup", "Google Drive", "Options", "TensorBoard"):
        assert f"## {section}" in shared
    for path in FILES:
        markdown = " ".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                            if cell["cell_type"] == "markdown")
        assert "notebooks/README.md#setup" in markdown and "notebooks/README.md#google-drive" in markdown, path.name
        assert build_notebooks.SETUP_TEXT[:80] not in markdown, path.name


def test_tensorboard_starts_before_training():
    for path in FILES:
        code = ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
        training = [index for index, source in enumerate(code) if "run_stages(run" in source]
        board = [index for index, source in enumerate(code) if "notebook.tensorboard(run)" in source]
        if board:
            assert board[0] < training[0], path.name



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


def test_setup_cell_is_not_fooled_by_a_folder_named_mgm_tf(tmp_path):
    """What `git clone …/mgm_tf.git` (or an upload) leaves in Colab's working folder: a plain
    folder `mgm_tf`. The setup cell's own code, run there with its `%pip` line as pip, must
    install the package anyway and import `mgm_tf.notebook` from the install, not the folder."""
    import re
    import site
    import subprocess
    import venv

    source = "".join(json.loads((NOTEBOOKS / "00_quickstart.ipynb").read_text())["cells"][2]["source"])
    ref = re.search(r'^REF = "([^"]+)"', source, re.M).group(1)
    clone = tmp_path / "mgm_tf"  # the trap: the cwd holds a folder of that name
    subprocess.run(["git", "clone", "-q", str(NOTEBOOKS.parent), str(clone)], check=True)
    if subprocess.run(["git", "-C", str(clone), "rev-parse", "-q", "--verify", f"refs/tags/{ref}"]).returncode:
        subprocess.run(["git", "-C", str(clone), "tag", ref], check=True)
    venv.create(tmp_path / "env", with_pip=True)
    python = tmp_path / "env" / "bin" / "python"
    # The dependencies (numpy, TensorFlow, …) from this environment, without its own mgm_tf: a
    # .pth line adds a folder to the path, and .pth files inside that folder are not read.
    env_site = next((tmp_path / "env" / "lib").glob("python3*/site-packages"))
    (env_site / "dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    cell = source.replace(f'REPOSITORY = "{build_notebooks.REPOSITORY}"', f'REPOSITORY = "{clone.as_uri()}"')
    cell = re.sub(r'^(\s*)%pip install -q "(.*)"$', r'\1subprocess.run([sys.executable, "-m", "pip", "install", "-q", '
                  r'"--no-deps", f"\2"], check=True)', cell, flags=re.M)
    cell = "import subprocess, sys\n" + cell.split("\npolicy = notebook.setup(")[0]
    cell += "\nprint('FROM', notebook.__file__)"
    result = subprocess.run([str(python), "-c", cell], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    location = result.stdout.split("FROM ")[-1].strip()
    assert str(env_site) in location and not location.startswith(str(clone))


def test_the_stage_table_cell_shows_the_reports_section_and_fails_without_it(tmp_path, capsys):
    from types import SimpleNamespace

    from mgm_tf import notebook

    run = SimpleNamespace(path=tmp_path)
    with pytest.raises(ValueError, match="report.md has no section 'Does each stage earn its place\\?'"):
        notebook.show_stage_value(run)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text(
        "# Report\n\n## Does each stage earn its place?\n\n| stage | verdict |\n|---|---|\n| G1+G2 | **better** |\n\n"
        "![real and each stage](stages.png)\n\n## Figures\n\nnot this\n", encoding="utf-8")
    with pytest.raises(ValueError, match="stages.png is missing"):
        notebook.show_stage_value(run)
    from PIL import Image
    Image.new("L", (8, 8)).save(tmp_path / "report" / "stages.png")
    notebook.show_stage_value(run)
    assert "Image object" in capsys.readouterr().out
    section = notebook.report_section(run, "Does each stage earn its place?")
    assert "| G1+G2 | **better** |" in section and "not this" not in section and "![" not in section
    assert "notebook.show_stage_value(run)" in "".join(source for _, source in build_notebooks.dataset_notebook(
        10, "pneumonia_xray")[1])


def test_the_quickstart_at_demo_size_passes_its_checks_and_prints_what_is_committed(tmp_path):
    """00_quickstart's committed outputs are a demo-size run's: its cells up to the export's
    checks, run again at demo size (not smoke mode), pass (the facts and the variety check raise
    when they fail) and print what the committed checked cells show, so a change that alters
    them leaves the notebook stale and fails here. The evaluation cells (10–15 minutes) are left
    to nbval's smoke run."""
    import os

    import nbformat
    from nbclient import NotebookClient

    committed = nbformat.read(NOTEBOOKS / "00_quickstart.ipynb", as_version=4)
    stop = next(index for index, cell in enumerate(committed.cells) if "download_synthetic" in cell.source)
    fresh = nbformat.v4.new_notebook(metadata=committed.metadata)
    fresh.cells = [nbformat.from_dict({**cell, "outputs": []} if cell.cell_type == "code" else cell)
                   for cell in committed.cells[:stop]]
    env = {key: value for key, value in os.environ.items() if key != "MGM_SMOKE"}
    env["PYTHONPATH"] = os.pathsep.join([str(NOTEBOOKS.parent), env.get("PYTHONPATH", "")])
    NotebookClient(fresh, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    compared = 0
    for old, new in zip(committed.cells[:stop], fresh.cells):
        if old.cell_type == "code" and CHECK in old.source:
            assert _outputs(new) == _outputs(old), old.source
            compared += 1
    assert compared >= 3
    variety = next(_outputs(cell) for cell in fresh.cells if "variety_facts" in cell.source)
    assert "export: mean pairwise SSIM" in variety and "holds: not one repeated image" in variety
    assert (tmp_path / "runs" / "quickstart_demo" / "synthetic" / "manifest.csv").exists()
