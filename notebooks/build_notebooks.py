"""The single source of every notebook in this folder.

    python notebooks/build_notebooks.py            # rewrite the .ipynb sources (outputs dropped)
    python notebooks/build_notebooks.py --execute  # rewrite, run 00–05 at demo size (the others keep no outputs)
    python notebooks/build_notebooks.py --check    # exit 1 if a committed notebook differs from this source
    python notebooks/build_notebooks.py --text     # new wording only: rewrite markdown, keep the outputs

REPOSITORY and REF below are the one place the install source is written: the setup cell of
every notebook shows them as form fields (a fork changes them there, or here and rebuilds).
REF is the release tag of this version, made with the release (`git tag v<version>`): unlike
a branch it does not move, so a runtime that reconnects installs the code that made its run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from mgm_tf import __version__  # noqa: E402
from mgm_tf.notebook import FULL_SIZE_CPU_HOURS  # noqa: E402
from mgm_tf.timing import cpu_hours, hours_range, paper_gpu_hours, training_class_counts  # noqa: E402

REPOSITORY = "https://github.com/mgm-tf/mgm_tf.git"
REF = f"v{__version__}"
GITHUB = REPOSITORY.removesuffix(".git").replace("https://github.com/", "")
CHECK = "# NBVAL_CHECK_OUTPUT"
PAPER = ("S. Patel and A. Makwana, *MixGANMed: A Novel Hybrid Generative Framework for Multi-Modal Medical Imaging "
         "Synthesis*, 2025 ([find it](https://scholar.google.com/scholar?q=MixGANMed+A+Novel+Hybrid+Generative+Framework"
         "+for+Multi-Modal+Medical+Imaging+Synthesis))")
DATASET_CHOICES = '["demo", "pneumonia_xray", "diabetic_retinopathy", "brain_tumor_mri", "skin_cancer", "leukemia"]'
# Measured on a 2-core AVX2-only CPU (oneDNN limited to AVX2; benchmarks/demo_time.py), demo preset.
DEMO_TIME = "about 3 minutes of training on a 2-core CPU; the evaluation adds 10–15 minutes (it trains two baselines and 51 small classifiers). A T4 is not needed at this size."
STAGE_TIMES = {"01": "demo preset: about 1 minute on a 2-core CPU (measured).",
               "02": "demo preset: about 40 s on a 2-core CPU (measured, 300 steps).",
               "03": "a few seconds for the demo preset's 200 candidates on a 2-core CPU (measured).",
               "04": "demo preset: about 25 s on a 2-core CPU (measured: SRGAN and export).",
               "05": "10–15 minutes for the demo run on a 2-core CPU (measured on two machines, with its two baselines)."}


def buttons(name: str) -> str:
    colab = f"https://colab.research.google.com/github/{GITHUB}/blob/{REF}/notebooks/{name}"
    source = f"https://github.com/{GITHUB}/blob/{REF}/notebooks/{name}"
    return (f'<table align="left"><td><a target="_blank" href="{colab}"><img '
            'src="https://colab.research.google.com/assets/colab-badge.svg" alt="Run in Google Colab"/></a></td>'
            f'<td><a target="_blank" href="{source}">View source on GitHub</a></td></table><br clear="left"/>\n\n'
            "Copyright 2026 the mgm_tf authors. Licensed under the MIT License (see the repository).")


SETUP_TEXT = ("Run the setup cell first. In Colab choose *Runtime → Change runtime type → T4 GPU* before it. On a "
              "fresh runtime it installs the release in `REF` from `REPOSITORY` (about a minute; a folder named "
              "`mgm_tf`, from a clone or an upload, does not count as installed); then it prints the device and the "
              "numeric precision it will train in (`mixed_float16` on a T4). `BACKEND` is the Keras backend: "
              "`tensorflow`, or `jax` on a TPU runtime (Colab's and Kaggle's TPU runtimes have no TensorFlow) — "
              "changing it needs *Runtime → Restart session* first, and a run keeps the backend it started on. "
              "Training state lives in the run directory, so after a disconnect you run the cells again and training "
              "continues where it stopped. A fork changes `REPOSITORY` and `REF` in the form.")
DRIVE_TEXT = ("A run trains on the runtime's disk. With `use_drive` ticked, the Drive cell mounts Google Drive (Colab "
              "asks you to sign in) and the run is copied to `MyDrive/mgm_tf_runs` after every stage and every "
              "training backup (at most a minute apart), so a new runtime continues from there. Untick it, or "
              "decline the sign-in, and the run stays on this runtime only; the cell says which.")


def shared_link(section: str, text: str) -> str:
    """A link to a section of notebooks/README.md, where the text every notebook shares is said once."""
    return f"[{text}](https://github.com/{GITHUB}/blob/{REF}/notebooks/README.md#{section})"


def shared_readme() -> str:
    """notebooks/README.md: the setup, Drive, options and TensorBoard text, once for every notebook."""
    return ("# The notebooks: what every one shares\n\nEach notebook links here instead of repeating this text. "
            "The notebooks themselves are listed, with Colab links, in the repository's README.\n\n"
            f"## Setup\n\n{SETUP_TEXT}\n\n## Google Drive\n\n{DRIVE_TEXT}\n\n"
            f"## Options\n\n{OPTIONS_TEXT.split(chr(10), 1)[1]}\n\n"
            f"## TensorBoard\n\n{TENSORBOARD_TEXT.split(chr(10), 1)[1]}\n")


def setup_cell(full_size: bool) -> str:
    return f"""#@title Setup: install mgm_tf (a fixed release) and check the runtime
REPOSITORY = "{REPOSITORY}"  #@param {{type:"string"}}
REF = "{REF}"  #@param {{type:"string"}}
BACKEND = "tensorflow"  #@param ["tensorflow", "jax"]
import importlib, importlib.util, sys
spec = importlib.util.find_spec("mgm_tf")
if spec is None or spec.origin is None:  # not installed (a cloned or uploaded folder named mgm_tf is no package)
    %pip install -q "git+{{REPOSITORY}}@{{REF}}"
    importlib.invalidate_caches(); sys.modules.pop("mgm_tf", None)
    spec = importlib.util.find_spec("mgm_tf")
if spec is None or spec.origin is None:
    raise RuntimeError(f"mgm_tf could not be installed from {{REPOSITORY}}@{{REF}}: check both fields (a fork: its "
                       "own address; REF: a tag or commit that exists there), or run %pip install PATH on a clone")
