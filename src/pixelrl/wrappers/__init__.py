"""Observation wrappers and rendering helpers that turn goal envs into pixel envs.

Importing this package chooses a headless OpenGL backend (``MUJOCO_GL=egl``) when none is
set and there is no display; see
[configure_headless_rendering][pixelrl.wrappers.configure_headless_rendering]. A ``MUJOCO_GL``
value MuJoCo cannot render with is refused with a [RenderingError][pixelrl.wrappers.RenderingError]
naming the fix before MuJoCo is imported ([check_mujoco_gl][pixelrl.wrappers.check_mujoco_gl]).
"""

from __future__ import annotations

from pixelrl.wrappers.rendering import (
    RenderingError,
    check_mujoco_gl,
    configure_headless_rendering,
    render_and_resize,
    to_image_size,
)

configure_headless_rendering()

from pixelrl.wrappers.fetch import (  # noqa: E402  (MUJOCO_GL must be set before MuJoCo loads)
    FETCH_CAMERAS,
    FETCH_OBJECT_PROPRIO_INDICES,
    FETCH_REACH_PROPRIO_INDICES,
    FETCH_REACH_STRICT_PROPRIO_INDICES,
    CameraName,
    fetch_proprio_indices,
    hide_goal_marker,
    make_fetch_env,
    register_fetch_envs,
)
from pixelrl.wrappers.pixel_observation import GoalMode, PixelObservationWrapper  # noqa: E402

__all__ = [
    "FETCH_CAMERAS",
    "FETCH_OBJECT_PROPRIO_INDICES",
    "FETCH_REACH_PROPRIO_INDICES",
    "FETCH_REACH_STRICT_PROPRIO_INDICES",
    "CameraName",
    "GoalMode",
    "PixelObservationWrapper",
    "RenderingError",
    "check_mujoco_gl",
    "configure_headless_rendering",
    "fetch_proprio_indices",
    "hide_goal_marker",
    "make_fetch_env",
    "register_fetch_envs",
    "render_and_resize",
    "to_image_size",
]
