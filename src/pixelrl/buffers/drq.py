"""DrQ replay buffers: SB3's dict and HER buffers with image augmentation at sample time.

Storage and sampling are SB3's; each buffer holds a
[SampleAugmentation][pixelrl.buffers.SampleAugmentation] and applies it to every batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.her.goal_selection_strategy import GoalSelectionStrategy
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from pixelrl.buffers.augmentation import AugmentFn, SampleAugmentation, sample_augmentation_property
from pixelrl.buffers.goal_env import check_goal_env, check_relabelled_rewards
from pixelrl.buffers.her_rewards import RewardFn, virtual_samples
from pixelrl.buffers.nstep import check_n_step_options, n_step_samples
from pixelrl.buffers.row_ids import ROW_IDS_KEY, with_row_ids, without_row_ids

__all__ = ["AugmentFn", "DrQDictReplayBuffer", "HerDrQDictReplayBuffer", "check_goal_env"]

Array = np.ndarray[Any, Any]


def _upgraded(state: dict[str, Any]) -> dict[str, Any]:
    """A pickled DrQ buffer's state; those from before `SampleAugmentation` held its two fields as attributes."""
    if "sample_augmentation" in state:
        return state
    state = dict(state)
    state["sample_augmentation"] = SampleAugmentation(state.pop("image_keys"), state.pop("augmentation"))
    return state


