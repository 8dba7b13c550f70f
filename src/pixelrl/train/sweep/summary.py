"""A study's results across seeds: per configuration, final success with a 95% interval and time to 50/80/90%.

Reads what the trials wrote (``runs/<run_id>/<env>/seed<N>/progress.jsonl`` for the learning
curve from the evaluations during training, ``results/<run>_eval.json`` for the final
evaluation), so it works on any folder of `pixelrl-train train` runs, not only a study's. Writes
``summary.md`` (the table), ``summary.json`` (every number) and ``curves.png`` (success against
env steps: each configuration's mean over its seeds with a shaded 95% interval).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelrl.train.config import ConfigError
from pixelrl.train.results.progress import STEP_KEY, load_progress
from pixelrl.train.run.artifacts import save_atomically, write_json

__all__ = ["LEVELS", "RunCurve", "confidence_interval", "load_curves", "summarize", "time_to", "write_summary"]

LEVELS = (0.5, 0.8, 0.9)
"""Success levels whose time to reach is reported."""

# Two-sided 95% quantiles of Student's t for 1-30 degrees of freedom (beyond 30: the normal's 1.96).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)  # fmt: skip
_SEED = re.compile(r"^seed(\d+)$")


@dataclass(frozen=True)
class RunCurve:
    """One run's learning curve and final result.

    Attributes:
        configuration: The run id (a study's configuration name).
        env: The env id as its folder names it.
        seed: The seed.
        steps: ``(N,)`` env steps of each evaluation during training.
        minutes: ``(N,)`` training minutes at each.
        success: ``(N,)`` success rates.
        final_success: The final evaluation's success rate, else the last periodic one (None without any).
        load_average: Mean 1-minute load average over the evaluations (None when not logged).
    """

    configuration: str
    env: str
    seed: int
    steps: np.ndarray[Any, np.dtype[np.float64]]
    minutes: np.ndarray[Any, np.dtype[np.float64]]
    success: np.ndarray[Any, np.dtype[np.float64]]
    final_success: float | None
    load_average: float | None


def confidence_interval(values: list[float]) -> tuple[float, float | None]:
    """Mean and half-width of the two-sided 95% t-interval (None for a single value).

    Examples:
        >>> mean, half = confidence_interval([0.8, 0.9, 1.0])
        >>> round(mean, 3), round(half, 3)
        (0.9, 0.248)
    """
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    t = _T95[len(values) - 2] if len(values) - 1 <= len(_T95) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def time_to(curve: RunCurve, level: float) -> tuple[int, float] | None:
    """``(env steps, training minutes)`` of the first evaluation at or above ``level``, or None."""
    hits = np.flatnonzero(curve.success >= level)
    return (int(curve.steps[hits[0]]), float(curve.minutes[hits[0]])) if hits.size else None


def load_curves(folder: Path) -> list[RunCurve]:
    """Every run under ``folder/runs`` with a learning curve, sorted by configuration and seed.

    Raises:
        ConfigError: If the folder holds no runs.
    """
    runs_dir = folder / "runs"
    curves = []
    for progress in sorted(runs_dir.glob("*/*/seed*/progress.jsonl")):
        seed_dir = progress.parent
        match = _SEED.match(seed_dir.name)
        if match is None:
            continue
        configuration, env, seed = seed_dir.parent.parent.name, seed_dir.parent.name, int(match.group(1))
        try:
            data = load_progress(progress)
        except ValueError:
            data = {}
        rows = np.isfinite(data.get("eval/success_rate", np.array([])))

        def pick(key: str, rows: np.ndarray[Any, Any] = rows, data: dict[str, Any] = data) -> np.ndarray[Any, Any]:
            return data[key][rows] if key in data else np.full(int(rows.sum()), np.nan)

        success = pick("eval/success_rate")
        final_eval = folder / "results" / f"{configuration}_{env}_seed{seed}_eval.json"
        final = json.loads(final_eval.read_text())["success_rate"] if final_eval.is_file() else None
        if final is None and success.size:
            final = float(success[-1])
        load = pick("time/load_average_1min")
        curves.append(
            RunCurve(
                configuration,
                env,
                seed,
                pick(STEP_KEY),
                pick("eval/train_minutes"),
                success,
                final,
                float(np.nanmean(load)) if np.isfinite(load).any() else None,
            )
        )
    if not curves:
        raise ConfigError(f"{folder}: no runs under {runs_dir} (runs/<run_id>/<env>/seed<N>/progress.jsonl).")
    return curves


def summarize(curves: list[RunCurve]) -> list[dict[str, Any]]:
    """One row per configuration: seeds, final success (mean, 95% half-width), time to each level per seed."""
    rows = []
    for configuration in dict.fromkeys(c.configuration for c in curves):
        group = [c for c in curves if c.configuration == configuration]
        finals = [c.final_success for c in group if c.final_success is not None]
        mean, half = confidence_interval(finals) if finals else (None, None)
        row: dict[str, Any] = {
            "configuration": configuration,
            "env": group[0].env,
            "seeds": [c.seed for c in group],
            "final_success": [c.final_success for c in group],
            "final_success_mean": mean,
            "final_success_ci95": half,
            "env_steps": [int(c.steps[-1]) if c.steps.size else 0 for c in group],
            "train_minutes": [float(c.minutes[-1]) if c.minutes.size else 0.0 for c in group],
            "load_average": [c.load_average for c in group],
        }
        for level in LEVELS:
            hits = [time_to(c, level) for c in group]
            key = f"to_{round(level * 100)}"
            row[key] = [None if h is None else {"env_steps": h[0], "minutes": h[1]} for h in hits]
            row[f"reached_{round(level * 100)}"] = f"{sum(h is not None for h in hits)}/{len(group)}"
        rows.append(row)
    return rows


def _cell(hits: list[dict[str, Any] | None]) -> str:
    return "; ".join(
        "not reached" if h is None else f"{h['env_steps'] / 1000:g}k / {h['minutes']:.1f} min" for h in hits
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary table in Markdown."""
    levels = [round(level * 100) for level in LEVELS]
    times = " | ".join(f"to {level}% (env steps / min), per seed" for level in levels)
    reached = " | ".join(f"reached {level}%" for level in levels)
    lines = [
        f"| configuration | seeds | final success, mean (95% interval) | {times} | {reached} | load, per seed |",
        "|---|---|---|" + "---|" * (2 * len(levels) + 1),
    ]
    for row in rows:
        mean, half = row["final_success_mean"], row["final_success_ci95"]
        final = "-" if mean is None else f"{mean:.0%}" + ("" if half is None else f" (± {half:.0%})")
        seeds = ", ".join(map(str, row["seeds"]))
        cells = " | ".join(_cell(row[f"to_{level}"]) for level in levels)
        counts = " | ".join(row[f"reached_{level}"] for level in levels)
        load = ", ".join("-" if value is None else f"{value:.1f}" for value in row["load_average"])
        lines.append(f"| {row['configuration']} | {seeds} | {final} | {cells} | {counts} | {load} |")
    return "\n".join(lines) + "\n"


def plot(curves: list[RunCurve], out_png: Path) -> None:
    """Success against env steps: per configuration the mean over seeds and a shaded 95% interval.

    A run that stopped early (it reached its success target, or its budget) keeps its last
    evaluation until the longest run's end, so the mean covers every seed at every step.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for configuration in dict.fromkeys(c.configuration for c in curves):
        group = [c for c in curves if c.configuration == configuration and c.steps.size]
        if not group:
            continue
        grid = np.unique(np.concatenate([c.steps for c in group]))
        values = np.stack([np.interp(grid, c.steps, c.success, left=0.0, right=c.success[-1]) for c in group])
        mean = values.mean(axis=0)
        line = ax.plot(grid, mean, label=f"{configuration} ({len(group)} seeds)")[0]
        if len(group) > 1:
            half = np.array([confidence_interval(list(column))[1] or 0.0 for column in values.T])
            ax.fill_between(grid, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1), alpha=0.2,
                            color=line.get_color())  # fmt: skip
    ax.set(xlabel="env steps", ylabel="evaluation success", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_atomically(out_png, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)


def write_summary(folder: Path, out: Path | None = None) -> list[dict[str, Any]]:
    """Summarize the runs in ``folder`` into ``summary.md``, ``summary.json`` and ``curves.png`` (in ``out``).

    Args:
        folder: A study folder (or any `pixelrl-train` output folder).
        out: Where to write (default: ``folder``).

    Returns:
        The summary rows.

    Raises:
        ConfigError: If the folder holds no runs.
    """
    out = out or folder
    curves = load_curves(folder)
    rows = summarize(curves)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rows).encode()
    save_atomically(out / "summary.md", lambda handle: handle.write(text))
    write_json(out / "summary.json", rows)
    plot(curves, out / "curves.png")
    return rows
