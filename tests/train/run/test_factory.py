"""The envs, policy, buffer and model a config describes."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.sac.policies import SACPolicy

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer, EnvComputeReward, HerDrQDictReplayBuffer
from pixelrl.policies import DrQv2SACPolicy
from pixelrl.train.config import ConfigError
from pixelrl.train.run.factory import (
    algorithm_kwargs,
    buffer_setup,
    build_model,
    check_env_id,
    load_model,
    make_vec_env,
    policy_setup,
    reward_function,
)


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
        make_vec_env(tiny().replace(goal_mode="desired"))  # the wrapper's mode; the command does not offer it


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


def test_precision_bf16_reaches_the_cnn_and_is_saved_with_the_model(tiny, tmp_path):
    assert policy_setup(tiny())[1]["features_extractor_kwargs"]["cnn_precision"] == "fp32"
    config = tiny(precision="bf16")
    vec_env = make_vec_env(config)
    try:
        model = build_model(config, vec_env)
        assert model.policy.critic.features_extractor.image_encoder("pixels").cnn_dtype is th.bfloat16
        model.save(tmp_path / "model.zip")
        loaded = load_model(tmp_path / "model.zip", vec_env, config)
        assert loaded.policy.actor.features_extractor.image_encoder("pixels").cnn_dtype is th.bfloat16
    finally:
        vec_env.close()


def test_state_runs_use_sb3s_policy_and_her_buffer(tiny):
    config = tiny(full_state=True, image_size=84, frame_stack=4)
    assert policy_setup(config) == ("MultiInputPolicy", {"net_arch": [256, 256]})
    assert buffer_setup(config)[0] is HerReplayBuffer


def test_buffer_follows_the_settings(tiny):
    buffer, kwargs = buffer_setup(tiny(her_n_sampled_goal=8, her_strategy="final"))
    assert buffer is CompactHerReplayBuffer
    reward = kwargs.pop("compute_reward")
    assert kwargs == {"n_sampled_goal": 8, "goal_selection_strategy": "final", "pad": 0}
    assert isinstance(reward, EnvComputeReward) and reward.env_id == "pixelrl/PointReach-v0"
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


def test_her_rewards_are_computed_in_process_as_the_training_envs_compute_them(tiny):
    config = tiny(env_kwargs={"distance_threshold": 0.3})
    vec_env = make_vec_env(config)
    try:
        rng = np.random.default_rng(0)
        achieved = rng.uniform(-0.5, 0.5, (64, 2))
        desired = achieved + rng.normal(0, 0.3, (64, 2))
        expected = vec_env.env_method("compute_reward", achieved, desired, [{}] * 64, indices=[0])[0]
        reward = reward_function(config)
        assert reward.env_kwargs == {"distance_threshold": 0.3, "image_size": 16}
        np.testing.assert_array_equal(reward(achieved, desired, [{}] * 64), expected)
        assert 5 < (expected == 0).sum() < 59  # both outcomes occur
    finally:
        vec_env.close()


def test_speed_options_reach_drqv2sac_and_resume_may_change_compile_update(tiny, tmp_path):
    config = tiny(compile_update=True, overlap=True, vec_env="subproc")
    kwargs = algorithm_kwargs(config)
    assert (kwargs["compile_update"], kwargs["overlap_collection"]) == (True, True)
    assert "compile_update" not in algorithm_kwargs(tiny(algo="sac"))
    vec_env = make_vec_env(tiny())
    try:
        model = build_model(tiny(), vec_env)
        assert (model.compile_update, model.overlap_collection) == (False, False)
        model.save(tmp_path / "model.zip")
        loaded = load_model(tmp_path / "model.zip", vec_env, tiny(compile_update=True))
        assert loaded.compile_update is True and loaded._updater.compile
    finally:
        vec_env.close()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"overlap": True}, r"--overlap steps the envs .* --vec-env dummy .* Add --vec-env subproc, or drop --overlap"),
        ({"overlap": True, "vec_env": "subproc", "algo": "sac"}, r"--overlap is an option of DrQv2SAC.*Drop --overlap"),
        ({"compile_update": True, "full_state": True, "image_size": 84, "frame_stack": 4},
         r"--compile-update is an option of DrQv2SAC's update loop, but these settings train SB3's SAC"),
    ],
)  # fmt: skip
def test_speed_options_that_cannot_run_are_refused_before_any_env_is_built(tiny, monkeypatch, changes, match):
    monkeypatch.setattr("pixelrl.train.run.factory.SubprocVecEnv", None)  # building one would fail differently
    monkeypatch.setattr("pixelrl.train.run.factory.DummyVecEnv", None)
    with pytest.raises(ConfigError, match=match):
        make_vec_env(tiny(**changes))
