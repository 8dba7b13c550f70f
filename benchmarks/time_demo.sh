#!/usr/bin/env bash
# Time `pixelrl-train demo` end to end (run it on an otherwise idle machine) and keep what it measured:
#   bash benchmarks/time_demo.sh
# writes benchmarks/results/demo/: the command's output, /usr/bin/time's wall time and peak memory,
# the load average before, the final evaluation JSON, the checkpoint metadata and the learning curve.
set -euo pipefail
cd "$(dirname "$0")/.."
out="benchmarks/results/demo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
uptime > "$out/load_before.txt"
/usr/bin/time -v pixelrl-train demo --out-dir "$work/demo" > "$out/demo_stdout.txt" 2> "$work/time.txt"
grep -E "Elapsed|Maximum resident" "$work/time.txt" > "$out/time_v.txt"
cp "$work"/demo/results/*_eval.json "$work"/demo/checkpoints/*.meta.json "$out/"
cp "$work"/demo/runs/demo/*/seed0/progress.jsonl "$out/"
cat "$out/time_v.txt"
