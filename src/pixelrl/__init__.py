"""pixelrl: Stable-Baselines3 extensions for learning manipulation from camera images.

Importing `pixelrl` registers ``"DrQv2SACPolicy"`` with SB3's ``SAC``, registers the
MuJoCo-free pixel envs (``pixelrl/PointReach-v0``, ``pixelrl/PointPush-v0``), chooses a
headless OpenGL backend (``MUJOCO_GL=egl``) on Linux machines without a display, and, when
torch is not imported yet, lets it back large CPU tensors with transparent huge pages
(``THP_MEM_ALLOC_ENABLE=1``; set it to 0 to opt out), which speeds up CNN training on CPU.

Examples:
    >>> from stable_baselines3 import SAC
    >>> import pixelrl
    >>> SAC.policy_aliases["DrQv2SACPolicy"] is pixelrl.DrQv2SACPolicy
    True
"""

from __future__ import annotations

import os

# PyTorch reads this once, at its first large CPU allocation, so it must be set before torch
# loads: transparent huge pages roughly halve a CNN pass on CPU (see docs/performance.md).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from pixelrl import envs
from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import (
    CompactHerReplayBuffer,
    DrQDictReplayBuffer,
    HerDrQDictReplayBuffer,
    PixelReplayBuffer,
    RandomShiftAug,
)
from pixelrl.encoders import ManipulationCNN, ManipulationExtractor, NatureCNN, SpatialSoftmax
from pixelrl.policies import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy
from pixelrl.wrappers import (
    PixelObservationWrapper,
    RenderingError,
    make_fetch_env,
    render_and_resize,
)

__version__ = "0.1.0"

__all__ = [
    "CompactHerReplayBuffer",
    "CriticEncoderActor",
    "CriticEncoderCritic",
    "DrQDictReplayBuffer",
    "DrQv2SAC",
    "DrQv2SACPolicy",
    "HerDrQDictReplayBuffer",
    "ManipulationCNN",
    "ManipulationExtractor",
    "NatureCNN",
    "PixelObservationWrapper",
    "PixelReplayBuffer",
    "RandomShiftAug",
    "RenderingError",
    "SpatialSoftmax",
    "__version__",
    "envs",
    "make_fetch_env",
    "render_and_resize",
]
