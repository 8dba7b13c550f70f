"""Build the envs and the SB3 model a `TrainConfig` describes."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from stable_baselines3.sac.policies import SACPolicy

from pixelrl.train.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    from pixelrl.buffers import EnvComputeReward

__all__ = [
    "algorithm_class",
    "algorithm_kwargs",
    "buffer_setup",
    "build_model",
    "check_env_id",
    "check_goal_space",
    "check_speed_options",
    "load_model",
    "make_env",
    "make_vec_env",
    "policy_setup",
    "proprio_indices_for",
    "reward_function",
]


def _register_all() -> None:
    import pixelrl.envs  # noqa: F401  (registers pixelrl/*)
    from pixelrl.wrappers import register_fetch_envs

    register_fetch_envs()


def check_env_id(env_id: str) -> None:
    """Fail fast for an env id gymnasium does not know or one the CLI cannot build (nothing is constructed).

    Raises:
        ConfigError: Naming the problem and the fix (with close matches for a typo).
    """
    _register_all()
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"Unknown env {env_id!r}.{hint} Use a Fetch task (FetchPush-v4, FetchReach-v4, FetchPickAndPlace-v4, "
            "FetchSlide-v4) or pixelrl/PointReach-v0, pixelrl/PointPush-v0."
        )
    if not env_id.startswith(("pixelrl/", "Fetch")):
        hint = "" if _is_goal_env(env_id) else " It is not goal-conditioned either, which SAC + HER needs."
        raise ConfigError(
            f"pixelrl-train builds pixel observations for Fetch tasks and pixelrl/* envs, not {env_id!r}.{hint} For "
            "another goal env, wrap it with pixelrl.wrappers.PixelObservationWrapper in your own SB3 script."
        )


def _is_goal_env(env_id: str) -> bool:
    env = gym.make(env_id)
    try:
        space = env.observation_space
        return isinstance(space, gym.spaces.Dict) and {"achieved_goal", "desired_goal"} <= set(space.spaces)
    finally:
        env.close()


def proprio_indices_for(env_id: str) -> tuple[int, ...]:
    """The robot-only proprioception layout of a supported env.

    Raises:
        ConfigError: For an env without a known layout (pass ``--no-proprio``).
    """
    from pixelrl.envs import POINT_PUSH_PROPRIO_INDICES, POINT_REACH_PROPRIO_INDICES
    from pixelrl.wrappers import fetch_proprio_indices

    table = {"pixelrl/PointReach-v0": POINT_REACH_PROPRIO_INDICES, "pixelrl/PointPush-v0": POINT_PUSH_PROPRIO_INDICES}
    if env_id in table:
        return table[env_id]
    try:
        return fetch_proprio_indices(env_id)
    except ValueError:
        raise ConfigError(f"No proprioception layout is known for {env_id!r}; pass --no-proprio.") from None


def make_env(config: TrainConfig, *, monitor: bool = True) -> gym.Env[Any, Any]:
    """One environment as the config describes it (pixels, or state vectors with ``full_state``).

    Args:
        config: The run configuration.
        monitor: Wrap in SB3's ``Monitor`` (episode returns and lengths in the logs).

    Returns:
        The env.
    """
    from pixelrl.wrappers import PixelObservationWrapper, make_fetch_env

    _register_all()
    env: gym.Env[Any, Any]
    extra: dict[str, Any] = dict(config.env_kwargs)
    if config.full_state:
        env = gym.make(config.env, **extra)
    elif config.env.startswith("pixelrl/"):
        env = PixelObservationWrapper(
            gym.make(config.env, image_size=config.image_size, **extra),
            image_size=config.image_size,
            frame_stack=config.frame_stack,
            proprio_indices=proprio_indices_for(config.env) if config.proprio else None,
            goal_mode=config.goal_mode,
        )
    else:
        env = make_fetch_env(
            config.env,
            image_size=config.image_size,
            frame_stack=config.frame_stack,
            goal_mode=config.goal_mode,
            proprioception=config.proprio,
            camera=config.camera,
            hide_goal=config.hide_goal,
            antialias=config.antialias,
            **extra,
        )
    return Monitor(env) if monitor else env


def make_vec_env(
    config: TrainConfig, seed: int | None = None, *, statistics: Path | None = None, training: bool = True
) -> VecEnv:
    """``n_envs`` copies of `make_env` in a Dummy or Subproc VecEnv, seeded, with the goal space checked.

    Subprocesses start with ``forkserver`` on Linux: a forked child would inherit the parent's
    OpenGL state, which EGL does not survive. With ``config.normalize`` the envs are wrapped in
    SB3's `VecNormalize` for the vector keys (see `normalization`).

    Args:
        config: The run configuration.
        seed: Seed of the first env (the others get seed + i); default ``config.seed``.
        statistics: Saved normalization statistics to restore (with ``config.normalize``).
        training: Whether the normalization statistics keep updating.

    Returns:
        The VecEnv.

    Raises:
        ConfigError: If the observation lacks the goal keys HER needs, saved statistics are unusable, or
            (``training``) ``--overlap`` / ``--compile-update`` cannot run with these settings (checked first,
            before any env is built; an evaluation's single dummy env is not checked).
    """
    if training:
        check_speed_options(config)
    fns: list[Callable[[], gym.Env[Any, Any]]] = [lambda: make_env(config) for _ in range(config.n_envs)]
    vec_env: VecEnv
    if config.vec_env == "subproc":
        start = "forkserver" if sys.platform.startswith("linux") else None
        vec_env = SubprocVecEnv(fns, start_method=start)
    else:
        vec_env = DummyVecEnv(fns)
    vec_env.seed(config.seed if seed is None else seed)
    check_goal_space(vec_env.observation_space, config.env)
    if config.normalize:
        from pixelrl.train.run.normalization import normalized

        return normalized(vec_env, config.gamma, statistics, training=training)
    return vec_env


def check_speed_options(config: TrainConfig) -> None:
    """Check that ``--overlap`` and ``--compile-update`` can run with the rest of a training run's settings.

    Raises:
        ConfigError: For ``--overlap`` without ``--vec-env subproc`` or either option with SB3's SAC.
    """
    for flag, wanted in (("--overlap", config.overlap), ("--compile-update", config.compile_update)):
        if wanted and config.algorithm != "drqv2sac":
            raise ConfigError(
                f"{flag} is an option of DrQv2SAC's update loop, but these settings train SB3's SAC (--algo sac, "
                f"--no-critic-encoder or --full-state). Drop {flag}, or train DrQv2SAC (--critic-encoder, pixels)."
            )
    if config.overlap and config.vec_env != "subproc":
        raise ConfigError(
            f"--overlap steps the envs in their own processes while the update runs, but --vec-env {config.vec_env} "
            "steps them in this process, so nothing would overlap. Add --vec-env subproc, or drop --overlap."
        )


def check_goal_space(space: gym.spaces.Space[Any], env_id: str) -> None:
    """HER needs ``achieved_goal`` and ``desired_goal`` in the observation.

    Raises:
        ConfigError: If either is missing.
    """
    keys = list(space.spaces) if isinstance(space, gym.spaces.Dict) else []
    if "achieved_goal" not in keys or "desired_goal" not in keys:
        observed = f"observation keys {keys}" if keys else f"a {type(space).__name__} observation"
        raise ConfigError(
            f"{env_id} as configured is not goal-conditioned ({observed}), but SAC + HER needs achieved_goal "
            "and desired_goal. Use a goal env such as FetchPush-v4 or pixelrl/PointReach-v0, with --goal-mode "
            "both or strict."
        )


def policy_setup(config: TrainConfig) -> tuple[str | type[SACPolicy], dict[str, Any]]:
    """The SB3 policy and ``policy_kwargs`` for the config's encoder wiring.

    Args:
        config: The run configuration.

    Returns:
        ``(policy, policy_kwargs)``: SB3's ``"MultiInputPolicy"`` for state runs, else the
        wiring's policy class with a [ManipulationExtractor][pixelrl.encoders.ManipulationExtractor].
    """
    from pixelrl.encoders import ManipulationExtractor
    from pixelrl.policies import wiring_policy

    kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.full_state:
        return "MultiInputPolicy", kwargs
    policy_class, wiring_kwargs = wiring_policy(config.routing)
    kwargs["features_extractor_class"] = ManipulationExtractor
    kwargs["features_extractor_kwargs"] = {
        "encoder": config.encoder,
        "spatial_softmax": config.spatial_softmax,
        "num_filters": config.num_filters,
        "flat_features_dim": config.flat_features_dim,
        "exclude_keys": ["achieved_goal"] if config.goal_mode == "strict" else [],
        "channels_last": config.channels_last,
        "cnn_precision": config.precision,
    }
    return policy_class, {**kwargs, **wiring_kwargs}


def buffer_setup(config: TrainConfig) -> tuple[type[Any], dict[str, Any]]:
    """The replay buffer class and kwargs: compact or SB3-layout HER (+ DrQ) for pixels, SB3's HER for states."""
    from stable_baselines3 import HerReplayBuffer

    from pixelrl.buffers import CompactHerReplayBuffer, HerDrQDictReplayBuffer

    her = {"n_sampled_goal": config.her_n_sampled_goal, "goal_selection_strategy": config.her_strategy}
    if config.full_state:
        return HerReplayBuffer, her
    pixels: dict[str, Any] = {
        **her,
        "pad": config.drq_pad if config.drq else 0,
        "compute_reward": reward_function(config),
    }
    if config.n_steps > 1:
        pixels.update(n_steps=config.n_steps, gamma=config.gamma)
    if config.buffer == "sb3":
        return HerDrQDictReplayBuffer, pixels
    device = get_device(config.device)
    if config.frames_device == "auto" and device.type == "cuda":
        pixels["frames_device"] = device
    return CompactHerReplayBuffer, pixels


def reward_function(config: TrainConfig) -> EnvComputeReward:
    """HER's in-process reward for the config's env: ``compute_reward`` of a non-rendering copy made in this process.

    Every env the command builds (Fetch tasks, ``pixelrl/*``) computes its reward from the goal vectors
    alone, so the copy's rewards are the training envs' (tested), without an IPC call per sampled
    batch to a subprocess env, and without which ``--overlap`` could not sample while the envs step.

    Args:
        config: The run configuration.

    Returns:
        A picklable reward function for the pixel HER buffers' ``compute_reward``.
    """
    from pixelrl.buffers import EnvComputeReward

    _register_all()
    kwargs = dict(config.env_kwargs)
    if config.env.startswith("pixelrl/"):
        kwargs["image_size"] = config.image_size  # as make_env builds it (its knobs are checked against the size)
    return EnvComputeReward(config.env, kwargs)


def algorithm_class(config: TrainConfig) -> type[SAC]:
    """``DrQv2SAC`` or SB3's ``SAC``, as ``config.algorithm`` says."""
    from pixelrl.algos import DrQv2SAC

    return DrQv2SAC if config.algorithm == "drqv2sac" else SAC


def algorithm_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Everything the config passes to the algorithm's constructor besides the env (policy included).

    For SB3 users: ``algorithm_class(config)(env=vec_env, **algorithm_kwargs(config))`` builds the
    model `pixelrl-train` would (see `pixelrl.train.recipes`).

    Args:
        config: The run configuration.

    Returns:
        ``policy``, ``policy_kwargs``, the replay buffer class and kwargs, and every hyperparameter.
    """
    policy, policy_kwargs = policy_setup(config)
    buffer_class, buffer_kwargs = buffer_setup(config)
    # DrQv2SAC takes n_steps itself; SB3's SAC would only warn that a custom buffer ignores it,
    # so it gets n-step returns from the buffer's kwargs alone.
    extra: dict[str, Any] = {}
    if config.algorithm == "drqv2sac":
        extra = {"target_encoder": config.target_encoder, "n_steps": config.n_steps, **_drqv2sac_options(config)}
    return {
        "policy": policy,
        "learning_rate": config.learning_rate,
        "buffer_size": config.buffer_size,
        "learning_starts": config.learning_starts,
        "batch_size": config.batch_size,
        "tau": config.tau,
        "gamma": config.gamma,
        "train_freq": 1,
        "gradient_steps": config.gradient_steps,
        "ent_coef": config.ent_coef_value(),
        "replay_buffer_class": buffer_class,
        "replay_buffer_kwargs": buffer_kwargs,
        "policy_kwargs": policy_kwargs,
        "seed": config.seed,
        "device": config.device,
        "verbose": 0,
        **extra,
    }


def _drqv2sac_options(config: TrainConfig) -> dict[str, Any]:
    """DrQv2SAC's speed options: set at construction, and again at load (``--compile-update`` may change on resume)."""
    return {"compile_update": config.compile_update, "overlap_collection": config.overlap}


def build_model(config: TrainConfig, vec_env: VecEnv) -> SAC:
    """A fresh SAC model for the config (policy, HER/DrQ buffer, hyperparameters).

    Args:
        config: The run configuration.
        vec_env: The training envs (goal space checked by `make_vec_env`).

    Returns:
        The model.
    """
    return algorithm_class(config)(env=vec_env, **algorithm_kwargs(config))


def load_model(model_path: Path, env: VecEnv | None, config: TrainConfig, device: str = "auto") -> SAC:
    """Load a checkpoint's model with the algorithm class it was trained with.

    Raises:
        ConfigError: If the file is missing or not a loadable SB3 zip (the message names it).
    """
    if not model_path.is_file():
        raise ConfigError(f"Checkpoint {model_path} does not exist.")
    try:
        options = _drqv2sac_options(config) if config.algorithm == "drqv2sac" else {}
        return algorithm_class(config).load(model_path, env=env, device=device, **options)
    except Exception as exc:
        raise ConfigError(f"Checkpoint {model_path} could not be loaded ({type(exc).__name__}: {exc}).") from exc
