"""Entry point of ``pixelrl-train``: parses a subcommand and dispatches to it.

Only the argument dataclasses are imported at start-up, so ``--help`` and bad input answer
in well under a second; torch, SB3 and MuJoCo load when a subcommand runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tyro

__all__ = ["ProbeArgs", "VerifyArgs", "main"]


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


def _run_verify(args: VerifyArgs) -> int:
    from pixelrl.diagnostics.checks import verify_checks

    results = []
    for result in verify_checks(args.env, args.seed):
        status = "PASS" if result.passed else "FAIL"
        print(f"[{status}] {result.name}: {result.detail} ({result.seconds:.1f} s)", flush=True)
        results.append(result)
    failed = [r for r in results if not r.passed]
    total = sum(r.seconds for r in results)
    print(f"{len(results) - len(failed)}/{len(results)} checks passed in {total:.0f} s")
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
        f"{'trained by':>24} {'critic step moves it':>21} {'actor step moves it':>20}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        m, f = row["membership"], row["gradient_flow"]
        in_actor = f"{m['actor_encoder_in_actor_opt']}/{m['encoder_tensors']}"
        in_critic = f"{m['critic_encoder_in_critic_opt']}/{m['encoder_tensors']}"
        print(
            f"{row['wiring']:<13} {in_actor:>20} {in_critic:>14} {m['shared']!s:>7} {m['trained_by']:>24} "
            f"{f['critic_step_changes_encoder']!s:>21} {f['actor_step_changes_encoder']!s:>20}"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pixelrl-train``.

    Args:
        argv: Command-line arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The process exit status: 0 on success, 1 when a check or run fails, 2 for bad input.
    """
    args = tyro.extras.subcommand_cli_from_dict(
        {"verify": VerifyArgs, "probe": ProbeArgs},
        prog="pixelrl-train",
        description="Train and inspect pixel SAC + HER agents for goal-conditioned manipulation.",
        args=argv,
    )
    if isinstance(args, VerifyArgs):
        return _run_verify(args)
    if isinstance(args, ProbeArgs):
        return _run_probe(args)
    raise AssertionError(f"unhandled subcommand {args!r}")


if __name__ == "__main__":
    sys.exit(main())
