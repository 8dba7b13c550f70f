"""Typed layout of `CompactHerReplayBuffer`'s arrays, and its option checks, before allocation.

`CompactLayout` describes every array the buffer holds: the frame ring's
(`frame_ring.FrameRingLayout`) and the per-transition arrays
(`TransitionLayout`, allocated by SB3's `HerReplayBuffer` for the vector keys), so the memory
preflight (`CompactHerReplayBuffer.estimate_nbytes`) and what is
allocated cannot disagree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim, get_obs_shape
from stable_baselines3.her.goal_selection_strategy import KEY_TO_GOAL_STRATEGY, GoalSelectionStrategy

from pixelrl.buffers.frame_ring import FrameRingLayout

try:
    import psutil
except ImportError:  # pragma: no cover - psutil ships with the cli extra
    psutil = None

__all__ = [
    "ArraySpec",
    "CompactLayout",
    "TransitionArrays",
    "TransitionLayout",
    "check_her_options",
    "estimate_nbytes",
    "warn_if_too_large",
]

Array = np.ndarray[Any, Any]
T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")
EPISODE_CURSOR_BYTES = 2 * 8  # per env: SB3's _current_ep_start and the buffer's _episode_steps, int64


@dataclass(frozen=True)
class ArraySpec:
    """Shape and dtype of one array.

    Attributes:
        shape: The full shape.
        dtype: The dtype (`object` for info dicts: 8-byte pointers are counted).
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def nbytes(self) -> int:
        """Bytes of the array."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def zeros(self) -> Array:
        """Allocate it (`np.zeros`: the OS backs pages only once they are written; `None` for objects)."""
        if self.dtype == np.dtype(object):
            return np.empty(self.shape, dtype=object)
        return np.zeros(self.shape, dtype=self.dtype)


@dataclass(frozen=True)
class TransitionArrays(Generic[T]):
    """The per-transition arrays of a compact HER buffer (`T` = `np.ndarray`), or their specs (`ArraySpec`).

    Every array has one row per transition slot: `(rows, n_envs, ...)`.

    Attributes:
        observations: Per vector key (every key but the pixels), the stored `obs` values.
        next_observations: Per vector key, the stored `next_obs` values.
        actions: `(rows, n_envs, action_dim)`.
        rewards: `(rows, n_envs)` float32.
        dones: `(rows, n_envs)` float32.
        timeouts: `(rows, n_envs)` float32.
        ep_start: `(rows, n_envs)` int64, first transition slot of each transition's episode.
        ep_length: `(rows, n_envs)` int64, length of its episode; 0 while unfinished or evicted.
        infos: `(rows, n_envs)` object array of info dicts when they are stored, else `(0, n_envs)`.
    """

    observations: dict[str, T]
    next_observations: dict[str, T]
    actions: T
    rewards: T
    dones: T
    timeouts: T
    ep_start: T
    ep_length: T
    infos: T

    def leaves(self) -> list[T]:
        """Every array (or spec), the per-key ones first."""
        scalars = (self.actions, self.rewards, self.dones, self.timeouts, self.ep_start, self.ep_length)
        return [*self.observations.values(), *self.next_observations.values(), *scalars, self.infos]

    def map(self, fn: Callable[[T], U]) -> TransitionArrays[U]:
        """Apply `fn` to every array, keeping the structure."""
        return self.zip_with(self, lambda value, _: fn(value))

    def zip_with(self, other: TransitionArrays[U], fn: Callable[[T, U], V]) -> TransitionArrays[V]:
        """Combine two structures array by array (per-key arrays matched by key)."""
        return TransitionArrays(
            observations={key: fn(value, other.observations[key]) for key, value in self.observations.items()},
            next_observations={
                key: fn(value, other.next_observations[key]) for key, value in self.next_observations.items()
            },
            actions=fn(self.actions, other.actions),
            rewards=fn(self.rewards, other.rewards),
            dones=fn(self.dones, other.dones),
            timeouts=fn(self.timeouts, other.timeouts),
            ep_start=fn(self.ep_start, other.ep_start),
            ep_length=fn(self.ep_length, other.ep_length),
            infos=fn(self.infos, other.infos),
        )


@dataclass(frozen=True)
class TransitionLayout:
    """Shapes and dtypes of the per-transition arrays, as SB3's `HerReplayBuffer` allocates them.

    Attributes:
        rows: Transition slots per env (`buffer_size // n_envs`).
        n_envs: Number of parallel envs.
        vector_obs: `(key, spec)` of every vector key, stored for `obs` and for `next_obs`.
        actions: Spec of the actions (SB3 stores float64 actions as float32).
        copy_info_dict: Whether info dicts are stored.
    """

    rows: int
    n_envs: int
    vector_obs: tuple[tuple[str, ArraySpec], ...]
    actions: ArraySpec
    copy_info_dict: bool

    def specs(self) -> TransitionArrays[ArraySpec]:
        """The spec of every array."""
        per_row = (self.rows, self.n_envs)
        f32, i64 = ArraySpec(per_row, np.dtype(np.float32)), ArraySpec(per_row, np.dtype(np.int64))
        infos = per_row if self.copy_info_dict else (0, self.n_envs)
        return TransitionArrays(
            observations=dict(self.vector_obs),
            next_observations=dict(self.vector_obs),
            actions=self.actions,
            rewards=f32,
            dones=f32,
            timeouts=f32,
            ep_start=i64,
            ep_length=i64,
            infos=ArraySpec(infos, np.dtype(object)),
        )

    def allocate(self) -> TransitionArrays[Array]:
        """Allocate every array, empty."""
        return self.specs().map(ArraySpec.zeros)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays plus the per-env episode cursors."""
        return sum(spec.nbytes for spec in self.specs().leaves()) + self.n_envs * EPISODE_CURSOR_BYTES


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
    """Every array of a compact HER buffer: its frame ring and its per-transition arrays.

    Version-1 pickles of the buffer hold an object of this name with that version's fields;
    loading never reads it (the layout is rebuilt from the buffer's options).

    Attributes:
        pixel_key: Key of the stacked frames.
        ring: The frame ring. Its `frame_rows` is `rows + rows // min_episode_length + 1`: an
            episode of length `L` needs `L + 1` frames (its first frame plus one new frame per
            step), so with episodes of at least `min_episode_length` steps the frame ring never
            runs out before the transition ring does.
        transitions: The per-transition arrays.
    """

    pixel_key: str
    ring: FrameRingLayout
    transitions: TransitionLayout

    @property
    def rows(self) -> int:
        """Transition slots per env."""
        return self.transitions.rows

    @property
    def vector_keys(self) -> tuple[str, ...]:
        """Observation keys stored per transition (every key but the pixel key)."""
        return tuple(key for key, _ in self.transitions.vector_obs)

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays at full capacity (object arrays count their 8-byte pointers)."""
        return self.ring.nbytes + self.transitions.nbytes

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
            observation_space: Dict space with a `(C, H, W)` uint8 pixel key.
            action_space: Action space.
            n_envs: Number of parallel envs.
            frame_stack: Frames per pixel observation; `None` means `C // 3`.
            pixel_key: Key of the stacked frames.
            copy_info_dict: Whether an object array of info dicts is allocated.
            min_episode_length: Shortest episode the frame ring is sized for.

        Returns:
            The layout.

        Raises:
            ValueError: If the space has no uint8 `(C, H, W)` pixel key, `frame_stack` does
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
        ring = FrameRingLayout(
            rows=rows,
            frame_rows=rows + rows // min_episode_length + 1,
            n_envs=n_envs,
            frame_stack=stack,
            frame_shape=(channels // stack, height, width),
        )
        obs_shape = get_obs_shape(observation_space)
        assert isinstance(obs_shape, dict)
        vector_obs = tuple(
            (key, ArraySpec((rows, n_envs, *obs_shape[key]), np.dtype(observation_space[key].dtype)))
            for key in observation_space.spaces
            if key != pixel_key
        )
        # SB3 stores float64 actions as float32 (ReplayBuffer._maybe_cast_dtype).
        action_dtype = np.dtype(action_space.dtype)
        action_dtype = np.dtype(np.float32) if action_dtype == np.float64 else action_dtype
        actions = ArraySpec((rows, n_envs, get_action_dim(action_space)), action_dtype)
        return cls(pixel_key, ring, TransitionLayout(rows, n_envs, vector_obs, actions, copy_info_dict))

    def vector_space(self, observation_space: spaces.Dict) -> spaces.Dict:
        """The observation space without the pixel key: what SB3's `HerReplayBuffer` allocates for.

        Args:
            observation_space: The full Dict space.

        Returns:
            A Dict space of the vector keys, in the same order.
        """
        return spaces.Dict({key: observation_space[key] for key in self.vector_keys})


def estimate_nbytes(
    buffer_size: int,
    observation_space: spaces.Dict,
    action_space: spaces.Space[Any],
    n_envs: int = 1,
    frame_stack: int | None = None,
    pixel_key: str = "pixels",
    *,
    copy_info_dict: bool = False,
    min_episode_length: int = 25,
    frames_only: bool = False,
) -> int:
    """Bytes `CompactHerReplayBuffer` allocates at full capacity, computed without allocating anything.

    Also `CompactHerReplayBuffer.estimate_nbytes`.

    Args:
        buffer_size: Capacity in transitions, summed over envs.
        observation_space: The Dict observation space.
        action_space: The action space.
        n_envs: Number of parallel envs.
        frame_stack: Frames per observation; default `C // 3`.
        pixel_key: Key of the stacked frames.
        copy_info_dict: Whether info dicts are stored (their 8-byte pointers are counted).
        min_episode_length: As in the buffer's constructor.
        frames_only: Count only the frames (the part that lives on `frames_device`).

    Returns:
        Exactly the `nbytes` of a buffer built with the same arguments (or its frames' part).

    Raises:
        ValueError: For the configurations the buffer's constructor rejects.

    Examples:
        >>> space = spaces.Dict({"pixels": spaces.Box(0, 255, (12, 84, 84), np.uint8),
        ...                      "achieved_goal": spaces.Box(-1, 1, (3,)), "desired_goal": spaces.Box(-1, 1, (3,))})
        >>> estimate_nbytes(500_000, space, spaces.Box(-1, 1, (4,))) // 500_000
        22123
    """
    layout = CompactLayout.build(
        buffer_size, observation_space, action_space, n_envs, frame_stack, pixel_key, copy_info_dict,
        min_episode_length,
    )  # fmt: skip
    return layout.ring.frames_nbytes if frames_only else layout.nbytes


def check_her_options(
    optimize_memory_usage: bool, n_sampled_goal: int, goal_selection_strategy: GoalSelectionStrategy | str
) -> GoalSelectionStrategy:
    """Validate the HER options of the compact buffer.

    Args:
        optimize_memory_usage: Must be False.
        n_sampled_goal: Relabelled rows per real row, >= 0.
        goal_selection_strategy: A `GoalSelectionStrategy` or its name.

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
