"""Figures the stage notebooks teach with: what a network makes before training next to what it
makes after, on the same inputs. A reader sees what training changed, not only the end state.
Notebooks call them through `mgm_tf.notebook`."""

from __future__ import annotations

import numpy as np

from mgm_tf.colab import show_figure


def untrained_and_trained_g1(run, num_classes: int, count: int = 8) -> np.ndarray:
    """uint8 images: `count` samples of a freshly initialised G1 (the run's architecture) above
    `count` samples of the trained G1, from the same noise (and labels, for a conditional G1)."""
    from mgm_tf import dcgan
    from mgm_tf.sampling import class_cycle

    if not (run.path / "dcgan" / "generator.weights.h5").exists():
        raise ValueError(f"{run.path / 'dcgan'} has no trained G1 yet: run the dcgan stage first")
    classes = dcgan.g1_classes(run, num_classes)
    labels = class_cycle(classes, count) if classes else None
    seeds = np.arange(count) + run.config.seed
    untrained, _ = dcgan.build_dcgan(run.config.dcgan, classes, run.grey_output())
    trained = dcgan.load_dcgan_generator(run, num_classes)
    latent = run.config.dcgan.latent_dim
    rows = [dcgan.unconditional_samples(generator, seeds, latent, labels=labels, label=name)
            for generator, name in ((untrained, "untrained G1"), (trained, "trained G1"))]
    return np.concatenate(rows)


def show_untrained_and_trained_g1(run, num_classes: int, count: int = 8) -> None:
    from mgm_tf.plots import image_grid

    images = untrained_and_trained_g1(run, num_classes, count)
    titles = ["untrained"] * count + ["trained"] * count
    show_figure(image_grid(images, titles=titles, columns=count, cell=1.6,
                           title="G1 from the same noise: top row before training, bottom row after"))


def untrained_and_trained_srgan(run, prepared, count: int = 4) -> np.ndarray:
    """uint8 256-px images of `count` held-out real images: bicubic ×4 of their 64-px versions,
    a freshly initialised SRGAN's ×4 (it starts near bicubic: the bicubic upsampling is added to
    its output), the trained SRGAN's ×4, and the real 256-px image, one row each."""
    from mgm_tf.data.batches import sr_full_pairs
    from mgm_tf.imaging import from_model_range
    from mgm_tf.srgan import bicubic_upscale, build_srgan, load_srgan_generator

    if not (run.path / "srgan" / "generator.weights.h5").exists():
        raise ValueError(f"{run.path / 'srgan'} has no trained SRGAN yet: run the srgan stage first")
    split = "test" if len(prepared.indices("test")) else "train"
    low, high = next(sr_full_pairs(prepared, split, batch_size=count))
    untrained, _ = build_srgan(run.config.srgan)
    trained = load_srgan_generator(run)
    size = np.asarray(high).shape[1]
    rows = [bicubic_upscale(low, size), untrained(low, training=False), trained(low, training=False), high]
    return np.concatenate([from_model_range(row) for row in rows])


def show_untrained_and_trained_srgan(run, prepared, count: int = 4) -> None:
    from mgm_tf.plots import image_grid

    images = untrained_and_trained_srgan(run, prepared, count)
    count = len(images) // 4
    titles = [name for name in ("bicubic ×4", "untrained SRGAN ×4", "trained SRGAN ×4", "real 256 px")
              for _ in range(count)]
    show_figure(image_grid(images, titles=titles, columns=count, cell=2.4,
                           title="held-out real images at 64 px, upsampled ×4: rows bicubic, untrained SRGAN, "
                                 "trained SRGAN, the real image"))
