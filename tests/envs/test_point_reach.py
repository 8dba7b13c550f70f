from __future__ import annotations

import importlib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import pixelrl.envs
from pixelrl.envs import (
    AGENT_COLOR,
    BACKGROUND_COLOR,
    DISTRACTOR_COLORS,
    GOAL_COLOR,
    POINT_REACH_PROPRIO_INDICES,
    PointReachEnv,
)

Color = tuple[int, int, int]


def _mask(frame: npt.NDArray[np.uint8], color: Color) -> npt.NDArray[np.bool_]:
    return np.all(frame == np.asarray(color, dtype=np.uint8), axis=-1)


def _centroid(frame: npt.NDArray[np.uint8], color: Color) -> tuple[npt.NDArray[np.float64], int]:
    rows, cols = np.nonzero(_mask(frame, color))
    return np.array([rows.mean(), cols.mean()]), rows.size


def _disc_pixel_count(size: int) -> int:
    """Pixels of a size x size box whose centres are within size / 2 of its centre (the documented disc)."""
    offsets = np.arange(size) + 0.5 - size / 2
    return int(np.sum(offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (size / 2) ** 2 + 1e-9))


def _greedy(obs: dict[str, npt.NDArray[np.float64]], step_size: float) -> npt.NDArray[np.float32]:
    delta = (obs["desired_goal"] - obs["achieved_goal"]) / step_size
    return np.clip(delta, -1.0, 1.0).astype(np.float32)


@pytest.mark.parametrize(
    "kwargs", [{}, {"image_size": 16, "noise": 30, "n_distractors": 3, "render_goal": True}, {"render_mode": None}]
)
def test_gymnasium_check_env_passes_without_warnings(kwargs: dict[str, Any]) -> None:
    env = gym.make("pixelrl/PointReach-v0", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_sb3_check_env_accepts_it_as_a_vectorised_goal_env() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(PointReachEnv(image_size=16))


def test_observations_stay_in_space_and_velocity_is_last_displacement() -> None:
    env = PointReachEnv(image_size=16, step_size=0.3)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    assert info == {"is_success": 0.0}
    np.testing.assert_array_equal(obs["observation"][2:], [0.0, 0.0])
    for _ in range(100):
        # Out-of-range actions are clipped, so moves never exceed step_size per axis.
        action = rng.uniform(-3.0, 3.0, size=2).astype(np.float32)
        previous = obs["achieved_goal"]
        obs, _, terminated, truncated, _ = env.step(action)
        assert obs in env.observation_space
        assert all(value.dtype == np.float64 for value in obs.values())
        assert not terminated
        assert not truncated
        velocity = obs["observation"][list(POINT_REACH_PROPRIO_INDICES)]
        np.testing.assert_allclose(velocity, obs["achieved_goal"] - previous, atol=1e-12)
        np.testing.assert_array_equal(obs["observation"][:2], obs["achieved_goal"])
        assert np.all(np.abs(velocity) <= 0.3 + 1e-12)


def test_step_moves_by_step_size_and_clips_at_the_wall() -> None:
    env = PointReachEnv(step_size=0.1)
    obs, _ = env.reset(seed=0, options={"agent_position": (0.0, 0.0), "goal": (0.9, 0.9)})
    obs, *_ = env.step(np.array([1.0, -0.5], dtype=np.float32))
    np.testing.assert_allclose(obs["achieved_goal"], [0.1, -0.05])
    for _ in range(30):
        obs, *_ = env.step(np.array([1.0, 1.0], dtype=np.float32))
    np.testing.assert_array_equal(obs["achieved_goal"], [1.0, 1.0])
    np.testing.assert_array_equal(obs["observation"][2:], [0.0, 0.0])


def test_goals_are_sampled_in_the_arena_and_never_start_reached() -> None:
    env = PointReachEnv(distance_threshold=1.0)
    starts = []
    for seed in range(200):
        obs, info = env.reset(seed=seed)
        assert np.linalg.norm(obs["desired_goal"] - obs["achieved_goal"]) > 1.0
        assert info["is_success"] == 0.0
        starts.append(obs["achieved_goal"])
    # The start position is random over the whole arena, so it must be read from the image.
    assert np.ptp(np.array(starts), axis=0).min() > 1.5


def test_same_seed_gives_same_observations_and_frames_and_rendering_does_not_perturb_dynamics() -> None:
    kwargs: dict[str, Any] = {"image_size": 16, "noise": 60, "n_distractors": 2}
    env_a, env_b, env_quiet = PointReachEnv(**kwargs), PointReachEnv(**kwargs), PointReachEnv(**kwargs)
    obs_a, _ = env_a.reset(seed=7)
    obs_b, _ = env_b.reset(seed=7)
    obs_q, _ = env_quiet.reset(seed=7)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(20, 2)).astype(np.float32)
    for action in actions:
        np.testing.assert_array_equal(env_a.render(), env_b.render())
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
            np.testing.assert_array_equal(obs_a[key], obs_q[key])
        obs_a, reward_a, *_ = env_a.step(action)
        obs_b, reward_b, *_ = env_b.step(action)
        obs_q, reward_q, *_ = env_quiet.step(action)  # never rendered
        assert reward_a == reward_b == reward_q
    other, _ = env_b.reset(seed=8)
    assert not np.array_equal(other["desired_goal"], env_a.reset(seed=7)[0]["desired_goal"])


