from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from pixelrl.wrappers import (
    FETCH_OBJECT_PROPRIO_INDICES,
    FETCH_REACH_PROPRIO_INDICES,
    FETCH_REACH_STRICT_PROPRIO_INDICES,
    PixelObservationWrapper,
    fetch_proprio_indices,
    make_fetch_env,
    register_fetch_envs,
    render_and_resize,
)


def test_proprio_layouts():
    assert fetch_proprio_indices("FetchPush-v4") == (0, 1, 2, 9, 10, 20, 21, 22, 23, 24)
    assert fetch_proprio_indices("FetchPickAndPlaceDense-v4") == FETCH_OBJECT_PROPRIO_INDICES
    assert fetch_proprio_indices("FetchReach-v4") == tuple(range(10))
    with pytest.raises(ValueError, match="No Fetch proprioception layout for 'HalfCheetah-v5'"):
        fetch_proprio_indices("HalfCheetah-v5")


def test_strict_proprio_layouts_leave_out_only_fetch_reachs_gripper_position():
    assert FETCH_REACH_STRICT_PROPRIO_INDICES == (3, 4, 5, 6, 7, 8, 9)  # gripper_state, grip_velp, gripper_vel
    assert fetch_proprio_indices("FetchReach-v4", goal_mode="strict") == FETCH_REACH_STRICT_PROPRIO_INDICES
    assert fetch_proprio_indices("FetchReachDense-v4", goal_mode="strict") == FETCH_REACH_STRICT_PROPRIO_INDICES
    for mode in ("none", "desired", "both"):
        assert fetch_proprio_indices("FetchReach-v4", goal_mode=mode) == FETCH_REACH_PROPRIO_INDICES
    # In the object tasks achieved_goal is the object, which the robot-only layout never held.
    for env_id in ("FetchPush-v4", "FetchPickAndPlace-v4", "FetchSlide-v4"):
        assert fetch_proprio_indices(env_id, goal_mode="strict") == FETCH_OBJECT_PROPRIO_INDICES
    with pytest.raises(ValueError, match="Unknown goal_mode 'Strict'; expected one of none, desired, both, strict"):
        fetch_proprio_indices("FetchReach-v4", goal_mode="Strict")  # type: ignore[arg-type]


def test_unknown_camera_and_env_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown camera 'side'"):
        make_fetch_env("FetchPush-v4", camera="side")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Cannot make 'FetchPushh-v4'.*Did you mean: `FetchPush`"):
        make_fetch_env("FetchPushh-v4")


def _red_pixels(frame_chw: np.ndarray) -> int:
    r, g, b = (frame_chw[i].astype(int) for i in range(3))
    return int(((r > 150) & (g < 80) & (b < 80)).sum())


@pytest.fixture(scope="module")
def push_env():
    env = make_fetch_env("FetchPush-v4")
    yield env
    env.close()


@pytest.mark.mujoco
def test_render_checkpoint_chw_uint8_not_black():
    env = gym.make("FetchPush-v4", render_mode="rgb_array", width=84, height=84)
    env.reset(seed=0)
    frame = render_and_resize(env)
    assert frame.shape == (3, 84, 84)
    assert frame.dtype == np.uint8
    assert frame.max() > 50
    assert frame.std() > 10
    env.close()


@pytest.mark.mujoco
def test_fetch_push_observation_checkpoint(push_env):
    obs, _ = push_env.reset(seed=0)
    assert {key: value.shape for key, value in obs.items()} == {
        "pixels": (12, 84, 84),
        "proprioception": (10,),
        "achieved_goal": (3,),
        "desired_goal": (3,),
    }
    frames = obs["pixels"].reshape(4, 3, 84, 84)
    assert all(np.array_equal(frames[0], f) for f in frames[1:])
    raw = push_env.last_raw_obs
    np.testing.assert_array_equal(obs["proprioception"], raw["observation"][list(FETCH_OBJECT_PROPRIO_INDICES)])
    np.testing.assert_array_equal(obs["achieved_goal"], raw["achieved_goal"])
    for _ in range(3):
        obs, *_ = push_env.step(push_env.action_space.sample())
        assert obs in push_env.observation_space


@pytest.mark.mujoco
def test_sb3_check_env_has_no_warnings(push_env):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(push_env)
    assert [str(w.message) for w in caught] == []


