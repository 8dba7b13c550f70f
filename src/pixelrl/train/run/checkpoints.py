"""Checkpoints: what one holds, writing it atomically, and choosing (and checking) the one to resume from.

A checkpoint is a model zip, optionally a replay-buffer pickle, and a ``.meta.json`` written
last that names both (with the buffer's size in bytes). Only a checkpoint whose metadata parses
and whose files are present with the recorded sizes is complete; resuming takes the complete
checkpoint with the most steps, preferring one that holds a replay buffer on a tie, and says
which newer checkpoints it had to skip and why.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import RunPaths, command_line, save_atomically, versions, write_json
from pixelrl.train.run.normalization import save_statistics, statistics_path

if TYPE_CHECKING:
    from stable_baselines3 import SAC

__all__ = [
    "CHECKPOINT_SCHEMA",
    "CheckpointInfo",
    "ResumePoint",
    "find_resume_point",
    "forget_buffer",
    "read_meta",
    "resume_config",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_SCHEMA = "pixelrl.checkpoint/1"
_STEP = re.compile(r"^step(\d+)\.meta\.json$")


@dataclass(frozen=True)
class CheckpointInfo:
    """A complete checkpoint: its model, metadata and (optional) replay buffer."""

    model: Path
    meta: Path
    buffer: Path | None
    num_timesteps: int


def read_meta(meta_path: Path) -> dict[str, Any]:
    """Read and check a checkpoint's metadata.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a pixelrl checkpoint metadata file (the message names the file).
    """
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_path} is not valid JSON ({exc}); the checkpoint is corrupt.") from exc
    if not isinstance(meta, dict) or meta.get("schema") != CHECKPOINT_SCHEMA:
        raise ValueError(f"{meta_path} is not pixelrl checkpoint metadata (schema {CHECKPOINT_SCHEMA}).")
    steps = meta.get("num_timesteps")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0 or not isinstance(meta.get("config"), dict):
        raise ValueError(f"{meta_path} lacks a valid num_timesteps or config; the checkpoint is corrupt.")
    return meta


def _problem(model: Path, meta: dict[str, Any], buffer: Path | None) -> str | None:
    """Why a checkpoint whose metadata parsed cannot be resumed from, or None."""
    if not model.is_file():
        return f"{model} is missing"
    if not zipfile.is_zipfile(model):
        return f"{model} is not a complete zip file"
    if meta.get("vec_normalize") and not statistics_path(model).is_file():
        return f"{statistics_path(model)} (its normalization statistics) is missing"
    if buffer is not None:
        expected = meta.get("replay_buffer_bytes")
        if not buffer.is_file():
            return f"{buffer} is missing"
        if isinstance(expected, int) and buffer.stat().st_size != expected:
            return f"{buffer} holds {buffer.stat().st_size:,} bytes where {expected:,} were written (truncated)"
    return None


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run resumes from, and the newer ones that were skipped."""

    checkpoint: CheckpointInfo | None
    skipped: list[str] = field(default_factory=list)


def find_resume_point(paths: RunPaths) -> ResumePoint:
    """The complete checkpoint with the most steps (periodic or final), with a replay buffer on a tie.

    A checkpoint with unreadable metadata, a missing or truncated model zip or a truncated buffer
    is skipped with the reason, so a run killed while writing falls back to the previous
    complete checkpoint.

    Args:
        paths: The run's paths.

    Returns:
        The chosen checkpoint (None when there is no complete one) and the skipped ones.
    """
    candidates: list[tuple[Path, Path, Path | None]] = []
    if paths.periodic_dir.is_dir():
        for meta_path in paths.periodic_dir.iterdir():
            match = _STEP.match(meta_path.name)
            if match is not None:
                model, _, periodic_buffer = paths.periodic(int(match.group(1)))
                candidates.append((model, meta_path, periodic_buffer))
    if paths.final_meta.is_file():
        candidates.append((paths.final_model, paths.final_meta, None))
    found: list[CheckpointInfo] = []
    skipped: list[str] = []
    for model, meta_path, buffer in candidates:
        try:
            meta = read_meta(meta_path)
        except (OSError, ValueError) as exc:
            skipped.append(str(exc))
            continue
        with_buffer = buffer if (buffer is not None and meta.get("replay_buffer")) else None
        problem = _problem(model, meta, with_buffer)
        if problem is not None:
            skipped.append(f"{meta_path.name}: {problem}")
            continue
        found.append(CheckpointInfo(model, meta_path, with_buffer, int(meta["num_timesteps"])))
    best = max(found, key=lambda c: (c.num_timesteps, c.buffer is not None), default=None)
    return ResumePoint(best, skipped)


