"""One dataclass per stage, saved as JSON beside the weights (nanoGPT style: the resolved
config travels with the results). Defaults are the paper's (§4): Adam 1e-4, β1 0.5, batch 16,
1,000 epochs; `demo()` and `smoke()` shrink epochs and sizes, keeping the paper value visible."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from mgm_tf.io import write_json

SMOKE_BANNER = "SMOKE TEST: tiny epochs and sizes — these outputs check that the code runs; they are not results."
# may differ on resume; handled by Run.open / run_pipeline (a stage resumed on other devices continues its state)
RUNTIME_FACTS = ("stages", "policy", "package_version", "backend", "devices")
CONTINUABLE = ("dcgan.epochs", "cgan.epochs", "srgan.epochs")  # a larger value continues training
STAGES = ("judge", "dcgan", "cgan", "synthesize", "filter", "srgan", "export", "report")


@dataclasses.dataclass
class GANConfig:
    """Shared by stage 1 (DCGAN) and stage 2 (conditional refinement GAN)."""

    epochs: int = 1000            # paper §3.2/§4
    batch_size: int = 16          # paper §4
    learning_rate: float = 1e-4   # paper §4
    discriminator_learning_rate: float | None = None  # D's own rate (TTUR, Heusel et al. 2017); None: learning_rate (paper)
    beta_1: float = 0.5           # paper §4
    latent_dim: int = 100         # paper §3.6
    balanced: bool = False        # class-balanced sampling (§3.1 "class balancing techniques")
    diff_augment: str = "auto"    # DiffAugment for D: "on", "off", "auto" = on below 1,000 training images
    augment_policy: str = "translation,cutout"  # its transforms; the DiffAugment paper adds "colour" (see augment.py)
    augment_target: float = 0.0   # ADA: DiffAugment with a probability tuned so E[sign D(real)] stays at this (0.6 in ADA); 0: always
    mode_seeking: float = 0.0     # weight of the mode-seeking term (MSGAN) in G's loss; 0 = the paper's loss
    update_order: str = "simultaneous"  # G and D from one forward pass | "alternating": D, then G through the new D
    steps_per_epoch: int | None = None  # None: an epoch is one pass over the data (paper); N: N steps (tiny sets)
    sample_every: int = 50        # epochs between fixed-noise sample grids
    kid_every: int = 100          # epochs between KID checks on a fixed sample (0: off)
    kid_samples: int = 200        # images generated for each KID check


@dataclasses.dataclass
class DCGANConfig(GANConfig):
    base_filters: int = 256       # G1: 4×4×256 seed → 64×64×3; 1.1 M generator parameters
    discriminator_filters: int = 64  # D1: 64 → 128 → 256 filters (DCGAN conventions)
    generator_average: float = 0.0   # EMA decay of G1's weights, sampled from when > 0 (e.g. 0.999); 0: the paper's G1
    spectral_norm: bool = False      # D1 spectrally normalised, without BatchNorm (SN-GAN); False: the paper's D1
    r1: float = 0.0                  # weight γ of the R1 penalty γ/2·E‖∇D(real)‖² on D1 (0: the paper's loss)
    label_conditioning: str = "projection"  # a label-conditioned D (conditional G1, the cGAN baseline): "projection" (Miyato & Koyama 2018) | "plane" beside the image


@dataclasses.dataclass
class CGANConfig(GANConfig):
    refiner: str = "residual"           # "residual": G2(z, c) = c + r trained on G1's samples | "paper": §3.3/§3.6/§3.7
    self_regularisation: float = 10.0   # residual refiner: weight of its tie to c, d(low_pass(G2(z, c)), low_pass(c)) (SimGAN's self-regularisation)
    self_regularisation_pool: int = 1   # residual refiner: low_pass's box size (1: every pixel tied, SimGAN's ψ = identity; 4 let G2 add speckle)
    self_regularisation_norm: str = "l2"  # d: "l2" mean squared (a large local move costs more: no streaks), "l1" SimGAN's
    label_conditioned: bool = True      # paper refiner: False gives the paper's exact §3.6/§3.7 networks (no label input)
    width: float = 1.0                  # channel multiplier of G2 and D2; 1.0: §3.6/§3.7 exactly
    finetune_epochs_per_class: int = 0  # paper refiner, §3.3 "training set divided by class": extra epochs per class
    degrade_min_size: int = 16          # paper refiner: c = degrade(x), down/up-sampling to 16 or 32 px
    degrade_noise: float = 0.05


@dataclasses.dataclass
class SynthesisConfig:
    """How c is drawn for x = G2(z2, c, y). The paper's literal reading (§3.2-3.3) is
    "class_blind": c = G1(z1) regardless of y, which on the blob fixture gave labels the
    pixels confirm no better than chance (DESIGN.md "Labels a reader can audit"). The default,
    a class-conditional G1 with a projection D1, is a measured deviation from §3.2: on 252 real
    brain slices its class shares came within 6 points of the data's at the CPU budget and 3 at
    1,000 epochs, where the paper's unconditional G1 stayed 12-13 points off (DESIGN.md "Does each
    stage earn its place?"). The demo's 6 films per class keep the unconditional G1 (`demo`)."""

    conditioning: str = "conditional_g1"  # "conditional_g1" (deviates from §3.2) | "class_aware" (§3.2's G1, c drawn for y) | "class_blind" (paper literal)
    condition_attempts: int = 20       # class_aware, conditional_g1: draws of c per image before it is kept not accepted
    label_check: str = "drop"          # "drop": the filter never selects a candidate the judge assigns to another class | "keep"


