"""Every check that can fail before a run does work, in the order that keeps a refused run side-effect free.

[prepared_run][pixelrl.train.run.preflight.prepared_run] validates the settings, picks and checks
the checkpoint to resume from, builds the envs once and the model once, checks memory and the
output folders, and holds the run's lock while the caller trains. Anything it refuses raises a
``ConfigError`` (exit 2) and leaves no trace: folders it created for the run are removed again.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import RunPaths
from pixelrl.train.run.checkpoints import CheckpointInfo, find_resume_point, read_meta, resume_config
from pixelrl.train.run.factory import build_model, check_env_id, load_model, make_vec_env
from pixelrl.train.run.lock import run_lock
from pixelrl.train.run.memory import check_memory
from pixelrl.train.run.normalization import statistics_path

if TYPE_CHECKING:
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import VecEnv

__all__ = ["PreparedRun", "apply_process_settings", "prepared_run"]


@dataclass
class PreparedRun:
    """A run that passed every check: its settings, paths, envs and model, with the lock held.

    Attributes:
        config: The settings to train with (the saved experiment settings when resuming).
        paths: The run's paths.
        vec_env: The training envs (built once).
        model: The model, fresh or loaded from ``resume_from`` (with its buffer when saved).
        resume_from: The checkpoint the run continues, or None for a fresh start.
        wall_offset: Training seconds of earlier segments.
        notes: What the user should know (a skipped checkpoint, a restart); printed before training.
    """

    config: TrainConfig
    paths: RunPaths
    vec_env: VecEnv
    model: SAC
    resume_from: CheckpointInfo | None
    wall_offset: float = 0.0
    notes: list[str] = field(default_factory=list)


def _check_device(config: TrainConfig) -> None:
    import torch

    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {config.device}: this machine has no CUDA device that torch can use "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Use --device cpu or auto."
        )
    index = config.device.partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"--device {config.device}: only {torch.cuda.device_count()} CUDA device(s) are visible.")
    if config.precision == "bf16":  # validate() refused it with --full-state
        _check_bf16(config)


def _cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively on this CPU (AMX or AVX512-BF16)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def apply_process_settings(config: TrainConfig) -> None:
    """Torch's thread count and, with ``--keep-freed-memory``, glibc's malloc (before the model allocates)."""
    import warnings

    import torch

    from pixelrl.host_memory import keep_freed_memory

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if config.keep_freed_memory and not keep_freed_memory():
        warnings.warn(
            "--keep-freed-memory has no effect here: it configures glibc's malloc, and this C library is not glibc.",
            stacklevel=3,
        )


def _check_bf16(config: TrainConfig) -> None:
    """``--precision bf16`` needs bfloat16 on CUDA; on a CPU without AMX/AVX512-BF16 it runs, emulated and slower."""
    import warnings

    import torch
    from stable_baselines3.common.utils import get_device

    device = get_device(config.device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support (GPUs since Ampere "
            "have). Drop --precision bf16 (fp32 is the default)."
        )
    if device.type == "cpu" and not _cpu_has_bf16():
        warnings.warn(
            "--precision bf16 on a CPU without AMX or AVX512-BF16: torch emulates bfloat16 convolutions there, which "
            "is slower than fp32. Drop --precision bf16 unless you want its numerics.",
            stacklevel=2,
        )


def _existing_message(config: TrainConfig, paths: RunPaths) -> str:
    listed = ", ".join(str(p) for p in paths.existing())
    if find_resume_point(paths).checkpoint is None:
        way_out = (
            "It has no complete checkpoint (it was stopped before its first one): --resume starts it over "
            "from step 0 in place"
        )
    else:
        way_out = "Continue it with --resume"
    return (
        f"Run {config.run_name} already has files ({listed}). Nothing was changed. {way_out}, name a new run "
        "with --tag, or choose another --out-dir."
    )


def _resume_point(config: TrainConfig, paths: RunPaths, notes: list[str]) -> CheckpointInfo | None:
    point = find_resume_point(paths)
    for reason in point.skipped:
        notes.append(f"--resume skipped an incomplete or corrupt checkpoint: {reason}")
    if point.checkpoint is not None:
        return point.checkpoint
    if not paths.existing():
        raise ConfigError(
            f"--resume: no complete checkpoint of run {config.run_name} in {paths.periodic_dir} or "
            f"{paths.final_meta}. Check --tag / --seed / --out-dir, or start it without --resume."
        )
    notes.append(f"--resume: run {config.run_name} has no complete checkpoint yet; it starts over from step 0.")
    return None


def _check_episode_fits(config: TrainConfig, vec_env: VecEnv) -> None:
    spec = vec_env.get_attr("spec", indices=[0])[0]
    longest = getattr(spec, "max_episode_steps", None)
    per_env = config.buffer_size // config.n_envs
    if longest is not None and per_env <= longest:
        raise ConfigError(
            f"--buffer-size {config.buffer_size} leaves {per_env} transitions per env ({config.n_envs} envs), but "
            f"{config.env}'s episodes last {longest} steps and HER stores whole episodes. Use --buffer-size "
            f"{config.n_envs * (longest + 1) * 10:,} or more."
        )


class _Folders:
    """Creates the run's output folders, checks they are writable, and removes them again on refusal."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.created: list[Path] = []

    def make(self) -> None:
        for folder in self.folders:
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=folder, prefix=".pixelrl-write-test-"):
                    pass
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise ConfigError(
                    f"Cannot write to the output folder {folder} ({reason}). Choose a writable --out-dir "
                    "(or --checkpoints-dir / --results-dir / --runs-dir)."
                ) from None
            finally:
                self.created += [p for p in reversed(missing) if p.exists() and p not in self.created]

    def remove_created(self, keep: Path | None = None) -> None:
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                if keep is not None and keep.parent == folder:
                    keep.unlink(missing_ok=True)
                folder.rmdir()  # only succeeds when empty: nothing of anyone's is removed


