"""The validated recipes from Python: settings that learn, as an SB3 model and envs, without the command line.

Each recipe is a preset of `pixelrl-train train` (``--preset fetchreach``) whose measurements are
in ``docs/learning.md``; here the same settings build the same objects for an SB3 script:

Example:
    >>> from pixelrl.train.recipes import recipe, recipe_model
    >>> config = recipe("pointreach", total_steps=2_000)
    >>> config.goal_mode, config.image_size, config.learning_rate, config.n_envs
    ('strict', 32, 0.001, 1)
    >>> model, vec_env = recipe_model("pointreach", seed=0)  # doctest: +SKIP
    >>> model.learn(20_000)  # doctest: +SKIP

The envs come wrapped in SB3's `VecNormalize` for the vector keys (the recipes normalize them):
save its statistics with the model (`vec_env.save("vecnormalize.pkl")`) and load them, frozen,
to evaluate (`VecNormalize.load(path, env)` then `.training = False`), as with any SB3 model
trained on normalized observations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixelrl.train.config import RECIPES, ConfigError, TrainConfig, overlay
from pixelrl.train.config.settings import echo

if TYPE_CHECKING:
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import VecEnv

__all__ = ["RECIPES", "recipe", "recipe_algorithm_kwargs", "recipe_model"]


def recipe(name: str, **overrides: Any) -> TrainConfig:
    """A recipe's settings, with ``overrides`` over them, validated.

    Args:
        name: One of `RECIPES` (``pointreach``, ``pointpush``, ``fetchreach``, ... ).
        **overrides: Settings to change (names of `TrainConfig` fields).

    Returns:
        The settings.

    Raises:
        ConfigError: For an unknown recipe or a bad override.
    """
    if name not in RECIPES:
        raise ConfigError(f"Unknown recipe {echo(name)}; expected one of {', '.join(RECIPES)}.")
    config = overlay(overlay(TrainConfig(), RECIPES[name], f"recipe {name}"), overrides, "overrides")
    config.validate()
    return config


def recipe_algorithm_kwargs(name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of the recipe's algorithm (``DrQv2SAC`` for pixels, SB3's ``SAC`` for state).

    Returns:
        ``policy``, ``policy_kwargs``, the replay buffer class and kwargs and every
        hyperparameter; pass them with ``env=`` to `pixelrl.algos.DrQv2SAC` (or SB3's ``SAC``).
    """
    from pixelrl.train.run.factory import algorithm_kwargs

    return algorithm_kwargs(recipe(name, **overrides))


def recipe_model(name: str, seed: int = 0, **overrides: Any) -> tuple[SAC, VecEnv]:
    """The recipe's model and training envs, ready for ``model.learn``.

    Args:
        name: The recipe.
        seed: Seed of the envs, the networks and sampling.
        **overrides: Settings to change.

    Returns:
        ``(model, vec_env)``.
    """
    from pixelrl.train.run.factory import build_model, make_vec_env

    config = recipe(name, seed=seed, **overrides)
    vec_env = make_vec_env(config)
    return build_model(config, vec_env), vec_env
