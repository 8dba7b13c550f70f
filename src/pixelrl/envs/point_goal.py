"""``PointGoalEnv``: the machinery shared by the point envs (knobs, seeding, stepping, rendering).

A subclass says only what its task adds: how the initial state is drawn, how an action moves
the bodies, which sprites it draws over the distractors and what its observation vector holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, cast

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
    color_array,
    default_agent_size,
    position_options,
    sparse_reward,
)

__all__ = ["Observation", "PointGoalEnv", "check_frame_knobs"]

Observation = dict[str, npt.NDArray[np.float64]]
"""A point env's observation: ``observation``, ``achieved_goal`` and ``desired_goal``, all float64."""


def check_frame_knobs(
    render_mode: object, image_size: object, agent_size: object, *, min_image_size: int, size_hint: str
) -> tuple[int, int]:
    """Validate the render mode, the image size and the agent size, in that order.

    Subclasses call it before ``PointGoalEnv.__init__`` so that their own sprite sizes, which
    depend on these two, are checked in the order the knobs are listed.

    Args:
        render_mode: ``"rgb_array"`` or ``None``.
        image_size: Frame side in pixels, at least ``min_image_size``.
        agent_size: Agent sprite width in pixels, or ``None`` for ``max(1, image_size // 8)``.
        min_image_size: Smallest accepted ``image_size``.
        size_hint: Fix shown when ``agent_size`` is too large; ``{image_size}`` is filled in.

    Returns:
        ``(image_size, agent_size)`` as ints.

    Raises:
        ValueError: a knob is out of range.
        TypeError: a size is not an int.
    """
    check_render_mode(render_mode)
    size = check_int("image_size", image_size, minimum=min_image_size, hint=f"Use at least {min_image_size} pixels.")
    if agent_size is None:
        agent_size = default_agent_size(size)
    agent = check_int("agent_size", agent_size, minimum=1, maximum=size - 1, hint=size_hint.format(image_size=size))
    return size, agent


