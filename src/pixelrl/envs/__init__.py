"""Small, fast, MuJoCo-free goal-conditioned envs rendered with numpy.

These envs stand in for the MuJoCo Fetch tasks so that tests and learning experiments run in
seconds on a CPU. They follow the Fetch API: dict observations with ``observation``,
``achieved_goal`` and ``desired_goal`` (float64), a sparse ``{-1, 0}`` reward from a vectorised
``compute_reward`` that HER can call on relabelled batches, ``info["is_success"]``, no
termination (a ``TimeLimit`` truncates) and ``render()`` returning an ``(H, W, 3) uint8``
top-down frame for [PixelObservationWrapper][pixelrl.wrappers.PixelObservationWrapper] to turn
into pixel observations.

- [PointReachEnv][pixelrl.envs.PointReachEnv] (``pixelrl/PointReach-v0``): move a point agent to
  a goal.
- [PointPushEnv][pixelrl.envs.PointPushEnv] (``pixelrl/PointPush-v0``): push an object to a goal.
- [PointGoalEnv][pixelrl.envs.PointGoalEnv]: their shared base class (knobs, seeding, stepping,
  rendering), for writing another point task.

Both are registered with gymnasium on import, with ``max_episode_steps=50``. Knobs for pixel
experiments (``image_size``, sprite sizes, ``render_goal``, background ``noise``,
``n_distractors``) are constructor keywords that ``gymnasium.make`` forwards.

Examples:
    >>> import gymnasium as gym
    >>> import pixelrl.envs
    >>> env = gym.make("pixelrl/PointReach-v0", image_size=16, max_episode_steps=10)
    >>> obs, info = env.reset(seed=0)
    >>> env.render().shape
    (16, 16, 3)
"""

from __future__ import annotations

import gymnasium as gym

from pixelrl.envs._canvas import (
    AGENT_COLOR,
    BACKGROUND_COLOR,
    DISTRACTOR_COLORS,
    GOAL_COLOR,
    OBJECT_COLOR,
)
from pixelrl.envs.point_goal import PointGoalEnv
from pixelrl.envs.point_push import POINT_PUSH_PROPRIO_INDICES, PointPushEnv
from pixelrl.envs.point_reach import POINT_REACH_PROPRIO_INDICES, PointReachEnv

__all__ = [
    "AGENT_COLOR",
    "BACKGROUND_COLOR",
    "DISTRACTOR_COLORS",
    "GOAL_COLOR",
    "OBJECT_COLOR",
    "POINT_PUSH_PROPRIO_INDICES",
    "POINT_REACH_PROPRIO_INDICES",
    "PointGoalEnv",
    "PointPushEnv",
    "PointReachEnv",
]

_REGISTRATIONS = {
    "pixelrl/PointReach-v0": "pixelrl.envs.point_reach:PointReachEnv",
    "pixelrl/PointPush-v0": "pixelrl.envs.point_push:PointPushEnv",
}

for _env_id, _entry_point in _REGISTRATIONS.items():
    # Re-importing (e.g. importlib.reload) must not re-register: gymnasium warns on overrides.
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=_entry_point, max_episode_steps=50)