from mgm_tf import notebook
policy = notebook.setup(full_size={full_size}, backend=BACKEND)  # backend, versions, device, precision policy"""


T4_TEXT = ("modelled for a T4, not measured: each step costs at least what an H200 measured for it (Keras 3 on JAX) "
           "and its FLOPs at 10–35 % of the T4's fp16 peak (`mgm_tf/timing.py`); the range is the uncertainty")


def t4(stage: str, dataset: str = "pneumonia_xray") -> str:
    """A stage's (or 'pipeline', 'evaluation') modelled T4 time at the paper's configuration on a
    dataset's training images (the paper's chest X-rays unless named)."""
    return hours_range(paper_gpu_hours(dataset=dataset)[stage])


def header(name: str, title: str, what: str, time: str, full_size: bool = False) -> list:
    return [("markdown", f"{buttons(name)}\n\n# {title}\n\n{what}\n\n**How long.** {time}\n\n"
                         f"**Paper.** {PAPER}. Section numbers (§) below refer to it; its claimed numbers are "
                         "claims this suite measures, not results it copies."),
            ("markdown", "## Setup\nRun this cell first; in Colab pick *Runtime → Change runtime type → T4 GPU* "
                         f"before it. It installs the release `REF`, chooses the Keras `BACKEND` and prints the device "
                         f"and precision ({shared_link('setup', 'what it does and how to change it')}).\n\n"
                         "After a disconnect, run the cells again: training continues where it stopped."),
            ("code", setup_cell(full_size))]


def drive_cells(use_drive: bool = True) -> list:
    return [("markdown", "## Google Drive\nTick `use_drive` to copy the run to `MyDrive/mgm_tf_runs` as it trains, "
                         f"so a new runtime continues from there ({shared_link('google-drive', 'more')})."),
            ("code", f'#@title Google Drive\nuse_drive = {use_drive}  #@param {{type:"boolean"}}\n'
                     "drive = notebook.connect_drive(use_drive)")]


def options_cell(run_name: str, dataset: str, choices: str = "") -> str:
    """The options form; `choices` (a list literal) makes the dataset a field."""
    dataset_line = f'dataset = "{dataset}"  #@param {choices}' if choices else f'dataset = "{dataset}"'
    return (f'#@title Options (0 or empty keeps the preset)\nrun_name = "{run_name}"  #@param {{type:"string"}}\n'
            f"{dataset_line}\n"
            'handle = ""  #@param {type:"string"}\n'
            'epochs = 0  #@param {type:"integer"}\n'
            'sr_epochs = 0  #@param {type:"integer"}\n'
            'num_images = 0  #@param {type:"integer"}\n'
            'precision = "auto"  #@param ["auto", "float32", "mixed_float16", "mixed_bfloat16"]\n'
            'smoke_mode = False  #@param {type:"boolean"}\n'
            'data_dir = ""  #@param {type:"string"}\n'
            'devices = "1"  #@param ["1", "all"] {allow-input: true}\n'
            "run = notebook.open_run(run_name, dataset, data_dir, epochs, num_images, precision, smoke_mode, handle,\n"
            "                        sr_epochs, devices)")


OPTIONS_TEXT = ("## Options\n`handle`: a Kaggle handle to use instead of the dataset card's, `owner/slug` (the latest "
                "version) or `owner/slug/versions/N`. `epochs`: epochs of each GAN (the paper trains 1,000; the demo "
                "preset counts optimiser steps instead). `sr_epochs`: epochs of the SRGAN (100 at paper scale; most of "
                "a CPU run's time). `num_images`: synthetic images exported per class. `precision`: `auto` picks "
                "`mixed_float16` on a T4 and is recorded with the run; a run is not resumed under another policy. "
                "`smoke_mode`: a few steps at tiny sizes, to see every cell work (not results); untick it and run the "
                "cell again to train for real. `data_dir`: a folder of your own images, one subfolder per class, "
                "instead of the dataset. `devices`: `all` trains on every GPU of the runtime, or the 8 cores of a "
                "TPU v5e-8 (data parallel; the batch rounded to a multiple of them), `1` on one. Re-running with the "
                "same `run_name` resumes the run; raising `epochs` or `sr_epochs` continues training.")

RESOURCES_TEXT = ("## This runtime, and how long the run will take on it\nThe GPU (name and memory), CPU and disk, "
                  "then a few train steps of every stage this configuration trains, the evaluation's baselines and "
                  "classifiers included, timed here and multiplied by the steps the configuration asks for.")

TENSORBOARD_TEXT = ("## TensorBoard\nEvery GAN stage logs its losses for TensorBoard as it trains "
                    "(`<stage>/tensorboard/`). Started before training, TensorBoard rereads the run every 30 s, so "
                    "each stage's curves appear while it trains. In Colab the cell opens it here; elsewhere it prints "
                    "the command.")


def options_cells(run_name: str, dataset: str, choices: str = "", extra: str = "") -> list:
    return [("markdown", "## Options\n0 or an empty field keeps the preset; re-running with the same `run_name` "
                         "resumes the run, and raising `epochs` continues training. `smoke_mode` runs a few steps at "
                         f"tiny sizes to see every cell work, not results ({shared_link('options', 'every field')})."
                         + extra),
            ("code", options_cell(run_name, dataset, choices))]


def tensorboard_cells() -> list:
    """TensorBoard on the run, before its training cell."""
    return [("markdown", "## TensorBoard\nStarted before training, it shows each stage's losses while it trains "
                         f"(in Colab here; elsewhere the cell prints the command; {shared_link('tensorboard', 'more')})."),
            ("code", "notebook.tensorboard(run)")]


def checked_cell(source: str, compared: bool = True) -> str:
    """A checked cell: its facts raise when they fail; with `compared`, nbval also compares its
    output with the committed one (only in notebooks committed with outputs)."""
    return f"{CHECK}\n{source}" if compared else source


def next_steps(text: str) -> list:
    return [("markdown", f"## Next steps\n{text}")]


def stage_preamble(name: str, title: str, what: str, time: str) -> list:
    return header(name, title, what, time) + drive_cells() + options_cells(
        "stages_demo", "demo", DATASET_CHOICES, " The stage notebooks share the run `stages_demo`: run them in order, "
        "or run one alone (in smoke mode it first makes what it needs). The outputs saved here come from a demo-size "
        "run of 01 to 05 in order (16 chest X-rays, the demo preset).") + [
        ("code", "prepared = run.prepared()\nnotebook.show_counts(prepared)")]


def loss_cells(equations: str, code: str) -> list:
    """The losses as equations, then their code as the stage runs it."""
    return [("markdown", f"## The losses\n{equations}"), ("code", code)]


