"""Callbacks and log writers of a training run: checkpoints, gradient norms, divergence, progress."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

__all__ = [
    "CheckpointCallback",
    "GradNormCallback",
    "JsonlOutputFormat",
    "NonFiniteLossError",
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
    """A training loss became NaN or infinite."""


class WatchdogCallback(BaseCallback):
    """Stop at the first non-finite critic or actor loss, and log wall time.

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

    def _on_step(self) -> bool:
        values = self.logger.name_to_value
        for key in ("train/critic_loss", "train/actor_loss"):
            value = values.get(key)
            if value is not None and not math.isfinite(float(value)):
                raise NonFiniteLossError(
                    f"{key} became {value} at step {self.num_timesteps:,}. The last good checkpoint is "
                    f"{self._last_checkpoint()}. Lower --learning-rate, check the reward scale, or resume from it."
                )
        self.logger.record("time/wall_seconds", self.wall_seconds)
        return True


class CheckpointCallback(BaseCallback):
    """Save a complete checkpoint every ``freq`` environment steps.

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

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._save(self.num_timesteps)
            self._next = (self.num_timesteps // self.freq + 1) * self.freq
        return True


class GradNormCallback(BaseCallback):
    """Log the gradient norms the critic and actor losses send into the encoder.

    Every ``freq`` environment steps it samples ``batch_size`` transitions and records
    ``encoder/grad_norm_critic``, ``encoder/grad_norm_actor`` and ``encoder/grad_norm_ratio``
    (see :func:`pixelrl.diagnostics.encoder_gradient_norms`). The policy is not changed.

    Args:
        freq: Environment steps between measurements.
        batch_size: Transitions per measurement.
        gamma: Discount factor.
    """

    def __init__(self, freq: int, batch_size: int, gamma: float) -> None:
        super().__init__()
        self.freq = freq
        self.batch_size = batch_size
        self.gamma = gamma
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_step(self) -> bool:
        from pixelrl.diagnostics import encoder_gradient_norms

        model = self.model
        if self.num_timesteps < self._next or self.num_timesteps <= model.learning_starts:  # type: ignore[attr-defined]
            return True
        self._next = (self.num_timesteps // self.freq + 1) * self.freq
        buffer = model.replay_buffer  # type: ignore[attr-defined]
        try:
            batch = buffer.sample(self.batch_size)
        except RuntimeError:  # no complete episode yet
            return True
        # SAC keeps log(ent_coef) when it tunes the coefficient and a constant tensor otherwise.
        log_ent = getattr(model, "log_ent_coef", None)
        fixed = getattr(model, "ent_coef_tensor", None)
        ent_coef = float(np.exp(log_ent.item())) if log_ent is not None else float(fixed.item())  # type: ignore[union-attr]
        norms = encoder_gradient_norms(model.policy, batch, ent_coef=ent_coef, gamma=self.gamma)  # type: ignore[arg-type]
        self.logger.record("encoder/grad_norm_critic", norms["critic"])
        self.logger.record("encoder/grad_norm_actor", norms["actor"])
        self.logger.record("encoder/grad_norm_ratio", norms["ratio"])
        return True


class ProgressCallback(BaseCallback):
    """A rich progress bar with env steps/s and the recent success rate.

    Args:
        total: The run's total environment steps.
        start: Steps already done (resumed runs).
    """

    def __init__(self, total: int, start: int = 0) -> None:
        super().__init__()
        self.total = total
        self.start = start
        self._progress: Any = None
        self._task: Any = None
        self._t0 = 0.0
        self._last = 0

    def _on_training_start(self) -> None:
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
        self._t0 = time.perf_counter()
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last < 100 and self.num_timesteps < self.total:
            return True
        self._last = self.num_timesteps
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        rate = (self.num_timesteps - self.start) / elapsed
        buffer = getattr(self.model, "ep_success_buffer", [])
        success = f"{np.mean(buffer):.0%}" if len(buffer) else "-"
        self._progress.update(self._task, completed=self.num_timesteps, rate=rate, success=success)
        return True

    def _on_training_end(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.num_timesteps)
            self._progress.stop()
