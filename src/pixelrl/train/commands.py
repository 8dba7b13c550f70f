"""The subcommands of ``pixelrl-train`` other than ``train``: their options and what each one runs.

Each options class is a frozen dataclass whose field docstrings are the ``--help`` text; each
``run_*`` function returns the exit status. The table that names them is `cli.SUBCOMMANDS`.
Imports that need MuJoCo or build networks happen inside the functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from pixelrl.train.config import ConfigError, TrainConfig, demo_overlay, overlay
from pixelrl.wrappers.fetch import CameraName

__all__ = [
    "CompareArgs",
    "DemoArgs",
    "EvalArgs",
    "PlotArgs",
    "ProbeArgs",
    "RenderFrameArgs",
    "VerifyArgs",
    "run_compare",
    "run_demo",
    "run_eval",
    "run_plot",
    "run_probe",
    "run_render_frame",
    "run_train",
    "run_verify",
]


@dataclass(frozen=True)
class VerifyArgs:
    """Run the pipeline's checks against real FetchPush-v4 rendering; exit 1 if any fails."""

    env: str = "FetchPush-v4"
    """Fetch task to render."""
    seed: int = 0
    """Seed for the env, the data and the networks."""
    json: Path | None = None
    """Also write the results to this JSON file."""


@dataclass(frozen=True)
class ProbeArgs:
    """Show which optimizer trains the encoder in SB3's two wirings and in DrQv2SACPolicy."""

    env: str = "FetchPush-v4"
    """Fetch task whose pixel observations feed the probe."""
    seed: int = 0
    """Seed for the env, the data and the networks."""
    batch_size: int = 16
    """Transitions in the probe batch."""
    json: Path | None = None
    """Also write the results to this JSON file."""


@dataclass(frozen=True)
class DemoArgs:
    """A short CPU training run (minutes) that learns, writes every artifact and a learning-curve PNG."""

    out_dir: Path = Path("pixelrl-demo")
    """Folder for checkpoints/, results/ and runs/."""
    env: str = "pixelrl/PointReach-v0"
    """pixelrl/PointReach-v0 (learns in minutes) or a Fetch task (the chapter's demo: 84x84, 3,000 steps)."""
    seed: int = 0
    """Random seed."""
    total_steps: int | None = None
    """Environment steps (default: 8,000 for pixelrl/* envs, 3,000 for Fetch)."""
    resume: bool = False
    """Continue an interrupted demo."""


@dataclass(frozen=True)
class EvalArgs:
    """Evaluate a checkpoint with deterministic actions; its metadata says how to rebuild the env."""

    checkpoint: tyro.conf.Positional[Path]
    """A checkpoint zip written by pixelrl-train (its .meta.json must sit next to it)."""
    episodes: int = 100
    """Number of episodes (at least 1)."""
    seed: int | None = None
    """Seed of the first episode (default: 10000 + the training seed, disjoint from training)."""
    out: Path | None = None
    """Results JSON (default: <results>/<run>_eval.json, or _step<K>_eval.json for periodic checkpoints)."""
    device: str = "auto"
    """Torch device."""


@dataclass(frozen=True)
class RenderFrameArgs:
    """Save PNGs of exactly what the agent sees and of the full-resolution scene."""

    env: str = "FetchPush-v4"
    """Goal env id."""
    seed: int = 0
    """Reset seed."""
    image_size: int = 84
    """Agent image size."""
    frame_stack: int = 4
    """Stacked frames."""
    camera: CameraName = "default"
    """Camera preset (Fetch tasks)."""
    hide_goal: bool = False
    """Hide the goal marker (Fetch tasks)."""
    antialias: bool = True
    """Multisampled rendering (Fetch tasks)."""
    steps: int = 0
    """Random steps before capturing (0 or more)."""
    checkpoint: Path | None = None
    """Take the env settings from this checkpoint's metadata instead."""
    out_dir: Path = Path("results/frames")
    """Output folder."""


