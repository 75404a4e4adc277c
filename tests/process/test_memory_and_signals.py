"""What no tenant or signal may do to the tap as a process: a body that never ends may
not grow its memory past the bound, and a signal, at any moment, leaves whole lines on
stdout and the reason as the last line on stderr.

The process is the point: peak RSS, signals, a reader on the other end of a pipe.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, generate_users

from tests import tapdriver
from tests.conftest import EmulatorFactory
from tests.failure_fixtures import (
    HugeBodyServer,
    assert_healthy_complete,
    entries_of,
    entry,
    fleet_config,
    healthy_tenants,
    log_message,
)
from tests.leaks import check_output, key_forms
from tests.tapdriver import start_tap
from tests.taprun import TapRun, parse_messages

pytestmark = pytest.mark.process

STOPPED = "Stopped by signal {} before the sync was complete"
# Peak RSS and signal handlers are read from /proc/<pid>/status.
reads_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads /proc/<pid>/status (Linux)"
)


# ---------------------------------------------------------------- peak memory


@dataclass(frozen=True)
class Measured:
    run: TapRun
    peak_kib: int  # the tap's own peak RSS (VmHWM), in KiB
    ru_maxrss_kib: int  # what os.wait4 says: not the tap's alone (see run_measured)


def vm_hwm_kib(pid: int) -> int | None:
    """The peak RSS of process `pid` so far (VmHWM, Linux); None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def run_measured(config: dict[str, Any], folder: Path) -> Measured:
    """Run the tap as a process, its output to files, and measure its peak RSS. Its
    output goes through the driver's leak check.

    The peak is the process's own high-water mark (VmHWM), read every few
    milliseconds until it exits: it only rises, so the last reading is the peak up to
    a few milliseconds before the end. os.wait4's ru_maxrss cannot be used alone: on
    Linux a child's maxrss starts from the high-water mark of the memory it had
    before exec, which is this test process's (it was forked from it), so it reports
    the test process's own peak whenever that is larger than the tap's.
    """
    folder.mkdir()
    command = tapdriver._command(config, folder, (), None)
    out_path, err_path = folder / "stdout", folder / "stderr"
    started_ms = time.time() * 1000
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=os.environ.copy())
    peak = [0]
    exited = threading.Event()

    def watch() -> None:
        while not exited.is_set():
            reading = vm_hwm_kib(process.pid)
            if reading is not None:
                peak[0] = max(peak[0], reading)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # A tap that never ends must not hold the test forever.
    guard = threading.Timer(120, process.kill)
    guard.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        guard.cancel()
        exited.set()
        watcher.join()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    seconds = time.monotonic() - started
    stdout, stderr = out_path.read_bytes(), err_path.read_bytes()
    check_output(key_forms(config), stdout, stderr)
    text = stdout.decode()
    run = TapRun(
        process.returncode,
        text,
        stderr.decode("utf-8", "replace"),
        parse_messages(text),
        seconds,
        started_ms,
    )
    return Measured(run, peak[0], usage.ru_maxrss)


@reads_proc
def test_a_body_that_never_ends_adds_no_more_than_the_bound_to_peak_memory(
    tmp_path: Path,
) -> None:
    """transport.py reads at most 16 MiB of a body: the same fleet with a tenant whose
    users body never ends peaks within 1.5x of the fleet without it: the body is never
    read whole into memory, however long it runs."""
    tenants: list[EmulatedTenant] = healthy_tenants(
        [300, 0, 120, 40], hosts=("127.0.0.1", "127.0.0.3")
    )
    with FleetEmulator(tenants) as emulator, HugeBodyServer("chunked") as endless:
        config = fleet_config(entries_of(emulator, tenants), max_retries=2, max_retry_wait=0.01)
        without = run_measured(config, tmp_path / "without")
        bad = entry("endless", "admin@endless.example", endless.base_url, "endless-5e0b-4f3a")
        with_endless = run_measured(
            {**config, "tenants": [*config["tenants"], bad]}, tmp_path / "with"
        )
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\npeak RSS (VmHWM): {without.peak_kib / 1024:.1f} MiB without the endless tenant, "
        f"{with_endless.peak_kib / 1024:.1f} MiB with it "
        f"(x{with_endless.peak_kib / without.peak_kib:.2f}); os.wait4 ru_maxrss "
        f"{without.ru_maxrss_kib / 1024:.1f} and {with_endless.ru_maxrss_kib / 1024:.1f} MiB, "
        f"this test process's own peak {own_peak / 1024:.1f} MiB; "
        f"bodies sent: {[(b.sent // 2**20, b.ended) for b in endless.bodies]} (MiB)"
    )
    assert without.peak_kib > 0
    assert with_endless.peak_kib <= 1.5 * without.peak_kib
    assert without.run.returncode == 0, without.run.stderr[-2000:]
    assert_healthy_complete(without.run, tenants)
    run = with_endless.run
    assert run.returncode == 1, run.stderr[-2000:]
    assert log_message(run.last_stderr_line()) == (
        "1 of 5 tenants failed: endless (response too large after 2 tries)"
    )
    assert_healthy_complete(run, tenants)
    assert [b.ended for b in endless.bodies] == ["client closed"] * 2


# ---------------------------------------------------------------- signals


