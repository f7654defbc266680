"""The single source of every notebook in this folder.

    python notebooks/build_notebooks.py            # rewrite the .ipynb sources (outputs dropped)
    python notebooks/build_notebooks.py --execute  # rewrite, then execute all in smoke mode (MGM_SMOKE=1)
    python notebooks/build_notebooks.py --check    # exit 1 if a committed notebook differs from this source

The repository the Colab badge and the setup cell point at is REPOSITORY below: a fork changes
that one line and rebuilds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import nbformat

REPOSITORY = "mgm-tf/mgm_tf"  # GitHub owner/name; the only place the repository location is written
BRANCH = "main"
HERE = Path(__file__).resolve().parent
CHECK = "# NBVAL_CHECK_OUTPUT"

DATASET_CHOICES = '["demo", "pneumonia_xray", "diabetic_retinopathy", "brain_tumor_mri", "skin_cancer", "leukemia"]'


def badge(name: str) -> str:
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{name}"
    return f'<a href="{url}" target="_parent"><img src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>'


def setup_cell() -> str:
    return f"""#@title Setup: install mgm_tf if this runtime does not have it
import importlib.util, os, subprocess, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if importlib.util.find_spec("mgm_tf") is None:  # fresh Colab runtime
    url = "git+https://github.com/{REPOSITORY}.git@{BRANCH}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", url], check=True)
from mgm_tf import notebook
policy = notebook.setup()  # versions, device, precision policy (mixed_float16 on a T4)"""


def header(name: str, title: str, summary: str) -> list:
    return [("markdown", f"{badge(name)}\n\n# {title}\n\n{summary}"),
            ("markdown", "## Setup\nRun this first. In Colab choose *Runtime → Change runtime type → T4 GPU*. "
                         "Set `MGM_SMOKE=1` for a few-second smoke run (what CI does)."),
            ("code", setup_cell())]


def stage_params(default_run: str = "stages_demo") -> list:
    return [("markdown", "## Configuration\nThe dataset and the run directory. In Colab the run lives on Google Drive, "
                         "so a disconnect loses nothing: re-running the notebook resumes where it stopped."),
            ("code", f'dataset = "demo"  #@param {DATASET_CHOICES}\n'
                     f'run_name = "{default_run}"  #@param {{type:"string"}}\n'
                     'use_drive = True  #@param {type:"boolean"}\n'
                     'run = notebook.open_run(run_name, dataset, use_drive)\n'
                     'prepared = run.prepared()')]


def next_steps(text: str) -> list:
    return [("markdown", f"## Next steps\n{text}")]


def quickstart() -> list:
    return header("00_quickstart.ipynb", "MixGANMed quickstart: the whole pipeline on 16 real chest X-rays",
                  "Runs every stage — DCGAN → conditional refinement GAN → quality filter → SRGAN ×4 → export → "
                  "evaluation — on the `demo` set embedded in the package (16 Kermany chest X-rays, CC BY 4.0). "
                  "It needs no Kaggle account and runs on a CPU runtime in a few minutes. Sixteen images are far too "
                  "few for good images: this shows the pipeline working, not results.") + [
        ("markdown", "## Configuration"),
        ("code", 'run_name = "quickstart_demo"  #@param {type:"string"}\n'
                 'use_drive = False  #@param {type:"boolean"}\n'
                 'run = notebook.open_run(run_name, "demo", use_drive)\n'
                 'print(run.config.dcgan.epochs, "DCGAN epochs,", run.config.cgan.epochs, "cGAN epochs  # paper: 1000")'),
        ("markdown", "## Data\nThe demo set: 8 NORMAL and 8 bacterial PNEUMONIA X-rays, split by patient."),
        ("code", "prepared = run.prepared()\nnotebook.show_counts(prepared)"),
        ("code", f"{CHECK}\nprint(run.manifest().summary())"),
        ("markdown", "## Train and synthesise\nAll stages in order; each skips itself when already complete."),
        ("code", "timings = notebook.run_stages(run)"),
        ("markdown", "## Look at the results\nFixed-noise samples of both GANs, the filter's choices, and real "
                     "next to synthetic images."),
        ("code", 'notebook.show_samples(run, "dcgan")\nnotebook.show_samples(run, "cgan")\nnotebook.show_filter(run)'),
        ("code", "notebook.show_synthetic(run)"),
        ("markdown", "## Evaluate\nKID/FID with named feature extractors, precision/recall, memorisation and "
                     "downstream utility (see `05_evaluation.ipynb`)."),
        ("code", "from mgm_tf.evaluation.evaluate import evaluate_run\nmetrics = evaluate_run(run)\nnotebook.show_evaluation(run)"),
    ] + next_steps("Open a dataset notebook (`10_…` to `14_…`) to train on a real dataset, or the stage notebooks "
                   "(`01_…` to `05_…`) to run one stage at a time.")


