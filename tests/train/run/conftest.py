from __future__ import annotations

from pathlib import Path

import pytest

from pixelrl.train.config import TrainConfig


def tiny_config(out_dir: Path, **changes: object) -> TrainConfig:
    """A PointReach run that trains in a few seconds on one thread."""
    settings: dict[str, object] = dict(
        env="pixelrl/PointReach-v0", image_size=16, frame_stack=2, n_envs=2, batch_size=8, buffer_size=2000,
        learning_starts=100, total_steps=300, checkpoint_freq=0, eval_episodes=0, grad_norm_freq=0,
        log_interval=2, threads=1, progress=False, out_dir=out_dir,
    )  # fmt: skip
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def tiny(tmp_path: Path):
    def make(**changes: object) -> TrainConfig:
        return tiny_config(changes.pop("out_dir", tmp_path / "out"), **changes)  # type: ignore[arg-type]

    return make
