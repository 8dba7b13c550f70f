"""The three-phase reading of a pixel-RL learning curve that the chapter teaches (flat, hockey-stick, converged).

Phase 1, success flat while the critic loss declines (the critic memorizes uniform failure);
Phase 2, the hockey-stick, success rising together with the critic and actor losses; Phase 3,
convergence, success saturating while the losses decline and the actor loss turns negative.
`detect_phases` finds the two boundaries from the logged numbers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from pixelrl.train.results.progress import FloatArray

__all__ = ["PHASE_NAMES", "Phases", "Trend", "detect_phases", "format_steps"]

Trend = Literal["declining", "rising", "flat", "unknown"]

_MIN_POINTS = 5  # fewer success points than this cannot show three phases
_LOG_TOL = 0.15  # |change of log loss across a phase| below this (about 16 %) counts as flat
_LINEAR_TOL = 0.1  # the same for the actor loss, as a fraction of its 5-95 % range
PHASE_NAMES = ("Phase 1: flat", "Phase 2: hockey-stick", "Phase 3: convergence")


def _window(n: int) -> int:
    w = max(3, round(n / 20)) | 1
    return max(1, min(w, n if n % 2 else n - 1))


def _smooth(y: FloatArray, window: int) -> FloatArray:
    """Centered moving average whose window shrinks at both ends."""
    n, half = y.size, window // 2
    cum = np.concatenate(([0.0], np.cumsum(y)))
    idx = np.arange(n)
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, n)
    return np.asarray((cum[hi] - cum[lo]) / (hi - lo), dtype=np.float64)


def _trend(x: FloatArray, y: FloatArray, lo: float, hi: float, *, log: bool, scale: float = 1.0) -> Trend:
    """Least-squares trend of smoothed ``y`` (its log when ``log``) over ``lo <= x <= hi``."""
    mask = np.isfinite(x) & np.isfinite(y) & (x >= lo) & (x <= hi)
    if log:
        mask &= y > 0
    if mask.sum() < 3 or hi <= lo:
        return "unknown"
    xs, ys = x[mask], np.log(y[mask]) if log else y[mask]
    # Slope against time rescaled to [0, 1]: the fitted change across the whole phase.
    change = float(np.polyfit((xs - lo) / (hi - lo), _smooth(ys, _window(ys.size)), 1)[0]) / scale
    tol = _LOG_TOL if log else _LINEAR_TOL
    return "flat" if abs(change) <= tol else ("rising" if change > 0 else "declining")


def format_steps(step: float) -> str:
    """Steps as a short label: 2.2M, 350k, 90."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if abs(step) >= div:
            return f"{step / div:.3g}{unit}"
    return f"{step:.0f}"


@dataclass(frozen=True)
class Phases:
    """The phases of one learning curve, as `detect_phases` reads them.

    Attributes:
        onset_step: End of Phase 1 (where success starts to rise), or None when no
            hockey-stick is seen.
        convergence_step: End of Phase 2 (success reaches 90 % of the way from baseline to
            plateau), or None when the curve has not levelled off.
        baseline: Phase-1 success level (median of the first 20 % of points); NaN if unknown.
        plateau: Final success level (median of the last 10 % of points); NaN if unknown.
        first_step: First logged step, or None for an empty log.
        last_step: Last logged step, or None for an empty log.
        critic_trends: Critic-loss trend in each phase seen (1 to 3 entries).
        actor_trends: Actor-loss trend in each phase seen.
        actor_negative_in_phase3: Median actor loss over the second half of Phase 3 is below 0
            (None without Phase 3 or actor loss).
        summary: One sentence that reads the curve.
    """

    onset_step: int | None
    convergence_step: int | None
    baseline: float
    plateau: float
    first_step: int | None
    last_step: int | None
    critic_trends: tuple[Trend, ...]
    actor_trends: tuple[Trend, ...]
    actor_negative_in_phase3: bool | None
    summary: str

    @property
    def hockey_stick(self) -> bool:
        """Success rose clearly above its Phase-1 baseline."""
        return self.onset_step is not None

    @property
    def textbook_signature(self) -> bool:
        """All three phases with the critic loss not rising, then rising, then declining."""
        return len(self.critic_trends) == 3 and (
            self.critic_trends[0] in ("declining", "flat")
            and self.critic_trends[1] == "rising"
            and self.critic_trends[2] == "declining"
        )

    def spans(self) -> list[tuple[str, int, int]]:
        """``(label, start_step, end_step)`` per phase seen; labels carry the loss trends."""
        if self.first_step is None or self.last_step is None or math.isnan(self.baseline):
            return []
        bounds = [b for b in (self.onset_step, self.convergence_step) if b is not None]
        edges = [self.first_step, *bounds, self.last_step]
        out = []
        for i, (start, end) in enumerate(itertools.pairwise(edges)):
            label = f"{PHASE_NAMES[i]}\ncritic loss {self.critic_trends[i]}"
            if self.actor_trends[i] != "unknown":
                label += f"\nactor loss {self.actor_trends[i]}"
            out.append((label, start, end))
        return out


