"""FrameRing and its storage backends, without a buffer around them."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from pixelrl.buffers.frame_ring import FrameRing, FrameRingLayout
from pixelrl.buffers.frame_storage import NumpyFrameStorage, TorchFrameStorage, frame_storage


def one_pixel_step(value: int, start: bool, previous: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1-env step of 1-frame stacks of one pixel: obs shows `previous` (or `value` at a start), next_obs `value`."""
    obs = np.full((1, 1, 1, 1), value if start else previous, np.uint8)
    return obs, np.full((1, 1, 1, 1), value, np.uint8), np.array([start])


def ring(rows: int, frame_rows: int, device: th.device | None = None) -> FrameRing:
    return FrameRing(FrameRingLayout(rows, frame_rows, n_envs=1, frame_stack=1, frame_shape=(1, 1, 1)), device)


@pytest.mark.parametrize("device", [None, th.device("cpu")])
def test_layout_nbytes_is_what_the_ring_allocates(device):
    layout = FrameRingLayout(rows=7, frame_rows=9, n_envs=3, frame_stack=4, frame_shape=(3, 5, 6))
    frames = FrameRing(layout, device)
    assert frames.nbytes == layout.nbytes
    assert frames.storage.nbytes == layout.frames_nbytes == 9 * 3 * 3 * 5 * 6
    assert isinstance(frames.storage, NumpyFrameStorage if device is None else TorchFrameStorage)


def test_numpy_and_torch_storage_write_and_gather_the_same_frames():
    shape = (5, 3, 2, 4, 4)
    rng = np.random.default_rng(0)
    host, tensor = frame_storage(shape, None), frame_storage(shape, th.device("cpu"))
    for slot in range(5):
        for env in range(3):
            frame = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
            host.write(slot, env, frame)
            tensor.write(slot, env, frame)
    slots = rng.integers(0, 5, (2, 6, 3))
    envs = rng.integers(0, 3, (1, 6, 1))
    a, b = host.gather(slots, envs), tensor.gather(slots, envs)
    assert a.shape == b.shape == (2, 6, 3, 2, 4, 4)
    assert th.equal(a, b)
    assert th.equal(a[1, 2, 0], th.from_numpy(host.data[slots[1, 2, 0], envs[0, 2, 0]]))
    np.testing.assert_array_equal(host.host_rows(3), tensor.host_rows(3))
    assert isinstance(tensor.host_rows(3), np.ndarray)


def test_overwritten_first_frames_are_reported_and_stale_marks_are_not():
    frames = ring(rows=2, frame_rows=5)
    # Episode A: transitions 0-1, frames in slots 0 (first), 1, 2.
    assert frames.write_step(0, *one_pixel_step(10, start=True)) == []
    assert frames.write_step(1, *one_pixel_step(11, start=False, previous=10)) == []
    # Episode B starts at transition 0 again (the transition ring wrapped: A is gone there), frames 3, 4.
    assert frames.write_step(0, *one_pixel_step(20, start=True)) == []
    # Its next frame overwrites slot 0, A's first frame: that mark is stale (transition 0 is B's now).
    assert frames.write_step(1, *one_pixel_step(21, start=False, previous=20)) == []
    # Episode C at transition 0 again (frames 1, 2); then the head reaches slot 3, B's first frame: stale too.
    assert frames.write_step(0, *one_pixel_step(30, start=True)) == []
    assert frames.newest[0, 0] == 1
    assert frames.write_step(1, *one_pixel_step(31, start=False, previous=30)) == []
    assert frames.episode_starts[:, 0].tolist() == [-1, 0, -1, -1, -1]  # only C's first frame is marked
    fresh = ring(rows=3, frame_rows=4)
    fresh.write_step(0, *one_pixel_step(1, start=True))  # slots 0 (first frame, transition 0), 1
    fresh.write_step(1, *one_pixel_step(2, start=False, previous=1))  # slot 2
    fresh.write_step(2, *one_pixel_step(3, start=False, previous=2))  # slot 3
    # The episode still holds transition 0, and its first frame is overwritten now.
    assert fresh.write_step(0, *one_pixel_step(4, start=True)) == [(0, 0)]


def test_stacks_repeat_the_first_frame_before_the_episode_and_keep_the_terminal_frame():
    layout = FrameRingLayout(rows=4, frame_rows=6, n_envs=1, frame_stack=3, frame_shape=(1, 1, 1))
    frames = FrameRing(layout)
    stack = np.full((1, 3, 1, 1), 5, np.uint8)  # the reset observation: frame 5 three times
    for pos, new in enumerate((6, 7)):
        next_stack = np.concatenate((stack[:, 1:], np.full((1, 1, 1, 1), new, np.uint8)), axis=1)
        starts = np.array([pos == 0])
        assert frames.check_step(stack, next_stack, starts) == []
        frames.write_step(pos, stack, next_stack, starts)
        stack = next_stack
    pixels = frames.stacks(np.array([0, 1]), np.array([0, 0]), np.array([0, 1]))
    assert pixels[0, :, :, 0, 0].tolist() == [[5, 5, 5], [5, 5, 6]]  # obs
    assert pixels[1, :, :, 0, 0].tolist() == [[5, 5, 6], [5, 6, 7]]  # next_obs: 7 is the terminal frame


def test_state_dict_holds_only_filled_rows_as_host_arrays_and_restores_the_ring():
    layout = FrameRingLayout(rows=50, frame_rows=60, n_envs=2, frame_stack=1, frame_shape=(1, 2, 2))
    frames = FrameRing(layout, th.device("cpu"))
    pixels = np.zeros((2, 1, 2, 2), np.uint8)
    for pos in range(3):
        frames.write_step(pos, pixels + pos, pixels + pos, np.array([pos == 0, pos == 0]))
    state = frames.state_dict(rows=3)
    assert isinstance(state["frames"], np.ndarray)
    assert state["frames"].shape == (4, 2, 1, 2, 2)  # 3 steps + the first frame
    assert state["newest"].shape == (3, 2)
    restored = FrameRing.from_state_dict(state)
    assert restored.device == th.device("cpu")
    assert restored.frames.shape == (60, 2, 1, 2, 2)
    assert th.equal(restored.frames, frames.frames)
    for name in ("episode_starts", "newest", "head", "written", "last_stacks"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(frames, name), err_msg=name)
