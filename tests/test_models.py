"""Exact §3.6/§3.7 shapes and parameter counts, checked against hand arithmetic."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mgm_tf import dcgan, gan, refinement, srgan
from mgm_tf.baselines import cyclegan


def _output_shapes(model):
    return {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}


def _conv(kernel, inputs, filters):
    return kernel * kernel * inputs * filters + filters


def test_conditional_generator_shapes_follow_section_3_6():
    generator = refinement.build_conditional_generator()
    shapes = _output_shapes(generator)
    assert shapes["noise"] == (100,) and shapes["condition"] == (64, 64, 3)
    assert shapes["noise_dense"] == (16384,)
    assert shapes["condition_conv1"] == (16, 16, 64)
    assert shapes["condition_conv2"] == (8, 8, 128)
    assert shapes["bottleneck"] == (8, 8, 384)
    transposed = [shape for name, shape in shapes.items() if name.startswith("conv2d_transpose")]
    assert transposed == [(16, 16, 128), (32, 32, 64), (64, 64, 32)]
    assert shapes["image"] == (64, 64, 3)
    assert generator.get_layer("image").dtype_policy.name == "float32"


def test_conditional_discriminator_shapes_follow_section_3_7():
    discriminator = refinement.build_conditional_discriminator()
    shapes = _output_shapes(discriminator)
    assert shapes["pair"] == (64, 64, 6)
    convs = [shape for name, shape in shapes.items() if name.startswith("conv2d")]
    assert convs == [(32, 32, 64), (16, 16, 128), (8, 8, 256)]
    assert shapes["flatten"] == (16384,) and shapes["logit"] == (1,)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in discriminator.layers)


def test_paper_exact_parameter_counts():
    dense = 100 * 16384 + 16384
    condition = _conv(5, 3, 64) + _conv(4, 64, 128)
    transposed = _conv(4, 384, 128) + _conv(4, 128, 64) + _conv(4, 64, 32)
    batch_norm_trainable = 2 * (128 + 64 + 32)
    output = _conv(3, 32, 3)
    generator = gan.count_parameters(refinement.build_conditional_generator())
    assert generator["trainable"] == dense + condition + transposed + batch_norm_trainable + output == 2_742_659
    assert generator["non_trainable"] == 2 * (128 + 64 + 32)
    discriminator = gan.count_parameters(refinement.build_conditional_discriminator())
    assert discriminator["trainable"] == _conv(4, 6, 64) + _conv(4, 64, 128) + _conv(4, 128, 256) + 16384 + 1 == 678_337


def test_label_conditioned_variants_add_one_plane():
    generator = refinement.build_conditional_generator(num_classes=3)
    assert generator.get_layer("bottleneck").output.shape[1:] == (8, 8, 385)
    discriminator = refinement.build_conditional_discriminator(num_classes=3)
    assert discriminator.get_layer("pair").output.shape[1:] == (64, 64, 7)
    output = generator([np.zeros((2, 100), "float32"), np.zeros((2, 64, 64, 3), "float32"), np.array([0, 2])])
    assert output.shape == (2, 64, 64, 3) and float(np.abs(output).max()) <= 1.0


@pytest.mark.parametrize("num_classes", [None, 2])
def test_dcgan_and_cgan_baseline_shapes(num_classes):
    generator = dcgan.build_dcgan_generator(num_classes=num_classes)
    discriminator = dcgan.build_dcgan_discriminator(num_classes=num_classes)
    noise = np.random.default_rng(0).standard_normal((2, 100)).astype("float32")
    labels = np.array([0, 1], "int32")
    images = np.asarray(generator([noise, labels] if num_classes else noise))
    assert images.shape == (2, 64, 64, 3)
    assert discriminator([images, labels] if num_classes else images).shape == (2, 1)


def test_projection_discriminator_adds_the_class_embeddings_inner_product_with_its_features():
    """Miyato & Koyama's projection: no label plane at the input, and two labels on one image
    differ by exactly features · (embedding[y] − embedding[y'])."""
    discriminator = dcgan.build_dcgan_discriminator(num_classes=3, base_filters=8, label_conditioning="projection")
    assert all("label_plane" not in layer.name for layer in discriminator.layers)
    assert discriminator.get_layer("image").output.shape[1:] == (64, 64, 3)
    images = np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    features = keras.Model(discriminator.inputs, discriminator.get_layer("projection").input[0])
    embedding = np.asarray(discriminator.get_layer("label_projection").embeddings)
    logits = {label: np.asarray(discriminator([images, np.full(2, label, "int32")])).ravel() for label in (0, 2)}
    flat = np.asarray(features([images, np.zeros(2, "int32")]))
    expected = flat @ (embedding[0] - embedding[2])
    assert np.abs(expected).min() > 1e-3
    np.testing.assert_allclose(logits[0] - logits[2], expected, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="label_conditioning"):
        dcgan.build_dcgan_discriminator(num_classes=3, label_conditioning="concat")


def test_cyclegan_pair_shapes():
    generator, discriminator = cyclegan.build_cycle_generator(num_residual_blocks=2), cyclegan.build_patch_discriminator()
    images = generator(np.zeros((1, 64, 64, 3), "float32"))
    assert images.shape == (1, 64, 64, 3) and discriminator(images).shape == (1, 16, 16, 1)


def test_pixel_shuffle_matches_depth_to_space():
    values = np.random.default_rng(1).standard_normal((2, 5, 7, 12)).astype("float32")
    ours = srgan.DepthToSpace(2)(values)
    assert np.allclose(ours, tf.nn.depth_to_space(values, 2))


def test_srgan_upscales_any_size_by_four():
    generator = srgan.build_srgan_generator(num_residual_blocks=2, filters=16)
    assert generator(np.zeros((1, 16, 20, 3), "float32")).shape == (1, 64, 80, 3)
    assert generator(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 256, 256, 3)
    discriminator = srgan.build_srgan_discriminator(filters=8)
    assert discriminator(np.zeros((2, 96, 96, 3), "float32")).shape == (2, 1)