@pytest.mark.mujoco
def test_gymnasium_check_env_adds_no_warning_of_its_own():
    raw = gym.make("FetchReach-v4", render_mode="rgb_array", width=84, height=84)
    wrapped = make_fetch_env("FetchReach-v4")
    seen = {}
    for name, env in (("raw", raw), ("wrapped", wrapped)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if name == "raw":  # its 'human' render mode would open a window (and abort headless)
                gym_check_env(env.unwrapped, skip_render_check=True)
            else:
                gym_check_env(env)
        seen[name] = {str(w.message) for w in caught}
        env.close()
    # Fetch's unbounded goal and state vectors warn on the raw env too; the wrapper adds only
    # gymnasium's note that it was given a wrapped env.
    added = {m for m in seen["wrapped"] - seen["raw"] if "is different from the unwrapped version" not in m}
    assert added == set()


@pytest.mark.mujoco
def test_hide_goal_marker_removes_the_red_site():
    shown = make_fetch_env("FetchReach-v4", frame_stack=1, camera="close")
    hidden = make_fetch_env("FetchReach-v4", frame_stack=1, camera="close", hide_goal=True)
    shown_obs, _ = shown.reset(seed=3)
    hidden_obs, _ = hidden.reset(seed=3)
    assert _red_pixels(shown_obs["pixels"]) > 0
    assert _red_pixels(hidden_obs["pixels"]) == 0
    np.testing.assert_array_equal(shown_obs["desired_goal"], hidden_obs["desired_goal"])
    shown.close()
    hidden.close()


@pytest.mark.mujoco
def test_antialias_off_renders_one_sample_per_pixel():
    smooth = make_fetch_env("FetchReach-v4", image_size=32, frame_stack=1, camera="reach")
    aliased = make_fetch_env("FetchReach-v4", image_size=32, frame_stack=1, camera="reach", antialias=False)
    assert smooth.unwrapped.model.vis.quality.offsamples == 4  # type: ignore[attr-defined]
    assert aliased.unwrapped.model.vis.quality.offsamples == 0  # type: ignore[attr-defined]
    smooth_obs, _ = smooth.reset(seed=2)
    aliased_obs, _ = aliased.reset(seed=2)
    assert smooth_obs["pixels"].shape == aliased_obs["pixels"].shape

    # the same scene, but edges no longer blended: fewer distinct colours, and not the same frame
    def colours(frame: np.ndarray) -> int:
        return int(np.unique(frame.reshape(3, -1), axis=1).shape[1])

    assert colours(aliased_obs["pixels"]) < colours(smooth_obs["pixels"])
    assert not np.array_equal(aliased_obs["pixels"], smooth_obs["pixels"])
    np.testing.assert_array_equal(smooth_obs["desired_goal"], aliased_obs["desired_goal"])
    smooth.close()
    aliased.close()


@pytest.mark.mujoco
def test_camera_presets_and_custom_cameras_change_the_view():
    frames = {}
    for camera in ("default", "close", {"distance": 1.5, "azimuth": 90.0, "elevation": -30.0}):
        env = make_fetch_env("FetchReach-v4", frame_stack=1, camera=camera)  # type: ignore[arg-type]
        obs, _ = env.reset(seed=0)
        frames[str(camera)] = obs["pixels"]
        env.close()
    values = list(frames.values())
    assert not np.array_equal(values[0], values[1])
    assert not np.array_equal(values[1], values[2])


def _steps(env, n=5):
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    for _ in range(n):
        obs, *_ = env.step(env.action_space.sample())
        assert obs in env.observation_space
    return obs


@pytest.mark.mujoco
def test_strict_mode_refuses_fetch_reach_with_its_full_proprioception():
    register_fetch_envs()
    raw = gym.make("FetchReach-v4", render_mode="rgb_array", width=32, height=32)
    env = PixelObservationWrapper(raw, image_size=32, frame_stack=1, proprio_indices=range(10), goal_mode="strict")
    match = (
        r"goal_mode='strict' refuses this observation: 'proprioception' carries the achieved goal\. "
        r"Its entries \[0, 1, 2\] \(entries \[0, 1, 2\] of the wrapped env's 'observation' vector, chosen by "
        r"proprio_indices\) equal achieved_goal .*must come from the image\. .*FETCH_REACH_STRICT_PROPRIO_INDICES.*"
        r"goal_mode='both'"
    )
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0)
    # The layout claim itself: FetchReach's achieved_goal is grip_pos, observation[0:3].
    np.testing.assert_array_equal(env.last_raw_obs["observation"][:3], env.last_raw_obs["achieved_goal"])
    env.close()


@pytest.mark.mujoco
def test_strict_fetch_reach_gets_the_strict_layout_and_steps():
    env = make_fetch_env("FetchReach-v4", image_size=32, frame_stack=1, goal_mode="strict")
    assert env.proprio_indices == FETCH_REACH_STRICT_PROPRIO_INDICES
    obs = _steps(env)
    assert obs["proprioception"].shape == (7,)
    np.testing.assert_array_equal(obs["proprioception"], env.last_raw_obs["observation"][3:10])
    env.close()


@pytest.mark.mujoco
def test_strict_fetch_push_keeps_the_robot_layout_and_steps():
    env = make_fetch_env("FetchPush-v4", image_size=32, frame_stack=1, goal_mode="strict")
    assert env.proprio_indices == FETCH_OBJECT_PROPRIO_INDICES
    _steps(env)
    env.close()


@pytest.mark.mujoco
def test_goal_mode_both_keeps_fetch_reachs_full_proprioception():
    env = make_fetch_env("FetchReach-v4", image_size=32, frame_stack=1)
    assert env.proprio_indices == FETCH_REACH_PROPRIO_INDICES
    obs = _steps(env)
    np.testing.assert_array_equal(obs["proprioception"][:3], obs["achieved_goal"])  # allowed outside strict
    env.close()
