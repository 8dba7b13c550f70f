"""SAC policies with DrQ-v2 gradient routing: the encoder learns from the critic only.

Importing this package registers ``"DrQv2SACPolicy"`` with SB3's ``SAC`` so that
``SAC("DrQv2SACPolicy", env)`` works like ``SAC("MultiInputPolicy", env)``.
"""

from __future__ import annotations

from stable_baselines3 import SAC

from pixelrl.policies.drqv2_sac import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy

SAC.policy_aliases["DrQv2SACPolicy"] = DrQv2SACPolicy

__all__ = ["CriticEncoderActor", "CriticEncoderCritic", "DrQv2SACPolicy"]