def stage_notebook(name, title, summary, body, after) -> list:
    return header(name, title, summary) + stage_params() + body + next_steps(after)


def dcgan() -> list:
    return stage_notebook(
        "01_dcgan.ipynb", "Stage 1 — DCGAN (paper §3.2)",
        "An unconditional DCGAN G1(z), z ~ N(0, 1) in 100-d, learns the modality's structure from every training "
        "image at 64×64×3. Its samples become the conditioning images of stage 2.",
        [("markdown", "## Model\nDCGAN conventions: transposed 4×4 convolutions with BatchNorm and ReLU in G, "
                      "strided convolutions with LeakyReLU in D."),
         ("code", f"{CHECK}\nfrom mgm_tf import dcgan, gan\n"
                  "print(gan.count_parameters(dcgan.build_dcgan_generator()))\n"
                  "print(gan.count_parameters(dcgan.build_dcgan_discriminator()))"),
         ("markdown", "## Train\nAdam 1e-4, β1 0.5, batch 16 (§4). The domain feature extractor is trained first so "
                      "KID can be tracked during training. Progress shows one bar over epochs."),
         ("code", 'print(run.config.dcgan)  # smoke: 2 epochs; the paper trains 1,000 epochs at batch 16\n'
                  'timings = notebook.run_stages(run, "extractor", "dcgan")'),
         ("markdown", "## Look at the results"),
         ("code", 'notebook.show_samples(run, "dcgan")\nnotebook.show_history(run, "dcgan")')],
        "Continue with `02_conditional_gan.ipynb` on the same run directory.")


def conditional() -> list:
    return stage_notebook(
        "02_conditional_gan.ipynb", "Stage 2 — conditional refinement GAN (paper §3.3, §3.6, §3.7)",
        "G2(z, c, y) turns a conditioning image c into a class-y image. It trains on pairs c = degrade(x) "
        "(down/up-sampling blur, noise, brightness/contrast jitter, like a DCGAN sample) and target x; at "
        "synthesis c = G1(z1). D judges the 64×64×6 pair (x, c) plus a label plane.",
        [("markdown", "## Model\nWith `num_classes=None` these are the paper's exact networks; the pipeline adds one "
                      "label plane to both (§3.3)."),
         ("code", f"{CHECK}\nfrom mgm_tf import gan, refinement\n"
                  "print(gan.count_parameters(refinement.build_conditional_generator()))\n"
                  "print(gan.count_parameters(refinement.build_conditional_discriminator()))\n"
                  "print(refinement.build_conditional_discriminator().get_layer('pair').output.shape)"),
         ("markdown", "## Train"),
         ("code", 'print(run.config.cgan)  # smoke: 2 epochs; paper: 1,000\n'
                  'timings = notebook.run_stages(run, "cgan")'),
         ("markdown", "## Look at the results\nTop row: conditioning images c = degrade(x); bottom: G2's refinements."),
         ("code", 'notebook.show_samples(run, "cgan")\nnotebook.show_history(run, "cgan")')],
        "Continue with `03_quality_filter.ipynb`.")


def quality_filter() -> list:
    return stage_notebook(
        "03_quality_filter.ipynb", "Stage 3 — synthesis and the quality filter (paper §3.4)",
        "Synthesis draws x = G2(z2, G1(z1), y) for every class, one recorded seed per image. The non-trainable "
        "filter scores each image by variance of the Laplacian (sharpness), grey-histogram entropy (detail) and "
        "mean gradient magnitude (edges), rank-normalises within the class and keeps the best 20 %.",
        [("markdown", "## Synthesise and filter (needs stages 1 and 2 in this run directory)"),
         ("code", 'timings = notebook.run_stages(run, "synthesize", "filter")'),
         ("code", f'{CHECK}\nprint(run.done_info("filter")["selected_per_class"])'),
         ("markdown", "## Look at the results\nScore histograms over all candidates; the best and worst candidates."),
         ("code", "notebook.show_filter(run)")],
        "Continue with `04_srgan.ipynb`.")


