"""Draw SpatialSoftmax keypoints over the frames the agent sees: where is the encoder looking?

    python examples/keypoints.py push_pixels.zip --steps 4 --out keypoints.png

Each coloured dot is one feature channel's expected (x, y) position, mapped from SpatialSoftmax's
[-1, 1] coordinates on the CNN feature map back onto the image. A trained encoder's keypoints
gather on the gripper and the object and follow them; an untrained one's sit near the centre.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _common import add_env_arguments, env_config, load_model
from PIL import Image, ImageDraw
from stable_baselines3.common.preprocessing import preprocess_obs

from pixelrl.train.run.factory import make_env

SCALE = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_env_arguments(parser)
    parser.add_argument("--steps", type=int, default=4, help="frames to show (one every 5 env steps)")
    parser.add_argument("--out", type=Path, default=Path("keypoints.png"))
    args = parser.parse_args()

    config = env_config(args)
    model = load_model(args.model, config)
    extractor = model.policy.actor.features_extractor
    env = make_env(config, monitor=False)
    obs, _ = env.reset(seed=args.seed)
    panels = []
    for panel in range(args.steps):
        batch = {key: torch.as_tensor(value[None]) for key, value in obs.items()}
        with torch.no_grad():
            points = extractor.keypoints(preprocess_obs(batch, model.observation_space))["pixels"][0]  # (C, 2)
        frame = obs["pixels"][-3:].transpose(1, 2, 0)
        height, width = frame.shape[:2]
        image = Image.fromarray(frame.repeat(SCALE, axis=0).repeat(SCALE, axis=1))
        draw = ImageDraw.Draw(image)
        colours = np.array([np.sin(i * 2.4 + k * 2.1) for i in range(len(points)) for k in range(3)]) * 127 + 128
        for i, (x, y) in enumerate(points.numpy()):
            cx, cy = (x + 1) / 2 * width * SCALE, (y + 1) / 2 * height * SCALE
            colour = tuple(int(c) for c in colours[3 * i : 3 * i + 3])
            draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=colour, outline=(0, 0, 0))
        panels.append(image)
        for _ in range(5 if panel < args.steps - 1 else 0):
            action, _ = model.predict(obs, deterministic=True)
            obs, *_ = env.step(action)
    sheet = Image.new("RGB", (sum(p.width for p in panels), panels[0].height))
    for i, p in enumerate(panels):
        sheet.paste(p, (i * p.width, 0))
    sheet.save(args.out)
    print(f"{len(points)} keypoints on {len(panels)} frames -> {args.out}")
    env.close()


if __name__ == "__main__":
    main()