class PointGoalEnv(gym.Env[Observation, npt.NDArray[np.float32]], ABC):
    """Base class of the MuJoCo-free point envs: a point agent in the arena ``[-1, 1]^2``.

    It holds what [PointReachEnv][pixelrl.envs.PointReachEnv] and
    [PointPushEnv][pixelrl.envs.PointPushEnv] share: the knobs common to both, the Fetch-style
    dict spaces, seeding (the noise and distractor generators are drawn first on every reset, so
    those knobs never shift the task's draws), ``reset(options=...)`` validation, stepping with
    clipped actions, the sparse ``compute_reward`` and rendering (background, goal marker,
    distractors, the task's bodies, the agent on top).

    A subclass validates its own knobs, calls this constructor, then sets the initial layout
    (``_agent``, ``_goal`` and any body of its own) so ``render()`` works before ``reset()``.
    It implements ``_sample_initial_state``, ``_apply_action`` and ``_get_obs``, and may
    override ``_check_pinned`` and ``_draw_bodies``.

    Args:
        render_mode: ``"rgb_array"`` or ``None`` (already validated by ``check_frame_knobs``).
        image_size: Validated frame side in pixels.
        agent_size: Validated agent (and distractor) sprite width in pixels.
        max_sprite_size: Width of the largest sprite; sprite centres stay clear of the edges by
            half of it, so no sprite is ever cropped.
        goal_marker_size: Side of the hollow goal square drawn with ``render_goal``; two pixels
            wider than the sprite whose position is the achieved goal, so it frames that sprite.
        observation_high: ``(n,)`` bounds of the ``observation`` vector (``low = -high``).
        render_goal: Draw the desired goal.
        noise: Background noise amplitude in ``[0, 255]``, redrawn every frame; 0 disables it.
        n_distractors: Number of random-walking distractor discs (>= 0).
        step_size: Largest per-axis agent move per step, in arena units, in ``(0, 2]``.
        distance_threshold: Success radius in arena units, in ``(0, 1]``.

    Raises:
        ValueError: a knob is out of range (the message says which and how to fix it).
        TypeError: a knob has the wrong type.
    """

    # gym.Env declares `metadata` as an instance attribute, so ClassVar would clash under mypy.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012

    # The names reset(options=...) accepts, each an (x, y) point in the arena.
    _reset_options: ClassVar[tuple[str, ...]] = ("agent_position", "goal")

    def __init__(
        self,
        *,
        render_mode: Literal["rgb_array"] | None,
        image_size: int,
        agent_size: int,
        max_sprite_size: int,
        goal_marker_size: int,
        observation_high: npt.NDArray[np.float64],
        render_goal: bool,
        noise: int,
        n_distractors: int,
        step_size: float,
        distance_threshold: float,
    ) -> None:
        self.image_size = image_size
        self.agent_size = agent_size
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

        self._canvas = Canvas(self.image_size, max_sprite_size, self.noise)
        self._goal_marker_size = goal_marker_size
        self._distractors = Distractors(self.n_distractors, self.step_size)
        self._agent_color = color_array(AGENT_COLOR)
        self._goal_color = color_array(GOAL_COLOR)
        self._agent = np.zeros(2, dtype=np.float64)
        self._velocity = np.zeros(2, dtype=np.float64)
        self._goal = np.zeros(2, dtype=np.float64)
        self._noise_rng = np.random.default_rng(0)
        self._needs_reset = True

    def world_to_pixel(self, position: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Expected mean ``(row, col)`` pixel index of a sprite (agent or object) drawn at ``position``.

        Args:
            position: ``(..., 2)`` arena ``(x, y)`` positions.

        Returns:
            ``(..., 2)`` float64; the centroid of the sprite's pixels is within half a pixel of it.
        """
        return self._canvas.world_to_pixel(position)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start a new episode (the class docstring gives the initial-state distribution).

        Args:
            seed: Seeds ``self.np_random``; the same seed gives the same observations and frames.
            options: Optionally pin the initial state, for tests and diagnostics: a dict mapping
                some of ``"agent_position"``, ``"goal"`` (and, for PointPush,
                ``"object_position"``) to ``(x, y)`` points inside ``[-1, 1]^2``; the rest is
                sampled around them as usual. A pinned goal is used as is, even if already reached.

        Returns:
            The first observation and ``{"is_success": ...}`` (0.0 unless a pinned goal is reached).

        Raises:
            ValueError: an unknown option, a position outside the arena, or pinned positions the
                task forbids (PointPush: agent and object closer than ``contact_radius``).
        """
        pinned = position_options(options, self._reset_options)
        self._check_pinned(pinned)
        super().reset(seed=seed)
        # Drawn first and always, so that noise and distractor settings never shift the task's draws.
        noise_seed, distractor_seed = self.np_random.integers(0, 2**63 - 1, size=2).tolist()
        self._noise_rng = np.random.default_rng(noise_seed)
        self._distractors.reset(np.random.default_rng(distractor_seed))
        self._sample_initial_state(pinned)
        self._velocity = np.zeros(2, dtype=np.float64)
        self._needs_reset = False
        obs = self._get_obs()
        success = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None) == 0.0)
        return obs, {"is_success": success}

    def step(self, action: npt.NDArray[np.float32]) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Move the agent by ``step_size * clip(action, -1, 1)`` (PointPush pushes the object on contact).

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
            raise RuntimeError(f"{type(self).__name__}.step() was called before reset(); call env.reset() first.")
        ux, uy = as_action(action)
        new_agent = self._apply_action(ux, uy)
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
            achieved_goal: ``(2,)`` or ``(B, 2)`` float achieved goals (the agent's position in
                PointReach, the object's in PointPush).
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
                f"{type(self).__name__} was created with render_mode=None, so it cannot render; "
                "create it with render_mode='rgb_array'."
            )
        canvas = self._canvas
        frame = canvas.new_frame(self._noise_rng)
        if self.render_goal:
            gx, gy = self._goal.tolist()
            canvas.draw_outline(frame, gx, gy, self._goal_marker_size, self._goal_color)
        self._distractors.draw(canvas, frame, self.agent_size)
        self._draw_bodies(frame)
        ax, ay = self._agent.tolist()
        canvas.draw_disc(frame, ax, ay, self.agent_size, self._agent_color)
        return frame

    def _check_pinned(self, pinned: dict[str, npt.NDArray[np.float64]]) -> None:
        """Reject pinned positions the task forbids, before anything is seeded; none by default."""

    def _draw_bodies(self, frame: npt.NDArray[np.uint8]) -> None:
        """Draw the task's own bodies over the distractors and beneath the agent; none by default."""

    @abstractmethod
    def _sample_initial_state(self, pinned: dict[str, npt.NDArray[np.float64]]) -> None:
        """Set ``_agent``, ``_goal`` and the task's bodies, drawing from ``np_random`` what is not pinned."""

    @abstractmethod
    def _apply_action(self, ux: float, uy: float) -> npt.NDArray[np.float64]:
        """Move the task's bodies for a clipped action; return the agent's new ``(2,)`` position."""

    @abstractmethod
    def _get_obs(self) -> Observation:
        """The observation dict of the current state (fresh arrays)."""
