"""One training run, end to end: preflight, learn, checkpoint, evaluate.

The path from a flag to a trained model: `pixelrl-train train` parses a
[TrainConfig][pixelrl.train.config.TrainConfig] (`cli`), [prepared_run][pixelrl.train.run.preflight.prepared_run]
checks it and builds the envs and model (`factory`), [train][pixelrl.train.run.runner.train]
runs SB3's ``learn`` with the run's callbacks, writes checkpoints (`checkpoints`) and evaluates
the final one (`evaluate`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat

from pixelrl.train.config import TrainConfig
from pixelrl.train.run.artifacts import RunPaths
from pixelrl.train.run.callbacks import (
    GradNormCallback,
    JsonlOutputFormat,
    PeriodicCheckpointCallback,
    PeriodicEvalCallback,
    ProgressCallback,
    WatchdogCallback,
)
from pixelrl.train.run.checkpoints import forget_buffer, save_checkpoint
from pixelrl.train.run.evaluate import evaluate_checkpoint, evaluate_policy_episodes
from pixelrl.train.run.factory import make_env
from pixelrl.train.run.preflight import PreparedRun, prepared_run

__all__ = ["RunResult", "train"]


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced."""

    config: TrainConfig
    paths: RunPaths
    num_timesteps: int
    wall_seconds: float
    eval: dict[str, Any] | None


def train(
    config: TrainConfig, extra_callbacks: list[BaseCallback] | None = None, extra_outputs: list[KVWriter] | None = None
) -> RunResult:
    """Run (or resume) one training run and write every artifact.

    Args:
        config: The run configuration (checked by `prepared_run` first).
        extra_callbacks: More SB3 callbacks.
        extra_outputs: More SB3 logger outputs: each receives every row the run logs (a study's
            reporter forwards them to Ray Tune).

    Returns:
        The run's result.

    Raises:
        ConfigError: For anything the preflight refuses (nothing was changed then).
        NonFiniteLossError: If training diverges (the message names the step and the last good checkpoint).
    """
    with prepared_run(config) as run:
        for note in run.notes:
            print(f"pixelrl-train: {note}", file=sys.stderr, flush=True)
        num_timesteps, wall = _learn(run, extra_callbacks or [], extra_outputs or [])
        result = None
        if run.config.eval_episodes > 0:
            paths = run.paths
            result = evaluate_checkpoint(paths.final_model, paths.final_meta, run.config.eval_episodes, paths.eval_json)
    return RunResult(run.config, run.paths, num_timesteps, wall, result)


def _learn(run: PreparedRun, extra_callbacks: list[BaseCallback], extra_outputs: list[KVWriter]) -> tuple[int, float]:
    config, paths, model = run.config, run.paths, run.model
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[KVWriter] = [
        TensorBoardOutputFormat(str(paths.log_dir)),
        JsonlOutputFormat(paths.log_dir / "progress.jsonl"),
        *extra_outputs,
    ]
    model.set_logger(Logger(str(paths.log_dir), outputs))
    last_good = [str(run.resume_from.model) if run.resume_from else "none yet"]
    watchdog = WatchdogCallback(lambda: last_good[0])
    watchdog.set_wall_offset(run.wall_offset)
    save_periodic = _periodic_saver(run, watchdog, last_good)
    callbacks: list[BaseCallback] = [watchdog]
    if config.checkpoint_freq > 0:
        callbacks.append(PeriodicCheckpointCallback(config.checkpoint_freq, save_periodic))
    if config.grad_norm_freq > 0 and not config.full_state:
        callbacks.append(
            GradNormCallback(config.grad_norm_freq, min(config.batch_size, 64), config.gamma, seed=config.seed)
        )
    if config.progress:
        callbacks.append(ProgressCallback(config.total_steps, model.num_timesteps))
    evaluator = _Evaluator(config)
    if config.eval_freq > 0 or config.max_train_minutes is not None:
        callbacks.append(
            PeriodicEvalCallback(
                evaluator,
                watchdog.clock,
                config.eval_freq,
                config.eval_freq_episodes,
                config.seed,
                config.stop_at_success,
                config.max_train_minutes,
            )
        )
    callbacks += extra_callbacks
    remaining = max(config.total_steps - model.num_timesteps, 0)
    try:
        if remaining > 0:
            model.learn(
                remaining,
                callback=CallbackList(callbacks),
                log_interval=config.log_interval,
                reset_num_timesteps=run.resume_from is None,
            )
        wall = watchdog.wall_seconds
        final_step = int(model.num_timesteps)
        if config.save_replay_buffer and config.checkpoint_freq > 0 and not paths.periodic(final_step)[1].is_file():
            save_periodic(final_step)  # so a run extended with a larger --total-steps resumes with its buffer
        save_checkpoint(config, model, wall, paths.final_model, paths.final_meta, None)
    finally:
        model.logger.close()
        evaluator.close()
    return int(model.num_timesteps), wall


class _Evaluator:
    """Deterministic episodes on an env of its own, built at the first evaluation."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.env: gym.Env[Any, Any] | None = None

    def __call__(self, model: Any, episodes: int, first_seed: int) -> dict[str, Any]:
        if self.env is None:
            self.env = make_env(self.config, monitor=False)
        return evaluate_policy_episodes(model, self.env, episodes, first_seed)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def _periodic_saver(run: PreparedRun, watchdog: WatchdogCallback, last_good: list[str]) -> Callable[[int], None]:
    config, paths, model = run.config, run.paths, run.model

    def save(step: int) -> None:
        model_path, meta_path, buffer_path = paths.periodic(step)
        buffer = buffer_path if config.save_replay_buffer else None
        save_checkpoint(config, model, watchdog.wall_seconds, model_path, meta_path, buffer)
        last_good[0] = str(model_path)
        # Keep only the newest buffer (each is as large as the replay memory itself), and only once
        # the new one is complete; the older checkpoints stay complete, as model-only ones.
        if buffer is not None:
            for old in paths.periodic_dir.glob("step*.buffer.pkl"):
                if old != buffer_path:
                    forget_buffer(old.with_name(old.name.replace(".buffer.pkl", ".meta.json")))
                    old.unlink()

    return save
