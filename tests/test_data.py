"""The real download → scan → check → prepare → tf.data path on each dataset's Kaggle layout."""

import json
from pathlib import Path

import numpy as np
import pytest

from mgm_tf.data import fixtures, manifests, sources
from mgm_tf.data.prepare import load_prepared, prepare


@pytest.mark.parametrize("name", manifests.PAPER_DATASETS)
def test_kaggle_layout_to_batches(name, kaggle_cache, tmp_path):
    from mgm_tf import gan
    from mgm_tf.data import tfdata

    manifest = manifests.load_manifest(name)
    root = sources.download(manifest)  # the real kagglehub call, answered from the cache
    # an unpinned handle (leukemia) needs Kaggle to name the latest version: offline, the newest cached one
    version = manifest.kaggle_handle.split("/versions/")[1] if manifests.is_pinned(manifest.kaggle_handle) \
        else fixtures.FIXTURE_VERSION
    assert str(root).startswith(str(kaggle_cache)) and root.name == version
    prepared = prepare(manifest, tmp_path / name)
    report = json.loads((tmp_path / name / "report.json").read_text())
    assert report["source"]["version"] == version
    assert len(report["source"]["sha256"]) == 64
    assert prepared.images_gan.shape[1:] == (64, 64, manifest.channels)
    assert prepared.images_hr.shape[1:] == (256, 256, manifest.channels)
    assert set(prepared.labels.tolist()) == set(range(manifest.num_classes))
    assert (tmp_path / name / "previews" / f"{manifest.class_names[0]}.png").stat().st_size > 1000
    images, labels = next(iter(tfdata.gan_dataset(prepared, "train", batch_size=4, seed=1)))
    assert images.shape == (4, 64, 64, manifest.channels) and images.dtype.name == "uint8"
    # each batch label is the class its image came from
    train = prepared.indices("train")
    for image, label in zip(images.numpy(), labels.numpy()):
        match = int(np.argmin(np.abs(prepared.images_gan[train].astype(int) - image).reshape(len(train), -1).max(axis=1)))
        assert prepared.labels[train][match] == label
    # the trainer maps uint8 batches to the networks' range, 3 channels, on the device
    model_images, model_labels = gan.unpack((images, labels))
    assert model_images.shape == (4, 64, 64, 3) and model_images.dtype.name == "float32"
    expected = images.numpy().astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(model_images.numpy(), np.broadcast_to(expected, (4, 64, 64, 3)), atol=1e-6)
    assert model_labels is labels
    # no tf.data autotuning: its thread held up the end of every epoch by seconds
    assert tfdata.gan_dataset(prepared, "train", batch_size=4).options().autotune.enabled is False


@pytest.mark.parametrize("name", ["diabetic_retinopathy_eyepacs", "diabetic_retinopathy_competition"])
def test_csv_labelled_and_competition_downloads_offline(name, kaggle_cache, tmp_path):
    """Grades from trainLabels*.csv; the competition through kagglehub.competition_download."""
    manifest = manifests.load_manifest(name)
    root = sources.download(manifest)
    assert str(root).startswith(str(kaggle_cache))
    assert sources.availability(manifest) == "cached"
    prepared = prepare(manifest, tmp_path / name)
    assert prepared.num_classes == 5 and set(prepared.labels.tolist()) == set(range(5))
    assert np.bincount(prepared.labels).tolist() == [4] * 5  # every row of the CSV, each under its grade
    patients = {}
    for file, split in zip(prepared.files, prepared.splits):
        patients.setdefault(Path(file).name.split("_")[0], set()).add(split)
    assert all(len(splits) == 1 for splits in patients.values())  # both eyes of a patient in one split


