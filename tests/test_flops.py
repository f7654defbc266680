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


def test_the_step_flops_behind_the_gpu_model_are_the_networks():
    """timing.STEP_GFLOPS (the T4 estimates of the notebooks) recounted from the builders."""
    from mgm_tf import dcgan, srgan, timing
    from mgm_tf.baselines import cyclegan

    def step(generator, discriminator, **kwargs):
        return flops.gan_step_flops(flops.model_flops(generator), flops.model_flops(discriminator), 16, **kwargs) / 1e9

    counted = {"dcgan": step(dcgan.build_dcgan_generator(), dcgan.build_dcgan_discriminator()),
               "cgan": step(refinement.build_conditional_generator(num_classes=2),
                            refinement.build_conditional_discriminator(num_classes=2)),
               "baseline_cgan": step(dcgan.build_dcgan_generator(num_classes=2),
                                     dcgan.build_dcgan_discriminator(num_classes=2)),
               "srgan": step(srgan.build_srgan_generator(input_size=24), srgan.build_srgan_discriminator(input_size=96),
                             extra_forward=4 * flops.model_flops(srgan.build_vgg_extractor(None, input_size=96))),
               "baseline_cyclegan": step(cyclegan.build_cycle_generator(), cyclegan.build_patch_discriminator(),
                                         generator_calls=6, discriminator_calls=4)}
    for stage, value in counted.items():
        assert timing.STEP_GFLOPS[stage] == pytest.approx(value, rel=0.02), stage
    hours = timing.paper_gpu_hours()
    images = sum(timing.training_class_counts("pneumonia_xray"))
    for stage, floor in timing.H200_STEP_SECONDS.items():  # never below what an H200 measured
        steps = timing.PAPER_GAN_EPOCHS * (images // timing.PAPER_BATCH)
        assert hours[stage][0] * 3600 >= floor * steps


def test_step_clock_runs_the_calls_it_times_and_refuses_no_steps():
    """seconds_per_step times 1 + steps calls of steps_per_call steps inside one fit: the
    optimizer takes exactly that many steps, the per-step time is finite and not negative,
    and the estimate pairs each stage with its measured time."""
    import numpy as np

    from mgm_tf import classifier, timing

    network = classifier.compiled_classifier(2)
    batch = (np.zeros((4, 64, 64, 3), np.float32), np.array([0, 1, 0, 1], np.int32))
    per_step, first = timing.seconds_per_step(network, batch, steps=3, steps_per_call=2)
    assert int(keras.ops.convert_to_numpy(network.optimizer.iterations)) == 8
    assert 0.0 <= per_step < float("inf") and first > 0.0
    with pytest.raises(ValueError, match="at least 1"):
        timing.seconds_per_step(network, batch, steps=0)
    rows = [{"stage": "dcgan", "seconds": 40.0}, {"stage": "utility", "seconds": 10.0}]
    assert timing.against_measured(rows, {"dcgan": 50.0, "cgan": 3.0}) == [
        {"stage": "dcgan", "predicted": 40.0, "measured": 50.0, "ratio": 1.25}]


def test_the_t4_estimate_follows_each_datasets_images_and_counts_the_classifiers():
    """The notebooks' T4 time at the paper's settings: from each dataset's manifest counts (253
    brain MRI images train far fewer steps than 5,856 chest X-rays), the label judge in the
    pipeline's total and the utility classifiers in the evaluation's."""
    from mgm_tf import classifier, timing

    counted = flops.model_flops(classifier.build_classifier(2)) * 3 * 32 / 1e9
    assert timing.STEP_GFLOPS["classifier"] == pytest.approx(counted, rel=0.02)
    brain, chest = timing.paper_gpu_hours(dataset="brain_tumor_mri"), timing.paper_gpu_hours(dataset="pneumonia_xray")
    assert sum(timing.training_class_counts("brain_tumor_mri")) < 210
    assert brain["pipeline"][1] < chest["pipeline"][1] / 10
    for hours in (brain, chest):
        assert hours["pipeline"][0] >= hours["judge"][0] + hours["dcgan"][0] + hours["cgan"][0] + hours["srgan"][0] - 1e-9
        assert hours["evaluation"][0] > hours["baseline_cyclegan"][0] and hours["utility"][0] > 0


def test_the_classifier_estimate_counts_epochs_and_trainings_as_well_as_steps(tmp_path, monkeypatch):
    """A classifier's time is its steps plus what each epoch and each training costs beyond them
    (input, build, tracing): on the demo the judge's 40 one-step epochs in 2 trainings took twice
    what their steps alone predicted. The clock runs a real training and returns what it saw."""
    from mgm_tf import config as config_module, timing
    from mgm_tf.run import Run

    costs = timing.classifier_costs(2, batch_size=4, width=8, blocks=1, epochs=3)
    assert set(costs) == {"per_step", "per_epoch", "per_training"}
    assert costs["per_step"] > 0.0 and costs["per_epoch"] >= 0.0 and costs["per_training"] > 0.0
    with pytest.raises(ValueError, match="at least 2"):
        timing.classifier_costs(2, batch_size=4, epochs=1)
    fixed = {"per_step": 0.5, "per_epoch": 0.25, "per_training": 3.0}
    monkeypatch.setattr(timing, "classifier_costs", lambda *args, **kwargs: fixed)
    run = Run.open(tmp_path / "demo", config_module.smoke("demo"))
    prepared = run.prepared()
    planned = timing.configured_steps(run.config, [len(prepared.indices("train", label)) for label in range(2)])
    rows = timing._classifier_rows(run, prepared, planned)
    steps, trainings = planned["judge"]
    assert trainings == 2
    epochs = run.config.evaluation.extractor_epochs
    assert rows["judge"] == (0.5, 0.5 * steps + 2 * (epochs * 0.25 + 3.0))
    steps, trainings = planned["utility"]
    assert rows["utility"][1] == pytest.approx(0.5 * steps + trainings * (run.config.evaluation.utility_epochs * 0.25 + 3.0))


def test_the_estimate_counts_a_stages_preview_grids(tmp_path, monkeypatch):
    """A grid every `sample_every` epochs and one after the last: 8 epochs every 4 draw 2, 30
    every 7 draw 5; a stage without previews (the judge) draws none. Each grid is drawn for real
    (to a temporary file); a clock that ticks one second per reading makes each draw cost 1 s."""
    import itertools

    from mgm_tf import config as config_module, timing
    from mgm_tf.run import Run

    drawn = []
    monkeypatch.setattr("mgm_tf.plots.save_grid", lambda images, path, **kwargs: drawn.append(images.shape))
    ticks = itertools.count()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(ticks)))
    run = Run.open(tmp_path / "demo", config_module.smoke("demo"))
    run.config.srgan.epochs, run.config.srgan.sample_every = 8, 4
    run.config.dcgan.epochs, run.config.dcgan.sample_every = 30, 7
    assert timing.sample_grid_seconds(run, "srgan") == 2.0
    assert timing.sample_grid_seconds(run, "dcgan") == 5.0
    assert timing.sample_grid_seconds(run, "judge") == 0.0
    assert drawn[0] == (8, 256, 256, 3) and drawn[-1] == (16, 64, 64, 3)
