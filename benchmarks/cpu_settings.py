"""What the CPU-side settings are worth for one encoder pass: allocator, memory format, threads.

Each setting runs in a fresh process (torch reads THP_MEM_ALLOC_ENABLE at its first large
allocation), timing ManipulationCNN forward and forward+backward at batch 256 on 12 x 84 x 84
images, median of 7 after 2 warm-ups:

- THP_MEM_ALLOC_ENABLE=0 vs 1 (transparent huge pages for torch's CPU tensors),
- NCHW vs channels-last weights,
- 1 vs 2 torch threads.

    python benchmarks/cpu_settings.py

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(channels_last: bool, threads: int, batch: int) -> dict[str, float]:
    import torch

    from pixelrl.encoders import ManipulationCNN

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cnn = ManipulationCNN(12, 32)
    if channels_last:
        cnn = cnn.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    images = torch.randint(0, 256, (batch, 12, 84, 84), dtype=torch.uint8)
    forward, both = [], []
    for i in range(9):
        start = time.perf_counter()
        with torch.no_grad():
            cnn(images.float() / 255)
        mid = time.perf_counter()
        cnn(images.float() / 255).sum().backward()
        end = time.perf_counter()
        if i >= 2:
            forward.append(mid - start)
            both.append(end - mid)
    return {"forward_ms": 1000 * statistics.median(forward), "forward_backward_ms": 1000 * statistics.median(both)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker[0] == "channels_last", int(args.worker[1]), args.batch_size)))
        return
    from update_throughput import machine

    load_before = os.getloadavg()
    rows = []
    for thp, layout, threads in itertools.product(("0", "1"), ("nchw", "channels_last"), (1, 2)):
        env = {**os.environ, "THP_MEM_ALLOC_ENABLE": thp}
        cmd = [
            sys.executable,
            str(Path(__file__)),
            "--batch-size",
            str(args.batch_size),
            "--worker",
            layout,
            str(threads),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows.append({"THP_MEM_ALLOC_ENABLE": thp, "weights": layout, "threads": threads,
                     **json.loads(out.stdout.strip().splitlines()[-1])})  # fmt: skip
    print(json.dumps({
        "benchmark": "cpu_settings",
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "batch_size": args.batch_size,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "results": rows,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
