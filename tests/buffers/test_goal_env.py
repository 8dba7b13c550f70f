"""HER's checks of the env: at construction only what needs no reset, compute_reward's output on first use."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from stable_baselines3 import SAC
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.her import HerReplayBuffer

from pixelrl.buffers import CompactHerReplayBuffer, HerDrQDictReplayBuffer
from tests.buffers.test_compact import CodedGoalEnv, assert_same_batch, coded_vec_env, drive
from tests.testing_env import GenericGoalEnv

N_BITS = 4


def image_bit_flipping(n_envs: int = 2) -> DummyVecEnv:
    """SB3's image BitFlippingEnv: (1, 36, 36) uint8 observation and goals; compute_reward reads its state."""
    return DummyVecEnv(
        [lambda: BitFlippingEnv(n_bits=N_BITS, continuous=True, image_obs_space=True) for _ in range(n_envs)]
    )


def step_all(vec_env: DummyVecEnv, buffers: list, n_steps: int, seed: int = 0) -> None:
    """Random actions, added as SAC adds them (terminal observation in place of the reset one)."""
    rng = np.random.default_rng(seed)
    vec_env.seed(seed)
    obs = vec_env.reset()
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, (vec_env.num_envs, N_BITS)).astype(np.float32)
        new_obs, rewards, dones, infos = vec_env.step(actions)
        next_obs = copy.deepcopy(new_obs)
        for i in np.flatnonzero(dones):
            for key in next_obs:
                next_obs[key][i] = infos[i]["terminal_observation"][key]
        for buffer in buffers:
            buffer.add(copy.deepcopy(obs), copy.deepcopy(next_obs), actions, rewards, dones, infos)
        obs = new_obs


def test_bit_flipping_image_env_reads_its_state_in_compute_reward():
    # Why nothing may call compute_reward at construction: before a reset it raises.
    with pytest.raises(AttributeError, match="state"):
        BitFlippingEnv(n_bits=N_BITS, continuous=True, image_obs_space=True).compute_reward(
            np.zeros((2, 1, 36, 36), np.uint8), np.zeros((2, 1, 36, 36), np.uint8), None
        )


def test_pixel_her_buffers_accept_sb3s_image_bit_flipping_env_and_sample_what_sb3_samples():
    vec_env = image_bit_flipping()
    space, actions = vec_env.observation_space, vec_env.action_space
    common = {"env": vec_env, "n_envs": 2, "n_sampled_goal": 3}
    # Built before any reset, as SAC builds them.
    theirs = HerReplayBuffer(100, space, actions, **common)
    drq = HerDrQDictReplayBuffer(100, space, actions, pad=0, **common)
    compact = CompactHerReplayBuffer(100, space, actions, pixel_key="observation", frame_stack=1, **common)
    step_all(vec_env, [theirs, drq, compact], 30)
    np.testing.assert_array_equal(compact.ep_length, theirs.ep_length)
    for seed in range(3):
        np.random.seed(seed)
        reference = theirs.sample(32)
        for ours in (drq, compact):
            np.random.seed(seed)
            assert_same_batch(ours.sample(32), reference)
    assert (reference.rewards == 0).any()  # relabelled goals were reached: compute_reward ran on them


@pytest.mark.parametrize("buffer_class", [HerDrQDictReplayBuffer, CompactHerReplayBuffer])
def test_sac_learns_on_the_image_bit_flipping_env_with_either_buffer(buffer_class):
    kwargs = {"pad": 0} if buffer_class is HerDrQDictReplayBuffer else {"pixel_key": "observation", "frame_stack": 1}
    model = SAC(
        "MultiInputPolicy",
        image_bit_flipping(1),
        buffer_size=200,
        batch_size=8,
        learning_starts=20,
        seed=0,
        policy_kwargs={"net_arch": [16]},
        replay_buffer_class=buffer_class,
        replay_buffer_kwargs={"n_sampled_goal": 2, **kwargs},
    )
    model.learn(30)
    assert model._n_updates > 0
    assert model.replay_buffer.pos == 30


class ScalarRewardEnv(CodedGoalEnv):
    """compute_reward that is not vectorised: one float for a whole batch of goals."""

    @staticmethod
    def compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray, info: object) -> float:  # type: ignore[override]
        return -float(np.abs(np.asarray(achieved_goal) - np.asarray(desired_goal)).max() > 0)


@pytest.mark.parametrize("buffer_class", [HerDrQDictReplayBuffer, CompactHerReplayBuffer])
def test_a_compute_reward_of_the_wrong_shape_is_caught_on_the_first_relabelled_batch(buffer_class, monkeypatch):
    vec_env = coded_vec_env(2, [[3, 4]], frame_stack=2)
    for env in vec_env.envs:
        monkeypatch.setattr(env.unwrapped, "compute_reward", ScalarRewardEnv.compute_reward)
    buffer = buffer_class(60, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2, pad=0)
    drive(vec_env, [buffer], 12)
    with pytest.raises(ValueError, match=r"return one reward per row; for 2 goals it returned shape \(\)"):
        buffer.sample(16)


@pytest.mark.parametrize("buffer_class", [HerDrQDictReplayBuffer, CompactHerReplayBuffer])
def test_an_env_without_compute_reward_is_refused_at_construction(buffer_class):
    space_of = coded_vec_env(1, [[3]], frame_stack=2)
    no_method = DummyVecEnv([lambda: GenericGoalEnv(with_compute_reward=False)])
    with pytest.raises(ValueError, match="The env has no compute_reward method"):
        buffer_class(60, space_of.observation_space, space_of.action_space, no_method)
    buffer = buffer_class(60, space_of.observation_space, space_of.action_space, None)
    with pytest.raises(ValueError, match="The env has no compute_reward method"):
        buffer.set_env(no_method)
