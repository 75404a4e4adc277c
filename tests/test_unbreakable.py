"""What no tenant, file or host may do to a fleet run (README, "Many tenants", "Failure
behaviour"): a body that never ends, credentials or ids given twice, a host that hangs
or refuses, a state file that is not one, thousands of failed tenants, bytes that are
not UTF-8, pages that come round again.

In-process, over real HTTP (tests/tapdriver.py). Every expectation comes from the
emulator's ground truth, from the configuration, or from what a test's own server was
told to send, never from the tap's output.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    expected_output,
    generate_users,
    sort_key,
)

from tap_spanning.client import SpanningError
from tap_spanning.run import RunFailed, SyncRun
from tap_spanning.settings import resolve_settings
from tests.conftest import EmulatorFactory
from tests.hostile_server import HostileServer, Reply, Seen, free_port, retry_warnings
from tests.tapdriver import TapRun, run_in_process

PAGE_SIZE = 50
COUNTERS_PATH = "/external/tenant"
USERS_PATH = "/external/users"
MiB = 2**20


# ---------------------------------------------------------------- a fleet and its config


def healthy_tenants(
    sizes: list[int], hosts: tuple[str, ...] = ("127.0.0.1",)
) -> list[EmulatedTenant]:
    return [
        EmulatedTenant(
            tenant_id=f"ok{index}",
            users=generate_users(size, seed=700 + index),
            admin_email=f"admin@ok{index}.example",
            api_key=f"ok{index}-key-5c2e-4d1a-8b3f-{index:012d}",
            host=hosts[index % len(hosts)],
        )
        for index, size in enumerate(sizes)
    ]


def entry(tenant_id: str, admin_email: str, base_url: str, api_key: str) -> dict[str, str]:
    return {
        "tenant_id": tenant_id,
        "admin_email": admin_email,
        "base_url": base_url,
        "api_key": api_key,
    }


def entries_of(emulator: FleetEmulator, tenants: list[EmulatedTenant]) -> list[dict[str, str]]:
    return [
        entry(t.tenant_id, t.admin_email, emulator.base_url(t.tenant_id), t.api_key)
        for t in tenants
    ]


def fleet_config(entries: list[dict[str, str]], **overrides: Any) -> dict[str, Any]:
    return {"tenants": entries, "page_size": PAGE_SIZE, "max_retry_wait": 0.01, **overrides}


def log_message(line: str) -> str:
    """A log line without its "time | LEVEL | logger | " prefix."""
    return line.split(" | ", 3)[-1]


def assert_exact(run: TapRun, tenant_id: str, users: Sequence[Mapping[str, object]]) -> None:
    """The tenant's users and role_memberships are the ground truth for `users`, in order."""
    truth = expected_output(users, tenant_id=tenant_id)
    for stream in ("users", "role_memberships"):
        assert run.of_tenant(stream, tenant_id) == truth[stream], (tenant_id, stream)


def assert_healthy_complete(run: TapRun, tenants: list[EmulatedTenant]) -> None:
    for tenant in tenants:
        assert_exact(run, tenant.tenant_id, tenant.users)
        assert run.syncs()[tenant.tenant_id]["status"] == "complete", tenant.tenant_id


@pytest.fixture
def healthy() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = healthy_tenants([120, 0, 75, 5], hosts=("127.0.0.1", "127.0.0.3"))
    emulator = FleetEmulator(tenants).start()
    yield emulator, tenants
    emulator.stop()


# ---------------------------------------------------------------- a server of huge bodies


@dataclass(frozen=True)
class BodySent:
    """One users body the server sent: how much, and why it stopped sending."""

    mode: str
    sent: int
    # "client closed": the tap hung up; "cap": the server sent all it ever sends;
    # "deadline": the server gave up after DEADLINE_SECONDS; "stalled": a send timed out.
    ended: str


