from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pixelrl.wrappers import RenderingError, configure_headless_rendering, render_and_resize, to_image_size
from pixelrl.wrappers.rendering import _is_gl_failure
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
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[:, 20:] = 200  # right half bright
    out = render_and_resize(GenericGoalEnv(render_func=lambda env: frame), 10)
    assert out.shape == (3, 10, 10)
    assert out[:, :, :4].max() == 0
    assert out[:, :, 6:].min() == 200
    assert 0 < out[0, 0, 5] <= 200 or out[0, 0, 4] > 0  # the edge column is interpolated


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
