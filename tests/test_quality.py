"""Stage 3: the filter prefers sharp images, keeps exact per-class fractions, and the batched
scores agree with the per-image OpenCV loop."""

import cv2
import numpy as np
import pytest

from mgm_tf import quality_filter


def _textured(rng, count):
    images = []
    for _ in range(count):
        image = np.zeros((64, 64, 3), np.uint8)
        for _ in range(12):
            centre = tuple(int(v) for v in rng.integers(0, 64, 2))
            cv2.circle(image, centre, int(rng.integers(3, 12)), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        images.append(image)
    return np.stack(images)


def test_batched_scores_match_opencv_loop():
    images = _textured(np.random.default_rng(0), 20)
    grey = images[..., :1]
    for batch in (images, grey):
        assert np.allclose(quality_filter.scores(batch), quality_filter.scores_opencv(batch), rtol=1e-4, atol=1e-3)


def _demo_xrays():
    from mgm_tf.data.manifests import package_path

    files = sorted(package_path("demo_data").glob("*/*.png"))
    return np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (64, 64), interpolation=cv2.INTER_AREA)
                     for f in files])[..., None]


def test_filter_prefers_sharp_over_blurred_copies():
    """Real X-rays at 64×64 and blurred copies. Sharpness and edges favour the originals; the
    histogram entropy slightly favours the blurred copies (blur spreads grey levels), so the
    combined rank is 2 votes to 1: at the paper's 20 % every kept image is an original."""
    sharp = _demo_xrays()
    blurred = np.stack([cv2.GaussianBlur(image, (0, 0), 1.5)[..., None] for image in sharp])
    images = np.concatenate([sharp, blurred])
    labels = np.tile(np.repeat([0, 1], 8), 2)
    table = quality_filter.scores(images)
    assert (table[:16, 0] > table[16:, 0]).all() and (table[:16, 2] > table[16:, 2]).all()  # each vs its copy
    combined, keep = quality_filter.select(table, labels, keep_fraction=0.2)
    assert keep.sum() == 6 and keep[:16].sum() == 6  # round(0.2 × 16) = 3 per class
    combined, keep = quality_filter.select(table, labels, keep_fraction=0.5)
    assert keep[:16].sum() >= 12 and combined[:16].mean() > combined[16:].mean() + 0.2


@pytest.mark.parametrize("keep_fraction, expected", [(0.2, {0: 6, 1: 2, 2: 1}), (0.5, {0: 15, 1: 5, 2: 2})])
def test_per_class_fractions_are_exact(keep_fraction, expected):
    labels = np.array([0] * 30 + [1] * 10 + [2] * 3)
    images = _textured(np.random.default_rng(2), len(labels))
    _, keep = quality_filter.select(quality_filter.scores(images), labels, keep_fraction)
    assert {label: int(keep[labels == label].sum()) for label in expected} == expected


def test_ties_are_broken_by_id_deterministically():
    images = np.repeat(_textured(np.random.default_rng(3), 1), 10, axis=0)
    labels = np.zeros(10, int)
    ids = np.arange(10)[::-1].copy()
    _, keep = quality_filter.select(quality_filter.scores(images), labels, 0.3, ids)
    assert sorted(ids[keep].tolist()) == [0, 1, 2]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="uint8"):
        quality_filter.scores(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="keep_fraction"):
        quality_filter.select(np.zeros((2, 3)), np.zeros(2), 1.5)


def test_the_inside_filter_drops_outliers_and_keeps_the_spread_of_the_rest():
    """Realism ranks candidates by how deep they lie in the real class, so its top 20 % crowds
    around the densest real images; "inside" caps it at 1: every candidate inside some real
    image's neighbourhood ties, the quota is filled in candidate order, and a candidate outside
    every neighbourhood is kept only when too few lie inside."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 4))
    spread = real[:20] + rng.normal(scale=0.05, size=(20, 4))  # inside, across the real set
    far = rng.normal(loc=8.0, size=(5, 4))  # outside every real neighbourhood
    candidates = np.concatenate([far, spread])
    labels, real_labels = np.zeros(len(candidates), int), np.zeros(len(real), int)
    realism = quality_filter.realism_scores(candidates, labels, real, real_labels)
    table = np.column_stack([np.zeros((len(candidates), 3)), realism])
    ids = np.arange(len(candidates))
    _, inside = quality_filter.select(quality_filter.score_columns(table, "inside"), labels, 0.2, ids)
    _, deepest = quality_filter.select(quality_filter.score_columns(table, "realism"), labels, 0.2, ids)
    assert inside.sum() == deepest.sum() == 5
    assert not inside[:5].any() and not deepest[:5].any()  # the far ones never
    assert np.array_equal(np.flatnonzero(inside), np.arange(5, 10))  # candidate order among those inside
    capped = quality_filter.score_columns(table, "inside")[:, 0]
    assert capped.max() == 1.0 and np.all(capped[:5] < 1.0)
    with pytest.raises(ValueError, match="filter.score must be one of"):
        quality_filter.score_columns(table, "sharpest")
