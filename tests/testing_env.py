"""A configurable goal env for testing wrappers without a renderer (after Gymnasium's testing_env)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _default_render(env: GenericGoalEnv) -> np.ndarray:
    # A frame that encodes the step count, so stacked frames can be told apart.
    return np.full((env.height, env.width, 3), env.t % 256, dtype=np.uint8)


class GenericGoalEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Goal env whose frame and rewards tests control.

    The ``observation`` vector is ``[t, t+1, ..., t+obs_dim-1]`` at step ``t``; goals are 3-D.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        render_func: Callable[[GenericGoalEnv], Any] = _default_render,
        obs_dim: int = 6,
        width: int = 8,
        height: int = 8,
        with_compute_reward: bool = True,
    ) -> None:
        self.render_mode = render_mode
        self.render_func = render_func
        self.width, self.height = width, height
        self.obs_dim = obs_dim
        self.t = 0
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-1e3, 1e3, (obs_dim,), np.float64),
                "achieved_goal": spaces.Box(-10, 10, (3,), np.float64),
                "desired_goal": spaces.Box(-10, 10, (3,), np.float64),
            }
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        if with_compute_reward:
            self.compute_reward = self._compute_reward

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": np.arange(self.t, self.t + self.obs_dim, dtype=np.float64),
            "achieved_goal": np.full(3, self.t * 0.1, dtype=np.float64),
            "desired_goal": np.ones(3, dtype=np.float64),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray):
        self.t += 1
        obs = self._obs()
        reward = float(self._compute_reward(obs["achieved_goal"], obs["desired_goal"], {}))
        return obs, reward, False, self.t >= 20, {"is_success": float(reward == 0.0)}

    @staticmethod
    def _compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > 0.05).astype(np.float32)

    def render(self) -> Any:
        return self.render_func(self) if self.render_mode == "rgb_array" else None