class HugeBodyServer:
    """A raw-socket HTTP server for one tenant on its own host: `GET /external/tenant`
    answers the counters of a tenant of 10 users, the backup summary an empty list,
    and every `GET /external/users` a body that does not end: `mode` "chunked" is an
    endless chunked body sent as fast as the tap reads it, "length" declares
    `Content-Length: 2147483648` and then sends data.

    Every connection answers one request and closes. Its send loop is bounded: it stops
    after SEND_CAP bytes, after DEADLINE_SECONDS, or when the client hangs up.
    """

    SEND_CAP = 64 * MiB
    DEADLINE_SECONDS = 5.0
    DECLARED = 2**31  # 2147483648
    COUNTERS: ClassVar[dict[str, object]] = {
        "users": 10,
        "licenses": 10,
        "assigned": 10,
        "status": "paid",
    }

    def __init__(self, mode: str, host: str = "127.0.0.2") -> None:
        assert mode in ("chunked", "length")
        self.mode = mode
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.05)
        self.paths: list[str] = []
        self.bodies: list[BodySent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def users_paths(self) -> list[str]:
        with self._lock:
            return [p for p in self.paths if p.split("?")[0] == USERS_PATH]

    def __enter__(self) -> HugeBodyServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=self.DEADLINE_SECONDS + 2)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(self.DEADLINE_SECONDS)
            try:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = connection.recv(4096)
                    if not data:
                        return
                    head += data
            except OSError:
                return
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            with self._lock:
                self.paths.append(target)
            path = target.split("?")[0]
            try:
                if path == COUNTERS_PATH:
                    self._reply(connection, json.dumps(self.COUNTERS).encode())
                elif path == USERS_PATH:
                    self._endless(connection)
                else:  # the backup summary: no days
                    self._reply(connection, b"[]")
            except OSError:
                return

    @staticmethod
    def _reply(connection: socket.socket, body: bytes) -> None:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    def _endless(self, connection: socket.socket) -> None:
        piece = b" " * MiB
        if self.mode == "chunked":
            framing = b"Transfer-Encoding: chunked"
            opening = b'{"users":['
            first = f"{len(opening):x}\r\n".encode() + opening + b"\r\n"
            unit = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        else:
            framing = f"Content-Length: {self.DECLARED}".encode()
            first = b'{"users":['
            unit = piece
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + framing
        deadline = time.monotonic() + self.DEADLINE_SECONDS
        sent = 0
        ended = "cap"
        try:
            connection.sendall(head + b"\r\nConnection: close\r\n\r\n" + first)
            while sent < self.SEND_CAP:
                if time.monotonic() > deadline or self._stop.is_set():
                    ended = "deadline"
                    break
                connection.sendall(unit)
                sent += len(piece)
        except TimeoutError:
            ended = "stalled"
        except OSError:
            ended = "client closed"
        with self._lock:
            self.bodies.append(BodySent(self.mode, sent, ended))


