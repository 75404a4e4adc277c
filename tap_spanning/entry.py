"""The console script: signals are handled from the first instant, then the tap runs.

A SIGTERM or SIGINT while the SDK is being imported would otherwise end the process with
Python's defaults (-15 and nothing said, or a KeyboardInterrupt traceback); see signals.py.
The SDK installs the tap's own handlers (sdk_seam.SeamTap) once the tap is built.
"""

from __future__ import annotations

import signal

from tap_spanning.signals import stopped_early


def main() -> None:
    """Handle signals, then import and run the tap."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stopped_early)
    from tap_spanning.tap import main as run_tap  # noqa: PLC0415  # after the handlers

    run_tap()
