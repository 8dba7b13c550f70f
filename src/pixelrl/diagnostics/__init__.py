"""Diagnostics for pixel SAC: encoder wiring, gradient flow, gradient norms, the bridge check.

These answer "is my encoder learning, and from which loss?" on a real policy, in seconds.
``pixelrl-train verify`` and ``pixelrl-train probe`` run them against FetchPush-v4.
"""

from __future__ import annotations

from pixelrl.diagnostics.bridge import bridge_check
from pixelrl.diagnostics.gradients import GradientFlow, encoder_gradient_norms, gradient_flow_check, sac_losses
from pixelrl.diagnostics.wiring import WIRINGS, OptimizerMembership, Wiring, build_sac_policy, optimizer_membership

__all__ = [
    "WIRINGS",
    "GradientFlow",
    "OptimizerMembership",
    "Wiring",
    "bridge_check",
    "build_sac_policy",
    "encoder_gradient_norms",
    "gradient_flow_check",
    "optimizer_membership",
    "sac_losses",
]
