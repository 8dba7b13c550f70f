"""Callbacks and log writers of a training run: checkpoints, gradient norms, divergence, progress."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

__all__ = [
    "GradNormCallback",
    "JsonlOutputFormat",
    "NonFiniteLossError",
    "PeriodicCheckpointCallback",
    "PeriodicEvalCallback",
    "ProgressCallback",
    "RunClock",
    "WatchdogCallback",
]


class JsonlOutputFormat(KVWriter):
    """SB3 logger output that APPENDS one JSON object per dump to ``progress.jsonl``.

    SB3's CSV writer truncates its file when opened, which would erase a run's history on
    ``--resume``; appending keeps it (readers treat a step that goes backwards as a restart).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("a", encoding="utf-8")

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        """Write the scalar values of one dump."""
        row: dict[str, Any] = {"time/total_timesteps": int(step)}
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            if "json" in excluded or key == "time/total_timesteps":  # the step stays an integer
                continue
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                row[key] = float(value) if math.isfinite(float(value)) else str(float(value))
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()


class NonFiniteLossError(RuntimeError):
    """A training loss or a network parameter became NaN or infinite."""


class RunClock:
    """Training time of a run over all its segments, with periodic evaluations left out.

    Args:
        offset: Training seconds of earlier segments (a resumed run).
    """

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._start = time.perf_counter()
        self._paused = 0.0

    @property
    def seconds(self) -> float:
        """Training seconds so far."""
        return self._offset + time.perf_counter() - self._start - self._paused

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the block's time out of `seconds` (an evaluation is not training)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - start


class WatchdogCallback(BaseCallback):
    """Stop where training first diverges, and log training time.

    A non-finite critic or actor loss is caught when it is logged (every step); non-finite
    network parameters are caught right after the update that produced them, before the
    policy acts on them (a diverged actor otherwise fails inside ``predict`` with a torch
    distribution error that names no cause).

    Args:
        last_checkpoint: Returns a description of the last good checkpoint, for the message.
        clock: The run's clock (default: a new one).
    """

    def __init__(self, last_checkpoint: Callable[[], str], clock: RunClock | None = None) -> None:
        super().__init__()
        self._last_checkpoint = last_checkpoint
        self.clock = clock if clock is not None else RunClock()

    def set_wall_offset(self, seconds: float) -> None:
        """Count training time from a previous segment of a resumed run."""
        self.clock = RunClock(seconds)

    @property
    def wall_seconds(self) -> float:
        """Training seconds of the run so far, over all segments, periodic evaluations left out."""
        return self.clock.seconds

    def _fail(self, what: str) -> NonFiniteLossError:
        return NonFiniteLossError(
            f"{what} at step {self.num_timesteps:,}. The last good checkpoint is {self._last_checkpoint()}. "
            "Lower --learning-rate (or --ent-coef), check the reward scale, or resume from it."
        )

    def _on_step(self) -> bool:
        values = self.logger.name_to_value
        for key in ("train/critic_loss", "train/actor_loss", "train/ent_coef"):
            value = values.get(key)
            if value is not None and not math.isfinite(float(value)):
                raise self._fail(f"{key} became {value}")
        self.logger.record("time/wall_seconds", self.wall_seconds)
        return True

    def _on_rollout_start(self) -> None:
        # Runs after each train() call and before the next action is chosen. One reduction per
        # tensor and a single host sync: NaN or inf anywhere makes the sum non-finite.
        params = [p for p in self.model.policy.parameters()]
        if params and not bool(th.isfinite(th.stack([p.detach().sum() for p in params]).sum())):
            bad = next(name for name, p in self.model.policy.named_parameters() if not th.isfinite(p).all())
            raise self._fail(f"the network parameter {bad} became non-finite")


class PeriodicCheckpointCallback(BaseCallback):
    """Save a complete checkpoint every ``freq`` environment steps.

    The save happens at the start of the next rollout: after the step's transition is stored
    and its gradient steps are done, so a run resumed from the checkpoint continues exactly
    where the saved one stood (SB3 calls ``on_step`` before it stores the transition).

    Args:
        freq: Environment steps between checkpoints.
        save: ``save(num_timesteps)`` writes one checkpoint (model, optional buffer, then metadata).
    """

    def __init__(self, freq: int, save: Callable[[int], None]) -> None:
        super().__init__()
        self.freq = freq
        self._save = save
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self._next:
            self._save(self.num_timesteps)
            self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # a checkpoint due at the last step (after its gradient steps)

    def _on_step(self) -> bool:
        return True


