"""n-step returns for HER batches: one transformation of SB3's sampled batch, shared by both HER pixel buffers.

SB3's `NStepReplayBuffer` refuses Dict observations, so SB3 cannot combine n-step returns with
HER. Here SB3's `HerReplayBuffer.sample` draws the batch as usual (the same rows and relabelled
goals, draw for draw) and `n_step_samples` then rewrites each row's reward, `next_obs`, done and
discount from the stored episode, following `NStepReplayBuffer`'s conventions: with `t` the
row's step in its episode of length `L` and `k = min(n_steps, L - t)`,

- `reward = sum_{j<k} gamma^j r_{t+j}`, each `r` normalised as SB3 normalises one reward; for a
  relabelled row `r_{t+j} = compute_reward(next achieved_goal at t+j, the row's goal, info at t+j)`,
  one batched call for all rows and steps;
- `next_obs` is the stored `next_obs` at step `t+k-1`, with the row's own `desired_goal`;
- `done` is the termination at step `t+k-1`, timeouts excluded: HER episodes end at their first
  done, so the sum stops at the episode's end and never crosses into the next one;
- `discounts = gamma^k`, which SB3's `SAC.train` (and `DrQv2SAC`) use in place of `gamma`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from pixelrl.buffers.her_rewards import relabelled_rewards

__all__ = ["check_n_step_options", "n_step_samples"]

Array = np.ndarray[Any, Any]


def check_n_step_options(n_steps: int, gamma: float) -> None:
    """Check a HER buffer's `n_steps` and `gamma` (SB3's `NStepReplayBuffer` spelling).

    Args:
        n_steps: Steps summed per return; 1 is SB3's one-step HER sampling.
        gamma: Discount factor of the summed rewards and of `discounts`.

    Raises:
        ValueError: If `n_steps` is not an integer >= 1 or `gamma` is not in `[0, 1]`.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1 (1: one-step returns), got {n_steps!r}.")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(
            f"gamma must be in [0, 1], got {gamma!r}. Pass the algorithm's discount factor (DrQv2SAC does so itself)."
        )


def n_step_samples(
    buffer: HerReplayBuffer,
    batch: DictReplayBufferSamples,
    slots: Array,
    envs: Array,
    relabelled_goals: Array,
    *,
    n_steps: int,
    gamma: float,
    env: VecNormalize | None = None,
) -> tuple[DictReplayBufferSamples, Array]:
    """Turn SB3's one-step HER batch into n-step returns (see the module docstring).

    Args:
        buffer: The HER buffer that sampled `batch` (its stored arrays and env are read).
        batch: `HerReplayBuffer.sample`'s batch: real rows first, then relabelled ones.
        slots: `(B,)` int transition slot of each row.
        envs: `(B,)` int env index of each row.
        relabelled_goals: `(B_relabelled, goal_dim)` the relabelled rows' goals as drawn (before
            normalisation); the other `B - B_relabelled` rows are real.
        n_steps: Steps summed per return, >= 2.
        gamma: Discount factor.
        env: The `VecNormalize` SB3's sample normalised with, or `None`.

    Returns:
        `(batch, ahead)`: the batch with n-step `rewards` `(B, 1)` float32, `next_observations`
        (every key `buffer.next_observations` stores, at step `t+k-1`; other keys and
        `desired_goal` as given), `dones` `(B, 1)` float32 and `discounts` `(B, 1)` float32,
        all on the buffer's device; and `ahead`, `(B,)` int `k - 1`, how many steps after its
        own transition each row's `next_obs` lies (keys the buffer does not store, such as the
        compact buffer's frames, are gathered by the caller with it).

    Raises:
        ValueError: If relabelled rows need rewards from the env and the buffer has none.
    """
    size = buffer.buffer_size
    n_real = len(slots) - len(relabelled_goals)
    steps = (slots - buffer.ep_start[slots, envs]) % size
    lengths = np.minimum(n_steps, buffer.ep_length[slots, envs] - steps)  # k >= 1: ep_length > 0 when sampled
    offsets = np.arange(n_steps)
    window = (slots[:, None] + offsets) % size  # (B, n_steps) slots t .. t+n-1, wrapping with the ring
    inside = offsets < lengths[:, None]  # (B, n_steps): steps of the row's own episode

    rewards = buffer.rewards[window, envs[:, None]]  # stored; replaced below for relabelled rows
    rewards[n_real:] = _relabelled_rewards(buffer, window[n_real:], envs[n_real:], inside[n_real:], relabelled_goals)
    # Steps past the episode may hold anything (another episode, unwritten slots): zero them, never multiply.
    rewards = np.where(inside, buffer._normalize_reward(rewards, env), np.float32(0.0))
    returns = (rewards * gamma ** offsets.astype(np.float64)).sum(axis=1, keepdims=True).astype(np.float32)

    last = window[np.arange(len(slots)), lengths - 1]
    stored = {key: array[last, envs] for key, array in buffer.next_observations.items()}
    # VecNormalize normalises a whole dict (its keys must be there); the row's goal is the batch's.
    normalised = buffer._normalize_obs(stored, env)
    assert isinstance(normalised, dict)
    next_observations = {
        key: buffer.to_torch(normalised[key]) if key in stored and key != "desired_goal" else value
        for key, value in batch.next_observations.items()
    }
    dones = buffer.dones[last, envs] * (1 - buffer.timeouts[last, envs])
    discounts = (gamma ** lengths.astype(np.float64)).astype(np.float32)
    n_step_batch = batch._replace(
        next_observations=next_observations,
        rewards=buffer.to_torch(returns),
        dones=buffer.to_torch(dones.reshape(-1, 1).astype(np.float32, copy=False)),
        discounts=buffer.to_torch(discounts.reshape(-1, 1)),
    )
    return n_step_batch, lengths - 1


def _relabelled_rewards(buffer: HerReplayBuffer, window: Array, envs: Array, inside: Array, goals: Array) -> Array:
    """`(B_relabelled, n_steps)` float32 rewards for the relabelled goals (0 outside the episode), one call."""
    rewards = np.zeros(window.shape, dtype=np.float32)
    rows, steps = np.nonzero(inside)
    if not len(rows):
        return rewards
    positions, position_envs = window[rows, steps], envs[rows]
    achieved = buffer.next_observations["achieved_goal"][positions, position_envs]
    if buffer.copy_info_dict:
        infos: Any = copy.deepcopy(buffer.infos[positions, position_envs])
    else:
        infos = [{} for _ in range(len(rows))]
    # As SB3's HER: r_t = compute_reward(next achieved_goal, goal, info), in-process or the first env's method.
    rewards[rows, steps] = relabelled_rewards(buffer, achieved, goals[rows], infos)
    return rewards
