"""Algorithms: SB3 algorithms whose update is reorganised for pixel encoders.

Importing this package registers nothing with SB3; ``DrQv2SAC("DrQv2SACPolicy", env)``
resolves through `DrQv2SAC.policy_aliases`.
"""

from __future__ import annotations

from pixelrl.algos.drqv2_sac import DrQv2SAC, TargetEncoder

__all__ = ["DrQv2SAC", "TargetEncoder"]
