from __future__ import annotations

import copy
import itertools
from collections import Counter

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import HerDrQDictReplayBuffer
from pixelrl.policies import DrQv2SACPolicy
from tests.helpers import point_vec_env

BATCH = 8
SEED = 123


def make(algo=DrQv2SAC, **kwargs):
    defaults = dict(buffer_size=200, batch_size=BATCH, learning_starts=20, seed=0, gamma=0.95, ent_coef=0.1)
    defaults.update(kwargs)
    model = algo("DrQv2SACPolicy", point_vec_env(1), **defaults)
    model.set_logger(configure(folder=None, format_strings=[]))
    return model


def fixed_batch(model, seed=0):
    """A batch with random pixels, some terminal rows and per-row discounts (as n-step buffers give)."""
    rng = np.random.default_rng(seed)
    space = model.observation_space

    def obs():
        return {
            key: th.as_tensor(
                rng.integers(0, 256, (BATCH, *sub.shape), dtype=np.uint8)
                if sub.dtype == np.uint8
                else rng.uniform(-1, 1, (BATCH, *sub.shape)).astype(np.float32)
            )
            for key, sub in space.spaces.items()
        }

    return DictReplayBufferSamples(
        observations=obs(),
        actions=th.as_tensor(rng.uniform(-1, 1, (BATCH, 2)).astype(np.float32)),
        next_observations=obs(),
        dones=th.as_tensor((rng.random((BATCH, 1)) < 0.25).astype(np.float32)),
        rewards=th.as_tensor(-rng.integers(0, 2, (BATCH, 1)).astype(np.float32)),
        discounts=th.as_tensor(rng.choice([0.95, 0.95**2, 0.95**3], (BATCH, 1)).astype(np.float32)),
    )


def use_batch(model, batch):
    model.replay_buffer.sample = lambda *args, **kwargs: batch


def capture_grads(model):
    """Snapshot every gradient of the critic and actor parameters just before each optimizer step."""
    grads = {}

    def hook(name, module):
        def pre_step(optimizer, args, kwargs):
            grads[name] = {n: None if p.grad is None else p.grad.clone() for n, p in module.named_parameters()}

        return pre_step

    model.critic.optimizer.register_step_pre_hook(hook("critic", model.critic))
    model.actor.optimizer.register_step_pre_hook(hook("actor", model.actor))
    return grads


def encoder_names(model):
    return [n for n, _ in model.critic.named_parameters() if n.startswith("features_extractor.")]


def actor_head_names(model):
    return [n for n, _ in model.actor.named_parameters() if not n.startswith("features_extractor.")]


def one_step(model, batch):
    use_batch(model, batch)
    grads = capture_grads(model)
    th.manual_seed(SEED)
    model.train(gradient_steps=1, batch_size=BATCH)
    return grads, model.logger.name_to_value["train/critic_loss"]


@pytest.mark.parametrize("ent_coef", [0.1, "auto"])
def test_first_step_matches_sb3_critic_and_documented_actor(ent_coef):
    # A large learning rate makes the critic step move the encoder enough to tell the two actor
    # semantics apart.
    drq = make(ent_coef=ent_coef, learning_rate=0.05)
    sb3 = make(SAC, ent_coef=ent_coef, learning_rate=0.05)
    sb3.policy.load_state_dict(drq.policy.state_dict())
    initial = copy.deepcopy(drq.policy)
    batch = fixed_batch(drq)

    drq_grads, drq_loss = one_step(drq, batch)
    sb3_grads, sb3_loss = one_step(sb3, batch)

    # Critic loss and the gradients of encoder + Q heads: SB3's, exactly.
    assert drq_loss == pytest.approx(sb3_loss, abs=1e-6)
    for name, grad in sb3_grads["critic"].items():
        th.testing.assert_close(drq_grads["critic"][name], grad, rtol=0, atol=1e-6)

    # The actor loss sends nothing into the encoder: its gradient is the critic's, untouched.
    # (SB3's actor backward adds to it.)
    for name in encoder_names(drq):
        assert th.equal(drq_grads["actor"][name], drq_grads["critic"][name])
    assert any(not th.allclose(sb3_grads["actor"][n], sb3_grads["critic"][n], atol=1e-7) for n in encoder_names(sb3))

    # Actor gradient by hand: actions from pre-step features, Q heads after the critic step,
    # evaluated on the same pre-step (detached) features.
    alpha = 1.0 if ent_coef == "auto" else ent_coef
    th.manual_seed(SEED)
    actions_pi, log_prob = initial.actor.action_log_prob(batch.observations)
    obs = preprocess_obs(batch.observations, initial.observation_space)
    features = initial.critic.features_extractor(obs).detach()
    q_pi = th.cat([q(th.cat([features, actions_pi], 1)) for q in drq.critic.q_networks], 1)
    loss = (alpha * log_prob.reshape(-1, 1) - q_pi.min(1, keepdim=True).values).mean()
    names = actor_head_names(drq)
    params = dict(initial.actor.named_parameters())
    expected = th.autograd.grad(loss, [params[n] for n in names])
    for name, want in zip(names, expected, strict=True):
        th.testing.assert_close(drq_grads["actor"][name], want, rtol=1e-5, atol=1e-7)
    # ... which is not SB3's (SB3 re-encodes obs with the updated encoder for Q).
    assert any(not th.allclose(drq_grads["actor"][n], sb3_grads["actor"][n], atol=1e-6) for n in names)


