"""Deterministic evaluation: success, returns and distances counted from the episodes it ran."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import pixelrl.envs  # noqa: F401
from pixelrl.train.config import ConfigError
from pixelrl.train.run.evaluate import evaluate_checkpoint, evaluate_policy_episodes


class Scripted:
    """Acts on the state observation: towards the goal, or not at all."""

    def __init__(self, towards: bool) -> None:
        self.towards = towards

    def get_vec_normalize_env(self):
        return None

    def predict(self, obs, deterministic=True):
        direction = obs["desired_goal"] - obs["achieved_goal"]
        action = np.clip(direction * 50, -1, 1) if self.towards else np.zeros(2)
        return action.astype(np.float32), None


def test_a_policy_that_reaches_the_goal_succeeds_and_one_that_stands_still_does_not():
    env = gym.make("pixelrl/PointReach-v0")
    good = evaluate_policy_episodes(Scripted(True), env, episodes=5, seed=0)  # type: ignore[arg-type]
    idle = evaluate_policy_episodes(Scripted(False), env, episodes=5, seed=0)  # type: ignore[arg-type]
    assert (
        good["successes"] == 5
        and good["success_rate"] == 1.0
        and good["mean_final_goal_distance"] <= env.unwrapped.distance_threshold
    )
    assert 1 <= good["mean_time_to_success"] < 50 and good["mean_return"] > -50
    assert idle["successes"] == 0 and idle["mean_time_to_success"] is None and idle["mean_return"] == -50.0
    assert idle["mean_final_goal_distance"] > good["mean_final_goal_distance"]


def test_evaluate_checkpoint_refuses_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="--episodes must be positive, got -3"):
        evaluate_checkpoint(tmp_path / "m.zip", tmp_path / "m.meta.json", -3, None)
    with pytest.raises(ConfigError, match=r"m\.meta\.json is missing"):
        evaluate_checkpoint(tmp_path / "m.zip", tmp_path / "m.meta.json", 3, None)
