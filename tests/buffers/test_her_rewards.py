"""In-process HER rewards: the same batches as the env's compute_reward through env_method, without calling it."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from pixelrl.buffers import CompactHerReplayBuffer, EnvComputeReward, HerDrQDictReplayBuffer
from tests.buffers.test_compact import assert_same_batch, drive
from tests.helpers import IMAGE, point_vec_env

POINT_REWARD = ("pixelrl/PointReach-v0", {"image_size": IMAGE})


def buffer_pair(cls, vec_env, **kwargs):
    """Two buffers over the same env: rewards through env_method, and in-process."""
    common = dict(env=vec_env, n_envs=vec_env.num_envs, n_sampled_goal=4, **kwargs)
    if cls is HerDrQDictReplayBuffer:
        common["pad"] = 0
    space, actions = vec_env.observation_space, vec_env.action_space
    through_env = cls(400, space, actions, **common)
    in_process = cls(400, space, actions, **common, compute_reward=EnvComputeReward(*POINT_REWARD))
    return through_env, in_process


class CountingEnvMethod:
    def __init__(self, vec_env):
        self.wrapped, self.calls = vec_env.env_method, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.wrapped(*args, **kwargs)


@pytest.mark.parametrize("cls", [CompactHerReplayBuffer, HerDrQDictReplayBuffer])
@pytest.mark.parametrize(("n_steps", "copy_info_dict"), [(1, False), (1, True), (3, False)])
def test_in_process_rewards_give_the_env_method_batches_without_calling_the_env(
    monkeypatch, cls, n_steps, copy_info_dict
):
    vec_env = point_vec_env(2, max_episode_steps=6)
    through_env, in_process = buffer_pair(cls, vec_env, n_steps=n_steps, gamma=0.9, copy_info_dict=copy_info_dict)
    drive(vec_env, [through_env, in_process], 40)
    counter = CountingEnvMethod(vec_env)
    monkeypatch.setattr(vec_env, "env_method", counter)

    for seed in range(3):
        np.random.seed(seed)
        expected = through_env.sample(64)
        calls_through_env = counter.calls
        np.random.seed(seed)
        got = in_process.sample(64)
        assert counter.calls == calls_through_env  # the in-process buffer never asked the env
        assert_same_batch(got, expected)
        if n_steps > 1:
            assert th.equal(got.discounts, expected.discounts)
    assert counter.calls > 0  # the other one did (its first batch also checks the reward shape)
    # The batch holds both outcomes, so equal rewards are not equal by construction.
    assert (expected.rewards == 0).any() and (expected.rewards < 0).any()


def test_in_process_rewards_need_no_env_after_unpickling():
    vec_env = point_vec_env(1, max_episode_steps=6)
    through_env, in_process = buffer_pair(CompactHerReplayBuffer, vec_env)
    drive(vec_env, [through_env, in_process], 20)
    restored = pickle.loads(pickle.dumps(in_process))
    assert restored.env is None and isinstance(restored.compute_reward, EnvComputeReward)
    np.random.seed(0)
    expected = in_process.sample(32)
    np.random.seed(0)
    assert_same_batch(restored.sample(32), expected)
    with pytest.raises(ValueError, match=r"needs a VecEnv .* set_env\(env\) .* in-process compute_reward"):
        pickle.loads(pickle.dumps(through_env)).sample(32)


@pytest.mark.parametrize("cls", [CompactHerReplayBuffer, HerDrQDictReplayBuffer])
def test_a_buffer_pickled_before_in_process_rewards_asks_the_env(cls):
    vec_env = point_vec_env(1, max_episode_steps=6)
    _, in_process = buffer_pair(cls, vec_env)
    drive(vec_env, [in_process], 12)
    state = in_process.__getstate__()
    del state["compute_reward"]
    old = cls.__new__(cls)
    old.__setstate__(state)
    assert old.compute_reward is None


def one_reward_for_all(achieved_goal, desired_goal, infos):
    return np.float32(-1.0)  # not vectorised: SB3 would broadcast it silently


def test_a_reward_of_the_wrong_shape_names_the_in_process_function():
    vec_env = point_vec_env(1, max_episode_steps=6)
    buffer = CompactHerReplayBuffer(
        200, vec_env.observation_space, vec_env.action_space, env=vec_env, compute_reward=one_reward_for_all
    )
    drive(vec_env, [buffer], 12)
    with pytest.raises(ValueError, match=r"for 2 goals the buffer's compute_reward \(<function one_reward_for_all.*"
                       r"returned shape \(\)\. Vectorise"):  # fmt: skip
        buffer.sample(16)


def test_env_compute_reward_pickles_as_its_id_and_rebuilds_its_copy():
    reward = EnvComputeReward(*POINT_REWARD)
    goals = np.array([[0.0, 0.0], [0.5, 0.5], [0.0, 0.04]])
    first = reward(np.zeros((3, 2)), goals, [{}] * 3)
    assert reward._env is not None
    restored = pickle.loads(pickle.dumps(reward))
    assert restored._env is None and (restored.env_id, restored.env_kwargs) == POINT_REWARD
    np.testing.assert_array_equal(restored(np.zeros((3, 2)), goals, [{}] * 3), first)
    assert first.tolist() == [0.0, -1.0, 0.0]
    reward.close()


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_env_compute_reward_is_fetchs_goal_distance_reward(reward_type):
    from pixelrl.wrappers import register_fetch_envs

    register_fetch_envs()
    env = gym.make("FetchReach-v4", reward_type=reward_type)
    rng = np.random.default_rng(0)
    achieved = rng.uniform(1.0, 1.5, (50, 3))
    desired = achieved + rng.normal(0, 0.05, (50, 3))  # about half within the 0.05 threshold
    expected = env.unwrapped.compute_reward(achieved, desired, [{}] * 50)
    reward = EnvComputeReward("FetchReach-v4", {"reward_type": reward_type})
    np.testing.assert_array_equal(reward(achieved, desired, [{}] * 50), expected)
    if reward_type == "sparse":
        assert 5 < (expected == 0).sum() < 45
    env.close()
    reward.close()