@pytest.mark.parametrize(
    ("algo", "target_encoder", "online_passes", "target_passes", "backward_passes"),
    [
        (DrQv2SAC, "separate", 2, 1, 1),
        (DrQv2SAC, "online", 2, 0, 1),
        (SAC, None, 4, 1, 2),  # the baseline the issue describes
    ],
)
def test_encoder_passes_per_update(algo, target_encoder, online_passes, target_passes, backward_passes):
    kwargs = {} if target_encoder is None else {"target_encoder": target_encoder}
    model = make(algo, ent_coef="auto", **kwargs)
    use_batch(model, fixed_batch(model))
    counts = Counter()
    model.critic.features_extractor.register_forward_hook(lambda *_: counts.update(["online"]))
    model.critic_target.features_extractor.register_forward_hook(lambda *_: counts.update(["target"]))
    first_weight = next(model.critic.features_extractor.parameters())
    first_weight.register_hook(lambda grad: counts.update(["backward"]))

    model.train(gradient_steps=3, batch_size=BATCH)

    assert counts["online"] == 3 * online_passes
    assert counts["target"] == 3 * target_passes
    assert counts["backward"] == 3 * backward_passes
    assert model.logger.name_to_value["train/n_updates"] == 3


def test_logs_sb3_metric_names():
    names = ("train/critic_loss", "train/actor_loss", "train/ent_coef", "train/n_updates")
    for ent_coef, has_ent_loss in ((0.1, False), ("auto", True)):
        drq, sb3 = make(ent_coef=ent_coef), make(SAC, ent_coef=ent_coef)
        for model in (drq, sb3):
            use_batch(model, fixed_batch(model))
            model.train(gradient_steps=2, batch_size=BATCH)
        logged = drq.logger.name_to_value
        assert set(logged) == set(sb3.logger.name_to_value)
        assert set(names) <= set(logged)
        assert ("train/ent_coef_loss" in logged) is has_ent_loss
        assert all(np.isfinite(logged[name]) for name in names)
    assert logged["train/ent_coef"] < 1.0  # auto-tuning moved it from its initial 1.0


def test_separate_target_polyak_averages_heads_with_tau_and_encoder_with_encoder_tau():
    model = make(tau=0.1, encoder_tau=0.5)
    use_batch(model, fixed_batch(model))
    old_target = copy.deepcopy(model.critic_target.state_dict())
    model.train(gradient_steps=1, batch_size=BATCH)
    online = model.critic.state_dict()
    target = model.critic_target.state_dict()
    assert any(not th.equal(online[name], old_target[name]) for name in online)
    for name, value in target.items():
        tau = 0.5 if name.startswith("features_extractor.") else 0.1
        th.testing.assert_close(value, (1 - tau) * old_target[name] + tau * online[name], rtol=0, atol=1e-6)


def perturbed_loss(target_encoder, perturb):
    model = make(target_encoder=target_encoder)
    if perturb:
        with th.no_grad():
            for p in model.critic_target.features_extractor.parameters():
                p.add_(0.5 * th.randn_like(p))
    _, loss = one_step(model, fixed_batch(model))
    return model, loss


def test_online_target_reads_the_online_encoder_and_keeps_the_target_copy_in_sync():
    model, loss = perturbed_loss("online", perturb=True)
    _, clean_loss = perturbed_loss("online", perturb=False)
    assert loss == pytest.approx(clean_loss, abs=1e-7)
    online = dict(model.critic.features_extractor.named_parameters())
    for name, p in model.critic_target.features_extractor.named_parameters():
        assert th.equal(p, online[name])
    # With a separate target encoder the same perturbation changes the TD target.
    _, separate = perturbed_loss("separate", perturb=True)
    _, separate_clean = perturbed_loss("separate", perturb=False)
    assert separate != pytest.approx(separate_clean, abs=1e-4)


