"""Keep freed host memory in the process, so that batch-sized CPU tensors stop costing page faults.

A CPU update allocates and frees the same large tensors at every step: at batch 256 on the chapter's
12 x 84 x 84 frames, each float image batch is 87 MB and each feature map of the first layers 58 MB.
glibc's ``malloc`` serves every block above 32 MB (its largest mmap threshold) with a fresh
``mmap`` and hands it back with ``munmap`` when torch frees it, so the kernel zeroes those pages
again at every step: ``benchmarks/wallclock.py`` measured 0.36 s of kernel CPU time per eager
update (0.93 s wall) on the 2-core benchmark machine of docs/performance.md, and 0.02 s with
this setting. `keep_freed_memory` tells glibc to serve large blocks from its heap and never to
shrink it, so a freed block is reused by the next step's tensor of the same size, without a fault.

It changes no result: the same kernels compute the same values in memory that is merely reused.
The price is that the process keeps its peak heap until it exits (the memory is reused, not
returned to the system), which is what a training process wants and a long-lived notebook may
not. ``pixelrl-train --keep-freed-memory`` applies it before the model is built; in your own
script, call it first.
"""

from __future__ import annotations

import ctypes
import platform

__all__ = ["keep_freed_memory"]

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse: no ``mmap`` per large block, no heap trimming.

    Sets ``M_MMAP_MAX`` to 0 (every block comes from the heap) and ``M_TRIM_THRESHOLD`` to its
    largest value (the heap is not shrunk while less than 2 GiB at its top is free). Affects the
    whole process from this call on; blocks allocated before it are freed as they were allocated.

    Returns:
        True if glibc accepted both settings; False where the C library is not glibc (macOS,
        Windows, musl), where nothing is changed.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
