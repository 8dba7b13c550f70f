"""DrQv2SAC on a CUDA device: the same update as on the CPU, and a run with the compact buffer.

Skipped (not passed) on machines without CUDA; ``benchmarks/gpu_suite.sh`` runs them on a GPU.
"""

from __future__ import annotations

import pytest
import torch as th
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer
from tests.algos.test_drqv2_sac_algo import fixed_batch, make, one_step
from tests.helpers import point_vec_env

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")]


def _to(batch: DictReplayBufferSamples, device: str) -> DictReplayBufferSamples:
    return DictReplayBufferSamples(
        observations={k: v.to(device) for k, v in batch.observations.items()},
        actions=batch.actions.to(device),
        next_observations={k: v.to(device) for k, v in batch.next_observations.items()},
        dones=batch.dones.to(device),
        rewards=batch.rewards.to(device),
        discounts=batch.discounts.to(device),
    )


def test_cuda_update_matches_cpu_update(monkeypatch: pytest.MonkeyPatch) -> None:
    # The policy's Gaussian noise comes from the CPU generator on both devices, so that both
    # updates see the same samples (CPU and CUDA generators give different streams).
    def cpu_standard_normal(shape: th.Size, dtype: th.dtype, device: th.device) -> th.Tensor:
        return th.randn(shape, dtype=dtype).to(device)

    monkeypatch.setattr(th.distributions.normal, "_standard_normal", cpu_standard_normal)
    monkeypatch.setattr(th.backends.cudnn, "allow_tf32", False)  # full fp32 convolutions, as on the CPU
    monkeypatch.setattr(th.backends.cuda.matmul, "allow_tf32", False)
    cpu = make(device="cpu", learning_rate=1e-3)
    gpu = make(device="cuda", learning_rate=1e-3)
    gpu.policy.load_state_dict(cpu.policy.state_dict())
    batch = fixed_batch(cpu)

    cpu_grads, cpu_loss = one_step(cpu, batch)
    gpu_grads, gpu_loss = one_step(gpu, _to(batch, "cuda"))

    assert next(gpu.policy.parameters()).is_cuda
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-3, abs=1e-5)
    for role in ("critic", "actor"):
        for name, grad in cpu_grads[role].items():
            if grad is not None:
                th.testing.assert_close(gpu_grads[role][name].cpu(), grad, rtol=1e-3, atol=1e-5)


def test_learns_on_cuda_with_the_compact_her_buffer() -> None:
    model = DrQv2SAC(
        "DrQv2SACPolicy",
        point_vec_env(2),
        device="cuda",
        buffer_size=500,
        batch_size=16,
        learning_starts=50,
        replay_buffer_class=CompactHerReplayBuffer,
        seed=0,
    )
    model.set_logger(configure(folder=None, format_strings=[]))
    before = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
    model.learn(200)
    after = model.policy.state_dict()
    encoder = [k for k in before if k.startswith("critic.features_extractor.") and after[k].is_floating_point()]
    assert encoder and all(after[k].is_cuda for k in encoder)
    assert any(not th.equal(before[k], after[k]) for k in encoder)
    assert th.isfinite(th.tensor(model.logger.name_to_value["train/critic_loss"]))


def test_compiled_update_with_cuda_graphs_trains_like_the_eager_one_and_never_syncs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.algos.test_drqv2_update import assert_same_training
    from tests.algos.test_drqv2_update import make as make_small

    monkeypatch.setattr(th.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(th.backends.cuda.matmul, "allow_tf32", False)
    eager = make_small(device="cuda")
    compiled = make_small(device="cuda", compile_update=True)
    compiled.policy.load_state_dict(eager.policy.state_dict())
    batches = [_to(fixed_batch(eager, seed=i), "cuda") for i in range(9)]
    logged = []
    for model in (eager, compiled):
        stream = iter(batches)
        model.replay_buffer.sample = lambda *args, stream=stream, **kwargs: next(stream)
        th.manual_seed(7)  # the noise comes from the CUDA generator: the same for both
        model.train(gradient_steps=6, batch_size=fixed_batch(eager).actions.shape[0])  # compiles, records the graphs
        logged.append(dict(model.logger.name_to_value))
    assert compiled._updater.cuda_graphs and compiled.compile_seconds is not None

    # Replayed steps read nothing back: any synchronising CUDA call raises in "error" mode.
    step = compiled._updater._step

    def never_syncing(batch: DictReplayBufferSamples):  # type: ignore[no-untyped-def]
        th.cuda.set_sync_debug_mode("error")
        try:
            return step(batch)
        finally:
            th.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(compiled._updater, "_step", never_syncing)
    for model in (eager, compiled):
        model.train(gradient_steps=3, batch_size=fixed_batch(eager).actions.shape[0])
    assert_same_training(eager, compiled, logged[:1], logged[1:], tol=1e-3)


def test_bf16_cnn_on_cuda_computes_in_bfloat16_and_trains_close_to_float32() -> None:
    policy_kwargs = {"features_extractor_kwargs": {"cnn_precision": "bf16"}}
    fp32 = make(device="cuda", learning_rate=1e-3)
    half = make(device="cuda", learning_rate=1e-3, policy_kwargs=policy_kwargs)
    half.policy.load_state_dict(fp32.policy.state_dict())
    dtypes: list[th.dtype] = []
    encoder = half.critic.features_extractor.image_encoder("pixels")
    conv = next(m for m in encoder.cnn.modules() if isinstance(m, th.nn.Conv2d))
    conv.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    batch = _to(fixed_batch(fp32), "cuda")
    _, loss_fp32 = one_step(fp32, batch)
    _, loss_bf16 = one_step(half, batch)
    assert dtypes and set(dtypes) == {th.bfloat16}
    assert loss_bf16 == pytest.approx(loss_fp32, rel=0.05) and loss_bf16 != loss_fp32
    assert all(p.dtype == th.float32 for p in half.policy.parameters())
