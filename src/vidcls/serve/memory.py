"""Keep a long-running server's memory flat: limit glibc's malloc arenas.

glibc gives each thread that allocates under contention an arena of its own, up to 8 per
core, and memory freed into one arena is not reused by another thread. Decoding runs in a
pool of worker threads and each request's frames are freed by whichever thread finishes it,
so under sustained load RSS creeps up as the arenas fill with free but unreusable pages
(measured in benchmarks/serve_soak.md). The environment variable only works when set before the process
starts, which `vidcls serve --workers N` and a user's own uvicorn command do not guarantee,
so the server sets the same limit with mallopt when it starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

SERVER_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap the malloc arenas threads created from now on may use; False where that is not possible
    (not glibc), or where MALLOC_ARENA_MAX already says what the user wants."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        logger.info("no glibc mallopt here: malloc arenas left as they are")
        return False
    return mallopt(_M_ARENA_MAX, arenas) == 1
