"""Fetch tasks from pixels: proprioception layouts, camera presets and an env factory."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from pixelrl.wrappers.pixel_observation import GoalMode, PixelObservationWrapper, check_goal_mode
from pixelrl.wrappers.rendering import RenderingError, check_mujoco_gl, gl_failure_message, to_image_size

__all__ = [
    "FETCH_CAMERAS",
    "FETCH_OBJECT_PROPRIO_INDICES",
    "FETCH_REACH_PROPRIO_INDICES",
    "FETCH_REACH_STRICT_PROPRIO_INDICES",
    "CameraName",
    "fetch_proprio_indices",
    "hide_goal_marker",
    "make_fetch_env",
    "register_fetch_envs",
]

FETCH_OBJECT_PROPRIO_INDICES: tuple[int, ...] = (0, 1, 2, 9, 10, 20, 21, 22, 23, 24)
"""Robot-only entries of the 25-D observation of FetchPush / FetchPickAndPlace / FetchSlide.

grip_pos (0:3), gripper_state (9:11), grip_velp (20:23), gripper_vel (23:25); no object state.
These tasks' ``achieved_goal`` is the object's position, which is not among them, so the same
layout serves every goal mode.
"""

FETCH_REACH_PROPRIO_INDICES: tuple[int, ...] = tuple(range(10))
"""FetchReach's whole 10-D observation, all robot state.

grip_pos (0:3), gripper_state (3:5), grip_velp (5:8), gripper_vel (8:10). FetchReach's
``achieved_goal`` IS ``grip_pos``, so strict mode refuses this layout; use
[FETCH_REACH_STRICT_PROPRIO_INDICES][pixelrl.wrappers.FETCH_REACH_STRICT_PROPRIO_INDICES] there.
"""

FETCH_REACH_STRICT_PROPRIO_INDICES: tuple[int, ...] = tuple(range(3, 10))
"""FetchReach's observation without the gripper position: indices 3..9.

gripper_state (3:5), grip_velp (5:8), gripper_vel (8:10). For ``goal_mode="strict"``, where the
gripper's position (FetchReach's ``achieved_goal``) must come from the image.
"""

CameraName = Literal["default", "close", "reach"]

FETCH_CAMERAS: dict[str, dict[str, Any]] = {
    "default": {"distance": 2.5, "azimuth": 132.0, "elevation": -14.0, "lookat": (1.3, 0.75, 0.55)},
    "close": {"distance": 1.2, "azimuth": 160.0, "elevation": -50.0, "lookat": (1.3, 0.75, 0.42)},
    "reach": {"distance": 0.9, "azimuth": 150.0, "elevation": -30.0, "lookat": (1.3, 0.75, 0.55)},
}
"""Named camera configurations, passed to gymnasium-robotics as ``default_camera_config``.

