from __future__ import annotations

import pytest
import torch as th
from stable_baselines3 import SAC

from pixelrl.buffers import HerDrQDictReplayBuffer
from pixelrl.diagnostics import (
    WIRINGS,
    bridge_check,
    build_sac_policy,
    encoder_gradient_norms,
    gradient_flow_check,
    optimizer_membership,
)
from tests.helpers import point_env, point_vec_env


@pytest.fixture(scope="module")
def batch():
    model = SAC(
        "DrQv2SACPolicy",
        point_vec_env(1),
        buffer_size=200,
        batch_size=8,
        learning_starts=30,
        seed=0,
        replay_buffer_class=HerDrQDictReplayBuffer,
    )
    model.learn(30)
    return model.replay_buffer.sample(8)


@pytest.fixture(scope="module")
def policies():
    env = point_env()
    th.manual_seed(0)
    return {w: build_sac_policy(w, env.observation_space, env.action_space) for w in WIRINGS}


def test_membership_of_the_three_wirings(policies):
    shared, separate, drqv2 = (optimizer_membership(policies[w]) for w in ("sb3-shared", "sb3-separate", "drqv2"))
    n = shared.encoder_tensors
    assert n > 0
    assert (shared.actor_encoder_in_actor_opt, shared.actor_encoder_in_critic_opt) == (n, 0)
    assert shared.shared
    assert shared.critic_gradient_gate
    assert shared.trained_by == "actor"
    assert (separate.actor_encoder_in_actor_opt, separate.critic_encoder_in_critic_opt) == (n, n)
    assert (separate.actor_encoder_in_critic_opt, separate.critic_encoder_in_actor_opt) == (0, 0)
    assert not separate.shared
    assert separate.trained_by == "actor+critic (separate)"
    assert (drqv2.actor_encoder_in_actor_opt, drqv2.actor_encoder_in_critic_opt) == (0, n)
    assert drqv2.shared
    assert not drqv2.critic_gradient_gate
    assert drqv2.trained_by == "critic"
    assert all(m.target_separate for m in (shared, separate, drqv2))


def test_gradient_flow_of_the_three_wirings(policies, batch):
    flows = {w: gradient_flow_check(policies[w], batch) for w in WIRINGS}
    # SB3 shared: the TD loss never reaches the encoder; the actor step moves it.
    assert flows["sb3-shared"].critic_backward_grad_norm == 0.0
    assert not flows["sb3-shared"].critic_step_changes_encoder
    assert flows["sb3-shared"].actor_step_changes_encoder
    # DrQ-v2: the other way round.
    assert flows["drqv2"].critic_backward_grad_norm > 0
    assert flows["drqv2"].actor_backward_grad_norm == 0.0
    assert flows["drqv2"].critic_step_changes_encoder
    assert not flows["drqv2"].actor_step_changes_encoder
    # Separate: each loss trains its own encoder.
    separate = flows["sb3-separate"]
    assert separate.critic_backward_grad_norm > 0
    assert separate.actor_backward_grad_norm > 0
    assert separate.critic_step_changes_encoder
    assert separate.actor_step_changes_encoder


def test_gradient_flow_check_leaves_the_policy_unchanged(policies, batch):
    policy = policies["drqv2"]
    before = [p.detach().clone() for p in policy.parameters()]
    gradient_flow_check(policy, batch)
    assert all(th.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))


def test_encoder_gradient_norms_are_measured_alike_for_every_wiring(policies, batch):
    for wiring, policy in policies.items():
        before = [p.detach().clone() for p in policy.parameters()]
        norms = encoder_gradient_norms(policy, batch)
        assert norms["critic"] > 0 and norms["actor"] > 0, wiring
        assert norms["ratio"] == pytest.approx(norms["critic"] / norms["actor"])
        assert all(th.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
        assert all(p.grad is None for p in policy.parameters())


def test_bridge_standalone_extractor_matches_the_policy(policies):
    obs, _ = point_env().reset(seed=0)
    for policy in policies.values():
        assert bridge_check(policy, obs) < 1e-6


def test_bridge_detects_an_encoder_that_differs_inside_the_policy(policies):
    policy = policies["drqv2"]
    obs, _ = point_env().reset(seed=0)
    # A hook changes what the policy's encoder returns without changing its weights.
    handle = policy.actor.features_extractor.register_forward_hook(lambda module, args, out: out + 1e-3)
    try:
        assert bridge_check(policy, obs) == pytest.approx(1e-3, rel=1e-3)
    finally:
        handle.remove()
