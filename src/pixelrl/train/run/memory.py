"""Memory preflight: the replay buffer's full size, where each part lives, checked before anything allocates.

SB3 allocates its buffers lazily (``np.zeros`` reserves pages that are only backed as they are
written), so an undersized machine is killed by the kernel hours into a run, when the buffer
fills. This module is the one estimator the training command uses: it knows which bytes live
in host RAM and which on a GPU (the compact buffer's frame ring can live there), and refuses
runs that cannot fit either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from pixelrl.train.config import ConfigError, TrainConfig

__all__ = [
    "DEVICE_HEADROOM_BYTES",
    "HEADROOM_BYTES",
    "BufferMemory",
    "MemoryPlan",
    "buffer_table",
    "check_memory",
    "her_dict_buffer_nbytes",
    "plan_memory",
    "replay_memory",
]

#: RAM kept free for the OS, Python, torch, the model and the envs.
HEADROOM_BYTES = 4 * 1024**3
#: GPU memory kept free for the networks, optimizer state and a batch's activations.
DEVICE_HEADROOM_BYTES = 2 * 1024**3

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
        needed_bytes: Buffer plus `HEADROOM_BYTES`.
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


@dataclass(frozen=True)
class BufferMemory:
    """A replay buffer's bytes at capacity, by where they live.

    Attributes:
        host_bytes: In host RAM.
        device_bytes: On ``device`` (the compact buffer's frame ring on a GPU), else 0.
        device: The torch device holding ``device_bytes``, or None.
    """

    host_bytes: int
    device_bytes: int = 0
    device: str | None = None

    @property
    def total_bytes(self) -> int:
        """Host and device bytes together."""
        return self.host_bytes + self.device_bytes


def replay_memory(config: TrainConfig, observation_space: spaces.Dict, action_space: spaces.Box) -> BufferMemory:
    """The bytes of the replay buffer ``config`` builds, at capacity, split by where they live.

    Args:
        config: The run configuration.
        observation_space: The envs' observation space.
        action_space: The envs' action space.

    Returns:
        Host and device bytes (exact for the compact buffer, SB3's layout computed from the spaces).
    """
    from pixelrl.buffers import CompactHerReplayBuffer
    from pixelrl.train.run.factory import buffer_setup

    buffer_class, kwargs = buffer_setup(config)
    if buffer_class is not CompactHerReplayBuffer:
        return BufferMemory(her_dict_buffer_nbytes(config.buffer_size, observation_space, action_space))
    total = CompactHerReplayBuffer.estimate_nbytes(
        config.buffer_size, observation_space, action_space, n_envs=config.n_envs
    )
    frames_device = kwargs.get("frames_device")
    if frames_device is None:
        return BufferMemory(total)
    frames = CompactHerReplayBuffer.estimate_nbytes(
        config.buffer_size, observation_space, action_space, n_envs=config.n_envs, frames_only=True
    )
    return BufferMemory(total - frames, frames, str(frames_device))


def check_memory(config: TrainConfig, observation_space: spaces.Space[Any], action_space: spaces.Space[Any]) -> None:
    """Refuse a run whose replay buffer cannot fit where its parts live (unless ``--allow-large-buffer``).

    Raises:
        ConfigError: With the table of sizes that fit, for host RAM or GPU memory.
    """
    assert isinstance(observation_space, spaces.Dict)
    assert isinstance(action_space, spaces.Box)
    memory = replay_memory(config, observation_space, action_space)
    if config.allow_large_buffer:
        return
    per_transition = memory.total_bytes / config.buffer_size
    plan = plan_memory(config.buffer_size, memory.host_bytes / config.buffer_size)
    if not plan.fits:
        sb3_layout = config.buffer == "sb3" and not config.full_state
        hint = " (or drop --buffer sb3: the compact buffer needs about a seventh of the memory)" if sb3_layout else ""
        raise ConfigError(describe_refusal(plan, config.buffer_size, per_transition, hint))
    if memory.device is not None:
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(memory.device))
        if memory.device_bytes + DEVICE_HEADROOM_BYTES > free:
            gib = 1024**3
            raise ConfigError(
                f"The replay buffer's frame ring would need {memory.device_bytes / gib:.1f} GiB on {memory.device} "
                f"(plus {DEVICE_HEADROOM_BYTES / gib:.0f} GiB for the networks) but {free / gib:.1f} GiB are free "
                "there. Reduce --buffer-size, or pass --frames-device host to keep the frames in host RAM."
            )
