"""One training run, end to end: preflight, build or resume, learn, checkpoint, evaluate, summarise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv

from pixelrl.train.artifacts import (
    CHECKPOINT_SCHEMA,
    EVAL_SCHEMA,
    CheckpointInfo,
    RunPaths,
    command_line,
    find_latest_checkpoint,
    read_meta,
    save_atomically,
    versions,
    write_json,
)
from pixelrl.train.callbacks import (
    CheckpointCallback,
    GradNormCallback,
    JsonlOutputFormat,
    ProgressCallback,
    WatchdogCallback,
)
from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.factory import build_model, check_env_id, make_env, make_vec_env
from pixelrl.train.memory import describe_refusal, her_dict_buffer_nbytes, plan_memory

__all__ = ["RUN_CONTROL_FIELDS", "RunResult", "load_checkpoint_model", "preflight", "train"]

logger = logging.getLogger(__name__)

#: Settings that steer a run without changing the experiment; --resume may change them.
RUN_CONTROL_FIELDS = frozenset(
    {
        "total_steps", "resume", "progress", "eval_episodes", "allow_large_buffer", "checkpoint_freq",
        "save_replay_buffer", "log_interval", "threads", "device", "grad_norm_freq", "vec_env",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced."""

    config: TrainConfig
    paths: RunPaths
    num_timesteps: int
    wall_seconds: float
    eval: dict[str, Any] | None


def _probe_spaces(config: TrainConfig) -> tuple[Any, Any]:
    """Observation and action space of one env as configured; bad env settings become ConfigErrors."""
    from pixelrl.train.factory import check_goal_space

    try:
        env = make_env(config, monitor=False)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Cannot build {config.env} as configured: {exc}") from exc
    try:
        space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    check_goal_space(space, config.env)
    return space, action_space


def buffer_bytes_per_transition(config: TrainConfig) -> float:
    """Bytes per transition at capacity of the replay buffer the config uses (exact for the compact one)."""
    from pixelrl.buffers import CompactHerReplayBuffer

    space, action_space = _probe_spaces(config)
    if config.full_state or config.buffer == "sb3":
        return her_dict_buffer_nbytes(1, space, action_space)
    total = CompactHerReplayBuffer.estimate_nbytes(config.buffer_size, space, action_space, n_envs=config.n_envs)
    return total / config.buffer_size


def preflight(config: TrainConfig) -> None:
    """Every check that can fail before anything expensive starts.

    Raises:
        ConfigError: With the fix, for bad settings, an unknown env, a run that would overwrite
            another, a missing checkpoint on --resume, or a buffer that does not fit in RAM.
    """
    config.validate()
    check_env_id(config.env)
    paths = RunPaths.of(config)
    if config.resume:
        if find_latest_checkpoint(paths) is None and not paths.final_meta.is_file():
            raise ConfigError(
                f"--resume: no complete checkpoint of run {config.run_name} in {paths.periodic_dir} or "
                f"{paths.final_meta}. Check --tag / --seed / --out-dir, or start it without --resume."
            )
    else:
        existing = paths.existing()
        if existing:
            listed = ", ".join(str(p) for p in existing)
            raise ConfigError(
                f"Run {config.run_name} already has files ({listed}). Nothing was changed. Continue it with --resume, "
                "name a new run with --tag, or choose another --out-dir."
            )
    per_transition = buffer_bytes_per_transition(config)
    plan = plan_memory(config.buffer_size, per_transition)
    if not plan.fits and not config.allow_large_buffer:
        sb3_layout = config.buffer == "sb3" and not config.full_state
        hint = " (or drop --buffer sb3: the compact buffer needs about a seventh of the memory)" if sb3_layout else ""
        raise ConfigError(describe_refusal(plan, config.buffer_size, per_transition, hint))


