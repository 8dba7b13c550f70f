"""The training configuration: settings declared once, presets and demos, config files.

- `settings`: how a setting is declared (its role, check and tag label) and how file values are
  checked against its type.
- `train_config`: [TrainConfig][pixelrl.train.config.TrainConfig], every setting of a run, and
  [overlay][pixelrl.train.config.overlay], the one way presets, demos, files and saved metadata
  are laid over a config.
- `presets`: the chapter's steps, the validated recipes and the demos.
- `files`: TOML / YAML / JSON config files read as plain data.
"""

from __future__ import annotations

from pixelrl.train.config.files import load_config_file
from pixelrl.train.config.presets import DEMOS, PRESETS, RECIPES, PresetName, demo_overlay, resolve_base
from pixelrl.train.config.settings import ROLES, ConfigError, Role
from pixelrl.train.config.train_config import Overlay, TrainConfig, overlay

__all__ = [
    "DEMOS",
    "PRESETS",
    "RECIPES",
    "ROLES",
    "ConfigError",
    "Overlay",
    "PresetName",
    "Role",
    "TrainConfig",
    "demo_overlay",
    "load_config_file",
    "overlay",
    "resolve_base",
]
