from __future__ import annotations

import copy

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.her import HerReplayBuffer

from pixelrl.buffers import DrQDictReplayBuffer, HerDrQDictReplayBuffer, RandomShiftAug
from tests.helpers import point_env, point_vec_env

N_ENVS = 2
PAD = 2


def _transitions(n_steps: int = 40, seed: int = 0):
    """Random-action rollouts as SB3 stores them (terminal obs in place of the reset obs)."""
    vec_env = point_vec_env(N_ENVS, seed=seed)
    rng = np.random.default_rng(seed)
    obs = vec_env.reset()
    out = []
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, size=(N_ENVS, 2)).astype(np.float32)
        new_obs, rewards, dones, infos = vec_env.step(actions)
        next_obs = copy.deepcopy(new_obs)
        for i, done in enumerate(dones):
            if done:
                for key in next_obs:
                    next_obs[key][i] = infos[i]["terminal_observation"][key]
        out.append((obs, next_obs, actions, rewards, dones, infos))
        obs = new_obs
    return vec_env, out


@pytest.fixture(scope="module")
def rollout():
    return _transitions()


def _fill(buffer, transitions):
    for obs, next_obs, actions, rewards, dones, infos in transitions:
        buffer.add(copy.deepcopy(obs), copy.deepcopy(next_obs), actions, rewards, dones, infos)
    return buffer


def _assert_same(a, b):
    for key in a.observations:
        assert th.equal(a.observations[key], b.observations[key]), key
        assert th.equal(a.next_observations[key], b.next_observations[key]), key
    for field in ("actions", "rewards", "dones"):
        assert th.equal(getattr(a, field), getattr(b, field)), field


def shift(images: th.Tensor, dy: int, dx: int) -> th.Tensor:
    return RandomShiftAug.shift(images, th.tensor([dy]), th.tensor([dx]))


def _recover_shifts(original: th.Tensor, augmented: th.Tensor, pad: int) -> list[tuple[int, int]]:
    """For each sample, the (dy, dx) whose replicate shift of `original` gives `augmented`."""
    found = []
    for i in range(original.shape[0]):
        matches = [
            (dy, dx)
            for dy in range(-pad, pad + 1)
            for dx in range(-pad, pad + 1)
            if th.equal(shift(original[i : i + 1], dy, dx), augmented[i : i + 1])
        ]
        assert matches, f"sample {i} is not a shift of its stored image"
        found.append(matches[0])
    return found


def test_dict_buffer_without_augmentation_returns_exactly_what_sb3_returns(rollout):
    vec_env, transitions = rollout
    space, action_space = vec_env.observation_space, vec_env.action_space
    ours = _fill(DrQDictReplayBuffer(200, space, action_space, n_envs=N_ENVS, pad=0), transitions)
    theirs = _fill(DictReplayBuffer(200, space, action_space, n_envs=N_ENVS), transitions)
    np.random.seed(7)
    a = ours.sample(16)
    np.random.seed(7)
    b = theirs.sample(16)
    _assert_same(a, b)


def test_her_buffer_without_augmentation_returns_exactly_what_sb3_returns(rollout):
    vec_env, transitions = rollout
    space, action_space = vec_env.observation_space, vec_env.action_space
    ours = _fill(HerDrQDictReplayBuffer(200, space, action_space, env=vec_env, n_envs=N_ENVS, pad=0), transitions)
    theirs = _fill(HerReplayBuffer(200, space, action_space, env=vec_env, n_envs=N_ENVS), transitions)
    np.random.seed(3)
    a = ours.sample(32)
    np.random.seed(3)
    b = theirs.sample(32)
    _assert_same(a, b)


@pytest.mark.parametrize("her", [False, True])
def test_augments_pixels_only_with_independent_shifts_for_obs_and_next_obs(rollout, her):
    vec_env, transitions = rollout
    space, action_space = vec_env.observation_space, vec_env.action_space
    if her:
        plain = _fill(HerDrQDictReplayBuffer(200, space, action_space, env=vec_env, n_envs=N_ENVS, pad=0), transitions)
        shifted = _fill(
            HerDrQDictReplayBuffer(200, space, action_space, env=vec_env, n_envs=N_ENVS, pad=PAD), transitions
        )
    else:
        plain = _fill(DrQDictReplayBuffer(200, space, action_space, n_envs=N_ENVS, pad=0), transitions)
        shifted = _fill(DrQDictReplayBuffer(200, space, action_space, n_envs=N_ENVS, pad=PAD), transitions)
    np.random.seed(11)
    reference = plain.sample(32)
    np.random.seed(11)
    th.manual_seed(0)
    augmented = shifted.sample(32)

    # Goals, proprioception, actions, rewards and dones are untouched.
    for key in ("achieved_goal", "desired_goal", "proprioception"):
        assert th.equal(reference.observations[key], augmented.observations[key])
        assert th.equal(reference.next_observations[key], augmented.next_observations[key])
    for field in ("actions", "rewards", "dones"):
        assert th.equal(getattr(reference, field), getattr(augmented, field))

    assert augmented.observations["pixels"].dtype == th.uint8
    obs_shifts = _recover_shifts(reference.observations["pixels"], augmented.observations["pixels"], PAD)
    next_shifts = _recover_shifts(reference.next_observations["pixels"], augmented.next_observations["pixels"], PAD)
    # Independent draws: with 25 possible shifts, 32 identical pairs would have probability 25**-32.
    assert obs_shifts != next_shifts
    assert len(set(obs_shifts)) > 1


