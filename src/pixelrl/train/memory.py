"""Memory preflight: the replay buffer's full size, checked against RAM before anything allocates.

SB3 allocates its buffers lazily (``np.zeros`` reserves pages that are only backed as they are
written), so an undersized machine is killed by the kernel hours into a run, when the buffer
fills. This module estimates the size up front and refuses runs that cannot fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["HEADROOM_BYTES", "MemoryPlan", "buffer_table", "her_dict_buffer_nbytes", "plan_memory"]

#: RAM kept free for the OS, Python, torch, the model and the envs.
HEADROOM_BYTES = 4 * 1024**3

# HerReplayBuffer's per-slot bookkeeping: rewards, dones, timeouts (float32), ep_start and
# ep_length (int64), and an object array of info dicts (8-byte pointer + ~64-byte empty dict).
_HER_BOOKKEEPING = 4 + 4 + 4 + 8 + 8 + 8 + 64


def _nbytes(space: spaces.Space[Any]) -> int:
    shape: tuple[int, ...] = space.shape or ()
    return int(np.prod(shape)) * np.dtype(space.dtype).itemsize


def her_dict_buffer_nbytes(buffer_size: int, observation_space: spaces.Dict, action_space: spaces.Box) -> int:
    """Full-capacity bytes of SB3's ``HerReplayBuffer`` / ``HerDrQDictReplayBuffer``.

    SB3 stores every observation key twice (obs and next_obs) for every transition.

    Args:
        buffer_size: Capacity in transitions (summed over envs).
        observation_space: The Dict observation space.
        action_space: The Box action space.

    Returns:
        Bytes at capacity.
    """
    obs_bytes = sum(_nbytes(s) for s in observation_space.spaces.values())
    action_bytes = _nbytes(action_space) // np.dtype(action_space.dtype).itemsize * 4
    return buffer_size * (2 * obs_bytes + action_bytes + _HER_BOOKKEEPING)


@dataclass(frozen=True)
class MemoryPlan:
    """The preflight's numbers.

    Attributes:
        buffer_bytes: Replay buffer at full capacity.
        available_bytes: RAM available now (``psutil``), or None when unknown.
        needed_bytes: Buffer plus :data:`HEADROOM_BYTES`.
        fits: Whether ``needed_bytes <= available_bytes`` (True when unknown).
        largest_fitting: Largest buffer size (transitions) that fits, or None when unknown.
    """

    buffer_bytes: int
    available_bytes: int | None
    needed_bytes: int
    fits: bool
    largest_fitting: int | None


def plan_memory(buffer_size: int, bytes_per_transition: float) -> MemoryPlan:
    """Compare a buffer's full size with the RAM available now.

    Args:
        buffer_size: Capacity in transitions.
        bytes_per_transition: Bytes one transition costs at capacity.

    Returns:
        The plan.
    """
    try:
        import psutil

        available: int | None = int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil ships with the cli extra
        available = None
    buffer_bytes = int(buffer_size * bytes_per_transition)
    needed = buffer_bytes + HEADROOM_BYTES
    if available is None:
        return MemoryPlan(buffer_bytes, None, needed, True, None)
    largest = max(int((available - HEADROOM_BYTES) // bytes_per_transition), 0)
    return MemoryPlan(buffer_bytes, available, needed, needed <= available, largest)


def buffer_table(
    bytes_per_transition: float, sizes: tuple[int, ...] = (500_000, 300_000, 200_000, 100_000, 50_000)
) -> str:
    """The chapter's "buffer size per RAM" table, computed for this observation and buffer.

    Args:
        bytes_per_transition: Bytes per transition of the buffer that would be used.
        sizes: Buffer sizes to list.

    Returns:
        A plain-text table.
    """
    gib = 1024**3
    lines = [f"{'buffer size':>12}  {'buffer RAM':>10}  {'RAM needed':>10}"]
    for size in sizes:
        buffer = size * bytes_per_transition
        lines.append(f"{size:>12,}  {buffer / gib:>7.1f} GiB  {(buffer + HEADROOM_BYTES) / gib:>7.1f} GiB")
    return "\n".join(lines)


def describe_refusal(plan: MemoryPlan, buffer_size: int, bytes_per_transition: float, extra: str = "") -> str:
    """The message printed when a run would not fit."""
    gib = 1024**3
    available = "unknown" if plan.available_bytes is None else f"{plan.available_bytes / gib:.1f} GiB"
    return (
        f"The replay buffer would need {plan.buffer_bytes / gib:.1f} GiB at --buffer-size {buffer_size:,} "
        f"({bytes_per_transition:,.0f} bytes per transition), plus {HEADROOM_BYTES / gib:.0f} GiB headroom, "
        f"but {available} of RAM is available. SB3 allocates lazily, so the run would be killed when the "
        f"buffer fills, hours from now.\n\n{buffer_table(bytes_per_transition)}\n\n"
        f"Use --buffer-size {plan.largest_fitting or 0:,} or less{extra}, or pass --allow-large-buffer to start anyway."
    )