def _free_disk_check(config: TrainConfig, folder: Path, model: SAC) -> None:
    if not config.save_replay_buffer or model.replay_buffer is None:
        return
    needed = int(getattr(model.replay_buffer, "nbytes", 0))
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise ConfigError(
            f"--save-replay-buffer writes buffers of up to {needed / 1e9:.1f} GB to {folder}, which has "
            f"{free / 1e9:.1f} GB free. Free disk space, choose another --checkpoints-dir, or drop "
            "--save-replay-buffer."
        )


@contextlib.contextmanager
def prepared_run(config: TrainConfig) -> Iterator[PreparedRun]:
    """Check everything, build the envs and the model once, and hold the run's lock for the block.

    Args:
        config: The settings as given.

    Yields:
        The prepared run. Its envs are closed when the block ends.

    Raises:
        ConfigError: For anything that would make the run fail, with the fix; nothing was changed.
    """
    config.validate()
    _check_device(config)
    check_env_id(config.env)
    apply_process_settings(config)
    paths = RunPaths.of(config)
    folders = _Folders([config.checkpoints_path, config.results_path, config.runs_path])
    with contextlib.ExitStack() as stack:
        try:
            folders.make()
            stack.enter_context(run_lock(paths.lock_file, config.run_name))
            run = _prepare_locked(config, paths)
        except ConfigError:
            stack.close()  # release the lock before removing what was created for this run
            folders.remove_created(keep=paths.lock_file)
            raise
        try:
            yield run
        finally:
            run.vec_env.close()


def _prepare_locked(config: TrainConfig, paths: RunPaths) -> PreparedRun:
    notes: list[str] = []
    checkpoint = _resume_point(config, paths, notes) if config.resume else None
    if not config.resume and paths.existing():
        raise ConfigError(_existing_message(config, paths))
    wall_offset = 0.0
    if checkpoint is not None:
        meta = read_meta(checkpoint.meta)
        config = resume_config(config, meta, checkpoint.meta)
        config.validate()
        wall_offset = float(meta.get("wall_seconds") or 0.0)
    steps_done = checkpoint.num_timesteps if checkpoint is not None else 0
    statistics = statistics_path(checkpoint.model) if checkpoint is not None and config.normalize else None
    try:
        vec_env = make_vec_env(config, seed=config.seed + steps_done, statistics=statistics)
    except ConfigError:
        raise
    except Exception as exc:  # a bad env setting surfaces here; the message names it
        raise ConfigError(f"Cannot build {config.env} as configured: {type(exc).__name__}: {exc}") from None
    try:
        try:
            # The first render: a broken OpenGL setup is refused here, before any work (below a
            # VecNormalize, whose statistics must not see this extra observation).
            getattr(vec_env, "venv", vec_env).reset()
        except Exception as exc:
            raise ConfigError(f"{config.env} could not be reset and rendered ({type(exc).__name__}: {exc}).") from None
        _check_episode_fits(config, vec_env)
        check_memory(config, vec_env.observation_space, vec_env.action_space)
        model = _model(config, vec_env, checkpoint, notes)
        _free_disk_check(config, config.checkpoints_path, model)
    except BaseException:
        vec_env.close()
        raise
    if config.learning_starts >= config.total_steps and steps_done < config.total_steps:
        notes.append(
            f"--learning-starts {config.learning_starts:,} >= --total-steps {config.total_steps:,}: the run only "
            "collects random experience and never trains."
        )
    for stale in paths.stale_temporaries():  # left by a writer killed mid-write; we hold the lock
        stale.unlink(missing_ok=True)
    return PreparedRun(config, paths, vec_env, model, checkpoint, wall_offset, notes)


def _model(config: TrainConfig, vec_env: VecEnv, checkpoint: CheckpointInfo | None, notes: list[str]) -> SAC:
    if checkpoint is None:
        try:
            return build_model(config, vec_env)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"Cannot build the model for these settings: {exc}") from None
    model = load_model(checkpoint.model, vec_env, config, config.device)
    if checkpoint.buffer is None:
        # A fresh buffer: collect learning_starts new steps before the first update, or HER would
        # have no finished episode to sample from.
        model.learning_starts = model.num_timesteps + config.learning_starts
        notes.append(f"--resume from {checkpoint.model} without a saved replay buffer: the buffer starts empty.")
        return model
    try:
        # Closes the episode in progress at save time, so HER can sample it and new episodes
        # start cleanly at the write position.
        model.load_replay_buffer(checkpoint.buffer, truncate_last_traj=True)
    except Exception as exc:
        raise ConfigError(
            f"The replay buffer {checkpoint.buffer} could not be loaded ({type(exc).__name__}: {exc}). Delete it to "
            "resume with an empty buffer, or resume from a copy of the run that has an intact one."
        ) from None
    buffer = model.replay_buffer
    assert buffer is not None
    if buffer.observation_space != vec_env.observation_space or buffer.action_space != vec_env.action_space:
        raise ConfigError(
            f"The replay buffer {checkpoint.buffer} was saved for observations {buffer.observation_space} and actions "
            f"{buffer.action_space}, not this run's {vec_env.observation_space} and {vec_env.action_space}. "
            "It belongs to another run: delete it to resume with an empty buffer."
        )
    return model
