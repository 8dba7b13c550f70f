from __future__ import annotations

import numpy as np
import pytest

from pixelrl.buffers import PixelReplayBuffer


def _add(buffer: PixelReplayBuffer, value: int) -> None:
    buffer.add(
        np.full((12, 8, 8), value, np.uint8),
        np.full((12, 8, 8), 255 - value, np.uint8),
        achieved=np.full(3, value),
        goal=np.full(3, -value),
        action=np.full(4, value / 100),
        reward=-1.0,
        done=value % 2 == 0,
    )


def test_checkpoint_uint8_storage_float32_sampling():
    buffer = PixelReplayBuffer((12, 8, 8), goal_dim=3, act_dim=4, capacity=100, seed=0)
    for i in range(50):
        _add(buffer, i)
    batch = buffer.sample(16)
    assert buffer.pixels.dtype == np.uint8
    assert len(buffer) == 50
    assert batch["pixels"].dtype == np.float32
    assert batch["pixels"].shape == (16, 12, 8, 8)
    assert batch["pixels"].min() >= 0.0
    assert batch["pixels"].max() <= 1.0
    # Each sampled row is a stored transition: pixels, goals and actions belong together.
    index = np.round(batch["pixels"][:, 0, 0, 0] * 255).astype(int)
    assert (index < 50).all()
    np.testing.assert_allclose(batch["next_pixels"][:, 0, 0, 0], (255 - index) / 255, atol=1e-6)
    np.testing.assert_array_equal(batch["achieved_goal"][:, 0], index)
    np.testing.assert_array_equal(batch["desired_goal"][:, 0], -index)
    np.testing.assert_array_equal(batch["dones"][:, 0], (index % 2 == 0).astype(np.float32))


def test_ring_buffer_overwrites_the_oldest():
    buffer = PixelReplayBuffer((3, 4, 4), goal_dim=3, act_dim=4, capacity=10, seed=0)
    for i in range(25):
        buffer.add(
            np.full((3, 4, 4), i, np.uint8),
            np.zeros((3, 4, 4), np.uint8),
            np.zeros(3),
            np.zeros(3),
            np.zeros(4),
            0.0,
            False,
        )
    assert len(buffer) == 10
    assert buffer.pos == 5
    assert sorted(buffer.pixels[:, 0, 0, 0].tolist()) == list(range(15, 25))


def test_capacity_bytes():
    buffer = PixelReplayBuffer((12, 84, 84), goal_dim=3, act_dim=4, capacity=10)
    assert buffer.nbytes == 10 * (2 * 12 * 84 * 84 + 4 * (3 + 3 + 4 + 1 + 1))


def test_errors():
    with pytest.raises(ValueError, match="looks channel-last"):
        PixelReplayBuffer((84, 84, 12), goal_dim=3, act_dim=4, capacity=10)
    buffer = PixelReplayBuffer((3, 4, 4), goal_dim=3, act_dim=4, capacity=10)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2)
    with pytest.raises(TypeError, match="must be uint8"):
        buffer.add(
            np.zeros((3, 4, 4), np.float32),
            np.zeros((3, 4, 4), np.uint8),
            np.zeros(3),
            np.zeros(3),
            np.zeros(4),
            0.0,
            False,
        )