@settings(max_examples=50, deadline=None)
@given(
    achieved=arrays(np.float64, st.tuples(st.integers(0, 8), st.just(2)), elements=st.floats(-1.5, 1.5)),
    data=st.data(),
)
def test_compute_reward_on_batches_equals_a_per_row_loop(achieved: npt.NDArray[np.float64], data: Any) -> None:
    env = PointReachEnv(distance_threshold=0.2)
    offsets = data.draw(arrays(np.float64, achieved.shape, elements=st.floats(-0.4, 0.4)))
    desired = achieved + offsets
    batch = env.compute_reward(achieved, desired, [{}] * len(achieved))
    assert batch.shape == (len(achieved),)
    assert batch.dtype == np.float32
    singles = [env.compute_reward(a, d, {}) for a, d in zip(achieved, desired, strict=True)]
    assert all(np.ndim(single) == 0 for single in singles)
    np.testing.assert_array_equal(batch, np.array(singles, dtype=np.float32))
    expected = np.where(np.linalg.norm(offsets, axis=-1) > 0.2, -1.0, 0.0)
    np.testing.assert_array_equal(batch, expected)


def test_compute_reward_accepts_every_info_form_her_passes() -> None:
    env = PointReachEnv()
    achieved = np.array([[0.0, 0.0], [0.5, 0.5]])
    desired = np.array([[0.05, 0.0], [-0.5, 0.5]])
    for info in (None, {}, [{}, {}], np.array([{}, {}])):
        np.testing.assert_array_equal(env.compute_reward(achieved, desired, info), [0.0, -1.0])


def test_compute_reward_rejects_mismatched_goal_shapes() -> None:
    with pytest.raises(ValueError, match=r"same shape \(2,\) or \(B, 2\), got \(3, 2\) and \(2, 2\)"):
        PointReachEnv().compute_reward(np.zeros((3, 2)), np.zeros((2, 2)), None)


def test_step_reward_matches_compute_reward_and_success_flag() -> None:
    env = PointReachEnv()
    obs, _ = env.reset(seed=3)
    rewards = []
    for _ in range(40):
        obs, reward, _, _, info = env.step(_greedy(obs, env.step_size))
        assert reward == env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
        distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
        assert reward == (0.0 if distance <= env.distance_threshold else -1.0)
        assert info["is_success"] == float(reward == 0.0)
        rewards.append(reward)
    assert rewards[0] == -1.0
    assert rewards[-1] == 0.0


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(-1.0, 1.0),
    y=st.floats(-1.0, 1.0),
    image_size=st.sampled_from([8, 16, 32, 84]),
    agent_size=st.integers(1, 7),
)
def test_agent_is_drawn_where_its_position_maps(x: float, y: float, image_size: int, agent_size: int) -> None:
    env = PointReachEnv(image_size=image_size, agent_size=agent_size)
    env.reset(seed=0, options={"agent_position": (x, y)})
    frame = env.render()
    assert frame.shape == (image_size, image_size, 3)
    assert frame.dtype == np.uint8
    assert frame.flags.c_contiguous
    centroid, count = _centroid(frame, AGENT_COLOR)
    assert count == _disc_pixel_count(agent_size)
    assert np.all(np.abs(centroid - env.world_to_pixel((x, y))) <= 0.5 + 1e-9)
    # The rest is plain background, and y grows upwards (towards row 0).
    assert np.all(frame[~_mask(frame, AGENT_COLOR)] == BACKGROUND_COLOR)
    top, bottom = env.world_to_pixel([(0.0, 1.0), (0.0, -1.0)])[:, 0]
    assert top < bottom


def test_goal_marker_is_drawn_only_with_render_goal_and_surrounds_the_goal() -> None:
    options = {"agent_position": (-0.8, -0.8), "goal": (0.4, 0.2)}
    plain = PointReachEnv()
    plain.reset(seed=0, options=options)
    assert not _mask(plain.render(), GOAL_COLOR).any()
    marked = PointReachEnv(render_goal=True)
    marked.reset(seed=0, options=options)
    frame = marked.render()
    centroid, count = _centroid(frame, GOAL_COLOR)
    assert count == 4 * (marked.agent_size + 2) - 4  # a one-pixel hollow square
    assert np.all(np.abs(centroid - marked.world_to_pixel((0.4, 0.2))) <= 0.5 + 1e-9)
    # Apart from the marker the two frames are identical.
    differs = np.any(frame != plain.render(), axis=-1)
    np.testing.assert_array_equal(differs, _mask(frame, GOAL_COLOR))


