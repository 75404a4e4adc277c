"""The emulator in its own process, with a request counter the bench can read.

`python -m bench.emulator --users N ...` serves a generated tenant with
`tap_spanning.emulator.SpanningEmulator` (so it never shares a GIL with the program
being measured), prints `{"base_url": ...}` on stdout once listening, then obeys
one command per stdin line:

- `stats`: print the requests received since the last `stats` as one JSON line
  (`{"requests": n, "by_path": {...}, "by_status": {...}}`) and forget them;
- `quit` (or end of input): stop.

`Emulator` is the bench's side of it: start, read stats, stop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "bench-admin@contoso.example"
API_KEY = "0b7e4c1a-5d2f-4e8b-9c3a-6f1d2e7b8a45"
_START_TIMEOUT = 120.0


def serve(argv: list[str] | None = None) -> int:
    """The child process."""
    from tap_spanning.emulator import SpanningEmulator, generate_users  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.emulator")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--admin-email", default=ADMIN_EMAIL)
    parser.add_argument("--api-key", default=API_KEY)
    args = parser.parse_args(argv)
    emulator = SpanningEmulator(
        generate_users(args.users, args.seed),
        admin_email=args.admin_email,
        api_key=args.api_key,
        port=0,
        max_page_size=args.max_page_size,
        latency=args.latency_ms / 1000,
    ).start()
    try:
        print(json.dumps({"base_url": emulator.base_url}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "stats":
                log = emulator.requests
                emulator.clear_requests()
                paths = Counter(entry.path.partition("?")[0] for entry in log)
                statuses = Counter(str(entry.status) for entry in log)
                stats = {"requests": len(log), "by_path": paths, "by_status": statuses}
                print(json.dumps(stats), flush=True)
    finally:
        emulator.stop()
    return 0


class Emulator:
    """A `python -m bench.emulator` child: `with Emulator(users=...) as emu: emu.base_url`."""

    def __init__(
        self,
        users: int,
        *,
        seed: int = 1,
        latency_ms: float = 0.0,
        max_page_size: int = 1000,
    ) -> None:
        self.users = users
        self.latency_ms = latency_ms
        self.startup_seconds = 0.0
        self._args = [
            "--users",
            str(users),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            "--max-page-size",
            str(max_page_size),
        ]
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> Emulator:
        started = time.perf_counter()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.emulator", *self._args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read_line()
        self.base_url = str(ready["base_url"])
        self.startup_seconds = time.perf_counter() - started
        return self

    def _read_line(self) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=_START_TIMEOUT)
            raise RuntimeError(f"the bench emulator exited ({code}) before answering")
        value: dict[str, Any] = json.loads(line)
        return value

    def stats(self) -> dict[str, Any]:
        """Requests received since the last call (and forget them)."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write("stats\n")
        self._process.stdin.flush()
        return self._read_line()

    def tap_config(self, page_size: int) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "admin_email": ADMIN_EMAIL,
            "api_key": API_KEY,
            "page_size": page_size,
        }

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        try:
            assert process.stdin is not None
            process.stdin.write("quit\n")
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    raise SystemExit(serve())
