"""The console script: signals are handled from the first instant, then the tap runs.

Importing the SDK takes most of a second. A SIGTERM or SIGINT in that time would end the
process with Python's defaults (-15 and nothing said, or a KeyboardInterrupt traceback);
here it ends as it does later in the run: the reason as the last line, exit 128 + signal.
The SDK installs the tap's own handlers (sdk_seam.SeamTap) once the tap is built.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

# The same words as the tap's own reason once it runs (tap.TapSpanning.stopped_by_signal).
STOPPED = "Stopped by signal {} before the sync was complete"


def _stopped_early(signum: int, _frame: FrameType | None) -> None:
    sys.stderr.write(STOPPED.format(signum) + "\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    """Handle signals, then import and run the tap."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_early)
    from tap_spanning.tap import main as run_tap  # noqa: PLC0415  # after the handlers

    run_tap()