``default`` is Fetch's own free camera, which shows the whole robot and leaves the puck a few
pixels wide at 84x84; ``close`` looks down at the table over the robot's shoulder so the table
fills the frame; ``reach`` frames the space above the table where FetchReach's goals lie, so
the gripper stays visible down to 24x24 pixels.
"""

_OBJECT_TASKS = ("FetchPush", "FetchPickAndPlace", "FetchSlide")


def register_fetch_envs() -> None:
    """Register gymnasium-robotics' envs (FetchPush-v4, ...) with gymnasium.

    gymnasium-robotics prints a notice about its Adroit hand envs to stderr on import; it does
    not concern the Fetch tasks, so it is swallowed here.

    Raises:
        RenderingError: If ``MUJOCO_GL`` names a backend MuJoCo's renderer cannot use (see
            [check_mujoco_gl][pixelrl.wrappers.check_mujoco_gl]), before MuJoCo is imported.
    """
    check_mujoco_gl()
    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics  # importing mujoco loads the GL backend named by MUJOCO_GL

    gym.register_envs(gymnasium_robotics)


def fetch_proprio_indices(env_id: str, *, goal_mode: GoalMode = "both") -> tuple[int, ...]:
    """Robot-only proprioception indices for a Fetch task and goal mode.

    Args:
        env_id: A Fetch env id such as ``"FetchPush-v4"`` or ``"FetchReachDense-v4"``.
        goal_mode: The [GoalMode][pixelrl.wrappers.GoalMode] the indices are for. Only FetchReach
            depends on it: with ``"strict"`` its gripper position (the achieved goal) is left
            out ([FETCH_REACH_STRICT_PROPRIO_INDICES][pixelrl.wrappers.FETCH_REACH_STRICT_PROPRIO_INDICES]).

    Returns:
        Indices into the task's ``observation`` vector.

    Raises:
        ValueError: If ``env_id`` is not a Fetch task or ``goal_mode`` is unknown.

    Examples:
        >>> fetch_proprio_indices("FetchPush-v4")
        (0, 1, 2, 9, 10, 20, 21, 22, 23, 24)
        >>> len(fetch_proprio_indices("FetchReach-v4"))
        10
        >>> fetch_proprio_indices("FetchReach-v4", goal_mode="strict")
        (3, 4, 5, 6, 7, 8, 9)
    """
    check_goal_mode(goal_mode)
    name = env_id.split("/")[-1]
    if name.startswith("FetchReach"):
        return FETCH_REACH_STRICT_PROPRIO_INDICES if goal_mode == "strict" else FETCH_REACH_PROPRIO_INDICES
    if name.startswith(_OBJECT_TASKS):
        return FETCH_OBJECT_PROPRIO_INDICES
    raise ValueError(
        f"No Fetch proprioception layout for {env_id!r}; expected FetchReach, FetchPush, "
        "FetchPickAndPlace or FetchSlide. For other envs pass proprio_indices yourself."
    )


def _camera_config(camera: CameraName | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(camera, str):
        if camera not in FETCH_CAMERAS:
            raise ValueError(f"Unknown camera {camera!r}; expected one of {list(FETCH_CAMERAS)} or a dict.")
        config = dict(FETCH_CAMERAS[camera])
    else:
        config = dict(camera)
        unknown = set(config) - {
            "distance",
            "azimuth",
            "elevation",
            "lookat",
            "trackbodyid",
            "type",
            "fixedcamid",
        }
        if unknown:
            raise ValueError(f"Unknown camera settings {sorted(unknown)}; use distance, azimuth, elevation and lookat.")
    if "lookat" in config:
        config["lookat"] = np.asarray(config["lookat"], dtype=np.float64)
    return config


def hide_goal_marker(env: gym.Env[Any, Any]) -> None:
    """Make Fetch's red goal marker (site ``target0``) invisible in rendered frames.

    HER relabels the goal VECTOR; the image would still show the original marker, so a
    relabelled transition pairs an image of one goal with the vector of another.

    Args:
        env: A Fetch env (any wrapping).

    Raises:
        ValueError: If the env has no MuJoCo site named ``target0``.
        RenderingError: If ``MUJOCO_GL`` names a backend MuJoCo's renderer cannot use.
    """
    check_mujoco_gl()
    import mujoco

    base = env.unwrapped
    model = getattr(base, "model", None)
    if model is None:
        raise ValueError(f"{type(base).__name__} is not a MuJoCo env; only Fetch goal markers can be hidden.")
    site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "target0")
    if site_id < 0:
        raise ValueError(f"{type(base).__name__} has no goal site 'target0' to hide.")
    model.site_rgba[site_id, 3] = 0.0


def make_fetch_env(
    env_id: str = "FetchPush-v4",
    *,
    image_size: int | tuple[int, int] = 84,
    frame_stack: int = 4,
    goal_mode: GoalMode = "both",
    proprioception: bool = True,
    camera: CameraName | Mapping[str, Any] = "default",
    hide_goal: bool = False,
    antialias: bool = True,
    max_episode_steps: int | None = None,
    **make_kwargs: Any,
) -> PixelObservationWrapper:
    """Create a Fetch task that renders natively at ``image_size`` and wrap it for pixels.

    Args:
        env_id: A gymnasium-robotics Fetch id, e.g. ``"FetchPush-v4"``.
        image_size: Frame ``(height, width)`` or one int; MuJoCo renders at this size.
        frame_stack: Frames stacked along channels.
        goal_mode: See [GoalMode][pixelrl.wrappers.GoalMode].
        proprioception: Pass the robot-only state through, as
            [fetch_proprio_indices][pixelrl.wrappers.fetch_proprio_indices] gives it for
            ``env_id`` and ``goal_mode`` (strict FetchReach leaves out the gripper position).
        camera: A name in [FETCH_CAMERAS][pixelrl.wrappers.FETCH_CAMERAS] or a dict of MuJoCo
            free-camera settings.
        hide_goal: Hide the red goal marker (see [hide_goal_marker][pixelrl.wrappers.hide_goal_marker]).
        antialias: Render with MuJoCo's multisampling (the model's ``offsamples``, 4 for Fetch).
            ``False`` renders one sample per pixel: edges are aliased, and with software OpenGL
            (EGL on a machine without a GPU) a frame costs about half as much
            (``benchmarks/wallclock.py``).
        max_episode_steps: Override the task's time limit (50 for Fetch).
        **make_kwargs: Passed to ``gym.make`` (e.g. ``reward_type="dense"``).

    Returns:
        The wrapped env.

    Raises:
        ValueError: For an unknown env id, goal mode, camera or option.
        RenderingError: If ``MUJOCO_GL`` is not a backend MuJoCo can render with, or MuJoCo
            cannot create an OpenGL context (names the fix).
    """
    proprio = fetch_proprio_indices(env_id, goal_mode=goal_mode) if proprioception else None
    height, width = to_image_size(image_size)
    kwargs: dict[str, Any] = {
        "render_mode": "rgb_array",
        "width": width,
        "height": height,
        "default_camera_config": _camera_config(camera),
        **make_kwargs,
    }
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    try:
        register_fetch_envs()
        env = gym.make(env_id, **kwargs)
    except RenderingError:
        raise
    except gym.error.Error as exc:
        raise ValueError(f"Cannot make {env_id!r}: {exc}") from exc
    except (RuntimeError, AttributeError, ImportError) as exc:
        raise RenderingError(gl_failure_message(exc)) from exc
    if hide_goal:
        hide_goal_marker(env)
    if not antialias:  # read when the renderer creates its offscreen buffer, at the first render
        env.unwrapped.model.vis.quality.offsamples = 0  # type: ignore[attr-defined]
    return PixelObservationWrapper(
        env, image_size=(height, width), frame_stack=frame_stack, proprio_indices=proprio, goal_mode=goal_mode
    )
