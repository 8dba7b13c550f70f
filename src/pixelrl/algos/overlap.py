"""Overlapped collection: the next vec-env step runs in the env processes while DrQv2SAC's gradient steps run.

With `SubprocVecEnv` each env steps (and renders) in its own process; SB3 waits for every step
before it updates. `OverlappedCollection` splits the step in two: its actions are chosen and
sent (``step_async``) before ``train``, and the results are received (``step_wait``) after it, at
the start of the next rollout, so stepping and rendering run while the gradient steps run.

Timeline with ``train_freq=1`` (``U_t``: the gradient steps after env step ``t``)::

    SB3:         store t | U_t | act on obs t+1 | step t+1 (wait) | store t+1 | U_t+1 | ...
    overlapped:  store t | act on obs t+1, send step t+1 | U_t (envs stepping) | wait | store t+1 | ...

**Staleness.** The action of step ``t+1`` is chosen by the policy *before* ``U_t``: the collecting
policy is one update (``gradient_steps`` gradient steps) behind SB3's, never more.

**Which transitions each update sees.** Exactly SB3's: ``U_t`` samples after transition ``t`` is
stored, from every transition up to and including ``t`` of every env (HER: every episode that
has ended by step ``t``); the step in flight is stored only after ``U_t``. With ``learning_starts``
the first update comes after the same step as in SB3, and warm-up actions are random either way.

**Callbacks.** The step in flight is received *before* ``on_rollout_start``, so checkpoints and
evaluations (which pixelrl-train runs there) never see a step in flight; a checkpoint holds the
buffer, counters and networks as SB3 would hold them at that point (the received step is stored
right after, by the rollout that starts), and a resumed run starts from it as from any
checkpoint (SB3's ``load`` resets the envs). A step is only sent when another rollout follows
(``num_timesteps < total``, training not stopped by a callback), so none is left in flight when
``learn`` returns. If ``learn`` raises during an update, the step it left in flight is dropped by
the next ``learn`` (which then resets the envs) or by ``save``.

**What it needs.** A VecEnv whose ``step_async`` returns before the step is done: with a
`DummyVecEnv` (which steps inside ``step_wait``) there is nothing to overlap, so `DrQv2SAC`
warns and collects without overlap (and without the stale policy). Nothing may talk to the envs
during the update: SB3's HER asks the first env for every relabelled reward through
``env_method``, which under `SubprocVecEnv` would read the step's reply from the same pipe, so a
HER buffer must compute rewards in-process (`pixelrl.buffers.EnvComputeReward`) or ``learn``
refuses.

**Why a flag on DrQv2SAC.** rl-zoo3's ``ParallelTrainCallback`` trains a copy of the model in a
thread and copies weights and buffer back: the policy is many updates stale, the buffer is
deep-copied, ``save`` is patched. Here the envs already run in other processes, so no thread and
no copy is needed; only the order of SB3's loop changes, which a callback cannot do (SB3 calls
``env.step`` itself), and a subclass of `DrQv2SAC` would be two levels below SB3.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

__all__ = ["OverlappedCollection", "check_overlap", "gives_overlap"]

Array = np.ndarray[Any, Any]


def gives_overlap(env: VecEnv) -> bool:
    """Whether ``step_async`` of ``env`` returns before the step is done (False for a `DummyVecEnv` below any wrappers).

    Args:
        env: A VecEnv, possibly wrapped (`VecNormalize`, `VecMonitor`, ...).

    Returns:
        False if the innermost VecEnv steps in ``step_wait`` in this process (`DummyVecEnv`),
        True otherwise (`SubprocVecEnv` and other asynchronous VecEnvs).
    """
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    return not isinstance(env, DummyVecEnv)


def check_overlap(env: VecEnv, replay_buffer: ReplayBuffer | None) -> None:
    """Check, before ``learn``, that overlapped collection can run with this env and buffer.

    Args:
        env: The training VecEnv.
        replay_buffer: The model's replay buffer.

    Raises:
        ValueError: If ``env`` steps asynchronously and the buffer is a HER buffer that asks the env
            for relabelled rewards (``env_method`` would share the first env's pipe with the step in
            flight and receive the step's reply).

    Warns:
        UserWarning: If ``env`` is a `DummyVecEnv`: nothing overlaps; the model collects without overlap.
    """
    if not gives_overlap(env):
        warnings.warn(
            "overlap_collection=True, but the env is a DummyVecEnv, which steps inside step_wait: there is nothing "
            "to overlap, so DrQv2SAC collects without overlap (and without a stale policy). Use a SubprocVecEnv to "
            "step the envs while the update runs.",
            stacklevel=4,
        )
    elif isinstance(replay_buffer, HerReplayBuffer) and getattr(replay_buffer, "compute_reward", None) is None:
        raise ValueError(
            f"overlap_collection=True with {type(replay_buffer).__name__}, which computes relabelled rewards with "
            "env.env_method('compute_reward', ...): under a SubprocVecEnv that call shares the first env's pipe with "
            "the step in flight. Use a pixelrl HER buffer with an in-process reward, replay_buffer_kwargs="
            "dict(compute_reward=pixelrl.buffers.EnvComputeReward(env_id)) (for envs whose compute_reward depends "
            "on the goals only), or drop overlap_collection."
        )


class _ArrivedStep(VecEnvWrapper):
    """The env as SB3's collection loop sees it: its next ``step`` returns the step already received.

    Made once per env (a VecEnv wrapper asks its env for ``render_mode`` when built); between
    rollouts it holds nothing and passes every call through.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.actions: Array | None = None
        self.result: VecEnvStepReturn | None = None

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        if self.result is None:
            self.venv.step_async(actions)
        elif actions is not self.actions:
            raise RuntimeError(
                "Overlapped collection: the first action of a rollout must be the one sent before the update "
                "(DrQv2SAC._sample_action returns it). A subclass that overrides _sample_action must call super()."
            )

    def step_wait(self) -> VecEnvStepReturn:
        if self.result is None:
            return self.venv.step_wait()
        result, self.result, self.actions = self.result, None, None
        return result


class OverlappedCollection:
    """The vec-env step sent before an update and received after it (see the module docstring).

    One per model; `DrQv2SAC` drives it from ``collect_rollouts`` and ``_sample_action``.
    """

    def __init__(self) -> None:
        self._view: _ArrivedStep | None = None
        self._in_flight: tuple[VecEnv, Array, Array] | None = None
        self._arrived: tuple[Array, Array] | None = None

    @property
    def in_flight(self) -> bool:
        """Whether a step has been sent and not yet received."""
        return self._in_flight is not None

    def launch(self, env: VecEnv, actions: Array, buffer_actions: Array) -> None:
        """Send the next step's actions to the envs (``step_async``) and return at once.

        Args:
            env: The training VecEnv (the model's ``env``).
            actions: ``(n_envs, ...)`` actions as the env takes them.
            buffer_actions: The same actions as the replay buffer stores them (scaled to ``[-1, 1]``).

        Raises:
            RuntimeError: If a step is already in flight.
        """
        if self._in_flight is not None:
            raise RuntimeError("Overlapped collection: a step is already in flight; receive it first.")
        env.step_async(actions)
        self._in_flight = (env, actions, buffer_actions)

    def receive(self, env: VecEnv) -> VecEnv:
        """Wait for the step in flight (if any) and return the env the next rollout steps.

        Args:
            env: The training VecEnv (nothing is in flight on any other, see `discard`).

        Returns:
            A view of ``env`` whose first ``step`` returns the received step (``env``'s own view when
            nothing was in flight); its first action comes from `take_actions`.
        """
        if self._view is None or self._view.venv is not env:
            self.discard()
            self._view = _ArrivedStep(env)
        if self._in_flight is not None:
            _, actions, buffer_actions = self._in_flight
            self._view.result = env.step_wait()
            self._view.actions = actions
            self._in_flight = None
            self._arrived = (actions, buffer_actions)
        return self._view

    def take_actions(self) -> tuple[Array, Array] | None:
        """The ``(actions, buffer_actions)`` of the received step, once; None when there is none."""
        arrived, self._arrived = self._arrived, None
        return arrived

    def drop_in_flight(self) -> bool:
        """Wait for a step in flight and drop it (its transition is never stored).

        A step is only in flight during an update; one is left behind when ``learn`` raised there.
        The env has then moved one step past the model's last observation: the caller resets it.

        Returns:
            Whether a step was dropped.
        """
        if self._in_flight is None:
            return False
        self._in_flight[0].step_wait()
        self._in_flight = None
        return True

    def discard(self) -> bool:
        """Drop a step in flight and a received step the collection loop has not taken yet (before a new ``learn``).

        A received step is left untaken when a callback raised in ``on_rollout_start``.

        Returns:
            Whether a step was dropped (the env has moved past the model's last observation).
        """
        dropped = self.drop_in_flight() or self._arrived is not None
        if self._view is not None:
            self._view.result = self._view.actions = None
        self._arrived = None
        return dropped
