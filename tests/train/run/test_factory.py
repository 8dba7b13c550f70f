"""The envs, policy, buffer and model a config describes."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.sac.policies import SACPolicy

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer, HerDrQDictReplayBuffer
from pixelrl.policies import DrQv2SACPolicy
from pixelrl.train.config import ConfigError
from pixelrl.train.run.factory import buffer_setup, build_model, check_env_id, make_vec_env, policy_setup


def test_make_vec_env_builds_the_configured_pixel_observation_seeded(tiny):
    config = tiny(frame_stack=3, goal_mode="strict")
    a, b, c = make_vec_env(config), make_vec_env(config), make_vec_env(config, seed=7)
    try:
        assert a.num_envs == 2 and a.observation_space["pixels"].shape == (9, 16, 16)
        first_a, first_b, first_c = a.reset(), b.reset(), c.reset()
        np.testing.assert_array_equal(first_a["desired_goal"], first_b["desired_goal"])
        assert not np.array_equal(first_a["desired_goal"], first_c["desired_goal"])
    finally:
        for env in (a, b, c):
            env.close()


def test_an_observation_without_goals_is_refused(tiny):
    with pytest.raises(ConfigError, match=r"is not goal-conditioned .*'desired_goal'"):
        make_vec_env(tiny(goal_mode="desired"))


def test_env_ids_are_checked_without_building_anything():
    with pytest.raises(ConfigError, match="Did you mean FetchPush-v4"):
        check_env_id("FetchPushh-v4")
    with pytest.raises(ConfigError, match=r"not 'CartPole-v1'\. It is not goal-conditioned"):
        check_env_id("CartPole-v1")


@pytest.mark.parametrize(
    ("changes", "policy", "share", "excluded"),
    [
        ({}, DrQv2SACPolicy, None, []),
        ({"goal_mode": "strict"}, DrQv2SACPolicy, None, ["achieved_goal"]),
        ({"critic_encoder": False, "share_encoder": True}, SACPolicy, True, []),
        ({"critic_encoder": False}, SACPolicy, False, []),
    ],
)
def test_policy_follows_the_wiring(tiny, changes, policy, share, excluded):
    name, kwargs = policy_setup(tiny(net_arch=(32, 16), **changes))
    assert name is policy and kwargs["net_arch"] == [32, 16]
    assert kwargs.get("share_features_extractor") == share
    assert kwargs["features_extractor_kwargs"]["exclude_keys"] == excluded


def test_state_runs_use_sb3s_policy_and_her_buffer(tiny):
    config = tiny(full_state=True, image_size=84, frame_stack=4)
    assert policy_setup(config) == ("MultiInputPolicy", {"net_arch": [256, 256]})
    assert buffer_setup(config)[0] is HerReplayBuffer


def test_buffer_follows_the_settings(tiny):
    buffer, kwargs = buffer_setup(tiny(her_n_sampled_goal=8, her_strategy="final"))
    assert buffer is CompactHerReplayBuffer
    assert kwargs == {"n_sampled_goal": 8, "goal_selection_strategy": "final", "pad": 0}
    buffer, kwargs = buffer_setup(tiny(buffer="sb3", drq=True, drq_pad=2))
    assert buffer is HerDrQDictReplayBuffer and kwargs["pad"] == 2


def test_build_model_passes_every_hyperparameter(tiny):
    config = tiny(learning_rate=3e-4, gamma=0.9, tau=0.02, batch_size=16, ent_coef="auto_0.2", gradient_steps=2,
                  learning_starts=77, buffer_size=3000, target_encoder="online")  # fmt: skip
    vec_env = make_vec_env(config)
    try:
        model = build_model(config, vec_env)
        assert isinstance(model, DrQv2SAC) and model.target_encoder == "online"
        assert (model.learning_rate, model.gamma, model.tau, model.batch_size) == (3e-4, 0.9, 0.02, 16)
        assert (model.gradient_steps, model.learning_starts, model.buffer_size) == (2, 77, 3000)
        assert model.log_ent_coef is not None and np.isclose(float(model.log_ent_coef.detach().exp()), 0.2)
        sb3 = build_model(config.replace(algo="sac", target_encoder="separate"), vec_env)
        assert type(sb3) is SAC and isinstance(sb3.policy, DrQv2SACPolicy)
    finally:
        vec_env.close()
