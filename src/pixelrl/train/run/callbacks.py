"""Callbacks and log writers of a training run: checkpoints, gradient norms, divergence, progress."""

from __future__ import annotations

import contextlib
import json
import math
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
    "ProgressCallback",
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
            if "json" in excluded:
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


class WatchdogCallback(BaseCallback):
    """Stop where training first diverges, and log wall time.

    A non-finite critic or actor loss is caught when it is logged (every step); non-finite
    network parameters are caught right after the update that produced them, before the
    policy acts on them (a diverged actor otherwise fails inside ``predict`` with a torch
    distribution error that names no cause).

    Args:
        last_checkpoint: Returns a description of the last good checkpoint, for the message.
    """

    def __init__(self, last_checkpoint: Callable[[], str]) -> None:
        super().__init__()
        self._last_checkpoint = last_checkpoint
        self._start = time.perf_counter()
        self._offset = 0.0

    def set_wall_offset(self, seconds: float) -> None:
        """Count wall time from a previous segment of a resumed run."""
        self._offset = seconds

    @property
    def wall_seconds(self) -> float:
        """Wall time of the run so far, over all segments."""
        return self._offset + time.perf_counter() - self._start

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
