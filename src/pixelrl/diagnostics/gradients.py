"""Where the encoder's learning signal comes from: gradient-flow checks and gradient norms."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, cast

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy

__all__ = ["GradientFlow", "encoder_gradient_norms", "gradient_flow_check", "sac_losses"]

Batch = DictReplayBufferSamples | ReplayBufferSamples


def sac_losses(
    policy: SACPolicy, batch: Batch, *, ent_coef: float = 0.05, gamma: float = 0.95
) -> tuple[th.Tensor, th.Tensor]:
    """SAC's critic and actor losses, computed exactly as SB3's ``SAC.train`` computes them.

    Args:
        policy: A SAC policy (any encoder wiring).
        batch: A replay batch.
        ent_coef: Entropy coefficient (fixed).
        gamma: Discount factor.

    Returns:
        ``(critic_loss, actor_loss)``, scalars with autograd graphs.
    """
    with th.no_grad():
        next_actions, next_log_prob = policy.actor.action_log_prob(batch.next_observations)
        next_q = th.cat(policy.critic_target(batch.next_observations, next_actions), dim=1)
        next_q = th.min(next_q, dim=1, keepdim=True).values - ent_coef * next_log_prob.reshape(-1, 1)
        target_q = batch.rewards + (1 - batch.dones) * gamma * next_q
    current_q = policy.critic(batch.observations, batch.actions)
    critic_loss = 0.5 * th.stack([F.mse_loss(q, target_q) for q in current_q]).sum()
    actions_pi, log_prob = policy.actor.action_log_prob(batch.observations)
    q_pi = th.cat(policy.critic(batch.observations, actions_pi), dim=1)
    actor_loss = (ent_coef * log_prob.reshape(-1, 1) - th.min(q_pi, dim=1, keepdim=True).values).mean()
    return critic_loss, actor_loss


def _grad_norm(params: list[th.nn.Parameter]) -> float:
    norms = [p.grad.norm() for p in params if p.grad is not None]
    return float(th.linalg.vector_norm(th.stack(norms))) if norms else 0.0


def _snapshot(params: list[th.nn.Parameter]) -> list[th.Tensor]:
    return [p.detach().clone() for p in params]


def _changed(params: list[th.nn.Parameter], before: list[th.Tensor]) -> bool:
    return any(not th.equal(p.detach(), b) for p, b in zip(params, before, strict=True))


@dataclass(frozen=True)
class GradientFlow:
    """What the critic and actor updates do to the encoder(s) of a SAC policy.

    Attributes:
        critic_backward_grad_norm: Norm of the gradient on the CRITIC's encoder after the TD
            loss's backward (0 when SB3's gradient gate blocks it).
        actor_backward_grad_norm: Norm of the gradient on the ACTOR's encoder after a backward
            through the actor alone (its actions and log-probabilities).
        critic_step_changes_encoder: The critic optimizer step changed the critic's encoder.
        actor_step_changes_encoder: The actor optimizer step changed the actor's encoder.
            (With a shared encoder both are the same module; with separate encoders each
            loss trains its own.)
    """

    critic_backward_grad_norm: float
    actor_backward_grad_norm: float
    critic_step_changes_encoder: bool
    actor_step_changes_encoder: bool

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict, for JSON output."""
        return dict(self.__dict__)


def gradient_flow_check(
    policy: SACPolicy, batch: Batch, *, ent_coef: float = 0.05, gamma: float = 0.95
) -> GradientFlow:
    """Run one SAC update on a copy of ``policy`` and report how each loss reaches the encoder.

    The update follows SB3's ``SAC.train`` order: critic loss, backward, critic step; then the
    actor loss on the updated critic, backward, actor step. The policy passed in is not modified.

    Args:
        policy: A SAC policy.
        batch: A replay batch.
        ent_coef: Entropy coefficient.
        gamma: Discount factor.

    Returns:
        The gradient norms and whether each optimizer step moved the encoder.
    """
    policy = copy.deepcopy(policy)
    policy.set_training_mode(True)
    actor_encoder = list(policy.actor.features_extractor.parameters())
    critic_encoder = list(policy.critic.features_extractor.parameters())

    for p in policy.parameters():
        p.grad = None
    actions_pi, log_prob = policy.actor.action_log_prob(batch.observations)
    (actions_pi.sum() + log_prob.sum()).backward()
    actor_grad = _grad_norm(actor_encoder)

    policy.critic.optimizer.zero_grad(set_to_none=True)
    policy.actor.optimizer.zero_grad(set_to_none=True)
    critic_loss, _ = sac_losses(policy, batch, ent_coef=ent_coef, gamma=gamma)
    critic_loss.backward()
    critic_grad = _grad_norm(critic_encoder)
    before = _snapshot(critic_encoder)
    policy.critic.optimizer.step()
    critic_moves = _changed(critic_encoder, before)

    _, actor_loss = sac_losses(policy, batch, ent_coef=ent_coef, gamma=gamma)
    policy.actor.optimizer.zero_grad(set_to_none=True)
    actor_loss.backward()
    before = _snapshot(actor_encoder)
    policy.actor.optimizer.step()
    actor_moves = _changed(actor_encoder, before)
    return GradientFlow(
        critic_backward_grad_norm=critic_grad,
        actor_backward_grad_norm=actor_grad,
        critic_step_changes_encoder=critic_moves,
        actor_step_changes_encoder=actor_moves,
    )


