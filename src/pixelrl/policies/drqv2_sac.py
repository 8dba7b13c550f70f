"""DrQv2SACPolicy: one encoder, trained by the critic's TD loss only.

SB3's SAC has two encoder wirings. With ``share_features_extractor=False`` (the default)
actor and critic each own an encoder and each trains its own (twice the CNN cost). With
``share_features_extractor=True`` one encoder sits in the ACTOR's optimizer and the critic
evaluates it under ``set_grad_enabled(False)``, so only the policy gradient trains it, which
is close to noise while the policy is still random. DrQ-v2 wires it the other way round:

- `CriticEncoderCritic` lets the TD loss back-propagate into the encoder;
- `CriticEncoderActor` computes its features without gradients (the actor trains its
  MLP head on fixed features);
- `DrQv2SACPolicy` puts the encoder in the critic's optimizer and leaves it out of the
  actor's; the target critic owns a separate encoder, updated by Polyak averaging like the
  rest of the target critic.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from pixelrl.encoders import ManipulationExtractor
from pixelrl.policies import sac_maths

__all__ = ["CriticEncoderActor", "CriticEncoderCritic", "DrQv2SACPolicy"]


class CriticEncoderCritic(ContinuousCritic):
    """SB3's ``ContinuousCritic`` with gradients always flowing into its features extractor.

    SB3 computes the critic's features under ``set_grad_enabled(False)`` when the extractor
    is shared, so the TD loss never reaches it. Here the TD loss trains the encoder.
    """

    def forward(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """Q-values of every critic head.

        Args:
            obs: Observation batch (dict of tensors; images ``(B, C, H, W)`` uint8).
            actions: ``(B, action_dim)`` actions.

        Returns:
            One ``(B, 1)`` Q-value tensor per critic head.
        """
        features = self.extract_features(obs, self.features_extractor)
        qvalue_input = th.cat([features, actions], dim=1)
        return tuple(q_net(qvalue_input) for q_net in self.q_networks)

    def q_values_from_features(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Every Q head's value of already encoded observations (no encoder pass).

        Args:
            features: `(B, features_dim)` features of this critic's encoder.
            actions: `(B, action_dim)` actions.

        Returns:
            `(B, n_critics)` Q-values, one column per head.
        """
        return sac_maths.q_values(self, features, actions)


