"""Recipe search from state: SB3 SAC/TQC + HER on a goal env's state vectors, one setting per run.

The first step of finding settings that learn (before pixels enter): which levers move env
steps to success on the state version of a task. Evaluates the deterministic policy every
``--eval-every`` env steps and writes one JSON curve per run to
``benchmarks/learning/results/state-search/<name>.json``.

    python benchmarks/learning/state_search.py --name push-zoo --env pixelrl/PointPush-v0 \
        --steps 60000 --n-envs 1 --lr 1e-3 --batch 256 --normalize

Every run uses one torch thread; the JSON records the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import pixelrl.envs  # noqa: F401  (registers pixelrl/*)


def make(env_id: str) -> gym.Env[Any, Any]:
    if env_id.startswith("Fetch"):
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
    return gym.make(env_id)


class Curve(BaseCallback):
    def __init__(self, env_id: str, every: int, episodes: int, vec_norm: VecNormalize | None, stop_at: float) -> None:
        super().__init__()
        self.env = make(env_id)
        self.every, self.episodes, self.vec_norm, self.stop_at = every, episodes, vec_norm, stop_at
        self.rows: list[dict[str, Any]] = []
        self._next = every
        self._eval_s = 0.0
        self._t0 = time.perf_counter()
        self._hits = 0

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next += self.every
        t0 = time.perf_counter()
        successes = 0.0
        for episode in range(self.episodes):
            obs, _ = self.env.reset(seed=100_000 + 1000 * len(self.rows) + episode)
            done = False
            while not done:
                model_obs = self.vec_norm.normalize_obs(obs) if self.vec_norm is not None else obs
                action, _ = self.model.predict(model_obs, deterministic=True)
                obs, _, terminated, truncated, info = self.env.step(action)
                done = terminated or truncated
            successes += float(info["is_success"])
        self._eval_s += time.perf_counter() - t0
        row = {
            "step": self.num_timesteps,
            "minutes": (time.perf_counter() - self._t0 - self._eval_s) / 60,
            "eval_success": successes / self.episodes,
        }
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        self._hits = self._hits + 1 if row["eval_success"] >= self.stop_at else 0
        return self._hits < 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--env", default="pixelrl/PointPush-v0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--n-envs", type=int, default=1)
    p.add_argument("--gradient-steps", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--gamma", type=float, default=0.95)
    p.add_argument("--tau", type=float, default=0.005)
    p.add_argument("--ent", default="auto")
    p.add_argument("--net", type=int, nargs="+", default=[256, 256])
    p.add_argument("--n-critics", type=int, default=2)
    p.add_argument("--her-k", type=int, default=4)
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--normalize", action="store_true")
    p.add_argument("--tqc", action="store_true", help="sb3-contrib TQC instead of SAC")
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--eval-episodes", type=int, default=30)
    p.add_argument("--stop-at", type=float, default=0.95)
    p.add_argument("--out", type=Path, default=Path("benchmarks/learning/results/state-search"))
    args = p.parse_args()
    th.set_num_threads(1)
    load_start = os.getloadavg()
    venv: Any = DummyVecEnv([lambda: make(args.env) for _ in range(args.n_envs)])
    vec_norm = None
    if args.normalize:
        keys = [k for k in venv.observation_space.spaces if k != "achieved_goal"] + ["achieved_goal"]
        venv = vec_norm = VecNormalize(venv, norm_obs=True, norm_reward=False, norm_obs_keys=keys)
    kwargs: dict[str, Any] = dict(
        learning_rate=args.lr,
        batch_size=args.batch,
        gamma=args.gamma,
        tau=args.tau,
        ent_coef=args.ent if args.ent.startswith("auto") else float(args.ent),
        gradient_steps=args.gradient_steps,
        learning_starts=args.learning_starts,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=args.her_k, goal_selection_strategy="future"),
        policy_kwargs=dict(net_arch=args.net, n_critics=args.n_critics),
        buffer_size=1_000_000,
        seed=args.seed,
        verbose=0,
    )
    if args.tqc:
        from sb3_contrib import TQC

        model: Any = TQC("MultiInputPolicy", venv, **kwargs)
    else:
        model = SAC("MultiInputPolicy", venv, **kwargs)
    curve = Curve(args.env, args.eval_every, args.eval_episodes, vec_norm, args.stop_at)
    start = time.perf_counter()
    model.learn(args.steps, callback=curve)
    record = {
        "name": args.name,
        "args": vars(args) | {"out": str(args.out)},
        "curve": curve.rows,
        "first_90": next((r for r in curve.rows if r["eval_success"] >= 0.9), None),
        "wall_seconds": time.perf_counter() - start,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": th.get_num_threads(),
            "load_average_at_start": load_start,
            "load_average_at_end": os.getloadavg(),
        },
        "command": shlex.join([sys.executable, *sys.argv]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}_seed{args.seed}.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
