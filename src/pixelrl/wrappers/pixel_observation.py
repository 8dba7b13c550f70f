"""PixelObservationWrapper: a goal env's state vector replaced by stacked camera frames."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, cast, get_args

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from pixelrl.wrappers.goal_leak import find_goal_copy, goal_copy_message
from pixelrl.wrappers.rendering import render_and_resize, to_image_size

__all__ = ["GoalMode", "PixelObservationWrapper", "check_goal_mode"]

logger = logging.getLogger(__name__)

GoalMode = Literal["none", "desired", "both", "strict"]
"""Which goal vectors the observation carries.

- ``"none"``: no goals (plain pixel control, no HER).
- ``"desired"``: ``desired_goal`` only.
- ``"both"``: ``desired_goal`` and ``achieved_goal``, as HER needs. For Push-like tasks
  ``achieved_goal`` IS the object's position, so a policy that reads it does not need the
  pixels to find the object.
- ``"strict"``: the same keys as ``"both"`` (HER still reads ``achieved_goal`` from the
  replay buffer), and `PixelObservationWrapper.network_exclude_keys` names
  ``achieved_goal`` so that the features extractor drops it: the networks must find the
  object in the image. So that no other input smuggles the position in, ``reset()`` and
  ``step()`` refuse an observation in which a vector that reaches the networks
  (``proprioception``) contains the achieved goal, e.g. FetchReach's full proprioception,
  whose ``grip_pos`` IS its achieved goal.
