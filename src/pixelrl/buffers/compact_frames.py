"""The array store of :class:`~pixelrl.buffers.CompactHerReplayBuffer`: one ring of frames per env.

Each env owns a column of ``frames``: its episodes' frames, written in order (the first frame
of an episode, then one new frame per step), so an episode of length ``L`` occupies ``L + 1``
consecutive slots. A transition stores the slot of its ``obs``'s newest frame; its
``next_obs``'s newest frame is the next slot, and older frames are the slots before, clamped
at the episode's first frame (which ``PixelObservationWrapper`` repeats after a reset).

Pickling writes only the filled rows of each array, so a saved buffer's size follows what
was stored, not its capacity.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from pixelrl.buffers.compact_layout import ENV_ARRAYS, FRAME_ARRAYS, TRANSITION_ARRAYS, CompactLayout

__all__ = ["FrameStore"]

Array = np.ndarray[Any, Any]
ObsDict = dict[str, Array]
# Pixels rebuilt from a frame ring on a torch device come back as a tensor on that device.
SampledObs = dict[str, Any]


class FrameStore:
    """Frame-ring bookkeeping shared by the compact HER buffer (a mixin; no SB3 state of its own).

    Attributes:
        frames: ``(frame_rows, n_envs, c, H, W)`` uint8, per env a ring of single frames: a
            NumPy array, or a tensor on ``frames_device`` when one is set.
        frame_episode_start: ``(frame_rows, n_envs)`` int64, the transition slot of the episode
            whose first frame is in that slot, else -1.
        frame_index: ``(rows, n_envs)`` int64, the frame slot of each transition's ``obs``'s
            newest frame.
    """

    _layout: CompactLayout
    env: Any
    pos: int
    full: bool
    pixel_key: str
    n_envs: int
    buffer_size: int
    observation_space: spaces.Dict
    observations: dict[str, Array]
    next_observations: dict[str, Array]
    frames: Any  # Array, or th.Tensor on frames_device
    frames_device: th.device | None
    frame_episode_start: Array
    frame_index: Array
    ep_start: Array
    ep_length: Array
    _episode_steps: Array
    _frame_pos: Array
    _frame_count: Array
    _last_next_pixels: Array

    @property
    def nbytes(self) -> int:
        """Bytes of the allocated arrays (equal to :meth:`estimate_nbytes`)."""
        return sum(array.nbytes for array in self._arrays().values())

    def _arrays(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._layout.arrays:
            prefix, _, key = name.partition("/")
            out[name] = getattr(self, prefix)[key] if key else getattr(self, name)
        return out

    def _assign(self, arrays: dict[str, Array]) -> None:
        self.observations = {}
        self.next_observations = {}
        for name, array in arrays.items():
            prefix, _, key = name.partition("/")
            if key:
                getattr(self, prefix)[key] = array
            else:
                setattr(self, name, array)

    def _pickled_state(self) -> dict[str, Any]:
        """The object's state without the env, with arrays cut to their filled rows (for ``__getstate__``)."""
        state = self.__dict__.copy()
        del state["env"]
        rows = self.buffer_size if self.full else self.pos
        frame_rows = self._filled_frame_rows()
        saved = {}
        for name, array in self._arrays().items():
            base = name.partition("/")[0]
            if base in TRANSITION_ARRAYS or base in ("observations", "next_observations"):
                array = array[:rows]
            elif base in FRAME_ARRAYS:
                array = array[:frame_rows]
                if isinstance(array, th.Tensor):
                    array = array.cpu().numpy()  # loadable on a machine without that device
            else:
                assert base in ENV_ARRAYS
            saved[name] = array
            state.pop(base, None)
        state["_saved_arrays"] = saved
        return state

    def _restore_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_pickled_state`: re-allocate full capacity and copy the saved rows in."""
        saved = state.pop("_saved_arrays")
        self.__dict__.update(state)
        self.env = None
        arrays = self._layout.allocate()
        for name, array in saved.items():
            arrays[name][: len(array)] = array
        self._assign(arrays)
        device = self.frames_device
        if device is not None and device.type == "cuda" and not th.cuda.is_available():
            warnings.warn(
                f"This buffer kept its frames on {device}, which this machine does not have; they are loaded "
                "into host memory instead (every stored transition is kept).",
                stacklevel=3,
            )
            self.frames_device = None
        self._place_frames()

    def _place_frames(self) -> None:
        """Move the frame ring to ``frames_device`` (after allocating or restoring it in host memory)."""
        if self.frames_device is None:
            return
        shape, nbytes = self.frames.shape, self.frames.nbytes
        if self.frames_device.type == "cuda":
            free, _ = th.cuda.mem_get_info(self.frames_device)
            if nbytes > free:
                raise ValueError(
                    f"The frame ring needs {nbytes / 1e9:.2f} GB on {self.frames_device} but {free / 1e9:.2f} GB are "
                    "free there. Reduce buffer_size, or pass frames_device=None to keep the frames in host memory."
                )
        frames = th.zeros(shape, dtype=th.uint8, device=self.frames_device)
        filled = self._filled_frame_rows()  # restored rows (a fresh ring has none): copy only those
        frames[:filled].copy_(th.from_numpy(self.frames[:filled]))
        self.frames = frames

    def _filled_frame_rows(self) -> int:
        """Rows of the frame ring that hold frames (the ring fills its rows in order, per env)."""
        return int(min(self._layout.frame_rows, self._frame_count.max()))

    @property
    def frame_stack(self) -> int:
        """Frames per pixel observation."""
        return self._layout.frame_stack

    def _check_stacks(self, pixels: Array, next_pixels: Array) -> tuple[Array, list[int]]:
        """Validate every env's frame stacks before anything is written.

        By induction these checks make every rebuilt stack equal the one given to ``add``:
        at episode start the stack is one frame repeated; afterwards ``obs`` is the previous
        ``next_obs``; and ``next_obs`` is ``obs`` shifted by one new frame.

        Args:
            pixels: ``(n_envs, C, H, W)`` uint8 ``obs`` stacks.
            next_pixels: ``(n_envs, C, H, W)`` uint8 ``next_obs`` stacks.

        Returns:
            ``(starts, interrupted)``: a ``(n_envs,)`` bool array of envs whose step starts an
            episode, and the envs among them whose stored episode is unfinished (a reset in the
            middle of an episode).

        Raises:
            ValueError: If a stack is inconsistent or an episode outgrows the per-env capacity.
        """
        channels = self._layout.frame_shape[0]
        starts = self._episode_steps == 0
        interrupted: list[int] = []
        for env_idx in range(self.n_envs):
            stack = pixels[env_idx]
            repeated = bool((stack.reshape(self.frame_stack, -1) == stack[-channels:].reshape(1, -1)).all())
            if not starts[env_idx] and not np.array_equal(stack, self._last_next_pixels[env_idx]):
                if not repeated:
                    raise ValueError(
                        f"Env {env_idx}: obs[{self.pixel_key!r}] is neither the previous next_obs (the episode "
                        "continuing) nor a fresh episode start (one frame repeated). Call add once per step "
                        "with obs equal to the last next_obs, or truncate_last_trajectory() before a new episode."
                    )
                interrupted.append(env_idx)
                starts[env_idx] = True
            elif starts[env_idx] and not repeated:
                raise ValueError(
                    f"Env {env_idx}: at an episode start obs[{self.pixel_key!r}] must be {self.frame_stack} copies of "
                    "the first frame (PixelObservationWrapper fills its stack so); this stack is not, e.g. it is "
                    "zero-padded. Stack frames with PixelObservationWrapper or use HerReplayBuffer."
                )
            if not np.array_equal(next_pixels[env_idx, :-channels], stack[channels:]):
                raise ValueError(
                    f"Env {env_idx}: next_obs[{self.pixel_key!r}] is not obs shifted by one frame. On done, next_obs "
                    "must be infos[i]['terminal_observation'] (as SAC passes it), not the reset observation."
                )
            if not starts[env_idx] and self._episode_steps[env_idx] >= self.buffer_size - 1:
                raise ValueError(
                    f"Env {env_idx}: the episode reached {self.buffer_size - 1} steps, the longest that fits the "
                    f"per-env capacity (buffer_size // n_envs = {self.buffer_size}); HER stores whole episodes. "
                    "Use buffer_size >= n_envs * (longest episode + 1)."
                )
        return starts, interrupted

    def _write_frames(self, pos: int, starts: Array, pixels: Array, next_pixels: Array) -> None:
        """Store the step's new frame of every env (and the first frame where an episode starts)."""
        channels = self._layout.frame_shape[0]
        for env_idx in range(self.n_envs):
            if starts[env_idx]:
                self.frame_index[pos, env_idx] = self._write_frame(env_idx, pixels[env_idx, -channels:], pos)
            else:
                self.frame_index[pos, env_idx] = (self._frame_pos[env_idx] - 1) % self._layout.frame_rows
            self._write_frame(env_idx, next_pixels[env_idx, -channels:], -1)
        self._last_next_pixels[:] = next_pixels

    def _write_frame(self, env_idx: int, frame: Array, episode_start: int) -> int:
        """Write a frame at the env's frame head, evicting the finished episode that starts there."""
        slot = int(self._frame_pos[env_idx])
        start = int(self.frame_episode_start[slot, env_idx])
        # The head reaches an episode's first frame before its others, so first frames suffice;
        # the conditions discard stale marks left by episodes already evicted by the transition ring.
        if (
            start >= 0
            and self.ep_length[start, env_idx] > 0
            and self.ep_start[start, env_idx] == start
            and self.frame_index[start, env_idx] == slot
        ):
            episode = np.arange(start, start + self.ep_length[start, env_idx]) % self.buffer_size
            self.ep_length[episode, env_idx] = 0
        self.frames[slot, env_idx] = frame if self.frames_device is None else th.from_numpy(np.ascontiguousarray(frame))
        self.frame_episode_start[slot, env_idx] = episode_start
        self._frame_pos[env_idx] = (slot + 1) % self._layout.frame_rows
        self._frame_count[env_idx] += 1
        return slot

    def get_observations(self, batch_indices: Array, env_indices: Array) -> tuple[ObsDict, ObsDict]:
        """Rebuild the stored ``obs`` and ``next_obs`` of transitions in finished episodes.

        Args:
            batch_indices: ``(B,)`` int transition slots in ``[0, buffer_size // n_envs)``.
            env_indices: ``(B,)`` int env indices.

        Returns:
            ``(obs, next_obs)``: dicts of ``(B, ...)`` NumPy arrays, pixels ``(B, C, H, W)`` uint8,
            with the stored desired goals (no relabelling), wherever the frames are kept.

        Raises:
            ValueError: If a transition is not sampleable (never written, evicted, or in an
                unfinished episode).
        """
        batch_indices, env_indices = np.asarray(batch_indices), np.asarray(env_indices)
        if not (self.ep_length[batch_indices, env_indices] > 0).all():
            raise ValueError(
                "Some transitions are not sampleable: only transitions of finished episodes that were not evicted "
                "can be rebuilt (those with ep_length > 0)."
            )
        obs, next_obs = self._rebuild(batch_indices, env_indices)
        return _as_numpy(obs), _as_numpy(next_obs)

    def _rebuild(self, batch_indices: Array, env_indices: Array) -> tuple[SampledObs, SampledObs]:
        layout = self._layout
        steps = (batch_indices - self.ep_start[batch_indices, env_indices]) % self.buffer_size
        newest = self.frame_index[batch_indices, env_indices]
        age = np.arange(layout.frame_stack - 1, -1, -1)  # oldest frame first, as the wrapper stacks
        # Frames from before the episode are its first frame repeated: clamp the age at the step.
        obs_slots = newest[:, None] - np.minimum(age[None, :], steps[:, None])
        next_slots = newest[:, None] + 1 - np.minimum(age[None, :], steps[:, None] + 1)
        slots = np.stack((obs_slots, next_slots)) % layout.frame_rows  # (2, B, frame_stack)
        if self.frames_device is None:
            pixels = self.frames[slots, env_indices[None, :, None]]
        else:  # one gather where the frames live: no batch crosses to that device
            rows = th.from_numpy(slots * self.n_envs + env_indices[None, :, None]).to(self.frames_device)
            pixels = self.frames.flatten(0, 1)[rows.flatten()]
        pixels = pixels.reshape(2, len(batch_indices), *self._last_next_pixels.shape[1:])
        obs: SampledObs = {}
        next_obs: SampledObs = {}
        for key in self.observation_space.spaces:
            if key == self.pixel_key:
                obs[key], next_obs[key] = pixels[0], pixels[1]
            else:
                obs[key] = self.observations[key][batch_indices, env_indices]
                next_obs[key] = self.next_observations[key][batch_indices, env_indices]
        return obs, next_obs


def _as_numpy(obs: SampledObs) -> ObsDict:
    return {key: value.cpu().numpy() if isinstance(value, th.Tensor) else value for key, value in obs.items()}
