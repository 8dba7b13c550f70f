"""Env steps per second of a whole SAC + HER training run on FetchPush-v4 pixels: pixelrl vs the chapter.

- pixelrl: ``make_fetch_env`` (MuJoCo renders 84x84 natively), ``SubprocVecEnv`` with the
  ``forkserver`` start method, ``DrQv2SAC`` and ``HerDrQDictReplayBuffer`` (pad 4).
- chapter: ``PixelObservationWrapper(gym.make(id, render_mode="rgb_array"), image_size=84)``
  (MuJoCo renders 480x480, PIL resizes to 84x84), ``DummyVecEnv``, SB3's ``SAC`` with
  ``DrQv2SACPolicy`` and SB3's ``HerReplayBuffer``.

Both: 4 envs, frame stack 4, the chapter's hyperparameters (batch 256, lr 1e-4, gamma 0.95,
tau 0.005, ent_coef 0.05, one gradient step per vec-env step). Only the part of ``learn()``
after ``learning_starts`` (and after the first update) is timed, in an A-B-B-A schedule (each pipeline learns half of
``--steps``, then the other order) to cancel drift on a shared machine. A collection-only
section (random actions, no updates) separates rendering from the vec env.

    python benchmarks/env_throughput.py             # full: 400 timed env steps per pipeline
    python benchmarks/env_throughput.py --quick     # sanity check: 10-step episodes, batch 16

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from update_throughput import machine

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import HerDrQDictReplayBuffer
from pixelrl.wrappers import FETCH_OBJECT_PROPRIO_INDICES, PixelObservationWrapper, make_fetch_env

ENV_ID = "FetchPush-v4"


def chapter_env(max_episode_steps: int | None) -> PixelObservationWrapper:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    kwargs: dict[str, Any] = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = gym.make(ENV_ID, render_mode="rgb_array", **kwargs)  # Fetch's default 480x480
    return PixelObservationWrapper(env, image_size=84, frame_stack=4, proprio_indices=FETCH_OBJECT_PROPRIO_INDICES)


def pixelrl_env(max_episode_steps: int | None) -> PixelObservationWrapper:
    return make_fetch_env(ENV_ID, image_size=84, frame_stack=4, max_episode_steps=max_episode_steps)


def vec_env(factory: Callable[[], gym.Env[Any, Any]], kind: str, n_envs: int) -> VecEnv:
    if kind == "dummy":
        return DummyVecEnv([factory] * n_envs)
    return SubprocVecEnv([factory] * n_envs, start_method=kind)


def collection_rate(venv: VecEnv, env_steps: int) -> float:
    """Env steps per second with random actions (rendering + stepping + vec env, no learning)."""
    venv.reset()
    actions = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
    start = time.perf_counter()
    for _ in range(max(1, env_steps // venv.num_envs)):
        venv.step(actions)
    return max(1, env_steps // venv.num_envs) * venv.num_envs / (time.perf_counter() - start)


class TimeAfterLearningStarts(BaseCallback):
    """Wall time and env steps from the first rollout after the first update to the end of ``learn``.

    The first update (lazy optimizer state and kernel initialisation) is left out.
    """

    def __init__(self, start_at: int) -> None:
        super().__init__()
        self.start_at = start_at
        self.start: tuple[float, int] | None = None
        self.seconds = 0.0
        self.steps = 0

    def _on_rollout_start(self) -> None:
        if self.start is None and self.num_timesteps >= self.start_at:
            self.start = (time.perf_counter(), self.num_timesteps)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.start is not None:
            self.seconds = time.perf_counter() - self.start[0]
            self.steps = self.num_timesteps - self.start[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10-step episodes, batch 16, few steps: a sanity check")
    parser.add_argument("--steps", type=int, default=400, help="timed env steps per pipeline, after learning_starts")
    parser.add_argument("--learning-starts", type=int, default=200, help=">= one episode per env (HER)")
    parser.add_argument("--collection-steps", type=int, default=200, help="env steps of the collection-only section")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--vec-env", default="forkserver", choices=["dummy", "forkserver", "spawn"], help="pixelrl's")
    parser.add_argument("--target-encoder", default="separate", choices=["separate", "online"])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in the learner process")
    args = parser.parse_args()
    max_episode_steps = None
    if args.quick:
        max_episode_steps, args.steps, args.learning_starts, args.collection_steps = 10, 16, 40, 16
        args.batch_size = 16
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="gymnasium")
    load_before = os.getloadavg()

    chapter_factory = functools.partial(chapter_env, max_episode_steps)
    pixelrl_factory = functools.partial(pixelrl_env, max_episode_steps)
    chapter_venv = vec_env(chapter_factory, "dummy", args.n_envs)
    start = time.perf_counter()
    pixelrl_venv = vec_env(pixelrl_factory, args.vec_env, args.n_envs)
    pixelrl_start_s = time.perf_counter() - start
    native_dummy = vec_env(pixelrl_factory, "dummy", args.n_envs)
    collection = {
        "chapter: 480x480 render + PIL resize, DummyVecEnv": collection_rate(chapter_venv, args.collection_steps),
        "native 84x84 render, DummyVecEnv": collection_rate(native_dummy, args.collection_steps),
        f"native 84x84 render, SubprocVecEnv({args.vec_env})": collection_rate(pixelrl_venv, args.collection_steps)
        if args.vec_env != "dummy"
        else None,
    }
    native_dummy.close()

    common: dict[str, Any] = dict(
        learning_rate=1e-4,
        batch_size=args.batch_size,
        gamma=0.95,
        tau=0.005,
        ent_coef=0.05,
        train_freq=1,
        gradient_steps=1,
        learning_starts=args.learning_starts,
        buffer_size=args.learning_starts + args.steps + 50 * args.n_envs,
        policy_kwargs={"net_arch": [256, 256]},
        seed=0,
    )
    her = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    models: dict[str, OffPolicyAlgorithm] = {
        "chapter": SAC(
            "DrQv2SACPolicy", chapter_venv, replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=her, **common
        ),
        "pixelrl": DrQv2SAC(
            "DrQv2SACPolicy",
            pixelrl_venv,
            replay_buffer_class=HerDrQDictReplayBuffer,
            replay_buffer_kwargs={"pad": 4, **her},
            target_encoder=args.target_encoder,
            **common,
        ),
    }
    timed = {name: {"seconds": 0.0, "steps": 0} for name in models}
    first_half = args.steps // 2
    schedule = [
        ("chapter", args.learning_starts + first_half, True),
        ("pixelrl", args.learning_starts + first_half, True),
        ("pixelrl", args.steps - first_half, False),
        ("chapter", args.steps - first_half, False),
    ]
    for name, total, reset in schedule:
        timer = TimeAfterLearningStarts(start_at=args.learning_starts + args.n_envs)
        models[name].learn(total, callback=timer, reset_num_timesteps=reset)
        timed[name]["seconds"] += timer.seconds
        timed[name]["steps"] += timer.steps
    for model in models.values():
        model.env.close()  # type: ignore[union-attr]

    rates = {name: t["steps"] / t["seconds"] for name, t in timed.items()}
    report = {
        "benchmark": "env_throughput",
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "env_id": ENV_ID,
            "n_envs": args.n_envs,
            "batch_size": args.batch_size,
            "learning_starts": args.learning_starts,
            "timed_env_steps_per_pipeline": args.steps,
            "max_episode_steps": max_episode_steps or 50,
            "torch_threads": args.threads,
            "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
            "MUJOCO_GL": os.environ.get("MUJOCO_GL"),
            "pixelrl": f"make_fetch_env (84x84 native), SubprocVecEnv/{args.vec_env}, "
            f"DrQv2SAC(target_encoder={args.target_encoder!r}), HerDrQDictReplayBuffer(pad=4)",
            "chapter": "gym.make 480x480 + PixelObservationWrapper PIL resize, DummyVecEnv, "
            "SAC + DrQv2SACPolicy, HerReplayBuffer",
        },
        "training_env_steps_per_s": {name: round(rate, 2) for name, rate in rates.items()},
        "training_timed": {name: {"seconds": round(t["seconds"], 1), "steps": t["steps"]} for name, t in timed.items()},
        "speedup_pixelrl_vs_chapter": round(rates["pixelrl"] / rates["chapter"], 3),
        "collection_only_env_steps_per_s": {k: None if v is None else round(v, 1) for k, v in collection.items()},
        "pixelrl_vec_env_start_seconds": round(pixelrl_start_s, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
