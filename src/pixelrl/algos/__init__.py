"""Algorithms: SB3 algorithms whose update is reorganised for pixel encoders.

- `DrQv2SAC`: SAC with DrQ-v2's update (one encoder pass per batch and role); optionally
  compiled (``compile_update``, `pixelrl.algos.drqv2_update`) and collecting while it updates
  (``overlap_collection``, `pixelrl.algos.overlap`).

Importing this package registers nothing with SB3; ``DrQv2SAC("DrQv2SACPolicy", env)``
resolves through `DrQv2SAC.policy_aliases`.
"""

from __future__ import annotations

from pixelrl.algos.drqv2_sac import DrQv2SAC, TargetEncoder
from pixelrl.algos.drqv2_update import CompileUpdateError

__all__ = ["CompileUpdateError", "DrQv2SAC", "TargetEncoder"]
