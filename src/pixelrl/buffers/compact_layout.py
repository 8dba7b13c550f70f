"""Array layout and option checks of :class:`~pixelrl.buffers.CompactHerReplayBuffer`, before allocation.

One function describes every array the buffer allocates (name, shape, dtype), so that the
memory preflight (:meth:`CompactHerReplayBuffer.estimate_nbytes`) and the allocation itself
cannot disagree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim, get_obs_shape
from stable_baselines3.her.goal_selection_strategy import KEY_TO_GOAL_STRATEGY, GoalSelectionStrategy

try:
    import psutil
except ImportError:  # pragma: no cover - psutil ships with the cli extra
    psutil = None

__all__ = ["CompactLayout", "check_her_options", "warn_if_too_large"]

# Arrays with one row per transition slot (leading axis = rows): trimmed to the filled part
# when the buffer is pickled.
TRANSITION_ARRAYS = ("frame_index", "actions", "rewards", "dones", "timeouts", "ep_start", "ep_length", "infos")
# Arrays with one row per frame slot (leading axis = frame_rows).
FRAME_ARRAYS = ("frames", "frame_episode_start")
# Per-env bookkeeping, saved whole.
ENV_ARRAYS = ("_current_ep_start", "_episode_steps", "_frame_pos", "_frame_count", "_last_next_pixels")


def _frame_stack(pixel_key: str, channels: int, frame_stack: int | None) -> int:
    if frame_stack is None:
        if channels % 3:
            raise ValueError(
                f"observation_space[{pixel_key!r}] has {channels} channels, which is not a stack of RGB "
                f"frames (a multiple of 3). Pass frame_stack=<number of stacked frames> (e.g. "
                f"frame_stack={channels} for single-channel frames)."
            )
        return channels // 3
    if isinstance(frame_stack, bool) or not isinstance(frame_stack, int) or frame_stack < 1:
        raise ValueError(f"frame_stack must be an int >= 1 or None (channels / 3), got {frame_stack!r}.")
    if channels % frame_stack:
        raise ValueError(
            f"observation_space[{pixel_key!r}] has {channels} channels, which frame_stack={frame_stack} does "
            f"not divide into equal frames. Pass the number of frames the wrapper stacks."
        )
    return frame_stack


@dataclass(frozen=True)
class CompactLayout:
    """Shapes and dtypes of every array of a compact HER buffer.

    Attributes:
        rows: Transition slots per env (``buffer_size // n_envs``, at least 2).
        frame_rows: Frame slots per env, ``rows + rows // min_episode_length + 1``: each
            episode of length ``L`` needs ``L + 1`` frames (its first frame plus one new frame
            per step), so with episodes of at least ``min_episode_length`` steps the frame ring
            never runs out before the transition ring does.
        n_envs: Number of parallel envs.
        frame_stack: Frames per pixel observation.
        frame_shape: One frame, ``(c, H, W)``.
        vector_keys: Observation keys stored per transition (every key but the pixel key).
        arrays: ``name -> (shape, dtype)`` of every allocated array. Names
            ``observations/<key>`` and ``next_observations/<key>`` are the per-key arrays.
    """

    rows: int
    frame_rows: int
    n_envs: int
    frame_stack: int
    frame_shape: tuple[int, int, int]
    vector_keys: tuple[str, ...]
    arrays: dict[str, tuple[tuple[int, ...], np.dtype[Any]]]

    @classmethod
    def build(
        cls,
        buffer_size: int,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        n_envs: int,
        frame_stack: int | None,
        pixel_key: str,
        copy_info_dict: bool,
        min_episode_length: int,
    ) -> CompactLayout:
        """Validate the configuration and describe the arrays it allocates.

        Args:
            buffer_size: Capacity in transitions, summed over envs.
            observation_space: Dict space with a ``(C, H, W)`` uint8 pixel key.
            action_space: Action space.
            n_envs: Number of parallel envs.
            frame_stack: Frames per pixel observation; ``None`` means ``C // 3``.
            pixel_key: Key of the stacked frames.
            copy_info_dict: Whether an object array of info dicts is allocated.
            min_episode_length: Shortest episode the frame ring is sized for.

        Returns:
            The layout.

        Raises:
            ValueError: If the space has no uint8 ``(C, H, W)`` pixel key, ``frame_stack`` does
                not divide its channels, or a size is out of range.
        """
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(
                f"CompactHerReplayBuffer needs a Dict observation space with stacked frames, got "
                f"{type(observation_space).__name__}. Wrap the env with PixelObservationWrapper."
            )
        if pixel_key not in observation_space.spaces:
            raise ValueError(
                f"pixel_key {pixel_key!r} is not in the observation space {list(observation_space.spaces)}. "
                "Pass pixel_key=<the key of the stacked camera frames>."
            )
        pixel_space = observation_space[pixel_key]
        shape = pixel_space.shape or ()
        if not isinstance(pixel_space, spaces.Box) or pixel_space.dtype != np.uint8 or len(shape) != 3:
            raise ValueError(
                f"observation_space[{pixel_key!r}] must be Box(0, 255, (C, H, W), uint8) stacked frames, got "
                f"{pixel_space}. PixelObservationWrapper declares it so."
            )
        for name, value, low in (("n_envs", n_envs, 1), ("min_episode_length", min_episode_length, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
        channels, height, width = (int(s) for s in shape)
        stack = _frame_stack(pixel_key, channels, frame_stack)
        rows = max(buffer_size // n_envs, 1)
        if rows < 2:
            raise ValueError(
                f"buffer_size={buffer_size} leaves {rows} transition slot per env ({n_envs} envs); HER stores "
                "whole episodes, so use buffer_size >= n_envs * (longest episode + 1)."
            )
        frame_rows = rows + rows // min_episode_length + 1
        frame_shape = (channels // stack, height, width)

        u8, i64, f32 = np.dtype(np.uint8), np.dtype(np.int64), np.dtype(np.float32)
        arrays: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {
            "frames": ((frame_rows, n_envs, *frame_shape), u8),
            "frame_episode_start": ((frame_rows, n_envs), i64),
            "frame_index": ((rows, n_envs), i64),
        }
        obs_shape = get_obs_shape(observation_space)
        assert isinstance(obs_shape, dict)
        vector_keys = tuple(key for key in observation_space.spaces if key != pixel_key)
        for prefix in ("observations", "next_observations"):
            for key in vector_keys:
                dtype = np.dtype(observation_space[key].dtype)
                arrays[f"{prefix}/{key}"] = ((rows, n_envs, *obs_shape[key]), dtype)
        # SB3 stores float64 actions as float32 (ReplayBuffer._maybe_cast_dtype).
        action_dtype = np.dtype(action_space.dtype)
        action_dtype = f32 if action_dtype == np.float64 else action_dtype
        arrays["actions"] = ((rows, n_envs, get_action_dim(action_space)), action_dtype)
        for name in ("rewards", "dones", "timeouts"):
            arrays[name] = ((rows, n_envs), f32)
        for name in ("ep_start", "ep_length"):
            arrays[name] = ((rows, n_envs), i64)
        if copy_info_dict:
            arrays["infos"] = ((rows, n_envs), np.dtype(object))
        for name in ("_current_ep_start", "_episode_steps", "_frame_pos", "_frame_count"):
            arrays[name] = ((n_envs,), i64)
        arrays["_last_next_pixels"] = ((n_envs, channels, height, width), u8)
        return cls(rows, frame_rows, n_envs, stack, frame_shape, vector_keys, arrays)

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays at full capacity (object arrays count their 8-byte pointers)."""
        return sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in self.arrays.values())

    def allocate(self) -> dict[str, np.ndarray[Any, Any]]:
        """Allocate every array (``np.zeros``: the OS backs pages only once they are written).

        Returns:
            ``name -> array``; ``frame_episode_start`` is filled with -1 (no episode starts there).
        """
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name, (shape, dtype) in self.arrays.items():
            if dtype == np.dtype(object):
                out[name] = np.empty(shape, dtype=object)
            elif name == "frame_episode_start":
                out[name] = np.full(shape, -1, dtype=dtype)
            else:
                out[name] = np.zeros(shape, dtype=dtype)
        return out


