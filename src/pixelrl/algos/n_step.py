"""How `DrQv2SAC` hands its `n_steps` to the replay buffer: passed on where the buffer computes them, refused elsewhere.

SB3 sets n-step returns up only for `replay_buffer_class=None` with Box observations
(`NStepReplayBuffer`); with any other buffer class it warns that `n_steps` is ignored and trains
on one-step returns, and with Dict observations it asserts. pixelrl's HER pixel buffers compute
n-step returns with Dict observations, so `DrQv2SAC` passes `n_steps` and `gamma` to any buffer
class that takes an `n_steps` argument and refuses the others: n-step returns either work or
raise, never silently vanish.
"""

from __future__ import annotations

import inspect
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

__all__ = ["N_STEP_IGNORED_WARNING", "n_step_buffer_kwargs"]

N_STEP_IGNORED_WARNING = r"`n_steps=\d+` is ignored because a custom `replay_buffer_class`"
"""The start of SB3's warning, which `n_step_buffer_kwargs` makes untrue for every buffer class it accepts."""

_FIX = (
    "pixelrl's CompactHerReplayBuffer and HerDrQDictReplayBuffer (pixelrl.buffers) compute n-step returns with "
    "Dict observations and HER: pass one as replay_buffer_class, or use n_steps=1."
)


def n_step_buffer_kwargs(
    n_steps: int,
    gamma: float,
    buffer_class: type[ReplayBuffer] | None,
    buffer_kwargs: dict[str, Any],
    observation_space: spaces.Space[Any],
) -> tuple[int, dict[str, Any]]:
    """The n-step setting a model trains with, and the buffer kwargs that make its buffer compute it.

    Args:
        n_steps: The algorithm's `n_steps`.
        gamma: The algorithm's discount factor.
        buffer_class: `replay_buffer_class` (`None`: SB3 chooses one).
        buffer_kwargs: `replay_buffer_kwargs` (not modified).
        observation_space: The model's observation space.

    Returns:
        `(n_steps, kwargs)`: the n-step setting the buffer will use (the algorithm's, or one
        given only in `buffer_kwargs`, or the buffer class's default), and `buffer_kwargs` with
        `n_steps` and `gamma` added when the buffer computes n-step returns (`n_steps > 1`).

    Raises:
        ValueError: If `n_steps > 1` and the buffer cannot compute n-step returns (a class
            without an `n_steps` argument, or SB3's default buffer with Dict observations), or
            `buffer_kwargs` give an `n_steps` or `gamma` other than the algorithm's.
    """
    if buffer_class is None:
        if n_steps > 1 and isinstance(observation_space, spaces.Dict):
            raise ValueError(
                f"n_steps={n_steps} with Dict observations: SB3's default buffer for them (DictReplayBuffer) has no "
                f"n-step returns. {_FIX}"
            )
        return n_steps, buffer_kwargs  # SB3 picks ReplayBuffer or NStepReplayBuffer itself
    parameter = inspect.signature(buffer_class).parameters.get("n_steps")
    if parameter is None:
        if n_steps > 1:
            raise ValueError(
                f"n_steps={n_steps}, but {buffer_class.__name__} takes no n_steps argument: it would train on one-step "
                f"returns (SB3 only warns). {_FIX}"
            )
        return n_steps, buffer_kwargs
    if "n_steps" in buffer_kwargs:
        buffer_n_steps = int(buffer_kwargs["n_steps"])
        if n_steps > 1 and buffer_n_steps != n_steps:
            raise ValueError(
                f"n_steps={n_steps} but replay_buffer_kwargs['n_steps']={buffer_n_steps}: give it once (DrQv2SAC "
                "passes n_steps to the buffer itself) or make them equal."
            )
    elif n_steps > 1:
        buffer_n_steps = n_steps
    else:  # a buffer whose default is n-step (SB3's NStepReplayBuffer: 3) uses that default
        buffer_n_steps = parameter.default if isinstance(parameter.default, int) else 1
    if buffer_n_steps <= 1:
        return 1, buffer_kwargs
    if "gamma" in buffer_kwargs and float(buffer_kwargs["gamma"]) != float(gamma):
        raise ValueError(
            f"gamma={gamma} but replay_buffer_kwargs['gamma']={buffer_kwargs['gamma']}: the buffer's n-step discounts "
            "replace the algorithm's gamma in the TD target. Drop replay_buffer_kwargs['gamma'] (DrQv2SAC passes its "
            "gamma) or make them equal."
        )
    return buffer_n_steps, {**buffer_kwargs, "n_steps": buffer_n_steps, "gamma": gamma}
