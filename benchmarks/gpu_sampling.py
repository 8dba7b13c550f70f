"""Where a pixel replay batch's time goes on a GPU machine: gather, host-to-device copy, or neither.

One batch of the chapter's update is 2 x 256 stacks of 12 x 84 x 84 uint8 (obs and next_obs,
43 MB). This times, median of ``--repeats`` after warm-ups, on frames stored once per step the
way ``CompactHerReplayBuffer`` stores them (``--frames`` frames of 3 x 84 x 84):

- ``numpy_gather``: the stacks gathered on the CPU with fancy indexing (what the buffer does),
- ``pageable_copy``: that array copied to the GPU (what ``to_torch`` does),
- ``pinned_gather_copy``: the gather written into page-locked memory, then an async copy,
- ``gpu_gather``: the frames kept on the GPU and the stacks gathered there (no copy per batch).

    python benchmarks/gpu_sampling.py --device cuda

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from update_throughput import machine


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--frame-stack", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, 3, 84, 84), dtype=np.uint8)
    newest = rng.integers(args.frame_stack, args.frames - 1, args.batch_size)
    # (2, B, stack) frame rows: obs ends at `newest`, next_obs one frame later.
    rows = np.stack([newest, newest + 1])[:, :, None] - np.arange(args.frame_stack - 1, -1, -1)
    shape = (2, args.batch_size, 3 * args.frame_stack, 84, 84)

    def numpy_gather() -> np.ndarray:
        return frames[rows].reshape(shape)

    batch = numpy_gather()

    def pageable_copy() -> torch.Tensor:
        return torch.from_numpy(batch).to(device)

    results = {
        "numpy_gather_ms": timed(numpy_gather, torch.device("cpu"), args.repeats),
        "pageable_copy_ms": timed(pageable_copy, device, args.repeats),
    }
    if device.type == "cuda":
        pinned = torch.empty(shape, dtype=torch.uint8).pin_memory()
        flat_rows = rows.reshape(-1)
        out = pinned.numpy().reshape(-1, 3, 84, 84)

        def pinned_gather_copy() -> torch.Tensor:
            np.take(frames, flat_rows, axis=0, out=out)
            return pinned.to(device, non_blocking=True)

        gpu_frames = torch.from_numpy(frames).to(device)
        gpu_rows = torch.from_numpy(rows.reshape(-1)).to(device)

        def gpu_gather() -> torch.Tensor:
            return gpu_frames.index_select(0, gpu_rows).reshape(shape)

        results["pinned_gather_copy_ms"] = timed(pinned_gather_copy, device, args.repeats)
        results["gpu_gather_ms"] = timed(gpu_gather, device, args.repeats)
        assert torch.equal(gpu_gather().cpu(), torch.from_numpy(batch))
        assert torch.equal(pinned_gather_copy().cpu(), torch.from_numpy(batch))
    report = {
        "benchmark": "gpu_sampling",
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "settings": vars(args) | {"batch_bytes": int(np.prod(shape))},
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
