"""Write ``compact_v1.pkl``: buffers pickled by the version-1 code, and what they returned then.

The file pins the pickle format that ``CompactHerReplayBuffer`` wrote before its state had a
``format_version`` (version 1: a ``_saved_arrays`` dict keyed ``"frames"``,
``"observations/<key>"``, ...), and the pre-composition pickles of ``HerDrQDictReplayBuffer``
(``augmentation`` and ``image_keys`` as attributes). ``tests/buffers/test_compact_format.py``
loads it with the current code and compares with the recorded batches.

It only makes sense against the version-1 code (commit 335f335), e.g.::

    git worktree add /tmp/v1 335f335
    PYTHONPATH=/tmp/v1/src:. python tests/buffers/data/make_compact_v1.py
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from tests.buffers.test_compact import coded_vec_env, drive

from pixelrl.buffers import CompactHerReplayBuffer, HerDrQDictReplayBuffer

OUT = Path(__file__).with_name("compact_v1.pkl")
BATCH = 16

CASES: dict[str, dict[str, Any]] = {
    # Full and wrapped, info dicts stored, host frames.
    "compact_wrapped": dict(
        cls="compact", capacity=24, n_envs=2, lengths=[[3, 5], [4]], terminates=[True, False], frame_stack=2,
        steps=30, kwargs=dict(copy_info_dict=True, n_sampled_goal=2, min_episode_length=2),
    ),
    # Partly filled, frames in a torch tensor, augmentation on.
    "compact_partial": dict(
        cls="compact", capacity=60, n_envs=2, lengths=[[4, 2], [3]], terminates=[False], frame_stack=3,
        steps=11, kwargs=dict(frames_device="cpu", pad=2, goal_selection_strategy="episode"),
    ),
    "her_drq": dict(
        cls="her_drq", capacity=24, n_envs=2, lengths=[[3, 5], [4]], terminates=[True, False], frame_stack=2,
        steps=30, kwargs=dict(pad=2, n_sampled_goal=2),
    ),
}  # fmt: skip


def batch_arrays(batch: Any) -> dict[str, Any]:
    return {
        "observations": {k: v.cpu().numpy() for k, v in batch.observations.items()},
        "next_observations": {k: v.cpu().numpy() for k, v in batch.next_observations.items()},
        "actions": batch.actions.cpu().numpy(),
        "rewards": batch.rewards.cpu().numpy(),
        "dones": batch.dones.cpu().numpy(),
    }


def main() -> None:
    fixture: dict[str, Any] = {}
    for name, case in CASES.items():
        vec_env = coded_vec_env(case["n_envs"], case["lengths"], case["terminates"], case["frame_stack"])
        cls = CompactHerReplayBuffer if case["cls"] == "compact" else HerDrQDictReplayBuffer
        buffer = cls(
            case["capacity"], vec_env.observation_space, vec_env.action_space, vec_env, n_envs=case["n_envs"],
            **case["kwargs"],
        )  # fmt: skip
        drive(vec_env, [buffer], case["steps"])
        blob = pickle.dumps(buffer)
        state = buffer.__getstate__()
        np.random.seed(0)
        th.manual_seed(0)
        expected: dict[str, Any] = {
            "case": {k: v for k, v in case.items() if k != "cls"},
            "state_keys": sorted(state),
            "saved_arrays": sorted(state.get("_saved_arrays", {})),
            "pos": buffer.pos,
            "full": buffer.full,
            "ep_length": buffer.ep_length.copy(),
            "ep_start": buffer.ep_start.copy(),
            "dones": buffer.dones.copy(),
            "timeouts": buffer.timeouts.copy(),
            "current_ep_start": buffer._current_ep_start.copy(),
            "sample": batch_arrays(buffer.sample(BATCH)),
        }
        if case["cls"] == "compact":
            batch_idx, env_idx = np.nonzero(buffer.ep_length > 0)
            obs, next_obs = buffer.get_observations(batch_idx, env_idx)
            expected["valid"] = (batch_idx, env_idx)
            expected["get_observations"] = (obs, next_obs)
            expected["nbytes"] = buffer.nbytes
            expected["frames"] = np.asarray(buffer.frames).copy()
        fixture[name] = {"pickle": blob, "expected": expected}
    OUT.write_bytes(pickle.dumps(fixture, protocol=4))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
