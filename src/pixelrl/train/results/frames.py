"""``render-frame``: PNGs of exactly what the agent sees, and of the full-resolution scene."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import atomic_write
from pixelrl.train.run.factory import make_env

__all__ = ["render_frames"]


def _save_png(path: Path, image: NDArray[np.uint8]) -> None:
    from PIL import Image

    with atomic_write(path, "wb") as handle:
        Image.fromarray(np.ascontiguousarray(image)).save(handle, format="PNG")


def _observe(config: TrainConfig, steps: int) -> NDArray[np.uint8]:
    """The pixel observation after a seeded reset and ``steps`` seeded random actions."""
    env = make_env(config, monitor=False)
    try:
        obs, _ = env.reset(seed=config.seed)
        env.action_space.seed(config.seed)
        for _ in range(steps):
            obs, *_ = env.step(env.action_space.sample())
    finally:
        env.close()
    return np.asarray(obs["pixels"], dtype=np.uint8)


def render_frames(
    config: TrainConfig,
    out_dir: Path,
    steps: int = 0,
    scale: int = 4,
    full_size: int = 480,
    name: str | None = None,
) -> list[Path]:
    """Write the agent's observation and the full-resolution view of the same state.

    ``<name>_agent.png`` shows every stacked frame side by side, oldest first, each pixel
    enlarged ``scale`` times (nearest neighbour: no pixel is invented). ``<name>_full.png`` is
    the same scene (same seed, same actions, same camera) rendered natively at ``full_size``.

    Args:
        config: Env settings (image size, frame stack, camera, goal marker, seed).
        out_dir: Output folder.
        steps: Random-action steps to take before capturing (0: the reset frame).
        scale: Enlargement of the agent view.
        full_size: Side of the full-resolution render.
        name: The files' prefix (default: the config's run name).

    Returns:
        The written paths.

    Raises:
        ConfigError: For a state-vector (``--full-state``) configuration.
    """
    if config.full_state:
        raise ConfigError("render-frame shows pixel observations; drop --full-state.")
    pixels = _observe(dataclasses.replace(config, n_envs=1), steps)
    frames = pixels.reshape(-1, 3, *pixels.shape[1:]).transpose(0, 2, 3, 1)  # (k, H, W, 3), oldest first
    agent = np.concatenate(list(frames), axis=1).repeat(scale, axis=0).repeat(scale, axis=1)
    full = _observe(dataclasses.replace(config, image_size=full_size, frame_stack=1, n_envs=1), steps)
    name = name or config.run_name
    written = [out_dir / f"{name}_agent.png", out_dir / f"{name}_full.png"]
    _save_png(written[0], agent)
    _save_png(written[1], full.transpose(1, 2, 0))
    return written