def srgan() -> list:
    return stage_notebook(
        "04_srgan.ipynb", "Stage 4 — SRGAN ×4 and export (paper §3.5, §7)",
        "SRGAN learns 64 → 256 on real images (random HR crops, bicubic LR); loss = adversarial + λ1·MSE + "
        "λ2·VGG19-feature MSE. It is then applied to the filtered synthetic images, which are exported as PNGs "
        "marked synthetic, with a manifest of lineage, seeds, scores and sha256.",
        [("markdown", "## Train, then export"),
         ("code", 'print(run.config.srgan)  # smoke: 1 epoch on 48 px crops; demo 40 epochs; paper-scale 100\n'
                  'timings = notebook.run_stages(run, "srgan", "export", "report")'),
         ("markdown", "## Super-resolution next to bicubic, on held-out real images"),
         ("code", 'evaluation = run.done_info("srgan")["evaluation"]\n'
                  'for method in ("bicubic", "srgan"):\n'
                  '    print(method, {k: round(v["mean"], 3) for k, v in evaluation[method].items()})\n'
                  'notebook.show_samples(run, "srgan")'),
         ("markdown", "## The exported dataset"),
         ("code", "notebook.show_synthetic(run)")],
        "Evaluate the result in `05_evaluation.ipynb`.")


def evaluation() -> list:
    return stage_notebook(
        "05_evaluation.ipynb", "Stage 5 — honest evaluation",
        "GAN losses say nothing about image quality_filter. This measures every row of the paper's comparison (DCGAN, "
        "cGAN, CycleGAN, SRGAN, the ablations and MixGANMed) the same way: KID/FID on named feature extractors "
        "(standard FID only with ImageNet InceptionV3), precision/recall, memorisation of training images, and "
        "the utility of synthetic images for a classifier tested on held-out real patients.",
        [("markdown", "## Evaluate (trains the domain extractor and, unless smoke, the cGAN and CycleGAN baselines)"),
         ("code", "from mgm_tf.evaluation.evaluate import evaluate_run\nmetrics = evaluate_run(run)"),
         ("code", f'{CHECK}\nprint(list(metrics["rows"]))\nprint(metrics["extractors"]["domain"], metrics["num_real_train"])'),
         ("markdown", "## Tables and figures"),
         ("code", "notebook.show_evaluation(run)")],
        "Gather several runs into the paper's tables with `20_paper_tables.ipynb`.")


DATASET_TEXT = {
    "pneumonia_xray": ("Pneumonia chest X-ray", "grey chest X-rays, CLAHE contrast normalisation"),
    "diabetic_retinopathy": ("Diabetic retinopathy fundus", "colour fundus photos, border crop and Reinhard colour normalisation"),
    "brain_tumor_mri": ("Brain-tumour MRI", "grey axial MRI slices, skull stripping"),
    "skin_cancer": ("Skin-lesion dermoscopy", "dermoscopy, hair removal and grey-world colour balance"),
    "leukemia": ("Leukaemia blood smear", "blood-smear microscopy, Reinhard stain normalisation"),
}


def dataset_notebook(number: int, dataset: str) -> tuple[str, list]:
    title, modality = DATASET_TEXT[dataset]
    name = f"{number}_{dataset}.ipynb"
    cells = header(name, f"{title}: MixGANMed end to end",
                   f"Downloads the `{dataset}` dataset through kagglehub ({modality}), looks at it, runs all four "
                   "stages, puts synthetic images next to real ones, and evaluates them. In smoke mode (CI) the "
                   "download is served offline from a tiny tree with the Kaggle layout.") + [
        ("markdown", "## Configuration"),
        ("code", f'run_name = "{dataset}"  #@param {{type:"string"}}\n'
                 'use_drive = True  #@param {type:"boolean"}\n'
                 f'DATASET = "{dataset}"'),
        ("markdown", "## Data\nKaggle credentials come from kagglehub itself (Colab secrets `KAGGLE_USERNAME` / "
                     "`KAGGLE_KEY`, or `kagglehub.login()`); this notebook never prints or stores a key."),
        ("code", "if notebook.smoke_mode():\n    notebook.offline_dataset(DATASET)  # tiny offline tree, Kaggle layout\n"
                 "elif not notebook.kaggle_ready():\n"
                 "    print('Add KAGGLE_USERNAME and KAGGLE_KEY as Colab secrets, or run kagglehub.login().')"),
        ("code", f"{CHECK}\nfrom mgm_tf.data import manifests\nprint(manifests.load_manifest(DATASET).summary())"),
        ("code", "run = notebook.open_run(run_name, DATASET, use_drive)\nprepared = run.prepared()\n"
                 "notebook.show_counts(prepared)"),
        ("markdown", "### A sample of each class, and the preprocessing before/after"),
        ("code", "notebook.show_class_previews(prepared)\nnotebook.show_preprocessing(run, prepared)"),
        ("markdown", "## Train all stages\nDCGAN → conditional refinement GAN → synthesis → quality filter → SRGAN → "
                     "export. Defaults are the paper's (1,000 epochs, batch 16); smoke mode runs 2."),
        ("code", "timings = notebook.run_stages(run)"),
        ("markdown", "## Look at the results"),
        ("code", 'notebook.show_samples(run, "dcgan")\nnotebook.show_samples(run, "cgan")\nnotebook.show_filter(run)'),
        ("code", "notebook.show_synthetic(run)"),
        ("markdown", "## Evaluate"),
        ("code", "from mgm_tf.evaluation.evaluate import evaluate_run\nmetrics = evaluate_run(run)\nnotebook.show_evaluation(run)"),
    ] + next_steps("Compare this run with others in `20_paper_tables.ipynb`. The synthetic dataset is in the run "
                   "directory under `synthetic/`, each PNG marked as synthetic.")
    return name, cells