def test_a_pinned_handle_override_and_a_missing_version(kaggle_cache, tmp_path):
    manifest = manifests.load_manifest("pneumonia_xray").with_handle("paultimothymooney/chest-xray-pneumonia/versions/9")
    with pytest.raises(ValueError, match=r"could not download paultimothymooney/chest-xray-pneumonia/versions/9.*"
                                         r"--handle paultimothymooney/chest-xray-pneumonia "):
        sources.download(manifest)
    base = kaggle_cache / "datasets" / "paultimothymooney" / "chest-xray-pneumonia"
    fixtures.build_dataset_tree("pneumonia_xray", base / "versions" / "9")
    (base / "9.complete").touch()
    try:
        assert sources.download(manifest) == base / "versions" / "9"
        assert sources.availability(manifest) == "cached"
    finally:
        (base / "9.complete").unlink()


def test_duplicated_download_copies_are_removed(kaggle_cache):
    manifest = manifests.load_manifest("brain_tumor_mri")  # files stored twice: {yes,no}/ and brain_tumor_dataset/
    records, report = sources.scan(manifest, sources.download(manifest))
    assert len(records) == 8 and len(report["duplicates"]) == 8
    assert all(not r.relative.startswith("brain_tumor_dataset/") for r in records)


def test_download_folder_splits_are_used(kaggle_cache):
    manifest = manifests.load_manifest("pneumonia_xray")
    records, _ = sources.scan(manifest, sources.download(manifest))
    by_split = {split: {r.relative.split("/")[1] for r in records if r.split == split} for split in ("train", "val", "test")}
    assert by_split == {"train": {"train"}, "val": {"val"}, "test": {"test"}}


def test_layout_mismatch_says_what_was_found(tmp_path):
    (tmp_path / "images" / "unrelated").mkdir(parents=True)
    (tmp_path / "images" / "unrelated" / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"(?s)no images found.*expected layout.*unrelated"):
        prepare(manifests.load_manifest("skin_cancer"), tmp_path / "out", data_dir=tmp_path / "images")
    assert not (tmp_path / "out").exists()


def test_seeded_split_is_deterministic_and_patient_level():
    manifest = manifests.load_manifest("pneumonia_xray")
    records = [sources.Record(f"/x/{n}", f"{cls}/{n}", label, cls, "train", manifest.patient_id(n))
               for label, cls in enumerate(("NORMAL", "PNEUMONIA"))
               for n in [f"person{p}_bacteria_{k}.jpeg" if label else f"IM-{p:04d}-{k:04d}.jpeg"
                         for p in range(40) for k in range(p % 3 + 1)]]
    seeded = manifests.dataclasses.replace(manifest, split=manifests.SplitSpec(rule="seeded", test_fraction=0.25, seed=7))
    first, second = sources.assign_splits(seeded, records), sources.assign_splits(seeded, list(reversed(records)))
    assert {r.relative: r.split for r in first} == {r.relative: r.split for r in second}
    patients = {}
    for record in first:
        patients.setdefault(record.patient, set()).add(record.split)
    assert all(len(splits) == 1 for splits in patients.values())
    test_patients = {p for p, s in patients.items() if s == {"test"}}
    assert 0.15 < len(test_patients) / len(patients) < 0.35
    other_seed = manifests.dataclasses.replace(seeded, split=manifests.SplitSpec(rule="seeded", test_fraction=0.25, seed=8))
    assert {r.split for r in sources.assign_splits(other_seed, records)} == {"train", "test"}
    assert [r.split for r in sources.assign_splits(other_seed, records)] != [r.split for r in first]


