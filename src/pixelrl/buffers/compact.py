"""CompactHerReplayBuffer: SB3's HER buffer storing each camera frame once, stacks rebuilt at sample time."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.her.goal_selection_strategy import GoalSelectionStrategy
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from pixelrl.buffers.compact_frames import FrameStore
from pixelrl.buffers.compact_layout import CompactLayout, check_her_options, warn_if_too_large
from pixelrl.buffers.drq import AugmentFn, _ImageAugmentation, check_goal_env

__all__ = ["CompactHerReplayBuffer"]

Array = np.ndarray[Any, Any]
ObsDict = dict[str, Array]


class CompactHerReplayBuffer(_ImageAugmentation, HerReplayBuffer, FrameStore):
    """SB3's ``HerReplayBuffer`` that stores each camera frame once instead of two frame stacks.

    SB3 stores ``obs`` and ``next_obs`` (each ``frame_stack`` frames) for every transition:
    169,600 B for the chapter's ``(12, 84, 84)`` observation. Consecutive stacks share all but
    one frame, so this buffer keeps, per env, a ring of single frames (the first frame of each
    episode plus the one new frame of every step) and per transition the slot of its newest
    frame; stacks are rebuilt at sample time exactly as :class:`PixelObservationWrapper` built
    them (the first frame repeated at episode start). The true last frame of an episode is
    kept, so a terminal transition's next observation is the env's terminal observation, never
    the reset frame. Vector keys (goals, proprioception) are stored for obs and next_obs as SB3
    does. At capacity a transition costs about 1.04 frames (22.3 KB for the chapter).

    Sampling is SB3's, draw for draw: the same valid transitions (whole finished episodes), the
    same ``np.random`` calls, real rows first, ``her_ratio = 1 - 1 / (n_sampled_goal + 1)``,
    relabelled rewards from ``env.env_method("compute_reward", ...)``; so with the same seed and
    data it returns SB3's batch. Then the optional DrQ shift augments the pixel key(s), obs and
    next_obs independently; goals and rewards are never augmented.

    Episodes are evicted whole and oldest first: when the transition ring reaches an episode's
    first transition (as SB3 does), or when the frame ring reaches its first frame. The frame
    ring has ``rows + rows // min_episode_length + 1`` slots per env, so it only binds first
    when episodes are shorter than ``min_episode_length``; the buffer then holds fewer than
    ``buffer_size`` transitions, never a wrong one.

    ``add`` checks every step, for each env, that ``obs`` pixels equal the previous step's
    ``next_obs`` pixels, that ``next_obs`` pixels are ``obs`` shifted by one frame, and at episode
    start that the stack repeats one frame; a violation raises ``ValueError`` (e.g. a
    zero-padded stack, or a ``next_obs`` that is the reset observation instead of the terminal
    one). When a step starts from a fresh reset in the middle of a stored episode (``learn``
    called again with ``reset_num_timesteps=True``), the stored episode is closed as truncated
    (like :meth:`truncate_last_trajectory`) with a warning.

    Args:
        buffer_size: Maximum number of transitions, summed over envs.
        observation_space: Dict space with ``achieved_goal``, ``desired_goal`` and the stacked
            frames ``Box(0, 255, (C, H, W), uint8)`` under ``pixel_key``.
        action_space: Action space.
        env: The training VecEnv (SAC passes it); ``None`` only when unpickling.
        device: Device of the sampled tensors.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be False (frames are already stored once).
        handle_timeout_termination: Bootstrap through time-limit truncations.
        n_sampled_goal: Relabelled transitions per real one.
        goal_selection_strategy: ``"future"``, ``"final"`` or ``"episode"``.
        copy_info_dict: Store info dicts and pass them to ``compute_reward``.
        frame_stack: Frames per observation; default ``C // 3`` (RGB frames).
        pixel_key: Key of the stacked frames.
        pad: Maximum shift of :class:`RandomShiftAug`; 0 (default) disables augmentation.
        augmentation: A picklable callable used instead of the random shift.
        image_keys: Keys to augment; default every uint8 image key.
        min_episode_length: Shortest episode the frame ring is sized for (see above).
        frames_device: Where the frame ring lives. ``None`` (default): host memory. A torch
            device (``"cuda"``, or ``"auto"`` for CUDA when present, else host memory): the ring
            is a tensor kept there and
            stacks are gathered there, so training on a GPU copies only each step's new frames
            to it instead of a 43 MB batch per update (the chapter's 84 x 84 x 4 stacks at batch
            256). Saved buffers always hold host arrays; loading one on a machine without
            that device keeps the frames in host memory, with a warning.

    Raises:
        ValueError: If the pixel key is missing or not ``(C, H, W)`` uint8, ``frame_stack`` does
            not divide ``C``, goal keys are missing, the env cannot ``compute_reward``,
            ``optimize_memory_usage`` is set, an option is out of range, or the frame ring does
            not fit in the free memory of ``frames_device``.

    Examples:
        >>> from stable_baselines3 import SAC
        >>> import pixelrl  # registers "DrQv2SACPolicy"
        >>> SAC("DrQv2SACPolicy", vec_env, buffer_size=500_000,  # doctest: +SKIP
        ...     replay_buffer_class=CompactHerReplayBuffer, replay_buffer_kwargs=dict(n_sampled_goal=8))
    """

    env: VecEnv | None
    infos: Array
    _current_ep_start: Array

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
        image_keys: Sequence[str] | None = None,
        min_episode_length: int = 25,
        frames_device: th.device | str | None = None,
    ) -> None:
        layout = CompactLayout.build(
            buffer_size, observation_space, action_space, n_envs, frame_stack, pixel_key, copy_info_dict,
            min_episode_length,
        )  # fmt: skip
        strategy = check_her_options(optimize_memory_usage, n_sampled_goal, goal_selection_strategy)
        self._setup_augmentation(observation_space, pad, augmentation, image_keys)
        if env is not None:
            check_goal_env(observation_space, env)
        # HerReplayBuffer.__init__ would allocate obs and next_obs at full size (SB3's layout);
        # only BaseBuffer's bookkeeping is wanted.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = layout.rows
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.env = env
        self.copy_info_dict = copy_info_dict
        self.goal_selection_strategy = strategy
        self.n_sampled_goal = n_sampled_goal
        self.her_ratio = 1 - (1.0 / (self.n_sampled_goal + 1))
        self.pixel_key = pixel_key
        self.min_episode_length = min_episode_length
        self._layout = layout
        self.frames_device = None if frames_device is None else get_device(frames_device)
        if frames_device == "auto" and self.frames_device is not None and self.frames_device.type == "cpu":
            self.frames_device = None  # no CUDA: the NumPy ring is the fast path in host memory
        self._assign(layout.allocate())
        self._place_frames()
        warn_if_too_large(self.nbytes if self.frames_device is None else self.nbytes - self.frames.nbytes)

    # -- layout ------------------------------------------------------------------------------

    @classmethod
    def estimate_nbytes(
        cls,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space[Any],
        n_envs: int = 1,
        frame_stack: int | None = None,
        pixel_key: str = "pixels",
        *,
        copy_info_dict: bool = False,
        min_episode_length: int = 25,
    ) -> int:
        """Bytes the buffer allocates at full capacity, computed without allocating anything.

        Args:
            buffer_size: Capacity in transitions, summed over envs.
            observation_space: The Dict observation space.
            action_space: The action space.
            n_envs: Number of parallel envs.
            frame_stack: Frames per observation; default ``C // 3``.
            pixel_key: Key of the stacked frames.
            copy_info_dict: Whether info dicts are stored (their 8-byte pointers are counted,
                not the dicts).
            min_episode_length: As in the constructor.

        Returns:
            Exactly :attr:`nbytes` of a buffer built with the same arguments.

        Raises:
            ValueError: For the configurations the constructor rejects.

        Examples:
            >>> from gymnasium import spaces
            >>> space = spaces.Dict({"pixels": spaces.Box(0, 255, (12, 84, 84), np.uint8),
            ...                      "achieved_goal": spaces.Box(-1, 1, (3,)), "desired_goal": spaces.Box(-1, 1, (3,))})
            >>> CompactHerReplayBuffer.estimate_nbytes(500_000, space, spaces.Box(-1, 1, (4,))) // 500_000
            22123
        """
        layout = CompactLayout.build(
            buffer_size, observation_space, action_space, n_envs, frame_stack, pixel_key, copy_info_dict,
            min_episode_length,
        )  # fmt: skip
        return layout.nbytes

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
            obs: Observation dict before the step, each entry ``(n_envs, ...)``; pixels
                ``(n_envs, C, H, W)`` uint8.
            next_obs: Observation after the step, with the terminal observation in place of
                the reset one for envs that are done (as SAC's ``_store_transition`` passes it).
            action: ``(n_envs, action_dim)`` actions.
            reward: ``(n_envs,)`` rewards.
            done: ``(n_envs,)`` episode ends (terminated or truncated).
            infos: One info dict per env (``TimeLimit.truncated`` marks timeouts).

        Raises:
            ValueError: If the pixels do not form consistent frame stacks (see the class
                docstring) or an episode outgrows the per-env capacity. Nothing is stored then.
        """
        pixels, next_pixels = np.asarray(obs[self.pixel_key]), np.asarray(next_obs[self.pixel_key])
        expected = (self.n_envs, *self._last_next_pixels.shape[1:])
        if pixels.shape != expected or next_pixels.shape != expected:
            raise ValueError(
                f"add expected {self.pixel_key!r} pixels of shape {expected} (n_envs, C, H, W) for obs and next_obs, "
                f"got {pixels.shape} and {next_pixels.shape}."
            )
        starts, interrupted = self._check_stacks(pixels, next_pixels)
        if interrupted:
            warnings.warn(
                f"Env(s) {interrupted} started a new episode (a reset) while their stored episode was unfinished; "
                "the stored episodes are closed as truncated. This happens when learn() resets the env.",
                stacklevel=2,
            )
            for env_idx in interrupted:
                self._close_episode(env_idx)
        pos = self.pos
        for env_idx in range(self.n_envs):
            # SB3's eviction: a finished episode whose first transition is overwritten goes whole.
            length = self.ep_length[pos, env_idx]
            if length > 0:
                end = self.ep_start[pos, env_idx] + length
                self.ep_length[np.arange(pos, end) % self.buffer_size, env_idx] = 0
        self.ep_start[pos] = self._current_ep_start
        if self.copy_info_dict:
            self.infos[pos] = infos
        for key in self._layout.vector_keys:
            shape = (self.n_envs, *self.obs_shape[key])
            self.observations[key][pos] = np.asarray(obs[key]).reshape(shape)
            self.next_observations[key][pos] = np.asarray(next_obs[key]).reshape(shape)
        self.actions[pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[pos] = np.asarray(reward)
        self.dones[pos] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[pos] = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        self._write_frames(pos, starts, pixels, next_pixels)
        self._episode_steps += 1
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0
        for finished in np.flatnonzero(np.asarray(done)):
            self._compute_episode_length(int(finished))
            self._episode_steps[finished] = 0

    def _close_episode(self, env_idx: int) -> None:
        """Mark the env's unfinished episode as ended at the last stored step (SB3's truncation)."""
        self.dones[self.pos - 1, env_idx] = True
        self._compute_episode_length(env_idx)
        if self.handle_timeout_termination:
            self.timeouts[self.pos - 1, env_idx] = True  # not a real timeout: lets the critic bootstrap
        self._episode_steps[env_idx] = 0

    def truncate_last_trajectory(self) -> None:
        """Close every unfinished episode so it can be sampled; new episodes then start cleanly.

        SB3's ``load_replay_buffer`` calls it (unless ``truncate_last_traj=False``). The last
        stored step of each unfinished episode becomes ``done`` (and a timeout, when
        ``handle_timeout_termination``, so the critic still bootstraps), and
        ``_current_ep_start`` moves to the write position.
        """
        unfinished = np.flatnonzero(self._episode_steps > 0)
        if unfinished.size:
            warnings.warn(
                "The last trajectory in the replay buffer will be truncated.\n"
                "If you are in the same episode as when the replay buffer was saved,\n"
                "you should use `truncate_last_trajectory=False` to avoid that issue.",
                stacklevel=2,
            )
        for env_idx in unfinished:
            self._close_episode(int(env_idx))

    def reset(self) -> None:
        """Empty the buffer (capacity and arrays are kept)."""
        super().reset()
        self._assign(self._layout.allocate())
        self._place_frames()

    def set_env(self, env: VecEnv) -> None:
        """Set the env after unpickling (SB3's ``load_replay_buffer`` calls it) and check it can relabel.

        Args:
            env: The training VecEnv.

        Raises:
            ValueError: If an env is already set or it has no batched ``compute_reward``.
        """
        check_goal_env(self.observation_space, env)
        super().set_env(env)

    def __getstate__(self) -> dict[str, Any]:
        return self._pickled_state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_state(state)

    # -- sampling ------------------------------------------------------------------------------

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        """Sample a HER batch as SB3 does (real rows first, then relabelled), then augment its images.

        Args:
            batch_size: Number of transitions.
            env: Optional ``VecNormalize`` to normalise observations and rewards.

        Returns:
            The batch: pixels ``(B, C, H, W)`` uint8, vector keys in their stored dtype,
            actions ``(B, action_dim)``, rewards and dones ``(B, 1)`` float32.

        Raises:
            RuntimeError: Before the first episode has finished.
        """
        is_valid = self.ep_length > 0
        if not np.any(is_valid):
            raise RuntimeError(
                "Unable to sample before the end of the first episode. We recommend choosing a value "
                "for learning_starts that is greater than the maximum number of timesteps in the environment."
            )
        # SB3's global RNG and call order, so a seed reproduces SB3's batch.
        sampled = np.random.choice(np.flatnonzero(is_valid), size=batch_size, replace=True)  # noqa: NPY002
        batch_indices, env_indices = np.unravel_index(sampled, is_valid.shape)
        nb_virtual = int(self.her_ratio * batch_size)
        virtual_batch, real_batch = np.split(batch_indices, [nb_virtual])
        virtual_env, real_env = np.split(env_indices, [nb_virtual])
        return self._augment(self._samples(real_batch, real_env, virtual_batch, virtual_env, env))

    def _get_real_samples(
        self, batch_indices: Array, env_indices: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        empty = np.zeros(0, dtype=np.int64)
        return self._samples(batch_indices, env_indices, empty, empty, env)

    def _get_virtual_samples(
        self, batch_indices: Array, env_indices: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        empty = np.zeros(0, dtype=np.int64)
        return self._samples(empty, empty, batch_indices, env_indices, env)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        raise NotImplementedError("CompactHerReplayBuffer samples whole-episode transitions only; call sample().")

    def _tensor(self, value: Any) -> th.Tensor:
        if isinstance(value, th.Tensor):  # pixels gathered on frames_device
            return value.to(self.device)
        return self.to_torch(value, copy=False)

    def _samples(
        self,
        real_batch: Array,
        real_env: Array,
        virtual_batch: Array,
        virtual_env: Array,
        env: VecNormalize | None,
    ) -> DictReplayBufferSamples:
        """Real rows then relabelled rows, in one gather (SB3 gathers them apart and concatenates)."""
        batch_indices = np.concatenate((real_batch, virtual_batch))
        env_indices = np.concatenate((real_env, virtual_env))
        n_real = len(real_batch)
        obs, next_obs = self._rebuild(batch_indices, env_indices)
        rewards = self.rewards[batch_indices, env_indices].reshape(-1, 1)
        if len(virtual_batch):
            new_goals = self._sample_goals(virtual_batch, virtual_env)
            obs["desired_goal"][n_real:] = new_goals
            next_obs["desired_goal"][n_real:] = new_goals
            infos: Any
            if self.copy_info_dict:
                infos = copy.deepcopy(self.infos[virtual_batch, virtual_env])
            else:
                infos = [{} for _ in range(len(virtual_batch))]
            assert self.env is not None, (
                "CompactHerReplayBuffer needs a VecEnv to compute rewards for relabelled goals: pass env= or call "
                "set_env(env) after unpickling."
            )
            relabelled = self.env.env_method(
                "compute_reward", next_obs["achieved_goal"][n_real:], new_goals, infos, indices=[0]
            )[0]
            rewards[n_real:, 0] = np.asarray(relabelled, dtype=np.float32)
        not_timeout = 1 - self.timeouts[batch_indices, env_indices]
        dones = (self.dones[batch_indices, env_indices] * not_timeout).reshape(-1, 1)
        obs_ = self._normalize_obs(obs, env)
        next_obs_ = self._normalize_obs(next_obs, env)
        assert isinstance(obs_, dict)
        assert isinstance(next_obs_, dict)
        # Every array here is a fresh gather: tensors can share its memory (no second copy).
        return DictReplayBufferSamples(
            observations={key: self._tensor(value) for key, value in obs_.items()},
            actions=self.to_torch(self.actions[batch_indices, env_indices], copy=False),
            next_observations={key: self._tensor(value) for key, value in next_obs_.items()},
            dones=self.to_torch(dones, copy=False),
            rewards=self.to_torch(self._normalize_reward(rewards, env), copy=False),
        )
