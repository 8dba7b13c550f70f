"""rl-zoo3 hyperparameters that train Fetch tasks from pixels with pixelrl's parts.

rl-zoo3 executes this file and reads ``hyperparams``; env ids map to SAC settings. The env is
created by rl-zoo3 from ``env_kwargs`` (MuJoCo renders natively at 84x84) and wrapped by
``PixelObservationWrapper``; the policy is pixelrl's ``DrQv2SACPolicy`` and the replay buffer
its compact HER buffer. From the repository root:

    python -m rl_zoo3.train --algo sac --env FetchReach-v4 --gym-packages gymnasium_robotics \\
        --conf-file examples/rl_zoo/pixelrl_fetch.py -n 20000

(``-n`` overrides ``n_timesteps``). rl-zoo3's own SAC runs SB3's update; pixelrl's faster
``DrQv2SAC`` is not an rl-zoo3 algorithm name.
"""

from __future__ import annotations

import pixelrl  # noqa: F401  (registers "DrQv2SACPolicy" with SAC and sets MUJOCO_GL on headless Linux)
from pixelrl.buffers import CompactHerReplayBuffer
from pixelrl.wrappers import fetch_proprio_indices


def pixel_fetch(env_id: str, n_timesteps: int) -> dict[str, object]:
    """The chapter's working configuration for one Fetch task, with CPU-sized batches."""
    return {
        "n_timesteps": n_timesteps,
        "policy": "DrQv2SACPolicy",
        "n_envs": 1,
        "env_kwargs": {"render_mode": "rgb_array", "width": 84, "height": 84},
        "env_wrapper": [
            {
                "pixelrl.wrappers.PixelObservationWrapper": {
                    "image_size": 84,
                    "frame_stack": 4,
                    "proprio_indices": list(fetch_proprio_indices(env_id, goal_mode="strict")),
                    "goal_mode": "strict",
                }
            }
        ],
        "learning_rate": 1e-4,
        "batch_size": 64,
        "buffer_size": 200_000,
        "learning_starts": 1000,
        "gamma": 0.95,
        "tau": 0.005,
        "ent_coef": 0.05,
        "replay_buffer_class": CompactHerReplayBuffer,
        "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        "policy_kwargs": {"features_extractor_kwargs": {"exclude_keys": ["achieved_goal"], "channels_last": True}},
    }


hyperparams = {
    "FetchReach-v4": pixel_fetch("FetchReach-v4", 200_000),
    "FetchPush-v4": pixel_fetch("FetchPush-v4", 5_000_000),
}
