"""Stage 4 (§3.5): SRGAN ×4 (Ledig et al. 2017) trained on real images — the networks (fully
convolutional, so they train on crops and run on whole images), the VGG19 perceptual loss, the
trainer, the stage with its held-out PSNR/SSIM next to bicubic, and the ×4 sampler the export
uses."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from mgm_tf.data.batches import sr_full_pairs, sr_input
from mgm_tf.blocks import generator_batch_norm
from mgm_tf.gan import GANTrainer
from mgm_tf.losses import discriminator_loss, generator_loss, mean_squared_error
from mgm_tf.sampling import progress
from mgm_tf.imaging import from_model_range, peak_signal_to_noise, resize_all, structural_similarity
from mgm_tf.io import write_json
from mgm_tf.run import compile_trainer, fit_stage, save_networks, strategy_scope

VGG_FEATURE_SCALE = 12.75  # SRGAN's rescaling of VGG feature maps (Ledig et al. 2017)


# --- networks -------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="mgm_tf")
class DepthToSpace(layers.Layer):
    """Sub-pixel upsampling (H, W, C·r²) → (H·r, W·r, C) in TensorFlow's DCR order (what
    `tf.nn.depth_to_space` and `keras.ops.depth_to_space` compute). Written with `ops.reshape`
    and `ops.transpose` because Keras 3.13, the version Colab ships, has no
    `ops.depth_to_space`; a layer rather than a Lambda so a saved model reloads safely."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        shape = ops.shape(inputs)
        batch, height, width, channels = shape[0], shape[1], shape[2], inputs.shape[-1] // self.factor ** 2
        blocks = ops.reshape(inputs, (batch, height, width, self.factor, self.factor, channels))
        blocks = ops.transpose(blocks, (0, 1, 3, 2, 4, 5))
        return ops.reshape(blocks, (batch, height * self.factor, width * self.factor, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        scale = lambda size: None if size is None else size * self.factor  # noqa: E731
        return batch, scale(height), scale(width), channels // (self.factor ** 2)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _prelu():
    return layers.PReLU(shared_axes=[1, 2])


def build_srgan_generator(channels: int = 3, filters: int = 64, num_residual_blocks: int = 16, scale: int = 4,
                          bicubic_skip: bool = True, input_size: int | None = None,
                          name: str = "srgan_generator") -> keras.Model:
    """SRResNet generator: conv 9×9 + PReLU, residual blocks (conv-BN-PReLU-conv-BN + skip), a
    long skip, log2(scale) sub-pixel ×2 stages, conv 9×9. Any input size.

    bicubic_skip=True (default) adds the bicubic upsampling of the input to the output and
    starts the last conv at zero, so the network begins as bicubic interpolation and learns the
    missing detail (the global residual of VDSR/ESRGAN-style models); without it (the SRGAN
    paper's form, tanh output) short runs give images far worse than bicubic. BatchNorm momentum
    0.9, as in every generator here: with Keras' 0.99 the moving statistics of a short run (the
    demo's SRGAN trains a few dozen steps) stay near their initial values, and the export uses them."""
    if scale not in (2, 4, 8):
        raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
    low = keras.Input(shape=(input_size, input_size, channels), name="low_resolution")
    hidden = _prelu()(layers.Conv2D(filters, 9, padding="same")(low))
    skip = hidden
    for _ in range(num_residual_blocks):
        residual = _prelu()(generator_batch_norm()(layers.Conv2D(filters, 3, padding="same")(hidden)))
        residual = generator_batch_norm()(layers.Conv2D(filters, 3, padding="same")(residual))
        hidden = layers.Add()([hidden, residual])
    hidden = generator_batch_norm()(layers.Conv2D(filters, 3, padding="same")(hidden))
    hidden = layers.Add()([hidden, skip])
    for _ in range(int(math.log2(scale))):
        hidden = _prelu()(DepthToSpace(2)(layers.Conv2D(filters * 4, 3, padding="same")(hidden)))
    if not bicubic_skip:
        hidden = layers.Conv2D(channels, 9, padding="same")(hidden)
        return keras.Model(low, layers.Activation("tanh", dtype="float32", name="image")(hidden), name=name)
    detail = layers.Conv2D(channels, 9, padding="same", kernel_initializer="zeros", name="detail")(hidden)
    upsampled = layers.UpSampling2D(scale, interpolation="bicubic", name="bicubic")(low)
    image = layers.Add(dtype="float32", name="image")([layers.Activation("linear", dtype="float32")(upsampled),
                                                       layers.Activation("linear", dtype="float32")(detail)])
    return keras.Model(low, image, name=name)


def build_srgan_discriminator(channels: int = 3, filters: int = 64, dense_units: int = 1024,
                              input_size: int | None = None, name: str = "srgan_discriminator") -> keras.Model:
    """SRGAN discriminator: eight 3×3 convs (f, f/2, 2f, 2f/2, 4f, 4f/2, 8f, 8f/2; BatchNorm after
    the first, LeakyReLU 0.2) → global average pooling (instead of Flatten, so crops and whole
    images both work) → Dense → LeakyReLU → one logit. input_size fixes the size (FLOP counts)."""
    image = keras.Input(shape=(input_size, input_size, channels), name="image")
    hidden = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 3, padding="same")(image))
    plan = [(filters, 2), (filters * 2, 1), (filters * 2, 2), (filters * 4, 1), (filters * 4, 2),
            (filters * 8, 1), (filters * 8, 2)]
    for width, stride in plan:
        hidden = layers.Conv2D(width, 3, strides=stride, padding="same")(hidden)
        hidden = layers.LeakyReLU(0.2)(layers.BatchNormalization()(hidden))
    hidden = layers.GlobalAveragePooling2D()(hidden)
    hidden = layers.LeakyReLU(0.2)(layers.Dense(dense_units)(hidden))
    return keras.Model(image, layers.Dense(1, dtype="float32", name="logit")(hidden), name=name)


