"""Deterministic evaluation episodes and the eval-results JSON (schema ``pixelrl.eval/1``)."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["evaluate_policy_episodes"]


def _goals(env: gym.Env[Any, Any], obs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The achieved and desired goal after a step, from the observation or the raw observation."""
    raw = obs
    if not (isinstance(obs, dict) and "achieved_goal" in obs):
        raw = env.get_wrapper_attr("last_raw_obs")
    return np.asarray(raw["achieved_goal"]), np.asarray(raw["desired_goal"])


def evaluate_policy_episodes(
    model: BaseAlgorithm, env: gym.Env[Any, Any], episodes: int, seed: int, deterministic: bool = True
) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``model`` on ``env`` and summarise them.

    Success is the env's ``info["is_success"]`` at the last step; time to success is the first
    step (1-based) at which it was 1.

    Args:
        model: A trained SB3 model.
        env: One (non-vectorised) env built like the training envs.
        episodes: Number of episodes.
        seed: Seed of the first episode (episode i uses seed + i).
        deterministic: Use the policy's mean action.

    Returns:
        ``episodes``, ``successes``, ``success_rate``, ``mean_return``, ``mean_final_goal_distance``,
        ``mean_time_to_success`` (None if no success), ``deterministic``, ``wall_seconds``.
    """
    start = time.perf_counter()
    successes, returns, distances, times = 0, [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, first_success, step, done = 0.0, None, 0, False
        info: dict[str, Any] = {}
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, info = env.step(action)
            step += 1
            total += float(reward)
            if first_success is None and info.get("is_success", 0.0) >= 1.0:
                first_success = step
            done = terminated or truncated
        achieved, desired = _goals(env, obs)
        distances.append(float(np.linalg.norm(achieved - desired)))
        returns.append(total)
        success = bool(info.get("is_success", 0.0) >= 1.0)
        successes += success
        if first_success is not None:
            times.append(first_success)
    return {
        "episodes": episodes,
        "successes": successes,
        "success_rate": successes / episodes if episodes else 0.0,
        "mean_return": float(np.mean(returns)) if returns else 0.0,
        "mean_final_goal_distance": float(np.mean(distances)) if distances else 0.0,
        "mean_time_to_success": float(np.mean(times)) if times else None,
        "deterministic": deterministic,
        "wall_seconds": time.perf_counter() - start,
    }
