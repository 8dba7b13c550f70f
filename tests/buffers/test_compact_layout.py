"""The compact buffer's typed layout: what SB3 allocates, what it predicts, and what reset and loading rebuild."""

from __future__ import annotations

import pickle
from dataclasses import fields

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from pixelrl.buffers import CompactHerReplayBuffer
from pixelrl.buffers.compact_layout import CompactLayout, TransitionArrays
from tests.buffers.test_compact import CHAPTER_ACTIONS, CHAPTER_SPACE, coded_vec_env, drive

SPACE = spaces.Dict({**CHAPTER_SPACE.spaces, "pixels": spaces.Box(0, 255, (12, 8, 8), np.uint8)})


def shapes_and_dtypes(arrays: TransitionArrays) -> dict[str, object]:
    out: dict[str, object] = {}
    for field in fields(arrays):
        value = getattr(arrays, field.name)
        items = value.items() if isinstance(value, dict) else [("", value)]
        for key, array in items:
            out[f"{field.name}/{key}"] = (array.shape, array.dtype)
    return out


@pytest.mark.parametrize("copy_info_dict", [False, True])
def test_sb3_allocates_exactly_the_transition_layout_and_reset_rebuilds_it(copy_info_dict):
    buffer = CompactHerReplayBuffer(301, SPACE, CHAPTER_ACTIONS, None, n_envs=3, copy_info_dict=copy_info_dict)
    layout = CompactLayout.build(301, SPACE, CHAPTER_ACTIONS, 3, None, "pixels", copy_info_dict, 25)
    expected = shapes_and_dtypes(layout.transitions.allocate())
    assert shapes_and_dtypes(buffer._transitions()) == expected
    assert "observations/pixels" not in expected  # the frames live in the ring only
    assert buffer.infos.shape == ((100, 3) if copy_info_dict else (0, 3))
    # The public spaces are the full ones, pixels included.
    assert buffer.observation_space is SPACE
    assert buffer.obs_shape["pixels"] == (12, 8, 8)
    nbytes = buffer.nbytes
    buffer.reset()
    assert shapes_and_dtypes(buffer._transitions()) == expected
    assert buffer.nbytes == nbytes


def test_estimated_frame_bytes_are_the_part_that_lives_on_frames_device():
    kwargs = {"n_envs": 2, "frame_stack": 4, "min_episode_length": 5}
    frames = CompactHerReplayBuffer.estimate_nbytes(301, SPACE, CHAPTER_ACTIONS, frames_only=True, **kwargs)
    on_device = CompactHerReplayBuffer(301, SPACE, CHAPTER_ACTIONS, None, frames_device="cpu", **kwargs)
    assert isinstance(on_device.frames, th.Tensor)
    assert frames == on_device.frames.numel() == (150 + 30 + 1) * 2 * 3 * 8 * 8
    total = CompactHerReplayBuffer.estimate_nbytes(301, SPACE, CHAPTER_ACTIONS, **kwargs)
    assert total - frames == on_device.nbytes - on_device.frames.numel() > 0


def test_a_saved_buffer_reloads_at_full_capacity_with_the_same_layout():
    vec_env = coded_vec_env(2, [[3, 4]], frame_stack=2)
    buffer = CompactHerReplayBuffer(60, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2)
    drive(vec_env, [buffer], 7)
    state = buffer.__getstate__()
    assert state["actions"].shape[0] == 7  # only filled rows are saved
    assert state["_ring"]["frames"].shape[0] == 9  # episodes of 3 and 4 steps: 4 + 5 frames
    clone = pickle.loads(pickle.dumps(buffer))
    assert shapes_and_dtypes(clone._transitions()) == shapes_and_dtypes(buffer._transitions())
    assert clone.nbytes == buffer.nbytes
    np.testing.assert_array_equal(clone.frames, buffer.frames)
