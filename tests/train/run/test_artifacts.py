"""Atomic writes and run paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelrl.train.config import TrainConfig
from pixelrl.train.run.artifacts import RunPaths, atomic_write, write_json


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "meta.json"
    write_json(target, {"a": 1})

    def killed_mid_write() -> None:
        with atomic_write(target, "w") as handle:
            handle.write('{"a": 2, "half')
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        killed_mid_write()
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_run_paths_name_every_artifact_after_the_run(tmp_path):
    config = TrainConfig(out_dir=tmp_path, env="pixelrl/PointReach-v0", seed=3, results_dir=Path("r"))
    paths = RunPaths.of(config)
    name = config.run_name
    assert paths.final_model == tmp_path / "checkpoints" / f"{name}.zip"
    assert paths.final_meta.name == f"{name}.meta.json" and paths.periodic_dir.name == name
    assert paths.eval_json == Path("r") / f"{name}_eval.json"
    assert paths.log_dir == tmp_path / "runs" / config.run_id / "pixelrl-PointReach-v0" / "seed3"
    assert paths.periodic(500) == (
        paths.periodic_dir / "step500.zip", paths.periodic_dir / "step500.meta.json",
        paths.periodic_dir / "step500.buffer.pkl",
    )  # fmt: skip
    assert paths.existing() == []
    paths.log_dir.mkdir(parents=True)
    paths.lock_file.parent.mkdir(parents=True)
    paths.lock_file.touch()
    assert paths.existing() == [paths.log_dir]  # the lock file is not a file of the run
