"""``pixelrl-train sweep``: run, resume or summarize a study of configurations x seeds on Ray Tune."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pixelrl.train.config import ConfigError
from pixelrl.train.sweep.study import Resources, Study, parse_value, study_from

__all__ = ["SweepArgs", "run_sweep"]

INSTALL_HINT = 'pip install "pixelrl[sweep]"'


@dataclass(frozen=True)
class SweepArgs:
    """Run a study (configurations x seeds, each trial a train run) on Ray Tune, locally or on a cluster."""

    study: Path | None = None
    """Study file (TOML, YAML or JSON): seeds, [base], [grid], [configurations], [resources], [search]."""
    out_dir: Path | None = None
    """The study folder: every trial's artifacts, Tune's state, the summary (default: studies/<name>)."""
    name: str | None = None
    """Study name (default: the study file's name)."""
    preset: str | None = None
    """Preset of the base settings."""
    set: tuple[str, ...] = ()
    """Base settings, KEY=VALUE (e.g. env=pixelrl/PointReach-v0 total_steps=20000)."""
    grid: tuple[str, ...] = ()
    """Grid values, KEY=V1,V2 (e.g. n_steps=1,3): every combination is a configuration."""
    seeds: tuple[int, ...] = ()
    """Seeds of every configuration (default: the study file's, else 0)."""
    concurrency: int | None = None
    """Trials at a time."""
    cpus_per_trial: float | None = None
    """CPUs per trial (also its torch threads)."""
    gpus_per_trial: float | None = None
    """GPUs per trial; a fraction (0.25) lets several trials share one GPU."""
    address: str | None = None
    """Ray cluster to join (auto, <head>:6379 or ray://<head>:10001); default: a local Ray for this command."""
    resume: bool = False
    """Continue the study in --out-dir: finished trials are kept, interrupted ones continue from their checkpoints."""
    retry_failed: bool = False
    """With --resume: run failed trials again."""
    summary: Path | None = None
    """Only summarize this study folder (summary.md, summary.json, curves.png) and exit."""
    summary_out: Path | None = None
    """Where --summary writes (default: the study folder)."""


def _pairs(items: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--{flag} takes KEY=VALUE, got {item!r}.")
        out[key.replace("-", "_")] = value
    return out


def _resources(args: SweepArgs) -> dict[str, float | int]:
    given = {
        "concurrency": args.concurrency,
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
    }
    return {k: v for k, v in given.items() if v is not None}


def _saved_study(out_dir: Path, args: SweepArgs) -> Study:
    from pixelrl.train.sweep.engine import STUDY_FILE

    path = out_dir / STUDY_FILE
    if not path.is_file():
        raise ConfigError(f"--resume: {path} does not exist; start the study without --resume.")
    changing = [flag for flag, value in (("--set", args.set), ("--grid", args.grid), ("--seeds", args.seeds),
                                          ("--preset", args.preset)) if value]  # fmt: skip
    if changing:
        raise ConfigError(f"--resume continues the saved study {path}; drop {', '.join(changing)}.")
    study = Study.from_dict(json.loads(path.read_text()), str(path))
    resources = {**study.resources.__dict__, **_resources(args)}
    return Study(study.name, study.base, study.configurations, study.seeds, Resources(**resources), study.search)


def run_sweep(args: SweepArgs) -> int:
    """Check the study, run it on Ray Tune, summarize it; exit 1 if a trial failed."""
    from pixelrl.train.sweep.summary import markdown, write_summary

    if args.summary is not None:
        print(markdown(write_summary(args.summary, args.summary_out)), end="")
        return 0
    if args.resume:
        if args.out_dir is None:
            raise ConfigError("--resume needs --out-dir, the folder of the study to continue.")
        out_dir = args.out_dir
        study = _saved_study(out_dir, args)
    else:
        study = study_from(
            args.study, name=args.name, preset=args.preset,
            base={k: parse_value(v) for k, v in _pairs(args.set, "set").items()},
            grid={k: [parse_value(v) for v in values.split(",")] for k, values in _pairs(args.grid, "grid").items()},
            seeds=args.seeds, resources=_resources(args),
        )  # fmt: skip
        out_dir = args.out_dir or Path("studies") / study.name
        from pixelrl.train.sweep.engine import STUDY_FILE

        if (out_dir / STUDY_FILE).exists():
            raise ConfigError(
                f"{out_dir} already holds a study; nothing was changed. Continue it with --resume, or choose "
                "another --out-dir."
            )
    study.check(out_dir.resolve())
    try:
        import ray.tune  # noqa: F401  (an optional dependency: say how to install it before anything starts)
    except ImportError as exc:
        raise ConfigError(
            f"pixelrl-train sweep runs on Ray Tune, which is not installed ({exc}). {INSTALL_HINT}"
        ) from None
    from pixelrl.train.sweep.engine import run_study

    outcome = run_study(study, out_dir, address=args.address, resume=args.resume, retry_failed=args.retry_failed)
    try:
        print(markdown(write_summary(out_dir)), end="")
    except ConfigError as exc:
        print(f"pixelrl-train: no summary: {exc}", file=sys.stderr)
    print(f"study {study.name}: {outcome.trials} trials in {outcome.seconds / 60:.1f} min; summary in {out_dir}")
    for trial, error in outcome.failed:
        print(f"pixelrl-train: trial {trial} failed: {error}", file=sys.stderr)
    return 1 if outcome.failed else 0
