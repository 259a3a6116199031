"""Giving freed memory back to the system once a step has let go of its working frames.

glibc and Arrow keep what a process frees for reuse, and a frame freed in pieces leaves its memory fragmented, so the
next step's frames are often placed on fresh pages on top of it. Both the dashboard (long-lived: after each page) and
the analysis precompute (between its steps and the chunks of rows it writes) give it back here; measured figures are
in bench/RESULTS.md's table of optimisations. The dashboard also keeps its long-lived objects out of the garbage
collections Streamlit runs after every page."""

from __future__ import annotations

import ctypes
import gc

import pyarrow as pa


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc's own; other C libraries have none
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def give_back_freed_memory() -> None:
    """Arrow's unused buffers and glibc's free memory go back to the system (a few ms)."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_FROZEN = False


def leave_long_lived_out_of_collections() -> None:
    """Once per process (the dashboard calls it after each page): collect, then freeze what is left.

    Streamlit runs a full garbage collection after every page (runner.postScriptGC), which walked the ~190,000
    objects the imported libraries and the first page's caches leave behind: 60-75 ms, 40% of the server's CPU for
    a Place page (py-spy). Frozen objects are left out of every later collection; what later pages make is still
    collected (1 ms). A frozen object is still freed when nothing refers to it; only a reference cycle among them
    would stay, and they are the process's long-lived modules and caches."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()  # this page's garbage is not frozen with the rest
        gc.freeze()


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20


def set_up_allocators() -> None:
    """Called once, when the tracker package is first imported, in every process of the tracker.

    * Arrow's buffers (pandas' text columns, Parquet) come from the system allocator, not Arrow's default (mimalloc),
      which keeps freed buffers for reuse: 44 MB more in a dashboard process once every page had been drawn, about 45 MB
      more in the analysis precompute (measured).
    * glibc gives each block of 1 MiB or more its own mapping, returned to the system as soon as it is freed. By default
      the threshold rises with every such block freed (up to 32 MiB), so the working columns of a few hundred thousand
      rows came from the heap, and what they left there fragmented it: `tracker prepare` peaked about 50 MB higher,
      for about 1.3 s less system CPU time over its 25 s (measured). The analysis' short-lived forked process, whose
      bootstrap makes thousands of matrices of a few MB, keeps the heap for them instead (analysis/warm.py).
    * glibc also gives each thread that allocates an arena of its own (up to 8 per core), each keeping its freed
      memory, and Streamlit draws pages in threads: the dashboard's launchers set MALLOC_ARENA_MAX=2 (it has to be set
      before the process starts)."""
    pa.set_memory_pool(pa.system_memory_pool())
    mapped_apart_from(MMAP_THRESHOLD)


def mapped_apart_from(size: int) -> None:
    """glibc maps each block of `size` bytes or more apart (a fixed threshold: see set_up_allocators)."""
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, size)