def train_step_cells(trainer: str, module: str, what: str) -> list:
    return [("markdown", f"## The train step\n{what}"),
            ("code", f"from mgm_tf import {module}\nnotebook.show_train_step({module}.{trainer})")]


def quickstart() -> list:
    return header(
        "00_quickstart.ipynb", "MixGANMed quickstart: the whole pipeline on 16 real chest X-rays",
        "This notebook runs every stage of MixGANMed — an unconditional DCGAN (G1), a conditional refinement GAN "
        "(G2) that turns G1's samples into labelled images, a quality filter, an SRGAN that upsamples ×4, and the "
        "export of a labelled dataset marked as synthetic — on the `demo` set embedded in the package: 16 chest "
        "X-rays of Kermany et al. (CC BY 4.0), 8 normal and 8 with bacterial pneumonia. It needs no Kaggle account "
        "and no GPU. Sixteen images are far too few for good images: this shows the pipeline working and how to "
        "judge its output, not results. The demo trains smaller networks than the paper's, for fewer steps "
        "(README, \"What the demo changes\"). The outputs saved in this notebook come from a real demo-size run.",
        f"{DEMO_TIME} Setup on a fresh Colab runtime adds about a minute.") + drive_cells(False) + [
        ("markdown", "## Options\nThe run directory keeps everything the run makes. `smoke_mode` runs a few steps "
                     "only (what CI does)."),
        ("code", '#@title Options\nrun_name = "quickstart_demo"  #@param {type:"string"}\n'
                 'smoke_mode = False  #@param {type:"boolean"}\n'
                 'run = notebook.open_run(run_name, "demo", smoke=smoke_mode)'),
        ("markdown", "## The data\nWhere the images come from, their licence and how to cite them, then the number "
                     "of images per class and split. Patients never straddle the training and test splits, so the "
                     "test images measure what the networks learned, not what they saw."),
        ("code", f'{CHECK}\nnotebook.show_dataset_card("demo")'),
        ("code", "prepared = run.prepared()\nnotebook.show_counts(prepared)"),
        ("markdown", RESOURCES_TEXT),
        ("code", "estimate = notebook.show_resources(run, prepared)"),
    ] + tensorboard_cells() + [
        ("markdown", "## Train and synthesise\nEvery stage in order, each with a progress bar; while a GAN trains, "
                     "its newest sample grid replaces the last one below it. A stage that has finished is skipped "
                     "when the cell runs again. Look at the loss values only to see that training runs: GAN losses "
                     "do not measure image quality."),
        ("code", "timings = notebook.run_stages(run)"),
        ("markdown", "How long each stage took, next to the estimate the resources cell made before training."),
        ("code", "notebook.show_estimate_against_measured(estimate, timings)"),
        ("code", f'{CHECK}\nnotebook.training_facts(run, "dcgan")\nnotebook.training_facts(run, "cgan")'),
        ("markdown", "## Look at what was made\nFirst G1's samples from fixed noise over training, then G2's "
                     "refinements (top row: the conditioning images), the filter's best and worst candidates with "
                     "its score histograms, and finally real and exported synthetic images side by side. Ask of "
                     "them what a radiologist would: do they look like chest X-rays, do they differ from each "
                     "other, and does any look like a copy of a real one?"),
        ("code", 'notebook.show_sample_progress(run, "dcgan")\nnotebook.show_samples(run, "cgan")'),
        ("code", "notebook.show_filter(run)\nnotebook.show_synthetic(run)"),
        ("markdown", "## The exported dataset, measured\n`synthetic/` holds the images, `manifest.csv` (per image: "
                     "label, label status, the judge's p(label), the referee's class, seed, lineage) and a dataset "
                     "card, `README.md`. The check below stops with an error if any of its facts fails; every line should say `holds`. Then the variety check (a failure stops the cell: the export is one repeated image) and the report's table: each "
                     "measure next to the real images' value and its target — pairwise SSIM at most 0.2 above the "
                     "real one (1.0: one image repeated), pixel diversity at least half the real one, recall above 0 "
                     "(they cover some real images), memorised share 0 — each marked met or missed. Pixel precision "
                     "is shown without a target: on 12 real images almost no new image falls within a real one's "
                     "pixel neighbourhood, and the table says so when it reads 0. Last, the labels: with 2 held-out "
                     "images per class (one calibrates the judge, one evaluates the referee) no class can be checked, "
                     "so every row here is `unchecked`, its `label_reason` says why, and the card and the folder "
                     "count them."),
        ("code", f"{CHECK}\nnotebook.export_facts(run)"),
        ("code", "notebook.variety_facts(run)\nnotebook.show_export_check(run)"),
        ("markdown", "## Take the dataset with you\nOne zip of `synthetic/` (images, manifest, card): downloaded by "
                     "the browser in Colab, copied to Drive when Drive is connected."),
        ("code", "archive = notebook.download_synthetic(run)"),
        ("markdown", "## Evaluate\nEvery row of the paper's comparison measured the same way (see "
                     "`05_evaluation.ipynb` for how to read each number): KID on the dataset's own features, "
                     "precision/recall, memorisation, label agreement by the referee, and whether a classifier "
                     "trained with the synthetic images does better on real held-out patients."),
        ("code", "from mgm_tf.evaluation.evaluate import evaluate_run\nmetrics = evaluate_run(run)\n"
                 "notebook.show_evaluation(run)"),
        ("code", f"{CHECK}\nnotebook.metric_facts(metrics)"),
    ] + next_steps("Open a dataset notebook (`10_…` to `14_…`) to train on a real dataset on a T4, or the stage "
                   "notebooks (`01_…` to `05_…`) to see each stage's networks and training one at a time. The "
                   "images are in the run directory under `synthetic/`, each PNG marked as synthetic.")


