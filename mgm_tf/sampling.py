"""Per-image seeds and the noise drawn from them, preview noise, class cycles, the progress bar
of sampling loops, and the hybrid's sampler x = G2(z2, G1(z1), y): what synthesis, the previews
and the evaluation draw images with."""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from mgm_tf.imaging import from_model_range

# Each synthetic image has its own seed derived from (run seed, class, index), so any single
# image can be regenerated from its manifest row.

def image_seed(run_seed: int, label: int, index: int) -> int:
    """64 bits of sha256(run seed, class, index): with 32 bits, two of 10^5 candidates would
    share a seed (and an image) with probability ~0.7; with 64, ~3·10^-10."""
    digest = hashlib.sha256(f"{run_seed}:{label}:{index}".encode()).hexdigest()
    return int(digest[:16], 16)


def noise_for(seeds, latent_dim: int, streams: int = 1) -> list[np.ndarray]:
    """`streams` independent N(0, 1) vectors per seed (z1 for G1, z2 for G2)."""
    rows = [np.random.default_rng(int(seed)).standard_normal((streams, latent_dim)).astype(np.float32) for seed in seeds]
    stacked = np.stack(rows) if rows else np.zeros((0, streams, latent_dim), np.float32)
    return [stacked[:, stream] for stream in range(streams)]


def fixed_noise(seed: int, count: int, latent_dim: int) -> np.ndarray:
    """The noise of a stage's preview grids: the same every epoch, so the grids show progress."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def class_cycle(num_classes: int, count: int) -> np.ndarray:
    """Labels 0, 1, …, K−1, 0, 1, … for `count` images: every class equally often."""
    return (np.arange(count) % num_classes).astype(np.int32)


def progress(total: int, label: str, unit: str = "image") -> keras.utils.Progbar:
    if label:
        print(label, flush=True)
    return keras.utils.Progbar(total, unit_name=unit)


# --- conditions and refinements: x = G2(z2, G1(z1), y) ---------------------------------------

def condition_noise(seeds: np.ndarray, attempt: int, latent_dim: int) -> np.ndarray:
    """z1 of a given attempt per image seed. Attempt 0 is the paper's z1 (`noise_for` stream 0),
    so class-blind synthesis and the first class-aware attempt draw the same conditions."""
    if attempt == 0:
        return noise_for(seeds, latent_dim, streams=2)[0]
    rows = [np.random.default_rng([int(seed), attempt]).standard_normal(latent_dim) for seed in seeds]
    return np.asarray(rows, np.float32).reshape(len(seeds), latent_dim)


def draw_conditions(dcgan_generator, labels: np.ndarray, seeds: np.ndarray, attempts: np.ndarray, latent_dim: int,
                    batch_size: int = 256) -> np.ndarray:
    """c = G1(z1) — or G1(z1, y) for a class-conditional G1 — for each image's attempt, in [-1, 1]."""
    conditional = len(dcgan_generator.inputs) > 1
    noise = np.zeros((len(seeds), latent_dim), np.float32)
    for attempt in np.unique(attempts):
        members = attempts == attempt
        noise[members] = condition_noise(seeds[members], int(attempt), latent_dim)
    outputs = []
    for start in range(0, len(seeds), batch_size):
        batch = [noise[start:start + batch_size]]
        if conditional:
            batch.append(np.asarray(labels[start:start + batch_size], np.int32))
        outputs.append(np.asarray(dcgan_generator(batch if conditional else batch[0], training=False)))
    return np.concatenate(outputs) if outputs else np.zeros((0, 64, 64, 3), np.float32)


def refine(conditional_generator, conditions: np.ndarray, labels: np.ndarray, seeds: np.ndarray,
           latent_dim: int = 100, batch_size: int = 128, label: str = "refinement",
           class_generators: dict | None = None) -> np.ndarray:
    """x = G2(z2, c, y) for given conditions c (model range), z2 = stream 1 of each image's seed.
    Returns uint8. class_generators maps a label to a per-class fine-tuned G2 (§3.3), used where present."""
    labels = np.asarray(labels, np.int32)
    refined = np.zeros((len(labels), 64, 64, 3), np.uint8)
    bar = progress(len(labels), label)
    for start in range(0, len(labels), batch_size):
        stop = min(start + batch_size, len(labels))
        second = noise_for(seeds[start:stop], latent_dim, streams=2)[1]
        condition, batch_labels = np.asarray(conditions[start:stop], np.float32), labels[start:stop]
        output = np.zeros((stop - start, 64, 64, 3), np.float32)
        for value in np.unique(batch_labels):
            mask = batch_labels == value
            generator = (class_generators or {}).get(int(value), conditional_generator)
            inputs = [second[mask], condition[mask]]
            if len(generator.inputs) > 2:
                inputs.append(batch_labels[mask])
            output[mask] = np.asarray(generator(inputs, training=False))
        refined[start:stop] = from_model_range(output)
        bar.update(stop)
    return refined


def refine_samples(dcgan_generator, conditional_generator, labels: np.ndarray, seeds: np.ndarray,
                   latent_dim: int = 100, batch_size: int = 128, label: str = "synthesis",
                   class_generators: dict | None = None):
    """The paper's literal sampler, class-blind: c = G1(z1), x = G2(z2, c, y). Returns
    (refined, conditions) as uint8. Used to monitor image quality during stage 2; the synthesize
    stage draws c class-aware (`class_aware_conditions`)."""
    conditions = draw_conditions(dcgan_generator, labels, seeds, np.zeros(len(seeds), np.int32), latent_dim, batch_size)
    refined = refine(conditional_generator, conditions, labels, seeds, latent_dim, batch_size, label, class_generators)
    return refined, from_model_range(conditions)
