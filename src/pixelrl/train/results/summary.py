"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixelrl.train.config import TrainConfig

if TYPE_CHECKING:
    from pixelrl.train.run.runner import RunResult

__all__ = ["networks_receive", "print_summary"]

# (what the proprioception preset holds, what the task's position is), per env family.
_INPUTS = {
    "pixelrl/PointReach-v0": ("the agent's velocity", "the agent's position"),
    "pixelrl/PointPush-v0": ("the agent's position and velocity", "the object's position"),
    "FetchReach-strict": ("the gripper's opening and velocities", "the gripper's position"),
    "FetchReach": ("the gripper's position, opening and velocities", "the gripper's position"),
    "Fetch": ("the gripper's position, opening and velocities", "the object's position"),
}


def networks_receive(config: TrainConfig) -> str:
    """One sentence saying what the networks received: which inputs, and where the task's position came from.

    Examples:
        >>> from pixelrl.train.config import resolve_base
        >>> networks_receive(resolve_base("fetchreach", None))  # doctest: +ELLIPSIS
        "32 x 32 pixels (2 stacked frames), the gripper's opening and velocities and the desired goal; the..."
    """
    if config.full_state:
        return "the env's state vector and the goal vectors (no pixels)"
    family = config.env if config.env.startswith("pixelrl/") else "Fetch"
    if config.env.startswith("FetchReach"):
        family = "FetchReach-strict" if config.goal_mode == "strict" else "FetchReach"
    proprio, position = _INPUTS.get(family, ("its proprioception", "the task's position"))
    parts = [f"{config.image_size} x {config.image_size} pixels ({config.frame_stack} stacked frames)"]
    parts += [proprio] if config.proprio else []
    parts.append("both goal vectors" if config.goal_mode == "both" else "the desired goal")
    text = ", ".join(parts[:-1]) + " and " + parts[-1]
    if config.goal_mode == "strict":
        return f"{text}; {position} only from the pixels (strict)"
    return f"{text}; {position} also as a vector (not strict)"


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
    table.add_row("the networks received", networks_receive(config))
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
    console = Console()
    if not console.is_terminal:  # a log file: no need to wrap the rows at rich's default 80 columns
        console = Console(width=200)
    console.print(table)
