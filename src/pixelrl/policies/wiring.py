"""The three ways to attach one pixel encoder to SAC, named once for the whole library."""

from __future__ import annotations

from typing import Any, Literal, get_args

from stable_baselines3.sac.policies import SACPolicy

from pixelrl.policies.drqv2_sac import DrQv2SACPolicy

__all__ = ["WIRINGS", "Wiring", "wiring_policy"]

Wiring = Literal["sb3-shared", "sb3-separate", "drqv2"]
"""The three ways to attach one pixel encoder to SAC.

- ``sb3-shared``: SB3 with ``share_features_extractor=True``; one encoder in the ACTOR's
  optimizer, evaluated without gradients by the critic (the encoder learns from the policy
  loss only).
- ``sb3-separate``: SB3's default (``share_features_extractor=False``); actor and critic each
  own and train an encoder, twice the CNN cost.
- ``drqv2``: [DrQv2SACPolicy][pixelrl.policies.DrQv2SACPolicy]; one encoder in the CRITIC's
  optimizer (DrQ-v2's routing).
"""

WIRINGS: tuple[Wiring, ...] = get_args(Wiring)


def wiring_policy(wiring: Wiring) -> tuple[type[SACPolicy], dict[str, Any]]:
    """The SAC policy class of a wiring and the keyword arguments that select it.

    Args:
        wiring: One of `WIRINGS`.

    Returns:
        ``(policy_class, policy_kwargs)``, e.g. ``(SACPolicy, {"share_features_extractor": True})``
        for ``"sb3-shared"``; pass both to ``SAC`` (with your own extractor and ``net_arch``).

    Raises:
        ValueError: For an unknown wiring.

    Examples:
        >>> wiring_policy("drqv2")[0].__name__, wiring_policy("sb3-separate")[1]
        ('DrQv2SACPolicy', {'share_features_extractor': False})
    """
    if wiring == "drqv2":
        return DrQv2SACPolicy, {}
    if wiring in ("sb3-shared", "sb3-separate"):
        return SACPolicy, {"share_features_extractor": wiring == "sb3-shared"}
    raise ValueError(f"Unknown wiring {wiring!r}; expected one of {list(WIRINGS)}.")