class CriticEncoderActor(Actor):
    """SB3's SAC ``Actor`` that reads the shared encoder's features without gradients.

    The policy loss trains only the actor's MLP head; no policy gradient reaches the encoder
    through the actor. (SB3's ``SAC.train`` also evaluates the critic on the actor's actions;
    that backward pass does write gradients into the encoder, but the encoder is not in the
    actor's optimizer and the critic's ``zero_grad`` clears them before the next TD update.)
    """

    def extract_features(self, obs: PyTorchObs, features_extractor: BaseFeaturesExtractor) -> th.Tensor:
        """Encode ``obs`` with no autograd graph (cheaper than computing then detaching).

        Args:
            obs: Observation batch.
            features_extractor: The shared encoder.

        Returns:
            ``(B, features_dim)`` features that do not require gradients.
        """
        with th.no_grad():
            return super().extract_features(obs, features_extractor)

    def dist_params_from_features(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """The action distribution's parameters from already encoded observations (no encoder pass).

        Args:
            features: `(B, features_dim)` features of the shared encoder.

        Returns:
            `(mean_actions, log_std, kwargs)` as SB3's `get_action_dist_params` returns them.
        """
        return sac_maths.action_dist_params(self, features)

    def action_log_prob_from_features(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Sample squashed actions and their log-probabilities from already encoded observations.

        Args:
            features: `(B, features_dim)` features of the shared encoder.

        Returns:
            `(actions, log_prob)`: `(B, action_dim)` and `(B, 1)`.
        """
        return sac_maths.action_log_prob(self, features)


class DrQv2SACPolicy(SACPolicy):
    """SAC policy with one shared encoder trained by the critic only (DrQ-v2 routing).

    - Actor and critic share one features extractor instance (``policy.actor.features_extractor
      is policy.critic.features_extractor``).
    - Its parameters are in ``critic.optimizer`` and not in ``actor.optimizer``.
    - ``critic_target`` owns a separate copy, updated by SAC's Polyak averaging.

    The default extractor is `ManipulationExtractor`. After
    ``import pixelrl``, ``SAC("DrQv2SACPolicy", env)`` resolves to this class.

    Args:
        observation_space: Observation space (a Dict with image keys for pixels).
        action_space: Box action space.
        lr_schedule: Learning-rate schedule.
        net_arch: MLP sizes for actor and critic heads (``[256, 256]`` by default), or a dict
            with ``pi`` and ``qf`` lists.
        activation_fn: Activation of the MLP heads.
        use_sde: Use generalized State-Dependent Exploration.
        log_std_init: Initial log standard deviation (gSDE).
        use_expln: Use ``expln`` instead of ``exp`` for the gSDE standard deviation.
        clip_mean: Clip of the gSDE mean.
        features_extractor_class: Encoder class, built once and shared.
        features_extractor_kwargs: Keyword arguments for the encoder.
        normalize_images: Divide uint8 images by 255 before the encoder.
        optimizer_class: Optimizer class for actor and critic.
        optimizer_kwargs: Optimizer keyword arguments (excluding the learning rate).
        n_critics: Number of Q heads.
        share_features_extractor: Must be True; the argument exists so that passing SB3's
            ``share_features_extractor=False`` fails with an explanation.

    Raises:
        ValueError: If ``share_features_extractor`` is False.

    Examples:
        >>> import gymnasium as gym
        >>> from stable_baselines3 import SAC
        >>> import pixelrl
        >>> from pixelrl.wrappers import PixelObservationWrapper
        >>> env = PixelObservationWrapper(gym.make("pixelrl/PointReach-v0", image_size=16), image_size=16)
        >>> model = SAC("DrQv2SACPolicy", env, buffer_size=100)
        >>> policy = model.policy
        >>> policy.actor.features_extractor is policy.critic.features_extractor
        True
        >>> policy.critic_target.features_extractor is policy.critic.features_extractor
        False
    """

    actor: CriticEncoderActor
    critic: CriticEncoderCritic
    critic_target: CriticEncoderCritic

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = -3,
        use_expln: bool = False,
        clip_mean: float = 2.0,
        features_extractor_class: type[BaseFeaturesExtractor] = ManipulationExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = True,
    ) -> None:
        if not share_features_extractor:
            raise ValueError(
                "DrQv2SACPolicy always shares one encoder between actor and critic (trained by the critic). "
                "For separate actor and critic encoders use SAC's 'MultiInputPolicy' with "
                "share_features_extractor=False."
            )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            use_sde=use_sde,
            log_std_init=log_std_init,
            use_expln=use_expln,
            clip_mean=clip_mean,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=True,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = self.make_actor()
        self.critic = self.make_critic(features_extractor=self.actor.features_extractor)
        # Match parameters by identity, not by name, so renamed SB3 internals cannot break it.
        encoder_ids = {id(p) for p in self.actor.features_extractor.parameters()}
        self.actor.optimizer = self.optimizer_class(
            [p for p in self.actor.parameters() if id(p) not in encoder_ids],
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(),  # includes the shared encoder
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )
        # A separate encoder for the target: if it were the online one, Polyak averaging
        # would be a no-op for it and the TD target would move with every update.
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> CriticEncoderActor:
        """Build the actor (it creates the shared encoder when ``features_extractor`` is None)."""
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return CriticEncoderActor(**actor_kwargs).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> CriticEncoderCritic:
        """Build a critic on the given encoder, or on a new one when ``features_extractor`` is None."""
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return CriticEncoderCritic(**critic_kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        # SACPolicy forgets this one; saving it keeps a reloaded policy identical.
        data["share_features_extractor"] = self.share_features_extractor
        return data
