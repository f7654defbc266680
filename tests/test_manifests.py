import pytest

from mgm_tf.data import manifests


@pytest.mark.parametrize("name", manifests.available_manifests())
def test_every_manifest_parses_with_required_fields(name):
    manifest = manifests.load_manifest(name)
    assert manifest.channels in (1, 3)
    assert manifest.num_classes >= 2
    assert manifest.gan_size == 64 and manifest.sr_size == 256
    assert manifest.citation and manifest.licence and manifest.source.get("layout")
    if "kaggle" in manifest.source:
        manifests.check_handle(manifest.kaggle_handle)


def test_paper_working_sizes():
    sizes = {name: manifests.load_manifest(name).working_size for name in manifests.PAPER_DATASETS}
    assert sizes == {"pneumonia_xray": 256, "diabetic_retinopathy": 256, "brain_tumor_mri": 224,
                     "skin_cancer": 256, "leukemia": 128}


def test_handles_are_pinned_or_explicitly_latest():
    manifest = manifests.load_manifest("pneumonia_xray")
    assert manifest.with_handle("a/b/versions/3").kaggle_handle == "a/b/versions/3"
    assert not manifests.is_pinned(manifest.with_handle("a/b").kaggle_handle)
    with pytest.raises(ValueError, match="owner/dataset"):
        manifest.with_handle("chest-xray-pneumonia")
    # pins only where public code shows the version (DESIGN.md "Dataset versions")
    assert manifests.load_manifest("diabetic_retinopathy").kaggle_handle.endswith("/versions/4")
    assert not manifests.is_pinned(manifests.load_manifest("leukemia").kaggle_handle)
    assert "mehradaria/leukemia" in manifests.load_manifest("leukemia").source["alternative"]


def test_bad_manifest_names_file_and_field(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\ntitle = "x"\nmodality = "x"\nchannels = 2\ncitation = ""\nlicence = ""\n'
                    'source = {path = "."}\nclasses = [{name = "a", folders = ["a"]}]\n')
    with pytest.raises(ValueError, match=r"broken\.toml.*channels"):
        manifests.read_manifest(path)


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(ValueError, match="pneumonia_xray"):
        manifests.load_manifest("no_such_dataset")


def test_kermany_patient_ids():
    manifest = manifests.load_manifest("pneumonia_xray")
    assert manifest.patient_id("person1946_bacteria_4874.jpeg") == "person1946"
    assert manifest.patient_id("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"
    assert manifest.patient_id("IM-0115-0001.jpeg") == "IM-0115"