def build_srgan(stage_config):
    generator = build_srgan_generator(filters=stage_config.filters,
                                      num_residual_blocks=stage_config.residual_blocks)
    return generator, build_srgan_discriminator(filters=stage_config.discriminator_filters)


def load_srgan_generator(run):
    """The SRGAN generator with its trained weights."""
    generator, _ = build_srgan(run.config.srgan)
    generator.load_weights(str(run.path / "srgan" / "generator.weights.h5"))
    return generator


# --- perceptual loss ------------------------------------------------------------------------

def vgg_input(images):
    """[-1, 1] RGB (grey already repeated to 3 channels) → VGG19's input, by Keras' own
    `vgg19.preprocess_input` ('caffe': 0–255 BGR minus the ImageNet channel means)."""
    return keras.applications.vgg19.preprocess_input((ops.cast(images, "float32") + 1.0) * 127.5)


def build_vgg_extractor(weights: str | None = "imagenet", layer: str = "block5_conv4",
                        input_size: int | None = None) -> keras.Model:
    """Frozen VGG19 feature extractor (SRGAN's φ5,4 by default), built once per trainer.

    weights: "imagenet" (downloads on first use, e.g. on Colab), None (random, for tests and
    offline runs: the perceptual term then measures nothing useful — the report says so), or a
    path to a `.weights.h5`/`.h5` file saved from `keras.applications.VGG19(include_top=False)`.
    """
    local = weights not in (None, "imagenet")
    if local and not Path(weights).is_file():
        raise ValueError(f"VGG19 weights file {weights} does not exist")
    vgg = keras.applications.VGG19(include_top=False, weights=None if local else weights,
                                   input_shape=(input_size, input_size, 3))
    if local:
        vgg.load_weights(weights)
    extractor = keras.Model(vgg.input, vgg.get_layer(layer).output, name=f"vgg19_{layer}")
    extractor.trainable = False
    return extractor


def perceptual_loss(extractor: keras.Model, target, prediction):
    """MSE between VGG19 feature maps of HR and SR images (rescaled as in SRGAN)."""
    target_features = ops.cast(extractor(vgg_input(target), training=False), "float32") / VGG_FEATURE_SCALE
    predicted_features = ops.cast(extractor(vgg_input(prediction), training=False), "float32") / VGG_FEATURE_SCALE
    return ops.mean(ops.square(target_features - predicted_features))


class PerceptualLoss:
    """The frozen VGG19 behind the perceptual term, held in a plain object: Keras saves every
    layer a trainer holds as an attribute, and a trainer holding VGG19 itself wrote its 80 MB of
    fixed ImageNet weights (and their twin in the previous-backup file) into every backup."""

    def __init__(self, extractor: keras.Model):
        self.extractor = extractor

    def __call__(self, target, prediction):
        return perceptual_loss(self.extractor, target, prediction)


