"""Env steps per second of a whole SAC + HER training run on FetchPush-v4 pixels: pixelrl vs the chapter.

- pixelrl (``pixelrl-train``'s defaults): ``make_fetch_env`` (MuJoCo renders 84x84 natively),
  ``SubprocVecEnv`` (``forkserver``), ``DrQv2SAC`` (separate target encoder), channels-last
  convolutions, ``CompactHerReplayBuffer`` (frames kept on the GPU when the learner is on one),
  transparent huge pages for torch's CPU tensors.
- chapter: ``PixelObservationWrapper(gym.make(id, render_mode="rgb_array"), image_size=84)``
  (MuJoCo renders 480x480, PIL resizes to 84x84), ``DummyVecEnv``, SB3's ``SAC`` with
  ``DrQv2SACPolicy``, SB3's ``HerReplayBuffer``, torch's default allocator.

Both: 4 envs, frame stack 4, no DrQ, the chapter's hyperparameters (batch 256, lr 1e-4,
gamma 0.95, tau 0.005, ent_coef 0.05, one gradient step per vec-env step, HER k=4 future).
Each pipeline runs in its own process (the allocator setting is per process), in the order
chapter, pixelrl, pixelrl, chapter, each learning half of ``--steps`` timed env steps after
``learning_starts``, so that drift on a shared machine hits both alike. Only the part of
``learn()`` after the first update is timed. A collection-only section (random actions, no
updates) separates rendering and the vec env from learning.

    python benchmarks/env_throughput.py             # full: 200 timed env steps per pipeline
    python benchmarks/env_throughput.py --quick     # sanity check: 10-step episodes, batch 16

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENV_ID = "FetchPush-v4"


def chapter_env(max_episode_steps: int | None) -> Any:
    import gymnasium as gym

    from pixelrl.wrappers import FETCH_OBJECT_PROPRIO_INDICES, PixelObservationWrapper, register_fetch_envs

    register_fetch_envs()
    kwargs: dict[str, Any] = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = gym.make(ENV_ID, render_mode="rgb_array", **kwargs)  # Fetch's default 480x480
    return PixelObservationWrapper(env, image_size=84, frame_stack=4, proprio_indices=FETCH_OBJECT_PROPRIO_INDICES)


def pixelrl_env(max_episode_steps: int | None) -> Any:
    from pixelrl.wrappers import make_fetch_env

    return make_fetch_env(ENV_ID, image_size=84, frame_stack=4, max_episode_steps=max_episode_steps)


def make_vec_env(factory: Any, kind: str, n_envs: int) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if kind == "dummy":
        return DummyVecEnv([factory] * n_envs)
    return SubprocVecEnv([factory] * n_envs, start_method=kind)


def collection_rate(venv: Any, env_steps: int) -> float:
    """Env steps per second with random actions (rendering + stepping + vec env, no learning)."""
    import numpy as np

    venv.reset()
    actions = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
    n = max(1, env_steps // venv.num_envs)
    start = time.perf_counter()
    for _ in range(n):
        venv.step(actions)
    return n * venv.num_envs / (time.perf_counter() - start)


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """One pipeline in this process: learn ``args.steps`` timed env steps after learning_starts."""
    import functools

    import torch
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.utils import get_device

    from pixelrl.algos import DrQv2SAC
    from pixelrl.buffers import CompactHerReplayBuffer

    class Timer(BaseCallback):
        def __init__(self, start_at: int) -> None:
            super().__init__()
            self.start_at, self.start, self.seconds, self.steps = start_at, None, 0.0, 0

        def _on_rollout_start(self) -> None:
            if self.start is None and self.num_timesteps >= self.start_at:
                self.start = (time.perf_counter(), self.num_timesteps)

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            if self.start is not None:
                self.seconds = time.perf_counter() - self.start[0]
                self.steps = self.num_timesteps - self.start[1]

    torch.set_num_threads(args.threads)
    episode = 10 if args.quick else None
    chapter = args.pipeline == "chapter"
    factory = functools.partial(chapter_env if chapter else pixelrl_env, episode)
    start = time.perf_counter()
    venv = make_vec_env(factory, "dummy" if chapter else args.vec_env, args.n_envs)
    vec_env_start = time.perf_counter() - start
    collection = collection_rate(venv, args.collection_steps)
    common: dict[str, Any] = dict(
        learning_rate=1e-4,
        batch_size=args.batch_size,
        gamma=0.95,
        tau=0.005,
        ent_coef=0.05,
        train_freq=1,
        gradient_steps=1,
        learning_starts=args.learning_starts,
        buffer_size=args.learning_starts + args.steps + 100 * args.n_envs,
        seed=0,
        device=args.device,
    )
    her = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    if chapter:
        model: Any = SAC(
            "DrQv2SACPolicy", venv, replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=her,
            policy_kwargs={"net_arch": [256, 256]}, **common,
        )  # fmt: skip
    else:
        # As pixelrl-train: the frame ring lives on the training GPU when there is one.
        learner = get_device(args.device)
        frames = {"frames_device": learner} if learner.type == "cuda" else {}
        model = DrQv2SAC(
            "DrQv2SACPolicy", venv, replay_buffer_class=CompactHerReplayBuffer, replay_buffer_kwargs=her | frames,
            policy_kwargs={"net_arch": [256, 256], "features_extractor_kwargs": {"channels_last": True}}, **common,
        )  # fmt: skip
    timer = Timer(start_at=args.learning_starts + args.n_envs)
    model.learn(args.learning_starts + args.steps, callback=timer)
    venv.close()
    return {
        "seconds": timer.seconds,
        "steps": timer.steps,
        "collection_env_steps_per_s": collection,
        "vec_env_start_seconds": vec_env_start,
        "learner_device": str(model.device),
        "frames_device": str(getattr(model.replay_buffer, "frames_device", None)),
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10-step episodes, batch 16, few steps: a sanity check")
    parser.add_argument("--steps", type=int, default=200, help="timed env steps per pipeline, after learning_starts")
    parser.add_argument("--learning-starts", type=int, default=200, help=">= one episode per env (HER)")
    parser.add_argument("--collection-steps", type=int, default=200, help="env steps of the collection-only section")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--vec-env", default="forkserver", choices=["dummy", "forkserver", "spawn"], help="pixelrl's")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in the learner process")
    parser.add_argument("--device", default="auto", help="torch device of both learners (SB3's auto: cuda if present)")
    parser.add_argument("--pipeline", choices=["chapter", "pixelrl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.learning_starts, args.collection_steps, args.batch_size = 16, 40, 16, 16
    if args.pipeline:  # a worker: one pipeline, JSON on the last line
        print(json.dumps(run_pipeline(args)))
        return

    from update_throughput import machine

    load_before = os.getloadavg()
    half = [args.steps // 2, args.steps - args.steps // 2]
    schedule = [("chapter", half[0]), ("pixelrl", half[0]), ("pixelrl", half[1]), ("chapter", half[1])]
    forwarded = [
        "--learning-starts", str(args.learning_starts), "--collection-steps", str(args.collection_steps),
        "--batch-size", str(args.batch_size), "--n-envs", str(args.n_envs), "--vec-env", args.vec_env,
        "--threads", str(args.threads), "--device", args.device, *(["--quick"] if args.quick else []),
    ]  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {"chapter": [], "pixelrl": []}
    for name, steps in schedule:
        # The chapter ran with torch's default allocator; pixelrl sets THP_MEM_ALLOC_ENABLE=1 on import.
        env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "0" if name == "chapter" else "1"}
        cmd = [sys.executable, str(Path(__file__)), "--pipeline", name, "--steps", str(steps), *forwarded]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rates = {name: sum(r["steps"] for r in rs) / sum(r["seconds"] for r in rs) for name, rs in runs.items()}
    report = {
        "benchmark": "env_throughput",
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "env_id": ENV_ID,
            "n_envs": args.n_envs,
            "batch_size": args.batch_size,
            "learning_starts": args.learning_starts,
            "timed_env_steps_per_pipeline": args.steps,
            "torch_threads": args.threads,
            "device": args.device,
            "pixelrl": f"make_fetch_env 84x84 native, SubprocVecEnv({args.vec_env}), DrQv2SAC(separate target), "
            "channels_last, CompactHerReplayBuffer (frames on the learner's GPU if any), THP_MEM_ALLOC_ENABLE=1",
            "chapter": "gym.make 480x480 + PIL resize, DummyVecEnv, SAC + DrQv2SACPolicy, HerReplayBuffer, "
            "THP_MEM_ALLOC_ENABLE=0",
        },
        "training_env_steps_per_s": {name: round(rate, 3) for name, rate in rates.items()},
        "speedup_pixelrl_vs_chapter": round(rates["pixelrl"] / rates["chapter"], 3),
        "collection_only_env_steps_per_s": {
            "chapter: 480x480 render + PIL resize, DummyVecEnv": round(
                runs["chapter"][0]["collection_env_steps_per_s"], 1
            ),
            f"pixelrl: native 84x84, SubprocVecEnv({args.vec_env})": round(
                runs["pixelrl"][0]["collection_env_steps_per_s"], 1
            ),
        },
        "pixelrl_vec_env_start_seconds": round(runs["pixelrl"][0]["vec_env_start_seconds"], 1),
        "segments": runs,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
