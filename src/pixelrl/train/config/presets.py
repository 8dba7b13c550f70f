"""Named groups of settings (the chapter's steps, the demos) and the one way settings are laid over a config.

Presets, demos, config files, saved metadata and the other subcommands' options all reach a
[TrainConfig][pixelrl.train.config.TrainConfig] through [overlay][pixelrl.train.config.presets.overlay]:
each value is type-checked against the setting's declaration. Precedence, lowest first: the
defaults, a preset, a config file, then command-line flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pixelrl.train.config.files import load_config_file
from pixelrl.train.config.settings import ConfigError, echo
from pixelrl.train.config.train_config import Overlay, TrainConfig, overlay

__all__ = ["DEMOS", "PRESETS", "RECIPES", "PresetName", "demo_overlay", "resolve_base"]

PresetName = Literal[
    "step0", "step1", "step2", "step4", "full-state",
    "pointreach", "pointpush", "pointpush-state", "fetchreach", "fetchreach-state", "fetchpush-state",
]  # fmt: skip

#: Each step of the chapter's investigation of encoder wiring, as settings over the defaults.
PRESETS: dict[str, Overlay] = {
    # Step 0: SB3's default pixel pipeline: NatureCNN, no proprioception, SB3's shared wiring.
    "step0": {
        "encoder": "nature", "spatial_softmax": False, "proprio": False, "critic_encoder": False,
        "share_encoder": True, "total_steps": 2_000_000,
    },
    # Step 1: ManipulationCNN + SpatialSoftmax + proprioception, still SB3's shared wiring.
    "step1": {"critic_encoder": False, "share_encoder": True, "total_steps": 2_000_000},
    # Step 2: + critic-encoder routing: the chapter's winning run.
    "step2": {
        "critic_encoder": True, "buffer_size": 500_000, "her_n_sampled_goal": 8, "total_steps": 5_000_000,
        "checkpoint_freq": 500_000,
    },
    # Step 4: step 2 + DrQ random shift.
    "step4": {"critic_encoder": True, "drq": True, "buffer_size": 500_000, "her_n_sampled_goal": 8,
              "total_steps": 2_000_000},
    # The state-vector control.
    "full-state": {"full_state": True, "total_steps": 2_000_000},
}  # fmt: skip

_RECIPE_RUNS: Overlay = {"n_envs": 1, "gradient_steps": 1, "learning_rate": 1e-3, "ent_coef": "auto", "normalize": True,
                          "learning_starts": 1_000, "eval_freq": 1_000, "eval_freq_episodes": 20}  # fmt: skip
_PIXELS_STRICT: Overlay = {"goal_mode": "strict", "image_size": 32, "frame_stack": 2, "batch_size": 128}

#: Settings that learn, measured from state first and then from pixels (``docs/learning.md``):
#: one env and one update per env step, learning rate 1e-3, automatic entropy tuning and
#: running normalization of the vector inputs (what rl-zoo3's state recipes use), with small
#: strict pixel observations (the position the task depends on only in the image).
RECIPES: dict[str, Overlay] = {
    "pointreach": {**_RECIPE_RUNS, **_PIXELS_STRICT, "env": "pixelrl/PointReach-v0", "tau": 0.05, "num_filters": 16,
                   "buffer_size": 100_000, "total_steps": 20_000},
    "pointpush": {**_RECIPE_RUNS, **_PIXELS_STRICT, "env": "pixelrl/PointPush-v0", "tau": 0.05, "num_filters": 16,
                  "batch_size": 64, "target_encoder": "online", "n_steps": 3, "buffer_size": 200_000,
                  "total_steps": 100_000},
    "pointpush-state": {**_RECIPE_RUNS, "env": "pixelrl/PointPush-v0", "full_state": True, "tau": 0.05,
                        "batch_size": 256, "buffer_size": 200_000, "total_steps": 50_000},
    "fetchreach": {**_RECIPE_RUNS, **_PIXELS_STRICT, "env": "FetchReach-v4", "camera": "reach", "hide_goal": True,
                   "tau": 0.01, "num_filters": 16, "n_steps": 3, "buffer_size": 100_000, "total_steps": 20_000},
    "fetchreach-state": {**_RECIPE_RUNS, "env": "FetchReach-v4", "full_state": True, "batch_size": 256,
                         "buffer_size": 100_000, "total_steps": 10_000},
    "fetchpush-state": {**_RECIPE_RUNS, "env": "FetchPush-v4", "full_state": True, "tau": 0.05, "batch_size": 256,
                        "buffer_size": 1_000_000, "total_steps": 500_000, "eval_freq": 10_000},
}  # fmt: skip
PRESETS.update(RECIPES)

#: ``pixelrl-train demo``: the ``pointreach`` recipe, strict (the agent's position only in the
#: image), which a 2-core CPU learns in minutes (``pixelrl``); and the chapter's FetchPush demo
#: at 84 x 84 (``fetch``: every artifact in a few minutes, far too short to succeed).
DEMOS: dict[str, Overlay] = {
    "pixelrl": {
        **RECIPES["pointreach"], "total_steps": 8_000, "buffer_size": 50_000, "checkpoint_freq": 4_000,
        "save_replay_buffer": True, "eval_episodes": 20, "log_interval": 4, "grad_norm_freq": 1_000, "tag": "demo",
    },
    "fetch": {
        "n_envs": 2, "total_steps": 3_000, "batch_size": 32, "buffer_size": 20_000, "learning_starts": 500,
        "checkpoint_freq": 1_000, "save_replay_buffer": True, "eval_episodes": 5, "log_interval": 2,
        "grad_norm_freq": 250, "tag": "demo",
    },
}  # fmt: skip


def apply_preset(base: TrainConfig, name: str) -> TrainConfig:
    """Lay the preset ``name`` over ``base``.

    Raises:
        ConfigError: For an unknown preset.
    """
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {echo(name)}; expected one of {', '.join(PRESETS)}.")
    return overlay(base, PRESETS[name], source=f"preset {name}")


def resolve_base(preset: str | None, config_path: Path | None, base: TrainConfig | None = None) -> TrainConfig:
    """The defaults (or ``base``), then the preset (from the argument or the file), then the file's settings.

    Args:
        preset: A preset name or None.
        config_path: A config file or None.
        base: What to start from (default: ``TrainConfig()``).

    Returns:
        The configuration command-line flags are applied to.

    Raises:
        ConfigError: For an unknown preset or a bad config file.
    """
    file_values = dict(load_config_file(config_path)) if config_path is not None else {}
    file_preset = file_values.pop("preset", None)
    if file_preset is not None and not isinstance(file_preset, str):
        raise ConfigError(f"Config file {config_path}: preset = {echo(file_preset)} must be a preset name.")
    chosen = preset or file_preset
    config = base if base is not None else TrainConfig()
    if chosen is not None:
        config = apply_preset(config, chosen)
    if file_values:
        config = overlay(config, file_values, source=f"config file {config_path}")
    return config


def demo_overlay(env: str) -> Overlay:
    """The demo's settings for ``env``: the ``pixelrl`` demo for pixelrl/* envs, the ``fetch`` demo otherwise."""
    return DEMOS["pixelrl"] if env.startswith("pixelrl/") else {**DEMOS["fetch"], "env": env}
