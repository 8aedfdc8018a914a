"""Freed large arrays go back to the system at once (glibc on Linux), so that the process's resident memory
follows what it holds, not what it once held.

glibc serves a large allocation (a numpy array of a picture) with its own mmap and gives it back when freed, but
raises that threshold each time such a block is freed (up to 32 MiB on 64-bit). After the first 4096 px pictures
were freed, later ones of up to 32 MiB came from the heap, whose freed holes the process keeps: the app with a
4096 x 4096 drawing (a 6 px grid of lines) open went from 1.16 to 1.38 GB resident over a stroke, a save and the
exports, and peaked at 1.50 GB (benchmarks/bench_app_fullres.py rss). With the threshold fixed at 16 MiB it stays
at 1.11-1.14 GB between those steps and peaks at 1.45 GB. (At 1 MiB it peaked at 1.43 GB, but a stroke on a
2048 px drawing took a third longer: every temporary array was a fresh mapping to fault in.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
LARGE_BLOCK = 16 << 20


def return_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes (module notes). False where there is no glibc (macOS,
    Windows, musl) or it refuses: nothing changes there."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
