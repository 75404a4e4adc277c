"""The console script: signals are handled from the first instant, then the tap runs,
and the process ends as soon as its output is out.

A SIGTERM or SIGINT while the SDK is being imported would otherwise end the process with
Python's defaults (-15 and nothing said, or a KeyboardInterrupt traceback); see signals.py.
The SDK installs the tap's own handlers (sdk_seam.SeamTap) once the tap is built.

Once the tap is done, every stream is flushed and the process exits at once: the
interpreter's teardown of a fleet run's objects and modules would add 0.1-0.2 s after
the last line, for nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

from tap_spanning.signals import stopped_early

# glibc's mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def give_freed_memory_back() -> None:
    """Tell glibc's malloc to hand freed response memory back to the system.

    By default each worker thread gets a malloc arena of its own, which keeps the pages
    it freed, and the mmap threshold rises once a large block is freed, so the next
    15 MiB body lands in a heap that never shrinks: with 16 tenants sending pages near
    the size bound, the process held 2.4 times what it did with 4, though the response
    budget (budget.py) held the same bytes. At most two arenas, and every block of
    128 KiB or more mapped (and unmapped when freed), keep memory at what is in use
    (docs/many-tenants.md). Other C libraries are left as they are.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, 2)
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def main() -> None:
    """Handle signals, run the tap, exit."""
    give_freed_memory_back()  # before any thread starts
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stopped_early)
    from tap_spanning.tap import main as run_tap  # noqa: PLC0415  # after the handlers

    try:
        run_tap()
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


def exit_now(code: int | str | None) -> None:
    """Flush what was written and end the process with `code`, as sys.exit would, but
    without the interpreter's teardown."""
    if isinstance(code, str):
        sys.stderr.write(f"{code}\n")
        code = 1
    status = 0 if code is None else code
    logging.shutdown()  # flushes every handler
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            # Output the reader no longer takes (or a closed stream): the run's output
            # did not all arrive, so the exit says so.
            status = status or 1
    os._exit(status)