def dcgan() -> list:
    return stage_preamble(
        "01_dcgan.ipynb", "Stage 1 — DCGAN: learning what the images look like (paper §3.2)",
        "G1 is an unconditional DCGAN: from 100 numbers drawn from a normal distribution it makes a 64×64 image, "
        "and a discriminator D1 learns to tell its images from real ones. It sees every training image, whatever "
        "its class, and learns the modality's structure. Its samples become the conditioning images of stage 2. "
        "That is the demo's G1, §3.2's; on the paper's datasets the default G1 also takes the class y, and D1 "
        "judges \"a real image of class y\" (a projection discriminator): the only G1 we measured that draws the "
        "classes as often as the data has them (README, \"Does each stage earn its place?\"). "
        "This notebook also trains the label judge and referee (the `judge` stage): two small CNNs on disjoint "
        "halves of the real training images, whose features track KID during training and which later choose and "
        "check labels.",
        f"{STAGE_TIMES['01']} Paper settings on its chest X-rays: about 18 h on that CPU (measured step time × steps), "
        f"{t4('dcgan')} on a T4 ({T4_TEXT}).") + [
        ("markdown", "## The networks\nDCGAN conventions (Radford et al.): G1 grows a 4×4 map to 64×64 with "
                     "transposed 4×4 convolutions, BatchNorm and ReLU, ending in tanh; D1 shrinks the image with "
                     "strided convolutions and LeakyReLU to one logit. The printed counts are the paper-size "
                     "networks' and are checked in CI (the demo's D1 is narrower: see the summary above them)."),
        ("code", 'notebook.show_networks(run, "dcgan", prepared.num_classes)'),
        ("code", f'{CHECK}\nfrom mgm_tf import dcgan, gan\n'
                 "print(gan.count_parameters(dcgan.build_dcgan_generator()))\n"
                 "print(gan.count_parameters(dcgan.build_dcgan_discriminator()))"),
    ] + loss_cells(
        "Eq. 1 is the minimax game of Goodfellow et al.: D1 maximises "
        "$\\mathbb{E}_x[\\log D(x)] + \\mathbb{E}_z[\\log(1 - D(G(z)))]$ and G1 minimises the second term. As "
        "every DCGAN does, G1 instead minimises the non-saturating $-\\mathbb{E}_z[\\log D(G(z))]$, which gives it a "
        "gradient while D1 still wins easily. Both are binary cross-entropies of D1's logits, summed for D1 as the "
        "paper's Table 1 reports them:\n\n"
        "$$L_{D} = -\\log D(x) - \\log(1 - D(G(z))), \\qquad L_{G} = -\\log D(G(z)) + "
        "\\lambda_{ms} L_{ms},$$\n\n"
        "where $L_{ms} = 1 / (\\frac{\\lVert G(z_1) - G(z_2)\\rVert_1}{\\lVert z_1 - z_2\\rVert_1} + \\epsilon)$ is the "
        "mode-seeking term (Mao et al. 2019, off at the paper's settings, on in the demo): two halves of the batch "
        "whose images differ little for noise that differs much cost G1, which is what mode collapse looks like. "
        "The code, as every stage and baseline uses it:",
        "from mgm_tf import losses\n"
        "notebook.show_code(losses.bce_from_logits, losses.discriminator_loss, losses.generator_loss,\n"
        "                   losses.mode_seeking_term)") + train_step_cells("DCGANTrainer", "dcgan",
                         "One step, as `fit` runs it: real images in, noise drawn, G1 forward, D1 on real and fake "
                         "images (DiffAugment first on small sets), the two losses of eq. 1 (plus the mode-seeking "
                         "term when it is on), then each network's gradient of its own loss, both optimizers applied: "
                         "two gradient tapes on TensorFlow, one `jax.vjp` pulled back twice on JAX.") + [
        ("markdown", "## Train\nAdam, β1 0.5, batch 16 (§4; the demo preset's learning rate is 2e-4). The bar shows "
                     "epochs with the latest losses, and the newest grid of samples from fixed noise replaces the "
                     "last one as training goes. The backup is written at most once a minute, so a disconnect costs "
                     "at most a minute."),
    ] + tensorboard_cells() + [
        ("code", 'print(run.config.dcgan)\ntimings = notebook.run_stages(run, "judge", "dcgan")'),
        ("code", f'{CHECK}\nnotebook.training_facts(run, "dcgan")'),
        ("markdown", "## Before and after training\nThe same eight noise vectors through a freshly initialised G1 "
                     "(top: near-uniform grey, what every GAN starts from) and through the trained one (bottom)."),
        ("code", "notebook.show_untrained_and_trained_g1(run, prepared.num_classes)"),
        ("markdown", "## Over training\nSamples from the same noise early, midway and at the end of training: "
                     "blobs should turn into the modality's shapes, and the 16 samples should differ from each "
                     "other (identical samples are mode collapse). Then the losses per epoch; D's loss falling to "
                     "zero means D won and G stopped learning. KID against training time is in `05_evaluation`."),
        ("code", 'notebook.show_sample_progress(run, "dcgan")\nnotebook.show_history(run, "dcgan")'),
    ] + next_steps("Continue with `02_conditional_gan.ipynb` on the same `run_name`.")


