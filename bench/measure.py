"""Run a program as a child process into a counting null sink, and measure it.

The child's stdout is a pipe that the parent reads in large chunks and throws away
after counting: bytes, lines, RECORD messages per stream (by a byte-pattern count
in C, so the parent costs the child next to nothing on a 2-core machine) and every
other message (SCHEMA, STATE, ...) parsed in full (they are few). Nothing is kept,
so the parent's memory stays flat whatever the size of the output.

CPU time and peak RSS are the child's own, from `os.wait4`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

STREAMS: tuple[str, ...] = ("users", "roles", "role_memberships", "tenants", "tenant_syncs")
# Streams a run writes only when selected (`python -m bench --user-backups`): counted by
# the fast path too, and listed in the counts only when seen.
OPTIONAL_STREAMS: tuple[str, ...] = ("user_backups",)
_COUNTED = (*STREAMS, *OPTIONAL_STREAMS)
_READ_SIZE = 1 << 20
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# Any line the fast path does not count (SCHEMA, STATE, a RECORD with its keys in
# another order, ...): rare with the SDK's writers, parsed in full.
_OTHER_LINE = re.compile(
    rb'^(?!\{"type":"RECORD","stream":"(?:'
    + b"|".join(re.escape(stream.encode()) for stream in _COUNTED)
    + rb')",).*$',
    re.MULTILINE,
)


@dataclass
class OutputCounts:
    """What a Singer program wrote, counted without being stored."""

    bytes: int = 0
    lines: int = 0
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    schemas: dict[str, int] = field(default_factory=dict)
    state_messages: int = 0
    state_bytes_max: int = 0
    state_bytes_total: int = 0
    other_messages: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    @property
    def schema_messages(self) -> int:
        return sum(self.schemas.values())


class OutputCounter:
    """Feed it the child's stdout, chunk by chunk."""

    def __init__(self) -> None:
        self.counts = OutputCounts()
        self._tail = b""
        self._record_prefixes = {
            stream: b'\n{"type":"RECORD","stream":"' + stream.encode() + b'",'
            for stream in _COUNTED
        }

    def feed(self, data: bytes) -> None:
        self.counts.bytes += len(data)
        buffer = self._tail + data
        cut = buffer.rfind(b"\n") + 1
        if cut == 0:
            self._tail = buffer
            return
        self._tail = buffer[cut:]
        self._count_lines(buffer[:cut])

    def close(self) -> OutputCounts:
        if self._tail:
            self._count_lines(self._tail + b"\n")
            self._tail = b""
        return self.counts

    def _count_lines(self, chunk: bytes) -> None:
        counts = self.counts
        lines = chunk.count(b"\n")
        counts.lines += lines
        framed = b"\n" + chunk
        fast = 0
        for stream, prefix in self._record_prefixes.items():
            found = framed.count(prefix)
            if found:
                counts.records[stream] = counts.records.get(stream, 0) + found
                fast += found
        if fast == lines:  # the usual chunk: RECORDs of the known streams only
            return
        others = 0
        for match in _OTHER_LINE.finditer(chunk):
            if match.start() == len(chunk):  # the empty "line" after the final newline
                continue
            others += 1
            self._count_other(match.group())
        if lines != fast + others:  # cannot happen: every line is counted one way
            counts.bad_lines += abs(lines - fast - others)

    def _count_other(self, line: bytes) -> None:
        counts = self.counts
        try:
            message = json.loads(line)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            counts.bad_lines += 1
            return
        if kind == "SCHEMA":
            stream = str(message.get("stream"))
            counts.schemas[stream] = counts.schemas.get(stream, 0) + 1
        elif kind == "STATE":
            counts.state_messages += 1
            counts.state_bytes_max = max(counts.state_bytes_max, len(line) + 1)
            counts.state_bytes_total += len(line) + 1
        elif kind == "RECORD":
            stream = str(message.get("stream"))
            counts.records[stream] = counts.records.get(stream, 0) + 1
        else:
            counts.other_messages[kind] = counts.other_messages.get(kind, 0) + 1


@dataclass
class RunResult:
    """One measured run of a child program."""

    label: str
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    user_seconds: float
    system_seconds: float
    peak_rss_bytes: int
    first_output_seconds: float | None
    counts: OutputCounts
    stderr_lines: int
    stderr_tail: str
    requests: int = 0
    requests_by_path: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"]["total_records"] = self.counts.total_records
        return data


def _enlarge_pipe(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError):  # Linux only; a small pipe just costs switches
        fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)


def run_measured(
    label: str,
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    tee: Path | None = None,
    timeout: float = 1800.0,
) -> RunResult:
    """Run `command`, count its stdout, and return its wall/CPU/RSS and counts.

    With `tee`, stdout is also saved to that file (for `--verify`; it costs a write).
    """
    counter = OutputCounter()
    with tempfile.TemporaryFile() as stderr_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr_file
        )
        assert process.stdout is not None
        _enlarge_pipe(process.stdout)
        fd = process.stdout.fileno()
        first_output: float | None = None
        # A hung child is killed (its stdout then closes and the loop ends).
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            with open(tee, "wb") if tee is not None else contextlib.nullcontext() as copy:
                while data := os.read(fd, _READ_SIZE):
                    if first_output is None:
                        first_output = time.perf_counter() - started
                    counter.feed(data)
                    if copy is not None:
                        copy.write(data)
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        stderr_file.seek(0)
        stderr = stderr_file.read().decode("utf-8", "replace")
    lines = [line for line in stderr.splitlines() if line.strip()]
    return RunResult(
        label=label,
        returncode=process.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        user_seconds=usage.ru_utime,
        system_seconds=usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # kilobytes on Linux
        first_output_seconds=first_output,
        counts=counter.close(),
        stderr_lines=len(lines),
        stderr_tail="\n".join(lines[-5:]),
    )


def record_digests(
    path: Path,
    ignore: dict[str, frozenset[str]] | None = None,
    key: Callable[[str, Any], str] | None = None,
) -> dict[str, tuple[int, int]]:
    """Per stream (or per `key(stream, record)`): (RECORD count, order-independent
    digest of the records) of a saved output, in constant memory (for --verify).

    The digest is the sum, mod 2**64, of a hash of each record's canonical JSON, so two
    outputs with the same records in any order have the same digests. Memory matters
    here: a child's peak RSS (wait4) can never read lower than the bench's own peak at
    the moment it is started, so the bench must stay small. `ignore` names fields
    left out of the comparison, per stream.
    """
    ignore = ignore or {}
    found: dict[str, tuple[int, int]] = {}
    with path.open("rb") as handle:
        for line in handle:
            message = json.loads(line)
            if message.get("type") != "RECORD":
                continue
            stream, record = message["stream"], message["record"]
            skipped = ignore.get(stream)
            if skipped and isinstance(record, dict):
                record = {name: value for name, value in record.items() if name not in skipped}
            digest_add(found, key(stream, record) if key else stream, record)
    return found


def digest_add(found: dict[str, tuple[int, int]], key: str, record: Any) -> None:
    """Count `record` under `key` and add its hash to that key's digest."""
    count, total = found.get(key, (0, 0))
    found[key] = (count + 1, (total + record_digest(record)) % 2**64)


def record_digest(record: Any) -> int:
    """A 64-bit hash of a record's canonical JSON (key order does not matter)."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "big")
