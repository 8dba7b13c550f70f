"""Evaluate a model and record a GIF of each episode: the scene beside what the agent sees.

    python examples/evaluate_and_record.py push_pixels.zip --episodes 3 --out episode.gif

The left panel renders the same MuJoCo state with a second, larger camera (Fetch tasks); the
right panel is the newest frame of the agent's observation, each pixel enlarged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import add_env_arguments, env_config, load_model
from PIL import Image

from pixelrl.train.run.factory import make_env
from pixelrl.wrappers import FETCH_CAMERAS

SCENE = 240


def scene_renderer(env, camera: str):
    """A larger MuJoCo renderer on the env's own model and data, with the env's camera settings."""
    import mujoco

    base = env.unwrapped
    if not hasattr(base, "model"):
        return None
    # The model's offscreen framebuffer was sized for the agent's small frames; widen it (the
    # env's own renderer already holds its context, so it is unaffected).
    visual = base.model.vis.global_
    visual.offwidth, visual.offheight = max(visual.offwidth, SCENE), max(visual.offheight, SCENE)
    renderer = mujoco.Renderer(base.model, SCENE, SCENE)
    cam = mujoco.MjvCamera()
    settings = FETCH_CAMERAS[camera]
    cam.distance, cam.azimuth, cam.elevation = settings["distance"], settings["azimuth"], settings["elevation"]
    cam.lookat[:] = settings["lookat"]

    def render() -> np.ndarray:
        renderer.update_scene(base.data, camera=cam)
        return renderer.render()

    return render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_env_arguments(parser)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("episode.gif"))
    args = parser.parse_args()

    config = env_config(args)
    model = load_model(args.model, config)
    env = make_env(config, monitor=False)
    scene = scene_renderer(env, config.camera)
    frames, successes = [], 0
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + episode)
        done, info = False, {}
        while not done:
            agent_view = obs["pixels"][-3:].transpose(1, 2, 0)
            scale = SCENE // agent_view.shape[0]
            agent_big = agent_view.repeat(scale, axis=0).repeat(scale, axis=1)
            left = scene() if scene is not None else agent_big
            pad = np.zeros((SCENE, SCENE, 3), np.uint8)
            pad[: agent_big.shape[0], : agent_big.shape[1]] = agent_big
            frames.append(Image.fromarray(np.concatenate([left, pad], axis=1)))
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes += bool(info.get("is_success", 0.0))
    frames[0].save(args.out, save_all=True, append_images=frames[1:], duration=80, loop=0)
    print(f"{successes}/{args.episodes} episodes succeeded; {len(frames)} frames -> {args.out}")
    env.close()


if __name__ == "__main__":
    main()
