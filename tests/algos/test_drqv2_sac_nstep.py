"""DrQv2SAC's n_steps: handed to the HER pixel buffers, refused where it would be ignored, used by the update."""

from __future__ import annotations

import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.her import HerReplayBuffer

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer, DrQDictReplayBuffer, HerDrQDictReplayBuffer
from tests.algos.test_drqv2_sac_algo import BATCH, SEED, make, use_batch
from tests.helpers import point_vec_env

HER_BUFFERS = [CompactHerReplayBuffer, HerDrQDictReplayBuffer]


def no_ignored_warning(build):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build()
    assert not [w for w in caught if "is ignored" in str(w.message)], [str(w.message) for w in caught]
    return model


@pytest.mark.parametrize("cls", HER_BUFFERS)
def test_n_steps_and_gamma_reach_the_her_buffers_without_sb3s_ignored_warning(cls):
    model = no_ignored_warning(lambda: make(n_steps=3, gamma=0.9, replay_buffer_class=cls))
    assert isinstance(model.replay_buffer, cls)
    assert (model.n_steps, model.replay_buffer.n_steps, model.replay_buffer.gamma) == (3, 3, 0.9)
    # The same, given in the kwargs as well (as pixelrl-train does), or in the kwargs only (SB3's way).
    agreeing = make(n_steps=3, gamma=0.9, replay_buffer_class=cls, replay_buffer_kwargs={"n_steps": 3, "gamma": 0.9})
    assert (agreeing.replay_buffer.n_steps, agreeing.replay_buffer.gamma) == (3, 0.9)
    kwargs_only = no_ignored_warning(
        lambda: make(gamma=0.9, replay_buffer_class=cls, replay_buffer_kwargs={"n_steps": 2})
    )
    assert (kwargs_only.n_steps, kwargs_only.replay_buffer.n_steps, kwargs_only.replay_buffer.gamma) == (2, 2, 0.9)
    one_step = make(replay_buffer_class=cls)
    assert (one_step.n_steps, one_step.replay_buffer.n_steps) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_steps": 2}, r"n_steps=3 but replay_buffer_kwargs\['n_steps'\]=2"),
        ({"gamma": 0.99}, r"gamma=0.95 but replay_buffer_kwargs\['gamma'\]=0.99.*replace the algorithm's gamma"),
    ],
)
def test_buffer_kwargs_that_disagree_with_the_algorithm_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(n_steps=3, replay_buffer_class=CompactHerReplayBuffer, replay_buffer_kwargs=kwargs)


@pytest.mark.parametrize(
    ("buffer_class", "match"),
    [
        (HerReplayBuffer, r"n_steps=3, but HerReplayBuffer takes no n_steps.*CompactHerReplayBuffer and HerDrQDict"),
        (DictReplayBuffer, r"DictReplayBuffer takes no n_steps.*CompactHerReplayBuffer"),
        (DrQDictReplayBuffer, r"DrQDictReplayBuffer takes no n_steps.*or use n_steps=1"),
        (None, r"n_steps=3 with Dict observations.*DictReplayBuffer\) has no n-step returns.*CompactHerReplayBuffer"),
    ],
)
def test_n_steps_is_refused_where_it_would_be_ignored(buffer_class, match):
    with pytest.raises(ValueError, match=match):
        make(n_steps=3, replay_buffer_class=buffer_class)


class ImageEnv(gym.Env[np.ndarray, np.ndarray]):
    observation_space = spaces.Box(0, 255, (3, 36, 36), np.uint8)
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_box_observations_keep_sb3s_n_step_buffer():
    model = DrQv2SAC(
        "DrQv2SACPolicy", ImageEnv(), buffer_size=50, n_steps=3, gamma=0.9,
        policy_kwargs={"features_extractor_class": NatureCNN, "features_extractor_kwargs": {}},
    )  # fmt: skip
    assert type(model.replay_buffer) is NStepReplayBuffer
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma) == (3, 0.9)


def test_one_update_bootstraps_with_the_batchs_n_step_discounts():
    model = make(n_steps=3, replay_buffer_class=CompactHerReplayBuffer, learning_starts=1000)
    model.learn(40)  # four 10-step episodes, no update yet
    np.random.seed(0)
    batch = model.replay_buffer.sample(BATCH)
    discounts = batch.discounts[:, 0].tolist()
    powers = [float(np.float32(0.95**k)) for k in (1, 2, 3)]
    assert set(discounts) <= set(powers)
    assert powers[2] in discounts

    def hand_loss(discount):
        policy = copy.deepcopy(model.policy)
        th.manual_seed(SEED)
        space = policy.observation_space
        obs, next_obs = preprocess_obs(batch.observations, space), preprocess_obs(batch.next_observations, space)
        with th.no_grad():
            features = policy.critic.features_extractor(obs)
            policy.actor.action_log_prob_from_features(features)  # the policy's action on obs is drawn first
            next_actions, next_log_prob = policy.actor.action_log_prob_from_features(
                policy.critic.features_extractor(next_obs)
            )
            target_features = policy.critic_target.features_extractor(next_obs)
            next_q = th.cat([q(th.cat([target_features, next_actions], 1)) for q in policy.critic_target.q_networks], 1)
            soft = next_q.min(1, keepdim=True).values - 0.1 * next_log_prob.reshape(-1, 1)
            target = batch.rewards + (1 - batch.dones) * discount * soft
            current = [q(th.cat([features, batch.actions], 1)) for q in policy.critic.q_networks]
        return 0.5 * sum(F.mse_loss(q, target).item() for q in current)

    expected, with_gamma = hand_loss(batch.discounts), hand_loss(0.95)
    use_batch(model, batch)
    th.manual_seed(SEED)
    model.train(gradient_steps=1, batch_size=BATCH)
    logged = model.logger.name_to_value["train/critic_loss"]
    assert logged == pytest.approx(expected, abs=1e-6)
    assert logged != pytest.approx(with_gamma, abs=1e-4)


@pytest.mark.parametrize("cls", HER_BUFFERS)
def test_save_load_keeps_n_steps(tmp_path, cls):
    model = make(n_steps=3, gamma=0.9, replay_buffer_class=cls)
    model.learn(30)
    model.save(tmp_path / "model")
    loaded = no_ignored_warning(lambda: DrQv2SAC.load(tmp_path / "model", env=point_vec_env(1)))
    assert (loaded.n_steps, loaded.gamma) == (3, 0.9)
    assert isinstance(loaded.replay_buffer, cls)
    assert (loaded.replay_buffer.n_steps, loaded.replay_buffer.gamma) == (3, 0.9)
