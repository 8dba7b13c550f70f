#!/usr/bin/env bash
# Reruns every performance benchmark and stores its JSON under benchmarks/results/.
# Run it on an otherwise idle machine: the figures in docs/ come from these files.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results
python buffer_memory.py > results/buffer_memory.json
python update_throughput.py --rounds 8 > results/update_throughput.json
python update_throughput.py --rounds 8 --channels-last > results/update_throughput_channels_last.json
python env_throughput.py > results/env_throughput.json
python cpu_settings.py > results/cpu_settings.json