def conditional() -> list:
    return stage_preamble(
        "02_conditional_gan.ipynb", "Stage 2 — conditional refinement GAN (paper §3.3, §3.6, §3.7)",
        "G2 refines G1's samples c. By default (`cgan.refiner` \"residual\") it is trained on what it refines: "
        "G1 is frozen inside the train step, c = G1(z1) is drawn each step, and G2(z, c) = c + r(z, c) starts as the "
        "identity; D2 judges the image alone against real images, and a term |low_pass(G2(z, c)) − low_pass(c)| "
        "keeps the anatomy (and the class) c was drawn with. The paper's variant (`refiner` \"paper\") learns x "
        "from c = degrade(x), a real image made soft the way a DCGAN sample is, with D2 judging the pair (x, c) "
        "and a label plane. At synthesis c comes from G1, drawn until the label judge accepts that it shows class "
        "y (for the classes the judge can check).",
        f"{STAGE_TIMES['02']} Paper settings on its chest X-rays: about 26 h on that CPU (measured step time × steps), "
        f"{t4('cgan')} on a T4 ({T4_TEXT}).") + [
        ("markdown", "## The networks\nThe run's networks first. The paper's refiner with `num_classes=None` and "
                     "width 1 is §3.6/§3.7 exactly (D2 alone has 678,337 parameters, the paper's \"0.67 M\"), "
                     "checked in the cell after; the residual refiner shares its body. The demo preset halves every "
                     "width."),
        ("code", 'notebook.show_networks(run, "cgan", prepared.num_classes)'),
        ("code", f"{CHECK}\nfrom mgm_tf import gan, refinement\n"
                 "print(gan.count_parameters(refinement.build_conditional_generator()))\n"
                 "print(gan.count_parameters(refinement.build_conditional_discriminator()))\n"
                 "print(refinement.build_conditional_discriminator().get_layer('pair').output.shape)"),
    ] + loss_cells(
        "The residual refiner (the default) plays the game of eq. 1 with D2 judging an image alone, plus SimGAN's "
        "self-regularisation, which ties the refinement to what G1 drew:\n\n"
        "$$c = G_1(z_1)\\ \\text{(frozen)}, \\qquad L_{D_2} = -\\log D_2(x) - \\log(1 - D_2(G_2(z_2, c))),$$\n\n"
        "$$L_{G_2} = -\\log D_2(G_2(z_2, c)) + \\lambda\\, \\overline{\\big(G_2(z_2, c) - c\\big)^2},$$\n\n"
        "the mean over pixels of the squared move (λ 10; the demo's 200; `self_regularisation_norm` \"l1\" is "
        "SimGAN's absolute move, which let G2 draw thin streaks on the demo's films). G2(z2, c) = c + r(z2, c) starts "
        "as the identity, so before training its output is its input. The paper's refiner (eq. 2, §3.3) is a "
        "conditional GAN on pairs instead: D2 judges (x, c, y) against (G2(z2, c, y), c, y) with c = degrade(x) of "
        "a real image, and never sees a G1 sample. The tie and the paper's losses in code:",
        "from mgm_tf import refinement\n"
        "notebook.show_code(refinement.low_pass, refinement.tie_distance,\n"
        "                   refinement.ConditionalRefinementTrainer.compute_losses)") + train_step_cells(
        "ResidualRefinementTrainer", "refinement",
        "The residual refiner's step below: c = G1(z1) is drawn from the frozen G1 inside the step (with y for a "
        "class-conditional G1), G2 refines it, D2 judges real and refined images (DiffAugment on both for small "
        "sets), and the tie is added to G2's loss.") + tensorboard_cells() + [
        ("markdown", "## Train\nThe same optimiser settings as stage 1. When stage 1 has run, KID of the whole "
                     "sampler G2(z2, G1(z1), y) is logged as training goes (`cgan/kid.csv`)."),
        ("code", 'print(run.config.cgan)\ntimings = notebook.run_stages(run, "cgan")'),
        ("code", f'{CHECK}\nnotebook.training_facts(run, "cgan")'),
        ("markdown", "## Before and after training, and over training\nEach grid's top row holds the conditioning "
                     "images c — G1's samples for the residual refiner, degrade(x) of real images for the paper's. "
                     "An untrained residual G2 returns c unchanged, so the top row is also G2 before training; the "
                     "bottom row is G2's refinement of the same c at that epoch. The refinements should keep c's "
                     "anatomy and look no worse. Early, middle and last epochs, then the losses per epoch."),
        ("code", 'notebook.show_sample_progress(run, "cgan")\nnotebook.show_history(run, "cgan")'),
    ] + next_steps("Continue with `03_quality_filter.ipynb` on the same `run_name`.")


def quality_filter() -> list:
    return stage_preamble(
        "03_quality_filter.ipynb", "Stage 3 — synthesis and the quality filter (paper §3.4)",
        "Synthesis makes candidates x = G2(z2, c, y) for every class, one recorded seed per image. For a class the "
        "label judge passed on held-out real images, c = G1(z1) is redrawn until the judge accepts it as y (p(y) at "
        "the class's threshold, floored to refuse images between classes); for the others c is the paper's "
        "class-blind draw and the rows stay unchecked. The "
        "filter needs no training: by default it scores each candidate by its realism among the real training "
        "images of its class (in the judge's features: how deep inside their k-nearest-neighbour balls it lies); "
        "§3.4's scores — the variance of its Laplacian (sharpness), the entropy of its grey-level histogram "
        "(detail) and its mean gradient magnitude (edges) — are computed too and chosen by `filter.score` "
        "\"paper\". It ranks the scores within the class and keeps the best 20 %, never a candidate of a checked "
        "class the judge refused.",
        f"{STAGE_TIMES['03']} The filter scores about 17,600 images/s there.") + [
        ("markdown", "## The scores\nThe default realism score (Kynkäänniemi et al. 2019) of a candidate $g$ among "
                     "the real training images $r$ of its class, in the judge's features $\\phi$:\n\n"
                     "$$R(g) = \\max_r \\frac{\\rho_k(r)}{\\lVert \\phi(g) - \\phi(r) \\rVert},$$\n\n"
                     "where $\\rho_k(r)$ is the distance from $r$ to its $k$-th nearest real neighbour: at least 1 "
                     "inside some real image's neighbourhood, near 0 far from every real image. §3.4's scores, on "
                     "the grey image $I$: sharpness $\\operatorname{Var}(\\nabla^2 I)$, entropy "
                     "$-\\sum_v p_v \\log_2 p_v$ of its grey-level histogram, and edges, the mean of "
                     "$\\lVert \\nabla I \\rVert$ (Sobel). Each is ranked within the class and the ranks averaged. "
                     "All three of §3.4's grow with high-frequency energy, noise included, which is why they are not "
                     "the default. The code:"),
        ("code", "from mgm_tf import quality_filter\n"
                 "notebook.show_code(quality_filter.realism_scores, quality_filter._scores_chunk)"),
        ("markdown", "## Synthesise and filter\nThis needs stages 1 and 2 in the run (notebooks 01 and 02)."),
        ("code", 'notebook.require(run, "judge", "dcgan", "cgan")\n'
                 'timings = notebook.run_stages(run, "synthesize", "filter")'),
        ("code", f'{CHECK}\nnotebook.filter_facts(run)'),
        ("markdown", "## Look at the results\nFirst G1's samples (top) and G2's refinements of the same samples "
                     "(bottom) among the candidates. Then the score histograms over all candidates, and the "
                     "highest-scored candidates (top row) and the lowest (bottom row): images that look like the "
                     "real ones of their class should rank high."),
        ("code", 'notebook.show(run.path / "candidates" / "g1_then_g2.png")\nnotebook.show_filter(run)'),
    ] + next_steps("Continue with `04_srgan.ipynb` on the same `run_name`.")