def check_her_options(
    optimize_memory_usage: bool, n_sampled_goal: int, goal_selection_strategy: GoalSelectionStrategy | str
) -> GoalSelectionStrategy:
    """Validate the HER options of the compact buffer.

    Args:
        optimize_memory_usage: Must be False.
        n_sampled_goal: Relabelled rows per real row, >= 0.
        goal_selection_strategy: A :class:`GoalSelectionStrategy` or its name.

    Returns:
        The strategy.

    Raises:
        ValueError: If an option is invalid.
    """
    if optimize_memory_usage:
        raise ValueError(
            "CompactHerReplayBuffer already stores each frame once; optimize_memory_usage (SB3's variant for "
            "flat buffers) does not apply. Leave it False."
        )
    if isinstance(n_sampled_goal, bool) or not isinstance(n_sampled_goal, int) or n_sampled_goal < 0:
        raise ValueError(f"n_sampled_goal must be an int >= 0 (relabelled rows per real row), got {n_sampled_goal}.")
    if isinstance(goal_selection_strategy, GoalSelectionStrategy):
        return goal_selection_strategy
    if str(goal_selection_strategy).lower() not in KEY_TO_GOAL_STRATEGY:
        raise ValueError(
            f"Unknown goal_selection_strategy {goal_selection_strategy!r}; expected one of "
            f"{sorted(KEY_TO_GOAL_STRATEGY)}."
        )
    return KEY_TO_GOAL_STRATEGY[goal_selection_strategy.lower()]


def warn_if_too_large(nbytes: int) -> None:
    """Warn when a buffer cannot fit in the RAM available now (pages are only backed once written).

    Args:
        nbytes: The buffer's size at capacity.
    """
    if psutil is not None and nbytes > psutil.virtual_memory().available:
        warnings.warn(
            f"The replay buffer needs {nbytes / 1e9:.2f} GB at capacity but only "
            f"{psutil.virtual_memory().available / 1e9:.2f} GB are available; it will fail when it fills. "
            "Reduce buffer_size.",
            stacklevel=3,
        )