class DrQDictReplayBuffer(DictReplayBuffer):
    """SB3's `DictReplayBuffer` with DrQ random-shift augmentation of sampled images.

    Storage is SB3's (images as uint8). At sample time, the image keys of `observations` and
    `next_observations` are augmented independently; actions, rewards, dones and vector
    keys (goals, proprioception) are returned untouched. With `pad=0` it returns exactly
    what `DictReplayBuffer` returns.

    Args:
        buffer_size: Maximum number of transitions (across all envs).
        observation_space: Dict observation space with at least one image key.
        action_space: Action space.
        device: Device of the sampled tensors.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be False (SB3's dict buffers do not support it).
        handle_timeout_termination: Bootstrap through time-limit truncations.
        pad: Maximum shift in pixels of `RandomShiftAug`. Default 4 (DrQ's choice on 84x84):
            a DrQ buffer augments unless told not to; 0 disables augmentation.
        augmentation: A picklable callable used instead of the random shift (it is saved with
            the buffer).
        aug_fn: The same as `augmentation` (another spelling; give one of the two).
        image_keys: Keys to augment; default every uint8 image key.
        image_key: One key to augment, the same as `image_keys=[image_key]`.

    Raises:
        ValueError: If there is no image key to augment or `pad < 0`.
        TypeError: If an option is given under both of its spellings.

    Examples:
        >>> from stable_baselines3 import SAC
        >>> import pixelrl  # registers "DrQv2SACPolicy"
        >>> SAC("DrQv2SACPolicy", "pixelrl/PointReach-v0",  # doctest: +SKIP
        ...     replay_buffer_class=DrQDictReplayBuffer, replay_buffer_kwargs=dict(pad=4))
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space[Any],
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        pad: int = 4,
        augmentation: AugmentFn | None = None,
        aug_fn: AugmentFn | None = None,
        image_keys: Sequence[str] | None = None,
        image_key: str | None = None,
    ) -> None:
        self.sample_augmentation = SampleAugmentation.from_options(
            observation_space, pad=pad, augmentation=augmentation, aug_fn=aug_fn, image_keys=image_keys,
            image_key=image_key,
        )  # fmt: skip
        super().__init__(
            buffer_size=buffer_size,
            observation_space=observation_space,
            action_space=action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )

    augmentation = sample_augmentation_property("augmentation")
    image_keys = sample_augmentation_property("image_keys")

    def _get_samples(  # type: ignore[override]
        self, batch_inds: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        return self.sample_augmentation(super()._get_samples(batch_inds, env))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(_upgraded(state))


class HerDrQDictReplayBuffer(HerReplayBuffer):
    """SB3's `HerReplayBuffer` followed by DrQ augmentation of the sampled images.

    HER builds the batch first (real transitions plus relabelled ones, with rewards from the
    env's `compute_reward` on the goal VECTORS, or from an in-process ``compute_reward``); then
    the image keys of `observations` and `next_observations` are shifted independently. Goals,
    rewards, dones and actions are never augmented, so
    `reward == compute_reward(next achieved_goal, desired_goal)` still holds for every
    relabelled row. With `pad=0` it returns exactly what `HerReplayBuffer` returns.

    With `n_steps > 1` SB3 draws the same rows and goals, and each row's reward, `next_obs`,
    done and `discounts` become n-step ones (`pixelrl.buffers.nstep`) before augmentation: a
    relabelled row sums `compute_reward` of every step's achieved goal with ITS relabelled goal,
    and its `next_obs` (all keys at step `t+k-1`) keeps that goal.

    Args:
        buffer_size: Maximum number of transitions (across all envs).
        observation_space: Dict space with `achieved_goal`, `desired_goal` and an image key.
        action_space: Action space.
        env: The training VecEnv (SAC passes it); `None` only when unpickling.
        device: Device of the sampled tensors.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be False.
        handle_timeout_termination: Bootstrap through time-limit truncations.
        n_sampled_goal: Relabelled transitions per real one (HER ratio `k / (k + 1)`).
        goal_selection_strategy: `"future"`, `"final"` or `"episode"`.
        copy_info_dict: Store info dicts and pass them to `compute_reward`.
        pad: Maximum shift of `RandomShiftAug`. Default 4: a DrQ buffer augments unless told
            not to (`CompactHerReplayBuffer` defaults to 0); 0 disables augmentation.
        augmentation: A picklable callable used instead of the random shift.
        aug_fn: The same as `augmentation` (another spelling; give one of the two).
        image_keys: Keys to augment; default every uint8 image key.
        image_key: One key to augment, the same as `image_keys=[image_key]`.
        n_steps: n-step returns (SB3's `NStepReplayBuffer` spelling); 1 (default) is SB3's
            one-step HER sampling and leaves `discounts` None. `DrQv2SAC(n_steps=...)` sets it.
        gamma: Discount factor of the n-step sums and of `discounts = gamma ** k`; give the
            algorithm's `gamma`.
        compute_reward: Computes relabelled rewards in this process instead of SB3's
            ``env.env_method("compute_reward", ...)`` (an IPC call per batch under `SubprocVecEnv`),
            e.g. `EnvComputeReward`. Only for envs whose ``compute_reward`` is a pure function of
            the goals (`pixelrl.buffers.her_rewards`); picklable (saved with the buffer).

    Raises:
        ValueError: If goal keys are missing, the env has no `compute_reward`, there is no
            image key, `pad < 0`, `n_steps < 1` or `gamma` is outside `[0, 1]`. The first
            relabelled batch raises it too if `compute_reward` fails or does not return one
            reward per row.
        TypeError: If an option is given under both of its spellings.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space[Any],
        env: VecEnv,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_sampled_goal: int = 4,
        goal_selection_strategy: GoalSelectionStrategy | str = "future",
        copy_info_dict: bool = False,
        *,
        pad: int = 4,
        augmentation: AugmentFn | None = None,
        aug_fn: AugmentFn | None = None,
        image_keys: Sequence[str] | None = None,
        image_key: str | None = None,
        n_steps: int = 1,
        gamma: float = 0.99,
        compute_reward: RewardFn | None = None,
    ) -> None:
        check_n_step_options(n_steps, gamma)
        self.sample_augmentation = SampleAugmentation.from_options(
            observation_space, pad=pad, augmentation=augmentation, aug_fn=aug_fn, image_keys=image_keys,
            image_key=image_key,
        )  # fmt: skip
        if env is not None:
            check_goal_env(observation_space, env)
        super().__init__(
            buffer_size=buffer_size,
            observation_space=observation_space,
            action_space=action_space,
            env=env,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
            n_sampled_goal=n_sampled_goal,
            goal_selection_strategy=goal_selection_strategy,
            copy_info_dict=copy_info_dict,
        )
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)
        self.compute_reward = compute_reward
        self._rewards_checked = False

    _drawn_goals: Array
    augmentation = sample_augmentation_property("augmentation")
    image_keys = sample_augmentation_property("image_keys")

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

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Saved before n-step returns (no n_steps: one-step sampling as it had) or in-process rewards.
        super().__setstate__({"n_steps": 1, "gamma": 0.99, "compute_reward": None, **_upgraded(state)})
        self._rewards_checked = False

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        """Sample a HER batch (real + relabelled), then augment its images.

        HER merges `_get_real_samples` and `_get_virtual_samples` without going through
        `_get_samples`, so augmentation (and n-step returns) hook `sample` itself.

        Args:
            batch_size: Number of transitions.
            env: Optional `VecNormalize` to normalise observations and rewards.

        Returns:
            The augmented batch; with `n_steps > 1` its rewards, dones and `next_observations`
            are n-step ones and `discounts` is `(B, 1)` float32 `gamma ** k` (else None).

        Raises:
            ValueError: On the first relabelled batch, if `compute_reward` fails or does not
                return one reward per row.
        """
        batch = super().sample(batch_size, env)
        if self.n_steps > 1:
            batch, rows = without_row_ids(batch, ROW_IDS_KEY)
            goals = self._drawn_goals
            del self._drawn_goals  # this batch's only
            batch, _ = n_step_samples(
                self, batch, rows[:, 0], rows[:, 1], goals, n_steps=self.n_steps, gamma=self.gamma, env=env
            )
        return self.sample_augmentation(batch)

    def _get_real_samples(
        self, batch_indices: Array, env_indices: Array, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        samples = super()._get_real_samples(batch_indices, env_indices, env)
        return with_row_ids(samples, ROW_IDS_KEY, batch_indices, env_indices) if self.n_steps > 1 else samples

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
        return with_row_ids(samples, ROW_IDS_KEY, batch_indices, env_indices) if self.n_steps > 1 else samples

    def _sample_goals(self, batch_indices: Array, env_indices: Array) -> Array:
        goals = super()._sample_goals(batch_indices, env_indices)
        if self.n_steps > 1:
            self._drawn_goals = goals  # SB3 returns them normalised; n-step rewards need them as drawn
        return goals
