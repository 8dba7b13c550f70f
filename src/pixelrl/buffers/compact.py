"""CompactHerReplayBuffer: SB3's HER buffer storing each camera frame once, stacks rebuilt at sample time."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import fields
from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_obs_shape
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.her.goal_selection_strategy import GoalSelectionStrategy
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from pixelrl.buffers.augmentation import AugmentFn, SampleAugmentation, sample_augmentation_property
from pixelrl.buffers.compact_layout import (
    CompactLayout,
    TransitionArrays,
    check_her_options,
    estimate_nbytes,
    warn_if_too_large,
)
from pixelrl.buffers.compact_state import pickled_state, unpickled_state
from pixelrl.buffers.frame_ring import FrameRing, ring_device
from pixelrl.buffers.goal_env import check_goal_env, check_relabelled_rewards
from pixelrl.buffers.her_rewards import RewardFn, virtual_samples
from pixelrl.buffers.nstep import check_n_step_options, n_step_samples
from pixelrl.buffers.row_ids import with_row_ids, with_rows_gathered

__all__ = ["CompactHerReplayBuffer"]

Array = np.ndarray[Any, Any]
ObsDict = dict[str, Array]
_TRANSITION_FIELDS = tuple(field.name for field in fields(TransitionArrays))  # the buffer's attribute names


class CompactHerReplayBuffer(HerReplayBuffer):
    """SB3's `HerReplayBuffer` that stores each camera frame once instead of two frame stacks.

    SB3 stores `obs` and `next_obs` (`frame_stack` frames each) for every transition: 169,600 B
    for the chapter's `(12, 84, 84)` observation. Consecutive stacks share all but one frame, so
    the frames live once in a `FrameRing` (each episode's
    first frame, then one new frame per step, the terminal frame included) and stacks are rebuilt
    at sample time exactly as `PixelObservationWrapper` built them; SB3's own code stores the
    vector keys. A transition costs about 1.04 frames at capacity (22.3 KB for the chapter).

    Sampling is SB3's `HerReplayBuffer.sample` itself, so with the same seed and data it returns
    SB3's batch; the optional augmentation then shifts the image key(s), obs and next_obs
    independently. Episodes are evicted whole, oldest first, when the transition ring reaches
    them (as in SB3) or the frame ring reaches their first frame (only when episodes are shorter
    than `min_episode_length`: the buffer then holds fewer transitions, never a wrong one). `add`
    checks that each step's stacks continue the stored ones; a reset in the middle of a stored
    episode (`learn(reset_num_timesteps=True)`) closes it as truncated, with a warning.

    With `n_steps > 1` the same rows and goals are drawn, and each row's reward, `next_obs`, done
    and `discounts` become n-step ones (`pixelrl.buffers.nstep`): a relabelled row sums
    `compute_reward` of every step's achieved goal with ITS relabelled goal, and its `next_obs`
    (frames and vectors of step `t+k-1`) keeps that goal.

    Args:
        buffer_size: Maximum number of transitions, summed over envs.
        observation_space: Dict space with `achieved_goal`, `desired_goal` and the stacked
            frames `Box(0, 255, (C, H, W), uint8)` under `pixel_key`.
        action_space: Action space.
        env: The training VecEnv (SAC passes it); `None` only when unpickling.
        device: Device of the sampled tensors.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be False (frames are already stored once).
        handle_timeout_termination: Bootstrap through time-limit truncations.
        n_sampled_goal: Relabelled transitions per real one.
        goal_selection_strategy: `"future"`, `"final"` or `"episode"`.
        copy_info_dict: Store info dicts and pass them to `compute_reward`.
        frame_stack: Frames per observation; default `C // 3` (RGB frames).
        pixel_key: Key of the stacked frames.
        pad: Maximum shift of `RandomShiftAug`. Default 0, no augmentation: this buffer is a
            drop-in for SB3's `HerReplayBuffer` (the DrQ buffers default to 4).
        augmentation: A picklable callable used instead of the random shift.
        aug_fn: The same as `augmentation` (another spelling; give one of the two).
        image_keys: Keys to augment; default every uint8 image key.
        image_key: One key to augment, the same as `image_keys=[image_key]`.
        min_episode_length: Shortest episode the frame ring is sized for (see above).
        frames_device: Where the frames live: `None` (default) host memory; a torch device
            (`"cuda"`, or `"auto"`: CUDA when present) keeps them there and gathers stacks there,
            so a GPU run copies only each step's new frames, not a 43 MB batch per update. Saved
            buffers hold host arrays; loaded without that device, frames stay in host memory.
        n_steps: n-step returns (SB3's `NStepReplayBuffer` spelling); 1 (default) is SB3's
            one-step HER sampling and leaves `discounts` None. `DrQv2SAC(n_steps=...)` sets it.
        gamma: Discount factor of the n-step sums and of `discounts = gamma ** k`; give the
            algorithm's `gamma`.
        compute_reward: Computes relabelled rewards in this process instead of SB3's IPC call
            to the first env (e.g. `EnvComputeReward`); only for envs whose ``compute_reward`` is a
            pure function of the goals (`pixelrl.buffers.her_rewards`); picklable.

    Raises:
        ValueError: If the pixel key is missing or not `(C, H, W)` uint8, `frame_stack` does
            not divide `C`, goal keys are missing, the env has no `compute_reward`,
            `optimize_memory_usage` is set, an option (`n_steps`, `gamma` included) is out of
            range, or the frames do not fit in the free memory of `frames_device`.
        TypeError: If an option is given under both of its spellings.

    Examples:
        >>> from stable_baselines3 import SAC
        >>> import pixelrl  # registers "DrQv2SACPolicy"
        >>> SAC("DrQv2SACPolicy", vec_env, buffer_size=500_000,  # doctest: +SKIP
        ...     replay_buffer_class=CompactHerReplayBuffer, replay_buffer_kwargs=dict(n_sampled_goal=8))
    """

    env: VecEnv | None
    observation_space: spaces.Dict
    infos: Array
    _drawn_goals: Array

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space[Any],
        env: VecEnv | None,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_sampled_goal: int = 4,
        goal_selection_strategy: GoalSelectionStrategy | str = "future",
        copy_info_dict: bool = False,
        *,
        frame_stack: int | None = None,
        pixel_key: str = "pixels",
        pad: int = 0,
        augmentation: AugmentFn | None = None,
        aug_fn: AugmentFn | None = None,
        image_keys: Sequence[str] | None = None,
        image_key: str | None = None,
        min_episode_length: int = 25,
        frames_device: th.device | str | None = None,
        n_steps: int = 1,
        gamma: float = 0.99,
        compute_reward: RewardFn | None = None,
    ) -> None:
        check_n_step_options(n_steps, gamma)
        layout = CompactLayout.build(
            buffer_size, observation_space, action_space, n_envs, frame_stack, pixel_key, copy_info_dict,
            min_episode_length,
        )  # fmt: skip
        strategy = check_her_options(optimize_memory_usage, n_sampled_goal, goal_selection_strategy)
        sample_augmentation = SampleAugmentation.from_options(
            observation_space, pad=pad, augmentation=augmentation, aug_fn=aug_fn, image_keys=image_keys,
            image_key=image_key,
        )  # fmt: skip
        if env is not None:
            check_goal_env(observation_space, env)
        # Before SB3 allocates anything, so a ring that does not fit on the GPU is refused first.
        ring = FrameRing(layout.ring, ring_device(frames_device), name=pixel_key)
        # SB3 allocates obs and next_obs for every key of the space it is given: give it the
        # vector keys only (the frames live in the ring), then restore the full space.
        super().__init__(
            buffer_size=buffer_size,
            observation_space=layout.vector_space(observation_space),
            action_space=action_space,
            env=env,  # type: ignore[arg-type]  # None only when unpickling, as in SB3
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
            n_sampled_goal=n_sampled_goal,
            goal_selection_strategy=strategy,
            copy_info_dict=copy_info_dict,
        )
        self.observation_space = observation_space
        self.obs_shape = get_obs_shape(observation_space)  # type: ignore[assignment]
        # SB3 allocates one empty dict per slot even when none is ever stored: drop them.
        self.infos = self.infos if copy_info_dict else layout.transitions.specs().infos.zeros()
        self._episode_steps = np.zeros(n_envs, dtype=np.int64)
        self.pixel_key = pixel_key
        self.min_episode_length = min_episode_length
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)
        self.compute_reward = compute_reward
        self.sample_augmentation = sample_augmentation
        self._layout = layout
        self._ring = ring
        self._rewards_checked = False
        warn_if_too_large(self.nbytes if ring.device is None else self.nbytes - ring.storage.nbytes)

    # -- layout ------------------------------------------------------------------------------

    # A static method, so the estimate needs no buffer (the memory preflight runs it first).
    estimate_nbytes = staticmethod(estimate_nbytes)

    @property
    def nbytes(self) -> int:
        """Bytes of the allocated arrays, frames included (equal to `estimate_nbytes`)."""
        transitions = sum(int(array.nbytes) for array in self._transitions().leaves())
        return self._ring.nbytes + transitions + self._current_ep_start.nbytes + self._episode_steps.nbytes

    @property
    def frame_stack(self) -> int:
        """Frames per pixel observation."""
        return self._layout.ring.frame_stack

    @property
    def frame_ring(self) -> FrameRing:
        """The frame storage and stack rebuilding (read it; the buffer writes it)."""
        return self._ring

    @property
    def frames(self) -> Any:
        """`(frame_rows, n_envs, c, H, W)` uint8, per env a ring of single frames (a tensor on `frames_device`)."""
        return self._ring.frames

    @property
    def frames_device(self) -> th.device | None:
        """The torch device holding the frames, or `None` for host memory (a NumPy array)."""
        return self._ring.device

    augmentation = sample_augmentation_property("augmentation")
    image_keys = sample_augmentation_property("image_keys")

    def _transitions(self) -> TransitionArrays[Array]:
        return TransitionArrays(**{name: getattr(self, name) for name in _TRANSITION_FIELDS})

    def _set_transitions(self, arrays: TransitionArrays[Array]) -> None:
        for name in _TRANSITION_FIELDS:
            setattr(self, name, getattr(arrays, name))

    # -- storage -----------------------------------------------------------------------------

    def add(  # type: ignore[override]
        self,
        obs: dict[str, Array],
        next_obs: dict[str, Array],
        action: Array,
        reward: Array,
        done: Array,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one vec-env step: the new frame of each env (and, at episode start, its first frame).

        Args:
            obs: Observation dict before the step, each entry `(n_envs, ...)`; pixels
                `(n_envs, C, H, W)` uint8.
            next_obs: Observation after the step, with the terminal observation in place of
                the reset one for envs that are done (as SAC's `_store_transition` passes it).
            action: `(n_envs, action_dim)` actions.
            reward: `(n_envs,)` rewards.
            done: `(n_envs,)` episode ends (terminated or truncated).
            infos: One info dict per env (`TimeLimit.truncated` marks timeouts).

        Raises:
            ValueError: If the pixels do not form consistent frame stacks (see
                `FrameRing.check_step`) or an episode outgrows the per-env capacity. Nothing is
                stored then.
        """
        pixels, next_pixels = np.asarray(obs[self.pixel_key]), np.asarray(next_obs[self.pixel_key])
        starts = self._episode_steps == 0
        interrupted = self._ring.check_step(pixels, next_pixels, starts)
        too_long = np.flatnonzero(~starts & (self._episode_steps >= self.buffer_size - 1))
        if too_long.size:
            raise ValueError(
                f"Env {too_long[0]}: the episode reached {self.buffer_size - 1} steps, the longest that fits the "
                f"per-env capacity (buffer_size // n_envs = {self.buffer_size}); HER stores whole episodes. "
                "Use buffer_size >= n_envs * (longest episode + 1)."
            )
        if interrupted:
            warnings.warn(
                f"Env(s) {interrupted} started a new episode (a reset) while their stored episode was unfinished; "
                "the stored episodes are closed as truncated. This happens when learn() resets the env.",
                stacklevel=2,
            )
            for env_idx in interrupted:
                self._close_episode(env_idx)
        for env_idx, start in self._ring.write_step(self.pos, pixels, next_pixels, starts):
            if self.ep_start[start, env_idx] == start:  # the slot still holds that episode's first step
                self._evict(start, env_idx)
        # SB3 stores the vector keys, evicts at the write position and closes finished episodes.
        super().add(obs, next_obs, action, reward, done, infos)
        self._episode_steps += 1
        self._episode_steps[np.asarray(done, dtype=bool)] = 0

    def _evict(self, start: int, env_idx: int) -> None:
        """Make the finished episode starting at transition slot `start` unsampleable (SB3's eviction)."""
        length = self.ep_length[start, env_idx]
        if length > 0:
            self.ep_length[np.arange(start, start + length) % self.buffer_size, env_idx] = 0

    def _close_episode(self, env_idx: int) -> None:
        """Mark the env's unfinished episode as ended at the last stored step (SB3's truncation)."""
        self.dones[self.pos - 1, env_idx] = True
        self._compute_episode_length(env_idx)
        if self.handle_timeout_termination:
            self.timeouts[self.pos - 1, env_idx] = True  # not a real timeout: lets the critic bootstrap
        self._episode_steps[env_idx] = 0

    def truncate_last_trajectory(self) -> None:
        """Close every unfinished episode so it can be sampled; new episodes then start cleanly.

        SB3's `load_replay_buffer` calls it (unless `truncate_last_traj=False`). The last
        stored step of each unfinished episode becomes `done` (and a timeout, when
        `handle_timeout_termination`, so the critic still bootstraps), and
        `_current_ep_start` moves to the write position; a warning says so.
        """
        super().truncate_last_trajectory()
        self._episode_steps[:] = 0

    def reset(self) -> None:
        """Empty the buffer (capacity, options and device are kept)."""
        super().reset()
        self._set_transitions(self._layout.transitions.allocate())
        self._current_ep_start = np.zeros(self.n_envs, dtype=np.int64)
        self._episode_steps = np.zeros(self.n_envs, dtype=np.int64)
        self._ring.reset()

    def set_env(self, env: VecEnv) -> None:
        """Set the env after unpickling (SB3's `load_replay_buffer` calls it) and check it can relabel.

        Args:
            env: The training VecEnv.

        Raises:
            ValueError: If an env is already set, a goal key is missing or the env has no
                `compute_reward`.
        """
        check_goal_env(self.observation_space, env)
        super().set_env(env)
        self._rewards_checked = False

    def __getstate__(self) -> dict[str, Any]:
        """The state without the env, arrays cut to their filled rows, frames as host arrays."""
        rows = self.buffer_size if self.full else self.pos
        return pickled_state(super().__getstate__(), self._transitions(), self._ring.state_dict(rows), rows)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Re-allocate full capacity and copy the saved rows in (older formats are converted first).

        Raises:
            ValueError: If the state was written in a format this version cannot read.
        """
        attributes, transitions, ring_state = unpickled_state(state)
        super().__setstate__({"compute_reward": None, **attributes})  # None: saved before in-process rewards
        self._set_transitions(transitions)
        self._ring = FrameRing.from_state_dict(ring_state, name=self.pixel_key)
        self._rewards_checked = False

    # -- sampling ------------------------------------------------------------------------------

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        """Sample a HER batch with SB3's `HerReplayBuffer.sample`, add its pixel stacks, augment its images.

        Args:
            batch_size: Number of transitions.
            env: Optional `VecNormalize` to normalise the vector keys and rewards.

        Returns:
            The batch: pixels `(B, C, H, W)` uint8, vector keys in their stored dtype,
            actions `(B, action_dim)`, rewards and dones `(B, 1)` float32, all on `device`;
            with `n_steps > 1`, n-step rewards, dones and `next_observations`, and
            `discounts` `(B, 1)` float32 (`gamma ** k`), else `discounts` None.

        Raises:
            RuntimeError: Before the first episode has finished.
            ValueError: On the first relabelled batch, if `compute_reward` fails or does not
                return one reward per row.
        """
        batch = super().sample(batch_size, env)
        ahead = None
        if self.n_steps > 1:
            rows = batch.observations[self.pixel_key].numpy()
            goals = self._drawn_goals
            del self._drawn_goals  # this batch's only
            batch, ahead = n_step_samples(
                self, batch, rows[:, 0], rows[:, 1], goals, n_steps=self.n_steps, gamma=self.gamma, env=env
            )
        # n-step: next_obs stacks are gathered at step t+k-1 directly, in the same single gather.
        gather = partial(self._pixel_stacks, ahead=ahead)
        batch = with_rows_gathered(batch, self.pixel_key, gather, self.device, self.observation_space)
        return self.sample_augmentation(batch)

    def _sample_goals(self, batch_indices: Array, env_indices: Array) -> Array:
        goals = super()._sample_goals(batch_indices, env_indices)
        if self.n_steps > 1:
            self._drawn_goals = goals  # SB3 returns them normalised; n-step rewards need them as drawn
        return goals

    def _get_real_samples(
        self, batch_indices: Array, env_indices: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        samples = super()._get_real_samples(batch_indices, env_indices, env)
        return with_row_ids(samples, self.pixel_key, batch_indices, env_indices)

    def _get_virtual_samples(
        self, batch_indices: Array, env_indices: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        if not self._rewards_checked and len(batch_indices):
            check_relabelled_rewards(self, batch_indices, env_indices)
            self._rewards_checked = True
        if self.compute_reward is None:
            samples = super()._get_virtual_samples(batch_indices, env_indices, env)
        else:
            samples = virtual_samples(self, batch_indices, env_indices, env)
        return with_row_ids(samples, self.pixel_key, batch_indices, env_indices)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        raise NotImplementedError("CompactHerReplayBuffer samples whole-episode transitions only; call sample().")

    def _pixel_stacks(self, batch_indices: Array, env_indices: Array, ahead: Array | None = None) -> th.Tensor:
        """`(2, B, C, H, W)` uint8 obs and next_obs stacks (next_obs `ahead` steps on), where the frames live."""
        steps = (batch_indices - self.ep_start[batch_indices, env_indices]) % self.buffer_size
        return self._ring.stacks(batch_indices, env_indices, steps, ahead)

    def get_observations(self, batch_indices: Array, env_indices: Array) -> tuple[ObsDict, ObsDict]:
        """Rebuild the stored `obs` and `next_obs` of transitions in finished episodes.

        Args:
            batch_indices: `(B,)` int transition slots in `[0, buffer_size // n_envs)`.
            env_indices: `(B,)` int env indices.

        Returns:
            `(obs, next_obs)`: dicts of `(B, ...)` NumPy arrays, pixels `(B, C, H, W)` uint8,
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
        pixels = self._pixel_stacks(batch_indices, env_indices).cpu().numpy()

        def rebuilt(vectors: ObsDict, frames: Array) -> ObsDict:
            picked = {key: array[batch_indices, env_indices] for key, array in vectors.items()}
            return {key: frames if key == self.pixel_key else picked[key] for key in self.observation_space.spaces}

        return rebuilt(self.observations, pixels[0]), rebuilt(self.next_observations, pixels[1])