def encoder_gradient_norms(
    policy: SACPolicy, batch: Batch, *, ent_coef: float = 0.05, gamma: float = 0.95
) -> dict[str, float]:
    """The L2 norm of the gradient each SAC loss would send into the encoder.

    Measured the same way for every wiring, with nothing detached and no gradient gate, so the
    two signals can be compared (the chapter's exercise 5):

    - ``critic``: the TD loss, through the critic's encoder;
    - ``actor``: the policy loss ``ent_coef * log pi(a|s) - Q(s, a)`` through the actor's
      encoder, via the actor head (the Q-network sees the same state features, held fixed).

    The policy is not modified (gradients are taken with ``torch.autograd.grad``).

    Args:
        policy: A SAC policy without gSDE.
        batch: A replay batch.
        ent_coef: Entropy coefficient.
        gamma: Discount factor.

    Returns:
        ``{"critic": norm, "actor": norm, "ratio": critic / actor}`` (ratio is ``inf`` when the
        actor norm is 0).
    """
    actor, critic = policy.actor, policy.critic
    if actor.use_sde:
        raise ValueError("encoder_gradient_norms does not support gSDE policies (use_sde=True).")
    dist = cast(SquashedDiagGaussianDistribution, actor.action_dist)
    obs = preprocess_obs(batch.observations, policy.observation_space, normalize_images=policy.normalize_images)
    critic_params = list(critic.features_extractor.parameters())
    actor_params = list(actor.features_extractor.parameters())

    with th.no_grad():
        next_actions, next_log_prob = actor.action_log_prob(batch.next_observations)
        next_q = th.cat(policy.critic_target(batch.next_observations, next_actions), dim=1)
        next_q = th.min(next_q, dim=1, keepdim=True).values - ent_coef * next_log_prob.reshape(-1, 1)
        target_q = batch.rewards + (1 - batch.dones) * gamma * next_q

    with th.enable_grad():
        critic_features = critic.features_extractor(obs)
        q_input = th.cat([critic_features, batch.actions], dim=1)
        critic_loss = 0.5 * th.stack([F.mse_loss(q(q_input), target_q) for q in critic.q_networks]).sum()
        critic_grads = th.autograd.grad(critic_loss, critic_params, allow_unused=True)

        actor_features = actor.features_extractor(obs)
        latent = actor.latent_pi(actor_features)
        log_std = th.clamp(actor.log_std(latent), LOG_STD_MIN, LOG_STD_MAX)  # type: ignore[operator]
        actions_pi, log_prob = dist.log_prob_from_params(actor.mu(latent), log_std)
        q_pi_input = th.cat([actor_features.detach(), actions_pi], dim=1)
        q_pi = th.cat([q(q_pi_input) for q in critic.q_networks], dim=1)
        actor_loss = (ent_coef * log_prob.reshape(-1, 1) - th.min(q_pi, dim=1, keepdim=True).values).mean()
        actor_grads = th.autograd.grad(actor_loss, actor_params, allow_unused=True)

    def norm(grads: tuple[th.Tensor | None, ...]) -> float:
        present = [g.norm() for g in grads if g is not None]
        return float(th.linalg.vector_norm(th.stack(present))) if present else 0.0

    critic_norm, actor_norm = norm(critic_grads), norm(actor_grads)
    ratio = critic_norm / actor_norm if actor_norm > 0 else float("inf")
    return {"critic": critic_norm, "actor": actor_norm, "ratio": ratio}
