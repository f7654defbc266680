"""Analytic FLOP counts from layer shapes (a multiply-add is 2 FLOPs).

Counts Dense, Conv2D and Conv2DTranspose layers (>99 % of the work in these networks);
normalisation, activations and resizes are left out, so achieved GFLOP/s are slight
underestimates. A train step costs ~3× the forward FLOPs of every network on the gradient
path (forward, gradient w.r.t. activations, gradient w.r.t. weights).
"""

from __future__ import annotations

import math

import keras


def _spatial(shape) -> int:
    return math.prod(int(size) for size in shape[1:-1])


def layer_flops(layer) -> int:
    """Forward FLOPs of one layer for one sample; needs concrete (built) input/output shapes."""
    if isinstance(layer, keras.layers.Dense):
        inputs = int(layer.input.shape[-1])
        return 2 * inputs * layer.units * max(1, _spatial(layer.input.shape) if len(layer.input.shape) > 2 else 1)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kernel = math.prod(layer.kernel_size)
        return 2 * kernel * int(layer.input.shape[-1]) * layer.filters * _spatial(layer.input.shape)
    if isinstance(layer, keras.layers.Conv2D):
        kernel = math.prod(layer.kernel_size)
        return 2 * kernel * int(layer.input.shape[-1]) * layer.filters * _spatial(layer.output.shape)
    return 0


def model_flops(model: keras.Model) -> int:
    """Forward FLOPs per sample of a functional model with fixed input sizes (nested models included)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += model_flops(layer)
        else:
            if any(size is None for size in (layer.output.shape[1:] if hasattr(layer, "output") else ())):
                raise ValueError(f"layer {layer.name} of {model.name} has unknown sizes {layer.output.shape}; "
                                 "build the model with a fixed input size to count FLOPs")
            total += layer_flops(layer)
    return total


def gan_step_flops(generator_flops: int, discriminator_flops: int, batch_size: int, generator_calls: int = 1,
                   discriminator_calls: int = 2, extra_forward: int = 0) -> int:
    """One simultaneous G/D update: 3 × forward FLOPs of everything on the gradient path
    (+ forward-only work such as VGG features of the real image)."""
    forward = generator_calls * generator_flops + discriminator_calls * discriminator_flops
    return batch_size * (3 * forward + extra_forward)