def resolve_vgg_weights(setting, layer: str = "block5_conv4"):
    """'auto': ImageNet weights when they can be had (Colab, or a filled Keras cache), else
    random weights with a warning — the perceptual term then only regularises, and the run's
    report says so. 'imagenet' insists (and fails offline); None or a file path pass through."""
    if setting != "auto":
        return build_vgg_extractor(setting, layer), str(setting)
    try:
        return build_vgg_extractor("imagenet", layer), "imagenet"
    except Exception as error:  # no network / no cached file: every failure mode of the download
        print(f"warning: VGG19 ImageNet weights unavailable ({type(error).__name__}); using random VGG19 "
              "features for the perceptual loss. Pass --vgg-weights PATH for a local weights file.")
        return build_vgg_extractor(None, layer), "random (ImageNet weights unavailable)"


# --- training -------------------------------------------------------------------------------

class SRGANTrainer(GANTrainer):
    """L = L_adv + λ1·MSE + λ2·VGG19 feature MSE on (LR, HR) pairs (eq. 3).

    Defaults λ1 = 100, λ2 = 200 keep the adversarial term at ~1/200 of the perceptual one, the
    ratio ESRGAN uses (SRGAN: 1/1000); Adam is insensitive to the overall scale of the loss.
    """

    tracked = ("d_loss", "g_loss", "adversarial", "content", "perceptual")

    def __init__(self, generator, discriminator, feature_extractor, content_weight: float = 100.0,
                 perceptual_weight: float = 200.0, seed: int = 0, **kwargs):
        super().__init__(generator, discriminator, 0, seed, **kwargs)
        self.perceptual_loss = PerceptualLoss(feature_extractor)
        self.content_weight = content_weight
        self.perceptual_weight = perceptual_weight

    def frozen_variables(self) -> list:
        """VGG19's weights: inputs of the jitted step on JAX, not constants compiled into it."""
        return list(self.perceptual_loss.extractor.weights)

    def compute_losses(self, data) -> dict:
        low, high = data[0], data[1]
        fake = self.generator(low, training=True)
        real_logits = self.discriminator(self.augmented(high), training=True)
        fake_logits = self.discriminator(self.augmented(fake), training=True)
        adversarial = generator_loss(fake_logits)
        content = mean_squared_error(high, fake)
        perceptual = self.perceptual_loss(high, fake)
        return {"d_loss": discriminator_loss(real_logits, fake_logits),
                "g_loss": adversarial + self.content_weight * content + self.perceptual_weight * perceptual,
                "adversarial": adversarial, "content": content, "perceptual": perceptual}


def srgan_trainer(run, vgg_weights, strategy=None) -> tuple[SRGANTrainer, str]:
    """Stage 4's trainer as the run's configuration builds it, compiled, and the VGG19 weights used."""
    stage_config = run.config.srgan
    with strategy_scope(strategy):
        generator, discriminator = build_srgan(stage_config)
        extractor, vgg_used = resolve_vgg_weights(vgg_weights, stage_config.perceptual_layer)
        trainer = SRGANTrainer(generator, discriminator, extractor, stage_config.content_weight,
                               stage_config.perceptual_weight, seed=run.config.seed)
        compile_trainer(trainer, stage_config, run, compiles=False)  # bicubic resize: no XLA kernel
    return trainer, vgg_used


def stage_srgan(run, prepared, strategy=None) -> dict:
    """Stage 4 (§3.5): SRGAN ×4 trained on real images (random HR crops, bicubic LR), then
    PSNR/SSIM on held-out real images next to bicubic upsampling."""
    stage_config, stage_dir = run.config.srgan, run.stage_dir("srgan")
    trainer, vgg_used = srgan_trainer(run, stage_config.vgg_weights, strategy)
    generator, discriminator = trainer.generator, trainer.discriminator
    dataset = sr_input(prepared, "train", stage_config.batch_size, stage_config.crop, seed=run.config.seed)
    held_out = "test" if len(prepared.indices("test")) else None
    low, _ = next(sr_full_pairs(prepared, held_out or "train", batch_size=4))

    def preview():
        return np.concatenate([bicubic_upscale(low, 256), np.asarray(generator(low, training=False))])

    info = fit_stage(trainer, dataset, stage_dir, stage_config.epochs, preview, stage_config.sample_every,
                     run.config.tensorboard, "stage 4/4: SRGAN x4 on real images (top row: bicubic)",
                     steps_per_execution=run.config.steps_per_execution, hooks=run.hooks,
                     grid_columns=len(low), grid_titles=["bicubic ×4"] * len(low) + ["SRGAN ×4"] * len(low))
    info["parameters"] = save_networks(stage_dir, stage_config, {"generator": generator, "discriminator": discriminator})
    info["vgg_weights"] = vgg_used
    info["evaluation"] = (super_resolution_quality(generator, prepared, held_out) if held_out else
                          {"split": "test", "num_images": 0,
                           "status": "not measured: the dataset has no held-out images (training images would flatter it)"})
    write_json(stage_dir / "evaluation.json", info["evaluation"])
    return info


