"""CompactHerReplayBuffer with its frame ring on a CUDA device (skipped where there is none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from pixelrl.buffers import CompactHerReplayBuffer
from tests.buffers.test_compact import assert_same_batch, coded_vec_env, drive

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")]


def test_frames_on_cuda_give_the_host_buffers_batches_on_cuda():
    vec_env = coded_vec_env(3, [[2, 5], [3, 6], [4, 1]], [True, False], frame_stack=4)
    space, actions = vec_env.observation_space, vec_env.action_space
    on_gpu = CompactHerReplayBuffer(30, space, actions, vec_env, device="cuda", n_envs=3, frames_device="cuda")
    in_host = CompactHerReplayBuffer(30, space, actions, vec_env, device="cuda", n_envs=3)
    drive(vec_env, [on_gpu, in_host], 40)
    assert on_gpu.frames.is_cuda
    np.testing.assert_array_equal(on_gpu.frames.cpu().numpy(), in_host.frames)
    np.random.seed(0)
    a = on_gpu.sample(32)
    np.random.seed(0)
    b = in_host.sample(32)
    assert a.observations["pixels"].is_cuda
    assert_same_batch(a, b)


def test_a_frame_ring_larger_than_the_free_gpu_memory_is_refused_before_allocating(monkeypatch):
    vec_env = coded_vec_env(1, [[3]], frame_stack=2)
    monkeypatch.setattr(th.cuda, "mem_get_info", lambda device=None: (1000, 80 * 2**30))
    allocated = th.cuda.memory_allocated()
    with pytest.raises(ValueError, match=r"GB are free there.*frames_device=None"):
        CompactHerReplayBuffer(1000, vec_env.observation_space, vec_env.action_space, vec_env, frames_device="cuda")
    assert th.cuda.memory_allocated() == allocated
