from __future__ import annotations

import logging
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from pixelrl.envs import POINT_PUSH_PROPRIO_INDICES, POINT_REACH_PROPRIO_INDICES  # also registers pixelrl/*
from pixelrl.wrappers import PixelObservationWrapper
from tests.testing_env import GenericGoalEnv

# gymnasium's checker always notes that it is looking at a wrapper rather than a raw env.
WRAPPER_NOTICE = "is different from the unwrapped version"


def point_env(**kwargs):
    return PixelObservationWrapper(
        gym.make("pixelrl/PointReach-v0", image_size=16, max_episode_steps=10),
        image_size=16,
        proprio_indices=[2, 3],
        **kwargs,
    )


def test_observation_dict_shapes_dtypes_and_space_membership():
    env = point_env(frame_stack=4)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"pixels", "proprioception", "achieved_goal", "desired_goal"}
    assert obs["pixels"].shape == (12, 16, 16)
    assert obs["pixels"].dtype == np.uint8
    assert obs["proprioception"].shape == (2,)
    pixel_space = env.observation_space["pixels"]
    assert (pixel_space.low == 0).all()
    assert (pixel_space.high == 255).all()
    assert pixel_space.dtype == np.uint8
    assert obs in env.observation_space
    for _ in range(25):  # through a truncation and a reset
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs in env.observation_space
        if terminated or truncated:
            obs, _ = env.reset()
            assert obs in env.observation_space


def test_frame_stack_holds_first_frame_after_reset_then_shifts_oldest_first():
    env = PixelObservationWrapper(GenericGoalEnv(), image_size=8, frame_stack=3, goal_mode="none")
    obs, _ = env.reset()
    # GenericGoalEnv's frame at step t is filled with t.
    assert [int(obs["pixels"][3 * i].max()) for i in range(3)] == [0, 0, 0]
    obs, *_ = env.step(env.action_space.sample())
    assert [int(obs["pixels"][3 * i].max()) for i in range(3)] == [0, 0, 1]
    obs, *_ = env.step(env.action_space.sample())
    obs, *_ = env.step(env.action_space.sample())
    assert [int(obs["pixels"][3 * i].max()) for i in range(3)] == [1, 2, 3]
    # A reset must not leak frames of the previous episode.
    obs, _ = env.reset()
    assert [int(obs["pixels"][3 * i].max()) for i in range(3)] == [0, 0, 0]


def test_frames_are_chw_copies_of_the_rendered_frame():
    def render(env: GenericGoalEnv) -> np.ndarray:
        frame = np.zeros((8, 8, 3), np.uint8)
        frame[1, 2] = (10, 20, 30)  # row 1, column 2
        return frame

    env = PixelObservationWrapper(GenericGoalEnv(render_func=render), image_size=8, frame_stack=1, goal_mode="none")
    obs, _ = env.reset()
    assert obs["pixels"].shape == (3, 8, 8)
    assert obs["pixels"][:, 1, 2].tolist() == [10, 20, 30]
    assert obs["pixels"].flags.c_contiguous
    assert obs["pixels"].flags.owndata


def test_frame_stack_does_not_alias_the_renderer_buffer():
    shared = np.zeros((8, 8, 3), np.uint8)

    def render(env: GenericGoalEnv) -> np.ndarray:
        shared[:] = env.t  # a renderer that reuses one buffer, like MuJoCo's
        return shared

    env = PixelObservationWrapper(GenericGoalEnv(render_func=render), image_size=8, frame_stack=2, goal_mode="none")
    env.reset()
    obs, *_ = env.step(env.action_space.sample())
    assert obs["pixels"][0].max() == 0
    assert obs["pixels"][3].max() == 1


def test_proprioception_selects_indices_and_goal_modes_select_keys():
    env = PixelObservationWrapper(GenericGoalEnv(obs_dim=6), image_size=8, proprio_indices=[0, 4, -1])
    env.reset()
    obs, *_ = env.step(env.action_space.sample())  # t = 1: observation = [1, 2, 3, 4, 5, 6]
    assert obs["proprioception"].tolist() == [1.0, 5.0, 6.0]
    assert env.observation_space["proprioception"].shape == (3,)

    keys = {
        mode: set(PixelObservationWrapper(GenericGoalEnv(), image_size=8, goal_mode=mode).observation_space.spaces)
        for mode in ("none", "desired", "both", "strict")
    }
    assert keys["none"] == {"pixels"}
    assert keys["desired"] == {"pixels", "desired_goal"}
    assert keys["both"] == keys["strict"] == {"pixels", "achieved_goal", "desired_goal"}


def test_strict_mode_names_achieved_goal_for_the_extractor_to_drop():
    assert point_env(goal_mode="strict").network_exclude_keys == ("achieved_goal",)
    assert point_env(goal_mode="both").network_exclude_keys == ()