@pytest.fixture(scope="module")
def users_20000() -> list[dict[str, object]]:
    return generate_users(20_000, seed=11)


def test_a_signal_with_a_slow_reader_leaves_only_whole_lines(
    start_emulator: EmulatorFactory,
    tap_config: Any,
    tmp_path: Path,
    users_20000: list[dict[str, object]],
) -> None:
    """writer.py: a SIGTERM while the tap is blocked writing to a slow reader finishes
    the line it cut, hands over whole lines only, each once, and exits 143 with the
    reason last. The signal comes 0.3-2 s after the first bytes (seeded), well inside
    a sync that a reader this slow takes many seconds over: stdout never ends in the
    middle of a message."""
    emulator = start_emulator(users_20000)
    config = tap_config(emulator, page_size=1000)
    rng = random.Random(20_000)
    broken: list[str] = []
    for trial in range(5):
        delay = rng.uniform(0.3, 2.0)
        stdout, run = stop_a_slow_read(config, tmp_path, delay, f"slow reader, trial {trial}")
        lines = stdout.split(b"\n")
        users = sum(1 for line in lines if line.startswith(b'{"type":"RECORD","stream":"users"'))
        print(
            f"\ntrial {trial}: SIGTERM {delay:.2f}s into the output; {len(stdout)} bytes, "
            f"{len(lines) - 1} lines, {users} users in all"
        )
        assert run.returncode == 128 + signal.SIGTERM, run.stderr[-2000:]
        assert run.last_stderr_line().endswith(STOPPED.format(signal.SIGTERM))
        records = [line for line in lines if line.startswith(b'{"type":"RECORD"')]
        assert records, "the sync had begun"
        assert users < len(users_20000), "the signal came before the sync was complete"
        if not stdout.endswith(b"\n"):
            broken.append(f"trial {trial}: stdout ends in the middle of a line")
        for number, line in enumerate(lines[:-1], start=1):
            try:
                parse_messages(line.decode())
            except ValueError:
                broken.append(f"trial {trial}: line {number} is not one message: {line[:90]!r}")
        if len(set(records)) != len(records):
            twice = len(records) - len(set(records))
            broken.append(f"trial {trial}: {twice} RECORD lines written twice")
    assert not broken, "\n".join(broken)


def stop_a_slow_read(
    config: dict[str, Any], tmp_path: Path, delay: float, label: str
) -> tuple[bytes, TapRun]:
    """Start the tap, read its stdout 4 KiB at a time with a pause between reads, send
    SIGTERM `delay` seconds after its first bytes, then read the rest to the end.
    Returns stdout and the run (leak-checked)."""
    process = start_tap(config, tmp_path, text=False, label=label)
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = process.stderr
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    reader.start()
    fd = process.stdout.fileno()
    chunks = [os.read(fd, 4096)]  # the sync has begun: its first bytes
    signal_at = time.monotonic() + delay
    while time.monotonic() < signal_at:
        data = os.read(fd, 4096)
        if not data:
            break
        chunks.append(data)
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    while data := os.read(fd, 65536):
        chunks.append(data)
    process.wait(timeout=30)
    reader.join(timeout=30)
    stdout = b"".join(chunks)
    return stdout, process.checked(stdout, errors[0] if errors else b"", parse=False)


def signal_handled(pid: int, signum: int) -> bool:
    """Has process `pid` installed a handler for `signum` (its SigCgt mask, Linux)?"""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@reads_proc
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_ends_with_the_reason_and_no_traceback(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, signum: int
) -> None:
    """entry.py handles SIGTERM and SIGINT from its first instant, before the SDK is
    imported (which takes most of a second): never a silent -15, never a
    KeyboardInterrupt traceback.

    The signal is sent 0-0.05 s after the process set its SIGTERM handler (its
    SigCgt mask): before that the interpreter itself is still starting, and any
    program dies of the signal there. The bare reason as the last line (no log
    prefix) is entry.py's: then the tap was not built, and nothing was asked or written.
    The tap's own handler, which the SDK installs later, logs the same reason.
    """
    emulator = start_emulator(generate_users(50, seed=3))
    process = start_tap(tap_config(emulator), tmp_path)
    deadline = time.monotonic() + 30
    while not signal_handled(process.pid, signal.SIGTERM) and process.poll() is None:
        assert time.monotonic() < deadline, "the tap never handled SIGTERM"
        time.sleep(0.002)
    handled_after = time.monotonic() - process.started_at
    delay = random.Random(signum).uniform(0.0, 0.05)
    time.sleep(delay)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    print(
        f"\n{signal.Signals(signum).name}: handler set {handled_after:.2f}s after the start, "
        f"signal {delay:.2f}s later; exit {process.returncode}; "
        f"last line {stderr.splitlines()[-1:]}"
    )
    assert process.returncode == 128 + signum, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    reason = STOPPED.format(signum)
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    # What holds whichever handler caught it: the reason is the last line and stdout holds
    # whole messages only. A loaded machine may not reach the SDK's import before the signal,
    # a fast one may have built the tap by then: which it was decides the rest.
    assert lines[-1].endswith(reason), lines[-3:]
    assert all(json.loads(line) for line in stdout.splitlines())
    if lines[-1] == reason:
        # entry.py's bare line: stopped before the tap was built, nothing asked or written.
        assert stdout == ""
        assert emulator.requests == []
