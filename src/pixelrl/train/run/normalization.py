"""Running normalization of the vector observation keys (SB3's `VecNormalize`), and its saved statistics.

Fetch's goals and gripper coordinates move by centimetres around offsets of about a metre; fed
raw, they are a large part of why Fetch learns slowly (`docs/learning.md`). `--normalize` wraps
the training envs in SB3's `VecNormalize` for the vector keys only (pixels stay uint8), which
composes with HER as SB3 designed it: the buffers store and relabel raw observations, so
`compute_reward` sees real coordinates, and normalize at sample time with the current
statistics. The statistics are saved next to every checkpoint (`<checkpoint>.vecnormalize.pkl`)
and restored by `--resume` (still updating) and by `eval` (frozen).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from pixelrl.train.config import ConfigError
from pixelrl.train.run.artifacts import save_atomically

__all__ = ["normalized", "save_statistics", "statistics_path", "vector_keys"]


def vector_keys(space: spaces.Space[Any]) -> list[str]:
    """The observation keys that are not images: every key VecNormalize should normalize.

    Raises:
        ConfigError: If the space is not a Dict (pixelrl's goal envs always are).
    """
    if not isinstance(space, spaces.Dict):
        raise ConfigError(f"--normalize needs a Dict observation space, got {type(space).__name__}.")
    return [key for key, sub in space.spaces.items() if not is_image_space(sub, check_channels=False)]


def statistics_path(model_path: Path) -> Path:
    """Where a checkpoint's normalization statistics live: ``<name>.vecnormalize.pkl`` next to ``<name>.zip``."""
    return model_path.with_name(model_path.name.removesuffix(".zip") + ".vecnormalize.pkl")


def normalized(vec_env: VecEnv, gamma: float, statistics: Path | None = None, *, training: bool = True) -> VecNormalize:
    """Wrap ``vec_env`` in `VecNormalize` for its vector keys, with fresh or saved statistics.

    Args:
        vec_env: The envs.
        gamma: Discount (VecNormalize's reward statistics use it; rewards are not normalized).
        statistics: A ``.vecnormalize.pkl`` to restore, or None for fresh statistics.
        training: Keep updating the statistics (training, resume) or freeze them (evaluation).

    Returns:
        The wrapped envs.

    Raises:
        ConfigError: If the saved statistics are missing, unreadable or for other observation keys.
    """
    if statistics is None:
        wrapped = VecNormalize(
            vec_env, norm_obs=True, norm_reward=False, norm_obs_keys=vector_keys(vec_env.observation_space), gamma=gamma
        )
    else:
        if not statistics.is_file():
            raise ConfigError(
                f"{statistics} is missing: this checkpoint was trained with --normalize, and its observation "
                "statistics are needed to run it. Restore the file, or use a checkpoint that has one."
            )
        try:
            wrapped = VecNormalize.load(str(statistics), vec_env)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, KeyError) as exc:
            raise ConfigError(f"{statistics} could not be read ({type(exc).__name__}: {exc}).") from None
        if sorted(wrapped.norm_obs_keys or []) != sorted(vector_keys(vec_env.observation_space)):
            raise ConfigError(
                f"{statistics} normalizes the keys {wrapped.norm_obs_keys}, not this run's "
                f"{vector_keys(vec_env.observation_space)}: it belongs to another run."
            )
    wrapped.training = training
    return wrapped


def save_statistics(vec_env: VecEnv, path: Path) -> None:
    """Save the normalization statistics of ``vec_env`` (a `VecNormalize`) atomically to ``path``."""
    assert isinstance(vec_env, VecNormalize)
    save_atomically(path, lambda handle: pickle.dump(vec_env, handle))