def srgan() -> list:
    return stage_preamble(
        "04_srgan.ipynb", "Stage 4 — SRGAN ×4 and the export (paper §3.5, §7)",
        "An SRGAN learns to turn 64×64 images into 256×256 ones from real images: random high-resolution crops "
        "and their bicubic downsamples. Its loss adds to the adversarial term the pixel MSE and the MSE of VGG19 "
        "features (eq. 3). It is then applied to the filtered synthetic images, which are exported as PNGs marked "
        "synthetic in their text chunks and names, with a manifest of labels and their status, lineage, seeds, "
        "scores and sha256, and a dataset card.",
        f"{STAGE_TIMES['04']} Paper-scale SRGAN on the paper's chest X-rays: {t4('srgan')} on a T4 ({T4_TEXT}); about 50 h "
        "on a 2-core CPU (measured step time × steps).") + [
        ("markdown", "## The networks\nSRResNet: residual blocks, two sub-pixel ×2 upsamplings, and the bicubic "
                     "upsampling of the input added to the output, so it starts as bicubic and learns detail."),
        ("code", 'notebook.show_networks(run, "srgan", prepared.num_classes)'),
    ] + loss_cells(
        "Eq. 3: the generator's loss adds to the adversarial term the pixel MSE against the real high-resolution "
        "crop $x$ and the MSE of frozen VGG19 features $\\phi$ (SRGAN's perceptual loss), for the low-resolution "
        "input $x_{lr}$:\n\n"
        "$$L_{G} = -\\log D(G(x_{lr})) + \\lambda_1 \\overline{(G(x_{lr}) - x)^2} + "
        "\\lambda_2 \\overline{(\\phi(G(x_{lr})) - \\phi(x))^2},$$\n\n"
        "λ1 = 100 and λ2 = 200 (`srgan.content_weight`, `perceptual_weight`); D's loss is eq. 1's. The perceptual "
        "term in code (the rest is in the train step below):",
        "from mgm_tf import srgan\nnotebook.show_code(srgan.vgg_input, srgan.perceptual_loss)") + train_step_cells(
        "SRGANTrainer", "srgan",
        "Low- and high-resolution crops in; G upsamples, D judges; G's loss is the adversarial term plus λ1 × pixel "
        "MSE plus λ2 × the MSE of frozen VGG19 features (eq. 3).") + tensorboard_cells() + [
        ("markdown", "## Train, then export\nVGG19 uses ImageNet weights when the runtime can download them (Colab "
                     "can); offline it uses random weights and the report says so."),
        ("code", 'notebook.require(run, "judge", "dcgan", "cgan", "synthesize", "filter")\n'
                 'print(run.config.srgan)\ntimings = notebook.run_stages(run, "srgan", "export", "report")'),
        ("markdown", "## Before and after training\nFour held-out real images at 64 px, upsampled ×4: bicubic, the "
                     "SRGAN before training (it adds the bicubic upsampling to its output, so it starts near "
                     "bicubic plus its random residual), after training, and the real 256-px image."),
        ("code", "notebook.show_untrained_and_trained_srgan(run, prepared)"),
        ("markdown", "## Super-resolution next to bicubic, on held-out real images\nPSNR (dB) and SSIM against the "
                     "real 256×256 image: higher is better, and the SRGAN should at least match bicubic "
                     "upsampling; GANs often trade a little PSNR for sharper texture. The sample grid's top row is "
                     "bicubic, the bottom row the SRGAN."),
        ("code", 'notebook.show_super_resolution(run)\nnotebook.show_samples(run, "srgan")'),
        ("markdown", "## The exported dataset\nEvery line of the check must say `holds` (a failing fact stops the cell); then the variety check, real and synthetic images side by "
                     "side, each titled, and the zip to take away."),
        ("code", f"{CHECK}\nnotebook.export_facts(run)"),
        ("code", "notebook.variety_facts(run)\nnotebook.show_synthetic(run)\narchive = notebook.download_synthetic(run)"),
    ] + next_steps("Measure the result in `05_evaluation.ipynb`.")


EVALUATION_GUIDE = (
    "## How to read the numbers\n"
    "- **KID ×100** (kernel inception distance) compares the distribution of synthetic and real features; lower "
    "is better, about 0 means indistinguishable. It is unbiased at small sample sizes, unlike FID.\n"
    "- **FID** is reported as *standard* only with ImageNet InceptionV3 features (Colab downloads them); FID on "
    "the domain CNN's features compares runs of this suite, never numbers in papers.\n"
    "- **Precision** is the share of synthetic images that fall near real ones (fidelity); **recall** the share "
    "of real images near some synthetic one (variety). Both in [0, 1], higher is better, computed on equal "
    "sample sizes.\n"
    "- **Memorised share**: synthetic images closer to a training image than held-out real images ever come. "
    "It should be 0; any flagged image is shown in `nearest_pairs.png` and should not be shared.\n"
    "- **Pairwise SSIM** of the synthetic images against that of the real ones: much higher means repeated "
    "images (1.0: one image repeated).\n"
    "- **Label agreement** is the referee's: a CNN trained on the half of the real training images the judge "
    "never saw, which chose nothing. Raw agreement is not the share of right labels (were every label right it "
    "would be the referee's recall): the report prints beside it the share estimated from the referee's "
    "confusion on held-out real images, with its interval; every row the judge did not accept says `unchecked`.\n"
    "- **Utility**: a classifier (another architecture and other seeds than the judge's) trained on real images, "
    "on synthetic only, and on both, always tested on held-out real patients. Synthetic data helps when real + "
    "synthetic beats real alone.")


def evaluation() -> list:
    return stage_preamble(
        "05_evaluation.ipynb", "Stage 5 — honest evaluation",
        "GAN losses say nothing about image quality. This notebook measures every row of the paper's comparison — "
        "DCGAN, cGAN, CycleGAN, SRGAN on DCGAN, the ablations and MixGANMed — the same way: KID/FID on named "
        "feature extractors, precision/recall, memorisation of training images, diversity, label agreement by an "
        "independent referee, and the utility of the synthetic images for a classifier tested on held-out real "
        "patients.",
        f"{STAGE_TIMES['05']} At the paper's settings on its chest X-rays, the baselines and classifiers take {t4('evaluation')} more on a "
        f"T4 ({T4_TEXT}).") + [
        ("markdown", "## Evaluate\nThis trains what the comparison needs (unless in smoke mode, the cGAN and "
                     "CycleGAN baselines), then measures each row. It needs a finished run (notebooks 01–04)."),
        ("code", 'notebook.require(run, "judge", "dcgan", "cgan", "synthesize", "filter", "srgan", "export")\n'
                 "from mgm_tf.evaluation.evaluate import evaluate_run\nmetrics = evaluate_run(run)"),
        ("code", f'{CHECK}\nnotebook.metric_facts(metrics)'),
        ("markdown", EVALUATION_GUIDE),
        ("markdown", "## Tables and figures\nThe tables, then the first images of each method, the synthetic images "
                     "the referee disagrees with most, the synthetic images nearest to training images with their "
                     "distances, and KID against training time."),
        ("code", "notebook.show_evaluation(run)"),
    ] + next_steps("Gather several runs into the paper's tables with `20_paper_tables.ipynb`.")