def _meta(
    config: TrainConfig, model: SAC, wall: float, model_file: Path, buffer_file: Path | None, stats: Path | None
) -> dict[str, Any]:
    steps = int(model.num_timesteps)
    return {
        "schema": CHECKPOINT_SCHEMA,
        "tag": config.run_id,
        "readable_tag": config.run_tag,
        "experiment_hash": config.experiment_hash,
        "env": config.env,
        "seed": config.seed,
        "num_timesteps": steps,
        "wall_seconds": round(wall, 3),
        "steps_per_second": round(steps / wall, 3) if wall > 0 else None,
        "model": model_file.name,
        "replay_buffer": buffer_file.name if buffer_file is not None else None,
        "replay_buffer_bytes": buffer_file.stat().st_size if buffer_file is not None else None,
        "vec_normalize": stats.name if stats is not None else None,
        "config": config.to_dict(),
        "versions": versions(),
        "command": command_line(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def save_checkpoint(
    config: TrainConfig, model: SAC, wall: float, model_path: Path, meta_path: Path, buffer_path: Path | None
) -> None:
    """Model, normalization statistics, buffer, then metadata: the metadata's presence marks the checkpoint complete.

    Args:
        config: The run's configuration (saved in the metadata).
        model: The model.
        wall: Training wall time so far, over all segments.
        model_path: Where the zip goes (the statistics go next to it, see `normalization`).
        meta_path: Where the metadata goes.
        buffer_path: Where the replay buffer goes, or None to save none.
    """
    save_atomically(model_path, lambda f: model.save(f))  # type: ignore[arg-type]
    vec_normalize = model.get_vec_normalize_env()
    stats = statistics_path(model_path) if vec_normalize is not None else None
    if vec_normalize is not None and stats is not None:
        save_statistics(vec_normalize, stats)
    if buffer_path is not None:
        save_atomically(buffer_path, lambda f: model.save_replay_buffer(f))  # type: ignore[arg-type]
    write_json(meta_path, _meta(config, model, wall, model_path, buffer_path, stats))


def forget_buffer(meta_path: Path) -> None:
    """Record in a checkpoint's metadata that its replay buffer was deleted (it stays a model-only checkpoint)."""
    try:
        meta = read_meta(meta_path)
    except (OSError, ValueError):
        return  # not a complete checkpoint: nothing to keep consistent
    write_json(meta_path, {**meta, "replay_buffer": None, "replay_buffer_bytes": None})


def resume_config(config: TrainConfig, meta: dict[str, Any], source: Path) -> TrainConfig:
    """The saved task and experiment settings, with this invocation's control and output settings.

    Args:
        config: The settings given now.
        meta: The checkpoint's metadata.
        source: The metadata file, for messages.

    Returns:
        The configuration to continue with.

    Raises:
        ConfigError: If a task or experiment setting differs from the saved one.
    """
    try:
        saved = TrainConfig.from_dict(meta["config"])
    except ConfigError as exc:
        raise ConfigError(f"{source}: the saved configuration is not readable by this version ({exc}).") from None
    differing = [n for n in TrainConfig.names("task", "experiment", "pixel") if getattr(saved, n) != getattr(config, n)]
    if differing:
        detail = ", ".join(f"{n}: saved {getattr(saved, n)!r}, given {getattr(config, n)!r}" for n in differing)
        raise ConfigError(
            f"--resume: the checkpoint was trained with different settings ({detail}). Resume with the "
            "original settings, or start a new run with another --tag."
        )
    return saved.replace(**{name: getattr(config, name) for name in TrainConfig.names("control", "output")})
