"""``PointReachEnv``: move a point agent to a goal, seen from a top-down numpy camera."""

from __future__ import annotations

import math
from typing import Any, Final, Literal, cast

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from pixelrl.envs._canvas import (
    AGENT_COLOR,
    GOAL_COLOR,
    Canvas,
    Distractors,
    as_action,
    check_float,
    check_int,
    check_render_mode,
    clip_unit,
    color_array,
    default_agent_size,
    position_options,
    sparse_reward,
)

POINT_REACH_PROPRIO_INDICES: Final[tuple[int, ...]] = (2, 3)
"""Entries of ``obs["observation"]`` the robot senses itself: the agent velocity only.

In "strict" pixel experiments the agent position (entries 0 and 1) must come from the image.
"""

_MAX_GOAL_ATTEMPTS: Final = 1000

Observation = dict[str, npt.NDArray[np.float64]]


class PointReachEnv(gym.Env[Observation, npt.NDArray[np.float32]]):
    """Goal-conditioned reaching in the arena ``[-1, 1]^2``, a MuJoCo-free stand-in for FetchReach.

    The agent starts uniformly in the arena and the desired goal is drawn uniformly in the arena,
    redrawn while it lies within ``distance_threshold`` of the start. Each step the agent moves
    by ``step_size * clip(action, -1, 1)``, clipped to the arena. Episodes never terminate;
    register with a time limit (``pixelrl/PointReach-v0`` uses 50 steps).

    Observations (all float64; positions lie in ``[-1, 1]``, differences of positions in ``[-2, 2]``):

    - ``observation``: ``(4,)`` ``[agent_x, agent_y, vel_x, vel_y]``, where the velocity is the
      displacement of the last step (zeros after reset). See :data:`POINT_REACH_PROPRIO_INDICES`.
    - ``achieved_goal``: ``(2,)`` agent position.
    - ``desired_goal``: ``(2,)`` goal position.

    The reward is sparse, ``-1`` while ``||achieved - desired|| > distance_threshold`` and ``0``
    after; ``info["is_success"]`` is ``1.0`` exactly when the reward is 0.

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

    # gym.Env declares `metadata` as an instance attribute, so ClassVar would clash under mypy.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012

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
        check_render_mode(render_mode)
        self.image_size = check_int("image_size", image_size, minimum=2, hint="Use at least 2 pixels.")
        if agent_size is None:
            agent_size = default_agent_size(self.image_size)
        self.agent_size = check_int(
            "agent_size",
            agent_size,
            minimum=1,
            maximum=self.image_size - 1,
            hint=f"The agent must be smaller than the {self.image_size}-pixel image so its position "
            "shows; lower agent_size or raise image_size.",
        )
        self.noise = check_int("noise", noise, minimum=0, maximum=255, hint="Noise is a uint8 amplitude.")
        self.n_distractors = check_int("n_distractors", n_distractors, minimum=0)
        self.step_size = check_float("step_size", step_size, low=0.0, high=2.0, hint="The arena is 2 wide.")
        self.distance_threshold = check_float(
            "distance_threshold",
            distance_threshold,
            low=0.0,
            high=1.0,
            hint="A larger radius would make most of the arena count as success.",
        )
        self.render_goal = bool(render_goal)
        self.render_mode = render_mode

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        observation_high = np.array([1.0, 1.0, 2.0, 2.0], dtype=np.float64)
        # Finite, exact bounds (unlike Fetch's infinite ones): positions stay in the arena and any
        # difference of two arena points (velocities, relative positions) lies in [-2, 2].
        # gymnasium types Dict as Space[dict[str, Space]], hence the cast to the real sample type.
        self.observation_space = cast(
            "spaces.Space[Observation]",
            spaces.Dict(
                {
                    "observation": spaces.Box(-observation_high, observation_high, dtype=np.float64),
                    "achieved_goal": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float64),
                    "desired_goal": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float64),
                }
            ),
        )

        self._canvas = Canvas(self.image_size, self.agent_size, self.noise)
        self._distractors = Distractors(self.n_distractors, self.step_size)
        self._agent_color = color_array(AGENT_COLOR)
        self._goal_color = color_array(GOAL_COLOR)
        # A fixed layout so that render() before the first reset() draws something sensible.
        self._agent = np.zeros(2, dtype=np.float64)
        self._velocity = np.zeros(2, dtype=np.float64)
        self._goal = np.array([0.5, 0.5], dtype=np.float64)
        self._noise_rng = np.random.default_rng(0)
        self._needs_reset = True

    def world_to_pixel(self, position: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Expected mean ``(row, col)`` pixel index of the agent drawn at ``position``.

        Args:
            position: ``(..., 2)`` arena ``(x, y)`` positions.

        Returns:
            ``(..., 2)`` float64; the centroid of the agent's pixels is within half a pixel of it.
        """
        return self._canvas.world_to_pixel(position)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start a new episode.

        Args:
            seed: Seeds ``self.np_random``; the same seed gives the same observations and frames.
            options: Optionally pin the initial state, for tests and diagnostics:
                ``{"agent_position": (x, y), "goal": (x, y)}``, both optional and inside
                ``[-1, 1]^2``. A pinned goal is used as is, even if already reached.

        Returns:
            The first observation and ``{"is_success": ...}`` (0.0 unless a pinned goal is reached).

        Raises:
            ValueError: an unknown option or a position outside the arena.
        """
        pinned = position_options(options, ("agent_position", "goal"))
        super().reset(seed=seed)
        # Drawn first and always, so that noise and distractor settings never shift the task's draws.
        noise_seed, distractor_seed = self.np_random.integers(0, 2**63 - 1, size=2).tolist()
        self._noise_rng = np.random.default_rng(noise_seed)
        self._distractors.reset(np.random.default_rng(distractor_seed))
        agent = pinned.get("agent_position")
        self._agent = self.np_random.uniform(-1.0, 1.0, size=2) if agent is None else agent
        goal = pinned.get("goal")
        self._goal = self._sample_goal() if goal is None else goal
        self._velocity = np.zeros(2, dtype=np.float64)
        self._needs_reset = False
        obs = self._get_obs()
        success = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None) == 0.0)
        return obs, {"is_success": success}

    def _sample_goal(self) -> npt.NDArray[np.float64]:
        for _ in range(_MAX_GOAL_ATTEMPTS):
            goal = self.np_random.uniform(-1.0, 1.0, size=2)
            if math.dist(goal.tolist(), self._agent.tolist()) > self.distance_threshold:
                return goal
        raise RuntimeError(
            f"Could not sample a goal farther than distance_threshold={self.distance_threshold} from the "
            f"start in {_MAX_GOAL_ATTEMPTS} tries; lower distance_threshold."
        )

    def step(self, action: npt.NDArray[np.float32]) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Move the agent by ``step_size * clip(action, -1, 1)``.

        Args:
            action: ``(2,)`` float displacement direction in ``[-1, 1]`` (values outside are clipped).

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``terminated`` and ``truncated`` are
            always False (a ``TimeLimit`` truncates), ``info["is_success"]`` is 1.0 or 0.0.

        Raises:
            RuntimeError: ``reset()`` was never called.
            ValueError: the action is not a finite ``(2,)`` array.
        """
        if self._needs_reset:
            raise RuntimeError("PointReachEnv.step() was called before reset(); call env.reset() first.")
        ux, uy = as_action(action)
        x, y = self._agent.tolist()
        new_agent = np.array([clip_unit(x + self.step_size * ux), clip_unit(y + self.step_size * uy)])
        self._velocity = new_agent - self._agent
        self._agent = new_agent
        self._distractors.step()
        obs = self._get_obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))
        return obs, reward, False, False, {"is_success": float(reward == 0.0)}

    def compute_reward(
        self, achieved_goal: npt.ArrayLike, desired_goal: npt.ArrayLike, info: object
    ) -> npt.NDArray[np.float32]:
        """Sparse reward for (possibly relabelled) goals, vectorised like Fetch's.

        Args:
            achieved_goal: ``(2,)`` or ``(B, 2)`` float agent positions.
            desired_goal: Goals, same shape as ``achieved_goal``.
            info: Unused; a dict, a list or array of dicts, or None.

        Returns:
            float32 rewards in ``{-1, 0}``: 0-d for single goals, ``(B,)`` for batches.

        Raises:
            ValueError: the two goal arrays differ in shape or do not end in 2.
        """
        return sparse_reward(achieved_goal, desired_goal, self.distance_threshold)

    def render(self) -> npt.NDArray[np.uint8]:
        """Draw the current state.

        Returns:
            ``(image_size, image_size, 3)`` uint8 C-contiguous frame. It depends only on the state,
            plus the noise generator (seeded by ``reset``) when ``noise > 0``.

        Raises:
            RuntimeError: the env was made with ``render_mode=None``.
        """
        if self.render_mode is None:
            raise RuntimeError(
                "PointReachEnv was created with render_mode=None, so it cannot render; "
                "create it with render_mode='rgb_array'."
            )
        canvas = self._canvas
        frame = canvas.new_frame(self._noise_rng)
        if self.render_goal:
            gx, gy = self._goal.tolist()
            canvas.draw_outline(frame, gx, gy, self.agent_size + 2, self._goal_color)
        self._distractors.draw(canvas, frame, self.agent_size)
        ax, ay = self._agent.tolist()
        canvas.draw_disc(frame, ax, ay, self.agent_size, self._agent_color)
        return frame

    def _get_obs(self) -> Observation:
        return {
            "observation": np.concatenate([self._agent, self._velocity]),
            "achieved_goal": self._agent.copy(),
            "desired_goal": self._goal.copy(),
        }
