"""A CI-sized learning check: DrQv2SAC + HER learns pixel reaching, beyond a random policy.

The task is ``pixelrl/PointReach-v0`` at 16 x 16 pixels in strict mode: the agent's position is
only in the image (proprioception is empty, ``achieved_goal`` never reaches the networks), so a
policy that beats random here has read the agent's position from pixels. Random and trained
policies are evaluated on the same episode seeds in the same test.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import pixelrl  # noqa: F401  (registers the envs and the policy name)
from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer
from pixelrl.envs import POINT_REACH_PROPRIO_INDICES
from pixelrl.wrappers import PixelObservationWrapper

IMAGE_SIZE = 16
EPISODES = 50
TRAIN_STEPS = 8000  # seeds 0-3 reach 86-100% by 5,000-8,000 steps; random stays at 0%


def _make_env() -> PixelObservationWrapper:
    env = gym.make(
        "pixelrl/PointReach-v0",
        image_size=IMAGE_SIZE,
        step_size=0.2,
        distance_threshold=0.15,
        max_episode_steps=20,
    )
    return PixelObservationWrapper(
        env,
        image_size=IMAGE_SIZE,
        frame_stack=1,
        proprio_indices=POINT_REACH_PROPRIO_INDICES,  # velocity only: the position is in the image
        goal_mode="strict",
    )


def _success_rate(env: gym.Env[Any, Any], act: Any, seed: int) -> float:
    successes = 0
    for episode in range(EPISODES):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        info: dict[str, Any] = {}
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs))
            done = terminated or truncated
        successes += int(info["is_success"])
    return successes / EPISODES


@pytest.mark.slow
def test_drqv2_sac_learns_pixel_reaching_beyond_random() -> None:
    env = _make_env()

    env.action_space.seed(0)
    random_rate = _success_rate(env, lambda _obs: env.action_space.sample(), seed=1000)

    model = DrQv2SAC(
        "DrQv2SACPolicy",
        DummyVecEnv([_make_env] * 4),
        learning_rate=1e-3,
        batch_size=64,
        gamma=0.9,
        ent_coef=0.05,
        learning_starts=400,
        buffer_size=20_000,
        replay_buffer_class=CompactHerReplayBuffer,
        seed=0,
        policy_kwargs={
            "net_arch": [64, 64],
            "features_extractor_kwargs": {"num_filters": 16, "exclude_keys": env.network_exclude_keys},
        },
    )
    model.learn(TRAIN_STEPS)
    trained_rate = _success_rate(env, lambda obs: model.predict(obs, deterministic=True)[0], seed=1000)

    assert random_rate <= 0.1, f"random policy succeeded {random_rate:.0%}: the task is too easy to tell"
    assert trained_rate >= random_rate + 0.5, f"trained {trained_rate:.0%} vs random {random_rate:.0%}"
