"""SAC policies with DrQ-v2 gradient routing: the encoder learns from the critic only.

Importing this package registers ``"DrQv2SACPolicy"`` with SB3's ``SAC`` so that
``SAC("DrQv2SACPolicy", env)`` works like ``SAC("MultiInputPolicy", env)``. `sac_maths` holds
SAC's formulas on encoder features, used by the policies, `DrQv2SAC` and the diagnostics;
`wiring` names the three encoder wirings.
"""

from __future__ import annotations

from stable_baselines3 import SAC

from pixelrl.policies.drqv2_sac import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy
from pixelrl.policies.wiring import WIRINGS, Wiring, wiring_policy

SAC.policy_aliases["DrQv2SACPolicy"] = DrQv2SACPolicy

__all__ = ["WIRINGS", "CriticEncoderActor", "CriticEncoderCritic", "DrQv2SACPolicy", "Wiring", "wiring_policy"]
