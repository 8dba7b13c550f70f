from __future__ import annotations

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

from pixelrl.envs import (
    AGENT_COLOR,
    DISTRACTOR_COLORS,
    GOAL_COLOR,
    OBJECT_COLOR,
    POINT_PUSH_PROPRIO_INDICES,
    PointPushEnv,
)

Color = tuple[int, int, int]
Obs = dict[str, npt.NDArray[np.float64]]
RIGHT = np.array([1.0, 0.0], dtype=np.float32)


def _mask(frame: npt.NDArray[np.uint8], color: Color) -> npt.NDArray[np.bool_]:
    return np.all(frame == np.asarray(color, dtype=np.uint8), axis=-1)


def _centroid(frame: npt.NDArray[np.uint8], color: Color) -> tuple[npt.NDArray[np.float64], int]:
    rows, cols = np.nonzero(_mask(frame, color))
    return np.array([rows.mean(), cols.mean()]), rows.size


def _disc_pixel_count(size: int) -> int:
    """Pixels of a size x size box whose centres are within size / 2 of its centre (the documented disc)."""
    offsets = np.arange(size) + 0.5 - size / 2
    return int(np.sum(offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (size / 2) ** 2 + 1e-9))


def _toward(delta: npt.NDArray[np.float64], step_size: float) -> npt.NDArray[np.float32]:
    action = delta / step_size
    largest = np.abs(action).max()
    return (action / largest if largest > 1.0 else action).astype(np.float32)


def _push_policy(obs: Obs, contact_radius: float, step_size: float) -> npt.NDArray[np.float32]:
    """Get behind the object (walking around it if needed), then push it towards the goal."""
    agent, obj, goal = obs["observation"][0:2], obs["observation"][2:4], obs["desired_goal"]
    direction = (goal - obj) / np.linalg.norm(goal - obj)
    normal = np.array([-direction[1], direction[0]])
    along, across = (agent - obj) @ direction, (agent - obj) @ normal
    if along < -0.9 * contact_radius and abs(across) < 0.2 * contact_radius:
        return _toward(step_size * (direction - 2.0 * across / contact_radius * normal), step_size)
    if along < -0.9 * contact_radius:
        return _toward(obj - 1.05 * contact_radius * direction - agent, step_size)
    side = 1.0 if across >= 0 else -1.0
    return _toward(obj + contact_radius * (1.5 * side * normal - 1.1 * direction) - agent, step_size)