def test_last_raw_obs_is_the_wrapped_observation():
    env = PixelObservationWrapper(GenericGoalEnv(), image_size=8)
    env.reset()
    env.step(env.action_space.sample())
    env.step(env.action_space.sample())
    assert env.last_raw_obs["observation"][0] == 2.0
    np.testing.assert_allclose(env.last_raw_obs["achieved_goal"], 0.2)


def test_compute_reward_forwards_batches_and_matches_step_reward():
    env = point_env()
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert env.compute_reward(obs["achieved_goal"], obs["desired_goal"], {}) == reward
    achieved = np.array([[0.0, 0.0], [0.5, 0.5], [0.0, 0.01]])
    desired = np.zeros((3, 2))
    assert env.compute_reward(achieved, desired, [{}] * 3).tolist() == [0.0, -1.0, 0.0]


def test_compute_reward_missing_on_the_wrapped_env_is_a_clear_error():
    env = PixelObservationWrapper(GenericGoalEnv(with_compute_reward=False), image_size=8)
    with pytest.raises(AttributeError, match="has no compute_reward"):
        env.compute_reward(np.zeros(3), np.zeros(3), {})


def test_resizes_when_the_renderer_does_not_render_natively(caplog):
    env = PixelObservationWrapper(GenericGoalEnv(width=32, height=24), image_size=(12, 16), frame_stack=1)
    with caplog.at_level(logging.WARNING, logger="pixelrl.wrappers.pixel_observation"):
        obs, _ = env.reset()
        for _ in range(3):
            env.step(env.action_space.sample())
    assert obs["pixels"].shape == (3, 12, 16)
    warnings_logged = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert [record.getMessage() for record in warnings_logged] == [  # once, not on every step
        "Rendering at 32x24 and resizing to 16x12 on every step; create the env with "
        "width=16, height=12 to render natively (several times faster)."
    ]


def test_native_rendering_logs_no_resize_warning(caplog):
    env = PixelObservationWrapper(GenericGoalEnv(width=16, height=12), image_size=(12, 16), frame_stack=1)
    with caplog.at_level(logging.WARNING, logger="pixelrl.wrappers.pixel_observation"):
        env.reset()
    assert caplog.records == []


def test_gymnasium_and_sb3_check_env_without_warnings():
    env = gym.make("pixelrl/PointReach-v0", image_size=48)
    wrapped = PixelObservationWrapper(env, image_size=48, proprio_indices=[2, 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(wrapped)
        sb3_check_env(wrapped)
    messages = [str(w.message) for w in caught if WRAPPER_NOTICE not in str(w.message)]
    assert messages == []


@pytest.mark.parametrize("vec_env_class", [DummyVecEnv, SubprocVecEnv])
def test_works_under_vec_envs_with_batched_compute_reward(vec_env_class):
    vec_env = vec_env_class([lambda: point_env(frame_stack=2) for _ in range(2)])
    try:
        obs = vec_env.reset()
        assert obs["pixels"].shape == (2, 6, 16, 16)
        assert obs["pixels"].dtype == np.uint8
        terminal = []
        for step in range(1, 13):  # crosses the 10-step time limit; the VecEnv auto-resets
            obs, _, dones, infos = vec_env.step(np.stack([vec_env.action_space.sample()] * 2))
            assert obs["pixels"].shape == (2, 6, 16, 16)
            if dones.any():
                terminal.append((step, [info["terminal_observation"]["pixels"].shape for info in infos]))
        assert terminal == [(10, [(6, 16, 16), (6, 16, 16)])]
        achieved = np.zeros((4, 2))
        desired = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.05], [0.5, 0.0]])
        rewards = vec_env.env_method("compute_reward", achieved, desired, [{}] * 4, indices=[0])[0]
        assert rewards.tolist() == [0.0, -1.0, 0.0, -1.0]
    finally:
        vec_env.close()


def test_error_when_env_does_not_render_rgb_arrays():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        PixelObservationWrapper(GenericGoalEnv(render_mode=None))


def test_error_for_unknown_goal_mode():
    with pytest.raises(ValueError, match="Unknown goal_mode 'goal'; expected one of none, desired, both, strict"):
        PixelObservationWrapper(GenericGoalEnv(), goal_mode="goal")  # type: ignore[arg-type]


def test_error_for_proprio_index_out_of_range():
    with pytest.raises(ValueError, match=r"proprio index 6 is out of range .* size 6"):
        PixelObservationWrapper(GenericGoalEnv(obs_dim=6), proprio_indices=[0, 6])


