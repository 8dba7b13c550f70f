"""One summary of several kept studies of the same configurations (more seeds in a later study).

    python benchmarks/learning/merge_summary.py \
        benchmarks/learning/results/levers-fetchreach \
        benchmarks/learning/results/levers-fetchreach-seeds3-4 \
        --out benchmarks/learning/results/levers-fetchreach-seeds0-4

Links every run (``runs/<configuration>/<env>/seed<N>``) and final evaluation of the given study
folders into one temporary folder and writes its summary (``summary.md``, ``summary.json``,
``curves.png``, as ``pixelrl-train sweep --summary``) to ``--out``. A seed of a configuration in
two folders is refused: the studies must hold different seeds.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pixelrl.train.sweep.summary import write_summary

LINKED = ("runs/*/*/seed*", "results/*_eval.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", type=Path, nargs="+", help="kept study folders (collect_study.py's copies)")
    parser.add_argument("--out", type=Path, required=True, help="where the merged summary goes")
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
    print(f"{len(rows)} configurations from {len(args.studies)} studies -> {args.out}")


if __name__ == "__main__":
    main()