@dataclasses.dataclass
class FilterConfig:
    candidates_per_class: int = 500  # images synthesised per class before filtering
    keep_fraction: float = 0.2       # paper §3.4: best 20 % per class
    score: str = "realism"           # "realism" (among real class-y images, judge features) | "paper": §3.4's
                                     # sharpness, entropy, edges | "paper+realism" | "inside": realism capped at 1
                                     # (DESIGN "Does each stage earn its place?")


@dataclasses.dataclass
class SRGANConfig:
    epochs: int = 100
    batch_size: int = 16
    learning_rate: float = 1e-4
    beta_1: float = 0.5
    crop: int = 96                    # HR crop (LR 24×24), as in the SRGAN paper
    residual_blocks: int = 16         # SRGAN paper
    filters: int = 64
    discriminator_filters: int = 64
    content_weight: float = 100.0     # λ1 (MSE)
    perceptual_weight: float = 200.0  # λ2 (VGG19 φ5,4 features)
    vgg_weights: str | None = "auto"  # "auto" (ImageNet if obtainable) | "imagenet" | None | path
    perceptual_layer: str = "block5_conv4"  # VGG19 φ5,4 (SRGAN-VGG54); "block2_conv2" is SRGAN-VGG22
    back_projection: int = 10         # export: rounds of back-projection onto the 64 px input (0: the SRGAN's output as is)
    sample_every: int = 10


@dataclasses.dataclass
class EvaluationConfig:
    extractor_epochs: int = 30          # the judge and the referee (each on half the real training split)
    inception: str = "auto"   # "auto" (ImageNet if obtainable, else skipped) | "imagenet" | "random" | "none" | path
    utility_seeds: int = 3
    utility_epochs: int = 20
    reduced_fraction: float = 0.25      # the small-data setting (d)
    baselines: bool = True              # train the cGAN-alone and CycleGAN baselines
    utility_methods: str = "all"        # "all" labelled methods, or one method name (e.g. "MixGANMed")


