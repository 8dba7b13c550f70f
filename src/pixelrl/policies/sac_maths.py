"""SAC's formulas, written once: the heads evaluated on encoder features, the TD target and the losses.

`DrQv2SAC`'s update, the gradient diagnostics and the policies' from-features methods all
compute SAC through these functions, so the maths cannot drift apart between them. They take
SB3's own `Actor` and `ContinuousCritic` (any encoder wiring), and tensors already encoded.

Shapes: `B` is the batch, `A` the action dimension, `N` the number of Q heads.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor
from torch.nn import functional as F

__all__ = [
    "action_dist_params",
    "action_log_prob",
    "actor_loss",
    "critic_loss",
    "entropy_coef_loss",
    "q_values",
    "soft_td_target",
]


def action_dist_params(actor: Actor, features: th.Tensor) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
    """The actor's distribution parameters from encoder features (SB3's `get_action_dist_params` after encoding).

    Args:
        actor: An SB3 SAC actor.
        features: `(B, features_dim)` float features of the actor's encoder.

    Returns:
        `(mean_actions, log_std, kwargs)`: `(B, A)` pre-squash means, the log standard deviation
        (`(B, A)`, clamped to SB3's range; gSDE's learned matrix when `use_sde`), and the keyword
        arguments of the distribution (`latent_sde` for gSDE, else empty).
    """
    latent_pi = actor.latent_pi(features)
    mean_actions = actor.mu(latent_pi)
    if actor.use_sde:
        return mean_actions, actor.log_std, {"latent_sde": latent_pi}
    log_std = th.clamp(actor.log_std(latent_pi), LOG_STD_MIN, LOG_STD_MAX)  # type: ignore[operator]
    return mean_actions, log_std, {}


def action_log_prob(actor: Actor, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Sample squashed actions and their log-probabilities from encoder features.

    Args:
        actor: An SB3 SAC actor.
        features: `(B, features_dim)` float features of the actor's encoder.

    Returns:
        `(actions, log_prob)`: `(B, A)` actions in `[-1, 1]` and `(B, 1)` log-probabilities.
    """
    mean_actions, log_std, kwargs = action_dist_params(actor, features)
    actions, log_prob = actor.action_dist.log_prob_from_params(mean_actions, log_std, **kwargs)
    return actions, log_prob.reshape(-1, 1)


def q_values(critic: ContinuousCritic, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """Every Q head's value of `(features, actions)`.

    Args:
        critic: An SB3 continuous critic.
        features: `(B, features_dim)` float features of the critic's encoder.
        actions: `(B, A)` actions.

    Returns:
        `(B, N)` Q-values, one column per head.
    """
    q_input = th.cat([features, actions], dim=1)
    return th.cat([q_net(q_input) for q_net in critic.q_networks], dim=1)


def soft_td_target(
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
    next_q: th.Tensor,
    next_log_prob: th.Tensor,
    ent_coef: th.Tensor | float,
) -> th.Tensor:
    """SAC's soft TD target with clipped double Q: `r + (1 - done) * discount * (min_i Q_i' - alpha log pi')`.

    Args:
        rewards: `(B, 1)` rewards (summed over the n steps of an n-step sample).
        dones: `(B, 1)` terminations (timeouts excluded: they bootstrap).
        discounts: `(B, 1)` per-sample discounts (`gamma ** n`), or one float `gamma`.
        next_q: `(B, N)` target Q-values of the next observation and the next action.
        next_log_prob: `(B, 1)` log-probability of the next action.
        ent_coef: Entropy coefficient `alpha`.

    Returns:
        `(B, 1)` targets.
    """
    soft_next = th.min(next_q, dim=1, keepdim=True).values - ent_coef * next_log_prob
    return rewards + (1 - dones) * discounts * soft_next


def critic_loss(current_q: th.Tensor, target_q: th.Tensor) -> th.Tensor:
    """SB3's critic loss: half the sum over heads of each head's mean squared TD error.

    Args:
        current_q: `(B, N)` Q-values of the stored `(obs, action)`.
        target_q: `(B, 1)` TD targets (no gradient).

    Returns:
        A scalar.
    """
    per_head = [F.mse_loss(current_q[:, i : i + 1], target_q) for i in range(current_q.shape[1])]
    return 0.5 * th.stack(per_head).sum()


def actor_loss(q_pi: th.Tensor, log_prob: th.Tensor, ent_coef: th.Tensor | float) -> th.Tensor:
    """SAC's policy loss `mean(alpha log pi(a|s) - min_i Q_i(s, a))` for `a ~ pi(.|s)`.

    Args:
        q_pi: `(B, N)` Q-values of the policy's sampled actions.
        log_prob: `(B, 1)` their log-probabilities.
        ent_coef: Entropy coefficient `alpha`.

    Returns:
        A scalar.
    """
    return (ent_coef * log_prob - th.min(q_pi, dim=1, keepdim=True).values).mean()


def entropy_coef_loss(log_ent_coef: th.Tensor, log_prob: th.Tensor, target_entropy: float) -> th.Tensor:
    """SAC's temperature loss `-mean(log alpha * (log pi + target_entropy))` (log-probabilities detached).

    Args:
        log_ent_coef: The learned `log alpha` (a 1-element tensor).
        log_prob: `(B, 1)` log-probabilities of the policy's sampled actions.
        target_entropy: The entropy the tuning aims for (SB3's default: `-A`).

    Returns:
        A scalar.
    """
    return -(log_ent_coef * (log_prob + target_entropy).detach()).mean()
