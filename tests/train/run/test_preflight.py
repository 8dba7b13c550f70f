"""The preflight refuses what would fail later, before any work, and leaves no trace when it does."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch as th

from pixelrl.train.config import ConfigError
from pixelrl.train.run import preflight as preflight_module
from pixelrl.train.run.artifacts import RunPaths
from pixelrl.train.run.preflight import prepared_run


def preflight(config) -> None:
    with prepared_run(config):
        pass


def test_a_refused_run_leaves_no_folder_behind(tiny, tmp_path):
    config = tiny(buffer_size=60, batch_size=8)  # 30 transitions per env: an episode is 50 steps
    with pytest.raises(ConfigError, match=r"--buffer-size 60 leaves 30 transitions per env .* episodes last 50"):
        preflight(config)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unwritable_output_folders_are_refused_with_the_path(tiny, tmp_path, where):
    if where == "file":
        blocker = tmp_path / "out"
        blocker.write_text("a file, not a folder")
        config = tiny()
    else:
        config = tiny(out_dir=Path("/proc/pixelrl-test"))
    with pytest.raises(ConfigError, match=r"Cannot write to the output folder .*checkpoints"):
        preflight(config)


def test_the_model_is_built_in_the_preflight_so_bad_sizes_are_refused_up_front(tiny):
    with pytest.raises(ConfigError, match=r"Cannot build the model for these settings: .*too small for encoder="):
        preflight(tiny(encoder="nature", spatial_softmax=False, image_size=16))
    with pytest.raises(ConfigError, match=r"Cannot build the model for these settings: .*1x1 feature map"):
        preflight(tiny(image_size=4, frame_stack=1))


@pytest.mark.skipif(th.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_gpu_is_refused(tiny):
    with pytest.raises(ConfigError, match="--device cuda: this machine has no CUDA device"):
        preflight(tiny(device="cuda"))


def test_bf16_on_a_cpu_that_would_emulate_it_warns_before_any_work(tiny, monkeypatch):
    monkeypatch.setattr(preflight_module, "_cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match=r"--precision bf16 on a CPU without AMX or AVX512-BF16: .* slower than fp32"):
        preflight(tiny(precision="bf16", device="cpu"))
    monkeypatch.setattr(preflight_module, "_cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*--precision bf16")
        preflight(tiny(precision="bf16", device="cpu", tag="native"))


def test_stale_temporary_files_of_a_killed_writer_are_removed(tiny):
    config = tiny()
    paths = RunPaths.of(config)
    paths.periodic_dir.mkdir(parents=True)
    stale = [
        paths.periodic_dir / ".step100.zip.abc123.tmp",
        paths.final_model.parent / f".{paths.final_model.name}.x.tmp",
    ]
    for path in stale:
        path.write_bytes(b"half")
    with prepared_run(config.replace(resume=True)):
        assert not any(p.exists() for p in stale)


def test_learning_starts_beyond_the_run_is_pointed_out(tiny):
    with prepared_run(tiny(learning_starts=500, total_steps=300)) as run:
        assert any("never trains" in note for note in run.notes)


class _ModelBuilt(Exception):
    pass


def _refuse_to_build(*args, **kwargs):
    raise _ModelBuilt


def test_keep_freed_memory_is_applied_before_the_model_is_built_and_warns_without_glibc(tiny, monkeypatch):
    import pixelrl.host_memory

    calls = []
    monkeypatch.setattr(pixelrl.host_memory, "keep_freed_memory", lambda: calls.append("kept") or False)
    monkeypatch.setattr(preflight_module, "build_model", _refuse_to_build)
    warning = pytest.warns(UserWarning, match="--keep-freed-memory has no effect here: .* not glibc")
    with warning, pytest.raises(_ModelBuilt):
        preflight(tiny(keep_freed_memory=True))
    assert calls == ["kept"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(_ModelBuilt):
            preflight(tiny())
    assert calls == ["kept"]  # off by default
