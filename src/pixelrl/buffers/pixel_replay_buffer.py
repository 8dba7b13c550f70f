"""PixelReplayBuffer: the from-scratch pixel buffer, uint8 storage and float32 sampling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PixelReplayBuffer"]


class PixelReplayBuffer:
    """A ring buffer of goal-conditioned pixel transitions for a training loop written by hand.

    Pixels are stored as uint8 (1 byte per value) and converted to float32 in [0, 1] only
    for the sampled batch, so the buffer costs a quarter of what float32 storage would.
    SB3's `DictReplayBuffer` does the same for uint8 observation spaces; use it (or
    [HerDrQDictReplayBuffer][pixelrl.buffers.HerDrQDictReplayBuffer]) inside SB3.

    Args:
        img_shape: `(C, H, W)` of one (stacked) pixel observation.
        goal_dim: Size of the achieved and desired goal vectors.
        act_dim: Size of the action vector.
        capacity: Number of transitions kept; the oldest are overwritten.
        seed: Seed of the sampling generator.

    Raises:
        ValueError: If `img_shape` is not channel-first `(C, H, W)` or a size is not positive.

    Examples:
        >>> buffer = PixelReplayBuffer((12, 8, 8), goal_dim=3, act_dim=4, capacity=100, seed=0)
        >>> for _ in range(50):
        ...     buffer.add(np.zeros((12, 8, 8), np.uint8), np.full((12, 8, 8), 255, np.uint8),
        ...                achieved=np.zeros(3), goal=np.ones(3), action=np.zeros(4), reward=-1.0, done=False)
        >>> batch = buffer.sample(16)
        >>> buffer.pixels.dtype, batch["next_pixels"].dtype, float(batch["next_pixels"].max())
        (dtype('uint8'), dtype('float32'), 1.0)
    """

    def __init__(
        self, img_shape: Sequence[int], goal_dim: int, act_dim: int, capacity: int, seed: int | None = None
    ) -> None:
        shape = tuple(int(s) for s in img_shape)
        if len(shape) != 3 or min(shape) <= 0:
            raise ValueError(f"img_shape must be a channel-first (C, H, W) of positive sizes, got {img_shape!r}.")
        if shape[2] < min(shape[0], shape[1]):  # e.g. (84, 84, 12): the last axis is the channel axis
            raise ValueError(
                f"img_shape {shape} looks channel-last (H, W, C); pass (C, H, W), e.g. frame.transpose(2, 0, 1)."
            )
        for name, value in (("goal_dim", goal_dim), ("act_dim", act_dim), ("capacity", capacity)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}.")
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.pixels = np.zeros((capacity, *shape), dtype=np.uint8)
        self.next_pixels = np.zeros((capacity, *shape), dtype=np.uint8)
        self.goals = np.zeros((capacity, goal_dim), dtype=np.float32)
        self.achieved = np.zeros((capacity, goal_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros((capacity, 1), dtype=np.float32)
        self.dones = np.zeros((capacity, 1), dtype=np.float32)
        self._rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage arrays at full capacity."""
        arrays = (self.pixels, self.next_pixels, self.goals, self.achieved, self.actions, self.rewards, self.dones)
        return sum(a.nbytes for a in arrays)

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs_pixels: NDArray[np.uint8],
        next_pixels: NDArray[np.uint8],
        achieved: ArrayLike,
        goal: ArrayLike,
        action: ArrayLike,
        reward: float,
        done: bool,
    ) -> None:
        """Store one transition.

        Args:
            obs_pixels: `(C, H, W)` uint8 pixels of the observation.
            next_pixels: `(C, H, W)` uint8 pixels of the next observation.
            achieved: `(goal_dim,)` achieved goal after the step.
            goal: `(goal_dim,)` desired goal.
            action: `(act_dim,)` action taken.
            reward: Reward received.
            done: Whether the episode terminated (not truncated) at this step.

        Raises:
            TypeError: If pixels are not uint8 (float pixels would be silently truncated).
        """
        for name, pix in (("obs_pixels", obs_pixels), ("next_pixels", next_pixels)):
            if np.asarray(pix).dtype != np.uint8:
                raise TypeError(
                    f"{name} must be uint8 in [0, 255], got {np.asarray(pix).dtype}; store raw frames, "
                    "not normalised floats (the buffer converts to float32 at sample time)."
                )
        i = self.pos
        self.pixels[i] = obs_pixels
        self.next_pixels[i] = next_pixels
        self.achieved[i] = achieved
        self.goals[i] = goal
        self.actions[i] = action
        self.rewards[i] = reward
        self.dones[i] = done
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> dict[str, NDArray[np.float32]]:
        """Sample transitions uniformly with replacement.

        Args:
            batch_size: Number of transitions.

        Returns:
            `pixels` and `next_pixels` as `(B, C, H, W)` float32 in [0, 1]; `achieved_goal`,
            `desired_goal`, `actions`, `rewards` `(B, 1)` and `dones` `(B, 1)` as float32.

        Raises:
            ValueError: If the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("Cannot sample from an empty PixelReplayBuffer; add transitions first.")
        idx = self._rng.integers(0, self.size, size=batch_size)
        return {
            "pixels": self.pixels[idx].astype(np.float32) / 255.0,
            "next_pixels": self.next_pixels[idx].astype(np.float32) / 255.0,
            "achieved_goal": self.achieved[idx],
            "desired_goal": self.goals[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "dones": self.dones[idx],
        }
