"""DrQ replay buffers: SB3's dict and HER buffers with image augmentation at sample time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.her.goal_selection_strategy import GoalSelectionStrategy
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from pixelrl.buffers.augmentation import RandomShiftAug

__all__ = ["AugmentFn", "DrQDictReplayBuffer", "HerDrQDictReplayBuffer", "check_goal_env"]

AugmentFn = Callable[[th.Tensor], th.Tensor]
"""Maps a ``(B, C, H, W)`` image batch to an augmented batch of the same shape and dtype."""


def _image_keys(observation_space: spaces.Dict, image_keys: Sequence[str] | None) -> tuple[str, ...]:
    """The keys to augment: the given ones (checked) or every uint8 image key of the space."""
    if image_keys is None:
        found = tuple(key for key, sub in observation_space.spaces.items() if is_image_space(sub, check_channels=False))
        if not found:
            raise ValueError(
                f"No image key to augment in the observation space {list(observation_space.spaces)}: images must "
                "be Box(0, 255, (C, H, W), uint8). Pass image_keys=[...] or use SB3's DictReplayBuffer."
            )
        return found
    unknown = [key for key in image_keys if key not in observation_space.spaces]
    if unknown:
        raise ValueError(f"image_keys {unknown} are not in the observation space {list(observation_space.spaces)}.")
    return tuple(image_keys)


class _ImageAugmentation:
    """Augments the image keys of sampled observations, obs and next_obs independently.

    Shared by both DrQ buffers; everything else (storage, HER) is SB3's.
    """

    augmentation: AugmentFn | None
    image_keys: tuple[str, ...]

    def _setup_augmentation(
        self,
        observation_space: spaces.Dict,
        pad: int,
        augmentation: AugmentFn | None,
        image_keys: Sequence[str] | None,
    ) -> None:
        if pad < 0:
            raise ValueError(f"pad must be >= 0 (0 disables the shift), got {pad}.")
        self.image_keys = _image_keys(observation_space, image_keys)
        if augmentation is not None:
            self.augmentation = augmentation
        else:
            self.augmentation = RandomShiftAug(pad=pad) if pad > 0 else None

    def _augment(self, samples: DictReplayBufferSamples) -> DictReplayBufferSamples:
        if self.augmentation is None:
            return samples
        # Two independent draws: DrQ's regulariser sees a different view of obs and next_obs.
        observations = dict(samples.observations)
        next_observations = dict(samples.next_observations)
        for key in self.image_keys:
            observations[key] = self.augmentation(observations[key])
            next_observations[key] = self.augmentation(next_observations[key])
        return samples._replace(observations=observations, next_observations=next_observations)


class DrQDictReplayBuffer(_ImageAugmentation, DictReplayBuffer):
    """SB3's ``DictReplayBuffer`` with DrQ random-shift augmentation of sampled images.

    Storage is SB3's (images as uint8). At sample time, the image keys of ``observations`` and
    ``next_observations`` are augmented independently; actions, rewards, dones and vector
    keys (goals, proprioception) are returned untouched. With ``pad=0`` it returns exactly
    what ``DictReplayBuffer`` returns.

    Args:
        buffer_size: Maximum number of transitions (across all envs).
        observation_space: Dict observation space with at least one image key.
        action_space: Action space.
        device: Device of the sampled tensors.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be False (SB3's dict buffers do not support it).
        handle_timeout_termination: Bootstrap through time-limit truncations.
        pad: Maximum shift in pixels of :class:`RandomShiftAug` (4 on 84x84 is DrQ's choice);
            0 disables augmentation.
        augmentation: A picklable callable used instead of the random shift (it is saved with
            the buffer).
        image_keys: Keys to augment; default every uint8 image key.

    Raises:
        ValueError: If there is no image key to augment or ``pad < 0``.

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
        image_keys: Sequence[str] | None = None,
    ) -> None:
        self._setup_augmentation(observation_space, pad, augmentation, image_keys)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray[Any, Any], env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        return self._augment(super()._get_samples(batch_inds, env))


def check_goal_env(observation_space: spaces.Dict, env: VecEnv) -> None:
    """Check that HER can relabel this env: goal keys present and ``compute_reward`` callable.

    Args:
        observation_space: The observation space the buffer stores.
        env: The training VecEnv.

    Raises:
        ValueError: If a goal key is missing or the env has no working batched ``compute_reward``.
    """
    missing = [key for key in ("achieved_goal", "desired_goal") if key not in observation_space.spaces]
    if missing:
        raise ValueError(
            f"HER needs 'achieved_goal' and 'desired_goal' in the observation; {missing} missing from "
            f"{list(observation_space.spaces)}. With PixelObservationWrapper use goal_mode='both' or 'strict'."
        )
    fix = (
        "HER recomputes rewards with env.compute_reward(achieved_goal, desired_goal, info). Wrap goal envs "
        "with PixelObservationWrapper (it forwards compute_reward through gymnasium's wrappers) or use a "
        "buffer without HER."
    )
    if not env.has_attr("compute_reward"):
        raise ValueError(f"The env has no compute_reward method. {fix}")
    goal_space = observation_space["achieved_goal"]
    probe = np.zeros((2, *(goal_space.shape or ())), dtype=goal_space.dtype)
    try:
        rewards = env.env_method("compute_reward", probe, probe, [{}, {}], indices=[0])[0]
    except Exception as exc:  # whatever the env raises, HER cannot use it
        raise ValueError(
            f"env.compute_reward failed on a batch of 2 goals ({type(exc).__name__}: {exc}). {fix}"
        ) from exc
    if np.shape(rewards) != (2,):
        raise ValueError(
            f"compute_reward must accept batches of goals and return one reward per row; for 2 goals it "
            f"returned shape {np.shape(rewards)}. Vectorise it over the leading axis."
        )


class HerDrQDictReplayBuffer(_ImageAugmentation, HerReplayBuffer):
    """SB3's ``HerReplayBuffer`` followed by DrQ augmentation of the sampled images.

    HER builds the batch first (real transitions plus relabelled ones, with rewards from the
    env's ``compute_reward`` on the goal VECTORS); then the image keys of ``observations`` and
    ``next_observations`` are shifted independently. Goals, rewards, dones and actions are
    never augmented, so ``reward == compute_reward(next achieved_goal, desired_goal)`` still
    holds for every relabelled row. With ``pad=0`` it returns exactly what ``HerReplayBuffer``
    returns.

    Args:
        buffer_size: Maximum number of transitions (across all envs).
        observation_space: Dict space with ``achieved_goal``, ``desired_goal`` and an image key.
        action_space: Action space.
        env: The training VecEnv (SAC passes it); ``None`` only when unpickling.
        device: Device of the sampled tensors.
        n_envs: Number of parallel environments.
        optimize_memory_usage: Must be False.
        handle_timeout_termination: Bootstrap through time-limit truncations.
        n_sampled_goal: Relabelled transitions per real one (HER ratio ``k / (k + 1)``).
        goal_selection_strategy: ``"future"``, ``"final"`` or ``"episode"``.
        copy_info_dict: Store info dicts and pass them to ``compute_reward``.
        pad: Maximum shift of :class:`RandomShiftAug`; 0 disables augmentation.
        augmentation: A picklable callable used instead of the random shift.
        image_keys: Keys to augment; default every uint8 image key.

    Raises:
        ValueError: If goal keys are missing, the env cannot ``compute_reward`` on batches,
            there is no image key, or ``pad < 0``.
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
        image_keys: Sequence[str] | None = None,
    ) -> None:
        self._setup_augmentation(observation_space, pad, augmentation, image_keys)
        if env is not None:
            check_goal_env(observation_space, env)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            env=env,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
            n_sampled_goal=n_sampled_goal,
            goal_selection_strategy=goal_selection_strategy,
            copy_info_dict=copy_info_dict,
        )

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        """Sample a HER batch (real + relabelled), then augment its images.

        HER merges ``_get_real_samples`` and ``_get_virtual_samples`` without going through
        ``_get_samples``, so augmentation hooks ``sample`` itself.

        Args:
            batch_size: Number of transitions.
            env: Optional ``VecNormalize`` to normalise observations and rewards.

        Returns:
            The augmented batch.
        """
        return self._augment(super().sample(batch_size, env))