def test_error_when_goal_keys_are_missing():
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    with pytest.raises(ValueError, match="needs 'achieved_goal'"):
        PixelObservationWrapper(env, goal_mode="both")


def test_error_for_bad_frame_stack():
    with pytest.raises(ValueError, match="frame_stack must be an int >= 1"):
        PixelObservationWrapper(GenericGoalEnv(), frame_stack=0)


def test_error_for_hwc_frames_or_float_frames_from_the_renderer():
    from pixelrl.wrappers import RenderingError

    chw = PixelObservationWrapper(
        GenericGoalEnv(render_func=lambda env: np.zeros((3, 8, 8), np.uint8)), image_size=8, goal_mode="none"
    )
    with pytest.raises(RenderingError, match=r"shape \(H, W, 3\), got shape \(3, 8, 8\)"):
        chw.reset()
    floats = PixelObservationWrapper(
        GenericGoalEnv(render_func=lambda env: np.zeros((8, 8, 3), np.float32)), image_size=8, goal_mode="none"
    )
    with pytest.raises(RenderingError, match="must return uint8 pixels"):
        floats.reset()


# --- strict mode: no network input may carry the achieved goal -------------------------------

STRICT_MESSAGE = r"goal_mode='strict' refuses this observation: 'proprioception' carries the achieved goal\. "


def _point(env_id, proprio_indices, goal_mode):
    return PixelObservationWrapper(
        gym.make(env_id, image_size=16, max_episode_steps=10),
        image_size=16,
        frame_stack=1,
        proprio_indices=proprio_indices,
        goal_mode=goal_mode,
    )


def test_strict_mode_refuses_point_reach_proprioception_with_the_agent_position():
    # PointReach's observation is [agent_x, agent_y, vel_x, vel_y]; its achieved goal is the
    # agent position, entries 0 and 1. A shuffled selection shows both index spaces in the message.
    env = _point("pixelrl/PointReach-v0", [3, 1, 0], "strict")
    match = (
        STRICT_MESSAGE + r"Its entries \[2, 1\] \(entries \[0, 1\] of the wrapped env's 'observation' vector, "
        r"chosen by proprio_indices\) equal achieved_goal \[.*\].*"
        r"In strict mode the position the task depends on must come from the image\. "
        r"Fix: leave those entries out of proprio_indices: for Fetch Reach use FETCH_REACH_STRICT_PROPRIO_INDICES.*"
        r"for pixelrl/PointReach-v0 POINT_REACH_PROPRIO_INDICES.*or use goal_mode='both'"
    )
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0)


def test_strict_mode_refuses_negative_indices_and_names_their_position_in_the_wrapped_vector():
    env = _point("pixelrl/PointReach-v0", [-4, -3], "strict")
    with pytest.raises(ValueError, match=STRICT_MESSAGE + r"Its entries \[0, 1\] \(entries \[0, 1\] of"):
        env.reset(seed=1)


class _LeaksFromStepTwo(GenericGoalEnv):
    """Copies the achieved goal into observation[3:6] from step 2 on."""

    def _obs(self):
        obs = super()._obs()
        if self.t >= 2:
            obs["observation"][3:6] = obs["achieved_goal"]
        return obs


def test_strict_mode_checks_every_step_not_only_reset():
    env = PixelObservationWrapper(_LeaksFromStepTwo(), image_size=8, proprio_indices=range(6), goal_mode="strict")
    # At reset achieved_goal is (0, 0, 0) and the observation [0, 1, ..., 5] holds a single 0:
    # one equal entry does not hold three coordinates, so this is no copy.
    obs, _ = env.reset()
    assert obs in env.observation_space
    env.step(env.action_space.sample())
    with pytest.raises(ValueError, match=STRICT_MESSAGE + r"Its entries \[3, 4, 5\] \(entries \[3, 4, 5\] of"):
        env.step(env.action_space.sample())


@pytest.mark.parametrize(
    ("env_id", "proprio_indices"),
    [
        ("pixelrl/PointReach-v0", POINT_REACH_PROPRIO_INDICES),
        ("pixelrl/PointPush-v0", POINT_PUSH_PROPRIO_INDICES),
    ],
)
def test_strict_mode_accepts_the_point_envs_strict_layouts(env_id, proprio_indices):
    env = _point(env_id, proprio_indices, "strict")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(12):  # past the 10-step time limit
            assert obs in env.observation_space
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                obs, _ = env.reset()


def test_goal_mode_both_never_refuses_a_vector_that_carries_the_achieved_goal():
    env = _point("pixelrl/PointReach-v0", [0, 1, 2, 3], "both")
    obs, _ = env.reset(seed=0)
    for _ in range(12):
        np.testing.assert_array_equal(obs["proprioception"][:2], obs["achieved_goal"])  # the leak is there
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
