"""The SDK's modes, kept working: --test, BATCH, signals; and what every run says at its end."""

from __future__ import annotations

import gzip
import json
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from spanning_emulator import expected_output, generate_users

from tests.conftest import EmulatorFactory
from tests.run_inputs import discovered_catalog, set_selected
from tests.tapdriver import run_tap, start_tap

# The process is the point here: exit codes, signals, the console script.
pytestmark = pytest.mark.process

STREAMS = ("users", "role_memberships", "tenants", "roles")


def test_connection_test_checks_every_stream_with_one_users_page(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(500, seed=3))
    run = run_tap(tap_config(emulator, page_size=100), tmp_path, "--test")
    assert run.returncode == 0, run.stderr[-2000:]
    for stream in STREAMS:
        assert run.count("RECORD", stream) == 1, stream
    # The credentials first; --test syncs every stream, the backup histories (off by
    # default) included: their one summary, then one users page that asks for backups.
    paths = [urlsplit(r.path).path for r in emulator.requests]
    assert paths == ["/external/tenant", "/external/tenant/backups/summary", "/external/users"]
    assert "status=true" in emulator.requests[-1].path
    assert "| ERROR" not in run.stderr


def test_connection_test_fails_with_a_wrong_key_and_writes_no_record(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    emulator = start_emulator()
    run = run_tap(tap_config(emulator, api_key="wrong-0000-1111-2222"), tmp_path, "--test")
    assert run.returncode == 1
    assert run.count("RECORD") == 0
    assert "Spanning refused the credentials" in run.last_stderr_line()


@pytest.mark.parametrize("stream", STREAMS)
def test_no_record_of_any_stream_before_the_credentials_are_proven(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, stream: str
) -> None:
    """A wrong key writes no record at all, whichever stream comes first in the catalog."""
    emulator = start_emulator()
    catalog = discovered_catalog()
    for other in STREAMS:
        set_selected(catalog, other, [], other == stream or stream == "roles")
    run = run_tap(tap_config(emulator, api_key="wrong-0000-1111-2222"), tmp_path, catalog=catalog)
    assert run.returncode == 1
    assert run.count("RECORD") == 0


def test_every_run_ends_with_one_summary_line(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(230, seed=8)
    emulator = start_emulator(users)
    run = run_tap(tap_config(emulator, page_size=100), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    memberships = len(expected_output(users)["role_memberships"])
    summary = [line for line in run.stderr.splitlines() if "Synced " in line]
    assert len(summary) == 1
    assert summary[0] == run.last_stderr_line()
    assert (
        f"Synced 230 users and {memberships} role memberships of 1 of 1 tenants: "
        "4 requests, 0 retries" in summary[0]
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_after_a_signal_the_reason_is_the_last_line(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, signum: int
) -> None:
    emulator = start_emulator(generate_users(400, seed=2), latency=0.3)
    process = start_tap(tap_config(emulator, page_size=50), tmp_path)
    deadline = time.monotonic() + 20
    while not emulator.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].endswith(f"Stopped by signal {signum} before the sync was complete")


def batch_config(tmp_path: Path, **encoding: str) -> dict[str, Any]:
    return {
        "encoding": {"format": "jsonl", "compression": "gzip", **encoding},
        "storage": {"root": f"file://{tmp_path / 'batches'}", "prefix": "b-"},
        "batch_size": 100,
    }


def batch_records(run: Any, stream: str) -> list[dict[str, Any]]:
    """A stream's records in its BATCH files, without the run's sync_version (checked)."""
    records: list[dict[str, Any]] = []
    for message in run.messages:
        if message["type"] == "BATCH" and message["stream"] == stream:
            for url in message["manifest"]:
                with gzip.open(urlsplit(url).path, "rt") as handle:
                    records += [json.loads(line) for line in handle]
    versions = {record.pop("sync_version", None) for record in records}
    activated = {m["version"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}
    assert versions <= activated | {None}, (stream, versions)
    return records


def test_batch_files_hold_exactly_the_selected_properties(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(260, seed=12)
    emulator = start_emulator(users)
    catalog = discovered_catalog()
    set_selected(catalog, "users", ["properties", "email"], False)
    config = tap_config(
        emulator,
        page_size=100,
        batch_config=batch_config(tmp_path),
        emit_activate_version_messages=True,
    )
    run = run_tap(config, tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    expected = expected_output(users)
    without_email = [{k: v for k, v in u.items() if k != "email"} for u in expected["users"]]
    assert batch_records(run, "users") == without_email
    assert batch_records(run, "role_memberships") == expected["role_memberships"]
    assert batch_records(run, "roles") == expected["roles"]
    assert run.count("RECORD") == 0
    # Each stream activated after its last BATCH.
    for stream in STREAMS:
        kinds = [m["type"] for m in run.messages if m.get("stream") == stream]
        assert kinds[-1] == "ACTIVATE_VERSION", stream
        assert kinds.count("SCHEMA") == 1, stream


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"stream_maps": {"users": {"email": "__NULL__"}}}, "cannot be combined with stream_maps"),
        ({"flattening_enabled": True}, "cannot be combined with stream_maps or flattening_enabled"),
        ({"compression": "none"}, "compression must be gzip"),
    ],
)
def test_batch_combinations_that_would_leak_are_refused_before_any_request(
    start_emulator: EmulatorFactory,
    tap_config: Any,
    tmp_path: Path,
    extra: dict[str, Any],
    says: str,
) -> None:
    emulator = start_emulator()
    encoding = {"compression": extra.pop("compression")} if "compression" in extra else {}
    config = tap_config(emulator, batch_config=batch_config(tmp_path, **encoding), **extra)
    run = run_tap(config, tmp_path)
    assert run.returncode == 1
    assert says in run.stderr
    assert emulator.requests == []
    assert run.messages == []
