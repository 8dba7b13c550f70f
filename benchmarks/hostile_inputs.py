"""Feed pixelrl-train the bad inputs and faults a hostile user would, and record how each one ends.

    python benchmarks/hostile_inputs.py [--json benchmarks/results/hostile_inputs.json]

Each case runs `pixelrl-train` in a fresh temporary folder and is graded: ``good`` when it ends
with the expected exit status, a message without a traceback, and (for refused input) nothing
created; ``bad`` otherwise. Prints one line per case and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["--env", "pixelrl/PointReach-v0", "--image-size", "16", "--frame-stack", "2", "--n-envs", "1",
        "--batch-size", "8", "--buffer-size", "2000", "--learning-starts", "100", "--threads", "1",
        "--eval-episodes", "2", "--grad-norm-freq", "0"]  # fmt: skip

# name -> (arguments after the program name, expected exit status)
CASES: dict[str, tuple[list[str], int]] = {
    "learning rate 1e30": (["train", *TINY, "--learning-rate", "1e30"], 2),
    "learning rate inf": (["train", *TINY, "--learning-rate", "inf"], 2),
    "entropy nan": (["train", *TINY, "--ent-coef", "nan"], 2),
    "entropy auto_xyz": (["train", *TINY, "--ent-coef", "auto_xyz"], 2),
    "entropy 1e38 (diverges)": (["train", *TINY, "--ent-coef", "1e38", "--total-steps", "600"], 1),
    "seed -1": (["train", *TINY, "--seed", "-1"], 2),
    "seed 1e11": (["train", *TINY, "--seed", "100000000000"], 2),
    "threads 0": (["train", *TINY, "--threads", "0"], 2),
    "threads -3": (["train", *TINY, "--threads", "-3"], 2),
    "net arch -5": (["train", *TINY, "--net-arch", "-5"], 2),
    "net arch 0": (["train", *TINY, "--net-arch", "0"], 2),
    "device nonsense": (["train", *TINY, "--device", "nonsense"], 2),
    "device cuda without a GPU": (["train", *TINY, "--device", "cuda"], 2),
    "grad-norm-freq -1": (["train", *TINY, "--grad-norm-freq", "-1"], 2),
    "drq-pad 100": (["train", *TINY, "--drq", "--drq-pad", "100"], 2),
    "tag ..": (["train", *TINY, "--tag", ".."], 2),
    "buffer 10": (["train", *TINY, "--buffer-size", "10", "--batch-size", "4"], 2),
    "image size 2": (["train", *TINY, "--image-size", "2"], 2),
    "nature encoder on 16 px": (["train", *TINY, "--encoder", "nature", "--no-spatial-softmax"], 2),
    "batch 5000, buffer 1000": (["train", *TINY, "--batch-size", "5000", "--buffer-size", "1000"], 2),
    "camera reach on a point env": (["train", *TINY, "--camera", "reach"], 2),
    "learning starts beyond the run": (["train", *TINY, "--learning-starts", "500", "--total-steps", "200"], 0),
    "unknown env": (["train", "--env", "FetchPushh-v4"], 2),
    "resume with nothing": (["train", *TINY, "--resume"], 2),
    "eval episodes -3": (["eval", "missing.zip", "--episodes", "-3"], 2),
    "eval missing checkpoint": (["eval", "missing.zip"], 2),
    "render-frame steps -5": (["render-frame", "--env", "pixelrl/PointReach-v0", "--steps", "-5"], 2),
    "render-frame reach camera on a point env": (
        ["render-frame", "--env", "pixelrl/PointReach-v0", "--camera", "reach"],
        2,
    ),
    "plot a garbage folder": (["plot", "garbage"], 2),
    "plot an empty log": (["plot", "empty"], 2),
    "compare a binary file": (["compare", "binary_eval.json"], 2),
    "config: not UTF-8": (["train", "--config", "binary.yaml"], 2),
    "config: alias bomb": (["train", "--config", "bomb.yaml"], 2),
    "config: python tag": (["train", "--config", "code.yaml"], 2),
    "config: .nan": (["train", "--config", "nan.yaml"], 2),
    "output folder is a file": (["train", *TINY, "--out-dir", "a_file"], 2),
    "output folder under /proc": (["train", *TINY, "--out-dir", "/proc/pixelrl"], 2),
    "sweep: bad grid": (["sweep", "--set", "env=pixelrl/PointReach-v0", "--grid", "batch_size=64,-1"], 2),
    "MUJOCO_GL=nonsense": (["train", "--env", "FetchReach-v4"], 2),
}


def prepare(folder: Path) -> None:
    (folder / "garbage").mkdir()
    (folder / "empty").mkdir()
    (folder / "empty" / "progress.jsonl").write_text("")
    (folder / "binary_eval.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    (folder / "binary.yaml").write_bytes(b"seed: 1\n\xff\xfe\n")
    bomb = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb.append(f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    (folder / "bomb.yaml").write_text("\n".join(bomb) + "\n")
    (folder / "code.yaml").write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    (folder / "nan.yaml").write_text("learning_rate: .nan\n")
    (folder / "a_file").write_text("not a folder")


def run_case(name: str, args: list[str], expected: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        before = {p.name for p in folder.iterdir()}
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        if name == "MUJOCO_GL=nonsense":
            env["MUJOCO_GL"] = "nonsense"
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "pixelrl.train.cli", *args], cwd=folder, env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        seconds = time.perf_counter() - start
        created = sorted({p.name for p in folder.iterdir()} - before)
    message = next((line for line in out.stderr.splitlines() if "pixelrl-train" in line or "Error" in line), "")
    traceback = "Traceback" in out.stderr
    refused = expected == 2
    good = out.returncode == expected and not traceback and (not refused or not created)
    good = good and (out.returncode == 0 or bool(message))
    return {
        "case": name, "expected": expected, "status": out.returncode, "traceback": traceback,
        "created": created, "seconds": round(seconds, 1), "message": message[:300], "grade": "good" if good else "bad",
        "pwned": "pwned" in out.stdout,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rows = []
    for name, (case_args, expected) in CASES.items():
        row = run_case(name, case_args, expected)
        rows.append(row)
        print(f"[{row['grade']}] {name}: exit {row['status']} (expected {expected}) {row['message']}", flush=True)
    bad = [r for r in rows if r["grade"] != "good"]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} cases handled as intended\n")
    print("| case | exit | expected | message |\n|---|---|---|---|")
    for row in rows:
        text = str(row["message"]).replace("|", "\\|")
        print(f"| {row['case']} | {row['status']} | {row['expected']} | {text} |")
    if args.json is not None:
        import platform

        record = {"machine": platform.platform(), "cases": rows, "bad": len(bad)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
