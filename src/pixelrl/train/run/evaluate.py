"""Deterministic evaluation of a model or a saved checkpoint, and the eval-results JSON (``pixelrl.eval/1``)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import versions, write_json
from pixelrl.train.run.checkpoints import read_meta
from pixelrl.train.run.normalization import statistics_path

__all__ = ["EVAL_SCHEMA", "evaluate_checkpoint", "evaluate_policy_episodes", "recorded_path"]

EVAL_SCHEMA = "pixelrl.eval/1"


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
    step (1-based) at which it was 1. A model trained with `VecNormalize` sees the observations
    normalized by its (frozen) statistics, as in training.

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
    normalizer = model.get_vec_normalize_env()
    successes, returns, distances, times = 0, [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, first_success, step, done = 0.0, None, 0, False
        info: dict[str, Any] = {}
        while not done:
            seen = normalizer.normalize_obs(obs) if normalizer is not None else obs
            action, _ = model.predict(seen, deterministic=deterministic)
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


def evaluate_checkpoint(
    model_path: Path,
    meta_path: Path,
    episodes: int,
    out_json: Path | None,
    seed: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Evaluate a checkpoint with deterministic actions; rebuild its env from its metadata.

    Args:
        model_path: The SB3 zip.
        meta_path: Its ``.meta.json``.
        episodes: Number of episodes (>= 1).
        out_json: Where to write the results (schema ``pixelrl.eval/1``; its ``checkpoint`` is
            `recorded_path`: relative to this file's folder), or None.
        seed: Seed of the first episode (default: a seed disjoint from training, 10_000 + seed).
        device: Torch device.

    Returns:
        The results dict.

    Raises:
        ConfigError: If ``episodes < 1`` or the metadata or model is missing or corrupt.
    """
    from pixelrl.train.run.factory import load_model, make_env, make_vec_env

    if episodes < 1:
        raise ConfigError(f"--episodes must be positive, got {episodes}.")
    try:
        meta = read_meta(meta_path)
    except FileNotFoundError:
        raise ConfigError(f"{meta_path} is missing: evaluate a checkpoint written by pixelrl-train.") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    config = dataclasses.replace(TrainConfig.from_dict(meta["config"]), n_envs=1, vec_env="dummy")
    statistics = statistics_path(model_path) if config.normalize else None
    vec_env = make_vec_env(config, statistics=statistics, training=False)
    try:
        model = load_model(model_path, vec_env, config, device)
        env = make_env(config)
        try:
            summary = evaluate_policy_episodes(model, env, episodes, seed if seed is not None else 10_000 + config.seed)
        finally:
            env.close()
    finally:
        vec_env.close()
    result = {
        "schema": EVAL_SCHEMA,
        "tag": meta["tag"],
        "env": meta["env"],
        "seed": meta["seed"],
        "checkpoint": recorded_path(model_path, out_json),
        "num_timesteps": meta["num_timesteps"],
        **summary,
        "versions": versions(),
    }
    if out_json is not None:
        write_json(out_json, result)
    return result


def recorded_path(model_path: Path, out_json: Path | None) -> str:
    """How an eval JSON names the checkpoint it evaluated: relative to the JSON's own folder.

    A run directory (or a checkpoint with its eval JSON) can then be moved, copied or
    committed without the JSON pointing into the machine it was made on: ``out_json.parent /
    checkpoint`` is the checkpoint wherever the two went together. Without ``out_json`` the
    path is returned as given.
    """
    if out_json is None:
        return str(model_path)
    return os.path.relpath(model_path.resolve(), out_json.resolve().parent)
