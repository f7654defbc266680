import keras
import pytest

from mgm_tf import refinement
from mgm_tf.evaluation import flops


def _single(layer, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


def test_dense_flops():
    assert flops.model_flops(_single(keras.layers.Dense(7), (5,))) == 2 * 5 * 7


def test_conv_and_transposed_conv_flops():
    conv = _single(keras.layers.Conv2D(8, 3, strides=2, padding="same"), (16, 16, 4))
    assert flops.model_flops(conv) == 2 * 3 * 3 * 4 * 8 * 8 * 8
    transposed = _single(keras.layers.Conv2DTranspose(8, 4, strides=2, padding="same"), (16, 16, 4))
    assert flops.model_flops(transposed) == 2 * 4 * 4 * 4 * 8 * 16 * 16


def test_paper_discriminator_flops_and_unknown_sizes():
    discriminator = refinement.build_conditional_discriminator()
    expected = 2 * (16 * 6 * 64 * 32 * 32 + 16 * 64 * 128 * 16 * 16 + 16 * 128 * 256 * 8 * 8 + 16384)
    assert flops.model_flops(discriminator) == expected
    from mgm_tf.srgan import build_srgan_generator

    with pytest.raises(ValueError, match="fixed input size"):
        flops.model_flops(build_srgan_generator(num_residual_blocks=1))
    assert flops.model_flops(build_srgan_generator(num_residual_blocks=1, input_size=16)) > 0