def test_a_body_that_never_ends_or_declares_2_gib_fails_its_tenant_alone(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """transport.py: the body is bounded while it is read (16 MiB), and a declared
    Content-Length above the bound fails at once; each try is retried, then the tenant
    fails alone with "response too large after N tries".

    Before the bound (before 47f4a42: `response.content`), the tap read the whole body: the
    chunked one until the server's 64 MiB cap, the declared one until it stopped, and
    the tries failed as "connection broken" after the server had sent everything.
    """
    emulator, tenants = healthy
    entries = entries_of(emulator, tenants)
    with HugeBodyServer("chunked") as endless, HugeBodyServer("length") as huge:
        entries += [
            entry("endless", "admin@endless.example", endless.base_url, "endless-7a1c-49de-bb1f"),
            entry("huge", "admin@huge.example", huge.base_url, "huge-2f0d-4c7a-9e55-aa01"),
        ]
        config = fleet_config(entries, max_retries=2, max_retry_wait=0.01)
        run = run_in_process(config, tmp_path)
    for server in (endless, huge):
        print(f"\n{server.mode}: {[(b.sent // MiB, b.ended) for b in server.bodies]} (MiB sent)")
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.last_stderr_line().endswith(
        "2 of 6 tenants failed: endless (response too large after 2 tries), "
        "huge (response too large after 2 tries)"
    )
    for server in (endless, huge):
        # Two tries each, and each one ended by the tap hanging up, long before the
        # server's cap: the tap stopped reading, it did not wait for the end.
        assert len(server.users_paths()) == 2, server.mode
        assert [b.ended for b in server.bodies] == ["client closed"] * 2, server.mode
    assert retry_warnings(run) == 2  # one retry per huge tenant, none for the others
    assert_healthy_complete(run, tenants)
    for tenant_id in ("endless", "huge"):
        assert run.of_tenant("users", tenant_id) == []
        assert run.syncs()[tenant_id]["status"] == "failed"
    assert run.count("RECORD", "users") == sum(len(t.users) for t in tenants)


# ---------------------------------------------------------------- credentials given twice


@pytest.mark.parametrize(
    ("case", "says"),
    [
        (
            "same key, email in another case",
            "tenants[4] (twin): has the same admin_email and api_key as tenant 'ok0'",
        ),
        (
            "same key in tenant_api_keys",
            "tenants[4] (twin): has the same admin_email and api_key as tenant 'ok0'",
        ),
        (
            "ids equal but for case",
            "tenants[1] (t0000): tenant_id 't0000' is already used by tenants[0] (ids are "
            "compared without case)",
        ),
    ],
    ids=["email case", "tenant_api_keys", "id case"],
)
def test_one_tenant_configured_twice_is_refused_before_any_request(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path, case: str, says: str
) -> None:
    """settings.py: the same credentials in two entries (admin_email compared without
    case) would load one tenant's users under two ids; ids equal but for case would mix
    two tenants' rows where case is ignored. Before 47f4a42 neither was checked: ids
    were compared exactly and both entries were synced."""
    emulator, tenants = healthy
    config = fleet_config(entries_of(emulator, tenants))
    first = tenants[0]
    if case == "same key, email in another case":
        twin = entry("twin", first.admin_email.upper(), emulator.base_url("ok1"), first.api_key)
        config["tenants"].append(twin)
    elif case == "same key in tenant_api_keys":
        for item in config["tenants"]:
            config.setdefault("tenant_api_keys", {})[item["tenant_id"]] = item.pop("api_key")
        twin = entry("twin", first.admin_email, emulator.base_url("ok0"), "")
        del twin["api_key"]
        config["tenants"].append(twin)
        config["tenant_api_keys"]["twin"] = first.api_key
    else:
        base_url = emulator.base_url("ok0")
        config["tenants"] = [
            entry("T0000", first.admin_email, base_url, first.api_key),
            entry("t0000", tenants[1].admin_email, base_url, tenants[1].api_key),
        ]
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    message = log_message(run.last_stderr_line())
    print(f"\n{message}")
    assert message.startswith("Config validation failed: "), message
    assert says in message, message
    assert "Traceback" not in run.stderr
    assert run.messages == []
    assert emulator.requests == []


# ---------------------------------------------------------------- a host that is away


def reasons_by_kind(run: TapRun, tenant_ids: list[str]) -> dict[str, list[str]]:
    """The failed tenants among `tenant_ids`, by the first words of their reason."""
    found: dict[str, list[str]] = {}
    for tenant_id in tenant_ids:
        record = run.syncs()[tenant_id]
        assert record["status"] == "failed", tenant_id
        reason: str = record["reason"]
        if reason.startswith("host unreachable: "):
            kind = "host unreachable"
        elif "giving up: no complete answer within request_timeout (0.3s)" in reason:
            kind = "timeout"
        elif "giving up: could not connect" in reason:
            kind = "connection failed"
        else:
            kind = reason
        found.setdefault(kind, []).append(tenant_id)
    return found


def test_a_host_that_hangs_for_every_tenant_costs_one_round_of_tries(tmp_path: Path) -> None:
    """circuit.py HostCircuit: after 3 tenants of a host in a row time out, the rest of that
    host's tenants fail as "host unreachable" without a request, and the other host's
    tenants complete. Before 47f4a42 every one of the 20 tenants was tried
    max_retries times, each try waiting out request_timeout."""
    ok = healthy_tenants([120, 30, 75])
    hung = [
        EmulatedTenant(
            tenant_id=f"hung{index:02d}",
            users=generate_users(20, seed=900 + index),
            admin_email=f"admin@hung{index}.example",
            api_key=f"hung{index:02d}-key-1e5b-4a8c-9d0f-{index:012d}",
            host="127.0.0.2",
            faults=FaultPlan(every=1, kind="hang", hang_seconds=10.0),
        )
        for index in range(20)
    ]
    with FleetEmulator([*ok, *hung]) as emulator:
        config = fleet_config(
            entries_of(emulator, [*ok, *hung]),
            max_concurrent_tenants=8,
            request_timeout=0.3,
            max_retries=2,
            max_retry_wait=0.01,
        )
        run = run_in_process(config, tmp_path)
        asked = [r.tenant_id for r in emulator.requests]
    print(f"\nhung host: the run took {run.seconds:.2f}s")
    assert run.returncode == 1, run.stderr[-2000:]
    assert_healthy_complete(run, ok)
    hung_ids = [t.tenant_id for t in hung]
    kinds = reasons_by_kind(run, hung_ids)
    print("hung host:", {kind: len(ids) for kind, ids in kinds.items()})
    assert set(kinds) == {"timeout", "host unreachable"}, kinds
    assert len(kinds["timeout"]) >= 3
    # 8 tenants in flight when the circuit opens, and at most 2 more.
    assert len(kinds["host unreachable"]) >= 10, f"asked before the circuit: {kinds['timeout']}"
    for tenant_id in kinds["host unreachable"]:
        assert asked.count(tenant_id) == 0, tenant_id  # never asked: the circuit was open
        assert run.syncs()[tenant_id]["requests"] == 0
    for tenant_id in kinds["timeout"]:
        # Its counters, tried at most max_retries times: twice, or once when the circuit
        # opened between its tries (other tenants of the host timed out meanwhile; on a
        # loaded machine that happens). The tap counts its tries; the emulator logs a
        # request only once a handler reads it, which a loaded machine may not reach before
        # the 0.3 s deadline shuts the connection: never more than the tap's count.
        tries = run.syncs()[tenant_id]["requests"]
        assert 1 <= tries <= 2, (tenant_id, tries)
        assert asked.count(tenant_id) <= tries, tenant_id
    last = run.last_stderr_line()
    assert "20 of 23 tenants failed: " in last
    assert last.endswith("and 10 more (each named in the log above)")


def test_a_host_that_refuses_every_connection_opens_the_circuit(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """The same with a host nobody listens on: "connection failed" three times in a
    row, then "host unreachable" without a try. Before 47f4a42 every tenant was tried."""
    emulator, tenants = healthy
    away = f"http://127.0.0.1:{free_port()}"
    refused = [
        entry(f"gone{index:02d}", f"admin@gone{index}.example", away, f"gone-{index:02d}-3d9e")
        for index in range(20)
    ]
    config = fleet_config(
        [*refused, *entries_of(emulator, tenants)],
        max_concurrent_tenants=8,
        max_retries=2,
        max_retry_wait=0.01,
    )
    run = run_in_process(config, tmp_path)
    print(f"\nrefusing host: the run took {run.seconds:.2f}s")
    assert run.returncode == 1, run.stderr[-2000:]
    assert_healthy_complete(run, tenants)
    kinds = reasons_by_kind(run, [e["tenant_id"] for e in refused])
    print("refusing host:", {kind: len(ids) for kind, ids in kinds.items()})
    assert set(kinds) == {"connection failed", "host unreachable"}, kinds
    assert len(kinds["connection failed"]) >= 3
    assert len(kinds["host unreachable"]) >= 10, f"tried: {kinds['connection failed']}"
    for tenant_id in kinds["host unreachable"]:
        assert run.syncs()[tenant_id]["requests"] == 0, tenant_id
    for tenant_id in kinds["connection failed"]:
        assert run.syncs()[tenant_id]["requests"] == 2, tenant_id
    assert run.last_stderr_line().endswith("and 10 more (each named in the log above)")


# ---------------------------------------------------------------- --state


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"bookmarks": {"users": {}', "not valid JSON"),
        ('"bookmarks"', "must be a Singer state"),
        ('{"bookmarks": "users"}', "must be a Singer state"),
    ],
    ids=["not JSON", "a JSON string", "bookmarks a string"],
)
def test_a_state_file_that_is_not_a_state_is_one_line_naming_it(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, content: str, says: str
) -> None:
    """json_files.py argv_file_errors: before 47f4a42 the SDK read the file itself and
    failed with a traceback that named no file (or took a string for a state)."""
    emulator = start_emulator(generate_users(10, seed=4))
    state = tmp_path / "state.json"
    state.write_text(content)
    run = run_in_process(tap_config(emulator), tmp_path, "--state", str(state))
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"state file {state}: {says}"), lines[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert emulator.requests == []


def test_a_large_state_is_accepted_and_never_echoed(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """The tap keeps no bookmarks: the STATE it writes is its own, small, whatever it
    was given. Before 47f4a42 the SDK loaded the given state and wrote it back, every
    bookmark of it, in each STATE message."""
    users = generate_users(120, seed=6)
    emulator = start_emulator(users)
    bookmarks = {
        f"xyzzy_{index:05d}": {
            "replication_key": "updated_at",
            "replication_key_value": f"2024-01-01T00:00:{index % 60:02d}Z",
            "note": "p" * 120,
        }
        for index in range(10_000)
    }
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": bookmarks, "currently_syncing": "xyzzy_00001"}))
    size = state.stat().st_size
    print(f"\nstate file: {size / MiB:.1f} MiB")
    assert size > 2 * 10**6
    run = run_in_process(tap_config(emulator, page_size=50), tmp_path, "--state", str(state))
    assert run.returncode == 0, run.stderr[-2000:]
    truth = expected_output(users)
    for stream in ("users", "role_memberships", "roles"):
        assert run.records(stream) == truth[stream], stream
    states = [line for line in run.stdout.split("\n") if line.startswith('{"type":"STATE"')]
    assert states, "the run writes its state"
    assert max(len(line) for line in states) < 1000
    assert "xyzzy" not in run.stdout
    assert "xyzzy" not in run.stderr


# ---------------------------------------------------------------- what the run says


class Recorder:
    """A logger that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    warning = error = info


def loopback_fleet(count: int, port: int = 9) -> dict[str, Any]:
    return {
        "tenants": [
            entry(
                f"t{index:05d}",
                f"admin@t{index:05d}.example",
                f"http://127.0.0.1:{port}",
                f"t{index:05d}-key-4b8e-9c1d",
            )
            for index in range(count)
        ]
    }


def test_progress_is_logged_at_most_every_ten_seconds_and_names_the_tenants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run.py note_page (moved here from test_cli_modes.py, a module of process tests):
    before 47f4a42 the line ended at the retries and said nothing of the tenants."""
    clock = [100.0]
    monkeypatch.setattr("tap_spanning.run.time.monotonic", lambda: clock[0])
    recorder = Recorder()
    settings = resolve_settings(loopback_fleet(3))
    run = SyncRun(lambda: settings, recorder, "ua", version=1)  # type: ignore[arg-type]
    tenants = {t.tenant_id: t for t in settings.tenants}
    for second in range(35):
        clock[0] = 100.0 + second
        if second == 15:
            run.fail(tenants["t00002"], "users", SpanningError("HTTP 503 ...", "HTTP 503"))
        if second == 25:
            run.tenants["t00001"].users_done = True  # its users pass ran to the end
        run.note_page("t00000", 1000)
    # A page a second from t=0: lines at 10, 20 and 30 s, with 11, 21 and 31 pages in.
    assert [line for line in recorder.lines if line.startswith("Progress:")] == [
        "Progress: 11000 users in 11 pages so far, 1100 users/s, 0 retries; "
        "tenants: 0 done, 0 failed, 3 left",
        "Progress: 21000 users in 21 pages so far, 1050 users/s, 0 retries; "
        "tenants: 0 done, 1 failed, 2 left",
        "Progress: 31000 users in 31 pages so far, 1033 users/s, 0 retries; "
        "tenants: 1 done, 1 failed, 1 left",
    ]


def test_the_last_line_stays_short_with_ten_thousand_failed_tenants() -> None:
    """run.py failure_line names the first 10 and counts the rest. Before 47f4a42 it
    named all 10,000: a line of some 300,000 characters."""
    settings = resolve_settings(loopback_fleet(10_000))
    recorder = Recorder()
    run = SyncRun(lambda: settings, recorder, "ua", version=1)  # type: ignore[arg-type]
    for tenant in settings.tenants:
        run.fail(tenant, "users", SpanningError("HTTP 503 from /external/users", "HTTP 503"))
    line = run.failure_line()
    print(f"\nlast line of 10,000 failures: {len(line)} characters")
    named = ", ".join(f"t{index:05d} (HTTP 503)" for index in range(10))
    assert line == (
        f"10000 of 10000 tenants failed: {named} and 9990 more (each named in the log above)"
    )
    assert len(line) < 1000
    # Each one is named in the log above it.
    assert len([x for x in recorder.lines if x.startswith("Tenant t")]) == 10_000


def test_the_refused_line_stays_short_with_thousands_of_refused_tenants(
    tmp_path: Path,
) -> None:
    """The same for the credentials pass, over HTTP: every tenant's key refused."""
    count = 300
    with HostileServer(lambda server, seen: Reply(401, {"message": "Unauthorized"})) as server:
        config = loopback_fleet(count, server.server_port)
        config["max_concurrent_tenants"] = 64
        settings = resolve_settings(config)
        run = SyncRun(lambda: settings, Recorder(), "ua", version=1)  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(RunFailed) as stopped:
            run.preflight()
        print(f"\n{count} refused tenants: {time.monotonic() - started:.2f}s")
        assert len(server.requests) == count
    line = str(stopped.value)
    named = ", ".join(f"t{index:05d}" for index in range(10))
    assert line == (
        f"Credentials refused for {count} of {count} tenants, so nothing was synced: "
        f"{named} and {count - 10} more (each named in the log above) (fix their keys, or "
        "set failure_mode to isolate or nightly to sync the others without them)"
    )
    assert len(line) < 1000


# ---------------------------------------------------------------- bytes and pages


def sorted_users(count: int, seed: int) -> list[dict[str, Any]]:
    return sorted(generate_users(count, seed=seed), key=sort_key)


def page_number(seen: Seen) -> int:
    return int(parse_qs(seen.query).get("page", ["1"])[0])


def tenant_reply(seen: Seen, users: int) -> Reply | None:
    """The answer to anything but the users pages: the counters of a tenant of `users`
    users, or a backup summary of no days."""
    if seen.path == COUNTERS_PATH:
        return Reply(200, {"users": users, "licenses": users, "status": "paid"})
    if seen.path != USERS_PATH:
        return Reply(200, [])
    return None


def serving(pages: list[list[dict[str, Any]]], users: int) -> Any:
    """A tenant whose users pages are `pages`, page N linking to page N+1 (`?page=N+1`);
    its counter says `users`."""

    def respond(server: HostileServer, seen: Seen) -> Reply:
        other = tenant_reply(seen, users)
        if other is not None:
            return other
        number = page_number(seen)
        link = f"{USERS_PATH}?page={number + 1}" if number < len(pages) else ""
        return Reply(200, {"users": pages[number - 1], "nextLink": link})

    return respond


def in_turn(bodies: list[bytes], users: int) -> Any:
    """A tenant whose users requests are answered with `bodies` in turn, as they are."""

    def respond(server: HostileServer, seen: Seen) -> Reply:
        other = tenant_reply(seen, users)
        if other is not None:
            return other
        asked = len([s for s in server.requests if s.path == USERS_PATH])
        return Reply(200, bodies[min(asked, len(bodies)) - 1])

    return respond


def test_a_page_that_is_not_utf8_is_retried(tmp_path: Path) -> None:
    """client.py: bytes that are not UTF-8 are a bad response, retried like a cut-off
    body. Before 47f4a42 msgspec's UnicodeDecodeError was not caught: the tenant
    failed on its first try."""
    users = sorted_users(30, seed=31)
    good = json.dumps({"users": users, "nextLink": ""}).encode()
    not_utf8 = b'{"users":[{"msId":"a\xff"}],"nextLink":""}'
    with HostileServer(in_turn([not_utf8, good], len(users))) as server:
        config = {
            "base_url": server.base_url,
            "admin_email": "admin@bytes.example",
            "api_key": "bytes-key-8e2a-41c7-b9d3",
            "page_size": PAGE_SIZE,
            "max_retry_wait": 0.01,
        }
        run = run_in_process(config, tmp_path)
        asked = [s.path for s in server.requests if s.path == USERS_PATH]
    assert run.returncode == 0, run.stderr[-2000:]
    truth = expected_output(users)
    for stream in ("users", "role_memberships", "roles"):
        assert run.records(stream) == truth[stream], stream
    assert len(asked) == 2
    assert retry_warnings(run) == 1
    assert "the body is not valid JSON" in run.stderr


def test_users_repeated_two_pages_apart_fail_the_tenant_while_an_overlap_is_dropped(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """records.py PageSequence: a page that repeats a user of an earlier page (not the
    one just before) means pagination is not advancing: the tenant fails alone, and
    nothing of that page is written. A page that repeats users of the page just before
    is still tolerated: the repeats are dropped, with a warning. Before 47f4a42 only
    the page just before was remembered: the repeated user was written twice and the
    run succeeded."""
    emulator, tenants = healthy
    apart = sorted_users(300, seed=41)
    # Pages 1-4 in order; page 5 holds the next users and, last, a user of page 3.
    apart_pages = [apart[i : i + PAGE_SIZE] for i in range(0, 200, PAGE_SIZE)]
    repeated = apart[120]
    apart_pages.append([*apart[200:249], repeated])
    overlap = sorted_users(180, seed=42)
    # Page 3 starts with the last 2 users of page 2.
    overlap_pages = [overlap[0:50], overlap[50:100], overlap[98:148], overlap[148:180]]
    with (
        HostileServer(serving(list(apart_pages), len(apart)), host="127.0.0.2") as s_apart,
        HostileServer(serving(list(overlap_pages), len(overlap)), host="127.0.0.2") as s_over,
    ):
        entries = entries_of(emulator, tenants)
        entries += [
            entry("apart", "admin@apart.example", s_apart.base_url, "apart-key-3f1e-4b2d"),
            entry("overlap", "admin@overlap.example", s_over.base_url, "overlap-key-6a0c-4e9f"),
        ]
        run = run_in_process(fleet_config(entries), tmp_path)
        asked_apart = [s for s in s_apart.requests if s.path == USERS_PATH]
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.last_stderr_line().endswith(
        "1 of 6 tenants failed: apart (pagination not advancing)"
    )
    assert len(asked_apart) == 5
    # Pages 1-4 were written; nothing of page 5.
    assert_exact(run, "apart", apart[:200])
    reason = run.syncs()["apart"]["reason"]
    assert reason == (
        f"page 5 of users repeats msId {repeated['msId']} of page 3: pagination is not advancing"
    )
    assert_exact(run, "overlap", overlap)
    assert run.syncs()["overlap"]["status"] == "complete"
    assert (
        "Tenant overlap: page 3 of users repeats 2 users of the previous page; they are "
        "emitted once"
    ) in run.stderr
    assert_healthy_complete(run, tenants)


def test_the_healthy_fleet_alone_completes(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """The fleet the tests above add a bad tenant to, alone: every tenant complete."""
    emulator, tenants = healthy
    run = run_in_process(fleet_config(entries_of(emulator, tenants)), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert_healthy_complete(run, tenants)