def psnr_ssim(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR (dB) and SSIM of uint8 images (max value 255, on all channels)."""
    return peak_signal_to_noise(reference, candidate), structural_similarity(reference, candidate)


def bicubic_upscale(low, size: int) -> np.ndarray:
    """Model-range images bicubically resized to size×size, clipped to [-1, 1]: the baseline an
    SRGAN must beat."""
    upscaled = ops.image.resize(low, (size, size), interpolation="bicubic")
    return np.clip(ops.convert_to_numpy(upscaled), -1.0, 1.0)


def summary(values: np.ndarray) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


# --- evaluation and use -----------------------------------------------------------------------

def super_resolution_quality(generator, prepared, split: str = "test", batch_size: int = 8) -> dict:
    """PSNR/SSIM of SR(LR) and of bicubic(LR) against the real HR image, on held-out real
    images (LR = antialiased bicubic 256→64, as in training). The SRGAN trained on the training
    split, so measuring it there would flatter it: that split is refused."""
    if split not in ("test", "val"):
        raise ValueError(f"super-resolution is measured on held-out images only ('test' or 'val'), got {split!r}")
    if not len(prepared.indices(split)):
        raise ValueError(f"dataset {prepared.name} has no {split!r} images to measure super-resolution on")
    rows = {"srgan": ([], []), "bicubic": ([], [])}
    count = 0
    for low, high in sr_full_pairs(prepared, split, batch_size=batch_size):
        reference = from_model_range(high)
        size = reference.shape[1:3]
        candidates = {"srgan": from_model_range(generator(low, training=False)),
                      "bicubic": from_model_range(bicubic_upscale(low, size[0]))}
        for name, candidate in candidates.items():
            psnr, ssim = psnr_ssim(reference, candidate)
            rows[name][0].extend(psnr.tolist())
            rows[name][1].extend(ssim.tolist())
        count += len(reference)
    return {"split": split, "num_images": count,
            **{name: {"psnr": summary(np.array(psnr)), "ssim": summary(np.array(ssim))}
               for name, (psnr, ssim) in rows.items()}}


def super_resolve(generator, images: np.ndarray, batch_size: int = 16, label: str = "super-resolution",
                  back_projection: int = 0) -> np.ndarray:
    """uint8 64×64 → uint8 256×256 through the SRGAN generator, in batches; `back_projection`
    rounds of `back_project` after it (0: the network's output as it is)."""
    outputs = []
    bar = progress(len(images), label)
    for start in range(0, len(images), batch_size):
        low = images[start:start + batch_size]
        high = from_model_range(generator(low.astype(np.float32) / 127.5 - 1.0, training=False))
        outputs.append(back_project(high, low, back_projection) if back_projection else high)
        bar.update(min(start + batch_size, len(images)))
    return np.concatenate(outputs) if outputs else np.zeros((0, 256, 256, 3), np.uint8)


def back_project(high: np.ndarray, low: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Iterative back-projection (Irani & Peleg 1991): add the bicubic upsampling of what the
    image, shrunk back (area), lacks against its input — `rounds` times. The SRGAN may add fine
    detail, but its 64 px content (layout, grey levels: what the filter and the judge chose) stays
    its input's; a small SRGAN that shifts grey levels or smears anatomy otherwise makes the
    export measurably worse than the selection it was given."""
    if rounds < 0:
        raise ValueError(f"srgan.back_projection must be at least 0, got {rounds}")
    result, target = high.astype(np.float32), low.astype(np.float32)
    for _ in range(rounds):
        lacking = target - resize_all(result, low.shape[1])
        result = np.clip(result + resize_all(lacking, high.shape[1], "cubic"), 0, 255)
    return np.round(result).astype(np.uint8)
