"""Replay buffers for pixel observations: uint8 storage, DrQ augmentation, HER.

- :class:`PixelReplayBuffer`: a standalone buffer for hand-written training loops.
- :class:`DrQDictReplayBuffer`: SB3's ``DictReplayBuffer`` + random shift at sample time.
- :class:`HerDrQDictReplayBuffer`: SB3's ``HerReplayBuffer`` + random shift at sample time.
- :class:`CompactHerReplayBuffer`: HER that stores each camera frame once (about 7.6x smaller).
- :class:`RandomShiftAug`: the DrQ pad-and-crop augmentation as an ``nn.Module``.
"""

from __future__ import annotations

from pixelrl.buffers.augmentation import RandomShiftAug
from pixelrl.buffers.compact import CompactHerReplayBuffer
from pixelrl.buffers.drq import AugmentFn, DrQDictReplayBuffer, HerDrQDictReplayBuffer, check_goal_env
from pixelrl.buffers.pixel_replay_buffer import PixelReplayBuffer

__all__ = [
    "AugmentFn",
    "CompactHerReplayBuffer",
    "DrQDictReplayBuffer",
    "HerDrQDictReplayBuffer",
    "PixelReplayBuffer",
    "RandomShiftAug",
    "check_goal_env",
]
