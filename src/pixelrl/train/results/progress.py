"""A run's ``progress.jsonl``: one JSON object per logger dump, read back as aligned columns."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["STEP_KEY", "FloatArray", "load_progress", "progress_file"]

logger = logging.getLogger(__name__)

STEP_KEY = "time/total_timesteps"
"""The column every ``progress.jsonl`` line carries: environment steps so far."""

FloatArray = npt.NDArray[np.float64]


def progress_file(path: Path) -> Path:
    """The ``progress.jsonl`` of a run folder, or ``path`` itself when it is a file."""
    path = Path(path)
    return path / "progress.jsonl" if path.is_dir() else path


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_progress(path: Path) -> dict[str, FloatArray]:
    """Read a run's ``progress.jsonl`` into columns aligned on ``time/total_timesteps``.

    A resumed run appends a new segment that starts at its checkpoint's step, so a line whose
    step is <= the previous kept line's supersedes every kept line at or after that step:
    for each step the last write wins and the stale tail of the crashed segment is dropped.
    Lines that are not JSON objects with a numeric step (a half-written last line after
    SIGKILL) are skipped with a warning.

    Args:
        path: The ``progress.jsonl`` file or the run directory that holds it.

    Returns:
        One ``(N,) float64`` array per logged key, sorted by step; a key missing from a line is
        NaN there. ``result[STEP_KEY]`` holds the (integer-valued) steps.

    Raises:
        ValueError: If the file does not exist or has no usable line.
    """
    file = progress_file(path)
    if not file.is_file():
        raise ValueError(
            f"{file}: no such progress log. Pass a run directory that holds progress.jsonl "
            "(runs/<tag>/<env>/seed<N>) or the progress.jsonl file itself."
        )
    kept: list[tuple[float, dict[str, float]]] = []
    with file.open(encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d: skipping a line that is not valid JSON (half-written?)", file, lineno)
                continue
            if not isinstance(record, dict) or not _is_number(record.get(STEP_KEY)):
                logger.warning("%s:%d: skipping a line without a numeric %r", file, lineno, STEP_KEY)
                continue
            step = float(record[STEP_KEY])
            while kept and kept[-1][0] >= step:
                kept.pop()
            kept.append((step, {k: float(v) for k, v in record.items() if _is_number(v)}))
    if not kept:
        raise ValueError(
            f"{file}: no usable line (each needs a JSON object with a numeric {STEP_KEY!r}). "
            "Check that this is the progress.jsonl pixelrl-train wrote, or re-run training."
        )
    keys = list(dict.fromkeys(k for _, row in kept for k in row))
    return {k: np.array([row.get(k, math.nan) for _, row in kept], dtype=np.float64) for k in keys}