def test_folders_rule_moves_a_patient_found_in_two_splits_to_one_side():
    def record(name, split):
        return sources.Record(f"/x/{split}/{name}", f"{split}/PNEUMONIA/{name}", 1, "PNEUMONIA", split, name.split("_")[0])

    records = [record("person1_bacteria_1.jpeg", "train"), record("person1_bacteria_2.jpeg", "train"),
               record("person1_virus_3.jpeg", "test"),                                       # majority: train
               record("person2_bacteria_4.jpeg", "train"), record("person2_bacteria_5.jpeg", "test"),  # tie: train
               record("person3_virus_6.jpeg", "test"), record("person3_virus_7.jpeg", "test"),
               record("person3_virus_8.jpeg", "train"),                                       # majority: test
               record("person4_virus_9.jpeg", "test")]                                        # one split: untouched
    separated, moved = sources.separate_patients(records)
    splits = {r.relative.split("/")[-1]: r.split for r in separated}
    assert splits == {"person1_bacteria_1.jpeg": "train", "person1_bacteria_2.jpeg": "train",
                      "person1_virus_3.jpeg": "train", "person2_bacteria_4.jpeg": "train",
                      "person2_bacteria_5.jpeg": "train", "person3_virus_6.jpeg": "test",
                      "person3_virus_7.jpeg": "test", "person3_virus_8.jpeg": "test", "person4_virus_9.jpeg": "test"}
    assert sorted((m["patient"], m["to"], m["images_moved"]) for m in moved) == [
        ("person1", "train", 1), ("person2", "train", 1), ("person3", "test", 1)]
    assert sources.separate_patients(list(reversed(records)))[0] == list(reversed(separated))
    checked = sources.check(manifests.load_manifest("pneumonia_xray"), separated,
                            {"unmapped_images": [], "patients_moved": moved})
    assert any("3 patient(s)" in warning and "3 image(s) moved" in warning for warning in checked["warnings"])


def test_demo_set_counts_and_patient_split(demo_prepared):
    assert demo_prepared.class_names == ["NORMAL", "PNEUMONIA"]
    assert demo_prepared.report["counts"]["NORMAL"]["total"] == 8
    assert demo_prepared.report["counts"]["PNEUMONIA"]["total"] == 8
    assert demo_prepared.report["num_skipped"] == 0
    person1946 = [s for f, s in zip(demo_prepared.files, demo_prepared.splits) if "person1946" in f]
    assert len(person1946) == 2 and len(set(person1946)) == 1
    assert 2 <= (demo_prepared.splits == "test").sum() <= 6
    reloaded = load_prepared(demo_prepared.path)
    assert np.array_equal(reloaded.images_gan, demo_prepared.images_gan)


def test_balanced_sampling_evens_out_classes(tmp_path):
    from mgm_tf.data import tfdata
    from mgm_tf.data.prepare import PreparedDataset

    labels = np.array([0] * 90 + [1] * 10, np.int32)
    prepared = PreparedDataset(tmp_path, "toy", ["a", "b"], 1, np.zeros((100, 8, 8, 1), np.uint8),
                               np.zeros((100, 64, 64, 1), np.uint8), labels, np.array(["train"] * 100),
                               [str(i) for i in range(100)], [str(i) for i in range(100)], {})
    seen = np.concatenate([y.numpy() for _, y in tfdata.gan_dataset(prepared, batch_size=10, balanced=True, seed=3)]
                          + [y.numpy() for _, y in tfdata.gan_dataset(prepared, batch_size=10, balanced=True, seed=4)])
    assert len(seen) == 200 and 0.35 < seen.mean() < 0.65
    plain = np.concatenate([y.numpy() for _, y in tfdata.gan_dataset(prepared, batch_size=10, seed=3)])
    assert plain.mean() == pytest.approx(0.1)


def test_array_batches_shuffle_each_pass_balance_classes_and_continue_across_epochs(tmp_path):
    """The input JAX trains from (`batches.IndexedBatches`): every image once per pass, a new
    order each pass, later epochs continuing the stream, classes evened out when balanced."""
    from mgm_tf.data.batches import IndexedBatches

    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    labels = np.array([0] * 90 + [1] * 10, np.int32)
    batches = IndexedBatches([images, labels], 10, seed=3)
    first = np.concatenate([batches[index][0].ravel() for index in range(len(batches))])
    batches.on_epoch_end()
    second = np.concatenate([batches[index][0].ravel() for index in range(len(batches))])
    assert len(batches) == 10 and sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)
    assert np.array_equal(first, np.concatenate([IndexedBatches([images, labels], 10, seed=3)[i][0].ravel()
                                                 for i in range(10)]))  # the same seed, the same order
    balanced = IndexedBatches([images, labels], 10, seed=3, classes=labels, steps=20)
    seen = np.concatenate([balanced[index][1] for index in range(20)])
    assert len(seen) == 200 and 0.35 < seen.mean() < 0.65
    assert set(np.concatenate([balanced[index][0].ravel() for index in range(20)])) >= set(range(90, 100))


