"""Memory and sampling speed of CompactHerReplayBuffer against SB3's HerReplayBuffer.

Prints one JSON object: machine info, the command, and

- ``bytes_per_transition``: full-capacity bytes per transition for the chapter's observation
  (pixels (12, 84, 84) uint8, proprioception (10,), achieved/desired goals (3,) float64,
  4-D float32 action). Ours is ``estimate_nbytes`` (== the allocated ``nbytes``); SB3's is the
  sum of its allocated arrays' ``nbytes`` (a small buffer, divided by its capacity).
- ``sample``: median ``sample(256)`` latency of both buffers filled with the same transitions
  (random 84x84 frames, 4 envs, 50-step episodes, n_sampled_goal=4), measured alternately.
- ``rss``: resident-memory growth of a fresh process that allocates a buffer and writes every
  slot, against the buffer's reported ``nbytes``.

Usage:
    python benchmarks/buffer_memory.py            # 20,000 transitions, 50 samples each
    python benchmarks/buffer_memory.py --quick    # 2,000 transitions, 10 samples: a sanity run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import psutil
import stable_baselines3
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.her import HerReplayBuffer

from pixelrl.buffers import CompactHerReplayBuffer

FRAME_STACK, SIZE, EPISODE_LENGTH, N_ENVS, BATCH = 4, 84, 50, 4, 256
SB3_ARRAYS = ("actions", "rewards", "dones", "timeouts", "ep_start", "ep_length")


def chapter_space() -> spaces.Dict:
    return spaces.Dict(
        {
            "pixels": spaces.Box(0, 255, (3 * FRAME_STACK, SIZE, SIZE), np.uint8),
            "proprioception": spaces.Box(-np.inf, np.inf, (10,), np.float64),
            "achieved_goal": spaces.Box(-np.inf, np.inf, (3,), np.float64),
            "desired_goal": spaces.Box(-np.inf, np.inf, (3,), np.float64),
        }
    )


ACTIONS = spaces.Box(-1, 1, (4,), np.float32)


class FakeFetchEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Carries the chapter's spaces and Fetch's compute_reward; transitions are synthesised."""

    def __init__(self) -> None:
        self.observation_space = chapter_space()
        self.action_space = ACTIONS

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray):
        return self.observation_space.sample(), -1.0, False, False, {}

    @staticmethod
    def compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        return -(np.linalg.norm(achieved_goal - desired_goal, axis=-1) > 0.05).astype(np.float32)


def transitions(n_steps: int, seed: int = 0) -> Iterator[tuple[Any, ...]]:
    """What SAC passes to ``add``: stacks built as PixelObservationWrapper builds them, terminal obs on done."""
    rng = np.random.default_rng(seed)

    def frames(n: int) -> np.ndarray:
        return rng.integers(0, 256, (n, 3, SIZE, SIZE), dtype=np.uint8)

    def vectors(n: int) -> dict[str, np.ndarray]:
        return {"proprioception": rng.normal(size=(n, 10)), "achieved_goal": rng.normal(size=(n, 3))}

    stacks = np.tile(frames(N_ENVS), (1, FRAME_STACK, 1, 1))
    state = {**vectors(N_ENVS), "desired_goal": rng.normal(size=(N_ENVS, 3))}
    steps = np.zeros(N_ENVS, dtype=np.int64)
    lengths = EPISODE_LENGTH - np.arange(N_ENVS)  # envs finish at different times
    for _ in range(n_steps):
        obs = {"pixels": stacks, **{k: v.copy() for k, v in state.items()}}
        next_pixels = np.concatenate((stacks[:, 3:], frames(N_ENVS)), axis=1)
        next_obs = {"pixels": next_pixels, **vectors(N_ENVS), "desired_goal": state["desired_goal"].copy()}
        steps += 1
        dones = steps >= lengths
        infos = [{"TimeLimit.truncated": bool(done)} for done in dones]
        yield obs, next_obs, rng.uniform(-1, 1, (N_ENVS, 4)).astype(np.float32), np.full(N_ENVS, -1.0), dones, infos
        stacks = next_pixels.copy()
        state = {k: v.copy() for k, v in next_obs.items() if k != "pixels"}
        for env_idx in np.flatnonzero(dones):
            stacks[env_idx] = np.tile(frames(1)[0], (FRAME_STACK, 1, 1))
            state["desired_goal"][env_idx] = rng.normal(size=3)
            steps[env_idx] = 0


def sb3_nbytes(buffer: HerReplayBuffer) -> int:
    arrays = [*buffer.observations.values(), *buffer.next_observations.values()]
    arrays += [getattr(buffer, name) for name in SB3_ARRAYS]
    return sum(a.nbytes for a in arrays)


