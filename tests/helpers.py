"""Small pixel envs and models shared by the tests (tiny images, short episodes)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv

import pixelrl  # noqa: F401  (registers envs and the DrQv2SACPolicy alias)
from pixelrl.envs import POINT_REACH_PROPRIO_INDICES
from pixelrl.wrappers import GoalMode, PixelObservationWrapper

IMAGE = 16


def point_env(
    *, image_size: int = IMAGE, frame_stack: int = 2, max_episode_steps: int = 10, goal_mode: GoalMode = "both"
) -> PixelObservationWrapper:
    env = gym.make("pixelrl/PointReach-v0", image_size=image_size, max_episode_steps=max_episode_steps)
    return PixelObservationWrapper(
        env,
        image_size=image_size,
        frame_stack=frame_stack,
        proprio_indices=POINT_REACH_PROPRIO_INDICES,
        goal_mode=goal_mode,
    )


def point_vec_env(n_envs: int = 1, seed: int = 0, **kwargs: Any) -> DummyVecEnv:
    vec_env = DummyVecEnv([lambda: point_env(**kwargs) for _ in range(n_envs)])
    vec_env.seed(seed)
    return vec_env
