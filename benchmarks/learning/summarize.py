"""Turn learning-curve JSONs (from run.py) into a table of time-to-50% and time-to-80% per configuration.

    python benchmarks/learning/summarize.py benchmarks/learning/results [--json summary.json]

Each configuration lists, per seed, the training minutes and env steps at which deterministic
evaluation first reached 50% and 80% success, or "not within budget".
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def cell(hit: dict[str, float] | None) -> str:
    return "not within budget" if hit is None else f"{hit['minutes']:.1f} min / {hit['step'] / 1000:.0f}k"


def summarize(root: Path) -> list[dict[str, Any]]:
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = [json.loads(f.read_text()) for f in sorted(folder.glob("seed*.json"))]
        if not runs:
            continue
        hits50 = [r["time_to_50"] for r in runs]
        hits80 = [r["time_to_80"] for r in runs]
        reached80 = [h["minutes"] for h in hits80 if h is not None]
        rows.append(
            {
                "name": folder.name,
                "seeds": [r["seed"] for r in runs],
                "budget_minutes": runs[0]["budget_minutes"],
                "time_to_50": [cell(h) for h in hits50],
                "time_to_80": [cell(h) for h in hits80],
                "reached_80": f"{len(reached80)}/{len(runs)}",
                "median_minutes_to_80": statistics.median(reached80) if len(reached80) == len(runs) else None,
                "final_success": [r["final_success"] for r in runs],
                "minutes_run": [round(r["curve"][-1]["minutes"], 1) if r["curve"] else 0 for r in runs],
                "machine": runs[0]["machine"]["platform"],
                "torch_threads": runs[0]["machine"]["torch_threads"],
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| configuration | seeds | time to 50% (min / env steps) | time to 80% | reached 80% | final eval success |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        final = ", ".join(f"{s:.0%}" for s in r["final_success"] if s is not None)
        lines.append(
            f"| {r['name']} | {len(r['seeds'])} | {'; '.join(r['time_to_50'])} | {'; '.join(r['time_to_80'])} | "
            f"{r['reached_80']} | {final} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, nargs="?", default=Path("benchmarks/learning/results"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = summarize(args.root)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
