"""`TrainConfig`: every setting of a training run, each declared once with its type, help, check and role."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pixelrl.policies.wiring import Wiring
from pixelrl.train.config.settings import (
    NUMBER_AS_TEXT,
    ConfigError,
    EnvKwargs,
    Role,
    at_least,
    choice_problem,
    coerce,
    echo,
    in_range,
    setting,
    spec_of,
)

__all__ = ["Overlay", "TrainConfig", "overlay"]

Overlay = Mapping[str, Any]
"""Setting name (dashes or underscores) -> value, as in a config file."""

_MAX_SEED = 2**32 - 1  # numpy's seed range, which SB3's set_random_seed feeds
_WIRING_LABELS: dict[Wiring, str] = {"drqv2": "criticEnc", "sb3-shared": "sharedEnc", "sb3-separate": "sepEnc"}


def _device_check(value: str) -> str | None:
    head, _, index = value.partition(":")
    valid = head in ("auto", "cpu", "cuda", "mps") and (not index or (head == "cuda" and index.isdigit()))
    return None if valid else "auto, cpu, cuda, cuda:<index> or mps"


def _ent_coef_check(value: str) -> str | None:
    text = value[len("auto") :].removeprefix("_") if value.startswith("auto") else value
    if value == "auto":
        return None
    try:
        number = float(text)
    except ValueError:
        return "a non-negative number, auto or auto_<initial value>"
    ok = math.isfinite(number) and (number > 0 if value.startswith("auto_") else number >= 0)
    return None if ok else "a non-negative number, auto or auto_<initial value>"


def _net_arch_check(value: tuple[int, ...]) -> str | None:
    return None if value and all(size >= 1 for size in value) else "one or more positive layer sizes"


def _env_kwargs_check(value: dict[str, Any]) -> str | None:
    scalar = all(isinstance(v, (int, float, str, bool)) for v in value.values())
    return None if scalar else "a JSON object of numbers, strings or booleans"


def _tag_check(value: str | None) -> str | None:
    if value is None:
        return None
    bad = not value or value in (".", "..") or any(c in value for c in "/\\ \0") or len(value) > 100
    return "a name of 1-100 characters without slashes, spaces or '..'" if bad else None


@dataclass(frozen=True)
class TrainConfig:
    """Train SAC + HER from pixels (defaults: the chapter's working configuration)."""

    # --- what to train on ---
    env: str = setting("FetchPush-v4", role="task")
    """Goal env id: a Fetch task (FetchPush-v4, FetchReach-v4, ...) or pixelrl/PointReach-v0, pixelrl/PointPush-v0."""
    seed: int = setting(0, role="task", check=in_range(0, _MAX_SEED))
    """Random seed for envs, networks and sampling."""
    total_steps: int = setting(5_000_000, role="control", check=at_least(1))
    """Environment steps to train for (summed over the parallel envs)."""
    n_envs: int = setting(4, role="experiment", check=at_least(1))
    """Parallel environments."""
    vec_env: Literal["dummy", "subproc"] = setting("dummy", role="control")
    """dummy: all envs in this process; subproc: one process per env (renders in parallel)."""
    overlap: bool = setting(False, role="experiment")
    """Step the envs while the update runs (DrQv2SAC; needs --vec-env subproc); the collecting policy is one update
    behind, so it is part of the experiment."""
    device: str = setting("auto", role="control", check=_device_check)
    """Torch device: auto, cpu, cuda, cuda:1, ..."""
    threads: int | None = setting(None, role="control", check=at_least(1))
    """Torch intra-op threads (default: torch's choice)."""
    keep_freed_memory: bool = setting(False, role="control")
    """Keep freed host memory for reuse (glibc malloc: no mmap per large block, no trimming): CPU updates stop
    paying page faults for their batch-sized tensors; same results, the process keeps its peak memory."""

    # --- the encoder (the order of these labels is the order of the readable run tag) ---
    full_state: bool = setting(False, role="experiment")
    """State-vector control run: no pixels, the env's own observation vector (pipeline check)."""
    encoder: Literal["manipulation", "nature"] = setting(
        "manipulation", role="pixel", label=lambda c: "manip" if c.encoder == "manipulation" else "nature"
    )
    """CNN trunk: manipulation (3x3, strides 2-1-1-2) or nature (Atari, stride 4)."""
    spatial_softmax: bool = setting(True, role="pixel", label=lambda c: "" if c.spatial_softmax else "flat")
    """SpatialSoftmax keypoints after the CNN (else flatten + Linear + LayerNorm + Tanh)."""
    num_filters: int = setting(32, role="pixel", check=at_least(1))
    """Channels of the manipulation CNN."""
    flat_features_dim: int = setting(50, role="pixel", check=at_least(1))
    """Features of the flat head (used when spatial_softmax is off)."""
    drq: bool = setting(False, role="pixel", label=lambda c: f"drq{c.drq_pad}" if c.drq else "noDrQ")
    """DrQ random-shift augmentation of sampled images (--no-drq is the default)."""
    drq_pad: int = setting(4, role="pixel", check=at_least(0))
    """Maximum DrQ shift in pixels (less than half the image size)."""
    critic_encoder: bool = setting(True, role="experiment", label=lambda c: _WIRING_LABELS[c.routing])
    """Route encoder gradients through the critic (DrQ-v2, DrQv2SACPolicy); --no-critic-encoder uses SB3's wiring."""
    share_encoder: bool = setting(False, role="pixel")
    """With --no-critic-encoder: SB3's shared wiring (one encoder, trained by the actor) instead of two encoders."""

    # --- what the agent sees ---
    proprio: bool = setting(True, role="pixel", label=lambda c: "" if c.proprio else "noProprio")
    """Pass the robot's own state (proprioception) to the networks next to the pixels."""
    goal_mode: Literal["both", "strict"] = setting(
        "both", role="experiment", label=lambda c: "" if c.goal_mode == "both" else c.goal_mode
    )
    """Goal vectors: both (the chapter's), or strict (achieved_goal for HER only, hidden from the networks)."""
    image_size: int = setting(
        84, role="pixel", check=at_least(1), label=lambda c: "" if c.image_size == 84 else f"img{c.image_size}"
    )
    """Rendered frame height and width in pixels (rendered natively, not resized)."""
    frame_stack: int = setting(
        4, role="pixel", check=at_least(1), label=lambda c: "" if c.frame_stack == 4 else f"fs{c.frame_stack}"
    )
    """Frames stacked along channels."""
    camera: Literal["default", "close", "reach"] = setting(  # = wrappers.fetch.CameraName (tested)
        "default", role="pixel", label=lambda c: "" if c.camera == "default" else f"cam{c.camera}"
    )
    """Camera preset for Fetch tasks."""
    hide_goal: bool = setting(False, role="pixel", label=lambda c: "hideGoal" if c.hide_goal else "")
    """Hide Fetch's red goal marker from the images (HER relabels goal vectors, not images)."""
    antialias: bool = setting(True, role="pixel", label=lambda c: "" if c.antialias else "noAA")
    """Render Fetch frames with MuJoCo's multisampling; off halves a frame's cost with software OpenGL."""
    env_kwargs: EnvKwargs = setting(
        role="experiment",
        default_factory=dict,
        check=_env_kwargs_check,
        label=lambda c: "".join(f"{k}{v}" for k, v in sorted(c.env_kwargs.items())),
    )
    """JSON object of extra env arguments, e.g. '{"noise": 220}' for pixelrl/* envs or '{"reward_type": "dense"}'."""

    normalize: bool = setting(False, role="experiment", label=lambda c: "norm" if c.normalize else "")
    """Normalize the vector inputs (proprioception, goals) with running statistics (SB3's VecNormalize; pixels
    stay uint8); saved with every checkpoint and frozen at evaluation."""

    # --- SAC ---
    algo: Literal["auto", "drqv2sac", "sac"] = setting(
        "auto", role="experiment", label=lambda c: "sb3sac" if c.algorithm == "sac" and c.routing == "drqv2" else ""
    )
    """auto: DrQv2SAC's fused update with --critic-encoder, SB3's SAC otherwise; sac: SB3's SAC.train always."""
    target_encoder: Literal["separate", "online"] = setting(
        "separate",
        role="pixel",
        label=lambda c: "tgtOnline" if c.algorithm == "drqv2sac" and c.target_encoder == "online" else "",
    )
    """DrQv2SAC's TD target: separate Polyak target encoder (the chapter's) or the online encoder (DrQ-v2's)."""
    precision: Literal["fp32", "bf16"] = setting(
        "fp32", role="pixel", label=lambda c: "bf16" if c.precision == "bf16" else ""
    )
    """What the CNN computes in: fp32, or bf16 (torch.autocast bfloat16; weights, heads and losses stay float32):
    about 2x faster convolutions on CPUs with AMX/AVX512-BF16 and on GPUs since Ampere; a different experiment."""
    channels_last: bool = setting(True, role="control")
    """Run the CNN channels-last (faster convolutions on CPU; same results up to rounding)."""
    compile_update: bool = setting(False, role="control")
    """Compile DrQv2SAC's update with torch.compile (CUDA graphs on CUDA): faster updates after a one-time compile at
    the first update; same results up to rounding."""
    batch_size: int = setting(256, role="experiment", check=at_least(1))
    """Minibatch size."""
    learning_rate: float = setting(1e-4, role="experiment", check=in_range(0, 1, low_open=True))
    """Adam learning rate for actor and critic."""
    gamma: float = setting(0.95, role="experiment", check=in_range(0, 1, low_open=True))
    """Discount factor."""
    tau: float = setting(0.005, role="experiment", check=in_range(0, 1, low_open=True))
    """Polyak coefficient of the target critic."""
    ent_coef: Annotated[str, NUMBER_AS_TEXT] = setting("0.05", role="experiment", check=_ent_coef_check)
    """Entropy coefficient: a number, or auto / auto_0.1 to tune it (auto collapses on sparse rewards)."""
    learning_starts: int = setting(1000, role="experiment", check=at_least(0))
    """Environment steps of random actions before training."""
    gradient_steps: int = setting(1, role="experiment", check=at_least(1))
    """Gradient steps per vectorised environment step (n_envs of them: one update per env step)."""
    n_steps: int = setting(
        1, role="experiment", check=at_least(1), label=lambda c: f"n{c.n_steps}" if c.n_steps > 1 else ""
    )
    """n-step returns (with HER: rewards summed over up to n steps with the goal each row is trained on)."""
    net_arch: tuple[int, ...] = setting((256, 256), role="experiment", check=_net_arch_check)
    """Hidden sizes of the actor and critic MLP heads."""

    # --- replay ---
    buffer_size: int = setting(200_000, role="experiment", check=at_least(1))
    """Replay buffer capacity in transitions."""
    buffer: Literal["compact", "sb3"] = setting("compact", role="pixel")
    """compact: each frame stored once (22 KB per 84x84 transition); sb3: SB3 HER layout (170 KB), as the chapter."""
    frames_device: Literal["auto", "host"] = setting("auto", role="control")
    """Where the compact buffer keeps its frames. auto: on the training device when it is a GPU (each batch is
    gathered there, no 43 MB copy per update), else host memory; host: always host memory."""
    her_n_sampled_goal: int = setting(4, role="experiment", check=at_least(0))
    """HER: relabelled transitions per real one."""
    her_strategy: Literal["future", "final", "episode"] = setting("future", role="experiment")
    """HER goal selection strategy."""

    # --- runs, artifacts, long runs ---
    out_dir: Path = setting(Path("."), role="output")
    """Folder holding checkpoints/, results/ and runs/ (unless set separately)."""
    checkpoints_dir: Path | None = setting(None, role="output")
    """Checkpoint folder (default: <out-dir>/checkpoints)."""
    results_dir: Path | None = setting(None, role="output")
    """Evaluation results folder (default: <out-dir>/results)."""
    runs_dir: Path | None = setting(None, role="output")
    """TensorBoard and progress logs (default: <out-dir>/runs)."""
    tag: str | None = setting(None, role="output", check=_tag_check)
    """Run name (default: a readable tag and a hash of every experiment setting, so experiments never collide)."""
    checkpoint_freq: int = setting(500_000, role="control", check=at_least(0))
    """Environment steps between periodic checkpoints (0: only the final one)."""
    save_replay_buffer: bool = setting(False, role="control")
    """Save the replay buffer with each periodic checkpoint (so --resume keeps it)."""
    resume: bool = setting(False, role="control")
    """Continue the run from its newest intact checkpoint (a run stopped before its first one starts over)."""
    eval_episodes: int = setting(100, role="control", check=at_least(0))
    """Deterministic evaluation episodes after training (0: skip)."""
    eval_freq: int = setting(0, role="control", check=at_least(0))
    """Environment steps between deterministic evaluations during training, the learning curve (0: none)."""
    eval_freq_episodes: int = setting(20, role="control", check=at_least(1))
    """Episodes per evaluation during training."""
    stop_at_success: float | None = setting(None, role="control", check=in_range(0, 1, low_open=True))
    """Stop once two evaluations in a row (--eval-freq) reach this success rate."""
    max_train_minutes: float | None = setting(None, role="control", check=in_range(0, 1e7, low_open=True))
    """Stop after this many training minutes (periodic evaluations are not counted)."""
    log_interval: int = setting(10, role="control", check=at_least(1))
    """Episodes (per env) between log lines."""
    grad_norm_freq: int = setting(1000, role="control", check=at_least(0))
    """Environment steps between encoder gradient-norm measurements (0: off)."""
    allow_large_buffer: bool = setting(False, role="control")
    """Start even if the replay buffer may not fit in available RAM."""
    progress: bool = setting(True, role="control")
    """Show a progress bar on a terminal (a progress line at intervals otherwise)."""

    # --- declarations, read back ---------------------------------------------------------------

    @classmethod
    def names(cls, *roles: Role) -> tuple[str, ...]:
        """Names of the settings with any of ``roles`` (all settings when none is given), in declaration order."""
        return tuple(f.name for f in fields(cls) if not roles or spec_of(f).role in roles)

    # --- derived ---------------------------------------------------------------------------

    @property
    def routing(self) -> Wiring:
        """The encoder wiring: ``drqv2`` (critic-trained), ``sb3-shared`` or ``sb3-separate``."""
        if self.critic_encoder:
            return "drqv2"
        return "sb3-shared" if self.share_encoder else "sb3-separate"

    @property
    def algorithm(self) -> Literal["drqv2sac", "sac"]:
        """The algorithm ``algo`` resolves to."""
        if self.algo == "auto":
            return "drqv2sac" if self.routing == "drqv2" and not self.full_state else "sac"
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
        """A readable summary of the main settings (``fullstate`` for state runs); see `run_id` for the identity."""
        if self.full_state:
            return "fullstate"
        parts = [spec_of(f).label(self) for f in fields(self) if spec_of(f).label is not None]  # type: ignore[misc]
        return "_".join(p for p in parts if p)

    def experiment_settings(self) -> dict[str, Any]:
        """Every experiment setting that differs from its default (JSON-ready), the run's identity."""
        default, now = TrainConfig().to_dict(), self.to_dict()
        return {name: now[name] for name in self.names("experiment", "pixel") if now[name] != default[name]}

    @property
    def experiment_hash(self) -> str:
        """8 hex digits of a hash of `experiment_settings` (equal for seeds of one experiment)."""
        text = json.dumps(self.experiment_settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def run_id(self) -> str:
        """The experiment's name: ``--tag``, else ``<run_tag>-<experiment_hash>`` (two experiments never share it)."""
        return self.tag or f"{self.run_tag}-{self.experiment_hash}"

    @property
    def run_name(self) -> str:
        """``<run_id>_<env>_seed<N>`` with the env id made file-name safe."""
        return f"{self.run_id}_{self.env.replace('/', '-')}_seed{self.seed}"

    def ent_coef_value(self) -> float | str:
        """``ent_coef`` as SAC takes it: a float, or the ``auto`` string."""
        return self.ent_coef if self.ent_coef.startswith("auto") else float(self.ent_coef)

    # --- checks ----------------------------------------------------------------------------

    def validate(self) -> None:
        """Check every setting and that the settings can run together.

        Raises:
            ConfigError: Naming the bad value or the contradiction and what to change.
        """
        for f in fields(self):
            value, spec = getattr(self, f.name), spec_of(f)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"--{_flag(f.name)} must be a finite number, got {value}.")
            problem = choice_problem(type(self), f.name, value)
            if problem is None and spec.check is not None:
                problem = spec.check(value)
            if problem is not None:
                raise ConfigError(f"--{_flag(f.name)} must be {problem}, got {echo(value)}.")
        for message in self._contradictions():
            raise ConfigError(message)

    def _contradictions(self) -> Iterator[str]:
        if self.algo == "drqv2sac" and (self.routing != "drqv2" or self.full_state):
            yield (
                "--algo drqv2sac trains the encoder through the critic; it needs --critic-encoder (and pixels). "
                "Use --algo sac (or auto) for SB3's wirings and --full-state."
            )
        if self.critic_encoder and self.share_encoder:
            yield (
                "--share-encoder selects SB3's shared wiring (encoder trained by the actor) and contradicts the "
                "default --critic-encoder routing. Pass --no-critic-encoder --share-encoder for SB3's shared wiring."
            )
        if self.full_state:
            default = TrainConfig()
            changed = [n for n in self.names("pixel") if getattr(self, n) != getattr(default, n)]
            if changed:
                flags = ", ".join("--" + _flag(n) for n in changed)
                yield (
                    f"--full-state trains on state vectors, so the image options {flags} do not apply. "
                    "Drop them, or drop --full-state."
                )
        elif self.image_size <= 3 * self.frame_stack:
            yield (
                f"--image-size {self.image_size} is not larger than the {3 * self.frame_stack} channels of "
                f"{self.frame_stack} stacked RGB frames, so SB3 would read the images as channels-last. Use "
                f"--image-size {max(16, 3 * self.frame_stack + 1)} or more."
            )
        elif not self.drq and self.drq_pad != TrainConfig.drq_pad:
            yield "--drq-pad sets the DrQ shift, which is off: add --drq, or drop --drq-pad."
        elif self.drq and 2 * self.drq_pad >= self.image_size:
            yield (
                f"--drq-pad {self.drq_pad} shifts {self.image_size}-pixel images by half their size or more; "
                f"use --drq-pad {max(self.image_size // 16, 1)} or so (DrQ uses 4 at 84 x 84)."
            )
        fetch_only = [
            f"--{'no-' if getattr(self, n) is False else ''}{_flag(n)}"
            for n in ("camera", "hide_goal", "antialias")
            if getattr(self, n) != getattr(TrainConfig, n)
        ]
        if fetch_only and not self.env.startswith("Fetch"):
            what = "set the Fetch camera, goal marker and rendering"
            yield f"{' and '.join(fetch_only)} {what}; {self.env} has none of them. Drop them."
        if self.n_steps > 1 and self.full_state:
            yield "--n-steps works with the pixel HER buffers; SB3's HER buffer for --full-state has no n-step returns."
        if self.stop_at_success is not None and self.eval_freq == 0:
            yield "--stop-at-success reads the evaluations during training: set --eval-freq too."
        if self.batch_size > self.buffer_size:
            yield (
                f"--batch-size {self.batch_size} is larger than --buffer-size {self.buffer_size}: every batch would "
                "repeat transitions many times over. Use a buffer at least as large as the batch."
            )

    # --- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (paths as strings, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(sorted(value.items()))
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config from [to_dict][pixelrl.train.config.TrainConfig.to_dict] output (or a file's mapping).

        Raises:
            ConfigError: For unknown keys or values of the wrong type.
        """
        return overlay(cls(), data, source="the saved configuration")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some settings changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def overlay(base: TrainConfig, values: Overlay, source: str) -> TrainConfig:
    """Return ``base`` with ``values`` applied, each checked against its setting's declared type.

    Args:
        base: The configuration to start from.
        values: New values; keys may use dashes (``total-steps``) or underscores.
        source: Where the values came from, for error messages.

    Returns:
        The updated configuration (not yet validated as a whole: call ``validate``).

    Raises:
        ConfigError: For unknown keys or values of the wrong type.
    """
    known = TrainConfig.names()
    updates: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in known:
            raise ConfigError(f"{source}: unknown setting {echo(raw_key)}. Known settings: {', '.join(sorted(known))}.")
        updates[key] = coerce(TrainConfig, key, value, source)
    return dataclasses.replace(base, **updates)


def _flag(name: str) -> str:
    return name.replace("_", "-")