def numbered_prepared(tmp_path, count: int = 24):
    """A prepared set whose image i is filled with the value i: a batch says which rows it took."""
    from mgm_tf.data.prepare import PreparedDataset

    images = np.repeat(np.arange(count, dtype=np.uint8), 4).reshape(count, 2, 2, 1)
    return PreparedDataset(tmp_path, "numbered", ["a", "b"], 1, images, images, np.arange(count) % 2,
                           np.array(["train"] * count), [], [], {})


def rows_of(batch) -> list:
    images = batch[0] if isinstance(batch, tuple) else batch
    return [int(value) for value in np.asarray(images)[:, 0, 0, 0]]


@pytest.mark.parametrize("pipeline, balanced", [("tf.data", False), ("tf.data", True), ("arrays", False),
                                                ("arrays", True), ("tf.data SR pairs", False), ("arrays SR pairs", False)])
def test_a_resumed_input_continues_the_batch_order_where_it_stopped(tmp_path, pipeline, balanced):
    """Both backends' GAN input, fed as `fit` feeds it (`BatchOrderCallback` told the first
    epoch, a new iterator per epoch): epochs 2 and 3 of a pipeline built anew and started at epoch
    2 take the rows epochs 2 and 3 of an uninterrupted one took, which differ from epochs 0 and 1.
    Before, a resumed stage's input began again at epoch 0's batches."""
    from mgm_tf.callbacks import BatchOrderCallback
    from mgm_tf.data import batches, tfdata

    prepared = numbered_prepared(tmp_path)

    def make():
        if pipeline == "tf.data":
            return tfdata.gan_dataset(prepared, "train", 4, seed=9, balanced=balanced)
        if pipeline == "arrays":
            return batches.IndexedBatches([prepared.images_gan, prepared.labels], 4, seed=9,
                                          classes=prepared.labels if balanced else None)
        if pipeline == "tf.data SR pairs":
            return tfdata.sr_dataset(prepared, "train", 4, crop=2, scale=2, seed=9)
        return batches.sr_batches(prepared.images_hr, 4, crop=2, scale=2, seed=9)

    def rows(batch) -> list:
        if "SR" not in pipeline:
            return rows_of(batch)
        return [int(round(value)) for value in (np.asarray(batch[1])[:, 0, 0, 0] + 1.0) * 127.5]

    def epochs(first: int, last: int) -> list:
        dataset = make()
        callback = BatchOrderCallback(dataset.order, 6)
        seen = []
        for epoch in range(first, last):
            callback.on_epoch_begin(epoch)
            items = dataset if pipeline.startswith("tf.data") else [dataset[index] for index in range(len(dataset))]
            seen.append([rows(batch) for batch in items])
            if pipeline.startswith("arrays"):
                dataset.on_epoch_end()
        return seen

    straight, resumed = epochs(0, 4), epochs(2, 4)
    assert len(straight[0]) == 6 and all(len(rows) == 4 for rows in straight[0])
    assert resumed == straight[2:]
    assert straight[2] != straight[0] and straight[3] != straight[1]


