"""Learning curves with periodic deterministic evaluation, for the learning-evidence study.

Runs one configuration (any ``pixelrl-train train`` flags) for several seeds and writes, per
seed, ``<out>/<name>/seed<N>.json`` (the curve: eval success, losses, encoder gradient norms
against env steps and training wall time; plus the machine and the exact command) and a PNG.
Evaluation time is excluded from the training wall time.

    python benchmarks/learning/run.py --name reach-critic --seeds 0 1 2 --budget-minutes 20 \
        -- --env pixelrl/PointReach-v0 --image-size 32 --goal-mode strict --threads 1

Extra options before ``--``: ``--frozen-encoder`` (a never-trained encoder: the control that
shows whether the encoder has to learn at all), ``--eval-every``, ``--eval-episodes``,
``--stop-at`` (stop a seed once eval success reaches it twice in a row).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from pixelrl.diagnostics import encoder_gradient_norms
from pixelrl.train.cli import parse_train_args
from pixelrl.train.config import TrainConfig
from pixelrl.train.run.evaluate import evaluate_policy_episodes
from pixelrl.train.run.factory import build_model, make_env, make_vec_env


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": th.__version__,
        "torch_threads": th.get_num_threads(),
    }


def freeze_encoder(model: Any) -> None:
    """Keep the encoder at its random initialisation: no optimizer holds it, no gradient reaches it."""
    encoder = model.policy.actor.features_extractor
    ids = {id(p) for p in encoder.parameters()}
    for p in encoder.parameters():
        p.requires_grad_(False)
    for opt in (model.policy.actor.optimizer, model.policy.critic.optimizer):
        for group in opt.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in ids]


class CurveCallback(BaseCallback):
    """Evaluate every ``every`` env steps; stop at the wall-time budget or a sustained success."""

    def __init__(self, config: TrainConfig, every: int, episodes: int, budget_s: float, stop_at: float | None):
        super().__init__()
        self.config, self.every, self.episodes = config, every, episodes
        self.budget_s, self.stop_at = budget_s, stop_at
        self.rows: list[dict[str, Any]] = []
        self._eval_env = make_env(config, monitor=False)
        self._next = every
        self._eval_seconds = 0.0
        self._start = time.perf_counter()
        self._hits = 0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()

    def train_seconds(self) -> float:
        return time.perf_counter() - self._start - self._eval_seconds

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return self.train_seconds() < self.budget_s
        self._next += self.every
        t0 = time.perf_counter()
        result = evaluate_policy_episodes(
            self.model, self._eval_env, self.episodes, seed=10_000 + 1000 * self.config.seed + len(self.rows)
        )
        row: dict[str, Any] = {
            "step": self.num_timesteps,
            "minutes": self.train_seconds() / 60,
            "eval_success": result["success_rate"],
            "eval_final_distance": result["mean_final_goal_distance"],
            "rollout_success": float(np.mean(self.model.ep_success_buffer))
            if len(self.model.ep_success_buffer)
            else None,
        }
        values = self.model.logger.name_to_value
        for key in ("train/critic_loss", "train/actor_loss", "train/ent_coef"):
            if key in values:
                row[key.split("/")[1]] = float(values[key])
        if not self.config.full_state and self.num_timesteps > self.model.learning_starts:
            try:
                batch = self.model.replay_buffer.sample(64)
                ent = getattr(self.model, "ent_coef_tensor", None)
                ent_coef = float(ent.item()) if ent is not None else float(th.exp(self.model.log_ent_coef).item())
                norms = encoder_gradient_norms(self.model.policy, batch, ent_coef=ent_coef, gamma=self.config.gamma)
                row["grad_norm_critic"], row["grad_norm_actor"] = norms["critic"], norms["actor"]
            except RuntimeError:
                pass
        self.rows.append(row)
        self._eval_seconds += time.perf_counter() - t0
        print(json.dumps(row), flush=True)
        if self.stop_at is not None:
            self._hits = self._hits + 1 if result["success_rate"] >= self.stop_at else 0
            if self._hits >= 2:
                return False
        return self.train_seconds() < self.budget_s

    def _on_training_end(self) -> None:
        self._eval_env.close()


def time_to(rows: list[dict[str, Any]], level: float) -> dict[str, float] | None:
    for row in rows:
        if row["eval_success"] >= level:
            return {"step": row["step"], "minutes": row["minutes"]}
    return None


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    minutes = [r["minutes"] for r in rows]
    axes[0].plot(minutes, [r["eval_success"] for r in rows], marker="o", ms=3)
    axes[0].set(xlabel="training minutes", ylabel="eval success", ylim=(-0.02, 1.02), title=title)
    for key, ax in (("critic_loss", axes[1]), ("actor_loss", axes[1])):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=key)
    axes[1].set(xlabel="env steps", ylabel="loss")
    axes[1].legend()
    for key in ("grad_norm_critic", "grad_norm_actor"):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            axes[2].semilogy(*zip(*pts, strict=True), label=key)
    axes[2].set(xlabel="env steps", ylabel="encoder gradient norm")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-minutes", type=float, default=20.0)
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--eval-episodes", type=int, default=30)
    parser.add_argument("--stop-at", type=float, default=None)
    parser.add_argument("--frozen-encoder", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/learning/results"))
    args = parser.parse_args(argv[:split])
    base = parse_train_args(argv[split + 1 :])
    base.validate()
    for seed in args.seeds:
        load_at_start = os.getloadavg()
        config = dataclasses.replace(
            base, seed=seed, eval_episodes=0, checkpoint_freq=0, progress=False, grad_norm_freq=0
        )
        if config.threads is not None:
            th.set_num_threads(config.threads)
        vec_env = make_vec_env(config)
        model = build_model(config, vec_env)
        if args.frozen_encoder:
            freeze_encoder(model)
        callback = CurveCallback(config, args.eval_every, args.eval_episodes, 60 * args.budget_minutes, args.stop_at)
        model.learn(config.total_steps, callback=callback, log_interval=1_000_000)
        vec_env.close()
        out = args.out / args.name
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "name": args.name,
            "seed": seed,
            "config": config.to_dict(),
            "frozen_encoder": args.frozen_encoder,
            "budget_minutes": args.budget_minutes,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "curve": callback.rows,
            "time_to_50": time_to(callback.rows, 0.5),
            "time_to_80": time_to(callback.rows, 0.8),
            "final_success": callback.rows[-1]["eval_success"] if callback.rows else None,
            "machine": {**machine(), "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()},
            "command": shlex.join([sys.executable, *sys.argv]),
        }
        (out / f"seed{seed}.json").write_text(json.dumps(record, indent=1) + "\n")
        plot(callback.rows, out / f"seed{seed}.png", f"{args.name} seed {seed}")


if __name__ == "__main__":
    main()
