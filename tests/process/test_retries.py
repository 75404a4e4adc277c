"""Retries seen from outside: the console script's real exit status and last stderr line
after a fault that persists, and a port that comes up while the tap waits to retry.

The other kinds, in-process, are in tests/inprocess/test_retries.py; tests/fault_kinds.py says
what each must show.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import EmulatorFactory
from tests.emulator_requests import paths_of
from tests.failure_fixtures import USERS_PATH
from tests.fault_kinds import (
    KINDS,
    PAGES,
    PROCESS_KINDS,
    TENANT,
    Kind,
    assert_fault_free_output,
    assert_persistent_fault_fails_fast,
    config_for,
)
from tests.hostile_server import TENANT_PATH, retry_warnings
from tests.tapdriver import DEBUG_ENV, start_tap

pytestmark = pytest.mark.process


@pytest.mark.parametrize("kind", [k for k in KINDS if k.id in PROCESS_KINDS], ids=lambda k: k.id)
def test_persistent_fault_fails_fast_with_one_line(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path, kind: Kind
) -> None:
    assert_persistent_fault_fails_fast(start_emulator, api_key, tmp_path, kind, as_process=True)


def test_transient_connection_refused_gives_the_fault_free_output(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    """Nobody listens on the port for the first try; the emulator is up for the retry."""
    reserved = socket.socket()
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = int(reserved.getsockname()[1])
    config = config_for(api_key, f"http://127.0.0.1:{port}", max_retry_wait=1.0)
    process = start_tap(config, tmp_path, env=DEBUG_ENV, label="connection refused, then up")
    lines: queue.Queue[str] = queue.Queue()
    stdout: list[str] = []
    stderr: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line)
            lines.put(line)

    def read_stdout() -> None:
        assert process.stdout is not None
        stdout.append(process.stdout.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stderr, read_stdout)]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if "retrying GET /external/tenant in " in line:  # the first request
                break
        reserved.close()
        emulator = start_emulator(TENANT, port=port)
        process.wait(timeout=30)
    finally:
        reserved.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=5)
    run = process.checked("".join(stdout), "".join(stderr))
    # The tap counts the refused try too: the tenant twice, then every page.
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    # The refused try never reached the emulator: the tenant's retry, then every page.
    assert paths_of(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * PAGES
    assert retry_warnings(run, TENANT_PATH) == 1
    assert retry_warnings(run) == 0
    assert "could not connect" in run.stderr
