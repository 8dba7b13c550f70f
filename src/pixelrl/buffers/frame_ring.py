"""FrameRing: per env, a ring of single camera frames from which frame stacks are rebuilt.

Each env owns a column of the ring: its episodes' frames in order (the first frame of an
episode, then one new frame per step), so an episode of length `L` occupies `L + 1`
consecutive slots. For every transition slot the ring records the slot of its `obs`'s
newest frame; its `next_obs`'s newest frame is the next slot, and older frames are the slots
before, clamped at the episode's first frame (which `PixelObservationWrapper` repeats after a
reset).

The frames live in a `FrameStorage` (`pixelrl.buffers.frame_storage`): a NumPy
array in host memory, or a tensor on a torch device, behind one interface. The ring knows
nothing of the buffer that holds it: it is told each step's transition slot, remembers with
each episode's first frame the transition slot where that episode starts, and reports the
episodes whose first frame it overwrites, so the buffer can evict them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch as th
from stable_baselines3.common.utils import get_device

from pixelrl.buffers.frame_storage import FrameStorage, frame_storage

__all__ = ["FrameRing", "FrameRingLayout", "FrameRingState", "ring_device"]

Array = np.ndarray[Any, Any]
NO_EPISODE = -1  # the mark of a slot that holds no episode's first frame


@dataclass(frozen=True)
class FrameRingLayout:
    """Shapes of a frame ring.

    Attributes:
        rows: Transition slots per env (one newest-frame slot is recorded for each).
        frame_rows: Frame slots per env.
        n_envs: Number of parallel envs (one column each).
        frame_stack: Frames per observation.
        frame_shape: One frame, `(c, H, W)`; a stack is `(frame_stack * c, H, W)`.
    """

    rows: int
    frame_rows: int
    n_envs: int
    frame_stack: int
    frame_shape: tuple[int, int, int]

    @property
    def stack_shape(self) -> tuple[int, int, int]:
        """One stacked observation, `(frame_stack * c, H, W)`."""
        channels, height, width = self.frame_shape
        return (self.frame_stack * channels, height, width)

    @property
    def frames_shape(self) -> tuple[int, ...]:
        """The frame storage, `(frame_rows, n_envs, c, H, W)` uint8."""
        return (self.frame_rows, self.n_envs, *self.frame_shape)

    @property
    def frames_nbytes(self) -> int:
        """Bytes of the frame storage."""
        return int(np.prod(self.frames_shape))

    @property
    def nbytes(self) -> int:
        """Bytes the ring allocates: frames, int64 episode marks and newest slots, per-env heads, last stacks."""
        marks = (self.frame_rows + self.rows) * self.n_envs * 8
        heads = 2 * self.n_envs * 8  # head and frames written, int64 per env
        return self.frames_nbytes + marks + heads + self.n_envs * int(np.prod(self.stack_shape))


class FrameRingState(TypedDict):
    """A ring as plain host arrays, cut to the filled rows (what a pickled buffer stores)."""

    layout: FrameRingLayout
    device: th.device | None
    frames: Array
    episode_starts: Array
    newest: Array
    head: Array
    written: Array
    last_stacks: Array


def ring_device(frames_device: th.device | str | None) -> th.device | None:
    """Where a ring's frames live for a `frames_device` option: `None` means a NumPy array in host memory.

    Args:
        frames_device: `None`, a torch device, or `"auto"` (CUDA when present, else host memory).

    Returns:
        The torch device, or `None`. As SB3's `get_device`, `"cuda"` without CUDA gives the CPU.
    """
    if frames_device is None:
        return None
    device = get_device(frames_device)
    if frames_device == "auto" and device.type == "cpu":
        return None  # no CUDA: the NumPy ring is the fast path in host memory
    return device


class FrameRing:
    """Per env, a ring of single frames: stores each step's new frame, rebuilds stacks on demand.

    Args:
        layout: Its shapes.
        device: `None` keeps the frames in a NumPy array; a torch device keeps them in a tensor there.
        name: The observation key, used in error messages.

    Raises:
        ValueError: If the frames do not fit in a CUDA device's free memory.

    Example:
        >>> ring = FrameRing(FrameRingLayout(rows=3, frame_rows=4, n_envs=1, frame_stack=2, frame_shape=(1, 1, 1)))
        >>> first = np.zeros((1, 2, 1, 1), np.uint8)  # an episode start: one frame repeated
        >>> step = first.copy()
        >>> step[0, 1] = 7  # next_obs: obs shifted by one frame, the new frame is 7
        >>> starts = np.array([True])
        >>> ring.check_step(first, step, starts), ring.write_step(0, first, step, starts)
        ([], [])
        >>> ring.stacks(np.array([0]), np.array([0]), np.array([0]))[:, 0, :, 0, 0].tolist()  # obs, next_obs
        [[0, 0], [0, 7]]
    """

    storage: FrameStorage
    episode_starts: Array
    newest: Array
    head: Array
    written: Array
    last_stacks: Array

    def __init__(self, layout: FrameRingLayout, device: th.device | None = None, *, name: str = "pixels") -> None:
        self.layout = layout
        self.name = name
        self._device = device
        self._allocate()

    def _allocate(self) -> None:
        layout = self.layout
        self.storage = frame_storage(layout.frames_shape, self._device)
        # Per frame slot: the transition slot whose episode's first frame it holds.
        self.episode_starts = np.full((layout.frame_rows, layout.n_envs), NO_EPISODE, dtype=np.int64)
        # Per transition slot: the frame slot of its obs's newest frame.
        self.newest = np.zeros((layout.rows, layout.n_envs), dtype=np.int64)
        self.head = np.zeros(layout.n_envs, dtype=np.int64)
        self.written = np.zeros(layout.n_envs, dtype=np.int64)
        self.last_stacks = np.zeros((layout.n_envs, *layout.stack_shape), dtype=np.uint8)

    @property
    def device(self) -> th.device | None:
        """The torch device of the frames, or `None` for a NumPy array in host memory."""
        return self._device

    @property
    def frames(self) -> Any:
        """The `(frame_rows, n_envs, c, H, W)` uint8 frames: a NumPy array, or a tensor on `device`."""
        return self.storage.data

    @property
    def nbytes(self) -> int:
        """Bytes the ring allocated (equal to `layout.nbytes`)."""
        arrays = (self.episode_starts, self.newest, self.head, self.written, self.last_stacks)
        return self.storage.nbytes + sum(int(a.nbytes) for a in arrays)

    @property
    def filled_rows(self) -> int:
        """Frame rows that hold frames (each env fills its column in order)."""
        return int(min(self.layout.frame_rows, self.written.max()))

    def reset(self) -> None:
        """Forget every frame (fresh storage, so unwritten pages stay unbacked)."""
        self._allocate()

    def check_step(self, pixels: Array, next_pixels: Array, starts: Array) -> list[int]:
        """Validate every env's frame stacks of one step before anything is written.

        By induction these checks make every rebuilt stack equal the one given: at episode
        start the stack is one frame repeated; afterwards `obs` is the previous `next_obs`; and
        `next_obs` is `obs` shifted by one new frame.

        Args:
            pixels: `(n_envs, C, H, W)` uint8 `obs` stacks.
            next_pixels: `(n_envs, C, H, W)` uint8 `next_obs` stacks.
            starts: `(n_envs,)` bool, envs whose episode starts at this step. Updated in place
                for envs that start a new episode unannounced (see Returns).

        Returns:
            The envs whose `obs` is a fresh episode start (one frame repeated) in the middle of
            their episode: a reset the caller did not announce. They are marked in `starts`.

        Raises:
            ValueError: If a stack has the wrong shape or is inconsistent.
        """
        expected = (self.layout.n_envs, *self.layout.stack_shape)
        if pixels.shape != expected or next_pixels.shape != expected:
            raise ValueError(
                f"add expected {self.name!r} pixels of shape {expected} (n_envs, C, H, W) for obs and next_obs, "
                f"got {pixels.shape} and {next_pixels.shape}."
            )
        channels = self.layout.frame_shape[0]
        interrupted: list[int] = []
        for env_idx in range(self.layout.n_envs):
            stack = pixels[env_idx]
            repeated = bool((stack.reshape(self.layout.frame_stack, -1) == stack[-channels:].reshape(1, -1)).all())
            if not starts[env_idx] and not np.array_equal(stack, self.last_stacks[env_idx]):
                if not repeated:
                    raise ValueError(
                        f"Env {env_idx}: obs[{self.name!r}] is neither the previous next_obs (the episode "
                        "continuing) nor a fresh episode start (one frame repeated). Call add once per step "
                        "with obs equal to the last next_obs, or truncate_last_trajectory() before a new episode."
                    )
                interrupted.append(env_idx)
                starts[env_idx] = True
            elif starts[env_idx] and not repeated:
                raise ValueError(
                    f"Env {env_idx}: at an episode start obs[{self.name!r}] must be {self.layout.frame_stack} copies "
                    "of the first frame (PixelObservationWrapper fills its stack so); this stack is not, e.g. it is "
                    "zero-padded. Stack frames with PixelObservationWrapper or use HerReplayBuffer."
                )
            if not np.array_equal(next_pixels[env_idx, :-channels], stack[channels:]):
                raise ValueError(
                    f"Env {env_idx}: next_obs[{self.name!r}] is not obs shifted by one frame. On done, next_obs "
                    "must be infos[i]['terminal_observation'] (as SAC passes it), not the reset observation."
                )
        return interrupted

    def write_step(self, pos: int, pixels: Array, next_pixels: Array, starts: Array) -> list[tuple[int, int]]:
        """Store one checked step at transition slot `pos`: each env's new frame, and first frames of new episodes.

        Args:
            pos: The transition slot this step is stored at.
            pixels: `(n_envs, C, H, W)` uint8 `obs` stacks.
            next_pixels: `(n_envs, C, H, W)` uint8 `next_obs` stacks.
            starts: `(n_envs,)` bool, envs whose episode starts at this step.

        Returns:
            `(env, start)` of every episode whose first frame was overwritten, by the transition
            slot `start` where it began: its stacks can no longer be rebuilt, so the caller must
            evict it (if it still holds it: `start` may since have been overwritten too).
        """
        channels = self.layout.frame_shape[0]
        evicted: list[tuple[int, int]] = []
        for env_idx in range(self.layout.n_envs):
            if starts[env_idx]:
                self.newest[pos, env_idx] = self._write(env_idx, pixels[env_idx, -channels:], pos, evicted)
            else:
                self.newest[pos, env_idx] = (self.head[env_idx] - 1) % self.layout.frame_rows
            self._write(env_idx, next_pixels[env_idx, -channels:], NO_EPISODE, evicted)
        self.last_stacks[:] = next_pixels
        return evicted

    def _write(self, env_idx: int, frame: Array, episode_start: int, evicted: list[tuple[int, int]]) -> int:
        slot = int(self.head[env_idx])
        # The head reaches an episode's first frame before its others, so first frames suffice.
        start = int(self.episode_starts[slot, env_idx])
        # A mark is stale once its transition slot holds another transition: only the one that
        # wrote the mark has its newest frame here.
        if start != NO_EPISODE and self.newest[start, env_idx] == slot:
            evicted.append((env_idx, start))
        self.storage.write(slot, env_idx, frame)
        self.episode_starts[slot, env_idx] = episode_start
        self.head[env_idx] = (slot + 1) % self.layout.frame_rows
        self.written[env_idx] += 1
        return slot

    def stacks(self, batch_indices: Array, env_indices: Array, steps: Array, ahead: Array | None = None) -> th.Tensor:
        """Rebuild the `obs` and `next_obs` stacks of stored transitions, where the frames live.

        Args:
            batch_indices: `(B,)` int transition slots.
            env_indices: `(B,)` int env indices.
            steps: `(B,)` int step of each transition in its episode (0 at the first step).
            ahead: `(B,)` int; `next_obs` is then that of the transition `ahead` steps later in
                the same episode (n-step returns). `None`: each transition's own.

        Returns:
            `(2, B, C, H, W)` uint8 tensor, `obs` then `next_obs`, on `device` (CPU for a NumPy ring).
        """
        newest = self.newest[batch_indices, env_indices]
        age = np.arange(self.layout.frame_stack - 1, -1, -1)  # oldest frame first, as the wrapper stacks
        # Frames from before the episode are its first frame repeated: clamp the age at the step.
        obs_slots = newest[:, None] - np.minimum(age[None, :], steps[:, None])
        # An episode's frames are consecutive slots, so a later step's newest frame is `ahead` slots on.
        next_newest, next_steps = (newest, steps) if ahead is None else (newest + ahead, steps + ahead)
        next_slots = next_newest[:, None] + 1 - np.minimum(age[None, :], next_steps[:, None] + 1)
        slots = np.stack((obs_slots, next_slots)) % self.layout.frame_rows  # (2, B, frame_stack)
        frames = self.storage.gather(slots, env_indices[None, :, None])
        return frames.reshape(2, len(newest), *self.layout.stack_shape)

    def state_dict(self, rows: int) -> FrameRingState:
        """The ring as plain host arrays, cut to the filled frame rows and the first `rows` transition slots.

        Args:
            rows: Transition slots in use (all of them once the buffer is full).

        Returns:
            The state; frames are a NumPy copy wherever they live.
        """
        frame_rows = self.filled_rows
        return FrameRingState(
            layout=self.layout,
            device=self._device,
            frames=self.storage.host_rows(frame_rows),
            episode_starts=self.episode_starts[:frame_rows].copy(),
            newest=self.newest[:rows].copy(),
            head=self.head.copy(),
            written=self.written.copy(),
            last_stacks=self.last_stacks.copy(),
        )

    @classmethod
    def from_state_dict(cls, state: FrameRingState, *, name: str = "pixels") -> FrameRing:
        """Rebuild a ring at full capacity from `state_dict`, on its device when this machine has it.

        Args:
            state: From `state_dict` (or converted from an older pickle).
            name: The observation key, used in error messages.

        Returns:
            The ring. Frames saved from a CUDA device are loaded into host memory, with a
            warning, where CUDA is not available.

        Raises:
            ValueError: If the frames do not fit in the CUDA device's free memory.
        """
        device = state["device"]
        if device is not None and device.type == "cuda" and not th.cuda.is_available():
            warnings.warn(
                f"This buffer kept its frames on {device}, which this machine does not have; they are loaded "
                "into host memory instead (every stored transition is kept).",
                stacklevel=3,  # the caller of the buffer's __setstate__
            )
            device = None
        ring = cls(state["layout"], device, name=name)
        ring.storage.load_rows(state["frames"])
        ring.episode_starts[: len(state["episode_starts"])] = state["episode_starts"]
        ring.newest[: len(state["newest"])] = state["newest"]
        ring.head[:] = state["head"]
        ring.written[:] = state["written"]
        ring.last_stacks[:] = state["last_stacks"]
        return ring
