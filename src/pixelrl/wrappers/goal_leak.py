"""Strict goal mode's guard: find a copy of the achieved goal inside a vector the networks see."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["find_goal_copy", "goal_copy_message"]


def find_goal_copy(vector: NDArray[Any], achieved_goal: NDArray[Any]) -> tuple[int, ...] | None:
    """Entries of ``vector`` that hold every coordinate of ``achieved_goal``, or ``None``.

    Coordinate ``j`` is held by an entry exactly equal to ``achieved_goal[j]``. Each entry holds
    at most one coordinate, so a goal whose coordinates repeat a value (an object in a corner,
    ``(1.0, 1.0)``) is only found where the vector repeats it too; one coincidental equal
    entry does not count twice.

    Args:
        vector: Any-shape numeric array (flattened), e.g. ``(P,)`` float64 proprioception.
        achieved_goal: ``(G,)`` numeric array.

    Returns:
        ``G`` distinct indices into the flattened ``vector``, the ``j``-th equal to coordinate
        ``j``, or ``None`` when some coordinate has no entry left to match it.

    Examples:
        >>> find_goal_copy(np.array([0.1, 1.3, 0.7, 0.5]), np.array([1.3, 0.7]))
        (1, 2)
        >>> find_goal_copy(np.array([1.0, 0.8]), np.array([1.0, 1.0])) is None
        True
    """
    values = np.asarray(vector).reshape(-1)
    goal = np.asarray(achieved_goal).reshape(-1)
    if goal.size == 0 or values.size < goal.size:
        return None
    equal = values[:, None] == goal[None, :]  # (P, G), tiny: it runs on every step
    if not equal.any(axis=0).all():
        return None
    # Entries equal to different goal values are disjoint sets, so taking the first free entry
    # for each coordinate finds distinct entries whenever they exist.
    taken: list[int] = []
    for j in range(goal.size):
        free = [int(i) for i in np.flatnonzero(equal[:, j]) if int(i) not in taken]
        if not free:
            return None
        taken.append(free[0])
    return tuple(taken)


def goal_copy_message(
    key: str,
    indices: tuple[int, ...],
    achieved_goal: NDArray[Any],
    source_indices: tuple[int, ...] | None = None,
) -> str:
    """Explain a strict-mode refusal: which key, which entries, why, and the fix.

    Args:
        key: The observation key that carries the achieved goal.
        indices: Its entries that equal the goal, as ``find_goal_copy`` returns them.
        achieved_goal: ``(G,)`` the achieved goal.
        source_indices: Where those entries come from in the wrapped env's ``observation``
            vector, when ``key`` is built from ``proprio_indices``.

    Returns:
        The error message.
    """
    goal = [round(float(value), 4) for value in np.asarray(achieved_goal).reshape(-1)]
    where = (
        f" (entries {list(source_indices)} of the wrapped env's 'observation' vector, chosen by proprio_indices)"
        if source_indices is not None
        else ""
    )
    fix = (
        "leave those entries out of proprio_indices: for Fetch Reach use FETCH_REACH_STRICT_PROPRIO_INDICES "
        "(gripper state and velocities, indices 3..9; make_fetch_env('FetchReach-v4', goal_mode='strict') and "
        "fetch_proprio_indices(env_id, goal_mode='strict') use it), for pixelrl/PointReach-v0 "
        "POINT_REACH_PROPRIO_INDICES (the velocity)"
        if source_indices is not None
        else f"leave those entries out of {key!r}"
    )
    return (
        f"goal_mode='strict' refuses this observation: {key!r} carries the achieved goal. Its entries "
        f"{list(indices)}{where} equal achieved_goal {goal}, so the networks could read the position from the "
        "vector. In strict mode the position the task depends on must come from the image. "
        f"Fix: {fix}; or use goal_mode='both' if the networks should see the vector."
    )
