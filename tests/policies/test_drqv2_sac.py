from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

import pixelrl
from pixelrl.buffers import HerDrQDictReplayBuffer
from pixelrl.encoders import ManipulationExtractor
from pixelrl.policies import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy
from tests.helpers import point_vec_env


def make_model(**kwargs):
    defaults = dict(buffer_size=400, batch_size=8, learning_starts=20, seed=0, gamma=0.95)
    defaults.update(kwargs)
    return SAC("DrQv2SACPolicy", point_vec_env(1), **defaults)


@pytest.fixture
def trained():
    # Function-scoped: some tests train it further, so sharing it would make them order-dependent.
    model = make_model(replay_buffer_class=HerDrQDictReplayBuffer)
    model.learn(40)
    return model


def encoder_params(policy):
    return list(policy.actor.features_extractor.parameters())


def test_alias_resolves_after_import():
    assert SAC.policy_aliases["DrQv2SACPolicy"] is DrQv2SACPolicy is pixelrl.DrQv2SACPolicy
    model = make_model()
    assert isinstance(model.policy, DrQv2SACPolicy)
    assert isinstance(model.actor, CriticEncoderActor)
    assert isinstance(model.critic, CriticEncoderCritic)
    assert isinstance(model.actor.features_extractor, ManipulationExtractor)


def test_encoder_is_in_the_critic_optimizer_only():
    policy = make_model().policy
    encoder = {id(p) for p in encoder_params(policy)}
    actor_opt = {id(p) for g in policy.actor.optimizer.param_groups for p in g["params"]}
    critic_opt = {id(p) for g in policy.critic.optimizer.param_groups for p in g["params"]}
    assert len(encoder) > 0
    assert encoder & actor_opt == set()
    assert encoder <= critic_opt
    # Everything else of the actor is still trained by the actor.
    actor_head = {id(p) for p in policy.actor.parameters()} - encoder
    assert actor_head == actor_opt


def test_one_shared_encoder_and_a_separate_target_encoder():
    policy = make_model().policy
    assert policy.actor.features_extractor is policy.critic.features_extractor
    target = policy.critic_target.features_extractor
    assert target is not policy.critic.features_extractor
    for online, copy in zip(policy.critic.parameters(), policy.critic_target.parameters(), strict=True):
        assert online is not copy
        assert th.equal(online, copy)


def test_critic_backward_reaches_the_encoder_and_actor_backward_does_not(trained):
    policy = trained.policy
    batch = trained.replay_buffer.sample(8)
    policy.critic.optimizer.zero_grad()
    q1, q2 = policy.critic(batch.observations, batch.actions)
    (q1.sum() + q2.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder_params(policy) if p.requires_grad)

    policy.critic.optimizer.zero_grad(set_to_none=True)
    actions, log_prob = policy.actor.action_log_prob(batch.observations)
    (actions.sum() + log_prob.sum()).backward()
    assert all(p.grad is None for p in encoder_params(policy))
    assert all(p.grad is not None for p in policy.actor.mu.parameters())


def test_sb3_train_step_updates_encoder_and_polyak_averages_the_target(trained):
    model = trained
    encoder = encoder_params(model.policy)
    target_encoder = list(model.policy.critic_target.features_extractor.parameters())
    before_online = [p.detach().clone() for p in encoder]
    before_target = [p.detach().clone() for p in target_encoder]
    model.train(gradient_steps=1, batch_size=8)
    assert any(not th.equal(a, p) for a, p in zip(before_online, encoder, strict=True))
    # target <- (1 - tau) target + tau online, applied once after the step
    expected = [t.clone() for t in before_target]
    polyak_update(encoder, expected, model.tau)
    for got, want in zip(target_encoder, expected, strict=True):
        th.testing.assert_close(got, want, rtol=0, atol=1e-7)


