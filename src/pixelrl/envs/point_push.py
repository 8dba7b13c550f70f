"""``PointPushEnv``: push an object to a goal with a point agent, seen from a top-down numpy camera."""

from __future__ import annotations

import math
from typing import ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt

from pixelrl.envs._canvas import OBJECT_COLOR, check_float, check_int, clip_unit, color_array
from pixelrl.envs.point_goal import Observation, PointGoalEnv, check_frame_knobs

__all__ = ["AGENT_START_GAP", "OBJECT_START_RANGE", "POINT_PUSH_PROPRIO_INDICES", "PointPushEnv"]

POINT_PUSH_PROPRIO_INDICES: Final[tuple[int, ...]] = (0, 1, 6, 7)
"""Entries of ``obs["observation"]`` the robot senses itself: agent position and velocity.

The object state (entries 2 to 5) must come from the image in pixel experiments.
"""

OBJECT_START_RANGE: Final = 0.3
"""The object starts uniformly in ``[-OBJECT_START_RANGE, OBJECT_START_RANGE]^2``."""
AGENT_START_GAP: Final = (0.05, 0.35)
"""The agent starts this far (uniform) beyond contact distance from the object, in any direction."""

_MAX_ATTEMPTS: Final = 1000
_MAX_CONTACT_RADIUS: Final = 0.5
_OBSERVATION_HIGH: Final = (1.0,) * 4 + (2.0,) * 4
_SIZE_HINT: Final = (
    "Sprites must be smaller than the {image_size}-pixel image so their positions show; "
    "lower the size or raise image_size."
)


