"""One summary of several kept studies of the same configurations (more seeds in a later study).

    python benchmarks/learning/merge_summary.py \
        benchmarks/learning/results/levers-fetchreach \
        benchmarks/learning/results/levers-fetchreach-seeds3-4 \
        --out benchmarks/learning/results/levers-fetchreach-seeds0-4 --paired defaults

Links every run (``runs/<configuration>/<env>/seed<N>``) and final evaluation of the given study
folders into one temporary folder and writes its summary (``summary.md``, ``summary.json``,
``curves.png``, as ``pixelrl-train sweep --summary``) to ``--out``. A seed of a configuration in
two folders is refused: the studies must hold different seeds. ``--paired BASE`` also writes
``paired.md``: per configuration, the seed-by-seed difference to ``BASE`` in env steps to 80%
(seeds where both reached it), with its mean and 95% t-interval.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from pixelrl.train.sweep.summary import confidence_interval, write_summary

LINKED = ("runs/*/*/seed*", "results/*_eval.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", type=Path, nargs="+", help="kept study folders (collect_study.py's copies)")
    parser.add_argument("--out", type=Path, required=True, help="where the merged summary goes")
    parser.add_argument("--paired", metavar="BASE", help="also write paired.md: differences to this configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="merged-study-") as temp:
        union = Path(temp)
        for study in args.studies:
            for pattern in LINKED:
                for path in sorted(study.glob(pattern)):
                    target = union / path.relative_to(study)
                    if target.exists():
                        parser.error(
                            f"{path.relative_to(study)} is in more than one study: merge studies of different seeds"
                        )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(path.resolve(), target_is_directory=path.is_dir())
        rows = write_summary(union, args.out)
    if args.paired:
        (args.out / "paired.md").write_text(paired(rows, args.paired))
    print(f"{len(rows)} configurations from {len(args.studies)} studies -> {args.out}")


def paired(rows: list[dict[str, Any]], base: str) -> str:
    """Seed-by-seed differences to ``base`` in env steps to 80%, as a Markdown table."""
    by_name = {row["configuration"]: row for row in rows}
    if base not in by_name:
        raise SystemExit(f"--paired {base}: no such configuration (there are {', '.join(sorted(by_name))})")

    def steps(row: dict[str, Any]) -> dict[int, int]:
        return {seed: hit["env_steps"] for seed, hit in zip(row["seeds"], row["to_80"], strict=True) if hit}

    reference = steps(by_name[base])
    lines = [
        f"| configuration | seeds | env steps to 80% minus {base}'s, per seed | mean (95% interval) |",
        "|---|---|---|---|",
    ]
    for name, row in sorted(by_name.items()):
        if name == base:
            continue
        mine = steps(row)
        seeds = sorted(set(mine) & set(reference))
        differences = [mine[seed] - reference[seed] for seed in seeds]
        mean, half = confidence_interval([float(d) for d in differences]) if differences else (float("nan"), None)
        interval = "" if half is None else f" (± {half:.0f})"
        cells = ", ".join(f"{d:+d}" for d in differences)
        lines.append(f"| {name} | {', '.join(map(str, seeds))} | {cells} | {mean:+.0f}{interval} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