def test_noise_is_redrawn_every_frame_on_the_background_only() -> None:
    env = PointReachEnv(image_size=32, noise=50)
    env.reset(seed=0, options={"agent_position": (0.3, -0.6)})
    first, second = env.render(), env.render()
    assert not np.array_equal(first, second)
    for frame in (first, second):
        centroid, count = _centroid(frame, AGENT_COLOR)
        assert count == _disc_pixel_count(env.agent_size)
        assert np.all(np.abs(centroid - env.world_to_pixel((0.3, -0.6))) <= 0.5 + 1e-9)
        background = frame[~_mask(frame, AGENT_COLOR)].astype(int)
        assert background.min() >= 40
        assert background.max() <= 40 + 50
    assert np.array_equal(PointReachEnv(noise=0).render(), PointReachEnv(noise=0).render())


def test_noise_saturates_at_255_instead_of_wrapping() -> None:
    env = PointReachEnv(image_size=84, noise=255)
    env.reset(seed=0)
    background = env.render()[:, :, 1].astype(int)  # the agent colour has green 0: excluded below
    background = background[background != 0]
    assert background.min() >= BACKGROUND_COLOR[1]
    # Offsets 215..255 all saturate to 255: 41 of 256 equally likely values.
    assert abs(np.mean(background == 255) - 41 / 256) < 0.02


def test_distractors_move_but_never_change_observations_or_rewards() -> None:
    env = PointReachEnv(image_size=32, n_distractors=3)
    reference = PointReachEnv(image_size=32)
    obs, _ = env.reset(seed=5)
    ref_obs, _ = reference.reset(seed=5)
    centroids = []
    for _ in range(10):
        frame = env.render()
        found = [_centroid(frame, color) for color in DISTRACTOR_COLORS[:3]]
        assert all(count > 0 for _, count in found)
        assert not _mask(frame, DISTRACTOR_COLORS[3]).any()
        centroids.append(np.concatenate([centroid for centroid, _ in found]))
        action = _greedy(obs, env.step_size)
        (obs, reward, *_), (ref_obs, ref_reward, *_) = env.step(action), reference.step(action)
        for key in obs:
            np.testing.assert_array_equal(obs[key], ref_obs[key])
        assert reward == ref_reward
    assert np.all(np.ptp(np.array(centroids), axis=0) > 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"render_mode": "human"}, ValueError, r"render_mode='human' is not supported.*'rgb_array'"),
        ({"image_size": 16, "agent_size": 16}, ValueError, r"agent_size=16 is out of range: expected in \[1, 15\]"),
        ({"agent_size": 0}, ValueError, r"agent_size=0 is out of range"),
        ({"noise": -1}, ValueError, r"noise=-1 is out of range: expected in \[0, 255\]"),
        ({"noise": 256}, ValueError, r"noise=256 is out of range"),
        ({"n_distractors": -2}, ValueError, r"n_distractors=-2 is out of range: expected >= 0"),
        ({"step_size": 0.0}, ValueError, r"step_size=0.0 is out of range: expected \(0.0, 2.0\]"),
        ({"distance_threshold": 1.5}, ValueError, r"distance_threshold=1.5 is out of range"),
        ({"distance_threshold": float("nan")}, ValueError, r"distance_threshold=nan is out of range"),
        ({"image_size": 32.0}, TypeError, r"image_size must be an int, got 32.0 \(float\)"),
        ({"noise": True}, TypeError, r"noise must be an int"),
    ],
)
def test_bad_knobs_are_rejected_with_a_clear_message(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        PointReachEnv(**kwargs)


def test_misuse_raises_clear_errors() -> None:
    env = PointReachEnv()
    with pytest.raises(RuntimeError, match=r"step\(\) was called before reset\(\)"):
        env.step(np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match=r"Unknown reset option\(s\) \['object_position'\]"):
        env.reset(options={"object_position": (0.0, 0.0)})
    with pytest.raises(ValueError, match=r"'goal' must be an \(x, y\) point inside the arena"):
        env.reset(options={"goal": (2.0, 0.0)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(2,\).*got shape \(1, 2\)"):
        env.step(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"action must be finite"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))
    headless = PointReachEnv(render_mode=None)
    headless.reset(seed=0)
    with pytest.raises(RuntimeError, match=r"render_mode=None.*render_mode='rgb_array'"):
        headless.render()


def test_registration_forwards_knobs_and_truncates_episodes() -> None:
    env = gym.make("pixelrl/PointReach-v0", image_size=16, max_episode_steps=10)
    env.reset(seed=0)
    assert env.render().shape == (16, 16, 3)
    truncations = []
    for _ in range(10):
        _, _, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
        assert not terminated
        truncations.append(truncated)
    assert truncations == [False] * 9 + [True]
    spec = gym.spec("pixelrl/PointReach-v0")
    assert spec.max_episode_steps == 50
    assert spec.entry_point == "pixelrl.envs.point_reach:PointReachEnv"


def test_reimporting_the_package_does_not_re_register() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when overriding a registration
        importlib.reload(pixelrl.envs)
    assert "pixelrl/PointReach-v0" in gym.registry
    assert "pixelrl/PointPush-v0" in gym.registry
    assert set(pixelrl.envs.__all__) >= {
        "PointReachEnv",
        "PointPushEnv",
        "POINT_REACH_PROPRIO_INDICES",
        "POINT_PUSH_PROPRIO_INDICES",
    }