@dataclass(frozen=True)
class PlotArgs:
    """Plot learning curves (success, critic and actor loss) with their three phases."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run log folders (runs/<tag>/<env>/seed<N>) or progress.jsonl files."""
    out: Path | None = None
    """PNG to write (default: <run>/curves.png, or investigation.png with --investigation)."""
    investigation: bool = False
    """Summarise several runs (one per configuration) in one figure."""


@dataclass(frozen=True)
class CompareArgs:
    """Print a table of evaluation results across runs."""

    paths: tyro.conf.Positional[tuple[Path, ...]] = (Path("results"),)
    """Eval JSON files or folders holding *_eval.json."""
    format: Literal["markdown", "csv", "json"] = "markdown"
    """Table format."""
    per_run: bool = False
    """One row per run instead of one per tag (mean over seeds)."""


def _meta_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name.removesuffix(".zip") + ".meta.json")


def run_train(config: TrainConfig) -> int:
    """``pixelrl-train train``: one run, then its summary."""
    from pixelrl.train.results.summary import print_summary
    from pixelrl.train.run.runner import train

    print_summary(train(config))
    return 0


def run_demo(args: DemoArgs) -> int:
    """``pixelrl-train demo``: the demo's settings over the defaults, a run, its curves and summary."""
    from pixelrl.train.results.plots import plot_run
    from pixelrl.train.results.summary import print_summary
    from pixelrl.train.run.runner import train

    given = {"env": args.env, "seed": args.seed, "resume": args.resume, "out_dir": str(args.out_dir)}
    if args.total_steps is not None:
        given["total_steps"] = args.total_steps
    config = overlay(overlay(TrainConfig(), demo_overlay(args.env), source="the demo"), given, source="demo")
    result = train(config)
    png = result.paths.eval_json.with_name(f"{config.run_name}_curves.png")
    extra: dict[str, str] = {}
    try:
        plot_run(result.paths.log_dir, png, title=f"pixelrl demo: {config.env}, {result.num_timesteps:,} steps")
        extra["learning curves"] = str(png)
    except ValueError as exc:  # a run shorter than one log interval has no curve to draw
        extra["learning curves"] = f"none ({exc})"
    print_summary(result, extra=extra)
    return 0


