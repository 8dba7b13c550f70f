#!/usr/bin/env bash
# Runs the studies in queue.txt (or the file given), JOBS (default 2) at a time, 3 seeds each, into
# benchmarks/learning/results/<name>/; logs go to benchmarks/learning/results/<name>.log.
# The shared flags below are the configuration documented in docs/learning.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUEUE="${1:-benchmarks/learning/queue.txt}"
COMMON="--n-envs 4 --batch-size 64 --learning-rate 1e-4 --gamma 0.95 --learning-starts 1000 --threads 1 --total-steps 3000000 --checkpoint-freq 0"
REACH="--env pixelrl/PointReach-v0 --env-kwargs '{\"noise\":220}' --image-size 32 --frame-stack 2 --goal-mode strict --buffer-size 200000 $COMMON"
PUSH="--env pixelrl/PointPush-v0 --image-size 32 --frame-stack 2 --goal-mode strict --buffer-size 300000 $COMMON"
FETCHREACH="--env FetchReach-v4 --image-size 32 --frame-stack 2 --camera reach --hide-goal --goal-mode strict --buffer-size 200000 $COMMON"
STATE="--env pixelrl/PointReach-v0 --full-state --buffer-size 200000 $COMMON"
PUSHSTATE="--env pixelrl/PointPush-v0 --full-state --buffer-size 300000 $COMMON"
FETCHSTATE="--env FetchReach-v4 --full-state --buffer-size 200000 $COMMON"
PUSH16="--env pixelrl/PointPush-v0 --image-size 16 --num-filters 16 --frame-stack 2 --goal-mode strict --buffer-size 300000 $COMMON"
mkdir -p benchmarks/learning/results
grep -v '^#' "$QUEUE" | grep -v '^\s*$' | while read -r name rest; do
  args="${rest//@PUSHSTATE/$PUSHSTATE}"; args="${args//@PUSH16/$PUSH16}"; args="${args//@REACH/$REACH}"; args="${args//@PUSH/$PUSH}"
  args="${args//@FETCHSTATE/$FETCHSTATE}"; args="${args//@FETCHREACH/$FETCHREACH}"; args="${args//@STATE/$STATE}"
  echo "python benchmarks/learning/run.py --name $name $args > benchmarks/learning/results/$name.log 2>&1"
done | xargs -d '\n' -P "${JOBS:-2}" -I{} bash -c '{}'