"""

_GOAL_MODES: tuple[str, ...] = get_args(GoalMode)
# Vector keys strict mode does not check: achieved_goal never reaches the networks and
# desired_goal is meant to. Every other vector key is checked for a copy of achieved_goal.
_GOAL_KEYS = ("achieved_goal", "desired_goal")


def check_goal_mode(goal_mode: object) -> GoalMode:
    """Return ``goal_mode`` if it is one of [GoalMode][pixelrl.wrappers.GoalMode]'s values.

    Raises:
        ValueError: For any other value, listing the valid ones.
    """
    if goal_mode not in _GOAL_MODES:
        raise ValueError(f"Unknown goal_mode {goal_mode!r}; expected one of {', '.join(_GOAL_MODES)}.")
    return cast("GoalMode", goal_mode)


PixelObs = dict[str, NDArray[Any]]


class PixelObservationWrapper(gym.ObservationWrapper[PixelObs, Any, Any], gym.utils.RecordConstructorArgs):
    """Replace a goal env's state vector with stacked camera frames.

    Each observation is a dict:

    - ``pixels``: ``(3 * frame_stack, H, W)`` uint8, the last ``frame_stack`` RGB frames,
      oldest first, concatenated along channels. After a reset the stack holds copies of the
      first frame, so no frame from a previous episode leaks in.
    - ``proprioception`` (when ``proprio_indices`` is given): the entries of the wrapped
      env's ``observation`` vector the robot senses directly (joint encoders, gripper).
    - ``desired_goal`` / ``achieved_goal``, by ``goal_mode``.

    The pixel space is declared ``Box(0, 255, (C, H, W), uint8)`` so SB3 stores frames as
    uint8 and divides by 255 only inside the policy.

    Args:
        env: A goal env created with ``render_mode="rgb_array"``. For MuJoCo envs pass
            ``width`` and ``height`` equal to ``image_size`` so frames render natively; any
            other size is resized with PIL (slower).
        image_size: Frame ``(height, width)`` or one int for a square frame.
        frame_stack: Number of frames stacked along the channel axis (>= 1).
        proprio_indices: Indices into the wrapped env's ``observation`` vector to pass
            through as ``proprioception``; ``None`` for no proprioception.
        goal_mode: Which goal vectors to include; see [GoalMode][pixelrl.wrappers.GoalMode].
        pixel_key: Name of the pixel entry.

    Raises:
        ValueError: If the env does not render RGB arrays, ``goal_mode`` is unknown, the env
            lacks the keys a goal mode or proprioception needs, an index is out of range, or
            ``frame_stack < 1``. In strict mode ``reset()`` and ``step()`` also raise it when
            ``proprioception`` contains the achieved goal (see [GoalMode][pixelrl.wrappers.GoalMode]).

    Attributes:
        last_raw_obs: The wrapped env's last observation, unchanged (ground-truth object
            and goal positions for debugging).
        network_exclude_keys: Observation keys the features extractor must drop
            (``("achieved_goal",)`` in strict mode). Pass it as
            ``features_extractor_kwargs=dict(exclude_keys=wrapper.network_exclude_keys)``.

    Examples:
        >>> import gymnasium as gym
        >>> import pixelrl.envs
        >>> env = PixelObservationWrapper(
        ...     gym.make("pixelrl/PointReach-v0", image_size=16),
        ...     image_size=16, frame_stack=3, proprio_indices=[2, 3],
        ... )
        >>> obs, info = env.reset(seed=0)
        >>> {key: value.shape for key, value in obs.items()}
        {'pixels': (9, 16, 16), 'proprioception': (2,), 'achieved_goal': (2,), 'desired_goal': (2,)}
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        image_size: int | tuple[int, int] = 84,
        frame_stack: int = 4,
        proprio_indices: Sequence[int] | None = None,
        goal_mode: GoalMode = "both",
        pixel_key: str = "pixels",
    ) -> None:
        # Recorded so that env.spec can recreate the wrapper (gymnasium's check_env does).
        gym.utils.RecordConstructorArgs.__init__(
            self,
            image_size=image_size,
            frame_stack=frame_stack,
            proprio_indices=None if proprio_indices is None else list(proprio_indices),
            goal_mode=goal_mode,
            pixel_key=pixel_key,
        )
        gym.ObservationWrapper.__init__(self, env)
        check_goal_mode(goal_mode)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"PixelObservationWrapper renders every step, but the env has render_mode={env.render_mode!r}. "
                "Create it with render_mode='rgb_array', e.g. "
                "gym.make('FetchPush-v4', render_mode='rgb_array', width=84, height=84)."
            )
        if not isinstance(frame_stack, int) or frame_stack < 1:
            raise ValueError(f"frame_stack must be an int >= 1, got {frame_stack!r}.")

        self._image_size = to_image_size(image_size)
        # Only RGB frames can become pixel observations; tools that recreate the env for each
        # declared render mode (gymnasium's check_env) must not try 'human' or 'depth_array'.
        self.metadata = {**env.metadata, "render_modes": ["rgb_array"]}
        self._frame_stack = frame_stack
        self._goal_mode: GoalMode = goal_mode
        self._pixel_key = pixel_key
        self._frames: deque[NDArray[np.uint8]] = deque(maxlen=frame_stack)
        self._warned_resize = False
        self.last_raw_obs: Any = None
        self.network_exclude_keys: tuple[str, ...] = ("achieved_goal",) if goal_mode == "strict" else ()

        inner = env.observation_space
        height, width = self._image_size
        obs_spaces: dict[str, spaces.Space[Any]] = {
            pixel_key: spaces.Box(0, 255, (3 * frame_stack, height, width), np.uint8)
        }
        self._proprio_indices = self._check_proprio(inner, proprio_indices)
        # Non-negative positions in the wrapped vector, for error messages.
        self._proprio_sources: tuple[int, ...] = ()
        if self._proprio_indices is not None:
            assert isinstance(inner, spaces.Dict)
            vector = inner["observation"]
            assert isinstance(vector, spaces.Box)
            idx = self._proprio_indices
            obs_spaces["proprioception"] = spaces.Box(vector.low[idx], vector.high[idx], dtype=vector.dtype)
            self._proprio_sources = tuple(int(i) % int(np.prod(vector.shape)) for i in idx)
        for key in self._goal_keys:
            if not isinstance(inner, spaces.Dict) or key not in inner.spaces:
                keys = list(inner.spaces) if isinstance(inner, spaces.Dict) else type(inner).__name__
                raise ValueError(
                    f"goal_mode={goal_mode!r} needs '{key}' in the env's observation, which has {keys}. "
                    "Use a goal-conditioned env (e.g. FetchPush-v4) or goal_mode='none'."
                )
            obs_spaces[key] = inner[key]
        self.observation_space = cast("spaces.Space[PixelObs]", spaces.Dict(obs_spaces))

    @property
    def _goal_keys(self) -> tuple[str, ...]:
        if self._goal_mode == "desired":
            return ("desired_goal",)
        if self._goal_mode in ("both", "strict"):
            return ("achieved_goal", "desired_goal")
        return ()

    @property
    def image_size(self) -> tuple[int, int]:
        """Frame ``(height, width)``."""
        return self._image_size

    @property
    def frame_stack(self) -> int:
        """Number of stacked frames."""
        return self._frame_stack

    @property
    def goal_mode(self) -> GoalMode:
        """The goal mode this wrapper was created with."""
        return self._goal_mode

    @property
    def proprio_indices(self) -> tuple[int, ...] | None:
        """Indices of the wrapped observation passed through as proprioception."""
        return None if self._proprio_indices is None else tuple(int(i) for i in self._proprio_indices)

    @staticmethod
    def _check_proprio(inner: spaces.Space[Any], proprio_indices: Sequence[int] | None) -> NDArray[np.intp] | None:
        if proprio_indices is None:
            return None
        if not isinstance(inner, spaces.Dict) or not isinstance(inner.spaces.get("observation"), spaces.Box):
            raise ValueError(
                "proprio_indices needs a Dict observation with an 'observation' vector, got "
                f"{inner}. Pass proprio_indices=None for envs without one."
            )
        size = int(np.prod(inner["observation"].shape))  # type: ignore[arg-type]
        idx = np.asarray(proprio_indices, dtype=np.intp).reshape(-1)
        if idx.size == 0:
            raise ValueError("proprio_indices is empty; pass None for no proprioception.")
        bad = [int(i) for i in idx if not -size <= i < size]
        if bad:
            raise ValueError(
                f"proprio index {bad[0]} is out of range for an 'observation' vector of size {size} "
                f"(valid: 0..{size - 1}). For Fetch use pixelrl.wrappers.fetch_proprio_indices(env_id)."
            )
        return idx

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[PixelObs, dict[str, Any]]:
        """Reset the env and fill the frame stack with copies of the first frame.

        Raises:
            ValueError: In strict mode, if ``proprioception`` contains the achieved goal.
        """
        obs, info = self.env.reset(seed=seed, options=options)
        self._frames.clear()
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[PixelObs, float, bool, bool, dict[str, Any]]:
        """Step the env and push the new frame onto the stack.

        The reward is returned as a Python float (Fetch returns a NumPy float32 scalar,
        which SB3's ``check_env`` rejects).

        Raises:
            ValueError: In strict mode, if ``proprioception`` contains the achieved goal.
        """
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observation(obs), float(reward), bool(terminated), bool(truncated), info

    def observation(self, observation: Any) -> PixelObs:
        """Render the current frame and build the pixel observation dict.

        Args:
            observation: The wrapped env's observation (a dict for goal envs).

        Returns:
            The observation dict described in the class docstring.

        Raises:
            ValueError: In strict mode, if a vector that reaches the networks contains the
                achieved goal.
        """
        self.last_raw_obs = observation
        frame = self._render()
        if not self._frames:
            self._frames.extend(frame for _ in range(self._frame_stack))
        else:
            self._frames.append(frame)
        pixels = self._frames[0] if self._frame_stack == 1 else np.concatenate(self._frames, axis=0)
        out: PixelObs = {self._pixel_key: pixels}
        if self._proprio_indices is not None:
            out["proprioception"] = np.asarray(observation["observation"])[self._proprio_indices]
        for key in self._goal_keys:
            out[key] = np.asarray(observation[key]).copy()
        if self._goal_mode == "strict":
            self._refuse_goal_copies(out)
        return out

    def _refuse_goal_copies(self, out: PixelObs) -> None:
        achieved = out["achieved_goal"]
        for key, value in out.items():
            if key == self._pixel_key or key in _GOAL_KEYS:
                continue
            indices = find_goal_copy(value, achieved)
            if indices is not None:
                sources = tuple(self._proprio_sources[i] for i in indices) if key == "proprioception" else None
                raise ValueError(goal_copy_message(key, indices, achieved, sources))

    def _render(self) -> NDArray[np.uint8]:
        frame = render_and_resize(self.env, self._image_size)
        if not self._warned_resize:
            self._warned_resize = True
            native = getattr(self.env.unwrapped, "width", None), getattr(self.env.unwrapped, "height", None)
            height, width = self._image_size
            if None not in native and native != (width, height):
                logger.warning(
                    "Rendering at %sx%s and resizing to %sx%s on every step; create the env with "
                    "width=%d, height=%d to render natively (several times faster).",
                    native[0],
                    native[1],
                    width,
                    height,
                    width,
                    height,
                )
        return frame

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> Any:
        """Forward to the wrapped goal env's ``compute_reward``; works on batches.

        Gymnasium 1.x wrappers do not forward attributes, and SB3's HER calls
        ``env_method("compute_reward", ...)`` on the outermost wrapper, so the wrapper must
        expose it.

        Args:
            achieved_goal: ``(goal_dim,)`` or ``(B, goal_dim)`` achieved goals.
            desired_goal: Goals of the same shape.
            info: Info dict, or a list of B info dicts.

        Returns:
            The reward, a float or a ``(B,)`` array.

        Raises:
            AttributeError: If the wrapped env has no ``compute_reward``.
        """
        try:
            compute = self.env.get_wrapper_attr("compute_reward")
        except AttributeError:
            raise AttributeError(
                f"{type(self.env.unwrapped).__name__} has no compute_reward(achieved_goal, desired_goal, info), "
                "so HER cannot recompute rewards for relabelled goals. Use a goal-conditioned env "
                "(gymnasium_robotics Fetch, pixelrl.envs) or a replay buffer without HER."
            ) from None
        return compute(achieved_goal, desired_goal, info)
