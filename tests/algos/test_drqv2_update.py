"""DrQv2SAC's compiled update: the eager update's losses and parameters, no graph breaks, a clear error where it fails.

The fast tests compile with the ``aot_eager`` backend (dynamo's graphs and AOTAutograd's forward
and backward, no code generation); the ``slow`` one with inductor, as ``compile_update=True``
does: about 65 s cold on a loaded 2-core CPU (about 5 s with inductor's on-disk cache warm).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch as th
import torch._dynamo
from stable_baselines3.common.logger import configure

from pixelrl.algos import DrQv2SAC, drqv2_update
from pixelrl.algos.drqv2_update import CompileUpdateError, actor_phase, critic_phase, sample_actions
from pixelrl.policies import sac_maths
from tests.algos.test_drqv2_sac_algo import BATCH, fixed_batch
from tests.helpers import point_vec_env

STEPS = 6


def make(**kwargs):
    # SGD, not Adam: Adam divides by the gradient's running size, so on parameters whose gradient
    # is float noise (the last conv bias ahead of SpatialSoftmax, which is shift-invariant) it turns
    # rounding differences into whole learning-rate steps.
    defaults = dict(
        buffer_size=200, batch_size=BATCH, learning_starts=20, seed=0, gamma=0.95, ent_coef="auto",
        learning_rate=1e-2,
        policy_kwargs={"net_arch": [32, 32], "optimizer_class": th.optim.SGD,
                       "features_extractor_kwargs": {"num_filters": 8}},
    )  # fmt: skip
    defaults.update(kwargs)
    model = DrQv2SAC("DrQv2SACPolicy", point_vec_env(1), **defaults)
    model.set_logger(configure(folder=None, format_strings=[]))
    return model


def train_on_batches(model, steps=STEPS):
    """``steps`` gradient steps (two train calls) on fixed batches with n-step discounts; each call's logged values."""
    batches = iter([fixed_batch(model, seed=i) for i in range(steps)])
    model.replay_buffer.sample = lambda *args, **kwargs: next(batches)
    th.manual_seed(7)
    logged = []
    for gradient_steps in (steps // 2, steps - steps // 2):
        model.train(gradient_steps=gradient_steps, batch_size=BATCH)
        logged.append(dict(model.logger.name_to_value))
    return logged


def assert_same_training(eager, compiled, logged_eager, logged_compiled, tol):
    for a, b in zip(logged_eager, logged_compiled, strict=True):
        for key in ("train/critic_loss", "train/actor_loss", "train/ent_coef", "train/ent_coef_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=tol, abs=tol), key
    for (name, a), b in zip(eager.policy.state_dict().items(), compiled.policy.state_dict().values(), strict=True):
        th.testing.assert_close(b, a, rtol=tol, atol=tol, msg=name)
    if eager.log_ent_coef is not None:
        th.testing.assert_close(compiled.log_ent_coef, eager.log_ent_coef, rtol=tol, atol=tol)


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setattr(drqv2_update, "COMPILE_BACKEND", "aot_eager")


def compiled_and_eager(**kwargs):
    eager, compiled = make(**kwargs), make(compile_update=True, **kwargs)
    compiled.policy.load_state_dict(eager.policy.state_dict())
    return eager, compiled


@pytest.mark.parametrize(("ent_coef", "target_encoder"), [("auto", "separate"), (0.1, "online")])
def test_compiled_update_trains_like_the_eager_one(aot_eager, ent_coef, target_encoder):
    eager, compiled = compiled_and_eager(ent_coef=ent_coef, target_encoder=target_encoder)
    logged_eager, logged_compiled = train_on_batches(eager), train_on_batches(compiled)
    assert_same_training(eager, compiled, logged_eager, logged_compiled, tol=1e-6)
    # The parameters moved: equal because both trained, not because neither did.
    assert not th.equal(
        compiled.policy.state_dict()["critic.qf0.0.weight"], make().policy.state_dict()["critic.qf0.0.weight"]
    )
    # Compile time: measured once, logged once, in the first train call only.
    assert compiled.compile_seconds is not None and compiled.compile_seconds > 0
    assert logged_compiled[0]["train/compile_seconds"] == compiled.compile_seconds
    assert eager.compile_seconds is None and "train/compile_seconds" not in logged_eager[0]


def test_compiled_update_with_a_bf16_cnn_trains_like_the_eager_bf16_update(aot_eager):
    # Autocast is traced into the compiled graphs: the same bfloat16 convolutions, the same casts.
    policy_kwargs = {"net_arch": [32, 32], "optimizer_class": th.optim.SGD,
                     "features_extractor_kwargs": {"num_filters": 8, "cnn_precision": "bf16"}}  # fmt: skip
    eager, compiled = compiled_and_eager(policy_kwargs=policy_kwargs)
    fp32 = make()
    fp32.policy.load_state_dict(eager.policy.state_dict())  # the same weights, a float32 CNN
    logged_eager, logged_compiled = train_on_batches(eager), train_on_batches(compiled)
    assert_same_training(eager, compiled, logged_eager, logged_compiled, tol=1e-5)
    # ... and not the float32 update: the setting reached the trained CNN (close, not equal).
    logged_fp32 = train_on_batches(fp32)[0]["train/critic_loss"]
    assert logged_fp32 != logged_eager[0]["train/critic_loss"]
    assert logged_fp32 == pytest.approx(logged_eager[0]["train/critic_loss"], rel=0.05)


@pytest.mark.slow
def test_inductor_compiled_update_trains_like_the_eager_one():
    eager, compiled = compiled_and_eager()
    logged_eager, logged_compiled = train_on_batches(eager), train_on_batches(compiled)
    # Inductor fuses and reorders float reductions: equal up to rounding, not bit for bit.
    assert_same_training(eager, compiled, logged_eager, logged_compiled, tol=1e-4)
    assert compiled.compile_seconds is not None


@pytest.mark.parametrize("cnn_precision", ["fp32", "bf16"])
def test_both_phases_compile_into_one_graph_each(cnn_precision):
    # A graph break would run Python between two graphs: where a tensor is read back, a host sync.
    model = make(policy_kwargs={"net_arch": [32, 32], "features_extractor_kwargs": {"cnn_precision": cnn_precision}})
    batch = fixed_batch(model)
    noise = th.randn(BATCH, 2)
    keys = model._updater.image_keys
    critic = torch._dynamo.explain(critic_phase)(model, batch, noise, keys)
    phase = critic_phase(model, batch, noise, keys)
    actor = torch._dynamo.explain(actor_phase)(model, phase.actor_features, noise, phase.ent_coef)
    assert (critic.graph_count, critic.graph_break_count) == (1, 0), critic.break_reasons
    assert (actor.graph_count, actor.graph_break_count) == (1, 0), actor.break_reasons


def test_sample_actions_with_the_noise_drawn_is_sb3s_sample():
    model = make()
    features = th.randn(BATCH, model.actor.features_dim)
    th.manual_seed(3)
    expected_actions, expected_log_prob = sac_maths.action_log_prob(model.actor, features)
    th.manual_seed(3)
    actions, log_prob = sample_actions(model.actor, features, th.randn(BATCH, 2))
    assert th.equal(actions, expected_actions) and th.equal(log_prob, expected_log_prob)


def failing_backend(graph, example_inputs):
    raise RuntimeError("no C++ compiler found\nsecond line of the report")


def test_a_platform_that_cannot_compile_gets_the_cause_and_the_fix(monkeypatch):
    monkeypatch.setattr(drqv2_update, "COMPILE_BACKEND", failing_backend)
    model = make(compile_update=True)
    before = {name: p.clone() for name, p in model.policy.state_dict().items()}
    batch = fixed_batch(model)
    model.replay_buffer.sample = lambda *args, **kwargs: batch
    with pytest.raises(
        CompileUpdateError,
        match=r"could not compile DrQv2SAC's update on this platform \(.*no C\+\+ "
        r"compiler found\)\. Drop compile_update \(pixelrl-train: leave out --compile-update\)",
    ) as info:
        model.train(gradient_steps=1, batch_size=BATCH)  # fmt: skip
    assert "second line" not in str(info.value)
    assert model.compile_seconds is None
    # It failed before any optimizer step.
    assert all(th.equal(before[name], p) for name, p in model.policy.state_dict().items())


def test_compile_update_is_saved_and_can_be_changed_at_load(tmp_path, aot_eager):
    model = make(compile_update=True)
    model.save(tmp_path / "model")
    assert DrQv2SAC.load(tmp_path / "model").compile_update is True
    loaded = DrQv2SAC.load(tmp_path / "model", compile_update=False)
    assert loaded.compile_update is False and not loaded._updater.compile
    assert make().compile_update is False  # off unless asked for


def test_losses_are_read_once_per_train_call_not_per_gradient_step(monkeypatch):
    model = make()
    batch = fixed_batch(model)
    model.replay_buffer.sample = lambda *args, **kwargs: batch
    reads = []
    original = th.Tensor.item

    def item(self):
        caller = sys._getframe(1).f_code.co_filename  # Adam reads its CPU step counter too: not ours
        reads.extend([caller] if "pixelrl" in caller else [])
        return original(self)

    monkeypatch.setattr(th.Tensor, "item", item)
    model.train(gradient_steps=4, batch_size=BATCH)
    # One read per logged value (critic, actor, ent_coef, ent_coef_loss) per train call, not per step.
    assert len(reads) == 4
    assert np.isfinite(model.logger.name_to_value["train/critic_loss"])