def run_eval(args: EvalArgs) -> int:
    """``pixelrl-train eval``: evaluate a checkpoint and write its results JSON."""
    from pixelrl.train.run.checkpoints import read_meta
    from pixelrl.train.run.evaluate import evaluate_checkpoint

    checkpoint, meta_path = args.checkpoint, _meta_path(args.checkpoint)
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be positive, got {args.episodes}.")
    if not checkpoint.is_file():
        raise ConfigError(f"Checkpoint {checkpoint} does not exist.")
    if not meta_path.is_file():
        raise ConfigError(f"{meta_path} is missing: pixelrl-train eval needs the metadata written with the checkpoint.")
    out = args.out
    if out is None:
        try:
            saved = TrainConfig.from_dict(read_meta(meta_path)["config"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if checkpoint.resolve().is_relative_to(saved.checkpoints_path.resolve()):  # where the run wrote it
            is_final = checkpoint.name == f"{saved.run_name}.zip"
            suffix = "" if is_final else f"_{checkpoint.stem}"
            out = saved.results_path / f"{saved.run_name}{suffix}_eval.json"
        else:  # copied or shipped elsewhere: the run's folders are not this checkpoint's
            out = checkpoint.with_name(f"{checkpoint.stem}_eval.json")
    result = evaluate_checkpoint(checkpoint, meta_path, args.episodes, out, seed=args.seed, device=args.device)
    print(
        f"{result['episodes']} episodes: success {result['success_rate']:.1%}, mean return "
        f"{result['mean_return']:.2f}, final goal distance {result['mean_final_goal_distance']:.3f} -> {out}"
    )
    return 0


def run_render_frame(args: RenderFrameArgs) -> int:
    """``pixelrl-train render-frame``: PNGs of the agent's view and of the full scene."""
    from pixelrl.train.results.frames import render_frames
    from pixelrl.train.run.checkpoints import read_meta
    from pixelrl.train.run.factory import check_env_id

    if args.steps < 0:
        raise ConfigError(f"--steps must be 0 or more, got {args.steps}.")
    if args.checkpoint is not None:
        meta_path = _meta_path(args.checkpoint)
        try:
            config = TrainConfig.from_dict(read_meta(meta_path)["config"])
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"Cannot read {meta_path}: {exc}") from exc
    else:
        names = ("env", "seed", "image_size", "frame_stack", "camera", "hide_goal", "antialias")
        config = overlay(TrainConfig(), {name: getattr(args, name) for name in names}, source="render-frame")
        config.validate()
    check_env_id(config.env)
    # A checkpoint's frames are named after its file (a shipped or renamed one keeps its name).
    name = args.checkpoint.stem if args.checkpoint is not None else None
    for path in render_frames(config, args.out_dir, steps=args.steps, name=name):
        print(path)
    return 0


def run_plot(args: PlotArgs) -> int:
    """``pixelrl-train plot``: one run's curves with its phases, or several runs side by side."""
    from pixelrl.train.results.plots import plot_investigation, plot_run

    missing = [p for p in args.runs if not p.exists()]
    if missing:
        raise ConfigError(f"No such run folder or log: {', '.join(map(str, missing))}.")
    try:
        if args.investigation or len(args.runs) > 1:
            out = args.out or Path("investigation.png")
            for row in plot_investigation(list(args.runs), out):
                print(json.dumps(row))
        else:
            run = args.runs[0]
            out = args.out or (run if run.is_dir() else run.parent) / "curves.png"
            print(plot_run(run, out))
    except ValueError as exc:  # an empty or foreign log: say what is wrong with it
        raise ConfigError(str(exc)) from None
    print(out)
    return 0


def run_compare(args: CompareArgs) -> int:
    """``pixelrl-train compare``: a table of evaluation results."""
    from pixelrl.train.results.compare import compare_table, format_table, load_results

    try:
        results = load_results(list(args.paths))
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    print(format_table(compare_table(results, group_by_tag=not args.per_run), args.format))
    return 0


def run_verify(args: VerifyArgs) -> int:
    """``pixelrl-train verify``: the pipeline's checks on real rendering."""
    from pixelrl.diagnostics.checks import verify_checks

    results = []
    for result in verify_checks(args.env, args.seed):
        status = "PASS" if result.passed else "FAIL"
        print(f"[{status}] {result.name}: {result.detail} ({result.seconds:.1f} s)", flush=True)
        results.append(result)
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)}/{len(results)} checks passed in {sum(r.seconds for r in results):.0f} s")
    print("[ALL PASS] pixelrl verified." if not failed else f"[FAIL] {len(failed)} check(s) failed.")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
    return 1 if failed else 0


def run_probe(args: ProbeArgs) -> int:
    """``pixelrl-train probe``: which optimizer trains the encoder, in each of the three wirings."""
    from pixelrl.diagnostics.checks import probe_wirings

    rows = probe_wirings(args.env, args.seed, args.batch_size)
    header = (
        f"{'wiring':<13} {'encoder in actor opt':>20} {'in critic opt':>14} {'shared':>7} "
        f"{'trained by':>24} {'critic step moves':>19} {'actor step moves':>17}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        m, f = row["membership"], row["gradient_flow"]
        in_actor = f"{m['actor_encoder_in_actor_opt']}/{m['encoder_tensors']}"
        in_critic = f"{m['critic_encoder_in_critic_opt']}/{m['encoder_tensors']}"
        print(
            f"{row['wiring']:<13} {in_actor:>20} {in_critic:>14} {m['shared']!s:>7} {m['trained_by']:>24} "
            f"{f['critic_step_changes_encoder']!s:>19} {f['actor_step_changes_encoder']!s:>17}"
        )
    norms = rows[0]["gradient_norms"]
    print(
        f"\nGradient norm each loss sends into the encoder (same initial weights, batch of {args.batch_size}): "
        f"critic {norms['critic']:.3g}, actor {norms['actor']:.3g} (critic/actor = {norms['ratio']:.1f})"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0
