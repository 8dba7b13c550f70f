"""Entry point of ``pixelrl-train``: parses a subcommand and dispatches to it.

Only the argument dataclasses load at start-up, so ``--help`` and bad input answer quickly;
torch, SB3 and MuJoCo load when a subcommand runs. Exit status: 0 success, 1 a failed check
or a diverged run, 2 bad input (nothing was started or changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tyro

from pixelrl.train.config import PRESETS, ConfigError, TrainConfig, resolve_base
from pixelrl.wrappers.fetch import CameraName

__all__ = ["DEMO", "DEMO_FETCH", "main", "parse_train_args"]

PROG = "pixelrl-train"

#: The demo on a MuJoCo-free pixel task that a 2-core CPU learns in minutes: success rises and
#: the critic loss falls (16,000 steps; 90% deterministic success in the run documented in docs/quickstart.md).
DEMO: dict[str, object] = {
    "env": "pixelrl/PointReach-v0",
    "image_size": 32,
    "frame_stack": 2,
    "n_envs": 4,
    "batch_size": 64,
    "buffer_size": 50_000,
    "learning_starts": 1_000,
    "total_steps": 16_000,
    "checkpoint_freq": 4_000,
    "save_replay_buffer": True,
    "eval_episodes": 20,
    "log_interval": 4,
    "grad_norm_freq": 1_000,
    "tag": "demo",
}

#: The chapter's demo on FetchPush-v4 at 84 x 84 (``--env FetchPush-v4``): every artifact in a
#: few minutes, far too short for the agent to succeed.
DEMO_FETCH: dict[str, object] = {
    "n_envs": 2,
    "total_steps": 3_000,
    "batch_size": 32,
    "buffer_size": 20_000,
    "learning_starts": 500,
    "checkpoint_freq": 1_000,
    "save_replay_buffer": True,
    "eval_episodes": 5,
    "log_interval": 2,
    "grad_norm_freq": 250,
    "tag": "demo",
}


@dataclass(frozen=True)
class VerifyArgs:
    """Run the chapter's checkpoints against real FetchPush-v4 rendering; exit 1 if any fails."""

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
    """Environment steps (default: 16,000 for pixelrl/* envs, 3,000 for Fetch)."""
    resume: bool = False
    """Continue an interrupted demo."""


@dataclass(frozen=True)
class EvalArgs:
    """Evaluate a checkpoint with deterministic actions; its metadata says how to rebuild the env."""

    checkpoint: tyro.conf.Positional[Path]
    """A checkpoint zip written by pixelrl-train (its .meta.json must sit next to it)."""
    episodes: int = 100
    """Number of episodes."""
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
    """Camera preset."""
    hide_goal: bool = False
    """Hide the goal marker."""
    steps: int = 0
    """Random steps before capturing."""
    checkpoint: Path | None = None
    """Take the env settings from this checkpoint's metadata instead."""
    out_dir: Path = Path("results/frames")
    """Output folder."""


@dataclass(frozen=True)
class PlotArgs:
    """Plot learning curves (success, critic and actor loss) with the chapter's three phases."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run log folders (runs/<tag>/<env>/seed<N>) or progress.jsonl files."""
    out: Path | None = None
    """PNG to write (default: <run>/curves.png, or investigation.png with --investigation)."""
    investigation: bool = False
    """Summarise several runs (one per chapter step) in one figure."""


@dataclass(frozen=True)
class CompareArgs:
    """Print a table of evaluation results across runs."""

    paths: tyro.conf.Positional[tuple[Path, ...]] = (Path("results"),)
    """Eval JSON files or folders holding *_eval.json."""
    format: Literal["markdown", "csv", "json"] = "markdown"
    """Table format."""
    per_run: bool = False
    """One row per run instead of one per tag (mean over seeds)."""


_TRAIN_DESCRIPTION = (
    "Train SAC + HER from pixels; defaults are the chapter's working configuration (critic-encoder "
    "routing, no DrQ). Two more options are read first: --preset {" + ",".join(PRESETS) + "} starts from a "
    "step of the chapter's investigation, and --config FILE (TOML or YAML, field names as keys) sets "
    "values over the preset. Flags override both."
)


