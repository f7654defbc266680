"""Labels that hold: the judge's agreement numbers, class-aware conditioning, the filter's label
check, and the measured ordering of conditioning choices on the two-class fixture."""

import keras
import numpy as np
import pytest

from mgm_tf import dcgan, gan, imaging, quality_filter, refinement, synthesis
from mgm_tf.data import fixtures
from mgm_tf.evaluation import label_fidelity
from mgm_tf.quality_filter import label_eligible


def test_agreement_overall_and_per_class():
    result = label_fidelity.agreement(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 0, 2]), ["a", "b", "c"])
    assert result["agreement"] == pytest.approx(4 / 6) and result["n"] == 6
    assert result["per_class"] == {"a": {"n": 3, "agreement": pytest.approx(2 / 3)}, "b": {"n": 2, "agreement": 0.5},
                                   "c": {"n": 1, "agreement": 1.0}}
    assert label_fidelity.agreement(np.array([0]), np.array([0]), ["a", "b"])["per_class"]["b"]["agreement"] is None
    assert "a 67 % of 3" in label_fidelity.describe(result)


def _brightness_judge(threshold: float) -> keras.Model:
    """A real two-class Keras model that calls an image class 1 when its mean (in [0, 1]) is above threshold."""
    image = keras.Input((64, 64, 3))
    mean = keras.layers.GlobalAveragePooling2D()(image)
    dense = keras.layers.Dense(2)
    model = keras.Model(image, keras.layers.Softmax()(dense(mean)))
    dense.set_weights([np.array([[-1.0, 1.0]] * 3) * 200.0 / 3, np.array([threshold, -threshold]) * 200.0])
    return model


def test_class_aware_conditions_are_assigned_to_their_class_and_regenerable():
    keras.utils.set_random_seed(0)
    generator = dcgan.build_dcgan_generator(base_filters=32)
    seeds = np.array([gan.image_seed(0, label, index) for label in (0, 1) for index in range(12)])
    labels = np.repeat(np.array([0, 1], np.int32), 12)
    blind = imaging.from_model_range(refinement.draw_conditions(generator, labels, seeds, np.zeros(24, np.int32), 100))
    threshold = float(np.median(blind.mean(axis=(1, 2, 3)) / 255.0))
    judge = _brightness_judge(threshold)
    attempts, verified, probability = synthesis.class_aware_conditions(generator, judge, labels, seeds, 100, 3,
                                                                        max_attempts=30, label="")
    assert verified.all() and attempts.max() > 0 and (probability > 0.5).all()
    again = imaging.from_model_range(refinement.draw_conditions(generator, labels, seeds, attempts, 100))
    predicted = label_fidelity.probabilities(judge, again, 3).argmax(axis=1)
    assert np.array_equal(predicted, labels)
    blind_predicted = label_fidelity.probabilities(judge, blind, 3).argmax(axis=1)
    assert (blind_predicted == labels).mean() < 0.8  # the class-blind draw is not already right
    assert np.array_equal(again[attempts == 0], blind[attempts == 0])  # attempt 0 is the paper's z1


def test_unverifiable_class_keeps_its_most_likely_draw():
    generator = dcgan.build_dcgan_generator(base_filters=32)
    judge = _brightness_judge(2.0)  # nothing is ever bright enough for class 1
    attempts, verified, probability = synthesis.class_aware_conditions(
        generator, judge, np.array([1, 1, 0], np.int32), np.array([5, 6, 7]), 100, 3, max_attempts=4, label="")
    assert verified.tolist() == [False, False, True] and attempts[2] == 0
    assert (attempts[:2] < 4).all() and (probability[:2] < 0.5).all()


def test_filter_label_check_keeps_only_agreeing_candidates_without_filling_the_quota():
    rows = [{"class": c, "predicted_class": p} for c, p in
            [("a", "a"), ("a", "b"), ("a", "a"), ("a", "a"), ("b", "a"), ("b", "a"), ("b", "b"), ("b", "")]]
    eligible = label_eligible(rows, "drop")
    assert eligible.tolist() == [True, False, True, True, False, False, True, True]
    assert label_eligible(rows, "keep").all()
    with pytest.raises(ValueError, match="label_check"):
        label_eligible(rows, "maybe")
    table = np.array([[8.0, 8, 8], [9, 9, 9], [1, 1, 1], [2, 2, 2], [9, 9, 9], [8, 8, 8], [1, 1, 1], [2, 2, 2]])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    _, keep = quality_filter.select(table, labels, 0.5, eligible=eligible)
    assert np.flatnonzero(keep).tolist() == [0, 3, 6, 7]  # best eligible; the sharpest (1, 4, 5) disagree


def test_oracle_reads_the_two_class_fixture():
    rng = np.random.default_rng(3)
    images = np.stack([fixtures.two_class_image(rng, label) for label in [0, 1] * 50])
    assert np.array_equal(fixtures.oracle_class(images), np.array([0, 1] * 50))
    assert np.array_equal(fixtures.oracle_class(np.repeat(images[..., None], 3, axis=-1)), np.array([0, 1] * 50))


def test_default_conditioning_beats_the_class_blind_reading_on_the_two_class_fixture(tmp_path):
    """The measured reason for the default (DESIGN.md "Labels that hold"), at a size CI affords:
    the oracle, which reads the class from the pixels, agrees with more exported labels under
    the default than under the paper's class-blind reading."""
    from mgm_tf.evaluation.conditioning_study import default_variant, run_study

    default = default_variant()
    result = run_study(tmp_path, per_class=CI_STUDY["per_class"], dcgan_steps=CI_STUDY["dcgan_steps"],
                       cgan_steps=CI_STUDY["cgan_steps"], candidates_per_class=CI_STUDY["candidates"],
                       variants=("class_blind", default))
    assert result["judge_accuracy_held_out"] >= 0.9
    blind, chosen = result["variants"]["class_blind"], result["variants"][default]
    assert blind["selected"] == 16 and chosen["selected"] >= 12  # quota: 20 % of 40 per class; measured: 16
    assert chosen["oracle_agreement"] >= blind["oracle_agreement"] + 0.2  # measured here: 0.81 against 0.50


CI_STUDY = {"per_class": 40, "dcgan_steps": 900, "cgan_steps": 300, "candidates": 40}  # ~2 min on 2 CPU cores