class PointPushEnv(PointGoalEnv):
    """Goal-conditioned pushing in the arena ``[-1, 1]^2``, a MuJoCo-free stand-in for FetchPush.

    Dynamics are kinematic. Each step the agent moves by ``step_size * clip(action, -1, 1)``,
    clipped to the arena. When that move brings its centre within ``contact_radius`` of the
    object's, the object is pushed out along the line from the agent's centre to the object's
    until they are ``contact_radius`` apart again, like two discs; pushing off-centre therefore
    steers the object. The object is clipped to the arena; when a wall stops it, the agent is
    stopped at contact distance instead (in a corner a small overlap may remain). Moves longer
    than half the contact radius are split into sub-steps so the agent cannot tunnel through.

    Initial state, chosen so SAC+HER learns it in tens of thousands of steps: the object starts
    uniformly in ``[-0.3, 0.3]^2`` (`OBJECT_START_RANGE`); the goal is the object position
    plus ``U(-object_goal_range, object_goal_range)`` per axis (as in Fetch), clipped to the
    arena and redrawn while within ``distance_threshold`` of the object; the agent starts
    ``contact_radius + U(0.05, 0.35)`` (`AGENT_START_GAP`) from the object in a uniformly
    random direction, so it is a few steps from contact but not always behind the object.

    Observations (all float64; positions lie in ``[-1, 1]``, differences of positions in ``[-2, 2]``):

    - ``observation``: ``(8,)`` ``[agent_x, agent_y, object_x, object_y, rel_x, rel_y,
      agent_vel_x, agent_vel_y]`` with ``rel = object - agent`` and the velocity the agent's
      displacement in the last step. See [POINT_PUSH_PROPRIO_INDICES][pixelrl.envs.POINT_PUSH_PROPRIO_INDICES].
    - ``achieved_goal``: ``(2,)`` object position.
    - ``desired_goal``: ``(2,)`` goal position.

    The reward is sparse, ``-1`` while ``||achieved - desired|| > distance_threshold`` and ``0``
    after; ``info["is_success"]`` is ``1.0`` exactly when the reward is 0. Episodes never
    terminate; ``pixelrl/PointPush-v0`` truncates after 50 steps. For tests and diagnostics,
    ``reset(options=...)`` can pin ``"agent_position"``, ``"object_position"`` and ``"goal"`` (the
    rest is sampled around them); pinned agent and object must be ``contact_radius`` apart.

    ``render()`` draws a top-down ``(image_size, image_size, 3) uint8`` frame: ``x`` to the
    right, ``y`` up. Back to front: the goal marker (only with ``render_goal``; a hollow
    ``object_size + 2`` square in ``GOAL_COLOR`` that frames the object when on the goal),
    distractors (``agent_size`` discs in ``DISTRACTOR_COLORS``), the object (``object_size``
    disc in ``OBJECT_COLOR``) and the agent (``agent_size`` disc in ``AGENT_COLOR``).
    Noise is added to the background only.

    Args:
        render_mode: ``"rgb_array"`` (default) or ``None`` to forbid rendering.
        image_size: Frame height and width in pixels, at least 3.
        agent_size: Agent (and distractor) sprite width in pixels; defaults to
            ``max(1, image_size // 8)``.
        object_size: Object sprite width in pixels; defaults to a bit larger than the agent,
            ``max(agent_size + 1, round(1.25 * agent_size))``. Both sizes must be smaller than
            ``image_size``.
        render_goal: Draw the desired goal. Off by default because HER relabels the goal vector
            and a drawn goal would then contradict it.
        noise: Background noise amplitude in ``[0, 255]``, redrawn every frame; 0 disables it.
        n_distractors: Number of distractor discs, each random-walking up to ``step_size`` per
            axis per step; they pass through everything and never affect the reward, the
            observation vector or the task's random draws.
        step_size: Largest per-axis agent move per step, in arena units, in ``(0, 2]``.
        distance_threshold: Success radius in arena units, in ``(0, 1]``.
        object_goal_range: Largest per-axis offset of the goal from the object's start, in
            ``(distance_threshold, 2]``.
        contact_radius: Centre distance at which agent and object touch, in ``(0, 0.5]``.
            Defaults to the drawn sizes: ``(agent_size + object_size) / 2`` pixels in arena
            units, so the drawn discs touch whenever the bodies do (up to pixel rounding, which
            can let the agent, drawn on top, hide a rim pixel of the object).

    Raises:
        ValueError: a knob is out of range (the message says which and how to fix it).
        TypeError: a knob has the wrong type.

    Examples:
        >>> env = PointPushEnv(image_size=16)
        >>> obs, info = env.reset(seed=0)
        >>> obs["observation"].shape, env.render().shape
        ((8,), (16, 16, 3))
        >>> bool((obs["achieved_goal"] == obs["observation"][2:4]).all())
        True
    """

    _reset_options: ClassVar[tuple[str, ...]] = ("agent_position", "object_position", "goal")

    def __init__(
        self,
        *,
        render_mode: Literal["rgb_array"] | None = "rgb_array",
        image_size: int = 32,
        agent_size: int | None = None,
        object_size: int | None = None,
        render_goal: bool = False,
        noise: int = 0,
        n_distractors: int = 0,
        step_size: float = 0.1,
        distance_threshold: float = 0.1,
        object_goal_range: float = 0.5,
        contact_radius: float | None = None,
    ) -> None:
        image_size, agent_size = check_frame_knobs(
            render_mode, image_size, agent_size, min_image_size=3, size_hint=_SIZE_HINT
        )
        if object_size is None:
            object_size = min(max(agent_size + 1, round(1.25 * agent_size)), image_size - 1)
        self.object_size = check_int(
            "object_size", object_size, minimum=1, maximum=image_size - 1, hint=_SIZE_HINT.format(image_size=image_size)
        )
        super().__init__(
            render_mode=render_mode,
            image_size=image_size,
            agent_size=agent_size,
            max_sprite_size=max(agent_size, self.object_size),
            goal_marker_size=self.object_size + 2,
            observation_high=np.array(_OBSERVATION_HIGH, dtype=np.float64),
            render_goal=render_goal,
            noise=noise,
            n_distractors=n_distractors,
            step_size=step_size,
            distance_threshold=distance_threshold,
        )
        self.object_goal_range = check_float(
            "object_goal_range",
            object_goal_range,
            low=self.distance_threshold,
            high=2.0,
            hint="Goals are redrawn while within distance_threshold of the object, so the range must exceed it.",
        )
        if contact_radius is None:
            derived = (self.agent_size + self.object_size) / 2.0 * self._canvas.arena_units_per_pixel
            self.contact_radius = check_float(
                "contact_radius (derived from the sprite sizes)",
                derived,
                low=0.0,
                high=_MAX_CONTACT_RADIUS,
                hint="The sprites are too large for the image: raise image_size, lower agent_size/object_size, "
                "or pass contact_radius explicitly.",
            )
        else:
            self.contact_radius = check_float("contact_radius", contact_radius, low=0.0, high=_MAX_CONTACT_RADIUS)
        self._object_color = color_array(OBJECT_COLOR)
        # A fixed layout so that render() before the first reset() draws something sensible.
        self._agent = np.array([-0.5, 0.0], dtype=np.float64)
        self._object = np.zeros(2, dtype=np.float64)
        self._goal = np.array([0.5, 0.0], dtype=np.float64)

    def _check_pinned(self, pinned: dict[str, npt.NDArray[np.float64]]) -> None:
        agent, obj = pinned.get("agent_position"), pinned.get("object_position")
        if agent is not None and obj is not None and math.dist(agent.tolist(), obj.tolist()) < self.contact_radius:
            raise ValueError(
                f"reset options agent_position={agent.tolist()} and object_position={obj.tolist()} overlap: "
                f"their centres must be at least contact_radius={self.contact_radius:.4g} apart."
            )

    def _sample_initial_state(self, pinned: dict[str, npt.NDArray[np.float64]]) -> None:
        agent, obj, goal = pinned.get("agent_position"), pinned.get("object_position"), pinned.get("goal")
        if obj is None:
            obj = self._sample_object(agent)
        self._object = obj
        self._goal = self._sample_goal(obj) if goal is None else goal
        self._agent = self._sample_agent(obj) if agent is None else agent

    def _sample_object(self, agent: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        for _ in range(_MAX_ATTEMPTS):
            obj = self.np_random.uniform(-OBJECT_START_RANGE, OBJECT_START_RANGE, size=2)
            if agent is None or math.dist(agent.tolist(), obj.tolist()) >= self.contact_radius:
                return obj
        raise RuntimeError("Could not place the object away from the pinned agent; pin object_position too.")

    def _sample_goal(self, obj: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        r = self.object_goal_range
        for _ in range(_MAX_ATTEMPTS):
            goal = np.clip(obj + self.np_random.uniform(-r, r, size=2), -1.0, 1.0)
            if math.dist(goal.tolist(), obj.tolist()) > self.distance_threshold:
                return goal
        raise RuntimeError(  # pragma: no cover - unreachable with validated knobs
            f"Could not sample a goal farther than {self.distance_threshold} from the object; raise object_goal_range."
        )

    def _sample_agent(self, obj: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        ox, oy = obj.tolist()
        for _ in range(_MAX_ATTEMPTS):
            angle = self.np_random.uniform(0.0, 2.0 * math.pi)
            distance = self.contact_radius + self.np_random.uniform(*AGENT_START_GAP)
            x, y = ox + distance * math.cos(angle), oy + distance * math.sin(angle)
            if abs(x) <= 1.0 and abs(y) <= 1.0:
                return np.array([x, y], dtype=np.float64)
        raise RuntimeError("Could not place the agent next to the object inside the arena; lower contact_radius.")

    def _apply_action(self, ux: float, uy: float) -> npt.NDArray[np.float64]:
        dx, dy = self.step_size * ux, self.step_size * uy
        # Sub-steps no longer than half the contact radius, so the agent cannot tunnel through.
        n_sub = max(1, math.ceil(math.hypot(dx, dy) / (0.5 * self.contact_radius)))
        ax, ay = self._agent.tolist()
        ox, oy = self._object.tolist()
        for _ in range(n_sub):
            ax, ay, ox, oy = self._substep(ax, ay, ox, oy, dx / n_sub, dy / n_sub)
        self._object = np.array([ox, oy], dtype=np.float64)
        return np.array([ax, ay], dtype=np.float64)

    def _substep(
        self, ax: float, ay: float, ox: float, oy: float, dx: float, dy: float
    ) -> tuple[float, float, float, float]:
        radius = self.contact_radius
        ax, ay = clip_unit(ax + dx), clip_unit(ay + dy)
        sx, sy = ox - ax, oy - ay
        separation = math.hypot(sx, sy)
        if separation >= radius:
            return ax, ay, ox, oy
        if separation > 1e-12:
            ux, uy = sx / separation, sy / separation
        else:
            # Centres coincide: push along the move, or arbitrarily along +x if there was none.
            norm = math.hypot(dx, dy)
            ux, uy = (dx / norm, dy / norm) if norm > 0.0 else (1.0, 0.0)
        ox, oy = clip_unit(ax + radius * ux), clip_unit(ay + radius * uy)
        bx, by = ax - ox, ay - oy
        back = math.hypot(bx, by)
        if back < radius:
            # A wall stopped the object: stop the agent at contact distance instead.
            vx, vy = (bx / back, by / back) if back > 1e-12 else (-ux, -uy)
            ax, ay = clip_unit(ox + radius * vx), clip_unit(oy + radius * vy)
        return ax, ay, ox, oy

    def _draw_bodies(self, frame: npt.NDArray[np.uint8]) -> None:
        ox, oy = self._object.tolist()
        self._canvas.draw_disc(frame, ox, oy, self.object_size, self._object_color)

    def _get_obs(self) -> Observation:
        return {
            "observation": np.concatenate([self._agent, self._object, self._object - self._agent, self._velocity]),
            "achieved_goal": self._object.copy(),
            "desired_goal": self._goal.copy(),
        }