DATASET_TEXT = {
    "pneumonia_xray": ("Pneumonia chest X-ray", "grey chest X-rays (normal / pneumonia), CLAHE contrast normalisation"),
    "diabetic_retinopathy": ("Diabetic retinopathy fundus",
                             "colour fundus photos in five grades, border crop and Reinhard colour normalisation. "
                             "The default is APTOS 2019 (0.4 GB), not the paper's EyePACS 2015 data (88 GB): "
                             "`diabetic_retinopathy_eyepacs` has those images"),
    "brain_tumor_mri": ("Brain-tumour MRI", "grey axial MRI slices (tumour / no tumour), skull stripping"),
    "skin_cancer": ("Skin-lesion dermoscopy", "dermoscopy (benign / malignant), hair removal and grey-world balance"),
    "leukemia": ("Leukaemia blood smear",
                 "blood-smear microscopy, Reinhard stain normalisation. This upload's layout is not documented "
                 "anywhere public: the data step checks it first and, if it differs, stops with what it found and "
                 "an alternative source"),
}


# Notebooks whose dataset has variants: (the field's choices, what the options text adds about them).
DATASET_FIELDS = {"diabetic_retinopathy": (
    '["diabetic_retinopathy", "diabetic_retinopathy_eyepacs"]',
    " `dataset`: `diabetic_retinopathy` is APTOS 2019 (3,662 fundus photos, 0.4 GB, public); "
    "`diabetic_retinopathy_eyepacs` the paper's EyePACS 2015 images (35,108, 88 GB; a Kaggle account).")}


def dataset_notebook(number: int, dataset: str) -> tuple[str, list]:
    title, modality = DATASET_TEXT[dataset]
    name = f"{number}_{dataset}.ipynb"
    cells = header(
        name, f"{title}: MixGANMed end to end",
        f"Downloads the `{dataset}` dataset with kagglehub ({modality}), looks at it, trains all four stages at the "
        "paper's settings, puts synthetic images next to real ones, and evaluates them. In smoke mode (CI) the "
        "download is served offline from tiny generated fixtures in the Kaggle folder layout, titled as such. "
        "This notebook is saved without outputs: a run at the paper's settings needs a GPU, and a smoke run's "
        "figures would show blobs under text about results. `00_quickstart` shows every figure of a real "
        "(demo-size) run, and the README a real-vs-synthetic figure from brain slices; your run fills these cells "
        "with its own.",
        f"at the paper's settings on this dataset's {sum(training_class_counts(dataset)):,} training images and a T4, "
        f"{t4('pipeline', dataset)} for the pipeline (label judge included) and {t4('evaluation', dataset)} more for "
        f"the evaluation's baselines and classifiers ({T4_TEXT}); about "
        f"{cpu_hours(dataset, FULL_SIZE_CPU_HOURS):.0f} h on a 2-core CPU (measured step times × steps), so use a "
        "GPU: on a runtime without one the run is refused unless you set `epochs`. The resources cell below times "
        "this runtime. Downloads take minutes.", full_size=True) + drive_cells() + [
    ] + options_cells(dataset, dataset, *DATASET_FIELDS.get(dataset, ())) + [
        ("markdown", "## The data\nPublic Kaggle datasets download without a Kaggle account; competition data (the "
                     "EyePACS 2015 images) needs one, as the secret `KAGGLE_API_TOKEN` (Colab's key icon; "
                     "kaggle.com → Settings → API → Generate New Token) or `kagglehub.login()`. This notebook never "
                     "prints or stores a key. In Colab, kagglehub may serve a dataset from Colab's own cache, whose "
                     "path names no version: the report then says which version was asked for, or that it is unknown. "
                     "The card says where the data comes from, its licence and how to cite it."),
        ("code", "notebook.data_source(dataset)"),
        ("code", "notebook.show_dataset_card(dataset)"),
        ("code", "prepared = run.prepared()\nnotebook.show_counts(prepared)"),
        ("markdown", "### A sample of each class, and the preprocessing before and after\nThe top row shows files as "
                     "decoded and resized, the bottom row after the modality's preprocessing."),
        ("code", "notebook.show_class_previews(prepared)\nnotebook.show_preprocessing(run, prepared)"),
        ("markdown", RESOURCES_TEXT),
        ("code", "estimate = notebook.show_resources(run, prepared)"),
    ] + tensorboard_cells() + [
        ("markdown", "## Train all stages\nThe label judge and referee → DCGAN → conditional refinement GAN → synthesis "
                     "→ quality filter → SRGAN → export, each with a progress bar and, for the GANs, the newest sample "
                     "grid; the stage notebooks `01`–`04` explain each one. A disconnect loses at most a minute of "
                     "training: run the cells again."),
        ("code", "timings = notebook.run_stages(run)\nnotebook.show_estimate_against_measured(estimate, timings)"),
        ("markdown", "## Look at the results\nG1's samples over training, G2's refinements, the filter's choices, "
                     "then real and synthetic images side by side."),
        ("code", 'notebook.show_sample_progress(run, "dcgan")\nnotebook.show_samples(run, "cgan")\nnotebook.show_filter(run)'),
        ("code", "notebook.show_synthetic(run)"),
        ("code", "notebook.export_facts(run)\nnotebook.variety_facts(run)"),
        ("markdown", "## The exported dataset and its labels\nThe measures next to the real images', each target "
                     "marked met or missed, and which labels were checked: per class the rows checked, the judge's "
                     "recall and precision on held-out real images, the referee's agreement with the exported labels "
                     "and the share of right labels estimated from it. Then "
                     "the zip to take away."),
        ("code", "notebook.show_export_check(run)\narchive = notebook.download_synthetic(run)"),
        ("markdown", "## Does each stage earn its place?\nThe same candidates after each stage (G1 alone, G2's "
                     "refinement, the filter's selection, the SRGAN's export) against held-out real images: KID, a "
                     "classifier's two-sample test, precision/recall, label agreement, class shares and the memorised "
                     "share, and per stage a verdict against its input (better / indistinguishable / worse). The "
                     "filter is compared with a random selection of the same size, the export with DCGAN alone and "
                     "the cGAN baseline. With fewer than 20 held-out images the report says it cannot judge."),
        ("code", "notebook.show_stage_value(run)"),
        ("markdown", "## Evaluate\nSee `05_evaluation.ipynb` for how to read each number."),
        ("code", "from mgm_tf.evaluation.evaluate import evaluate_run\nmetrics = evaluate_run(run)\nnotebook.show_evaluation(run)"),
        ("code", "notebook.metric_facts(metrics)"),
    ] + next_steps("Compare this run with others in `20_paper_tables.ipynb`. The synthetic dataset is in the run "
                   "directory under `synthetic/`, each PNG marked as synthetic; cite the dataset as its card says.")
    return name, cells


