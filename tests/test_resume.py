"""What a Colab user meets when a runtime comes back different: another precision policy,
another number of epochs, another GPU (or none)."""

import pytest

from mgm_tf import config, device
from mgm_tf.io import read_csv
from mgm_tf.pipeline import run_pipeline
from mgm_tf.run import Run


@pytest.mark.parametrize("gpu, bf16, expected", [((7, 5), False, "mixed_float16"),   # T4
                                                 ((6, 0), False, "float32"),         # P100: no tensor cores
                                                 (None, True, "mixed_bfloat16"),     # AVX512-BF16 / AMX CPU
                                                 (None, False, "float32"),           # plain CPU runtime
                                                 ("TPU", False, "mixed_bfloat16")])  # a TPU host without CPU bf16
def test_auto_precision_follows_the_hardware(monkeypatch, gpu, bf16, expected):
    monkeypatch.setattr(device, "accelerator", lambda: "TPU" if gpu == "TPU" else None if gpu is None else "GPU")
    monkeypatch.setattr(device, "gpu_compute_capability", lambda: None if gpu == "TPU" else gpu)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: bf16)
    assert device.select_policy("auto") == expected
    assert device.select_policy("float32") == "float32"
    with pytest.raises(ValueError, match="float64"):
        device.select_policy("float64")


@pytest.mark.parametrize("limit, expected", [("", True), ("AVX2", False), ("avx512_core", False),
                                             ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True)])
def test_bf16_needs_onednn_allowed_to_use_it(monkeypatch, limit, expected):
    """A bf16 CPU under ONEDNN_MAX_CPU_ISA=AVX2 has no bf16 matmul: mixed_bfloat16 there aborts
    TensorFlow, so 'auto' must pick float32."""
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
    assert device.cpu_has_bf16() is expected


def test_cpu_runtime_keeps_xla_off_and_one_step_per_call(monkeypatch):
    monkeypatch.setattr(device, "accelerator", lambda: None)
    assert device.resolve_jit("auto") is False and device.resolve_steps_per_execution("auto", 200) == 1
    monkeypatch.setattr(device, "accelerator", lambda: "GPU")
    assert device.resolve_jit("auto") == "auto" and device.resolve_jit("auto", compiles=False) is False
    assert device.resolve_steps_per_execution("auto", 200) == 32 and device.resolve_steps_per_execution("auto", 5) == 5
    with pytest.raises(ValueError, match="steps_per_execution"):
        device.resolve_steps_per_execution(0, 5)


def _dcgan_only(epochs=2):
    smoke = config.smoke("demo")
    smoke.precision, smoke.stages, smoke.dcgan.epochs = "auto", ["dcgan"], epochs
    return smoke


def test_a_run_records_its_policy_and_version_and_refuses_to_resume_a_stage_under_another(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "gpu_compute_capability", lambda: (7, 5))  # made on a T4
    run = Run.open(tmp_path / "run", _dcgan_only())
    assert (run.config.policy, run.config.package_version) == ("mixed_float16", __import__("mgm_tf").__version__)
    (run.path / "dcgan" / "backup").mkdir(parents=True)  # the T4 runtime died mid-stage
    (run.path / "dcgan" / "backup" / "latest.weights.h5").write_bytes(b"state under mixed_float16")
    monkeypatch.setattr(device, "gpu_compute_capability", lambda: None)  # back on a CPU runtime
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match=r"training under the mixed_float16 .* gives float32.*--precision mixed_float16"):
        run_pipeline(Run.open(run.path, _dcgan_only()))


def test_a_policy_change_between_stages_is_allowed_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "gpu_compute_capability", lambda: None)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    run = Run.open(tmp_path / "run", _dcgan_only())
    run.config.policy = "mixed_float16"  # the run began on a T4; no stage is in the middle of training
    run_pipeline(run)
    assert Run.open(run.path).config.policy == "float32" and run.done_info("dcgan")["policy"] == "float32"


def test_a_stage_training_on_one_backend_is_not_resumed_on_the_other(tmp_path, monkeypatch):
    """A run records its Keras backend; a stage cut off mid-training on JAX is refused on
    TensorFlow (its random streams would not continue), with the flag that resumes it."""
    monkeypatch.setattr(device, "gpu_compute_capability", lambda: None)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    run = Run.open(tmp_path / "run", _dcgan_only())
    assert run.config.backend == "tensorflow"
    run.config.backend = "jax"  # made on a TPU runtime, which died mid-stage
    run.config.save(run.path / "config.json")
    (run.path / "dcgan" / "backup").mkdir(parents=True)
    (run.path / "dcgan" / "backup" / "latest.weights.h5").write_bytes(b"state trained on jax")
    with pytest.raises(ValueError, match=r"training on the jax backend .* runs tensorflow.*--backend jax"):
        run_pipeline(Run.open(run.path, _dcgan_only()))
    (run.path / "dcgan" / "backup" / "latest.weights.h5").unlink()  # nothing mid-training: allowed, recorded
    run_pipeline(Run.open(run.path, _dcgan_only()))
    assert Run.open(run.path).config.backend == "tensorflow" and run.done_info("dcgan")["backend"] == "tensorflow"


def test_more_epochs_continue_training_and_fewer_or_other_changes_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    run = Run.open(tmp_path / "run", _dcgan_only(epochs=2))
    run_pipeline(run)
    (run.path / "stages" / "synthesize.json").write_text("{}")  # made from the 2-epoch G1
    longer = Run.open(run.path, _dcgan_only(epochs=3))
    assert longer.config.dcgan.epochs == 3 and Run.open(run.path).config.dcgan.epochs == 3
    timings = run_pipeline(longer)
    assert list(timings) == ["dcgan"] and longer.done_info("dcgan")["epochs"] == 3
    assert [row["epoch"] for row in read_csv(run.path / "dcgan" / "history.csv")] == ["0", "1", "2"]
    assert not longer.is_done("synthesize")  # it used the old G1
    with pytest.raises(ValueError, match=r"dcgan.epochs: 3 → 2.*only grow"):
        Run.open(run.path, _dcgan_only(epochs=2))
    assert Run.open(run.path).config.dcgan.epochs == 3
    other = _dcgan_only(epochs=3)
    other.dcgan.batch_size = 8
    with pytest.raises(ValueError, match=r"dcgan.batch_size: 4 → 8"):
        Run.open(run.path, other)