def test_target_update_interval_counts_gradient_steps_across_train_calls():
    model = make(target_update_interval=2)
    use_batch(model, fixed_batch(model))

    def target_heads():
        return [p.detach().clone() for q in model.critic_target.q_networks for p in q.parameters()]

    snapshots = [target_heads()]
    for _ in range(3):
        model.train(gradient_steps=1, batch_size=BATCH)
        snapshots.append(target_heads())
    changed = [any(not th.equal(a, b) for a, b in zip(s0, s1, strict=True)) for s0, s1 in itertools.pairwise(snapshots)]
    assert changed == [True, False, True]  # global steps 0, 1, 2


@pytest.mark.parametrize(("target_encoder", "encoder_tau"), [("online", None), ("separate", 0.02)])
def test_save_load_round_trip(tmp_path, target_encoder, encoder_tau):
    model = make(
        target_encoder=target_encoder,
        encoder_tau=encoder_tau,
        replay_buffer_class=HerDrQDictReplayBuffer,
        replay_buffer_kwargs={"pad": 1},
    )
    model.learn(40)
    model.save(tmp_path / "model")
    env = point_vec_env(1, seed=3)
    loaded = DrQv2SAC.load(tmp_path / "model", env=env)

    assert type(loaded) is DrQv2SAC
    assert isinstance(loaded.policy, DrQv2SACPolicy)
    assert (loaded.target_encoder, loaded.encoder_tau) == (target_encoder, encoder_tau)
    for (name, a), b in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name
    obs = env.reset()
    expected, _ = model.predict(obs, deterministic=True)
    got, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(got, expected)
    loaded.learning_starts = loaded.num_timesteps + 12  # the HER buffer comes back empty: one episode first
    loaded.learn(30, reset_num_timesteps=False)  # the reloaded parameter lists drive its updates
    assert not th.equal(
        loaded.policy.state_dict()["critic.qf0.0.weight"], model.policy.state_dict()["critic.qf0.0.weight"]
    )


@pytest.mark.slow
def test_learns_with_her_drq_buffer_on_the_point_env():
    model = DrQv2SAC(
        "DrQv2SACPolicy",
        point_vec_env(2),
        buffer_size=1000,
        batch_size=16,
        learning_starts=50,
        seed=0,
        gamma=0.95,
        ent_coef=0.05,
        replay_buffer_class=HerDrQDictReplayBuffer,
        replay_buffer_kwargs={"pad": 2, "n_sampled_goal": 4},
        policy_kwargs={"net_arch": [32, 32], "features_extractor_kwargs": {"num_filters": 8}},
    )
    initial = copy.deepcopy(model.policy)
    model.learn(300)
    assert model._n_updates == (300 - 50) // 2
    logged = model.logger.name_to_value
    assert all(np.isfinite(logged[k]) for k in ("train/critic_loss", "train/actor_loss"))
    state, initial_state = model.policy.state_dict(), initial.state_dict()
    assert all(th.isfinite(v).all() for v in state.values())
    for prefix in ("critic.features_extractor.", "critic.qf0.", "actor.mu.", "critic_target.features_extractor."):
        assert any(not th.equal(state[k], initial_state[k]) for k in state if k.startswith(prefix)), prefix
    # The target encoder trails the online one (Polyak), it is not a copy.
    assert any(
        not th.equal(state[k], state[k.replace("critic_target.", "critic.")])
        for k in state
        if k.startswith("critic_target.features_extractor.")
    )
    # The critic has learned the scale of the sparse -1 returns (it starts near 0).
    batch = model.replay_buffer.sample(256)
    with th.no_grad():
        before = th.cat(initial.critic(batch.observations, batch.actions), 1).mean()
        after = th.cat(model.critic(batch.observations, batch.actions), 1).mean()
    assert abs(before) < 0.2
    assert after < -0.4


def test_alias_resolves():
    model = make()
    assert isinstance(model.policy, DrQv2SACPolicy)
    assert model.target_encoder == "separate"
    assert model.encoder_tau is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"policy": "MultiInputPolicy"}, TypeError, r"needs a DrQv2SACPolicy.*'MultiInputPolicy'.*SB3's SAC"),
        ({"use_sde": True}, ValueError, r"does not support gSDE.*use_sde=False"),
        ({"target_encoder": "target"}, ValueError, r"Unknown target_encoder 'target'.*'separate', 'online'"),
        ({"target_encoder": "online", "encoder_tau": 0.01}, ValueError, r"uses no target encoder"),
        ({"encoder_tau": 0.0}, ValueError, r"encoder_tau must be in \(0, 1\]"),
    ],
)
def test_errors(kwargs, error, match):
    policy = kwargs.pop("policy", "DrQv2SACPolicy")
    with pytest.raises(error, match=match):
        DrQv2SAC(policy, point_vec_env(1), buffer_size=100, **kwargs)
