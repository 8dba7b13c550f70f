"""Compare evaluated checkpoints: load ``*_eval.json`` results, aggregate seeds, format a table."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, TypedDict, cast, overload

__all__ = ["SCHEMA", "EvalResult", "RunRow", "TagRow", "compare_table", "format_table", "load_results"]

SCHEMA = "pixelrl.eval/1"
"""The ``schema`` value of the eval results this module reads."""

_NUMBER = (int, float)
_FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "tag": (str,),
    "env": (str,),
    "seed": (int,),
    "checkpoint": (str,),
    "num_timesteps": (int,),
    "episodes": (int,),
    "successes": (int,),
    "success_rate": _NUMBER,
    "mean_return": _NUMBER,
    "mean_final_goal_distance": _NUMBER,
    "mean_time_to_success": (*_NUMBER, type(None)),
    "deterministic": (bool,),
    "versions": (dict,),
    "wall_seconds": _NUMBER,
}


class EvalResult(TypedDict):
    """One ``results/<tag>_<env>_seed<N>_eval.json``, plus the ``path`` it was read from."""

    schema: str
    tag: str
    env: str
    seed: int
    checkpoint: str
    num_timesteps: int
    episodes: int
    successes: int
    success_rate: float
    mean_return: float
    mean_final_goal_distance: float
    mean_time_to_success: float | None
    deterministic: bool
    versions: dict[str, str]
    wall_seconds: float
    path: str


class TagRow(TypedDict):
    """Seeds of one tag and env, aggregated by `compare_table`."""

    tag: str
    env: str
    n_seeds: int
    seeds: str
    episodes: int
    success_mean: float
    success_std: float | None
    success_min: float
    success_max: float
    mean_return: float
    mean_final_goal_distance: float
    mean_time_to_success: float | None
    num_timesteps_min: int
    num_timesteps_max: int


class RunRow(TypedDict):
    """One evaluated run, as `compare_table` lists it without grouping."""

    tag: str
    env: str
    seed: int
    num_timesteps: int
    episodes: int
    successes: int
    success_rate: float
    mean_return: float
    mean_final_goal_distance: float
    mean_time_to_success: float | None
    deterministic: bool
    checkpoint: str


def _validate(file: Path, data: object) -> EvalResult:
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object, got {type(data).__name__}. Pass a *_eval.json result file.")
    if data.get("schema") != SCHEMA:
        raise ValueError(
            f"{file}: schema is {data.get('schema')!r}, expected {SCHEMA!r}. Pass a result written by "
            "`pixelrl-train eval`, or re-run the evaluation with this version of pixelrl."
        )
    missing = sorted(set(_FIELDS) - set(data))
    if missing:
        raise ValueError(f"{file}: missing keys {missing}. Re-run `pixelrl-train eval` to rewrite the file.")
    for key, types in _FIELDS.items():
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"{file}: {key!r} is {value!r}, expected {expected}. The file is corrupt; re-run eval.")
    if not 0.0 <= data["success_rate"] <= 1.0:
        raise ValueError(f"{file}: success_rate {data['success_rate']!r} is outside [0, 1]. Re-run eval.")
    if data["episodes"] < 1 or not 0 <= data["successes"] <= data["episodes"]:
        raise ValueError(
            f"{file}: {data['successes']!r} successes in {data['episodes']!r} episodes is not a result "
            "(episodes must be positive). Re-run eval with --episodes 1 or more."
        )
    return cast(EvalResult, {**data, "path": str(file)})


def load_results(paths: Sequence[Path]) -> list[EvalResult]:
    """Read eval results, checking each against the ``pixelrl.eval/1`` schema.

    Args:
        paths: Result files, or directories whose ``*_eval.json`` files are read (not recursively).

    Returns:
        One result per run (tag, env and seed), in the order given (a directory's files sorted by
        name), each with a ``path`` key naming its file. A file given twice is read once. When a
        run has results at several points (periodic checkpoints evaluated next to the final one),
        the one with the most env steps is kept.

    Raises:
        ValueError: If a path does not exist, a directory holds no ``*_eval.json``, a file is
            not UTF-8 JSON or does not match the schema, or two files hold the same run at the
            same step.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*_eval.json"))
            if not found:
                raise ValueError(f"{path}: no *_eval.json files. Run `pixelrl-train eval` first or pass result files.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or directory. Pass eval result files or the results/ directory.")
    seen: dict[Path, None] = {}
    by_run: dict[tuple[str, str, int], EvalResult] = {}
    for file in files:
        if file.resolve() in seen:
            continue
        seen[file.resolve()] = None
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{file}: not valid JSON ({err}). Pass the *_eval.json files pixelrl-train wrote."
            ) from None
        result = _validate(file, data)
        run = (result["tag"], result["env"], result["seed"])
        earlier = by_run.get(run)
        if earlier is not None and earlier["num_timesteps"] == result["num_timesteps"]:
            raise ValueError(
                f"{file} and {earlier['path']} both hold tag {run[0]!r}, env {run[1]!r}, seed {run[2]} at step "
                f"{result['num_timesteps']:,}; pass only one of them so the seed is not counted twice."
            )
        if earlier is None or result["num_timesteps"] > earlier["num_timesteps"]:
            by_run[run] = result
    return list(by_run.values())


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _tag_row(runs: Sequence[EvalResult]) -> TagRow:
    rates = [float(r["success_rate"]) for r in runs]
    times = [float(t) for r in runs if (t := r["mean_time_to_success"]) is not None]
    steps = [r["num_timesteps"] for r in runs]
    return TagRow(
        tag=runs[0]["tag"],
        env=runs[0]["env"],
        n_seeds=len(runs),
        seeds=",".join(str(r["seed"]) for r in runs),
        episodes=sum(r["episodes"] for r in runs),
        success_mean=_mean(rates),
        success_std=statistics.stdev(rates) if len(rates) > 1 else None,
        success_min=min(rates),
        success_max=max(rates),
        mean_return=_mean([float(r["mean_return"]) for r in runs]),
        mean_final_goal_distance=_mean([float(r["mean_final_goal_distance"]) for r in runs]),
        mean_time_to_success=_mean(times) if times else None,
        num_timesteps_min=min(steps),
        num_timesteps_max=max(steps),
    )