def _meta(config: TrainConfig, model: SAC, wall: float, model_file: Path, buffer_file: Path | None) -> dict[str, Any]:
    steps = int(model.num_timesteps)
    return {
        "schema": CHECKPOINT_SCHEMA,
        "tag": config.run_tag,
        "env": config.env,
        "seed": config.seed,
        "num_timesteps": steps,
        "wall_seconds": round(wall, 3),
        "steps_per_second": round(steps / wall, 3) if wall > 0 else None,
        "model": model_file.name,
        "replay_buffer": buffer_file.name if buffer_file is not None else None,
        "config": config.to_dict(),
        "versions": versions(),
        "command": command_line(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _save_checkpoint(
    config: TrainConfig, model: SAC, wall: float, model_path: Path, meta_path: Path, buffer_path: Path | None
) -> None:
    """Model, then buffer, then metadata: the metadata's presence marks the checkpoint complete."""
    save_atomically(model_path, lambda f: model.save(f))  # type: ignore[arg-type]
    if buffer_path is not None:
        save_atomically(buffer_path, lambda f: model.save_replay_buffer(f))  # type: ignore[arg-type]
    write_json(meta_path, _meta(config, model, wall, model_path, buffer_path))


def load_checkpoint_model(model_path: Path, env: VecEnv | None, config: TrainConfig, device: str = "auto") -> SAC:
    """Load a checkpoint's model with the algorithm class it was trained with.

    Raises:
        ConfigError: If the file is missing or not a loadable SB3 zip.
    """
    from pixelrl.train.factory import algorithm_class

    if not model_path.is_file():
        raise ConfigError(f"Checkpoint {model_path} does not exist.")
    try:
        return algorithm_class(config).load(model_path, env=env, device=device)
    except Exception as exc:
        raise ConfigError(f"Checkpoint {model_path} could not be loaded ({type(exc).__name__}: {exc}).") from exc


def _resume_config(config: TrainConfig, meta: dict[str, Any]) -> TrainConfig:
    """The saved experiment settings, with this invocation's run-control settings."""
    saved = TrainConfig.from_dict(meta["config"])
    differing = [
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RUN_CONTROL_FIELDS and getattr(saved, f.name) != getattr(config, f.name)
    ]
    if differing:
        detail = ", ".join(f"{n}: saved {getattr(saved, n)!r}, given {getattr(config, n)!r}" for n in differing)
        raise ConfigError(
            f"--resume: the checkpoint was trained with different settings ({detail}). Resume with the "
            "original settings, or start a new run with another --tag."
        )
    control = {name: getattr(config, name) for name in RUN_CONTROL_FIELDS}
    return dataclasses.replace(saved, **control)


def _latest(paths: RunPaths) -> CheckpointInfo | None:
    latest = find_latest_checkpoint(paths)
    if paths.final_meta.is_file() and paths.final_model.is_file():
        meta = read_meta(paths.final_meta)
        final = CheckpointInfo(paths.final_model, paths.final_meta, None, int(meta["num_timesteps"]))
        if latest is None or final.num_timesteps >= latest.num_timesteps:
            return final
    return latest


def train(config: TrainConfig) -> RunResult:
    """Run (or resume) one training run and write every artifact.

    Args:
        config: The run configuration (validated by :func:`preflight` first).

    Returns:
        The run's result.

    Raises:
        ConfigError: For anything :func:`preflight` rejects or an unloadable checkpoint.
        NonFiniteLossError: If a loss diverges (the message names the last good checkpoint).
    """
    import torch

    preflight(config)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    paths = RunPaths.of(config)
    checkpoint = _latest(paths) if config.resume else None
    wall_offset = 0.0
    if checkpoint is not None:
        meta = read_meta(checkpoint.meta)
        config = _resume_config(config, meta)
        wall_offset = float(meta.get("wall_seconds") or 0.0)

    vec_env = make_vec_env(config, seed=config.seed + (checkpoint.num_timesteps if checkpoint else 0))
    try:
        if checkpoint is None:
            model = build_model(config, vec_env)
        else:
            model = load_checkpoint_model(checkpoint.model, vec_env, config, config.device)
            if checkpoint.buffer is not None:
                # Closes the episode that was in progress at save time, so HER can sample it and
                # new episodes start cleanly at the write position.
                model.load_replay_buffer(checkpoint.buffer, truncate_last_traj=True)
            else:
                # A fresh buffer: collect learning_starts new steps before the first update, or
                # HER would have no finished episode to sample from.
                model.learning_starts = model.num_timesteps + config.learning_starts
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        model.set_logger(
            Logger(
                str(paths.log_dir),
                [TensorBoardOutputFormat(str(paths.log_dir)), JsonlOutputFormat(paths.log_dir / "progress.jsonl")],
            )
        )
        last_good = [str(checkpoint.model) if checkpoint else "none yet"]
        watchdog = WatchdogCallback(lambda: last_good[0])
        watchdog.set_wall_offset(wall_offset)

        def save_periodic(step: int) -> None:
            model_path, meta_path, buffer_path = paths.periodic(step)
            buffer = buffer_path if config.save_replay_buffer else None
            _save_checkpoint(config, model, watchdog.wall_seconds, model_path, meta_path, buffer)
            last_good[0] = str(model_path)
            # Keep only the newest buffer: each one is as large as the replay memory itself.
            for old in paths.periodic_dir.glob("step*.buffer.pkl"):
                if old != buffer_path:
                    old.unlink()

        callbacks: list[BaseCallback] = [watchdog]
        if config.checkpoint_freq > 0:
            callbacks.append(CheckpointCallback(config.checkpoint_freq, save_periodic))
        if config.grad_norm_freq > 0 and not config.full_state:
            callbacks.append(GradNormCallback(config.grad_norm_freq, min(config.batch_size, 64), config.gamma))
        if config.progress and _interactive():
            callbacks.append(ProgressCallback(config.total_steps, model.num_timesteps))

        remaining = max(config.total_steps - model.num_timesteps, 0)
        start = time.perf_counter()
        if remaining > 0:
            model.learn(
                remaining,
                callback=CallbackList(callbacks),
                log_interval=config.log_interval,
                reset_num_timesteps=checkpoint is None,
            )
        wall = wall_offset + time.perf_counter() - start
        _save_checkpoint(config, model, wall, paths.final_model, paths.final_meta, None)
        model.logger.close()
    finally:
        vec_env.close()

    result = None
    if config.eval_episodes > 0:
        result = evaluate_checkpoint(paths.final_model, paths.final_meta, config.eval_episodes, paths.eval_json)
    return RunResult(config, paths, int(model.num_timesteps), wall, result)


def _interactive() -> bool:
    import sys

    return sys.stderr.isatty()


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
        episodes: Number of episodes.
        out_json: Where to write the results (schema ``pixelrl.eval/1``), or None.
        seed: Seed of the first episode (default: a seed disjoint from training, 10_000 + seed).
        device: Torch device.

    Returns:
        The results dict.

    Raises:
        ConfigError: If the metadata or model is missing or corrupt.
    """
    from pixelrl.train.evaluate import evaluate_policy_episodes

    try:
        meta = read_meta(meta_path)
    except FileNotFoundError:
        raise ConfigError(f"{meta_path} is missing: evaluate a checkpoint written by pixelrl-train.") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    config = TrainConfig.from_dict(meta["config"])
    config = dataclasses.replace(config, n_envs=1, vec_env="dummy")
    vec_env = make_vec_env(config)
    try:
        model = load_checkpoint_model(model_path, vec_env, config, device)
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
        "checkpoint": str(model_path),
        "num_timesteps": meta["num_timesteps"],
        **summary,
        "versions": versions(),
    }
    if out_json is not None:
        write_json(out_json, result)
    return result
