"""Building blocks the stages' networks share: spectrally normalised layers (SN-GAN), the
generators' BatchNorm, the grey output layer and the class-label inputs. Each stage's own
builders are in its module (`dcgan`, `refinement`, `srgan`)."""

from __future__ import annotations

import keras
from keras import layers, ops

# Generator BatchNorm momentum 0.9 (PyTorch's 0.1): moving statistics follow a fast-changing
# generator; with Keras' 0.99 the inference-mode samples of a short run came out flat grey.
GENERATOR_BN_MOMENTUM = 0.9


class SpectralNormalised:
    """Spectral normalisation (Miyato et al. 2018) for a layer with a `kernel`: the kernel is
    divided by its largest singular value, estimated by one power iteration per training call
    from a persistent vector u (a non-trainable weight, carried like BatchNorm's statistics on
    every backend). Unlike `keras.layers.SpectralNormalization`, which writes the normalised
    kernel back into the trainable one, the division stays in the graph: gradients see σ(W)."""

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(shape=(1, self.kernel.shape[-1]), name="vector_u", trainable=False,
                                        initializer=keras.initializers.RandomNormal(stddev=1.0))

    def call(self, inputs, training=False):
        outputs = self.apply_kernel(inputs, self.normalised_kernel(training))
        return self.activation(outputs + self.bias if self.use_bias else outputs)

    def normalised_kernel(self, training):
        matrix = ops.reshape(self.kernel, (-1, self.kernel.shape[-1]))
        vector_v = _unit(ops.matmul(self.vector_u, ops.transpose(matrix)))
        vector_u = ops.stop_gradient(_unit(ops.matmul(vector_v, matrix)))
        sigma = ops.sum(ops.matmul(ops.stop_gradient(vector_v), matrix) * vector_u)
        if training:
            self.vector_u.assign(vector_u)
        return self.kernel / sigma


def _unit(vector):
    return vector / (ops.sqrt(ops.sum(ops.square(vector))) + 1e-12)


class SpectralConv2D(SpectralNormalised, layers.Conv2D):
    """Conv2D with a spectrally normalised kernel (channels-last)."""

    def apply_kernel(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)


class SpectralDense(SpectralNormalised, layers.Dense):
    """Dense with a spectrally normalised kernel."""

    def apply_kernel(self, inputs, kernel):
        return ops.matmul(inputs, kernel)


def generator_batch_norm():
    return layers.BatchNormalization(momentum=GENERATOR_BN_MOMENTUM)


def grey_channels(image, channels: int, name: str = "image"):
    """The generator's output layer "image": a one-channel grey image repeated to `channels`
    (three equal channels for the paper's 64×64×3 networks), or the image as it is (channels 1).
    Grey modalities draw grey: free colour channels gave X-ray candidates a mean channel spread of
    27 grey levels that the filter and the judge scored and the export then discarded."""
    if channels <= 1:
        return layers.Identity(name=name, dtype="float32")(image)
    return layers.Concatenate(name=name, dtype="float32")([image] * channels)


def label_input():
    return keras.Input(shape=(), dtype="int32", name="label")


def label_plane(label, num_classes: int, size: int, name: str):
    """Class label → one size×size feature plane (embedding → dense → reshape), as in §3.3's
    "label information using embedding layers" and the common Keras cGAN recipe."""
    embedded = layers.Embedding(num_classes, 50, name=f"{name}_embedding")(label)
    plane = layers.Dense(size * size, name=f"{name}_dense")(embedded)
    return layers.Reshape((size, size, 1), name=f"{name}_plane")(plane)
