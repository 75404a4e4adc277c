"""The tap's Singer message writer: msgspec encoding into a buffer, flushed in blocks.

The SDK's default writer encodes with simplejson and flushes stdout after every message,
which is half of the tap's time at 100,000 users. Here RECORD messages are encoded with
msgspec into one buffer that is written every 64 KiB; any other message (SCHEMA, STATE,
ACTIVATE_VERSION, BATCH) flushes the buffer first, so a STATE never overtakes the records
it covers, and whatever is buffered is written when the process exits, on failure too.

A signal may stop the tap in the middle of a write: the signal handler in sdk_seam/__init__.py
calls `flush_at_exit`, which first finishes the line the write had begun (a loader would
otherwise read half a message, and report a parse error that hides the reason), then
hands over what is buffered, whole lines only, for at most EXIT_WRITE_SECONDS (a reader
that stopped reading must not keep the tap from exiting). stdout is written with
os.write, without blocking and with SIGTERM and SIGINT held back until the count of bytes
written is stored, so the count is exact whenever a signal's handler reads it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import sys
import time
from datetime import datetime
from typing import Any

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override

FLUSH_AT = 64 * 1024
# The signals that stop the tap mid-run (the seam's termination handler, sdk_seam/__init__.py).
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# At exit, how long the tap waits for a slow reader to take what is left.
EXIT_WRITE_SECONDS = 5.0


class OutputClosedError(RuntimeError):
    """stdout was closed by its reader: the target stopped reading."""


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Writes Singer messages to stdout, RECORDs in 64 KiB blocks."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        # The block being written, and how much of it is out: read by flush_at_exit.
        self._writing: bytearray | None = None
        self._written = 0
        atexit.register(self.flush_at_exit)

    @override
    def write_message(self, message: Message) -> None:
        self._encode(message.to_dict())
        if not isinstance(message, RecordMessage) or len(self._buffer) >= FLUSH_AT:
            self.flush()

    def write_record(
        self,
        stream: str,
        record: dict[str, Any],
        version: int | None,
        time_extracted: datetime,
    ) -> None:
        """A RECORD message, as RecordMessage.to_dict() spells it, without the object."""
        message: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        message["time_extracted"] = time_extracted
        self._encode(message)
        if len(self._buffer) >= FLUSH_AT:
            self.flush()

    def _encode(self, message: dict[str, Any]) -> None:
        buffer = self._buffer
        encoder.encode_into(message, buffer, len(buffer))
        buffer.extend(b"\n")

    def flush(self) -> None:
        """Write out what is buffered."""
        data, self._buffer = self._buffer, bytearray()  # no copy: a fresh buffer
        try:
            self._write_out(data)
        except BrokenPipeError:
            raise OutputClosedError(
                "the target closed its input before the sync was complete; its own log "
                "should say why"
            ) from None

    def _write_out(self, data: bytearray) -> None:
        fd = _stdout_fd()
        if fd is None:  # stdout is not a file (a test captures it): its own write
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        self._writing, self._written = data, 0
        view = memoryview(data)
        while self._written < len(data):
            # Wait for room with signals free (a handler may run here and sees an exact
            # count), then write what fits without blocking, with the two signals held
            # back until the count is stored: a handler run between os.write's return and
            # the store would write those bytes a second time.
            select.select([], [fd], [])
            held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                os.set_blocking(fd, False)
                with contextlib.suppress(BlockingIOError):
                    self._written += os.write(fd, view[self._written :])
            finally:
                os.set_blocking(fd, True)
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self._writing = None

    def flush_at_exit(self) -> None:
        """Finish the line being written, then hand over whole buffered lines; never raise."""
        writing, written = self._writing, self._written
        self._writing = None
        rest = bytes(writing[written:]) if writing is not None else b""
        if self._buffer and not self._buffer.endswith(b"\n"):
            self._buffer.extend(b"\n")  # stopped between a message and its newline
        rest += bytes(self._buffer)
        self._buffer = bytearray()
        fd = _stdout_fd()
        if fd is None or not rest:
            return
        try:
            _write_whole_lines(fd, rest, started_a_line=written > 0 and writing is not None)
        except OSError:
            # stdout is gone (the reader closed the pipe): nothing more can be delivered,
            # and the failure was already reported; keep Python from reporting it again.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _stdout_fd() -> int | None:
    try:
        sys.stdout.flush()  # anything written as text first
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _write_whole_lines(fd: int, data: bytes, *, started_a_line: bool) -> None:
    """Write `data` to `fd`, stopping only at the end of a line, once EXIT_WRITE_SECONDS
    have passed. The line a signal cut is always finished: half a message would hide the
    reason from the loader."""
    deadline = time.monotonic() + EXIT_WRITE_SECONDS
    os.set_blocking(fd, False)
    view = memoryview(data)
    at = 0
    must_reach = data.find(b"\n") + 1 if started_a_line else 0
    while at < len(data):
        at_line_end = at == 0 or data[at - 1] == ord("\n")
        if at >= must_reach and at_line_end and time.monotonic() > deadline:
            return
        select.select([], [fd], [], 0.1)
        with contextlib.suppress(BlockingIOError):
            at += os.write(fd, view[at:])
