"""Learning-curve figures: one run with its three phases, or a summary across runs.

matplotlib is imported only when a figure is drawn, so loading logs and detecting phases
(`pixelrl.train.results.progress`, `pixelrl.train.results.phases`) work without it.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from pixelrl.train.results.phases import Phases, detect_phases
from pixelrl.train.results.progress import STEP_KEY, FloatArray, load_progress, progress_file
from pixelrl.train.run.artifacts import save_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["InvestigationRow", "plot_investigation", "plot_run"]

_DPI = 120


def _column(data: dict[str, FloatArray], *keys: str) -> FloatArray:
    """The first of ``keys`` with a finite value, else all NaN."""
    for key in keys:
        if key in data and np.isfinite(data[key]).any():
            return data[key]
    return np.full_like(data[STEP_KEY], np.nan)


def _line(ax: Axes, x: FloatArray, y: FloatArray, **kwargs: object) -> bool:
    """Plot the finite points of ``y`` as one connected line; return whether any were drawn."""
    mask = np.isfinite(y)
    if mask.any():
        ax.plot(x[mask], y[mask], **kwargs)  # type: ignore[arg-type]
    return bool(mask.any())


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # headless; no pyplot global state
    return fig


def _save(fig: Figure, out_png: Path) -> None:
    """Write the PNG atomically so a reader never sees a half-written file."""
    save_atomically(Path(out_png), lambda handle: fig.savefig(handle, format="png", dpi=_DPI))


_SEED_DIR = re.compile(r"seed(\d+)")


def _identity(progress: Path) -> tuple[str, str, int | None]:
    """``(tag, env, seed)`` from ``runs/<tag>/<env>/seed<N>/progress.jsonl``."""
    seed_dir = progress.resolve().parent
    match = _SEED_DIR.fullmatch(seed_dir.name)
    if match and seed_dir.parent.parent.name:
        return seed_dir.parent.parent.name, seed_dir.parent.name, int(match.group(1))
    return seed_dir.name, "", None


def plot_run(run_dir_or_progress: Path, out_png: Path, title: str | None = None) -> Phases:
    """Draw one run's learning curve with its three phases shaded and labelled.

    Panels, sharing the step axis: success rate (rollout, and eval if logged), critic loss (log
    scale), actor loss, and the encoder gradient norms when logged.

    Args:
        run_dir_or_progress: A run directory (``runs/<tag>/<env>/seed<N>``) or its ``progress.jsonl``.
        out_png: Where to write the PNG (1200 px wide; written atomically).
        title: Figure title (default: ``<tag> / <env> / seed<N>`` from the path).

    Returns:
        The phases `detect_phases` found.

    Raises:
        ValueError: If the progress log is missing or has no usable line.
    """
    progress = progress_file(run_dir_or_progress)
    data = load_progress(progress)
    x = data[STEP_KEY]
    success = _column(data, "rollout/success_rate", "eval/success_rate")
    critic = _column(data, "train/critic_loss")
    actor = _column(data, "train/actor_loss")
    phases = detect_phases(x, success, critic, actor)
    grads = [k for k in ("encoder/grad_norm_critic", "encoder/grad_norm_actor") if k in data]
    grads = [k for k in grads if np.isfinite(data[k]).any()]

    from matplotlib.ticker import EngFormatter

    n_panels = 4 if grads else 3
    fig = _new_figure(10.0, 2.5 * n_panels + 0.5)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    if title is None:
        tag, env, seed = _identity(progress)
        title = " / ".join(p for p in (tag, env, None if seed is None else f"seed{seed}") if p)
    fig.suptitle(f"{title}\n{textwrap.fill(phases.summary, 130)}", fontsize=10)

    ax = axes[0]
    _line(ax, x, _column(data, "rollout/success_rate"), color="C0", label="rollout success")
    _line(ax, x, _column(data, "eval/success_rate"), color="C1", marker="o", ms=3, label="eval success")
    ax.set_ylim(-0.02, 1.3)  # headroom above 100 % for the phase labels
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("success rate")
    if not math.isnan(phases.baseline):
        ax.axhline(phases.baseline, color="gray", ls=":", lw=1, label=f"Phase-1 baseline {phases.baseline:.0%}")
    _line(axes[1], x, np.where(critic > 0, critic, np.nan), color="C3", label="critic loss")
    if (critic > 0).any():
        axes[1].set_yscale("log")
    axes[1].set_ylabel("critic loss (log)")
    _line(axes[2], x, actor, color="C2", label="actor loss")
    axes[2].axhline(0.0, color="gray", lw=0.8)
    axes[2].set_ylabel("actor loss")
    for i, key in enumerate(grads):
        _line(axes[3], x, data[key], color=f"C{4 + i}", label=key.split("/")[-1].replace("_", " "))
    if grads:
        axes[3].set_yscale("log")
        axes[3].set_ylabel("encoder grad norm")

    shades = ("#d0d0d0", "#ffd9a0", "#b8e6b8")
    for i, (label, start, end) in enumerate(phases.spans()):
        for panel in axes:
            panel.axvspan(start, end, color=shades[i], alpha=0.35, lw=0)
        axes[0].text((start + end) / 2, 1.28, label, ha="center", va="top", fontsize=8)
    for panel in axes:
        panel.grid(alpha=0.3)
        if panel.get_legend_handles_labels()[0]:
            panel.legend(loc="center left", fontsize=8)
    axes[-1].set_xlabel("environment steps")
    axes[-1].xaxis.set_major_formatter(EngFormatter(sep=""))
    _save(fig, out_png)
    return phases


class InvestigationRow(TypedDict):
    """One group of seeds in `plot_investigation`'s summary."""

    label: str
    tag: str
    env: str
    seeds: list[int | None]
    final_success_mean: float | None
    final_success_min: float | None
    final_success_max: float | None
    final_steps: list[int]
    onset_steps: list[int | None]
    convergence_steps: list[int | None]


