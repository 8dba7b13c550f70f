"""Keep a finished study's evidence in the repo: its curves, final evaluations and metadata, and its summary.

    python benchmarks/learning/collect_study.py studies/fetchreach-pixels benchmarks/learning/results/fetchreach-pixels

Copies ``study.json``, every run's ``progress.jsonl`` (the learning curve: evaluations during
training with env steps, training minutes and the load average), ``results/*_eval.json`` (final
evaluations) and ``checkpoints/*.meta.json`` (settings, machine, versions, wall time), but no
model or buffer, then writes the summary there (``pixelrl-train sweep --summary`` on the copy:
``summary.md``, ``summary.json``, ``curves.png``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pixelrl.train.sweep.summary import write_summary

KEPT = ("study.json", "runs/*/*/seed*/progress.jsonl", "results/*_eval.json", "checkpoints/*.meta.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="the study folder (--out-dir of pixelrl-train sweep)")
    parser.add_argument("out", type=Path, help="where to keep the copy")
    args = parser.parse_args()
    copied = 0
    for pattern in KEPT:
        for path in sorted(args.study.glob(pattern)):
            target = args.out / path.relative_to(args.study)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied += 1
    rows = write_summary(args.out)
    print(f"{copied} files -> {args.out}; {len(rows)} configurations summarized")


if __name__ == "__main__":
    main()
