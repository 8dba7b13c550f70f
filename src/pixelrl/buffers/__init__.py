"""Replay buffers for pixel observations: uint8 storage, DrQ augmentation, HER.

- `PixelReplayBuffer`: a standalone buffer for hand-written training loops.
- `DrQDictReplayBuffer`: SB3's `DictReplayBuffer` + random shift at sample time.
- `HerDrQDictReplayBuffer`: SB3's `HerReplayBuffer` + random shift at sample time.
- `CompactHerReplayBuffer`: HER that stores each camera frame once (about 7.6x smaller).
- `RandomShiftAug`: the DrQ pad-and-crop augmentation as an `nn.Module`.
- `SampleAugmentation`: applies an augmentation to the image keys of a sampled batch; the three
  pixel buffers above compose one.
- `EnvComputeReward`: HER rewards computed in this process (the HER buffers' ``compute_reward``)
  instead of an IPC call to a subprocess env, for envs whose reward is a pure function of the goals.
"""

from __future__ import annotations

from pixelrl.buffers.augmentation import AugmentFn, RandomShiftAug, SampleAugmentation
from pixelrl.buffers.compact import CompactHerReplayBuffer
from pixelrl.buffers.drq import DrQDictReplayBuffer, HerDrQDictReplayBuffer
from pixelrl.buffers.goal_env import check_goal_env
from pixelrl.buffers.her_rewards import EnvComputeReward, RewardFn
from pixelrl.buffers.pixel_replay_buffer import PixelReplayBuffer

__all__ = [
    "AugmentFn",
    "CompactHerReplayBuffer",
    "DrQDictReplayBuffer",
    "EnvComputeReward",
    "HerDrQDictReplayBuffer",
    "PixelReplayBuffer",
    "RandomShiftAug",
    "RewardFn",
    "SampleAugmentation",
    "check_goal_env",
]
