"""What the tap says and does when SIGTERM or SIGINT stops it before the tap is built.

Importing the SDK takes most of a second; entry.py installs `stopped_early` first, so a
signal in that time ends as it does later in the run (sdk_seam.SeamTap): the reason as the
last line, exit 128 + signal. Stdlib only, so that it costs nothing to import.
"""

from __future__ import annotations

import os
import sys
from types import FrameType

# The reason, the same words early and late (tap.TapSpanning.stopped_by_signal).
STOPPED = "Stopped by signal {} before the sync was complete"


def stopped_early(signum: int, _frame: FrameType | None) -> None:
    """The handler until the tap installs its own."""
    sys.stderr.write(STOPPED.format(signum) + "\n")
    sys.stderr.flush()
    os._exit(128 + signum)
