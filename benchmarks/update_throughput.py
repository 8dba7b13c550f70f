"""Gradient updates per second of DrQv2SAC vs SB3's SAC on the chapter's Fetch observation space.

No rendering: a fake goal env declares the chapter's observation space (pixels 12x84x84 uint8,
proprioception 10, goals 3 + 3) and one replay buffer, filled with random frames and vectors,
is shared by every model. Each round times ``model.train(gradient_steps=N, batch_size=B)``
for every configuration, in a rotating order so that drift on a shared machine hits all alike.

    python benchmarks/update_throughput.py            # full: batch 256, 2 threads
    python benchmarks/update_throughput.py --quick    # sanity check: batch 16, one round
    python benchmarks/update_throughput.py --device cuda --steps 20 --autocast bf16

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import DrQDictReplayBuffer
from pixelrl.encoders import ManipulationExtractor

# The chapter's hyperparameters; buffer_size=1 because every model samples from one shared buffer.
HYPERPARAMETERS = dict(learning_rate=1e-4, gamma=0.95, tau=0.005, ent_coef=0.05)
CHAPTER = dict(buffer_size=1, policy_kwargs={"net_arch": [256, 256]}, **HYPERPARAMETERS)


class FakeFetchEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """The chapter's FetchPush pixel observation space, with random observations (no MuJoCo)."""

    def __init__(self, image_size: int = 84, frame_stack: int = 4) -> None:
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, (3 * frame_stack, image_size, image_size), np.uint8),
                "proprioception": spaces.Box(-np.inf, np.inf, (10,), np.float64),
                "achieved_goal": spaces.Box(-np.inf, np.inf, (3,), np.float64),
                "desired_goal": spaces.Box(-np.inf, np.inf, (3,), np.float64),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), -1.0, False, False, {}

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> Any:
        return -(np.linalg.norm(np.asarray(achieved_goal) - desired_goal, axis=-1) > 0.05).astype(np.float32)


def filled_buffer(env: FakeFetchEnv, size: int, augment: bool, seed: int, device: torch.device) -> DictReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer_class = DrQDictReplayBuffer if augment else DictReplayBuffer
    buffer = buffer_class(size, env.observation_space, env.action_space, device=device, n_envs=1)

    def obs() -> dict[str, np.ndarray]:
        return {
            key: rng.integers(0, 256, (1, *space.shape), dtype=np.uint8)
            if space.dtype == np.uint8
            else rng.normal(size=(1, *space.shape))
            for key, space in env.observation_space.spaces.items()
        }

    for _ in range(size):
        action = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        buffer.add(obs(), obs(), action, -np.ones(1), np.zeros(1), [{}])
    return buffer


def configurations(device: torch.device) -> dict[str, Callable[[FakeFetchEnv], OffPolicyAlgorithm]]:
    chapter: dict[str, Any] = {**CHAPTER, "device": device}

    def drqv2sac(target_encoder: str) -> Callable[[FakeFetchEnv], OffPolicyAlgorithm]:
        return lambda env: DrQv2SAC("DrQv2SACPolicy", env, target_encoder=target_encoder, **chapter)

    def sac_separate(env: FakeFetchEnv) -> OffPolicyAlgorithm:
        policy_kwargs = {"net_arch": [256, 256], "features_extractor_class": ManipulationExtractor}
        return SAC("MultiInputPolicy", env, **{**chapter, "policy_kwargs": policy_kwargs})

    return {
        "DrQv2SAC(target_encoder='separate')": drqv2sac("separate"),
        "DrQv2SAC(target_encoder='online')": drqv2sac("online"),
        "SAC + DrQv2SACPolicy": lambda env: SAC("DrQv2SACPolicy", env, **chapter),
        "SAC + MultiInputPolicy (separate ManipulationExtractors)": sac_separate,
    }


@contextmanager
def precision(device: torch.device, autocast: str) -> Iterator[None]:
    """bf16 autocast around a whole ``train()`` call (bf16 needs no loss scaling), or nothing."""
    context = torch.autocast(device.type, dtype=torch.bfloat16) if autocast == "bf16" else nullcontext()
    with context:
        yield


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_encoder_passes(model: OffPolicyAlgorithm, batch_size: int) -> int:
    encoders = {id(m): m for m in model.policy.modules() if isinstance(m, ManipulationExtractor)}
    calls = [0]
    handles = [m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for m in encoders.values()]
    model.train(gradient_steps=1, batch_size=batch_size)
    for handle in handles:
        handle.remove()
    return calls[0]