@dataclasses.dataclass
class RunConfig:
    dataset: str = "demo"
    data_dir: str | None = None
    handle: str | None = None
    seed: int = 0
    precision: str = "auto"       # auto | float32 | mixed_float16 | mixed_bfloat16
    jit_compile: bool | str = "auto"   # "auto": XLA off on CPUs (measured slower), Keras decides on accelerators
    steps_per_execution: int | str = "auto"  # "auto": 1 on CPUs, up to 32 steps per call on accelerators
    devices: str = "1"            # data-parallel training: "1", N, or "all" local accelerators (`backend.training_devices`)
    stages: list = dataclasses.field(default_factory=lambda: list(STAGES))
    smoke: bool = False
    tensorboard: bool = True
    generator_colour: str = "auto"  # "auto": grey modalities' generators draw one grey channel (×3) | "rgb": three (paper)
    dcgan: DCGANConfig = dataclasses.field(default_factory=DCGANConfig)
    cgan: CGANConfig = dataclasses.field(default_factory=CGANConfig)
    synthesis: SynthesisConfig = dataclasses.field(default_factory=SynthesisConfig)
    filter: FilterConfig = dataclasses.field(default_factory=FilterConfig)
    srgan: SRGANConfig = dataclasses.field(default_factory=SRGANConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    # Facts of the run, not choices: written when the run directory is made, compared on resume.
    policy: str = ""              # the precision policy `precision` resolved to (mixed_float16 on a T4)
    package_version: str = ""     # mgm_tf version that made the run
    backend: str = ""             # the Keras backend it trains on (tensorflow or jax; `mgm_tf.backend`)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        write_json(Path(path), self.to_dict())

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        nested = {"dcgan": DCGANConfig, "cgan": CGANConfig, "synthesis": SynthesisConfig, "filter": FilterConfig, "srgan": SRGANConfig,
                  "evaluation": EvaluationConfig}
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown run config field(s): {sorted(unknown)}")
        values = dict(values)
        if "package_version" in values and "generator_colour" not in values:  # a run saved before these choices keeps its networks
            values["generator_colour"] = "rgb"
            values.setdefault("cgan", {}).setdefault("refiner", "paper")
            values.setdefault("filter", {}).setdefault("score", "paper")
        if "package_version" in values and "label_conditioning" not in values.get("dcgan", {}):
            values["dcgan"] = {**values.get("dcgan", {}), "label_conditioning": "plane"}  # its D1 took the label plane
        if "package_version" in values and "self_regularisation_norm" not in values.get("cgan", {}):
            values["cgan"] = {**values.get("cgan", {}), "self_regularisation_norm": "l1"}  # its G2 was tied by L1
        for name, kind in nested.items():
            if name in values:
                values[name] = _sub_config(kind, values[name], name)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _sub_config(kind, values: dict, name: str):
    known = {field.name for field in dataclasses.fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {name} config field(s): {sorted(unknown)}")
    return kind(**values)


# The demo's G1: the paper's unconditional §3.2 DCGAN, c drawn for y by the judge, and the label
# plane for the cGAN baseline's D (synthesis.conditioning, dcgan.label_conditioning).
UNCONDITIONAL_G1 = ("class_aware", "plane")


def demo(dataset: str = "demo") -> RunConfig:
    """The README's main job: every stage on the 16-image demo set in at most 5 minutes of stages
    on a 2-core AVX2-only CPU (DESIGN.md "The demo on any CPU" has the measurements). Sized by
    optimiser steps, not epochs (12 training images make one step per pass), and by cost: what
    the demo changes from the paper, each measured, is
    - G1: 600 steps at learning rate 2e-4 (paper 1e-4) with the mode-seeking term, D1 with half
      the filters (32 → 128; D1 is most of a DCGAN step's work). 300 steps of the full D1 drew
      blocks, not X-rays;
    - G2/D2 at half width (`width` 0.5; the paper's §3.6/§3.7 widths are 1.0), 300 steps at 2e-4.
      The residual refiner needs DiffAugment on its D2 here ("auto": on below 1,000 images):
      without it D2 memorises the 12 images and G2 turned G1's ribs into speckle; with it the
      refinements keep them. The paper's refiner (`refiner` "paper") takes the mode-seeking term
      (its halves share c and y), which took the export's pairwise SSIM from 0.47 to 0.35. The
      residual refiner's tie to c is squared, weight 200 here (10 by default). With SimGAN's L1
      tie at 1, in 300 steps on 12 images, G2 moved G1's films by 22 grey levels on average,
      darker and noisier (pairwise SSIM 0.40 → 0.49, target ≤ 0.43); at 10 by 5.8 levels, but
      3.6 % of pixels by over 40: thin dark vertical streaks on every film. Squared, no pixel
      moved over 40 and no streaks: at 100 by 5.9 levels, the candidates' pairwise SSIM 0.41 →
      0.45 (export 0.46); at 200 by 3.4 levels, export 0.44 (L1 at 10: 0.44);
    - the SRGAN: 4 residual blocks of 32 filters, VGG19 features of block2_conv2 (SRGAN-VGG22),
      8 short epochs. Far too little data for results; enough for varied chest X-rays;
    - G1 is the paper's unconditional one (`UNCONDITIONAL_G1`): with 6 films per class a
      class-conditional G1 with a projection D1 gave less varied exports (pairwise SSIM 0.52,
      0.47 with the label plane) than the unconditional G1 (0.41-0.44; target ≤ 0.43)."""
    config = RunConfig(dataset=dataset)
    config.dcgan = DCGANConfig(epochs=30, steps_per_epoch=20, learning_rate=2e-4, discriminator_filters=32,
                               mode_seeking=2.0, sample_every=5, kid_every=10, kid_samples=64,
                               label_conditioning=UNCONDITIONAL_G1[1])  # 600 steps; paper: 1,000 epochs
    config.synthesis = SynthesisConfig(conditioning=UNCONDITIONAL_G1[0])
    config.cgan = CGANConfig(epochs=15, steps_per_epoch=20, learning_rate=2e-4, width=0.5, mode_seeking=1.0,
                             self_regularisation=200.0, sample_every=5, kid_every=5,
                             kid_samples=64)  # 300 steps; paper: 1,000 epochs
    config.filter = FilterConfig(candidates_per_class=100)    # keeps 20 per class
    config.srgan = SRGANConfig(epochs=8, batch_size=8, crop=64, residual_blocks=4, filters=32, discriminator_filters=32,
                               perceptual_layer="block2_conv2", sample_every=4)  # paper-scale: 100 epochs, 96 px crops
    config.evaluation = EvaluationConfig(extractor_epochs=20, utility_seeds=3, utility_epochs=30)
    return config


def smoke(dataset: str = "demo") -> RunConfig:
    """CI-sized: every stage runs a handful of steps. Outputs are a smoke test, not results."""
    config = RunConfig(dataset=dataset, smoke=True, tensorboard=False)
    config.dcgan = DCGANConfig(epochs=2, batch_size=4, sample_every=1, kid_every=1, kid_samples=8)  # paper: 1000, 16
    config.cgan = CGANConfig(epochs=2, batch_size=4, sample_every=1, kid_every=1, kid_samples=8)    # paper: 1000, 16
    config.synthesis = SynthesisConfig(condition_attempts=4, label_check="keep")  # a 2-epoch judge: no drops
    if dataset == "demo":  # the G1 of the preset it shrinks
        config.synthesis.conditioning, config.dcgan.label_conditioning = UNCONDITIONAL_G1
    config.filter = FilterConfig(candidates_per_class=10)                   # real runs: 500
    config.srgan = SRGANConfig(epochs=1, batch_size=2, crop=48, residual_blocks=2, filters=16,
                               discriminator_filters=8, vgg_weights=None, sample_every=1,
                               perceptual_layer="block2_conv2")  # the demo's: VGG19's first 2 blocks compile fast
    config.evaluation = EvaluationConfig(extractor_epochs=2, inception="none", utility_seeds=1, utility_epochs=2,
                                         utility_methods="MixGANMed", baselines=False)
    return config


def preset(dataset: str, smoke_test: bool = False) -> RunConfig:
    """Smoke preset in smoke mode, the demo preset for `demo`, the paper's settings otherwise."""
    if smoke_test:
        return smoke(dataset)
    return demo(dataset) if dataset == "demo" else RunConfig(dataset=dataset)


def override(config: RunConfig, epochs: int | None = None, sr_epochs: int | None = None,
             batch_size: int | None = None, num_images: int | None = None, precision: str | None = None,
             vgg_weights: str | None = None, stages=None, devices: str | int | None = None) -> RunConfig:
    """The options people change (CLI flags, notebook form fields); None or 0 keeps the preset.
    num_images is the exported count per class: the filter keeps keep_fraction of the
    candidates, so that many / keep_fraction candidates are synthesised."""
    if epochs:
        config.dcgan.epochs = config.cgan.epochs = int(epochs)
    if sr_epochs:
        config.srgan.epochs = int(sr_epochs)
    if batch_size:
        config.dcgan.batch_size = config.cgan.batch_size = int(batch_size)
    if num_images:
        config.filter.candidates_per_class = math.ceil(int(num_images) / config.filter.keep_fraction)
    if precision:
        config.precision = precision
    if vgg_weights:
        config.srgan.vgg_weights = None if vgg_weights == "none" else vgg_weights
    if stages:
        config.stages = list(stages)
    if devices:
        config.devices = str(devices)
    return config
