"""``PointReachEnv``: move a point agent to a goal, seen from a top-down numpy camera."""

from __future__ import annotations

import math
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from pixelrl.envs._canvas import clip_unit
from pixelrl.envs.point_goal import Observation, PointGoalEnv, check_frame_knobs

__all__ = ["POINT_REACH_PROPRIO_INDICES", "PointReachEnv"]

POINT_REACH_PROPRIO_INDICES: Final[tuple[int, ...]] = (2, 3)
"""Entries of ``obs["observation"]`` the robot senses itself: the agent velocity only.

In "strict" pixel experiments the agent position (entries 0 and 1) must come from the image.
"""

_MAX_GOAL_ATTEMPTS: Final = 1000
_OBSERVATION_HIGH: Final = (1.0, 1.0, 2.0, 2.0)


class PointReachEnv(PointGoalEnv):
    """Goal-conditioned reaching in the arena ``[-1, 1]^2``, a MuJoCo-free stand-in for FetchReach.

    The agent starts uniformly in the arena and the desired goal is drawn uniformly in the arena,
    redrawn while it lies within ``distance_threshold`` of the start. Each step the agent moves
    by ``step_size * clip(action, -1, 1)``, clipped to the arena. Episodes never terminate;
    register with a time limit (``pixelrl/PointReach-v0`` uses 50 steps).

    Observations (all float64; positions lie in ``[-1, 1]``, differences of positions in ``[-2, 2]``):

    - ``observation``: ``(4,)`` ``[agent_x, agent_y, vel_x, vel_y]``, where the velocity is the
      displacement of the last step (zeros after reset). See
      [POINT_REACH_PROPRIO_INDICES][pixelrl.envs.POINT_REACH_PROPRIO_INDICES].
    - ``achieved_goal``: ``(2,)`` agent position.
    - ``desired_goal``: ``(2,)`` goal position.

    The reward is sparse, ``-1`` while ``||achieved - desired|| > distance_threshold`` and ``0``
    after; ``info["is_success"]`` is ``1.0`` exactly when the reward is 0. For tests and
    diagnostics, ``reset(options=...)`` can pin ``"agent_position"`` and ``"goal"``.

    ``render()`` draws a top-down ``(image_size, image_size, 3) uint8`` frame: ``x`` to the
    right, ``y`` up. The agent is an ``agent_size``-pixel disc in ``AGENT_COLOR``; distractors are
    discs of the same size in ``DISTRACTOR_COLORS``, drawn beneath it. With ``render_goal`` the
    goal is a hollow ``agent_size + 2`` square in ``GOAL_COLOR`` (drawn first, so it frames the
    agent when the agent sits on the goal). Noise is added to the background only.

    Args:
        render_mode: ``"rgb_array"`` (default) or ``None`` to forbid rendering.
        image_size: Frame height and width in pixels, at least 2.
        agent_size: Agent (and distractor) sprite width in pixels; defaults to
            ``max(1, image_size // 8)``. Must be smaller than ``image_size``.
        render_goal: Draw the desired goal. Off by default because HER relabels the goal vector
            and a drawn goal would then contradict it.
        noise: Background noise amplitude in ``[0, 255]``, redrawn every frame; 0 disables it.
        n_distractors: Number of distractor discs, each random-walking up to ``step_size`` per
            axis per step; they never affect the reward, the observation vector or the task's
            random draws.
        step_size: Largest per-axis move per step, in arena units, in ``(0, 2]``.
        distance_threshold: Success radius in arena units, in ``(0, 1]``.

    Raises:
        ValueError: a knob is out of range (the message says which and how to fix it).
        TypeError: a knob has the wrong type.

    Examples:
        >>> env = PointReachEnv(image_size=16)
        >>> obs, info = env.reset(seed=0)
        >>> obs["observation"].shape, env.render().shape
        ((4,), (16, 16, 3))
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> float(env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)) == reward
        True
    """

    def __init__(
        self,
        *,
        render_mode: Literal["rgb_array"] | None = "rgb_array",
        image_size: int = 32,
        agent_size: int | None = None,
        render_goal: bool = False,
        noise: int = 0,
        n_distractors: int = 0,
        step_size: float = 0.1,
        distance_threshold: float = 0.1,
    ) -> None:
        image_size, agent_size = check_frame_knobs(
            render_mode,
            image_size,
            agent_size,
            min_image_size=2,
            size_hint="The agent must be smaller than the {image_size}-pixel image so its position "
            "shows; lower agent_size or raise image_size.",
        )
        super().__init__(
            render_mode=render_mode,
            image_size=image_size,
            agent_size=agent_size,
            max_sprite_size=agent_size,
            goal_marker_size=agent_size + 2,
            observation_high=np.array(_OBSERVATION_HIGH, dtype=np.float64),
            render_goal=render_goal,
            noise=noise,
            n_distractors=n_distractors,
            step_size=step_size,
            distance_threshold=distance_threshold,
        )
        # A fixed layout so that render() before the first reset() draws something sensible.
        self._agent = np.zeros(2, dtype=np.float64)
        self._goal = np.array([0.5, 0.5], dtype=np.float64)

    def _sample_initial_state(self, pinned: dict[str, npt.NDArray[np.float64]]) -> None:
        agent = pinned.get("agent_position")
        self._agent = self.np_random.uniform(-1.0, 1.0, size=2) if agent is None else agent
        goal = pinned.get("goal")
        self._goal = self._sample_goal() if goal is None else goal

    def _sample_goal(self) -> npt.NDArray[np.float64]:
        for _ in range(_MAX_GOAL_ATTEMPTS):
            goal = self.np_random.uniform(-1.0, 1.0, size=2)
            if math.dist(goal.tolist(), self._agent.tolist()) > self.distance_threshold:
                return goal
        raise RuntimeError(
            f"Could not sample a goal farther than distance_threshold={self.distance_threshold} from the "
            f"start in {_MAX_GOAL_ATTEMPTS} tries; lower distance_threshold."
        )

    def _apply_action(self, ux: float, uy: float) -> npt.NDArray[np.float64]:
        x, y = self._agent.tolist()
        return np.array([clip_unit(x + self.step_size * ux), clip_unit(y + self.step_size * uy)])

    def _get_obs(self) -> Observation:
        return {
            "observation": np.concatenate([self._agent, self._velocity]),
            "achieved_goal": self._agent.copy(),
            "desired_goal": self._goal.copy(),
        }