def detect_phases(
    steps: npt.ArrayLike,
    success: npt.ArrayLike,
    critic_loss: npt.ArrayLike,
    actor_loss: npt.ArrayLike | None = None,
) -> Phases:
    """Find the end of Phase 1 (onset) and of Phase 2 (convergence) of a learning curve.

    On the rows with a finite success rate, sorted by step: the curve is smoothed with a
    centered moving average (window about 5 % of the points, at least 3). ``baseline`` is the
    median of the first 20 % of raw points and ``noise`` 1.4826 times their median absolute
    deviation. Success *crosses* at the first point where the smoothed curve exceeds
    ``baseline + max(0.1, 3 * noise)`` and stays above for the next ``k`` points
    (``k = clip(n // 20, 2, 5)``); the onset is the last point before that crossing where the
    smoothed curve was still within ``max(0.02, 2 * noise)`` of the baseline. ``plateau`` is
    the median of the last 10 % (at least 3) of points. Convergence is the first point after
    the onset where the smoothed curve reaches ``baseline + 0.9 * (plateau - baseline)``,
    provided the plateau is at least the crossing threshold and the curve is no longer rising
    (the smoothed curve gains less than ``max(0.05, 2 * noise)`` over the last 10 %).

    Loss trends come from a least-squares line through the smoothed log critic loss (linear
    actor loss) within each phase, against time rescaled to [0, 1]: "flat" when the fitted
    change is within 0.15 in log units (actor: 10 % of its 5-95 % range).

    Args:
        steps: ``(N,)`` environment steps.
        success: ``(N,)`` success rate in [0, 1]; NaN where not logged.
        critic_loss: ``(N,)`` critic loss; NaN where not logged.
        actor_loss: Optional ``(N,)`` actor loss; NaN where not logged.

    Returns:
        The phases; both steps are None when fewer than 5 success points are logged or no
        hockey-stick is seen.

    Raises:
        ValueError: If the arrays differ in length.

    Examples:
        >>> import numpy as np
        >>> x = np.arange(100) * 1000
        >>> s = np.clip((x - 40_000) / 30_000, 0, 1) * 0.9 + 0.05
        >>> p = detect_phases(x, s, np.ones(100))
        >>> p.onset_step, p.convergence_step
        (40000, 67000)
    """
    x = np.asarray(steps, dtype=np.float64).ravel()
    s = np.asarray(success, dtype=np.float64).ravel()
    c = np.asarray(critic_loss, dtype=np.float64).ravel()
    a = np.full_like(x, np.nan) if actor_loss is None else np.asarray(actor_loss, dtype=np.float64).ravel()
    if not x.size == s.size == c.size == a.size:
        raise ValueError(
            f"steps, success, critic_loss and actor_loss must have one value per row; got lengths "
            f"{x.size}, {s.size}, {c.size}, {a.size}. Pass the columns of one load_progress() result."
        )
    order = np.argsort(x, kind="stable")
    x, s, c, a = x[order], s[order], c[order], a[order]
    ok = np.isfinite(x) & np.isfinite(s)
    xs, ss = x[ok], s[ok]
    n = xs.size
    finite_x = x[np.isfinite(x)]
    first = int(finite_x[0]) if finite_x.size else None
    last = int(finite_x[-1]) if finite_x.size else None
    onset = conv = None
    baseline = plateau = noise = math.nan
    if n >= _MIN_POINTS:
        smooth = _smooth(ss, _window(n))
        head = ss[: max(2, math.ceil(0.2 * n))]
        baseline = float(np.median(head))
        noise = 1.4826 * float(np.median(np.abs(head - baseline)))
        margin = max(0.1, 3 * noise)
        tail = max(3, math.ceil(0.1 * n))
        plateau = float(np.median(ss[-tail:]))
        above = smooth > baseline + margin
        k = int(np.clip(n // 20, 2, 5))
        cross = next((i for i in np.flatnonzero(above) if i + k <= n and above[i : i + k].all()), None)
        if cross is not None:
            in_band = np.flatnonzero(smooth[:cross] <= baseline + max(0.02, 2 * noise))
            onset_idx = int(in_band[-1]) if in_band.size else 0
            onset = int(xs[onset_idx])
            end_rise = float(np.polyfit(xs[-tail:] - xs[-tail], smooth[-tail:], 1)[0]) * (xs[-1] - xs[-tail])
            if plateau >= baseline + margin and end_rise < max(0.05, 2 * noise):
                reached = np.flatnonzero(smooth[onset_idx:] >= baseline + 0.9 * (plateau - baseline))
                conv = int(xs[onset_idx + reached[0]]) if reached.size else None

    edges = [e for e in (first, onset, conv, last) if e is not None]
    bounds = list(itertools.pairwise(edges)) if n >= _MIN_POINTS else [(first or 0, last or 0)]
    finite_a = a[np.isfinite(a)]
    a_scale = float(np.ptp(np.percentile(finite_a, [5, 95]))) if finite_a.size else 1.0
    critic_trends = tuple(_trend(x, c, lo, hi, log=True) for lo, hi in bounds)
    actor_trends = tuple(_trend(x, a, lo, hi, log=False, scale=max(a_scale, 1e-12)) for lo, hi in bounds)
    actor_negative: bool | None = None
    if conv is not None:
        late = (x >= (conv + (last or conv)) / 2) & np.isfinite(a)  # by the end of Phase 3, not its start
        phase3 = a[late]
        actor_negative = bool(np.median(phase3) < 0) if phase3.size else None

    trends = " -> ".join(critic_trends)
    if n < _MIN_POINTS:
        summary = f"Too few success points ({n}) to read phases; critic loss {critic_trends[0]}"
    elif onset is None:
        summary = f"Phase 1 only: success flat at {baseline:.0%}; critic loss {critic_trends[0]}"
    elif conv is None and plateau < baseline + max(0.1, 3 * noise):
        summary = (
            f"Success rose above its {baseline:.0%} baseline from {format_steps(onset)} steps but fell back to "
            f"{plateau:.0%} (collapsed?); critic loss {trends}"
        )
    elif conv is None:
        summary = (
            f"Hockey-stick from {format_steps(onset)} steps: success rising from {baseline:.0%} to "
            f"{plateau:.0%}, not converged yet; critic loss {trends}"
        )
    else:
        summary = (
            f"Three phases: flat at {baseline:.0%} until {format_steps(onset)} steps, hockey-stick until "
            f"{format_steps(conv)}, converged at {plateau:.0%}; critic loss {trends}"
        )
        if actor_negative is not None:
            summary += f"; actor loss {'negative' if actor_negative else 'not negative'} in Phase 3"
    return Phases(
        onset_step=onset,
        convergence_step=conv,
        baseline=baseline,
        plateau=plateau,
        first_step=first,
        last_step=last,
        critic_trends=critic_trends,
        actor_trends=actor_trends,
        actor_negative_in_phase3=actor_negative,
        summary=summary,
    )
