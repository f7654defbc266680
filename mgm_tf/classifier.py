"""The small domain CNN that judges labels and measures images: the label judge and referee
(`mgm_tf.judge`), the training-time KID monitor and the evaluation's domain features, and (with
other width and depth) the utility experiment's classifier. Builders, training with flips,
shifts and optional mixup, and batched inference (class probabilities, pooled features)."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import ops

from mgm_tf import backend
from mgm_tf.imaging import to_channels, to_unit_range

# BatchNorm momentum 0.9: with Keras' 0.99 the moving statistics of a few hundred steps (every
# dataset here is small) lagged the weights; on the two-class fixture the judge then ranked held-out
# images perfectly (AUC 1.0) yet called a third of them wrong (accuracy 0.67); with 0.9, 1.00.
CLASSIFIER_BN_MOMENTUM = 0.9


def build_classifier(num_classes: int, image_size: int = 64, width: int = 32, blocks: int = 3,
                     name: str = "domain_cnn") -> keras.Model:
    """A small CNN: `blocks` conv blocks (conv-BN-ReLU ×2, max-pool; widths ×1, ×2, ×4 …),
    global average pooling → `features`, dropout, softmax. The judge, the referee and (with
    other width and blocks) the utility experiment's classifier."""
    image = keras.Input((image_size, image_size, 3), name="image")
    hidden = image
    for multiple in (2 ** block for block in range(blocks)):
        for _ in range(2):
            hidden = keras.layers.Conv2D(width * multiple, 3, padding="same", use_bias=False)(hidden)
            hidden = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=CLASSIFIER_BN_MOMENTUM)(hidden))
        hidden = keras.layers.MaxPooling2D()(hidden)
    features = keras.layers.GlobalAveragePooling2D(name="features")(hidden)
    output = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                name="probabilities")(keras.layers.Dropout(0.3)(features))
    return keras.Model(image, output, name=name)


def compiled_classifier(num_classes: int, width: int = 32, blocks: int = 3, decay_steps: int = 0,
                        soft_labels: bool = False) -> keras.Model:
    """`build_classifier`, compiled as it trains: Adam 1e-3, cross-entropy (on one-hot or mixed
    label vectors with `soft_labels`). With `decay_steps` the rate decays along a cosine to 5 % of
    itself over that many steps: at a constant rate the last steps still moved the judge enough
    that one run passed a class the next failed."""
    model = build_classifier(num_classes, width=width, blocks=blocks)
    rate = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps, alpha=0.05) if decay_steps else 1e-3
    loss, accuracy = (("categorical_crossentropy", "categorical_accuracy") if soft_labels
                      else ("sparse_categorical_crossentropy", "accuracy"))
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=[accuracy])
    return model


@contextlib.contextmanager
def fresh_models():
    """Around training many new classifiers: each traces its own train function, and
    TensorFlow's retracing warning, which counts them together, would fire for tracing that is
    necessary. Other messages pass. (JAX has no such warning.)"""
    if backend.is_jax():
        yield
        return
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int = 20, seed: int = 0,
                     batch_size: int = 32, width: int = 32, blocks: int = 3, mixup: float = 0.0,
                     callbacks=None) -> keras.Model:
    """Fit a classifier on uint8 images with light flips and shifts as augmentation, the
    learning rate decaying to the end of training (`compiled_classifier`). With `mixup` > 0 every
    batch is mixed with itself shuffled, x = λ·x_i + (1 − λ)·x_j with the labels mixed alike,
    λ ~ Beta(mixup, mixup): the network learns to give an image between two classes a
    probability between them, instead of p = 1.0 for one (Zhang et al. 2018, mixup).
    `callbacks` reach `fit` (the time estimate clocks a training with them)."""
    keras.utils.set_random_seed(seed)
    steps = epochs * -(-len(labels) // min(batch_size, max(1, len(labels))))
    model = compiled_classifier(num_classes, width, blocks, decay_steps=steps, soft_labels=mixup > 0)
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed),
                                keras.layers.RandomTranslation(0.05, 0.05, seed=seed)])
    data = _augmented_batches(to_unit_range(images, 64), labels.astype(np.int32), augment, batch_size, seed,
                              mixup, num_classes)
    with fresh_models():
        model.fit(data, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)  # the input shuffles already
    return model