def paper_tables() -> list:
    return header(
        "20_paper_tables.ipynb", "The paper's tables, measured",
        "Gathers every evaluated run into the paper's Table 1 (final generator and discriminator losses, shown "
        "for parity only) and Table 2 (training time, trainable parameters) as measured here, next to the numbers "
        "that say something about the images: KID, precision/recall, memorisation and downstream utility.",
        "seconds: it reads finished runs. Saved without outputs: its tables are those of your runs.") + drive_cells() + [
        ("markdown", "## Runs\nEvery run directory with `report/metrics.json`, in the local runs folder and, with "
                     "Drive connected, in its copy on Drive. In smoke mode, if there is none, a tiny demo run is "
                     "made and evaluated first."),
        ("code", '#@title Options\nruns_folder = "runs"  #@param {type:"string"}\n'
                 'runs = notebook.find_runs(runs_folder)\nprint(len(runs) > 0, "evaluated runs found")'),
        ("markdown", "## Tables 1 and 2 next to quality, memorisation and utility\nOne row per run and method. "
                     "The columns the paper reports come first: the final generator and discriminator losses "
                     "(Table 1) and the training time and trainable parameters (Table 2), as measured here. Read "
                     "the losses as the paper reports them, not as quality: a discriminator loss near zero means "
                     "the discriminator won, not that the images are good. Then the columns that do describe the "
                     "images: KID on the dataset's own features (lower is better), precision and recall (fidelity "
                     "and variety, higher is better), the memorised share (should be 0), and the balanced "
                     "accuracy of a classifier trained on real images alone and on real plus synthetic ones, both "
                     "tested on held-out real patients: synthetic data helps when the second is higher. "
                     "`05_evaluation.ipynb` explains each measure."),
        ("code", "table = notebook.paper_tables(runs)"),
        ("code", "notebook.table_facts(table)"),
    ] + next_steps("What the paper claims (0.75 h, 0.67 M parameters, losses of 0.005) is a claim; these rows are "
                   "measurements. Rows from smoke runs only show that the code runs.")


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
    readme = HERE / "README.md"
    stale = [] if readme.exists() and readme.read_text(encoding="utf-8") == shared_readme() else ["README.md"]
    for name, cells in all_notebooks().items():
        path = HERE / name
        if not path.exists() or sources(nbformat.read(path, as_version=4)) != sources(build(cells)):
            stale.append(name)
    return stale


def refresh_text() -> list[str]:
    """Rewrite the markdown cells of executed notebooks whose code cells are unchanged, keeping
    their outputs (a wording change needs no re-run); returns the names whose code changed,
    which need `--execute`."""
    stale = []
    for name, cells in all_notebooks().items():
        path = HERE / name
        notebook, fresh = nbformat.read(path, as_version=4), build(cells)
        code = [(kind, source) for kind, source in sources(notebook) if kind == "code"]
        if code != [(kind, source) for kind, source in sources(fresh) if kind == "code"] or \
                [kind for kind, _ in sources(notebook)] != [kind for kind, _ in sources(fresh)]:
            stale.append(name)
            continue
        for cell, source in zip(notebook.cells, fresh.cells):
            cell.source = source.source
        nbformat.write(notebook, path)
    return stale


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def settled_text(text: str) -> str:
    """Stream text as a terminal would leave it: each line's last carriage-return segment (a
    progress bar's final state), without colour codes."""
    lines = [ANSI.sub("", line).rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(lines)


def tidy_outputs(notebook) -> None:
    """One stream output per stream and cell, settled (a progress bar redrawn 160 times becomes its
    last line): what a reader of the committed notebook sees, not every redraw."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and outputs and outputs[-1].get("output_type") == "stream" \
                    and outputs[-1]["name"] == output["name"]:
                outputs[-1]["text"] += output["text"]
            else:
                outputs.append(output)
        for output in outputs:
            if output.get("output_type") == "stream":
                output["text"] = settled_text(output["text"])
        cell.outputs = outputs


# Committed with the outputs of a real demo-size run (01–05 in order, sharing one run); the
# others are committed without outputs (a full-size run needs a GPU; smoke figures are no results).
EXECUTED = ("00_quickstart.ipynb", "01_dcgan.ipynb", "02_conditional_gan.ipynb", "03_quality_filter.ipynb",
            "04_srgan.ipynb", "05_evaluation.ipynb")


def execute(names) -> None:
    """Run the named notebooks of EXECUTED at demo size, as a user would, and keep their outputs."""
    from nbclient import NotebookClient

    unknown = sorted(set(names) - set(EXECUTED))
    if unknown:
        raise ValueError(f"{', '.join(unknown)} are committed without outputs; execute only {', '.join(EXECUTED)}")
    shutil.rmtree(HERE / "runs", ignore_errors=True)
    os.environ.pop("MGM_SMOKE", None)
    for name in names:
        notebook = nbformat.read(HERE / name, as_version=4)
        NotebookClient(notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        tidy_outputs(notebook)
        nbformat.write(notebook, HERE / name)
        print(f"executed {name}: {(HERE / name).stat().st_size / 1024:.0f} KB", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", nargs="*", metavar="NOTEBOOK",
                        help="execute the notebooks (all, or those named) and keep their outputs")
    parser.add_argument("--check", action="store_true", help="fail if committed notebooks differ from this source")
    parser.add_argument("--text", action="store_true",
                        help="rewrite the markdown of executed notebooks whose code is unchanged, keeping outputs")
    args = parser.parse_args(argv)
    if args.text:
        stale = refresh_text()
        print("markdown rewritten" + (f"; code changed in {', '.join(stale)}: run --execute on them" if stale else ""))
        return 1 if stale else 0
    if args.check:
        stale = check()
        print("notebooks in sync" if not stale else f"out of sync: {', '.join(stale)}")
        return 1 if stale else 0
    notebooks = all_notebooks()
    (HERE / "README.md").write_text(shared_readme(), encoding="utf-8")
    for name, cells in notebooks.items():
        if args.execute is None or not args.execute or name in args.execute:
            nbformat.write(build(cells), HERE / name)
    if args.execute is not None:
        execute(sorted(args.execute or EXECUTED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