def _run_row(r: EvalResult) -> RunRow:
    return RunRow(
        tag=r["tag"],
        env=r["env"],
        seed=r["seed"],
        num_timesteps=r["num_timesteps"],
        episodes=r["episodes"],
        successes=r["successes"],
        success_rate=float(r["success_rate"]),
        mean_return=float(r["mean_return"]),
        mean_final_goal_distance=float(r["mean_final_goal_distance"]),
        mean_time_to_success=r["mean_time_to_success"],
        deterministic=r["deterministic"],
        checkpoint=r["checkpoint"],
    )


@overload
def compare_table(results: Sequence[EvalResult], group_by_tag: Literal[True] = True) -> list[TagRow]: ...
@overload
def compare_table(results: Sequence[EvalResult], group_by_tag: Literal[False]) -> list[RunRow]: ...
@overload
def compare_table(results: Sequence[EvalResult], group_by_tag: bool = True) -> list[TagRow] | list[RunRow]: ...
def compare_table(results: Sequence[EvalResult], group_by_tag: bool = True) -> list[TagRow] | list[RunRow]:
    """Tabulate eval results per tag and env (aggregating seeds) or per run.

    Each seed weighs the same in the aggregates. ``success_std`` is the *sample* standard
    deviation over seeds (``ddof=1``; None for a single seed). ``mean_time_to_success`` averages
    only the seeds that succeeded at least once (None if none did).

    Args:
        results: What `load_results` returned.
        group_by_tag: One row per ``(tag, env)`` when True, one row per run when False.

    Returns:
        Rows sorted by tag, env (and seed).

    Examples:
        >>> base = {"env": "FetchPush-v4", "num_timesteps": 10, "episodes": 100, "mean_return": -5.0,
        ...         "mean_final_goal_distance": 0.01, "mean_time_to_success": 12.0}
        >>> runs = [{**base, "tag": "step2", "seed": s, "success_rate": r} for s, r in enumerate([0.9, 0.95, 1.0])]
        >>> row = compare_table(runs)[0]
        >>> row["n_seeds"], round(row["success_mean"], 6), round(row["success_std"], 6)
        (3, 0.95, 0.05)
    """
    ordered = sorted(results, key=lambda r: (r["tag"], r["env"], r["seed"]))
    if not group_by_tag:
        return [_run_row(r) for r in ordered]
    groups: dict[tuple[str, str], list[EvalResult]] = {}
    for r in ordered:
        groups.setdefault((r["tag"], r["env"]), []).append(r)
    return [_tag_row(runs) for runs in groups.values()]


def _cell(value: object, *, for_markdown: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}" if for_markdown else repr(value)
    if isinstance(value, list | tuple):
        return ";".join(_cell(v, for_markdown=for_markdown) for v in value)
    text = str(value)
    return text.replace("|", "\\|") if for_markdown else text


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def format_table(rows: Sequence[Mapping[str, object]], fmt: Literal["markdown", "csv", "json"]) -> str:
    """Render rows (from `compare_table` or `plot_investigation`).

    Columns are the union of the rows' keys in first-seen order. Markdown shows floats to 4
    significant digits and None as an empty cell; CSV keeps full precision (``repr``) with None
    empty; JSON writes None and non-finite floats as ``null``. Lists are joined with ``;`` in
    markdown and CSV.

    Args:
        rows: The rows.
        fmt: ``"markdown"`` (a GitHub table), ``"csv"`` or ``"json"`` (an indented array).

    Returns:
        The table, ending with a newline (empty for no rows in markdown and CSV).

    Raises:
        ValueError: If ``fmt`` is not one of the three formats.

    Examples:
        >>> print(format_table([{"tag": "step2", "success_mean": 0.95}], "markdown"), end="")
        | tag | success_mean |
        | --- | --- |
        | step2 | 0.95 |
    """
    if fmt not in ("markdown", "csv", "json"):
        raise ValueError(f"format {fmt!r} is not supported; use 'markdown', 'csv' or 'json'.")
    if fmt == "json":
        rows_out = [{k: _json_safe(v) for k, v in row.items()} for row in rows]
        return json.dumps(rows_out, indent=2, allow_nan=False) + "\n"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if not columns:
        return ""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c), for_markdown=False) for c in columns] for row in rows)
        return buffer.getvalue()
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(_cell(row.get(c), for_markdown=True) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
