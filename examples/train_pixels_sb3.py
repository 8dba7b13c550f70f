"""Train a Fetch task from pixels with plain Stable-Baselines3 and pixelrl's parts.

Nothing here is private API: the env factory, the policy alias, the fused SAC update and the
compact HER buffer are all public. Defaults are a short CPU run; the chapter's full run is
``--steps 5000000 --batch-size 256 --buffer-size 500000 --n-sampled-goal 8`` on a GPU.

    python examples/train_pixels_sb3.py --env FetchPush-v4 --steps 2000 --out push_pixels
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stable_baselines3.common.vec_env import DummyVecEnv

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer
from pixelrl.wrappers import make_fetch_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="FetchPush-v4")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--buffer-size", type=int, default=20_000)
    parser.add_argument("--n-sampled-goal", type=int, default=4)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("push_pixels"))
    args = parser.parse_args()

    def make_env():
        # goal_mode="strict": achieved_goal (the puck's position) stays in the observation for
        # HER, but the features extractor drops it, so the networks must find the puck in the image.
        return make_fetch_env(args.env, image_size=args.image_size, goal_mode="strict")

    vec_env = DummyVecEnv([make_env for _ in range(args.n_envs)])
    model = DrQv2SAC(
        "DrQv2SACPolicy",
        vec_env,
        learning_rate=1e-4,
        batch_size=args.batch_size,
        gamma=0.95,
        tau=0.005,
        ent_coef=0.05,
        learning_starts=args.learning_starts,
        buffer_size=args.buffer_size,
        replay_buffer_class=CompactHerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": args.n_sampled_goal, "goal_selection_strategy": "future"},
        policy_kwargs={"features_extractor_kwargs": {"exclude_keys": ["achieved_goal"], "channels_last": True}},
        seed=0,
    )
    model.learn(args.steps)
    model.save(args.out)

    # SB3 rebuilds the HER buffer on load, which needs the env.
    loaded = DrQv2SAC.load(args.out, env=vec_env)
    obs = vec_env.reset()
    action, _ = loaded.predict(obs, deterministic=True)
    print(f"trained {model.num_timesteps} steps, saved {args.out}.zip; first action {action[0].round(3).tolist()}")
    vec_env.close()


if __name__ == "__main__":
    main()
