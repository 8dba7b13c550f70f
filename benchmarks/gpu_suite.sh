#!/usr/bin/env bash
# The GPU checks and benchmarks, for a machine with one CUDA device: the CUDA tests, update
# throughput (fp32 / channels-last / bf16 autocast), where a replay batch's time goes, and
# end-to-end FetchPush env steps/s.
#
#     bash benchmarks/gpu_suite.sh [results-folder]     # default: benchmarks/results/gpu
#
# Each step has its own time limit and the suite goes on after a failure, so one broken step
# still leaves the others' JSON; the exit status is that of the last failure.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1
status=0
step() {  # step <seconds> <output file> <command...>
  local limit=$1 out=$2; shift 2
  echo "== $(date +%T) $*" >&2
  timeout "$limit" "$@" > "$out" || { local rc=$?; echo "!! exit $rc: $*" >&2; status=$rc; }
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >&2 || true
step 100 "$OUT/gpu_tests.log" python -m pytest -o addopts="" -m gpu -q -p no:cacheprovider \
  tests/algos/test_drqv2_sac_cuda.py tests/buffers/test_compact_cuda.py tests/buffers/test_augmentation.py
cd benchmarks
U="python update_throughput.py --device cuda --rounds 6 --steps 20 --threads 4"
step 80 "$OUT/update_throughput_cuda.json" $U
step 80 "$OUT/update_throughput_cuda_channels_last.json" $U --channels-last
step 80 "$OUT/update_throughput_cuda_bf16.json" $U --autocast bf16
step 120 "$OUT/gpu_sampling.json" python gpu_sampling.py --device cuda
step 240 "$OUT/env_throughput_cuda.json" python env_throughput.py --device cuda --steps 400 --threads 4
exit $status
