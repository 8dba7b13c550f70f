"""Table of the state recipe search: env steps to 50% / 90% success per run (from state_search.py's JSONs).

python benchmarks/learning/state_search_summary.py [benchmarks/learning/results/state-search]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def first(curve: list[dict[str, float]], level: float) -> str:
    hit = next((row for row in curve if row["eval_success"] >= level), None)
    return "not reached" if hit is None else f"{hit['step'] / 1000:g}k"


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/learning/results/state-search")
    columns = "run | env | seed | settings changed from the base | to 50% | to 90% | last eval | train minutes | load"
    print(f"| {columns} |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = {"n_envs": 1, "gradient_steps": 1, "lr": 1e-3, "batch": 256, "gamma": 0.95, "tau": 0.005, "ent": "auto",
            "net": [256, 256], "her_k": 4, "normalize": False, "tqc": False}  # fmt: skip
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        args, curve = record["args"], record["curve"]
        changed = ", ".join(f"{k}={args[k]}" for k in base if args.get(k) != base[k])
        last = curve[-1] if curve else {"step": 0, "minutes": 0.0, "eval_success": 0.0}
        load = record["machine"]["load_average_at_start"][0]
        print(
            f"| {record['name']} | {args['env']} | {args['seed']} | {changed or '-'} | {first(curve, 0.5)} "
            f"| {first(curve, 0.9)} | {last['eval_success']:.0%} at {last['step'] / 1000:g}k | {last['minutes']:.1f} "
            f"| {load:.2f} |"
        )


if __name__ == "__main__":
    main()