def test_every_constructor_argument_survives_save_and_load(tmp_path, trained):
    data = trained.policy._get_constructor_parameters()
    params = set(inspect.signature(DrQv2SACPolicy.__init__).parameters) - {"self"}
    assert params <= set(data), params - set(data)

    kwargs = {"exclude_keys": ["achieved_goal"], "num_filters": 8}
    model = make_model(policy_kwargs={"net_arch": [32, 16], "n_critics": 3, "features_extractor_kwargs": kwargs})
    model.save(tmp_path / "model")
    loaded = SAC.load(tmp_path / "model")
    assert isinstance(loaded.policy, DrQv2SACPolicy)
    assert loaded.policy.critic.n_critics == 3
    assert loaded.policy.net_arch == [32, 16]
    assert loaded.policy.features_extractor_kwargs == kwargs
    assert loaded.policy.actor.features_extractor is loaded.policy.critic.features_extractor


def test_save_load_predictions_match(tmp_path, trained):
    env = point_vec_env(1, seed=5)
    obs = env.reset()
    for _ in range(3):
        obs, *_ = env.step(np.zeros((1, 2), np.float32))
    trained.save(tmp_path / "model")
    loaded = SAC.load(tmp_path / "model", env=env)  # SB3 rebuilds the HER buffer, which needs an env
    expected, _ = trained.predict(obs, deterministic=True)
    got, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    obs_t, _ = trained.policy.obs_to_tensor(obs)
    with th.no_grad():
        for a, b in zip(
            trained.critic(obs_t, th.as_tensor(expected)), loaded.critic(obs_t, th.as_tensor(expected)), strict=True
        ):
            th.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_separate_encoders_are_refused_with_an_explanation():
    with pytest.raises(ValueError, match=r"always shares one encoder.*MultiInputPolicy"):
        make_model(policy_kwargs={"share_features_extractor": False})


@pytest.mark.slow
def test_learns_saves_reloads_with_buffer_and_keeps_learning(tmp_path):
    vec_env = point_vec_env(2)
    model = SAC(
        "DrQv2SACPolicy",
        vec_env,
        buffer_size=2000,
        batch_size=8,
        learning_starts=40,
        seed=0,
        replay_buffer_class=HerDrQDictReplayBuffer,
        replay_buffer_kwargs={"pad": 2},
        ent_coef=0.05,
    )
    initial = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(300)
    assert model.num_timesteps == 300
    assert all(not th.equal(a, b) for a, b in zip(initial[:3], list(model.policy.parameters())[:3], strict=True))
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")

    loaded = SAC.load(tmp_path / "model", env=vec_env)
    loaded.load_replay_buffer(tmp_path / "buffer", truncate_last_traj=False)
    obs = vec_env.reset()
    np.testing.assert_allclose(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0], atol=1e-5
    )
    assert loaded.replay_buffer.pos == model.replay_buffer.pos
    before = [p.detach().clone() for p in loaded.policy.critic.parameters()]
    loaded.learn(40, reset_num_timesteps=False)
    assert loaded.num_timesteps == 340
    assert any(not th.equal(a, b) for a, b in zip(before, loaded.policy.critic.parameters(), strict=True))


def test_from_features_methods_equal_sb3s_full_forward_passes(trained):
    policy = trained.policy
    batch = trained.replay_buffer.sample(8)
    obs = policy.actor.extract_features(batch.observations, policy.actor.features_extractor)
    mean, log_std, kwargs = policy.actor.dist_params_from_features(obs)
    expected_mean, expected_log_std, expected_kwargs = policy.actor.get_action_dist_params(batch.observations)
    assert th.equal(mean, expected_mean) and th.equal(log_std, expected_log_std) and kwargs == expected_kwargs
    th.manual_seed(3)
    actions, log_prob = policy.actor.action_log_prob_from_features(obs)
    th.manual_seed(3)
    expected_actions, expected_log_prob = policy.actor.action_log_prob(batch.observations)
    assert th.equal(actions, expected_actions)
    assert log_prob.shape == (8, 1) and th.equal(log_prob[:, 0], expected_log_prob)
    q = policy.critic.q_values_from_features(obs, batch.actions)
    assert q.shape == (8, 2)
    assert th.equal(q, th.cat(policy.critic(batch.observations, batch.actions), dim=1))
