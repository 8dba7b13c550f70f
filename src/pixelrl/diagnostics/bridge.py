"""The bridge check: a standalone extractor gives the same features as the one inside SB3."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.sac.policies import SACPolicy

__all__ = ["bridge_check"]


def bridge_check(policy: SACPolicy, observation: dict[str, NDArray[Any]]) -> float:
    """Max absolute difference between a hand-fed copy of the encoder and SB3's own path.

    A fresh extractor of the policy's class is built from the policy's
    ``features_extractor_kwargs`` and loaded with the actor encoder's weights. It is fed the
    observation normalised by hand (uint8 images divided by 255, vectors as float32); the
    policy encodes the same observation through SB3's ``obs_to_tensor`` and
    ``extract_features`` (which run ``preprocess_obs``). Identical wiring gives a difference
    of 0 up to float rounding (< 1e-6).

    Args:
        policy: A SAC policy whose observation space is a Dict.
        observation: One observation as returned by the env (no batch axis) or a batch.

    Returns:
        The maximum absolute difference between the two feature vectors.

    Raises:
        TypeError: If the policy's observation space is not a Dict.
    """
    space = policy.observation_space
    if not isinstance(space, spaces.Dict):
        raise TypeError(f"bridge_check needs a Dict observation space, got {type(space).__name__}.")
    encoder = policy.actor.features_extractor
    standalone = type(encoder)(space, **policy.features_extractor_kwargs).to(policy.device)
    standalone.load_state_dict(encoder.state_dict())
    standalone.eval()

    batched = {key: np.asarray(value) for key, value in observation.items()}
    if batched[next(iter(space.spaces))].shape == space[next(iter(space.spaces))].shape:
        batched = {key: value[None] for key, value in batched.items()}
    by_hand: dict[str, th.Tensor] = {}
    for key, sub in space.spaces.items():
        value = th.as_tensor(batched[key], device=policy.device).float()
        by_hand[key] = value / 255.0 if is_image_space(sub, check_channels=False) and policy.normalize_images else value

    with th.no_grad():
        ours = standalone(by_hand)
        obs_tensor, _ = policy.obs_to_tensor(batched)
        theirs = policy.actor.extract_features(obs_tensor, encoder)
    return float((ours - theirs).abs().max())
