"""Where the encoder's learning signal comes from: gradient-flow checks and gradient norms."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch as th
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.sac.policies import SACPolicy

from pixelrl.policies import sac_maths

__all__ = ["GradientFlow", "encoder_gradient_norms", "gradient_flow_check", "sac_losses"]

Batch = DictReplayBufferSamples | ReplayBufferSamples


def _soft_target(policy: SACPolicy, batch: Batch, ent_coef: float, gamma: float) -> th.Tensor:
    """SB3's TD target for ``batch``: next action from the actor, next Q from the target critic."""
    with th.no_grad():
        next_actions, next_log_prob = policy.actor.action_log_prob(batch.next_observations)
        next_q = th.cat(policy.critic_target(batch.next_observations, next_actions), dim=1)
        discounts = batch.discounts if batch.discounts is not None else gamma
        return sac_maths.soft_td_target(
            batch.rewards, batch.dones, discounts, next_q, next_log_prob.reshape(-1, 1), ent_coef
        )


def sac_losses(
    policy: SACPolicy, batch: Batch, *, ent_coef: float = 0.05, gamma: float = 0.95
) -> tuple[th.Tensor, th.Tensor]:
    """SAC's critic and actor losses, computed exactly as SB3's ``SAC.train`` computes them.

    Args:
        policy: A SAC policy (any encoder wiring).
        batch: A replay batch.
        ent_coef: Entropy coefficient (fixed).
        gamma: Discount factor (the batch's ``discounts`` take precedence when it has them).

    Returns:
        ``(critic_loss, actor_loss)``, scalars with autograd graphs.
    """
    target_q = _soft_target(policy, batch, ent_coef, gamma)
    current_q = th.cat(policy.critic(batch.observations, batch.actions), dim=1)
    critic_loss = sac_maths.critic_loss(current_q, target_q)
    actions_pi, log_prob = policy.actor.action_log_prob(batch.observations)
    q_pi = th.cat(policy.critic(batch.observations, actions_pi), dim=1)
    actor_loss = sac_maths.actor_loss(q_pi, log_prob.reshape(-1, 1), ent_coef)
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
    two signals can be compared:

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
    obs = preprocess_obs(batch.observations, policy.observation_space, normalize_images=policy.normalize_images)
    critic_params = list(critic.features_extractor.parameters())
    actor_params = list(actor.features_extractor.parameters())
    target_q = _soft_target(policy, batch, ent_coef, gamma)

    with th.enable_grad():
        critic_features = critic.features_extractor(obs)
        critic_loss = sac_maths.critic_loss(sac_maths.q_values(critic, critic_features, batch.actions), target_q)
        critic_grads = th.autograd.grad(critic_loss, critic_params, allow_unused=True)

        actor_features = actor.features_extractor(obs)
        actions_pi, log_prob = sac_maths.action_log_prob(actor, actor_features)
        q_pi = sac_maths.q_values(critic, actor_features.detach(), actions_pi)
        actor_loss = sac_maths.actor_loss(q_pi, log_prob, ent_coef)
        actor_grads = th.autograd.grad(actor_loss, actor_params, allow_unused=True)

    def norm(grads: tuple[th.Tensor | None, ...]) -> float:
        present = [g.norm() for g in grads if g is not None]
        return float(th.linalg.vector_norm(th.stack(present))) if present else 0.0

    critic_norm, actor_norm = norm(critic_grads), norm(actor_grads)
    ratio = critic_norm / actor_norm if actor_norm > 0 else float("inf")
    return {"critic": critic_norm, "actor": actor_norm, "ratio": ratio}
