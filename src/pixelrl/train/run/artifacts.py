"""Run artifacts: stable paths and atomic writes.

Layout for a run named ``<run_id>_<env>_seed<N>`` (see `TrainConfig.run_name`)::

    checkpoints/<run>.zip                 final model (SB3 zip)
    checkpoints/<run>.meta.json           its metadata (schema pixelrl.checkpoint/1)
    checkpoints/<run>/step<K>.zip         periodic checkpoints, each with step<K>.meta.json
    checkpoints/<run>/step<K>.buffer.pkl  the replay buffer, with --save-replay-buffer (newest only)
    checkpoints/.<run>.lock               held by the process writing the run (an OS file lock)
    results/<run>_eval.json               evaluation (schema pixelrl.eval/1)
    runs/<run_id>/<env>/seed<N>/          TensorBoard events and progress.jsonl

Every file is written to a temporary name in the same folder and renamed into place, and a
checkpoint's ``.meta.json`` is written last: a checkpoint without its metadata is incomplete
(a run killed mid-write) and is never taken as the latest.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pixelrl.train.config import TrainConfig

__all__ = ["RunPaths", "atomic_write", "command_line", "recorded_command", "save_atomically", "versions", "write_json"]

_TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run."""

    final_model: Path
    final_meta: Path
    periodic_dir: Path
    eval_json: Path
    log_dir: Path
    lock_file: Path

    @classmethod
    def of(cls, config: TrainConfig) -> RunPaths:
        """The paths of ``config``'s run."""
        name = config.run_name
        return cls(
            final_model=config.checkpoints_path / f"{name}.zip",
            final_meta=config.checkpoints_path / f"{name}.meta.json",
            periodic_dir=config.checkpoints_path / name,
            eval_json=config.results_path / f"{name}_eval.json",
            log_dir=config.runs_path / config.run_id / config.env.replace("/", "-") / f"seed{config.seed}",
            lock_file=config.checkpoints_path / f".{name}.lock",
        )

    def periodic(self, step: int) -> tuple[Path, Path, Path]:
        """``(model, meta, buffer)`` paths of the periodic checkpoint at ``step``."""
        stem = self.periodic_dir / f"step{step}"
        return stem.with_suffix(".zip"), Path(f"{stem}.meta.json"), Path(f"{stem}.buffer.pkl")

    def existing(self) -> list[Path]:
        """Files and folders of this run that already exist (the lock file is not one of them)."""
        candidates = (self.final_model, self.final_meta, self.periodic_dir, self.eval_json, self.log_dir)
        return [p for p in candidates if p.exists()]

    def stale_temporaries(self) -> list[Path]:
        """Temporary files a writer killed mid-write left in this run's checkpoint folders."""
        stem = self.final_model.name.removesuffix(".zip")
        found = [p for p in self.final_model.parent.glob(f".{stem}.*{_TMP_SUFFIX}") if p.is_file()]
        if self.periodic_dir.is_dir():
            found += [p for p in self.periodic_dir.glob(f".*{_TMP_SUFFIX}") if p.is_file()]
        return found


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success flush, fsync and rename it to ``path``.

    A crash at any moment leaves either the old file or the new one, never a partial file
    under the final name.

    Args:
        path: Final file name.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def save_atomically(path: Path, save: Callable[[IO[bytes]], object]) -> None:
    """Call ``save(file)`` on a temporary file and rename it to ``path`` (for SB3's and matplotlib's savers)."""
    with atomic_write(path, "wb") as handle:
        save(handle)


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the libraries a run depends on."""
    import gymnasium
    import mujoco
    import numpy
    import stable_baselines3
    import torch

    import pixelrl

    return {
        "pixelrl": pixelrl.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "mujoco": mujoco.__version__,
        "numpy": numpy.__version__,
    }


_RECORDED_COMMAND: list[str] = []


def command_line() -> str:
    """The command that started this run: the process's own, shell-quoted, or the one `recorded_command` set."""
    if _RECORDED_COMMAND:
        return _RECORDED_COMMAND[-1]
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


@contextlib.contextmanager
def recorded_command(text: str) -> Iterator[None]:
    """Record ``text`` as the command of the runs made inside the block (a study's worker, not its own argv)."""
    _RECORDED_COMMAND.append(text)
    try:
        yield
    finally:
        _RECORDED_COMMAND.pop()
