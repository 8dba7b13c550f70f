"""The training configuration: one typed dataclass, presets for the chapter's steps, config files.

Precedence, lowest first: the defaults below (the configuration the chapter found to work),
a ``--preset``, a ``--config`` file, then command-line flags. Config files are parsed as
data (TOML or YAML mappings of field names to values); nothing in them is evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "PRESETS",
    "ConfigError",
    "EncoderRouting",
    "PresetName",
    "TrainConfig",
    "apply_overrides",
    "load_config_file",
    "resolve_base",
]

PresetName = Literal["step0", "step1", "step2", "step4", "full-state"]
EncoderRouting = Literal["critic", "actor-shared", "separate"]


#: Settings that only apply to pixels (contradict --full-state when changed).
_IMAGE_OPTIONS = (
    "image_size", "frame_stack", "encoder", "spatial_softmax", "num_filters", "camera", "hide_goal", "drq",
    "drq_pad", "flat_features_dim", "share_encoder", "proprio", "target_encoder",
)  # fmt: skip
_POSITIVE = (
    "total_steps", "n_envs", "image_size", "frame_stack", "num_filters", "flat_features_dim", "buffer_size",
    "batch_size", "gradient_steps", "log_interval",
)  # fmt: skip


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change."""


@dataclass(frozen=True)
class TrainConfig:
    """Train SAC + HER from pixels (defaults: the chapter's working configuration)."""

    # --- what to train on ---
    env: str = "FetchPush-v4"
    """Goal env id: a Fetch task (FetchPush-v4, FetchReach-v4, ...) or pixelrl/PointReach-v0, pixelrl/PointPush-v0."""
    seed: int = 0
    """Random seed for envs, networks and sampling."""
    total_steps: int = 5_000_000
    """Environment steps to train for (summed over the parallel envs)."""
    n_envs: int = 4
    """Parallel environments."""
    vec_env: Literal["dummy", "subproc"] = "dummy"
    """dummy: all envs in this process; subproc: one process per env (renders in parallel)."""
    device: str = "auto"
    """Torch device: auto, cpu, cuda, cuda:1, ..."""
    threads: int | None = None
    """Torch intra-op threads (default: torch's choice)."""

    # --- what the agent sees ---
    full_state: bool = False
    """State-vector control run: no pixels, the env's own observation vector (pipeline check)."""
    image_size: int = 84
    """Rendered frame height and width in pixels (rendered natively, not resized)."""
    frame_stack: int = 4
    """Frames stacked along channels."""
    proprio: bool = True
    """Pass the robot's own state (proprioception) to the networks next to the pixels."""
    goal_mode: Literal["both", "strict", "desired"] = "both"
    """Goal vectors: both (the chapter's), strict (achieved_goal for HER only, hidden from the networks), desired."""
    hide_goal: bool = False
    """Hide Fetch's red goal marker from the images (HER relabels goal vectors, not images)."""
    camera: Literal["default", "close", "reach"] = "default"  # = wrappers.fetch.CameraName (tested)
    """Camera preset for Fetch tasks."""
    env_kwargs: str = "{}"
    """JSON object of extra env arguments, e.g. '{"noise": 220}' for pixelrl/* envs or '{"reward_type": "dense"}'."""

    # --- encoder ---
    encoder: Literal["manipulation", "nature"] = "manipulation"
    """CNN trunk: manipulation (3x3, stride 2) or nature (Atari, stride 4)."""
    spatial_softmax: bool = True
    """SpatialSoftmax keypoints after the CNN (else flatten + Linear + LayerNorm + Tanh)."""
    num_filters: int = 32
    """Channels of the manipulation CNN."""
    flat_features_dim: int = 50
    """Features of the flat head (used when spatial_softmax is off)."""
    critic_encoder: bool = True
    """Route encoder gradients through the critic (DrQ-v2, DrQv2SACPolicy); --no-critic-encoder uses SB3's wiring."""
    share_encoder: bool = False
    """With --no-critic-encoder: SB3's shared wiring (one encoder, trained by the actor) instead of two encoders."""

    # --- augmentation and replay ---
    drq: bool = False
    """DrQ random-shift augmentation of sampled images (--no-drq is the default)."""
    drq_pad: int = 4
    """Maximum DrQ shift in pixels."""
    buffer_size: int = 200_000
    """Replay buffer capacity in transitions."""
    buffer: Literal["compact", "sb3"] = "compact"
    """compact: each frame stored once (22 KB per 84x84 transition); sb3: SB3 HER layout (170 KB), as the chapter."""
    frames_device: Literal["auto", "host"] = "auto"
    """Where the compact buffer keeps its frames. auto: on the training device when it is a GPU (each batch is
    gathered there, no 43 MB copy per update), else host memory; host: always host memory."""
    her_n_sampled_goal: int = 4
    """HER: relabelled transitions per real one."""
    her_strategy: Literal["future", "final", "episode"] = "future"
    """HER goal selection strategy."""

    # --- SAC ---
    algo: Literal["auto", "drqv2sac", "sac"] = "auto"
    """auto: DrQv2SAC's fused update with --critic-encoder, SB3's SAC otherwise; sac: SB3's SAC.train always."""
    target_encoder: Literal["separate", "online"] = "separate"
    """DrQv2SAC's TD target: separate Polyak target encoder (the chapter's) or the online encoder (DrQ-v2's)."""
    channels_last: bool = True
    """Run the CNN channels-last (faster convolutions on CPU; same results up to rounding)."""
    batch_size: int = 256
    """Minibatch size."""
    learning_rate: float = 1e-4
    """Adam learning rate for actor and critic."""
    gamma: float = 0.95
    """Discount factor."""
    tau: float = 0.005
    """Polyak coefficient of the target critic."""
    ent_coef: str = "0.05"
    """Entropy coefficient: a number, or auto / auto_0.1 to tune it (auto collapses on sparse rewards)."""
    learning_starts: int = 1000
    """Environment steps of random actions before training."""
    gradient_steps: int = 1
    """Gradient steps per vectorised environment step."""
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden sizes of the actor and critic MLP heads."""

    # --- runs, artifacts, long runs ---
    out_dir: Path = Path(".")
    """Folder holding checkpoints/, results/ and runs/ (unless set separately)."""
    checkpoints_dir: Path | None = None
    """Checkpoint folder (default: <out-dir>/checkpoints)."""
    results_dir: Path | None = None
    """Evaluation results folder (default: <out-dir>/results)."""
    runs_dir: Path | None = None
    """TensorBoard and progress logs (default: <out-dir>/runs)."""
    tag: str | None = None
    """Run name (default: derived from the configuration, so different steps never collide)."""
    checkpoint_freq: int = 500_000
    """Environment steps between periodic checkpoints (0: only the final one)."""
    save_replay_buffer: bool = False
    """Save the replay buffer with each periodic checkpoint (so --resume keeps it)."""
    resume: bool = False
    """Continue the run from its latest complete checkpoint."""
    eval_episodes: int = 100
    """Deterministic evaluation episodes after training (0: skip)."""
    log_interval: int = 10
    """Episodes (per env) between log lines."""
    grad_norm_freq: int = 1000
    """Environment steps between encoder gradient-norm measurements (0: off)."""
    allow_large_buffer: bool = False
    """Start even if the replay buffer may not fit in available RAM."""
    progress: bool = True
    """Show a progress bar (only on a terminal)."""

    @property
    def routing(self) -> EncoderRouting:
        """Encoder wiring: ``critic`` (DrQ-v2), ``actor-shared`` (SB3 shared) or ``separate`` (SB3 default)."""
        if self.critic_encoder:
            return "critic"
        return "actor-shared" if self.share_encoder else "separate"

    @property
    def algorithm(self) -> Literal["drqv2sac", "sac"]:
        """The algorithm ``algo`` resolves to."""
        if self.algo == "auto":
            return "drqv2sac" if self.routing == "critic" and not self.full_state else "sac"
        return self.algo

    @property
    def checkpoints_path(self) -> Path:
        """Where checkpoints go."""
        return self.checkpoints_dir or self.out_dir / "checkpoints"

    @property
    def results_path(self) -> Path:
        """Where evaluation results go."""
        return self.results_dir or self.out_dir / "results"

    @property
    def runs_path(self) -> Path:
        """Where logs go."""
        return self.runs_dir or self.out_dir / "runs"

    @property
    def run_tag(self) -> str:
        """The run's tag: ``--tag``, or one derived from every setting that changes the experiment."""
        if self.tag:
            return self.tag
        if self.full_state:
            return "fullstate"
        parts = [
            "manip" if self.encoder == "manipulation" else "nature",
            "" if self.spatial_softmax else "flat",
            f"drq{self.drq_pad}" if self.drq else "noDrQ",
            {"critic": "criticEnc", "actor-shared": "sharedEnc", "separate": "sepEnc"}[self.routing],
            "" if self.proprio else "noProprio",
            "" if self.goal_mode == "both" else self.goal_mode,
            "" if self.image_size == 84 else f"img{self.image_size}",
            "" if self.frame_stack == 4 else f"fs{self.frame_stack}",
            "" if self.camera == "default" else f"cam{self.camera}",
            "hideGoal" if self.hide_goal else "",
            "".join(f"{k}{v}" for k, v in sorted(self.env_kwargs_dict().items())),
            "sb3sac" if self.algorithm == "sac" and self.routing == "critic" else "",
            "tgtOnline" if self.algorithm == "drqv2sac" and self.target_encoder == "online" else "",
        ]
        return "_".join(p for p in parts if p)

    @property
    def run_name(self) -> str:
        """``<tag>_<env>_seed<N>`` with the env id made file-name safe."""
        return f"{self.run_tag}_{self.env.replace('/', '-')}_seed{self.seed}"

    def env_kwargs_dict(self) -> dict[str, Any]:
        """``env_kwargs`` parsed (:meth:`validate` reports malformed values; here they read as empty)."""
        try:
            value = json.loads(self.env_kwargs)
        except json.JSONDecodeError:
            return {}
        return dict(value) if isinstance(value, dict) else {}

    def ent_coef_value(self) -> float | str:
        """``ent_coef`` as SAC takes it: a float, or the ``auto`` string."""
        return self.ent_coef if self.ent_coef.startswith("auto") else float(self.ent_coef)

    def validate(self) -> None:
        """Check that the settings can run together.

        Raises:
            ConfigError: Naming the contradiction or bad value and what to change.
        """
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}.")
        for name in ("learning_starts", "checkpoint_freq", "eval_episodes", "her_n_sampled_goal", "drq_pad"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}.")
        if not 0 < self.gamma <= 1 or not 0 < self.tau <= 1 or self.learning_rate <= 0:
            raise ConfigError("--gamma and --tau must be in (0, 1] and --learning-rate positive.")
        if not self.ent_coef.startswith("auto"):
            try:
                if float(self.ent_coef) < 0:
                    raise ValueError
            except ValueError:
                raise ConfigError(
                    f"--ent-coef must be a non-negative number or auto / auto_<init>, got {self.ent_coef!r}."
                ) from None
        if self.algo == "drqv2sac" and (self.routing != "critic" or self.full_state):
            raise ConfigError(
                "--algo drqv2sac trains the encoder through the critic; it needs --critic-encoder (and pixels). "
                "Use --algo sac (or auto) for SB3's wirings and --full-state."
            )
        try:
            kwargs = json.loads(self.env_kwargs)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--env-kwargs must be a JSON object, got {self.env_kwargs!r} ({exc}).") from None
        if not isinstance(kwargs, dict) or not all(isinstance(v, (int, float, str, bool)) for v in kwargs.values()):
            raise ConfigError(
                f"--env-kwargs must be a JSON object of numbers, strings or booleans, got {self.env_kwargs!r}."
            )
        if self.critic_encoder and self.share_encoder:
            raise ConfigError(
                "--share-encoder selects SB3's shared wiring (encoder trained by the actor) and contradicts the "
                "default --critic-encoder routing. Pass --no-critic-encoder --share-encoder for SB3's shared wiring."
            )
        if self.full_state:
            defaults = TrainConfig()
            image_options = [name for name in _IMAGE_OPTIONS if getattr(self, name) != getattr(defaults, name)]
            if image_options:
                flags = ", ".join("--" + n.replace("_", "-") for n in image_options)
                raise ConfigError(
                    f"--full-state trains on state vectors, so the image options {flags} do not apply. "
                    "Drop them, or drop --full-state."
                )
        if self.tag is not None and (not self.tag or any(c in self.tag for c in "/\\ ")):
            raise ConfigError(f"--tag must be a non-empty name without slashes or spaces, got {self.tag!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (paths as strings, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output (or a config file's mapping).

        Raises:
            ConfigError: For unknown keys or values of the wrong type.
        """
        return apply_overrides(cls(), data, source="the saved configuration")


def _coerce(name: str, value: Any, annotation: str, source: str) -> Any:
    """Convert a config-file value to the field's type, or raise a ConfigError naming it."""

    def bad() -> ConfigError:
        return ConfigError(f"{source}: {name} = {value!r} is not a valid {annotation}.")

    if "Path" in annotation:
        if value is None and "None" in annotation:
            return None
        if not isinstance(value, str):
            raise bad()
        return Path(value)
    if annotation.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(type(v) is int for v in value):
            raise bad()
        return tuple(value)
    if annotation.startswith("Literal"):
        allowed = [a.strip().strip("'\"") for a in annotation[len("Literal[") : -1].split(",")]
        if value not in allowed:
            raise ConfigError(f"{source}: {name} = {value!r}; expected one of {allowed}.")
        return value
    if annotation == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if annotation.startswith("int"):
        if value is None and "None" in annotation:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad()
        return value
    if annotation == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise bad()
        return float(value)
    if name == "env_kwargs" and isinstance(value, dict):  # a TOML table or YAML mapping
        return json.dumps(value, sort_keys=True)
    if annotation.startswith("str"):
        if value is None and "None" in annotation:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "ent_coef":
            return str(value)
        if not isinstance(value, str):
            raise bad()
        return value
    raise bad()  # pragma: no cover - every field type is handled above


def apply_overrides(base: TrainConfig, values: Mapping[str, Any], source: str) -> TrainConfig:
    """Return ``base`` with ``values`` (field name -> value, dashes allowed) applied, type-checked.

    Args:
        base: The configuration to start from.
        values: New values; keys may use dashes (``total-steps``) or underscores.
        source: Where the values came from, for error messages.

    Returns:
        The updated configuration.

    Raises:
        ConfigError: For unknown keys or values of the wrong type.
    """
    known = {f.name: str(f.type) for f in fields(TrainConfig)}
    updates: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in known:
            raise ConfigError(f"{source}: unknown setting {raw_key!r}. Known settings: {', '.join(sorted(known))}.")
        updates[key] = _coerce(key, value, known[key], source)
    return dataclasses.replace(base, **updates)


#: Each step of the chapter's investigation (section 9.7), as settings over the defaults.
PRESETS: dict[str, dict[str, Any]] = {
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
    # The state-vector control (exercise 1).
    "full-state": {"full_state": True, "total_steps": 2_000_000},
}  # fmt: skip


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml`` / ``.yml``) config file as plain data.

    A ``preset`` key selects a preset; every other key is a :class:`TrainConfig` field.

    Args:
        path: The file.

    Returns:
        The mapping of settings.

    Raises:
        ConfigError: If the file is missing, unreadable, of an unknown type, or not a mapping.
    """
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib  # type: ignore[import-not-found]
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)  # plain data only: no Python objects, nothing evaluated
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"Config file {path}: use a .toml, .yaml/.yml or .json file.")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"Config file {path} could not be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of settings, got {type(data).__name__}.")
    return data


def resolve_base(preset: str | None, config_path: Path | None) -> TrainConfig:
    """Defaults, then the preset (from the argument or the file), then the config file's settings.

    Args:
        preset: A preset name or None.
        config_path: A config file or None.

    Returns:
        The configuration command-line flags are applied to.

    Raises:
        ConfigError: For an unknown preset or a bad config file.
    """
    file_values = load_config_file(config_path) if config_path is not None else {}
    file_values = dict(file_values)
    file_preset = file_values.pop("preset", None)
    chosen = preset or file_preset
    base = TrainConfig()
    if chosen is not None:
        if chosen not in PRESETS:
            raise ConfigError(f"Unknown preset {chosen!r}; expected one of {', '.join(PRESETS)}.")
        base = apply_overrides(base, PRESETS[chosen], source=f"preset {chosen}")
    if file_values:
        base = apply_overrides(base, file_values, source=f"config file {config_path}")
    return base
