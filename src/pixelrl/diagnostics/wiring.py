"""Which optimizer trains the encoder: the three SAC encoder wirings, built and probed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from pixelrl.encoders import ManipulationExtractor
from pixelrl.policies import WIRINGS, CriticEncoderCritic, Wiring, wiring_policy

__all__ = ["WIRINGS", "OptimizerMembership", "Wiring", "build_sac_policy", "optimizer_membership"]


def build_sac_policy(
    wiring: Wiring,
    observation_space: spaces.Space[Any],
    action_space: spaces.Box,
    *,
    learning_rate: float = 1e-4,
    features_extractor_class: type[BaseFeaturesExtractor] = ManipulationExtractor,
    features_extractor_kwargs: dict[str, Any] | None = None,
    **policy_kwargs: Any,
) -> SACPolicy:
    """Build a SAC policy with the given encoder wiring (the same policy SAC would build).

    Args:
        wiring: One of `WIRINGS`.
        observation_space: Observation space.
        action_space: Action space.
        learning_rate: Constant learning rate of both optimizers.
        features_extractor_class: Encoder class.
        features_extractor_kwargs: Encoder keyword arguments.
        **policy_kwargs: Other ``SACPolicy`` keyword arguments (``net_arch``, ...).

    Returns:
        The policy.

    Raises:
        ValueError: For an unknown wiring.
    """
    policy_class, wiring_kwargs = wiring_policy(wiring)
    return policy_class(
        observation_space=observation_space,
        action_space=action_space,
        lr_schedule=lambda _progress: learning_rate,
        features_extractor_class=features_extractor_class,
        features_extractor_kwargs=features_extractor_kwargs,
        **wiring_kwargs,
        **policy_kwargs,
    )


def _count_in(params: Iterable[nn.Parameter], optimizer: th.optim.Optimizer) -> int:
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return sum(id(p) in in_optimizer for p in params)


@dataclass(frozen=True)
class OptimizerMembership:
    """Where a SAC policy's encoder parameters live (counts are parameter tensors).

    Attributes:
        encoder_tensors: Parameter tensors in one encoder.
        actor_encoder_in_actor_opt: Of the actor's encoder, how many the actor optimizer holds.
        actor_encoder_in_critic_opt: Of the actor's encoder, how many the critic optimizer holds.
        critic_encoder_in_actor_opt: Of the critic's encoder, in the actor optimizer.
        critic_encoder_in_critic_opt: Of the critic's encoder, in the critic optimizer.
        shared: The actor and critic use the same encoder instance.
        target_separate: The target critic owns its own encoder instance.
        critic_gradient_gate: SB3's critic computes shared features with gradients disabled.
    """

    encoder_tensors: int
    actor_encoder_in_actor_opt: int
    actor_encoder_in_critic_opt: int
    critic_encoder_in_actor_opt: int
    critic_encoder_in_critic_opt: int
    shared: bool
    target_separate: bool
    critic_gradient_gate: bool

    @property
    def trained_by(self) -> str:
        """Which loss updates the encoder(s): ``"actor"``, ``"critic"`` or ``"actor+critic (separate)"``."""
        if not self.shared:
            return "actor+critic (separate)"
        by_actor = self.actor_encoder_in_actor_opt > 0
        by_critic = self.actor_encoder_in_critic_opt > 0 and not self.critic_gradient_gate
        if by_actor and by_critic:
            return "actor+critic (shared)"
        return "actor" if by_actor else "critic" if by_critic else "nothing"

    def as_dict(self) -> dict[str, Any]:
        """All fields plus `trained_by`, for JSON output."""
        return {**self.__dict__, "trained_by": self.trained_by}


def optimizer_membership(policy: SACPolicy) -> OptimizerMembership:
    """Report which optimizer holds the encoder parameters of a SAC policy.

    Args:
        policy: An SB3 ``SACPolicy`` (any wiring, including `DrQv2SACPolicy`).

    Returns:
        The membership counts and sharing flags.

    Examples:
        >>> import gymnasium as gym
        >>> import pixelrl.envs
        >>> from pixelrl.wrappers import PixelObservationWrapper
        >>> env = PixelObservationWrapper(gym.make("pixelrl/PointReach-v0", image_size=16), image_size=16)
        >>> report = optimizer_membership(build_sac_policy("drqv2", env.observation_space, env.action_space))
        >>> report.actor_encoder_in_actor_opt, report.trained_by
        (0, 'critic')
    """
    actor_encoder = list(policy.actor.features_extractor.parameters())
    critic_encoder = list(policy.critic.features_extractor.parameters())
    shared = policy.actor.features_extractor is policy.critic.features_extractor
    # SB3's ContinuousCritic computes shared features under set_grad_enabled(False); ours does not.
    gate = shared and policy.critic.share_features_extractor and not isinstance(policy.critic, CriticEncoderCritic)
    return OptimizerMembership(
        encoder_tensors=len(actor_encoder),
        actor_encoder_in_actor_opt=_count_in(actor_encoder, policy.actor.optimizer),
        actor_encoder_in_critic_opt=_count_in(actor_encoder, policy.critic.optimizer),
        critic_encoder_in_actor_opt=_count_in(critic_encoder, policy.actor.optimizer),
        critic_encoder_in_critic_opt=_count_in(critic_encoder, policy.critic.optimizer),
        shared=shared,
        target_separate=policy.critic_target.features_extractor is not policy.critic.features_extractor,
        critic_gradient_gate=gate,
    )
