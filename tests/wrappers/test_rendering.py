from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pixelrl.wrappers import (
    RenderingError,
    check_mujoco_gl,
    configure_headless_rendering,
    hide_goal_marker,
    make_fetch_env,
    register_fetch_envs,
    render_and_resize,
    to_image_size,
)
from pixelrl.wrappers.rendering import _is_gl_failure, gl_failure_message
from tests.testing_env import GenericGoalEnv


def test_headless_default_is_egl_on_linux_without_display(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert configure_headless_rendering() == "egl"
    assert os.environ["MUJOCO_GL"] == "egl"
    assert os.environ["PYOPENGL_PLATFORM"] == "egl"


def test_user_choice_and_displays_are_respected(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert configure_headless_rendering() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setenv("DISPLAY", ":0")
    assert configure_headless_rendering() is None
    assert "MUJOCO_GL" not in os.environ
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert configure_headless_rendering() is None


def test_render_and_resize_native_path_is_a_chw_copy():
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    env = GenericGoalEnv(render_func=lambda env: frame)
    out = render_and_resize(env, (4, 5))
    assert out.shape == (3, 4, 5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, frame.transpose(2, 0, 1))
    frame[:] = 0
    assert out.max() > 0  # the output owns its memory


def test_render_and_resize_resizes_bilinearly():
    # A two-pixel horizontal gradient, upsampled 4x along the width: bilinear resampling blends
    # the two pixels linearly; nearest-neighbour would only repeat 0 and 200.
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[:, 1] = (200, 100, 0)
    out = render_and_resize(GenericGoalEnv(render_func=lambda env: frame), (2, 8))
    assert out.shape == (3, 2, 8)
    # Output column i (pixel centres aligned, as PIL does) samples the input at x = (i + 0.5) / 4
    # - 0.5, clamped to the two pixel centres [0, 1]: [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1].
    x = np.clip((np.arange(8) + 0.5) * 2 / 8 - 0.5, 0.0, 1.0)
    for channel, high in enumerate((200, 100, 0)):
        expected = np.broadcast_to(high * x, (2, 8))
        np.testing.assert_allclose(out[channel], expected, atol=0.5 + 1e-9)  # rounding to uint8 only
    assert out[0, 0].tolist() == [0, 0, 25, 75, 125, 175, 200, 200]

    # Downsampling keeps the halves flat and blends only at the edge.
    half = np.zeros((40, 40, 3), np.uint8)
    half[:, 20:] = 200
    small = render_and_resize(GenericGoalEnv(render_func=lambda env: half), 10)
    assert small.shape == (3, 10, 10)
    assert small[:, :, :4].max() == 0
    assert small[:, :, 6:].min() == 200


def test_render_returning_none_names_the_fix():
    env = GenericGoalEnv(render_func=lambda env: None)
    with pytest.raises(RenderingError, match="render_mode='rgb_array'"):
        render_and_resize(env, 8)


def test_gl_failures_are_recognised_by_origin():
    fatal = type("FatalError", (Exception,), {"__module__": "mujoco"})
    assert _is_gl_failure(fatal("an OpenGL platform library has not been loaded"))
    assert not _is_gl_failure(ValueError("single precision"))


def test_gl_failure_during_render_becomes_a_rendering_error_with_the_fix():
    fatal = type("FatalError", (Exception,), {"__module__": "mujoco"})

    def render(env: GenericGoalEnv) -> np.ndarray:
        raise fatal("an OpenGL platform library has not been loaded into this process")

    with pytest.raises(RenderingError, match="MUJOCO_GL=egl"):
        render_and_resize(GenericGoalEnv(render_func=render), 8)


def _linux(monkeypatch: pytest.MonkeyPatch, mujoco_gl: str) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("MUJOCO_GL", mujoco_gl)


@pytest.mark.parametrize("backend", ["egl", "osmesa", "glfw"])
def test_check_mujoco_gl_accepts_the_backends_gymnasium_renders_with(monkeypatch, backend):
    _linux(monkeypatch, backend)
    assert check_mujoco_gl() == backend
    monkeypatch.delenv("MUJOCO_GL")
    assert check_mujoco_gl() is None


@pytest.mark.parametrize(
    ("platform", "value", "match"),
    [
        ("linux", "nonsense", r"MUJOCO_GL=nonsense is not an OpenGL backend.*Accepted on linux: egl, osmesa, glfw"),
        # MuJoCo itself knows these, but gymnasium's renderer (which Fetch uses) does not.
        ("linux", "glx", r"MUJOCO_GL=glx is not an OpenGL backend.*Accepted on linux: egl, osmesa, glfw"),
        ("linux", "disable", r"MUJOCO_GL=disable is not"),
        ("linux", "EGL", r"MUJOCO_GL=EGL is not.*Write it exactly as 'egl'"),
        ("linux", "", r"MUJOCO_GL='' \(empty\) is not"),
        ("darwin", "cgl", r"MUJOCO_GL=cgl is not.*Accepted on darwin: glfw \("),
        ("darwin", "egl", r"MUJOCO_GL=egl is not.*Accepted on darwin: glfw \("),
        ("win32", "wgl", r"MUJOCO_GL=wgl is not.*Accepted on win32: glfw \("),
    ],
)
def test_check_mujoco_gl_names_the_bad_value_the_accepted_ones_and_the_fix(monkeypatch, platform, value, match):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("MUJOCO_GL", value)
    with pytest.raises(RenderingError, match=match) as caught:
        check_mujoco_gl()
    assert "Fix: set MUJOCO_GL to one of them before starting Python, or unset it." in str(caught.value)
    assert "`MUJOCO_GL=egl`" in str(caught.value)


def test_bad_mujoco_gl_is_refused_before_mujoco_is_imported(monkeypatch):
    _linux(monkeypatch, "nonsense")
    # Importing either module now fails with ImportError: a RenderingError proves the check ran first.
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)
    monkeypatch.setitem(sys.modules, "mujoco", None)
    match = r"MUJOCO_GL=nonsense is not an OpenGL backend MuJoCo can render the Fetch envs with"
    with pytest.raises(RenderingError, match=match):
        register_fetch_envs()
    with pytest.raises(RenderingError, match=match):
        make_fetch_env("FetchReach-v4")
    with pytest.raises(RenderingError, match=match):
        hide_goal_marker(GenericGoalEnv())


def test_gl_failure_message_explains_an_invalid_backend(monkeypatch):
    _linux(monkeypatch, "nonsense")
    message = gl_failure_message(RuntimeError("invalid value for environment variable MUJOCO_GL: nonsense"))
    assert message.startswith("MUJOCO_GL=nonsense is not an OpenGL backend")
    assert "MuJoCo said: RuntimeError: invalid value for environment variable MUJOCO_GL: nonsense" in message


def test_to_image_size_validates():
    assert to_image_size(84) == (84, 84)
    with pytest.raises(ValueError, match="positive int"):
        to_image_size((84, 0))


@pytest.mark.mujoco
def test_unusable_gl_backend_gives_an_error_naming_the_fix():
    code = (
        "from pixelrl.wrappers import make_fetch_env, RenderingError\n"
        "try:\n    make_fetch_env('FetchReach-v4')\n"
        "except RenderingError as e:\n    print('RENDERING_ERROR', e)\n"
    )
    env = {**os.environ, "MUJOCO_GL": "no-such-backend"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "RENDERING_ERROR" in out.stdout, out.stderr
    assert "MUJOCO_GL=no-such-backend" in out.stdout
    assert "MUJOCO_GL=egl" in out.stdout
