"""Shared by the examples: rebuild the env a model was trained on and load the model."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from pixelrl.train.config import TrainConfig
from pixelrl.train.run.factory import make_env
from pixelrl.train.run.normalization import normalized, statistics_path


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="an SB3 zip (from pixelrl-train, or from train_pixels_sb3.py)")
    parser.add_argument("--env", default="FetchPush-v4", help="ignored when <model>.meta.json exists")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--frame-stack", type=int, default=4)
    parser.add_argument("--goal-mode", default="strict", choices=["both", "strict"])
    parser.add_argument("--camera", default="default", choices=["default", "close", "reach"])
    parser.add_argument("--seed", type=int, default=0)


def env_config(args: argparse.Namespace) -> TrainConfig:
    """The env settings: from pixelrl-train's metadata next to the model, else from the flags."""
    meta = args.model.with_name(args.model.name.removesuffix(".zip") + ".meta.json")
    if meta.is_file():
        config = TrainConfig.from_dict(json.loads(meta.read_text())["config"])
        return dataclasses.replace(config, seed=args.seed)
    return dataclasses.replace(
        TrainConfig(), env=args.env, image_size=args.image_size, frame_stack=args.frame_stack,
        goal_mode=args.goal_mode, camera=args.camera, seed=args.seed,
    )  # fmt: skip


def load_model(path: Path, config: TrainConfig) -> Any:
    """The model, with the (frozen) observation statistics it was trained with when it used --normalize.

    ``model.predict(obs)`` then takes raw observations like the env's: a model trained on
    normalized vector inputs would act on nonsense without its statistics.
    """
    # Any SAC subclass loads as SAC for prediction; SB3 needs an env to rebuild a HER buffer.
    env: Any = DummyVecEnv([lambda: make_env(config)])
    if config.normalize:
        env = normalized(env, config.gamma, statistics_path(path), training=False)
    model = SAC.load(path, env=env, device="cpu")
    if config.normalize:
        predict = model.predict
        model.predict = lambda obs, **kwargs: predict(env.normalize_obs(obs), **kwargs)  # type: ignore[method-assign]
    return model
