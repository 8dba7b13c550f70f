"""Entry point of ``pixelrl-train``: one table of subcommands, parsed and dispatched.

``--help`` and refused input answer in seconds: MuJoCo, the envs and the networks are only
built when a subcommand runs. Exit status: 0 success, 1 a failed check
or a diverged run, 2 bad input (nothing was started or changed), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import tyro

from pixelrl.train import commands
from pixelrl.train.config import PRESETS, ConfigError, TrainConfig, resolve_base
from pixelrl.train.sweep.command import SweepArgs, run_sweep

__all__ = ["PROG", "SUBCOMMANDS", "Subcommand", "main", "parse_train_args"]

PROG = "pixelrl-train"

_TRAIN_DESCRIPTION = (
    "Train SAC + HER from pixels; defaults are the chapter's working configuration (critic-encoder "
    "routing, no DrQ). Two more options are read first: --preset {" + ",".join(PRESETS) + "} starts from "
    "named settings, and --config FILE (TOML, YAML or JSON, setting names as keys) sets values over the "
    "preset. Flags override both."
)


def parse_train_args(argv: list[str]) -> TrainConfig:
    """``train`` options: a preset and a config file first, then command-line flags over them.

    Raises:
        ConfigError: For an unknown preset or a bad config file.
        SystemExit: For flags tyro cannot parse (status 2, with tyro's message).
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset")
    pre.add_argument("--config", type=Path)
    known, rest = pre.parse_known_args(argv)
    base = resolve_base(known.preset, known.config)
    return tyro.cli(TrainConfig, prog=f"{PROG} train", description=_TRAIN_DESCRIPTION, args=rest, default=base)


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its options class, what runs it, and (for ``train``) its own parser."""

    options: type[Any]
    run: Callable[[Any], int]
    parse: Callable[[list[str]], Any] | None = None


SUBCOMMANDS: dict[str, Subcommand] = {
    "train": Subcommand(TrainConfig, commands.run_train, parse=parse_train_args),
    "demo": Subcommand(commands.DemoArgs, commands.run_demo),
    "eval": Subcommand(commands.EvalArgs, commands.run_eval),
    "render-frame": Subcommand(commands.RenderFrameArgs, commands.run_render_frame),
    "plot": Subcommand(commands.PlotArgs, commands.run_plot),
    "compare": Subcommand(commands.CompareArgs, commands.run_compare),
    "verify": Subcommand(commands.VerifyArgs, commands.run_verify),
    "probe": Subcommand(commands.ProbeArgs, commands.run_probe),
    "sweep": Subcommand(SweepArgs, run_sweep),
}
"""Every subcommand of ``pixelrl-train``, in the order ``--help`` lists them."""


class Terminated(Exception):
    """SIGTERM arrived (a job scheduler or ``kill``); raised in the main thread like Ctrl-C's KeyboardInterrupt."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _parse(args_list: list[str]) -> tuple[Subcommand, Any]:
    if args_list and args_list[0] in SUBCOMMANDS:
        chosen = SUBCOMMANDS[args_list[0]]
        if chosen.parse is not None:
            return chosen, chosen.parse(args_list[1:])
    parsed = tyro.extras.subcommand_cli_from_dict(
        {name: sub.options for name, sub in SUBCOMMANDS.items()},
        prog=PROG,
        description="Train and inspect pixel SAC + HER agents for goal-conditioned manipulation.",
        args=args_list,
    )
    chosen = next(sub for sub in SUBCOMMANDS.values() if isinstance(parsed, sub.options))
    return chosen, parsed


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pixelrl-train``.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status (see the module docstring).
    """
    from pixelrl.train.run.callbacks import NonFiniteLossError
    from pixelrl.wrappers import RenderingError

    # Signal handlers can only be installed from the main thread (a study may call main elsewhere).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        chosen, options = _parse(list(sys.argv[1:] if argv is None else argv))
        return int(chosen.run(options))
    except (ConfigError, RenderingError) as exc:
        return _error(str(exc))
    except NonFiniteLossError as exc:
        print(f"{PROG}: training stopped: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the disk filled up: atomic writes left every saved file intact
        print(
            f"{PROG}: stopped: {exc}. Every file saved before this point is intact; free the resource and "
            "continue with --resume.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the last complete checkpoint is kept (continue with --resume).", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{PROG}: terminated (SIGTERM); the last complete checkpoint is kept (continue with --resume).",
              file=sys.stderr)  # fmt: skip
        return 143
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
