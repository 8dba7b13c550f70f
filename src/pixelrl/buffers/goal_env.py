"""Checks that HER can relabel an env's goals: at construction, and on the first relabelled batch.

`compute_reward` is only called once the env has been reset: some goal envs (SB3's image
`BitFlippingEnv`) read their state in it, so probing it with made-up goals at construction
would refuse envs that SB3's own `HerReplayBuffer` accepts.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from pixelrl.buffers.her_rewards import missing_env_error, relabelled_rewards

__all__ = ["check_goal_env", "check_relabelled_rewards"]

Array = np.ndarray[Any, Any]

_FIX = (
    "HER recomputes rewards with env.compute_reward(achieved_goal, desired_goal, info). Wrap goal envs "
    "with PixelObservationWrapper (it forwards compute_reward through gymnasium's wrappers) or use a "
    "buffer without HER."
)


def check_goal_env(observation_space: spaces.Dict, env: VecEnv) -> None:
    """Check that HER can relabel this env: goal keys present and a `compute_reward` method.

    `compute_reward` is not called here (see the module docstring); its output is checked by
    `check_relabelled_rewards` on the first relabelled batch.

    Args:
        observation_space: The observation space the buffer stores.
        env: The training VecEnv.

    Raises:
        ValueError: If a goal key is missing or the env has no `compute_reward`.
    """
    missing = [key for key in ("achieved_goal", "desired_goal") if key not in observation_space.spaces]
    if missing:
        raise ValueError(
            f"HER needs 'achieved_goal' and 'desired_goal' in the observation; {missing} missing from "
            f"{list(observation_space.spaces)}. With PixelObservationWrapper use goal_mode='both' or 'strict'."
        )
    if not env.has_attr("compute_reward"):
        raise ValueError(f"The env has no compute_reward method. {_FIX}")


def check_relabelled_rewards(buffer: HerReplayBuffer, batch_indices: Array, env_indices: Array) -> None:
    """Check, on up to two rows of a relabelled batch, that `compute_reward` gives one reward per row.

    A reward of the wrong shape would not fail in SB3's sampling: a scalar is broadcast or a
    `(B, B)` array reshaped, and the batch silently holds wrong rewards. The buffers call this
    once per env, before SB3 relabels their first batch. The rewards come from where the batch's
    will come from: the buffer's in-process ``compute_reward`` when it has one, else the env.

    Args:
        buffer: The HER buffer about to relabel (its env or ``compute_reward``, stored goals and
            info dicts are read).
        batch_indices: `(n,)` int transition slots of the relabelled rows, `n >= 1`.
        env_indices: `(n,)` int env indices.

    Raises:
        ValueError: If the rewards come from the env and the buffer has none, `compute_reward`
            raises, or it does not return `(rows,)`.
    """
    compute_reward = getattr(buffer, "compute_reward", None)
    in_process = compute_reward is not None
    source = f"the buffer's compute_reward ({compute_reward!r})" if in_process else "env.compute_reward"
    fix = (
        "Pass a compute_reward that takes (achieved_goal, desired_goal, infos) batches, or none to use the env's."
        if in_process
        else _FIX
    )
    rows = (batch_indices[:2], env_indices[:2])
    n_rows = len(rows[0])
    achieved = buffer.next_observations["achieved_goal"][rows]
    desired = buffer.observations["desired_goal"][rows]
    infos: Any = copy.deepcopy(buffer.infos[rows]) if buffer.copy_info_dict else [{} for _ in range(n_rows)]
    if not in_process and buffer.env is None:
        raise missing_env_error(buffer)
    try:
        rewards = relabelled_rewards(buffer, achieved, desired, infos)
    except Exception as exc:  # whatever the env raises, HER cannot use it
        raise ValueError(f"{source} failed on a batch of {n_rows} goals ({type(exc).__name__}: {exc}). {fix}") from exc
    if np.shape(rewards) != (n_rows,):
        raise ValueError(
            f"compute_reward must accept batches of goals and return one reward per row; for {n_rows} goals "
            f"{source if in_process else 'it'} returned shape {np.shape(rewards)}. Vectorise it over the leading axis."
        )
