"""Carrying each sampled row's `(slot, env)` through SB3's HER `sample`, to gather pixel stacks once after it.

SB3's `HerReplayBuffer.sample` builds the real and the relabelled part of a batch separately
and concatenates them key by key. The compact buffer lets it do exactly that (so sampling stays
SB3's, draw for draw), but under the pixel key it puts each row's `(slot, env)` instead of the
stacks; after SB3's concatenation the ids are swapped for stacks gathered in one go where the
frames live. Concatenating the stacks themselves would copy a chapter-sized batch (2 x 21.7 MB
at batch 256) once more, which tripled the sampling time on CPU.

The n-step returns of both HER pixel buffers (`pixelrl.buffers.nstep`) read the ids too;
`HerDrQDictReplayBuffer`, whose pixels SB3 samples itself, carries them under `ROW_IDS_KEY`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

__all__ = ["ROW_IDS_KEY", "with_row_ids", "with_rows_gathered", "without_row_ids"]

Array = np.ndarray[Any, Any]
ROW_IDS_KEY = "_pixelrl_row_ids"
"""Where a buffer that has no key to spare (`HerDrQDictReplayBuffer`) carries row ids; removed after sampling."""


def with_row_ids(
    samples: DictReplayBufferSamples, key: str, batch_indices: Array, env_indices: Array
) -> DictReplayBufferSamples:
    """SB3's samples of the vector keys, with each row's `(slot, env)` as `(n, 2)` int64 under `key`."""
    ids = th.from_numpy(np.stack((batch_indices, env_indices), axis=1).astype(np.int64, copy=False))
    return samples._replace(
        observations={**samples.observations, key: ids},
        next_observations={**samples.next_observations, key: ids},
    )


def with_rows_gathered(
    batch: DictReplayBufferSamples,
    key: str,
    gather: Callable[[Array, Array], th.Tensor],
    device: th.device,
    space: spaces.Dict,
) -> DictReplayBufferSamples:
    """Replace the row ids under `key` with the stacks `gather(slots, envs)` returns.

    Args:
        batch: SB3's concatenated batch, row ids under `key`.
        key: The pixel key.
        gather: Maps `(B,)` slots and `(B,)` envs to `(2, B, C, H, W)` obs and next_obs stacks.
        device: Where the batch's tensors live.
        space: The observation space (its key order is the batch's).

    Returns:
        The batch with the stacks on `device`.
    """
    rows = batch.observations[key].numpy()
    stacks = gather(rows[:, 0], rows[:, 1]).to(device)

    def filled(observations: dict[str, th.Tensor], pixels: th.Tensor) -> dict[str, th.Tensor]:
        return {name: pixels if name == key else observations[name] for name in space.spaces}

    return batch._replace(
        observations=filled(batch.observations, stacks[0]),
        next_observations=filled(batch.next_observations, stacks[1]),
    )


def without_row_ids(batch: DictReplayBufferSamples, key: str) -> tuple[DictReplayBufferSamples, Array]:
    """Remove the row ids `with_row_ids` put under `key`.

    Args:
        batch: SB3's concatenated batch, row ids under `key`.
        key: Where they are.

    Returns:
        `(batch, ids)`: the batch without `key`, and the `(B, 2)` int64 `(slot, env)` of its rows.
    """
    ids = batch.observations[key].numpy()

    def dropped(observations: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
        return {name: value for name, value in observations.items() if name != key}

    return batch._replace(
        observations=dropped(batch.observations), next_observations=dropped(batch.next_observations)
    ), ids
