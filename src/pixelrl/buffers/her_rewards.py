"""HER's relabelled rewards: through the env, as SB3 computes them, or in-process without an IPC round trip.

SB3's `HerReplayBuffer` recomputes the reward of every relabelled row with
``env.env_method("compute_reward", achieved, desired, infos, indices=[0])``: under
`SubprocVecEnv` that is a round trip to the first env's process for every sampled batch (and for
every n-step window), and it shares that env's pipe with any step in flight, so it cannot run
while `DrQv2SAC(overlap_collection=True)` steps the envs during an update.

The pixel HER buffers take a ``compute_reward`` callable instead, called in this process.

**The condition.** Pass one only when the env's ``compute_reward(achieved_goal, desired_goal,
info)`` is a pure function of its arguments (and of constants fixed when the env was built): it
must not read the env's state. That holds for Fetch's goal-distance reward
(``-(||achieved - desired|| > distance_threshold)``, or ``-distance`` when dense) and for the
`pixelrl.envs` point envs; it does not hold for an env whose reward reads its simulator. With
``compute_reward=None`` (the default) the buffers call the env, exactly as SB3 does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

__all__ = ["EnvComputeReward", "RewardFn", "missing_env_error", "relabelled_rewards", "virtual_samples"]

Array = np.ndarray[Any, Any]

RewardFn = Callable[[Array, Array, Any], Array]
"""``compute_reward(achieved_goal, desired_goal, infos) -> rewards``: ``(n, goal_dim)`` goals, ``n`` info
dicts (empty ones unless the buffer copies them), ``(n,)`` rewards; the env's own signature. Must be
picklable: it is saved with the buffer."""


class EnvComputeReward:
    """``compute_reward`` of a non-rendering copy of a registered goal env, made in this process at first use.

    It pickles as its env id and keyword arguments (the copy is rebuilt after unpickling), so a
    buffer that holds it can be saved and loaded. Use it only for envs whose ``compute_reward`` is
    a pure function of the goals (see the module docstring): Fetch tasks and the `pixelrl.envs`
    point envs.

    Args:
        env_id: A registered env id (e.g. ``"FetchPush-v4"``, ``"pixelrl/PointReach-v0"``); it must
            be registered in the process that calls this object.
        env_kwargs: The keyword arguments the training envs were made with that can change the
            reward (e.g. ``reward_type``, ``distance_threshold``); the copy is made without
            ``render_mode``, so it never renders.

    Example:
        >>> import numpy as np
        >>> import pixelrl.envs  # registers pixelrl/PointReach-v0
        >>> reward = EnvComputeReward("pixelrl/PointReach-v0")
        >>> reward(np.zeros((2, 2)), np.array([[0.0, 0.0], [1.0, 1.0]]), [{}, {}]).tolist()
        [0.0, -1.0]
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self._env: gym.Env[Any, Any] | None = None

    def __call__(self, achieved_goal: Array, desired_goal: Array, infos: Any) -> Array:
        """Rewards of ``achieved_goal`` for ``desired_goal``, as the env computes them.

        Args:
            achieved_goal: ``(n, goal_dim)`` float achieved goals (the next observation's).
            desired_goal: ``(n, goal_dim)`` float goals.
            infos: ``n`` info dicts.

        Returns:
            ``(n,)`` rewards.
        """
        if self._env is None:
            self._env = gym.make(self.env_id, disable_env_checker=True, **self.env_kwargs)
        return np.asarray(self._env.unwrapped.compute_reward(achieved_goal, desired_goal, infos))  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "env_kwargs": self.env_kwargs, "_env": None}

    def __repr__(self) -> str:
        return f"EnvComputeReward({self.env_id!r}, {self.env_kwargs!r})"

    def close(self) -> None:
        """Close the env copy (a later call makes a new one)."""
        if self._env is not None:
            self._env.close()
            self._env = None


def missing_env_error(buffer: HerReplayBuffer) -> ValueError:
    """The error for a buffer that must ask its env for rewards but has none (an unpickled buffer before `set_env`)."""
    return ValueError(
        f"{type(buffer).__name__} needs a VecEnv to compute rewards for relabelled goals: pass env= or call "
        "set_env(env) after unpickling (or give the buffer an in-process compute_reward)."
    )


def relabelled_rewards(buffer: HerReplayBuffer, achieved_goal: Array, desired_goal: Array, infos: Any) -> Array:
    """Rewards of relabelled rows: the buffer's in-process ``compute_reward``, else the first env's (SB3's call).

    Args:
        buffer: A HER buffer; its ``compute_reward`` attribute (None: ask the env) and ``env`` are read.
        achieved_goal: ``(n, goal_dim)`` next achieved goals.
        desired_goal: ``(n, goal_dim)`` relabelled goals.
        infos: ``n`` info dicts.

    Returns:
        ``(n,)`` float32 rewards (as returned; `check_relabelled_rewards` checks the shape once).

    Raises:
        ValueError: If the rewards come from the env and the buffer has none.
    """
    compute_reward: RewardFn | None = getattr(buffer, "compute_reward", None)
    if compute_reward is not None:
        rewards = compute_reward(achieved_goal, desired_goal, infos)
    else:
        if buffer.env is None:
            raise missing_env_error(buffer)
        # As SB3's HER: the first env's method, assuming all envs compute rewards alike.
        rewards = buffer.env.env_method("compute_reward", achieved_goal, desired_goal, infos, indices=[0])[0]
    return np.asarray(rewards).astype(np.float32, copy=False)


def virtual_samples(
    buffer: HerReplayBuffer, batch_indices: Array, env_indices: Array, env: VecNormalize | None = None
) -> DictReplayBufferSamples:
    """SB3's `HerReplayBuffer._get_virtual_samples`, with the rewards from `relabelled_rewards`.

    Draw for draw and value for value what SB3 returns when ``compute_reward`` equals the env's
    (``tests/buffers/test_her_rewards.py`` compares the two).

    Args:
        buffer: The HER buffer.
        batch_indices: ``(n,)`` int transition slots.
        env_indices: ``(n,)`` int env indices.
        env: The `VecNormalize` to normalise with, or None.

    Returns:
        The relabelled rows: new goals in ``observations`` and ``next_observations``, their rewards.
    """
    rows = (batch_indices, env_indices)
    obs = {key: array[rows] for key, array in buffer.observations.items()}
    next_obs = {key: array[rows] for key, array in buffer.next_observations.items()}
    infos: Any = copy.deepcopy(buffer.infos[rows]) if buffer.copy_info_dict else [{} for _ in batch_indices]
    new_goals = buffer._sample_goals(batch_indices, env_indices)
    obs["desired_goal"] = new_goals
    next_obs["desired_goal"] = new_goals  # the goal of the next observation is the same one
    # r_t = reward(next achieved goal, goal): the next achieved goal depends on the action taken.
    rewards = relabelled_rewards(buffer, next_obs["achieved_goal"], obs["desired_goal"], infos)
    obs = buffer._normalize_obs(obs, env)  # type: ignore[assignment]
    next_obs = buffer._normalize_obs(next_obs, env)  # type: ignore[assignment]
    dones = buffer.dones[rows] * (1 - buffer.timeouts[rows])  # timeouts bootstrap
    return DictReplayBufferSamples(
        observations={key: buffer.to_torch(value) for key, value in obs.items()},
        actions=buffer.to_torch(buffer.actions[rows]),
        next_observations={key: buffer.to_torch(value) for key, value in next_obs.items()},
        dones=buffer.to_torch(dones).reshape(-1, 1),
        rewards=buffer.to_torch(buffer._normalize_reward(rewards.reshape(-1, 1), env)),
    )