@pytest.mark.parametrize(
    "kwargs", [{}, {"image_size": 16, "noise": 30, "n_distractors": 2, "render_goal": True}, {"render_mode": None}]
)
def test_gymnasium_check_env_passes_without_warnings(kwargs: dict[str, Any]) -> None:
    env = gym.make("pixelrl/PointPush-v0", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_sb3_check_env_accepts_it_as_a_vectorised_goal_env() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(PointPushEnv(image_size=16))


def test_observation_layout_and_no_overlap_under_random_play() -> None:
    env = PointPushEnv(image_size=32)
    rng = np.random.default_rng(0)
    for episode in range(5):
        obs, _ = env.reset(seed=episode)
        drift = rng.uniform(-1.0, 1.0, size=2)  # biased walks reach the walls and the object
        for _ in range(100):
            previous = obs["observation"][0:2]
            obs, reward, terminated, truncated, info = env.step((drift + rng.normal(0, 0.5, 2)).astype(np.float32))
            assert obs in env.observation_space
            assert all(value.dtype == np.float64 for value in obs.values())
            assert not terminated
            assert not truncated
            agent, obj, rel, velocity = np.split(obs["observation"], 4)
            np.testing.assert_array_equal(obs["achieved_goal"], obj)
            np.testing.assert_allclose(rel, obj - agent, atol=1e-12)
            np.testing.assert_allclose(velocity, agent - previous, atol=1e-12)
            proprio = obs["observation"][list(POINT_PUSH_PROPRIO_INDICES)]
            np.testing.assert_array_equal(proprio, np.concatenate([agent, velocity]))
            assert np.linalg.norm(rel) >= env.contact_radius - 1e-9
            assert reward == env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
            assert info["is_success"] == float(reward == 0.0)


def test_initial_state_distribution() -> None:
    env = PointPushEnv(object_goal_range=0.4)
    for seed in range(200):
        obs, info = env.reset(seed=seed)
        agent, obj = obs["observation"][0:2], obs["observation"][2:4]
        assert np.all(np.abs(obj) <= 0.3)
        offset = obs["desired_goal"] - obj
        assert np.all(np.abs(offset) <= 0.4)
        assert np.linalg.norm(offset) > env.distance_threshold
        assert env.contact_radius + 0.05 <= np.linalg.norm(agent - obj) <= env.contact_radius + 0.35
        assert info["is_success"] == 0.0


def test_head_on_push_moves_the_object_along_and_sprites_touch() -> None:
    env = PointPushEnv(image_size=32, step_size=0.1)
    radius = env.contact_radius
    options = {"agent_position": (-radius - 0.15, 0.0), "object_position": (0.0, 0.0), "goal": (0.8, 0.0)}
    obs, _ = env.reset(seed=0, options=options)
    object_x = []
    for _ in range(6):
        obs, *_ = env.step(RIGHT)
        object_x.append(obs["observation"][2])
        np.testing.assert_allclose(obs["observation"][[1, 3]], [0.0, 0.0])  # no sideways motion
    # One free step, a partial push, then the object moves a full step per step.
    np.testing.assert_allclose(object_x, [0.0, 0.05, 0.15, 0.25, 0.35, 0.45], atol=1e-12)
    np.testing.assert_allclose(obs["observation"][4], radius, atol=1e-12)
    # The default contact radius matches the drawing: the discs are adjacent, no gap, no overlap.
    frame = env.render()
    agent_cols = np.nonzero(_mask(frame, AGENT_COLOR).any(axis=0))[0]
    object_cols = np.nonzero(_mask(frame, OBJECT_COLOR).any(axis=0))[0]
    assert object_cols.min() - agent_cols.max() == 1
    assert _mask(frame, OBJECT_COLOR).sum() == _disc_pixel_count(env.object_size)


def test_off_centre_push_deflects_the_object_and_retreating_leaves_it() -> None:
    env = PointPushEnv()
    radius = env.contact_radius
    options = {"agent_position": (-radius - 0.05, 0.1), "object_position": (0.0, 0.0), "goal": (0.8, 0.0)}
    obs, _ = env.reset(seed=0, options=options)
    for _ in range(3):
        obs, *_ = env.step(RIGHT)
    obj = obs["observation"][2:4]
    assert obj[0] > 0.05
    assert obj[1] < -0.01  # hit above its centre, the object slides downwards
    for _ in range(3):
        obs, *_ = env.step(-RIGHT)
    np.testing.assert_array_equal(obs["observation"][2:4], obj)


def test_walls_stop_the_object_and_the_agent_at_contact_distance() -> None:
    env = PointPushEnv()
    radius = env.contact_radius
    options = {"agent_position": (0.9 - radius - 0.05, 0.0), "object_position": (0.9, 0.0), "goal": (0.0, 0.5)}
    obs, _ = env.reset(seed=0, options=options)
    for _ in range(10):
        obs, *_ = env.step(RIGHT)
    np.testing.assert_allclose(obs["observation"][:4], [1.0 - radius, 0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(obs["observation"][6:], [0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("image_size", [16, 84])
def test_scripted_pushing_reaches_the_goal_within_an_episode(image_size: int) -> None:
    env = PointPushEnv(image_size=image_size)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        start = obs["achieved_goal"]
        for _ in range(50):
            obs, reward, _, _, info = env.step(_push_policy(obs, env.contact_radius, env.step_size))
            if reward == 0.0:
                break
            assert info["is_success"] == 0.0
        assert reward == 0.0, f"seed {seed}: object at {obs['achieved_goal']}, goal {obs['desired_goal']}"
        assert info["is_success"] == 1.0
        assert np.linalg.norm(obs["achieved_goal"] - start) > 0.0


@settings(max_examples=30, deadline=None)
@given(achieved=arrays(np.float64, st.tuples(st.integers(1, 6), st.just(2)), elements=st.floats(-1.0, 1.0)))
def test_compute_reward_on_batches_equals_a_per_row_loop(achieved: npt.NDArray[np.float64]) -> None:
    env = PointPushEnv()
    desired = np.roll(achieved, 1, axis=0) + 0.05
    batch = env.compute_reward(achieved, desired, np.array([{}] * len(achieved)))
    assert batch.shape == (len(achieved),)
    assert batch.dtype == np.float32
    singles = [env.compute_reward(a, d, None) for a, d in zip(achieved, desired, strict=True)]
    np.testing.assert_array_equal(batch, singles)


@pytest.mark.parametrize("image_size", [16, 32, 84])
def test_agent_and_object_are_drawn_where_their_positions_map(image_size: int) -> None:
    env = PointPushEnv(image_size=image_size)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        frame = env.render()
        assert frame.shape == (image_size, image_size, 3)
        assert frame.dtype == np.uint8
        assert frame.flags.c_contiguous
        for color, position, size in (
            (AGENT_COLOR, obs["observation"][0:2], env.agent_size),
            (OBJECT_COLOR, obs["observation"][2:4], env.object_size),
        ):
            centroid, count = _centroid(frame, color)
            assert count == _disc_pixel_count(size)
            assert np.all(np.abs(centroid - env.world_to_pixel(position)) <= 0.5 + 1e-9)
    assert env.object_size > env.agent_size


def test_goal_marker_is_drawn_only_with_render_goal_and_surrounds_the_goal() -> None:
    options = {"agent_position": (-0.8, -0.8), "object_position": (-0.3, -0.3), "goal": (0.5, 0.4)}
    plain = PointPushEnv()
    plain.reset(seed=0, options=options)
    assert not _mask(plain.render(), GOAL_COLOR).any()
    marked = PointPushEnv(render_goal=True)
    marked.reset(seed=0, options=options)
    centroid, count = _centroid(marked.render(), GOAL_COLOR)
    assert count == 4 * (marked.object_size + 2) - 4
    assert np.all(np.abs(centroid - marked.world_to_pixel((0.5, 0.4))) <= 0.5 + 1e-9)


def test_noise_and_distractors_change_frames_but_not_the_task() -> None:
    env = PointPushEnv(noise=80, n_distractors=4)
    reference = PointPushEnv()
    obs, _ = env.reset(seed=11)
    ref_obs, _ = reference.reset(seed=11)
    distractor_centroids = []
    for _ in range(8):
        first, second = env.render(), env.render()
        assert not np.array_equal(first, second)
        for frame in (first, second):
            # At contact, pixel rounding can let the agent (drawn on top) hide a rim pixel of the object.
            for color, position, tolerance in (
                (AGENT_COLOR, obs["observation"][0:2], 0.5),
                (OBJECT_COLOR, obs["achieved_goal"], 1.0),
            ):
                centroid, _ = _centroid(frame, color)
                assert np.all(np.abs(centroid - env.world_to_pixel(position)) <= tolerance + 1e-9)
        distractor_centroids.append(np.concatenate([_centroid(first, c)[0] for c in DISTRACTOR_COLORS[:4]]))
        action = _push_policy(obs, env.contact_radius, env.step_size)
        (obs, reward, *_), (ref_obs, ref_reward, *_) = env.step(action), reference.step(action)
        for key in obs:
            np.testing.assert_array_equal(obs[key], ref_obs[key])
        assert reward == ref_reward
    assert np.all(np.ptp(np.array(distractor_centroids), axis=0) > 0)


def test_same_seed_gives_same_episode_and_frames() -> None:
    kwargs: dict[str, Any] = {"image_size": 16, "noise": 40, "n_distractors": 1, "render_goal": True}
    env_a, env_b = PointPushEnv(**kwargs), PointPushEnv(**kwargs)
    obs_a, _ = env_a.reset(seed=3)
    obs_b, _ = env_b.reset(seed=3)
    for _ in range(15):
        np.testing.assert_array_equal(env_a.render(), env_b.render())
        action = _push_policy(obs_a, env_a.contact_radius, env_a.step_size)
        (obs_a, reward_a, *_), (obs_b, reward_b, *_) = env_a.step(action), env_b.step(action)
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        assert reward_a == reward_b


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 16, "object_size": 16}, r"object_size=16 is out of range: expected in \[1, 15\]"),
        ({"object_goal_range": 0.1}, r"object_goal_range=0.1 is out of range: expected \(0.1, 2.0\]"),
        ({"contact_radius": 0.6}, r"contact_radius=0.6 is out of range: expected \(0.0, 0.5\]"),
        ({"image_size": 6, "agent_size": 2, "object_size": 3}, r"derived from the sprite sizes.*raise image_size"),
        ({"render_mode": "human"}, r"render_mode='human' is not supported"),
        ({"noise": 300}, r"noise=300 is out of range: expected in \[0, 255\]"),
    ],
)
def test_bad_knobs_are_rejected_with_a_clear_message(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PointPushEnv(**kwargs)


def test_misuse_raises_clear_errors() -> None:
    env = PointPushEnv()
    with pytest.raises(RuntimeError, match=r"step\(\) was called before reset\(\)"):
        env.step(RIGHT)
    with pytest.raises(ValueError, match=r"overlap: their centres must be at least contact_radius"):
        env.reset(options={"agent_position": (0.1, 0.0), "object_position": (0.0, 0.0)})
    with pytest.raises(ValueError, match=r"Unknown reset option\(s\) \['agent'\]"):
        env.reset(options={"agent": (0.1, 0.0)})


def test_registration_forwards_knobs_and_truncates_episodes() -> None:
    env = gym.make("pixelrl/PointPush-v0", image_size=16, n_distractors=1, max_episode_steps=5)
    env.reset(seed=0)
    assert env.render().shape == (16, 16, 3)
    truncations = [env.step(RIGHT)[3] for _ in range(5)]
    assert truncations == [False] * 4 + [True]
    assert gym.spec("pixelrl/PointPush-v0").max_episode_steps == 50
