"""Camera capture: headless OpenGL setup and frames as CHW uint8 arrays.

MuJoCo picks its OpenGL backend from the ``MUJOCO_GL`` environment variable when it is
imported, and gymnasium's MuJoCo renderer reads it again when it creates a context. On a Linux
machine without a display, the default (GLFW) cannot create a context, so
`configure_headless_rendering` chooses EGL before anything renders, and `check_mujoco_gl`
refuses a value MuJoCo would fail on before MuJoCo is imported.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "RenderingError",
    "check_mujoco_gl",
    "configure_headless_rendering",
    "gl_failure_message",
    "render_and_resize",
    "to_image_size",
    "usable_mujoco_gl_backends",
]

_HEADLESS_FIX = (
    "To render without a display on Linux, set MUJOCO_GL before starting Python: "
    "`MUJOCO_GL=egl` (needs libEGL, e.g. `apt-get install libegl1`) or "
    "`MUJOCO_GL=osmesa` (software rendering, `apt-get install libosmesa6`). "
    "On macOS leave MUJOCO_GL unset (the default backend, glfw, works with a window server)."
)


class RenderingError(RuntimeError):
    """Raised when an environment cannot produce an RGB frame (no GL backend, wrong render mode)."""


def usable_mujoco_gl_backends(platform: str | None = None) -> tuple[str, ...]:
    """The ``MUJOCO_GL`` values the Fetch envs can render with on a platform.

    MuJoCo's Python package accepts ``glfw`` everywhere, ``egl``, ``osmesa`` and ``glx`` on
    Linux, ``cgl`` on macOS, ``wgl`` on Windows, and aliases such as ``enable`` or ``disable``.
    But gymnasium-robotics renders through gymnasium's ``MujocoRenderer``, which takes only
    ``glfw``, ``egl`` and ``osmesa``, spelled exactly so: the usable values are the overlap.

    Args:
        platform: A ``sys.platform`` string; defaults to this machine's.

    Returns:
        ``("egl", "osmesa", "glfw")`` on Linux, ``("glfw",)`` elsewhere.
    """
    platform = sys.platform if platform is None else platform
    return ("egl", "osmesa", "glfw") if platform.startswith("linux") else ("glfw",)


def check_mujoco_gl() -> str | None:
    """Refuse a ``MUJOCO_GL`` value that MuJoCo rendering would fail on, before MuJoCo loads.

    Without this check a bad value surfaces as a traceback from inside MuJoCo's import (an
    unknown name) or from gymnasium's renderer (a name MuJoCo knows but gymnasium does not).
    pixelrl calls it before it imports MuJoCo.

    Returns:
        The value of ``MUJOCO_GL``, or ``None`` when it is unset (gymnasium's renderer then
        tries glfw, egl and osmesa in turn).

    Raises:
        RenderingError: ``MUJOCO_GL`` is set to anything but a usable backend (``egl``,
            ``osmesa`` or ``glfw`` on Linux, ``glfw`` elsewhere); the message names the value,
            the accepted ones and the fix.

    Examples:
        >>> import os
        >>> os.environ.get("MUJOCO_GL") == check_mujoco_gl()
        True
    """
    value = os.environ.get("MUJOCO_GL")
    usable = usable_mujoco_gl_backends()
    if value is None or value in usable:
        return value
    shown = f"MUJOCO_GL={value}" if value.strip() else f"MUJOCO_GL={value!r} (empty)"
    spelling = (
        f" Write it exactly as {value.strip().lower()!r}: gymnasium's renderer does not ignore case or spaces."
        if value.strip().lower() in usable
        else ""
    )
    raise RenderingError(
        f"{shown} is not an OpenGL backend MuJoCo can render the Fetch envs with. Accepted on "
        f"{sys.platform}: {', '.join(usable)} (gymnasium's MuJoCo renderer takes only these).{spelling} "
        f"Fix: set MUJOCO_GL to one of them before starting Python, or unset it. {_HEADLESS_FIX}"
    )


def configure_headless_rendering() -> str | None:
    """Choose MuJoCo's EGL backend when no backend is set and there is no display.

    Does nothing when ``MUJOCO_GL`` is already set (the user's choice always wins), when a
    display is available (``DISPLAY`` or ``WAYLAND_DISPLAY``), or on a platform other than
    Linux. It must run before MuJoCo first renders; importing `pixelrl` calls it.

    Returns:
        The value of ``MUJOCO_GL`` after the call, or ``None`` when it is unset.

    Examples:
        >>> import os
        >>> from pixelrl.wrappers import configure_headless_rendering
        >>> backend = configure_headless_rendering()
        >>> backend == os.environ.get("MUJOCO_GL")
        True
    """
    if "MUJOCO_GL" in os.environ:
        return os.environ["MUJOCO_GL"]
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and not has_display:
        os.environ["MUJOCO_GL"] = "egl"
        # PyOpenGL must agree with MuJoCo on the platform, or its first call fails.
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return os.environ.get("MUJOCO_GL")


def to_image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """Normalise an image size given as ``84`` or ``(84, 84)`` to ``(height, width)``.

    Args:
        image_size: One side of a square image, or ``(height, width)``.

    Returns:
        ``(height, width)``.

    Raises:
        ValueError: If a side is not a positive integer.

    Examples:
        >>> to_image_size(84)
        (84, 84)
        >>> to_image_size((48, 64))
        (48, 64)
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair of positive ints, got {image_size!r}."
        )
    return int(size[0]), int(size[1])