def parse_train_args(argv: list[str]) -> TrainConfig:
    """``train`` flags: a preset and a config file first, then command-line flags over them."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset")
    pre.add_argument("--config", type=Path)
    known, rest = pre.parse_known_args(argv)
    base = resolve_base(known.preset, known.config)
    return tyro.cli(TrainConfig, prog=f"{PROG} train", description=_TRAIN_DESCRIPTION, args=rest, default=base)


def _run_train(config: TrainConfig) -> int:
    from pixelrl.train.runner import train
    from pixelrl.train.summary import print_summary

    result = train(config)
    print_summary(result)
    return 0


def _run_demo(args: DemoArgs) -> int:
    from pixelrl.train.plots import plot_run
    from pixelrl.train.runner import train
    from pixelrl.train.summary import print_summary

    settings: dict[str, object] = dict(DEMO) if args.env.startswith("pixelrl/") else {**DEMO_FETCH}
    settings.update(env=args.env, seed=args.seed, resume=args.resume)
    if args.total_steps is not None:
        settings["total_steps"] = args.total_steps
    config = dataclasses.replace(TrainConfig(), out_dir=args.out_dir, **settings)  # type: ignore[arg-type]
    result = train(config)
    png = result.paths.eval_json.with_name(f"{config.run_name}_curves.png")
    plot_run(result.paths.log_dir, png, title=f"pixelrl demo: {config.env}, {result.num_timesteps:,} steps")
    print_summary(result, extra={"learning curves": str(png)})
    return 0


def _run_eval(args: EvalArgs) -> int:
    from pixelrl.train.artifacts import read_meta
    from pixelrl.train.runner import evaluate_checkpoint

    checkpoint = args.checkpoint
    meta_path = checkpoint.with_name(checkpoint.name.removesuffix(".zip") + ".meta.json")
    if not checkpoint.is_file():
        raise ConfigError(f"Checkpoint {checkpoint} does not exist.")
    if not meta_path.is_file():
        raise ConfigError(f"{meta_path} is missing: pixelrl-train eval needs the metadata written with the checkpoint.")
    out = args.out
    if out is None:
        try:
            meta = read_meta(meta_path)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        saved = TrainConfig.from_dict(meta["config"])
        suffix = "" if checkpoint.parent.name == "checkpoints" else f"_{checkpoint.stem}"
        out = saved.results_path / f"{saved.run_name}{suffix}_eval.json"
    result = evaluate_checkpoint(checkpoint, meta_path, args.episodes, out, seed=args.seed, device=args.device)
    print(
        f"{result['episodes']} episodes: success {result['success_rate']:.1%}, mean return "
        f"{result['mean_return']:.2f}, final goal distance {result['mean_final_goal_distance']:.3f} -> {out}"
    )
    return 0


def _run_render_frame(args: RenderFrameArgs) -> int:
    from pixelrl.train.artifacts import read_meta
    from pixelrl.train.factory import check_env_id
    from pixelrl.train.render import render_frames

    if args.checkpoint is not None:
        meta_path = args.checkpoint.with_name(args.checkpoint.name.removesuffix(".zip") + ".meta.json")
        try:
            config = TrainConfig.from_dict(read_meta(meta_path)["config"])
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"Cannot read {meta_path}: {exc}") from exc
    else:
        fields = ("env", "seed", "image_size", "frame_stack", "camera", "hide_goal")
        config = dataclasses.replace(TrainConfig(), **{name: getattr(args, name) for name in fields})
        config.validate()
    check_env_id(config.env)
    for path in render_frames(config, args.out_dir, steps=args.steps):
        print(path)
    return 0


def _run_plot(args: PlotArgs) -> int:
    from pixelrl.train.plots import plot_investigation, plot_run

    missing = [p for p in args.runs if not p.exists()]
    if missing:
        raise ConfigError(f"No such run folder or log: {', '.join(map(str, missing))}.")
    if args.investigation or len(args.runs) > 1:
        out = args.out or Path("investigation.png")
        rows = plot_investigation(list(args.runs), out)
        for row in rows:
            print(json.dumps(row))
    else:
        run = args.runs[0]
        out = args.out or (run if run.is_dir() else run.parent) / "curves.png"
        phases = plot_run(run, out)
        print(phases)
    print(out)
    return 0


def _run_compare(args: CompareArgs) -> int:
    from pixelrl.train.compare import compare_table, format_table, load_results

    try:
        results = load_results(list(args.paths))
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    print(format_table(compare_table(results, group_by_tag=not args.per_run), args.format))
    return 0


def _run_verify(args: VerifyArgs) -> int:
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


def _run_probe(args: ProbeArgs) -> int:
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


_SUBCOMMANDS: dict[str, type] = {
    "demo": DemoArgs,
    "eval": EvalArgs,
    "render-frame": RenderFrameArgs,
    "plot": PlotArgs,
    "compare": CompareArgs,
    "verify": VerifyArgs,
    "probe": ProbeArgs,
}


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pixelrl-train``.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 a failed check or diverged run, 2 bad input.
    """
    from pixelrl.train.callbacks import NonFiniteLossError

    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "train":
            return _run_train(parse_train_args(args_list[1:]))
        parsed = tyro.extras.subcommand_cli_from_dict(
            {"train": TrainConfig, **_SUBCOMMANDS},
            prog=PROG,
            description="Train and inspect pixel SAC + HER agents for goal-conditioned manipulation.",
            args=args_list,
        )
        runners = {
            DemoArgs: _run_demo, EvalArgs: _run_eval, RenderFrameArgs: _run_render_frame, PlotArgs: _run_plot,
            CompareArgs: _run_compare, VerifyArgs: _run_verify, ProbeArgs: _run_probe,
        }  # fmt: skip
        run: Any = runners[type(parsed)]
        return int(run(parsed))
    except ConfigError as exc:
        return _error(str(exc))
    except NonFiniteLossError as exc:
        print(f"{PROG}: training stopped: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the last complete checkpoint is kept (continue with --resume).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
