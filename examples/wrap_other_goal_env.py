"""Put PixelObservationWrapper on another goal env: gymnasium-robotics' PointMaze.

Any goal env works if it renders RGB arrays and has achieved_goal / desired_goal: pick the
entries of its state vector the agent senses itself as proprioception, and let the camera
show the rest.

    python examples/wrap_other_goal_env.py --steps 300
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.env_checker import check_env

import pixelrl  # noqa: F401  (registers "DrQv2SACPolicy")
from pixelrl.buffers import HerDrQDictReplayBuffer
from pixelrl.wrappers import PixelObservationWrapper, register_fetch_envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=48)
    args = parser.parse_args()

    register_fetch_envs()  # registers every gymnasium-robotics env, PointMaze included
    size = args.image_size
    env = gym.make("PointMaze_UMaze-v3", render_mode="rgb_array", width=size, height=size, max_episode_steps=100)
    # PointMaze's observation vector is [x, y, vx, vy]; the ball's velocity is its "proprioception",
    # its position must be read from the image.
    env = PixelObservationWrapper(env, image_size=size, frame_stack=2, proprio_indices=[2, 3], goal_mode="strict")
    check_env(env)
    print({key: space.shape for key, space in env.observation_space.spaces.items()})

    model = SAC(
        "DrQv2SACPolicy",
        env,
        batch_size=32,
        learning_starts=150,
        buffer_size=5_000,
        replay_buffer_class=HerDrQDictReplayBuffer,
        replay_buffer_kwargs={"pad": 2},  # DrQ shifts of up to 2 pixels
        policy_kwargs={"features_extractor_kwargs": {"exclude_keys": env.network_exclude_keys, "num_filters": 16}},
        seed=0,
    )
    model.learn(args.steps)
    print(f"trained {model.num_timesteps} steps on pixels of PointMaze_UMaze-v3")
    env.close()


if __name__ == "__main__":
    main()