def test_her_rewards_still_match_compute_reward_after_augmentation(rollout):
    vec_env, transitions = rollout
    buffer = _fill(
        HerDrQDictReplayBuffer(200, vec_env.observation_space, vec_env.action_space, env=vec_env, n_envs=N_ENVS),
        transitions,
    )
    batch = buffer.sample(64)
    assert th.equal(batch.observations["desired_goal"], batch.next_observations["desired_goal"])
    expected = point_env().compute_reward(
        batch.next_observations["achieved_goal"].numpy(), batch.observations["desired_goal"].numpy(), None
    )
    np.testing.assert_array_equal(batch.rewards.numpy().ravel(), expected)
    # Relabelled rows exist: some desired goals were replaced by achieved goals (reward 0).
    assert (batch.rewards == 0).any()


def test_custom_augmentation_and_image_keys(rollout):
    vec_env, transitions = rollout
    invert = Invert()
    buffer = _fill(
        DrQDictReplayBuffer(
            200,
            vec_env.observation_space,
            vec_env.action_space,
            n_envs=N_ENVS,
            augmentation=invert,
            image_keys=["pixels"],
        ),
        transitions,
    )
    np.random.seed(0)
    batch = buffer.sample(4)
    np.random.seed(0)
    raw = DictReplayBuffer._get_samples(buffer, np.random.randint(0, buffer.size(), size=4))
    assert th.equal(batch.observations["pixels"], 255 - raw.observations["pixels"])


class Invert(th.nn.Module):
    def forward(self, x: th.Tensor) -> th.Tensor:
        return 255 - x


def test_survives_sb3_save_and_load_replay_buffer(tmp_path):
    vec_env = point_vec_env(1)
    model = SAC(
        "DrQv2SACPolicy",
        vec_env,
        buffer_size=300,
        batch_size=8,
        learning_starts=30,
        seed=0,
        replay_buffer_class=HerDrQDictReplayBuffer,
        replay_buffer_kwargs={"pad": 3, "n_sampled_goal": 2},
    )
    model.learn(45)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    fresh = SAC(
        "DrQv2SACPolicy",
        vec_env,
        buffer_size=300,
        batch_size=8,
        learning_starts=30,
        seed=1,
        replay_buffer_class=HerDrQDictReplayBuffer,
        replay_buffer_kwargs={"pad": 3, "n_sampled_goal": 2},
    )
    fresh.load_replay_buffer(tmp_path / "buffer.pkl", truncate_last_traj=False)
    loaded, original = fresh.replay_buffer, model.replay_buffer
    assert isinstance(loaded, HerDrQDictReplayBuffer)
    assert loaded.pos == original.pos
    assert loaded.augmentation.pad == 3
    assert loaded.n_sampled_goal == 2
    np.testing.assert_array_equal(loaded.observations["pixels"], original.observations["pixels"])
    np.testing.assert_array_equal(loaded.ep_length, original.ep_length)
    assert loaded.sample(8).observations["pixels"].shape == (8, 6, 16, 16)
    fresh.learn(10, reset_num_timesteps=False)
    assert fresh.replay_buffer.pos == (original.pos + 10) % 300

    # SB3's default load truncates the unfinished episode (steps 40..44) into a sampleable one.
    with pytest.warns(UserWarning, match="last trajectory in the replay buffer will be truncated"):
        fresh.load_replay_buffer(tmp_path / "buffer.pkl")
    assert fresh.replay_buffer.ep_length[40:45, 0].tolist() == [5] * 5


def test_errors_for_bad_configuration(rollout):
    from gymnasium import spaces
    from stable_baselines3.common.vec_env import DummyVecEnv

    from pixelrl.wrappers import PixelObservationWrapper
    from tests.testing_env import GenericGoalEnv

    vec_env, _ = rollout
    space, action_space = vec_env.observation_space, vec_env.action_space
    vectors_only = spaces.Dict({"state": spaces.Box(-1, 1, (3,))})
    with pytest.raises(ValueError, match="No image key to augment"):
        DrQDictReplayBuffer(10, vectors_only, action_space)
    with pytest.raises(ValueError, match="pad must be >= 0"):
        DrQDictReplayBuffer(10, space, action_space, pad=-1)
    with pytest.raises(ValueError, match=r"image_keys \['rgb'\] are not in the observation space"):
        DrQDictReplayBuffer(10, space, action_space, image_keys=["rgb"])

    # compute_reward is only called once the env has been reset: its failure shows on the first relabelling.
    no_reward = DummyVecEnv([lambda: PixelObservationWrapper(GenericGoalEnv(with_compute_reward=False), image_size=8)])
    buffer = HerDrQDictReplayBuffer(50, no_reward.observation_space, no_reward.action_space, env=no_reward)
    obs = no_reward.reset()
    for _ in range(20):  # GenericGoalEnv truncates after 20 steps
        action = np.zeros((1, 2), np.float32)
        new_obs, reward, done, infos = no_reward.step(action)
        buffer.add(obs, new_obs, action, reward, done, infos)
        obs = new_obs
    with pytest.raises(ValueError, match=r"compute_reward failed .* HER recomputes rewards"):
        buffer.sample(4)
    desired_only = point_vec_env(1, goal_mode="desired")
    with pytest.raises(ValueError, match=r"\['achieved_goal'\] missing"):
        HerDrQDictReplayBuffer(10, desired_only.observation_space, desired_only.action_space, env=desired_only)
