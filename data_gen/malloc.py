"""Keep freed heap memory in the process instead of handing it back to the OS each batch.

Every batch allocates the same large buffers again (the rendered audio and the synth's
intermediate signals, ~16 MB each at 64 x 4 s x 16 kHz). glibc serves blocks that size
with mmap, or trims them off the heap when freed, so each batch page-faults its memory
back in and the kernel zeroes it: measured ~0.1-0.2 ms of CPU per sound in create-data.
Raising the thresholds lets freed blocks be reused; memory still peaks at the same
working set (two batches), it is just not returned between batches.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit; larger blocks are always mapped
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tune glibc malloc for this process; False where there is no glibc mallopt (a no-op)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