def _expand(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "progress.jsonl").is_file():
        return [path / "progress.jsonl"]
    found = sorted(path.rglob("progress.jsonl")) if path.is_dir() else []
    if not found:
        raise ValueError(
            f"{path}: no progress.jsonl found. Pass run directories (runs/<tag>/<env>/seed<N>), "
            "a directory above them (runs/<tag>), or progress.jsonl files."
        )
    return found


def plot_investigation(
    runs: Sequence[Path], out_png: Path, labels: Sequence[str] | None = None
) -> list[InvestigationRow]:
    """Compare runs: success curves per group of seeds, and a bar chart of final success.

    Seeds of the same tag and env (``runs/<tag>/<env>/seed<N>``) form one group, drawn as the
    mean over seeds with a min-max band (on the step range every seed covers). A seed's final
    success is its last logged rollout success rate (a mean over the last 100 episodes).

    Args:
        runs: Run directories, directories above them (searched for ``progress.jsonl``), or
            ``progress.jsonl`` files.
        out_png: Where to write the PNG (1560 x 600 px; written atomically).
        labels: One label per entry of ``runs`` (default: the tag); entries sharing a label
            and env are grouped.

    Returns:
        One row per group, in order of first appearance.

    Raises:
        ValueError: If ``runs`` is empty, ``labels`` has the wrong length, or a run has no
            usable progress log.
    """
    if not runs:
        raise ValueError("plot_investigation needs at least one run directory or progress.jsonl.")
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries but runs has {len(runs)}; pass one label per run.")
    groups: dict[tuple[str, str], list[tuple[Path, str, int | None]]] = {}
    for i, entry in enumerate(runs):
        for progress in _expand(entry):
            tag, env, seed = _identity(progress)
            groups.setdefault((tag if labels is None else labels[i], env), []).append((progress, tag, seed))
    several_envs = len({env for _, env in groups}) > 1

    from matplotlib.ticker import EngFormatter, PercentFormatter

    fig = _new_figure(13.0, 5.0)
    curve_ax, bar_ax = fig.subplots(1, 2, width_ratios=[2, 1])
    rows: list[InvestigationRow] = []
    for g, ((label, env), members) in enumerate(groups.items()):
        name = f"{label} [{env}]" if several_envs and env else label
        color = f"C{g % 10}"
        curves, finals, final_steps, onsets, convs = [], [], [], [], []
        for progress, _, _ in members:
            data = load_progress(progress)
            x, s = data[STEP_KEY], _column(data, "rollout/success_rate", "eval/success_rate")
            phases = detect_phases(x, s, _column(data, "train/critic_loss"), _column(data, "train/actor_loss"))
            onsets.append(phases.onset_step)
            convs.append(phases.convergence_step)
            mask = np.isfinite(s)
            if mask.any():
                curves.append((x[mask], s[mask]))
                finals.append(float(s[mask][-1]))
                final_steps.append(int(x[mask][-1]))
        if len(curves) == 1:
            curve_ax.plot(*curves[0], color=color, label=f"{name} (1 seed)")
        elif curves:
            lo, hi = max(cx[0] for cx, _ in curves), min(cx[-1] for cx, _ in curves)
            grid = np.linspace(lo, hi, 200) if hi > lo else np.array([lo])
            ys = np.stack([np.interp(grid, cx, cy) for cx, cy in curves])
            curve_ax.plot(grid, ys.mean(axis=0), color=color, label=f"{name} (mean of {len(curves)} seeds)")
            curve_ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2, lw=0)
        mean = float(np.mean(finals)) if finals else None
        lo_f, hi_f = (min(finals), max(finals)) if finals else (None, None)
        if mean is not None and lo_f is not None and hi_f is not None:
            bar_ax.bar(g, mean, color=color, yerr=[[mean - lo_f], [hi_f - mean]], capsize=4)
            bar_ax.text(g, min(hi_f + 0.03, 1.05), f"{mean:.0%}", ha="center", va="bottom", fontsize=9)
        rows.append(
            InvestigationRow(
                label=label,
                tag=members[0][1],
                env=env,
                seeds=[seed for _, _, seed in members],
                final_success_mean=mean,
                final_success_min=lo_f,
                final_success_max=hi_f,
                final_steps=final_steps,
                onset_steps=onsets,
                convergence_steps=convs,
            )
        )
    curve_ax.set(xlabel="environment steps", ylabel="success rate", ylim=(-0.02, 1.02), title="Success rate")
    curve_ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    curve_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(loc="upper left", fontsize=8)
    bar_ax.set_xticks(range(len(rows)), [r["label"] for r in rows], rotation=20, ha="right", fontsize=8)
    bar_ax.set(ylabel="final success rate", ylim=(0, 1.12), title="Final success (mean, min-max over seeds)")
    bar_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    bar_ax.grid(axis="y", alpha=0.3)
    _save(fig, out_png)
    return rows