def bytes_per_transition(vec_env: DummyVecEnv) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n_envs in (1, N_ENVS):
        ours = CompactHerReplayBuffer.estimate_nbytes(500_000, chapter_space(), ACTIONS, n_envs=n_envs) / 500_000
        small = HerReplayBuffer(1000 * n_envs, chapter_space(), ACTIONS, env=vec_env, n_envs=n_envs)
        theirs = sb3_nbytes(small) / (1000 * n_envs)
        out[f"n_envs={n_envs}"] = {
            "compact": round(ours, 1),
            "sb3_her": round(theirs, 1),
            "sb3_over_compact": round(theirs / ours, 2),
            "compact_500k_gb": round(ours * 5e5 / 1e9, 2),
            "sb3_her_500k_gb": round(theirs * 5e5 / 1e9, 2),
            "sb3_info_dict_pointers_per_transition": small.infos.nbytes / (1000 * n_envs),
        }
    out["floor_one_frame"] = 3 * SIZE * SIZE
    return out


def sample_latency(vec_env: DummyVecEnv, capacity: int, repeats: int) -> dict[str, Any]:
    ours = CompactHerReplayBuffer(capacity, chapter_space(), ACTIONS, vec_env, n_envs=N_ENVS, n_sampled_goal=4)
    theirs = HerReplayBuffer(capacity, chapter_space(), ACTIONS, env=vec_env, n_envs=N_ENVS, n_sampled_goal=4)
    add_time = {"compact": 0.0, "sb3_her": 0.0}
    for obs, next_obs, actions, rewards, dones, infos in transitions(capacity // N_ENVS):
        for name, buffer in (("compact", ours), ("sb3_her", theirs)):
            start = time.perf_counter()
            buffer.add(obs, next_obs, actions, rewards, dones, infos)
            add_time[name] += time.perf_counter() - start
    times: dict[str, list[float]] = {"compact": [], "sb3_her": []}
    for _ in range(repeats):
        for name, buffer in (("compact", ours), ("sb3_her", theirs)):
            start = time.perf_counter()
            buffer.sample(BATCH)
            times[name].append(time.perf_counter() - start)
    median = {name: float(np.median(t)) for name, t in times.items()}
    return {
        "transitions": capacity,
        "repeats": repeats,
        "median_ms": {name: round(1e3 * m, 2) for name, m in median.items()},
        "p90_ms": {name: round(1e3 * float(np.percentile(t, 90)), 2) for name, t in times.items()},
        "compact_over_sb3": round(median["compact"] / median["sb3_her"], 3),
        "add_us_per_vec_step": {name: round(1e6 * t / (capacity // N_ENVS), 1) for name, t in add_time.items()},
    }


def rss_child(capacity: int) -> None:
    """In a fresh process: RSS before allocating, and after writing every slot of the buffer."""
    vec_env = DummyVecEnv([FakeFetchEnv for _ in range(N_ENVS)])
    generator = transitions(capacity // N_ENVS * 5 // 4)  # 1.25x capacity: every frame slot is written
    first = next(generator)
    process = psutil.Process()
    before = process.memory_info().rss
    buffer = CompactHerReplayBuffer(capacity, chapter_space(), ACTIONS, vec_env, n_envs=N_ENVS)
    buffer.add(*first)
    for step in generator:
        buffer.add(*step)
    after = process.memory_info().rss
    print(
        json.dumps(
            {
                "before": before,
                "after": after,
                "nbytes": buffer.nbytes,
                "frames_written": int(buffer.frame_ring.written.sum()),
                "frame_slots": int(buffer.frames.shape[0] * N_ENVS),
            }
        )
    )


def rss(capacity: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(capacity)], capture_output=True, text=True, check=True
    )
    child = json.loads(result.stdout.strip().splitlines()[-1])
    growth = child["after"] - child["before"]
    return {
        "transitions": capacity,
        "reported_nbytes": child["nbytes"],
        "rss_growth_bytes": growth,
        "rss_growth_over_nbytes": round(growth / child["nbytes"], 3),
        "frames_written": child["frames_written"],
        "frame_slots": child["frame_slots"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 transitions and 10 samples: a sanity run")
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return
    capacity, repeats = (2_000, 10) if args.quick else (20_000, 50)
    load_before = os.getloadavg()
    vec_env = DummyVecEnv([FakeFetchEnv for _ in range(N_ENVS)])
    report = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpu": next(
                (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),  # noqa: SIM115
                platform.processor(),
            ),
            "cpu_count": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "python": platform.python_version(),
            "torch": th.__version__,
            "torch_threads": th.get_num_threads(),
            "numpy": np.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "loadavg_before": [round(x, 2) for x in load_before],
        },
        "bytes_per_transition": bytes_per_transition(vec_env),
        "sample": sample_latency(vec_env, capacity, repeats),
        "rss": rss(capacity),
    }
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