def encoder_micro(batch_size: int, image_size: int, device: torch.device, autocast: str) -> dict[str, float]:
    """Milliseconds of one ManipulationExtractor pass, contiguous (NCHW) vs channels_last."""
    space = FakeFetchEnv(image_size).observation_space
    out: dict[str, float] = {}
    repeats = 4 if device.type == "cpu" else 20
    for layout in ("contiguous", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        encoder = ManipulationExtractor(space).to(device=device, memory_format=fmt)  # type: ignore[call-overload]
        obs = {key: torch.rand(batch_size, *sub.shape, device=device) for key, sub in space.spaces.items()}
        obs["pixels"] = obs["pixels"].contiguous(memory_format=fmt)
        for label, grad in (("forward_ms", False), ("forward_backward_ms", True)):
            times = []
            for _ in range(repeats):
                synchronize(device)
                start = time.perf_counter()
                with torch.set_grad_enabled(grad), precision(device, autocast):
                    features = encoder(obs)
                    if grad:
                        features.float().square().mean().backward()
                synchronize(device)
                times.append(time.perf_counter() - start)
            out[f"{layout}_{label}"] = round(1000 * statistics.median(times[1:]), 1)
    return out


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),  # noqa: SIM115
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 1 round of 1 step: a sanity check")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="gradient steps per timed train() call")
    parser.add_argument("--buffer-size", type=int, default=1000)
    parser.add_argument("--augment", action="store_true", help="sample through DrQ's random shift (pad 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device of the models and the buffer's samples")
    parser.add_argument("--autocast", choices=["none", "bf16"], default="none", help="bf16 autocast around train()")
    parser.add_argument(
        "--channels-last", action="store_true", help="policy.to(memory_format=torch.channels_last) for every model"
    )
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.rounds, args.steps, args.buffer_size = 16, 1, 1, 64
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    load_before = os.getloadavg()

    env = FakeFetchEnv(args.image_size)
    buffer = filled_buffer(env, args.buffer_size, args.augment, args.seed, device)
    models: dict[str, OffPolicyAlgorithm] = {}
    passes: dict[str, int] = {}
    for name, build in configurations(device).items():
        model = build(env)
        if args.channels_last:
            model.policy.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        model.replay_buffer = buffer  # one shared buffer: identical sampling cost, 1/4 of the memory
        model.set_logger(configure(folder=None, format_strings=[]))
        passes[name] = count_encoder_passes(model, args.batch_size)  # also the warm-up step
        models[name] = model

    seconds: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            synchronize(device)
            start = time.perf_counter()
            with precision(device, args.autocast):
                models[name].train(gradient_steps=args.steps, batch_size=args.batch_size)
            synchronize(device)
            seconds[name].append(time.perf_counter() - start)

    sample_seconds = []
    for _ in range(max(5, args.rounds)):
        synchronize(device)
        start = time.perf_counter()
        buffer.sample(args.batch_size)
        synchronize(device)
        sample_seconds.append(time.perf_counter() - start)

    rates = {name: [args.steps / s for s in times] for name, times in seconds.items()}
    baseline = statistics.median(rates["SAC + DrQv2SACPolicy"])
    results = {
        name: {
            "updates_per_s_median": round(statistics.median(r), 3),
            "updates_per_s_per_round": [round(x, 3) for x in r],
            "ms_per_update_median": round(1000 / statistics.median(r), 1),
            "speedup_vs_sac_drqv2policy": round(statistics.median(r) / baseline, 3),
            "encoder_passes_per_update": passes[name],
        }
        for name, r in rates.items()
    }
    report = {
        "benchmark": "update_throughput",
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "batch_size": args.batch_size,
            "observation": {"pixels": [12, args.image_size, args.image_size], "proprioception": 10, "goals": 3 + 3},
            "threads": args.threads,
            "device": str(device),
            "autocast": args.autocast,
            "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE"),
            "rounds": args.rounds,
            "gradient_steps_per_call": args.steps,
            "buffer": "DrQDictReplayBuffer(pad=4)" if args.augment else "DictReplayBuffer",
            "conv_weights": "channels_last" if args.channels_last else "contiguous (NCHW)",
            "hyperparameters": HYPERPARAMETERS | {"net_arch": [256, 256]},
        },
        "results": results,
        "replay_sample_ms_median": round(1000 * statistics.median(sample_seconds), 1),
        "encoder_micro_ms": encoder_micro(args.batch_size, args.image_size, device, args.autocast),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
