"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixelrl.train.run.runner import RunResult

__all__ = ["print_summary"]


def print_summary(result: RunResult, extra: dict[str, str] | None = None) -> None:
    """Print steps, time, throughput, evaluation and artifact paths of a finished run.

    Args:
        result: The run's result.
        extra: More rows (label -> value).
    """
    from rich.console import Console
    from rich.table import Table

    config, paths = result.config, result.paths
    table = Table(title=f"pixelrl run {config.run_name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rate = result.num_timesteps / result.wall_seconds if result.wall_seconds > 0 else 0.0
    table.add_row("env steps", f"{result.num_timesteps:,}")
    table.add_row("wall time", f"{result.wall_seconds / 60:.1f} min ({rate:.1f} steps/s over all segments)")
    table.add_row("encoder routing", config.routing)
    if result.eval is not None:
        ev = result.eval
        tts = ev["mean_time_to_success"]
        table.add_row(
            "evaluation",
            f"success {ev['success_rate']:.1%} over {ev['episodes']} episodes, mean return {ev['mean_return']:.2f}, "
            f"final goal distance {ev['mean_final_goal_distance']:.3f}, "
            f"time to success {'-' if tts is None else f'{tts:.1f} steps'}",
        )
    table.add_row("model", f"{paths.final_model} (+ .meta.json)")
    if paths.periodic_dir.is_dir():
        table.add_row("checkpoints", str(paths.periodic_dir))
    if result.eval is not None:
        table.add_row("eval results", str(paths.eval_json))
    table.add_row("logs", f"{paths.log_dir} (tensorboard --logdir {config.runs_path})")
    for label, value in (extra or {}).items():
        table.add_row(label, value)
    Console().print(table)
