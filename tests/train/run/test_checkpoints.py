"""Choosing the checkpoint to resume from: the newest complete one, skipping corrupt ones with the reason."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import RunPaths
from pixelrl.train.run.checkpoints import CHECKPOINT_SCHEMA, find_resume_point, read_meta, resume_config


def _write(paths: RunPaths, step: int | None, *, buffer_bytes: int | None = None, zip_ok: bool = True) -> Path:
    """A fake checkpoint at ``step`` (None: the final one), with a buffer of ``buffer_bytes`` bytes."""
    if step is None:
        model, meta, buffer = paths.final_model, paths.final_meta, None
    else:
        model, meta, buffer = paths.periodic(step)
    model.parent.mkdir(parents=True, exist_ok=True)
    if zip_ok:
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("data", "{}")
    else:
        model.write_bytes(b"PK\x03\x04 truncated")
    saved = None
    if buffer is not None and buffer_bytes is not None:
        buffer.write_bytes(b"x" * buffer_bytes)
        saved = buffer.name
    data = {"schema": CHECKPOINT_SCHEMA, "num_timesteps": step or 0, "config": {}, "replay_buffer": saved,
            "replay_buffer_bytes": buffer_bytes}  # fmt: skip
    meta.write_text(json.dumps(data))
    return meta


@pytest.fixture
def paths(tmp_path):
    return RunPaths.of(TrainConfig(out_dir=tmp_path))


def test_the_newest_complete_checkpoint_wins_and_a_buffer_breaks_ties(paths):
    _write(paths, 100, buffer_bytes=10)
    _write(paths, 200, buffer_bytes=10)
    final = _write(paths, None)
    json_final = json.loads(final.read_text())
    json_final["num_timesteps"] = 200
    final.write_text(json.dumps(json_final))  # the final checkpoint of a finished run, same step, no buffer
    point = find_resume_point(paths)
    assert point.checkpoint is not None and point.checkpoint.num_timesteps == 200
    assert point.checkpoint.buffer == paths.periodic(200)[2] and point.skipped == []


def test_corrupt_newer_checkpoints_are_skipped_with_the_reason(paths):
    _write(paths, 100, buffer_bytes=10)
    _write(paths, 200, zip_ok=False)
    _write(paths, 300, buffer_bytes=10)
    paths.periodic(300)[2].write_bytes(b"x" * 4)  # truncated after its metadata was written
    _write(paths, 400)
    paths.periodic(400)[1].write_text("{broken")
    point = find_resume_point(paths)
    assert point.checkpoint is not None and point.checkpoint.num_timesteps == 100
    reasons = " | ".join(point.skipped)
    assert "step200.zip is not a complete zip file" in reasons
    assert "step300.buffer.pkl holds 4 bytes where 10 were written (truncated)" in reasons
    assert "step400.meta.json is not valid JSON" in reasons


def test_no_checkpoint_at_all(paths):
    assert find_resume_point(paths).checkpoint is None


def test_read_meta_names_the_file(tmp_path):
    bad = tmp_path / "x.meta.json"
    bad.write_text(json.dumps({"schema": CHECKPOINT_SCHEMA, "num_timesteps": -4, "config": {}}))
    with pytest.raises(ValueError, match=r"x\.meta\.json lacks a valid num_timesteps"):
        read_meta(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=r"x\.meta\.json is not valid JSON"):
        read_meta(bad)


def test_resume_keeps_the_experiment_and_takes_the_new_control_and_output_settings(tmp_path):
    saved = TrainConfig(out_dir=Path("relative/out"), total_steps=100, learning_rate=3e-4)
    meta = {"config": saved.to_dict()}
    moved = saved.replace(out_dir=tmp_path.resolve() / "moved", total_steps=500, progress=False)
    resumed = resume_config(moved, meta, tmp_path / "m.json")
    assert resumed.out_dir == moved.out_dir and resumed.total_steps == 500 and resumed.learning_rate == 3e-4
    with pytest.raises(ConfigError, match=r"learning_rate: saved 0\.0003, given 0\.001"):
        resume_config(moved.replace(learning_rate=1e-3), meta, tmp_path / "m.json")
