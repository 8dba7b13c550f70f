"""What running runs through `pixelrl-train sweep` costs: the study's wall time over the sum of its trials' times.

    python benchmarks/sweep_overhead.py [--steps 3000] [--seeds 3] [--out benchmarks/results/sweep_overhead.json]

Runs one study at concurrency 1 (one configuration, the ``pointreach`` recipe, ``--seeds`` seeds,
``--steps`` env steps each, so that each trial takes more than a minute on the 2-core machine) as
a subprocess, timed from the command's start to its exit, and reads back for each trial

- ``trial_seconds``: the time Ray Tune spent in the trial (``time_total_s`` of its last result:
  building the envs and the model, training, the final evaluation and the artifacts), and
- ``train_seconds``: the training loop alone (``wall_seconds`` of the run's final metadata).

The overhead is ``study wall / sum(trial_seconds) - 1``: Ray's start and stop, scheduling and the
worker processes. ``study wall / sum(train_seconds) - 1`` is reported too (everything but the
training loop). Absolute times depend on the machine and its load (both recorded); the ratio is the
figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "sweep_overhead.json"


def last_result(trial_dir: Path) -> dict[str, Any]:
    """The last row Ray Tune recorded for a trial."""
    lines = (trial_dir / "result.json").read_text().strip().splitlines()
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env steps per trial (default 3000)")
    parser.add_argument("--seeds", type=int, default=3, help="trials (one per seed; default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    study = {
        "name": "overhead",
        "seeds": list(range(args.seeds)),
        "base": {
            "preset": "pointreach",
            "total_steps": args.steps,
            "eval_episodes": 10,
            "checkpoint_freq": 0,
            "grad_norm_freq": 0,
        },
        "resources": {"concurrency": 1, "cpus_per_trial": 1},
    }
    with tempfile.TemporaryDirectory(prefix="pixelrl-sweep-overhead-") as tmp:
        folder = Path(tmp)
        study_file = folder / "overhead.json"
        study_file.write_text(json.dumps(study))
        out_dir = folder / "study"
        command = [sys.executable, "-m", "pixelrl.train.cli", "sweep"]
        command += ["--study", str(study_file), "--out-dir", str(out_dir)]
        load_before = os.getloadavg()
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        study_seconds = time.perf_counter() - start
        load_after = os.getloadavg()
        if done.returncode != 0:
            sys.exit(f"the study failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        trials = []
        for trial_dir in sorted(p for p in (out_dir / "tune").iterdir() if (p / "result.json").is_file()):
            row = last_result(trial_dir)
            trials.append({"trial": trial_dir.name, "trial_seconds": round(float(row["time_total_s"]), 2)})
        metas = sorted((out_dir / "checkpoints").glob("*.meta.json"))
        train_seconds = [float(json.loads(m.read_text())["wall_seconds"]) for m in metas]
    if len(trials) != args.seeds or len(train_seconds) != args.seeds:
        sys.exit(f"expected {args.seeds} finished trials, found {len(trials)} results and {len(train_seconds)} runs")
    trial_total = sum(t["trial_seconds"] for t in trials)
    train_total = sum(train_seconds)
    result = {
        "benchmark": "sweep_overhead",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "logical_cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "study": study,
        "study_seconds": round(study_seconds, 2),
        "trials": trials,
        "train_seconds": [round(s, 2) for s in train_seconds],
        "sum_trial_seconds": round(trial_total, 2),
        "sum_train_seconds": round(train_total, 2),
        "overhead_vs_trials": round(study_seconds / trial_total - 1, 4),
        "overhead_vs_training_loops": round(study_seconds / train_total - 1, 4),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