def test_a_repeated_tf_input_continues_its_stream_across_epochs(tmp_path):
    """With steps_per_epoch (a tiny set, `fit_stage` repeats the dataset and keeps one iterator),
    the stream runs on across passes; started at epoch 1 of 3-step epochs, it begins at step 3."""
    from mgm_tf.callbacks import BatchOrderCallback
    from mgm_tf.data import tfdata

    prepared = numbered_prepared(tmp_path, 8)

    def first_batches(start_epoch: int, count: int) -> list:
        dataset = tfdata.gan_dataset(prepared, "train", 4, seed=2)
        BatchOrderCallback(dataset.order, 3).on_epoch_begin(start_epoch)
        return [rows_of(batch) for batch in dataset.repeat().take(count)]

    straight = first_batches(0, 6)
    assert first_batches(1, 3) == straight[3:]
    assert sorted(sum(straight[:2], [])) == list(range(8))  # each pass every image once


def test_each_process_of_a_multi_host_run_feeds_its_own_rows():
    """On multi-host JAX, Keras' DataParallel takes what each process yields as its part of the
    global batch: two processes yield the two halves of the one-process batch, never the whole."""
    from mgm_tf.data.batches import IndexedBatches

    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
    whole = IndexedBatches([images], 8, seed=4, process=(0, 1))
    halves = [IndexedBatches([images], 8, seed=4, process=(index, 2)) for index in range(2)]
    for step in range(len(whole)):
        parts = [half[step].ravel() for half in halves]
        assert [len(part) for part in parts] == [4, 4]
        assert np.array_equal(np.concatenate(parts), whole[step].ravel())
    with pytest.raises(ValueError, match="cannot be shared by 3 processes"):
        IndexedBatches([images], 8, process=(0, 3))


@pytest.mark.parametrize("path", ["tf.data", "arrays"])
def test_sr_pairs_are_bicubic_downsamples(demo_prepared, path):
    from mgm_tf.data import batches, tfdata

    if path == "tf.data":
        low, high = next(iter(tfdata.sr_dataset(demo_prepared, batch_size=2, crop=96, seed=0)))
        low, high = low.numpy(), high.numpy()
    else:
        sr_batches = batches.IndexedBatches([demo_prepared.images_hr], 2, make=lambda items, position: batches._lr_hr(
            batches.random_crops(items[0], 96, np.random.default_rng(position)), 4))
        low, high = sr_batches[0]
    assert low.shape == (2, 24, 24, 3) and high.shape == (2, 96, 96, 3)
    assert float(np.abs(low.mean() - high.mean())) < 0.02
    low_full, high_full = next(batches.sr_full_pairs(demo_prepared, "test", batch_size=2))
    assert low_full.shape == (2, 64, 64, 3) and high_full.shape == (2, 256, 256, 3)
    assert float(np.abs(low_full.mean() - high_full.mean())) < 0.02


def test_preprocessing_is_shown_from_the_prepared_data_without_the_source(tmp_path, monkeypatch):
    """prepare keeps the first files as decoded (resized only); a runtime restored from Drive shows
    the raw-vs-prepared figure from them, with the dataset's source gone, and downloads nothing."""
    import shutil

    from mgm_tf import notebook
    from mgm_tf.data import prepare as prepare_module
    from mgm_tf.run import Run
    from mgm_tf.config import smoke

    source = fixtures.write_blob_folder(tmp_path / "blobs", per_class=6)
    config = smoke("folder")
    config.data_dir = str(source)
    run = Run.open(tmp_path / "run", config)
    prepared = run.prepared()
    saved = np.load(prepared.path / prepare_module.RAW_PREVIEW)
    manifest = run.manifest()
    assert saved.shape[0] == prepare_module.RAW_PREVIEW_COUNT
    np.testing.assert_array_equal(saved, prepare_module.raw_images(manifest, source, prepared.files[:8]))
    shutil.rmtree(source)

    def no_download(*_):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(sources, "download", no_download)
    shown = []
    monkeypatch.setattr(notebook, "show_figure", shown.append)
    notebook.show_preprocessing(run, prepared)
    assert len(shown) == 1