def mix_batch(images: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float, rng: np.random.Generator):
    """mixup of one batch (NumPy): each image with a shuffled partner, λ ~ Beta(alpha, alpha)."""
    share = rng.beta(alpha, alpha, len(labels)).astype(np.float32)
    partner = rng.permutation(len(labels))
    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    mixed = share[:, None, None, None] * images + (1 - share[:, None, None, None]) * images[partner]
    return mixed.astype(np.float32), share[:, None] * onehot + (1 - share[:, None]) * onehot[partner]


def _mix_batch_tensorflow(images, labels, num_classes: int, alpha: float, seed: int):
    """`mix_batch` in TensorFlow ops, for the tf.data input (λ as a ratio of two Gamma draws)."""
    import tensorflow as tf

    count = tf.shape(labels)[0]
    first = tf.random.gamma([count], alpha, seed=seed)
    share = first / (first + tf.random.gamma([count], alpha, seed=seed + 1))
    partner = tf.random.shuffle(tf.range(count), seed=seed + 2)
    onehot = tf.one_hot(labels, num_classes)
    weights = tf.cast(share, images.dtype)[:, None, None, None]  # the augmentation's dtype (bfloat16 under a mixed policy)
    return (weights * images + (1 - weights) * tf.gather(images, partner),
            share[:, None] * onehot + (1 - share[:, None]) * tf.gather(onehot, partner))


def _augmented_batches(images: np.ndarray, labels: np.ndarray, augment, batch_size: int, seed: int,
                       mixup: float = 0.0, num_classes: int = 0):
    """Shuffled, augmented (image, label) batches, mixed when `mixup` > 0: tf.data on TensorFlow
    (a pass's last batch may be smaller), on JAX full batches gathered from the arrays
    (`data.batches.IndexedBatches`), as many per epoch as cover a pass."""
    if backend.is_jax():
        from mgm_tf.data import effective_batch_size
        from mgm_tf.data.batches import IndexedBatches

        rng = np.random.default_rng(seed)

        def make(items, _):
            with backend.on_host():
                augmented = ops.convert_to_numpy(augment(items[0], training=True))
            return mix_batch(augmented, items[1], num_classes, mixup, rng) if mixup > 0 else (augmented, items[1])

        size = effective_batch_size(len(labels), batch_size)
        return IndexedBatches([images, labels], size, seed, steps=-(-len(labels) // size), make=make)
    import tensorflow as tf

    from mgm_tf.data.tfdata import finished

    data = tf.data.Dataset.from_tensor_slices((images, labels))
    data = data.shuffle(len(labels), seed=seed).batch(batch_size).map(lambda x, y: (augment(x, training=True), y))
    if mixup > 0:
        data = data.map(lambda x, y: _mix_batch_tensorflow(x, y, num_classes, mixup, seed))
    return finished(data)


def classify(model: keras.Model, images: np.ndarray, channels: int, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of uint8 images of any size, seen as the classifier saw real images
    (the dataset's channels: a 3-channel output of a grey modality is made grey first). Direct
    calls, not `predict`: no function is traced per model."""
    images = to_channels(np.asarray(images), channels)
    outputs = [np.asarray(model(to_unit_range(images[start:start + batch_size], 64), training=False))
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output.shape[-1]), np.float32)


def pooled_features(model: keras.Model, images: np.ndarray, channels: int, batch_size: int = 256) -> np.ndarray:
    """float64 (N, D) pooled features (the `features` layer) of uint8 images, seen as in `classify`."""
    extractor = keras.Model(model.input, model.get_layer("features").output)
    images = to_channels(np.asarray(images), channels)
    outputs = [np.asarray(extractor(to_unit_range(images[start:start + batch_size], 64), training=False), np.float64)
               for start in range(0, len(images), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, extractor.output.shape[-1]))
