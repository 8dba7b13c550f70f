"""DrQv2SAC: SAC whose update encodes each sampled batch once per role, as DrQ-v2 does.

SB3's ``SAC.train`` runs the shared encoder of `DrQv2SACPolicy` five
times per gradient step and back-propagates through it twice. The encoder is the expensive
part of a pixel agent, so `DrQv2SAC` reorganises the update around it: ``obs`` is
encoded once with gradients, ``next_obs`` once without, and the actor reuses the detached
``obs`` features.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import (
    DictReplayBufferSamples,
    GymEnv,
    PyTorchObs,
    ReplayBufferSamples,
    Schedule,
)
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import SACPolicy

from pixelrl.algos.n_step import N_STEP_IGNORED_WARNING, n_step_buffer_kwargs
from pixelrl.policies import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy, sac_maths

__all__ = ["DrQv2SAC", "TargetEncoder"]

TargetEncoder = Literal["separate", "online"]
"""Which encoder computes the TD target's ``next_obs`` features.

- ``"separate"``: the target critic's own encoder, Polyak-averaged with ``encoder_tau`` (the
  chapter's setup, and what ``SAC`` + ``DrQv2SACPolicy`` computes). 3 encoder passes per update.
- ``"online"``: the online encoder, whose ``next_obs`` features the next action needs anyway
  (DrQ-v2's setup: only the Q heads have target copies). 2 encoder passes per update.
"""

_TARGET_ENCODERS: tuple[str, ...] = get_args(TargetEncoder)

Samples = DictReplayBufferSamples | ReplayBufferSamples


class DrQv2SAC(SAC):
    """SAC with DrQ-v2's update: one encoder pass per batch and role, critic-only encoder training.

    Requires `DrQv2SACPolicy` (one encoder shared by actor and critic,
    in the critic's optimizer). Each gradient step:

    1. encodes ``obs`` once, with gradients;
    2. samples the policy's action on the *detached* features and updates ``ent_coef``
       (when auto-tuned);
    3. encodes ``next_obs`` once with the online encoder, without gradients, for the next
       action, and (``target_encoder="separate"``) once with the target encoder for the target
       Q heads; with ``"online"`` the target Q heads read the online features;
    4. trains encoder + Q heads on the TD loss (the only backward pass through the encoder);
    5. trains the actor on the detached ``obs`` features of step 1 and the just-updated Q heads;
    6. Polyak-averages the target Q heads with ``tau`` and the target encoder with
       ``encoder_tau``.

    Encoder passes per gradient step (forward calls of the online + target encoder):
    ``target_encoder="separate"``: 2 + 1 = 3; ``"online"``: 2 + 0 = 2. ``SAC.train`` with the same
    policy makes 4 + 1 = 5, two of them back-propagated.

    Differences from SAC:
        Compared with SB3's ``SAC.train`` on the same ``DrQv2SACPolicy``:

        - Critic loss and TD update: identical with ``target_encoder="separate"`` (same batch,
          same random draws in the same order: policy action on ``obs``, then on ``next_obs``),
          so encoder and Q heads receive the same gradient. With ``"online"`` the target uses
          the online encoder's ``next_obs`` features instead of the target encoder's.
        - Actor loss: ``mean(ent_coef * log_pi(a|z) - min_i Q_i(z, a))`` with ``a ~ pi(.|z)`` and
          ``z`` the detached ``obs`` features computed *before* the critic step (DrQ-v2's
          ``obs.detach()``). SB3 samples ``a`` from the same pre-step features but evaluates
          ``Q`` on ``obs`` re-encoded by the *updated* encoder. Both use the updated Q heads.
        - No gradient from the actor loss reaches the encoder. (SB3 computes one and discards
          it: the encoder is not in the actor's optimizer; the update is the same.)
        - The target encoder has its own coefficient ``encoder_tau`` (default: ``tau``). With
          ``"online"`` the target encoder is unused; it is copied from the online encoder after
          every gradient step, so ``policy.critic_target`` still evaluates the target the update
          uses.
        - ``target_update_interval`` counts gradient steps across ``train`` calls. SB3 counts
          them within one call, so with ``gradient_steps=1`` it updates the target every step
          whatever the interval.
        - Losses are averaged on the device and read once per ``train`` call (one sync), not
          once per gradient step. Logged names are SB3's: ``train/critic_loss``,
          ``train/actor_loss``, ``train/ent_coef``, ``train/ent_coef_loss``, ``train/n_updates``.
        - gSDE (``use_sde=True``) is not supported.

    Args:
        policy: ``"DrQv2SACPolicy"`` or `DrQv2SACPolicy` (or a subclass).
        env: The environment, or its registered id.
        learning_rate: Adam learning rate of actor, critic and entropy coefficient, or a schedule.
        buffer_size: Replay capacity in transitions.
        learning_starts: Env steps collected before the first update.
        batch_size: Transitions per gradient step.
        tau: Polyak coefficient of the target Q heads.
        gamma: Discount factor (replaced by ``replay_data.discounts`` when the buffer supplies them).
        train_freq: Update every ``train_freq`` steps, or ``(n, "step" | "episode")``.
        gradient_steps: Gradient steps per rollout (``-1``: as many as env steps collected).
        action_noise: Exploration noise added to the policy's actions.
        replay_buffer_class: Replay buffer class, e.g. `HerDrQDictReplayBuffer`.
        replay_buffer_kwargs: Keyword arguments of the replay buffer.
        optimize_memory_usage: SB3's memory-efficient replay buffer variant.
        n_steps: n-step returns. Passed, with ``gamma``, to a buffer class that takes ``n_steps``
            (`CompactHerReplayBuffer` and `HerDrQDictReplayBuffer` do, with HER and Dict
            observations); SB3's ``NStepReplayBuffer`` for ``replay_buffer_class=None`` and Box
            observations. Refused for any other buffer, where SB3 would ignore it.
        ent_coef: Entropy coefficient, or ``"auto"`` / ``"auto_<init>"`` to tune it.
        target_update_interval: Update the targets every this many gradient steps.
        target_entropy: Target entropy of the auto-tuning (``"auto"``: ``-action_dim``).
        use_sde: Must be False.
        sde_sample_freq: Unused (gSDE is not supported).
        use_sde_at_warmup: Unused (gSDE is not supported).
        stats_window_size: Episodes averaged in the rollout logs.
        tensorboard_log: TensorBoard log directory.
        policy_kwargs: Keyword arguments of the policy.
        verbose: 0, 1 or 2.
        seed: Random seed.
        device: Torch device.
        _init_setup_model: Build the networks now (SB3's ``load`` passes False).
        target_encoder: Which encoder computes the target's ``next_obs`` features; see
            `TargetEncoder`. The default, ``"separate"``, keeps the chapter's TD target
            (the one its results were obtained with) exactly; ``"online"`` saves one of three
            encoder passes (1.3-1.4x the updates/s on a 2-core CPU, 2-3% slower on an H200;
            ``docs/performance.md``) but its target moves with every critic step.
        encoder_tau: Polyak coefficient of the target encoder, in ``(0, 1]``; ``None`` uses
            ``tau``. Only for ``target_encoder="separate"``.

    Raises:
        TypeError: If the policy is not a ``DrQv2SACPolicy``.
        ValueError: If ``use_sde`` is True, ``target_encoder`` is unknown, ``encoder_tau`` is
            out of range or given with ``target_encoder="online"``, ``n_steps > 1`` with a buffer
            that has no n-step returns, or ``replay_buffer_kwargs`` give another ``n_steps`` or
            ``gamma`` than the algorithm's.

    Examples:
        >>> import gymnasium as gym
        >>> from pixelrl.algos import DrQv2SAC
        >>> from pixelrl.wrappers import PixelObservationWrapper
        >>> env = PixelObservationWrapper(gym.make("pixelrl/PointReach-v0", image_size=16), image_size=16)
        >>> model = DrQv2SAC("DrQv2SACPolicy", env, buffer_size=100, target_encoder="online")
        >>> model.target_encoder, model.encoder_tau
        ('online', None)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **SAC.policy_aliases,
        "DrQv2SACPolicy": DrQv2SACPolicy,
    }
    policy: DrQv2SACPolicy
    actor: CriticEncoderActor
    critic: CriticEncoderCritic
    critic_target: CriticEncoderCritic

    def __init__(
        self,
        policy: str | type[SACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        *,
        target_encoder: TargetEncoder = "separate",
        encoder_tau: float | None = None,
    ) -> None:
        self._check_policy_class(policy)
        if use_sde:
            raise ValueError(
                "DrQv2SAC does not support gSDE (use_sde=True): its update samples actions from the "
                "encoder's features directly. Pass use_sde=False, or use SB3's SAC for gSDE."
            )
        self.target_encoder: TargetEncoder = target_encoder
        self.encoder_tau = encoder_tau
        self._check_target_options()
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            use_sde_at_warmup=use_sde_at_warmup,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _check_policy_class(self, policy: str | type[BasePolicy]) -> None:
        policy_class = self.policy_aliases.get(policy) if isinstance(policy, str) else policy
        if not (isinstance(policy_class, type) and issubclass(policy_class, DrQv2SACPolicy)):
            name = policy if isinstance(policy, str) else getattr(policy, "__name__", repr(policy))
            raise TypeError(
                f"DrQv2SAC needs a DrQv2SACPolicy (one encoder shared by actor and critic, trained by the "
                f"critic), got {name!r}. Pass policy='DrQv2SACPolicy'; for other policies use SB3's SAC."
            )

    def _check_target_options(self) -> None:
        if self.target_encoder not in _TARGET_ENCODERS:
            raise ValueError(
                f"Unknown target_encoder {self.target_encoder!r}; expected one of {list(_TARGET_ENCODERS)}."
            )
        if self.encoder_tau is None:
            return
        if self.target_encoder == "online":
            raise ValueError(
                "encoder_tau sets the Polyak coefficient of the target encoder, but "
                "target_encoder='online' uses no target encoder. Drop encoder_tau or use "
                "target_encoder='separate'."
            )
        if not 0.0 < self.encoder_tau <= 1.0:
            raise ValueError(f"encoder_tau must be in (0, 1] (or None to use tau), got {self.encoder_tau}.")

    def _setup_model(self) -> None:
        self._check_target_options()  # again: SB3's load sets the attributes after __init__
        self.n_steps, self.replay_buffer_kwargs = n_step_buffer_kwargs(
            self.n_steps, self.gamma, self.replay_buffer_class, self.replay_buffer_kwargs, self.observation_space
        )
        with warnings.catch_warnings():
            # n_steps reached the buffer (or was refused) above: SB3's "n_steps is ignored" would be wrong.
            warnings.filterwarnings("ignore", message=N_STEP_IGNORED_WARNING)
            super()._setup_model()
        if not isinstance(self.policy, DrQv2SACPolicy):
            raise TypeError(f"DrQv2SAC needs a DrQv2SACPolicy, got {type(self.policy).__name__}.")
        self._head_params = [p for q in self.critic.q_networks for p in q.parameters()]
        self._target_head_params = [p for q in self.critic_target.q_networks for p in q.parameters()]
        self._encoder_params = list(self.critic.features_extractor.parameters())
        self._target_encoder_params = list(self.critic_target.features_extractor.parameters())

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "_head_params",
            "_target_head_params",
            "_encoder_params",
            "_target_encoder_params",
        ]

    def _preprocess(self, obs: PyTorchObs) -> PyTorchObs:
        return preprocess_obs(obs, self.policy.observation_space, normalize_images=self.policy.normalize_images)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Run ``gradient_steps`` DrQ-v2 updates (see the class docstring) and log their losses.

        Args:
            gradient_steps: Number of gradient steps.
            batch_size: Transitions sampled per gradient step.
        """
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)

        ent_coef_losses: list[th.Tensor] = []
        ent_coefs: list[th.Tensor] = []
        actor_losses: list[th.Tensor] = []
        critic_losses: list[th.Tensor] = []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            ent_coef, ent_coef_loss, critic_loss, actor_loss = self._update(replay_data)
            ent_coefs.append(ent_coef)
            critic_losses.append(critic_loss)
            actor_losses.append(actor_loss)
            if ent_coef_loss is not None:
                ent_coef_losses.append(ent_coef_loss)
            if (self._n_updates + gradient_step) % self.target_update_interval == 0:
                self._update_targets()
            if self.target_encoder == "online":
                self._copy_encoder_to_target()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", _mean(ent_coefs))
        self.logger.record("train/actor_loss", _mean(actor_losses))
        self.logger.record("train/critic_loss", _mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", _mean(ent_coef_losses))

    def _update(self, replay_data: Samples) -> tuple[th.Tensor, th.Tensor | None, th.Tensor, th.Tensor]:
        """One gradient step on one batch; returns detached ``(ent_coef, ent_coef_loss, critic_loss, actor_loss)``."""
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        encoder = self.critic.features_extractor
        obs = self._preprocess(replay_data.observations)
        next_obs = self._preprocess(replay_data.next_observations)

        features: th.Tensor = encoder(obs)  # the only pass that back-propagates
        actor_features = features.detach()
        # Drawn before the next actions, as SAC.train does, so both see the same random numbers.
        actions_pi, log_prob = self.actor.action_log_prob_from_features(actor_features)

        ent_coef_loss: th.Tensor | None = None
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            ent_coef = th.exp(self.log_ent_coef.detach())
            assert isinstance(self.target_entropy, float)
            ent_coef_loss = sac_maths.entropy_coef_loss(self.log_ent_coef, log_prob, self.target_entropy)
            self.ent_coef_optimizer.zero_grad()
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()
        else:
            ent_coef = self.ent_coef_tensor

        with th.no_grad():
            next_features: th.Tensor = encoder(next_obs)
            next_actions, next_log_prob = self.actor.action_log_prob_from_features(next_features)
            if self.target_encoder == "separate":
                next_features = self.critic_target.features_extractor(next_obs)
            next_q = self.critic_target.q_values_from_features(next_features, next_actions)
            target_q = sac_maths.soft_td_target(
                replay_data.rewards, replay_data.dones, discounts, next_q, next_log_prob, ent_coef
            )

        critic_loss = sac_maths.critic_loss(self.critic.q_values_from_features(features, replay_data.actions), target_q)
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()

        # DrQ-v2's actor step: pre-critic-step features (detached), post-step Q heads.
        q_pi = self.critic.q_values_from_features(actor_features, actions_pi)
        actor_loss = sac_maths.actor_loss(q_pi, log_prob, ent_coef)
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()

        detached_ent_loss = None if ent_coef_loss is None else ent_coef_loss.detach()
        return ent_coef.detach().reshape(()), detached_ent_loss, critic_loss.detach(), actor_loss.detach()

    def _update_targets(self) -> None:
        polyak_update(self._head_params, self._target_head_params, self.tau)
        if self.target_encoder == "separate":
            encoder_tau = self.tau if self.encoder_tau is None else self.encoder_tau
            polyak_update(self._encoder_params, self._target_encoder_params, encoder_tau)
        # Copy running stats, as SAC does (SB3 issue #996).
        polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def _copy_encoder_to_target(self) -> None:
        with th.no_grad():
            for target, online in zip(self._target_encoder_params, self._encoder_params, strict=True):
                target.copy_(online)


def _mean(values: list[th.Tensor]) -> float:
    return float(th.stack(values).float().mean().item()) if values else float(np.nan)