def _is_gl_failure(exc: BaseException) -> bool:
    """Whether an exception came out of MuJoCo's or PyOpenGL's context and rendering code."""
    if type(exc).__module__.split(".")[0] in {"mujoco", "OpenGL", "glfw"}:
        return True
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if any(part in filename for part in ("/mujoco/", "/OpenGL/", "/glfw/")):
            return True
        tb = tb.tb_next
    return False


def gl_failure_message(exc: BaseException) -> str:
    """Explain a failed OpenGL setup and name the fix.

    Args:
        exc: The exception raised while creating or using a MuJoCo renderer.

    Returns:
        A message naming the backend in use, the original error and the fix.
    """
    try:
        check_mujoco_gl()
    except RenderingError as invalid:
        return f"{invalid} (MuJoCo said: {type(exc).__name__}: {exc})"
    backend = os.environ.get("MUJOCO_GL", "<unset>")
    return f"MuJoCo could not render with MUJOCO_GL={backend} ({type(exc).__name__}: {exc}). {_HEADLESS_FIX}"


def _render_frame(env: Any) -> Any:
    """Call ``env.render()`` and turn GL failures into a ``RenderingError`` naming the fix."""
    try:
        return env.render()
    except RenderingError:
        raise
    except Exception as exc:
        if _is_gl_failure(exc):
            raise RenderingError(gl_failure_message(exc)) from exc
        raise


def render_and_resize(env: Any, image_size: int | tuple[int, int] = (84, 84)) -> NDArray[np.uint8]:
    """Render the environment's camera and return the frame as a CHW uint8 array.

    When the renderer already produces ``image_size`` (create MuJoCo envs with
    ``width=W, height=H``), the frame is only transposed and copied: MuJoCo reuses its
    render buffer, so the copy keeps earlier frames intact. Otherwise the frame is resized
    with PIL's bilinear filter, which costs a few milliseconds per frame.

    Args:
        env: An environment created with ``render_mode="rgb_array"`` whose ``render()``
            returns an ``(H, W, 3)`` uint8 array.
        image_size: Output ``(height, width)``, or one int for a square image.

    Returns:
        ``(3, height, width)`` uint8 array that owns its memory.

    Raises:
        RenderingError: If ``render()`` returns ``None`` (the env was not created with
            ``render_mode="rgb_array"``), returns something that is not an ``(H, W, 3)``
            uint8 frame, or no OpenGL backend can render.

    Examples:
        >>> import gymnasium as gym
        >>> import pixelrl.envs
        >>> env = gym.make("pixelrl/PointReach-v0", image_size=16)
        >>> _ = env.reset(seed=0)
        >>> frame = render_and_resize(env, 8)
        >>> frame.shape, frame.dtype
        ((3, 8, 8), dtype('uint8'))
    """
    height, width = to_image_size(image_size)
    frame = _render_frame(env)
    if frame is None:
        mode = getattr(env, "render_mode", None)
        raise RenderingError(
            f"env.render() returned None (render_mode={mode!r}). Create the environment with "
            "render_mode='rgb_array', e.g. gym.make(env_id, render_mode='rgb_array', width=84, height=84)."
        )
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise RenderingError(
            f"env.render() must return an RGB frame of shape (H, W, 3), got shape {frame.shape}. "
            "Use render_mode='rgb_array' (not 'depth_array' or 'rgbd_tuple')."
        )
    if frame.dtype != np.uint8:
        raise RenderingError(
            f"env.render() must return uint8 pixels in [0, 255], got dtype {frame.dtype}. "
            "Convert float frames with (frame * 255).round().astype(np.uint8) in the environment."
        )
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame.transpose(2, 0, 1))

    from PIL import Image  # imported lazily: only the resize path needs it

    resized = Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1))