@contextlib.contextmanager
def _private_rng(numpy_state: dict[str, Any], torch_generator: th.Generator) -> Iterator[None]:
    """Run the block on its own NumPy and torch random streams, leaving the global ones untouched.

    SB3's buffers sample with the global ``np.random`` and the policy with torch's global
    generator, so a measurement that samples would otherwise shift the training run's draws.
    """
    saved = np.random.get_state()  # noqa: NPY002 - SB3's buffers draw from the global RNG
    np.random.set_state(numpy_state["state"])  # noqa: NPY002
    # The CUDA generator (augmentation on a GPU draws from it) is forked too and restored after.
    with th.random.fork_rng(devices=[th.cuda.current_device()] if th.cuda.is_available() else []):
        th.random.set_rng_state(torch_generator.get_state())
        try:
            yield
        finally:
            torch_generator.set_state(th.random.get_rng_state())
            numpy_state["state"] = np.random.get_state()  # noqa: NPY002
            np.random.set_state(saved)  # noqa: NPY002


class GradNormCallback(BaseCallback):
    """Log the gradient norms the critic and actor losses send into the encoder.

    Every ``freq`` environment steps it samples ``batch_size`` transitions and records
    ``encoder/grad_norm_critic``, ``encoder/grad_norm_actor`` and ``encoder/grad_norm_ratio``
    (see `pixelrl.diagnostics.encoder_gradient_norms`). The policy is not changed, and the
    measurement draws from its own random streams: a run trains identically with or without it.

    Args:
        freq: Environment steps between measurements.
        batch_size: Transitions per measurement.
        gamma: Discount factor.
        seed: Seed of the measurement's own random streams.
    """

    def __init__(self, freq: int, batch_size: int, gamma: float, seed: int = 0) -> None:
        super().__init__()
        self.freq = freq
        self.batch_size = batch_size
        self.gamma = gamma
        self._next = 0
        self._numpy_state = {"state": np.random.RandomState(seed).get_state()}
        self._torch_generator = th.Generator().manual_seed(seed)

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_step(self) -> bool:
        from pixelrl.diagnostics import encoder_gradient_norms

        model = self.model
        if self.num_timesteps < self._next or self.num_timesteps <= model.learning_starts:  # type: ignore[attr-defined]
            return True
        self._next = (self.num_timesteps // self.freq + 1) * self.freq
        buffer = model.replay_buffer  # type: ignore[attr-defined]
        # SAC keeps log(ent_coef) when it tunes the coefficient and a constant tensor otherwise.
        log_ent = getattr(model, "log_ent_coef", None)
        fixed = getattr(model, "ent_coef_tensor", None)
        ent_coef = float(np.exp(log_ent.item())) if log_ent is not None else float(fixed.item())  # type: ignore[union-attr]
        with _private_rng(self._numpy_state, self._torch_generator):
            try:
                batch = buffer.sample(self.batch_size, env=model.get_vec_normalize_env())
            except RuntimeError:  # no complete episode yet
                return True
            norms = encoder_gradient_norms(model.policy, batch, ent_coef=ent_coef, gamma=self.gamma)  # type: ignore[arg-type]
        self.logger.record("encoder/grad_norm_critic", norms["critic"])
        self.logger.record("encoder/grad_norm_actor", norms["actor"])
        self.logger.record("encoder/grad_norm_ratio", norms["ratio"])
        return True


class PeriodicEvalCallback(BaseCallback):
    """Evaluate the deterministic policy every ``freq`` env steps; stop at a success level or a time budget.

    Each evaluation runs ``episodes`` episodes on its own env (seeds disjoint from training and
    from the final evaluation), between two env steps and outside the run's clock, and logs
    ``eval/success_rate``, ``eval/mean_final_goal_distance`` and ``eval/train_minutes`` (training
    minutes so far) in one row of the run's logs: the learning curve.

    Args:
        evaluate: ``evaluate(model, episodes, first_seed)`` returns the summary of
            `evaluate_policy_episodes`.
        clock: The run's clock.
        freq: Env steps between evaluations.
        episodes: Episodes per evaluation.
        seed: The run's seed (evaluation seeds derive from it).
        stop_at_success: Stop training once two evaluations in a row reach this success rate.
        max_train_minutes: Stop training once this many training minutes have passed.
    """

    def __init__(
        self,
        evaluate: Callable[[Any, int, int], dict[str, Any]],
        clock: RunClock,
        freq: int,
        episodes: int,
        seed: int,
        stop_at_success: float | None = None,
        max_train_minutes: float | None = None,
    ) -> None:
        super().__init__()
        self._evaluate = evaluate
        self.clock = clock
        self.freq, self.episodes, self.seed = freq, episodes, seed
        self.stop_at_success, self.max_train_minutes = stop_at_success, max_train_minutes
        self._next = 0
        self._hits = 0
        self._stop = False

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq if self.freq > 0 else 0

    def _on_rollout_start(self) -> None:
        if self.freq <= 0 or self.num_timesteps < self._next:
            return
        self._next = (self.num_timesteps // self.freq + 1) * self.freq
        with self.clock.paused():
            first_seed = 20_000 + 100_000 * self.seed + self.episodes * (self.num_timesteps // self.freq)
            result = self._evaluate(self.model, self.episodes, first_seed)
        self.logger.record("eval/success_rate", result["success_rate"])
        self.logger.record("eval/mean_final_goal_distance", result["mean_final_goal_distance"])
        self.logger.record("eval/train_minutes", self.clock.seconds / 60)
        self.logger.record("time/load_average_1min", os.getloadavg()[0])  # runs timed under the same load compare
        self.logger.dump(self.num_timesteps)
        if self.stop_at_success is not None:
            self._hits = self._hits + 1 if result["success_rate"] >= self.stop_at_success else 0
            self._stop = self._stop or self._hits >= 2

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # an evaluation due at the last step

    def _on_step(self) -> bool:
        over_budget = self.max_train_minutes is not None and self.clock.seconds / 60 >= self.max_train_minutes
        return not (self._stop or over_budget)


class ProgressCallback(BaseCallback):
    """Progress with env steps/s, the recent success rate and the time left.

    On a terminal: a rich progress bar. Otherwise (piped, ``nohup``, a job scheduler): one plain
    line after the first 100 steps, then one every ``line_seconds`` and one at the end, so a log
    shows a run is alive.

    Args:
        total: The run's total environment steps.
        start: Steps already done (resumed runs).
        interactive: Draw the bar (default: whether stderr is a terminal).
        line_seconds: Seconds between progress lines when not interactive.
        stream: Where progress lines go (default: stdout).
    """

    def __init__(
        self,
        total: int,
        start: int = 0,
        *,
        interactive: bool | None = None,
        line_seconds: float = 60.0,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__()
        self.total = total
        self.start = start
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.line_seconds = line_seconds
        self.stream = stream
        self._progress: Any = None
        self._task: Any = None
        self._t0 = 0.0
        self._last = 0
        self._last_line = 0.0

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self._last_line = -math.inf  # the first line comes at the first update of the status
        self._last = self.num_timesteps
        if not self.interactive:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7.1f} steps/s"),
            TextColumn("success {task.fields[success]}"),
            TimeRemainingColumn(),
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, completed=self.start, rate=0.0, success="-")

    def _status(self) -> tuple[float, str]:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        rate = (self.num_timesteps - self.start) / elapsed
        buffer = getattr(self.model, "ep_success_buffer", [])
        return rate, f"{np.mean(buffer):.0%}" if len(buffer) else "-"

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last < 100 and self.num_timesteps < self.total:
            return True
        self._last = self.num_timesteps
        rate, success = self._status()
        if self._progress is not None:
            self._progress.update(self._task, completed=self.num_timesteps, rate=rate, success=success)
        elif time.perf_counter() - self._last_line >= self.line_seconds:
            self._last_line = time.perf_counter()
            self._line(rate, success)
        return True

    def _line(self, rate: float, success: str) -> None:
        left = (self.total - self.num_timesteps) / rate if rate > 0 else float("inf")
        eta = f"{left / 60:.1f} min" if math.isfinite(left) else "-"
        stream = self.stream or sys.stdout
        print(
            f"train {self.num_timesteps:,}/{self.total:,} steps  {rate:.1f} steps/s  success {success}  ETA {eta}",
            file=stream,
            flush=True,
        )

    def _on_training_end(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.num_timesteps)
            self._progress.stop()
        else:
            self._line(*self._status())
