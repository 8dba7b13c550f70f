"""Run the pretrained FetchReach-from-pixels policy offline: no training, a CPU is enough.

    python examples/pretrained_fetchreach.py --episodes 20

Loads ``examples/pretrained/fetchreach-pixels.zip`` (with its ``.meta.json`` and the observation
statistics in ``.vecnormalize.pkl``), rebuilds the env it was trained on from the metadata
(FetchReach-v4, strict goals: the gripper's position reaches the networks only through the 32 x 32
image; goal marker hidden) and plays deterministic episodes, then the same episodes with random
actions, and prints both success rates. ``pixelrl-train eval`` and ``render-frame --checkpoint``
take the same file; docs/tutorial.md says how it was trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from _common import env_config, load_model

from pixelrl.train.results.summary import networks_receive
from pixelrl.train.run.factory import make_env

PRETRAINED = Path(__file__).parent / "pretrained" / "fetchreach-pixels.zip"


def success_rate(env: Any, act: Any, episodes: int, seed: int) -> float:
    """Fraction of ``episodes`` (seeded ``seed``, ``seed + 1``, ...) that end in success."""
    successes = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, info = False, {}
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs))
            done = terminated or truncated
        successes += bool(info.get("is_success", False))
    return successes / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=PRETRAINED, help="a pixelrl-train checkpoint zip")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")
    args = parser.parse_args()

    config = env_config(argparse.Namespace(model=args.model, seed=args.seed))
    model = load_model(args.model, config)
    env = make_env(config)
    print(f"{args.model.name} ({config.env}, {model.num_timesteps} env steps)")
    print(f"the networks receive {networks_receive(config)}")

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        batch = {key: value[None] for key, value in obs.items()}
        action, _ = model.predict(batch, deterministic=True)
        return np.asarray(action[0])

    env.action_space.seed(args.seed)
    trained = success_rate(env, policy, args.episodes, args.seed)
    random = success_rate(env, lambda _obs: env.action_space.sample(), args.episodes, args.seed)
    print(f"pretrained policy: success {trained:.0%} over {args.episodes} episodes; random actions: {random:.0%}")
    env.close()


if __name__ == "__main__":
    main()