def paper_tables() -> list:
    return header("20_paper_tables.ipynb", "The paper's tables, measured",
                  "Gathers every evaluated run into the paper's Table 1 (final G/D losses, for parity) and Table 2 "
                  "(training time, trainable parameters) as measured here, next to the metrics that matter: KID, "
                  "precision/recall, memorisation and downstream utility.") + [
        ("markdown", "## Runs\nEvery run directory under the runs folder that has `report/metrics.json`."),
        ("code", 'runs_folder = "runs"  #@param {type:"string"}\nuse_drive = True  #@param {type:"boolean"}\n'
                 'runs = notebook.find_runs(runs_folder, use_drive)\nprint(len(runs), "evaluated runs")'),
        ("markdown", "## Tables 1 and 2 next to quality, memorisation and utility"),
        ("code", "table = notebook.paper_tables(runs)"),
    ] + next_steps("What the paper claims (0.75 h, 0.67 M parameters, losses of 0.005) is a claim; these rows are "
                   "measurements. A smoke run's rows only show that the code runs.")


def all_notebooks() -> dict[str, list]:
    notebooks = {"00_quickstart.ipynb": quickstart(), "01_dcgan.ipynb": dcgan(), "02_conditional_gan.ipynb": conditional(),
                 "03_quality_filter.ipynb": quality_filter(), "04_srgan.ipynb": srgan(), "05_evaluation.ipynb": evaluation()}
    for number, dataset in enumerate(DATASET_TEXT, start=10):
        name, cells = dataset_notebook(number, dataset)
        notebooks[name] = cells
    notebooks["20_paper_tables.ipynb"] = paper_tables()
    return notebooks


def build(cells: list) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"accelerator": "GPU", "colab": {"provenance": [], "gpuType": "T4"},
                         "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}
    for kind, source in cells:
        notebook.cells.append(nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source))
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:02d}"
    return notebook


def sources(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def check() -> list[str]:
    """Names of notebooks whose committed cells differ from this source (outputs ignored)."""
    stale = []
    for name, cells in all_notebooks().items():
        path = HERE / name
        if not path.exists() or sources(nbformat.read(path, as_version=4)) != sources(build(cells)):
            stale.append(name)
    return stale


def execute(names) -> None:
    from nbclient import NotebookClient

    os.environ["MGM_SMOKE"] = "1"
    shutil.rmtree(HERE / "runs" / "smoke", ignore_errors=True)
    for name in names:
        notebook = nbformat.read(HERE / name, as_version=4)
        NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(notebook, HERE / name)
        print(f"executed {name}: {(HERE / name).stat().st_size / 1024:.0f} KB", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="execute every notebook in smoke mode and keep outputs")
    parser.add_argument("--check", action="store_true", help="fail if committed notebooks differ from this source")
    args = parser.parse_args(argv)
    if args.check:
        stale = check()
        print("notebooks in sync" if not stale else f"out of sync: {', '.join(stale)}")
        return 1 if stale else 0
    notebooks = all_notebooks()
    for name, cells in notebooks.items():
        nbformat.write(build(cells), HERE / name)
    if args.execute:
        execute(sorted(notebooks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
