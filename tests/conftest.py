"""Shared fixtures: TensorFlow is imported once per session; data trees are built on the fly."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from mgm_tf.data import fixtures, manifests  # noqa: E402


@pytest.fixture(scope="session")
def kaggle_cache(tmp_path_factory):
    """A kagglehub cache holding tiny trees in each paper dataset's Kaggle layout."""
    cache = fixtures.build_kagglehub_cache(tmp_path_factory.mktemp("kagglehub"), manifests.PAPER_DATASETS
                                           + ("diabetic_retinopathy_eyepacs", "diabetic_retinopathy_competition"))
    previous = os.environ.get("KAGGLEHUB_CACHE")
    os.environ["KAGGLEHUB_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("KAGGLEHUB_CACHE", None)
    else:
        os.environ["KAGGLEHUB_CACHE"] = previous


@pytest.fixture(scope="session")
def demo_prepared(tmp_path_factory):
    from mgm_tf.data.prepare import prepare

    return prepare(manifests.load_manifest("demo"), tmp_path_factory.mktemp("prepared") / "demo")
