"""Shared setup of the failure tests: healthy tenants beside which a bad one must fail
alone, a server whose users bodies never end, and tenants of a test's own server.

- `healthy_tenants`, `entry`, `entries_of`, `fleet_config`: a fleet of emulated tenants
  and the `tenants` config that names them (tests/conftest.py's `healthy` fixture starts
  four of them on two hosts).
- `assert_exact`, `assert_healthy_complete`: each tenant's records equal the emulator's
  ground truth, and its tenant_syncs row says complete.
- `HugeBodyServer`: a raw-socket server whose users body never ends, or declares 2 GiB.
- `sorted_users`, `tenant_reply`: a tenant a test's own HostileServer serves (its users in
  the API's order; its counters and backup summary).
- `assert_failed`: a run failed, and its log says each phrase given.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    generate_users,
    sort_key,
)

from tests.hostile_server import Reply, Seen
from tests.taprun import TapRun

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


def assert_failed(run: TapRun, *phrases: str) -> None:
    """The run failed, and its log says each of `phrases`."""
    assert run.returncode != 0
    for phrase in phrases:
        assert phrase in run.stderr, run.stderr[-3000:]


# ---------------------------------------------------------------- a tenant of a test's own


def sorted_users(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` generated users in the order the API pages them."""
    return sorted(generate_users(count, seed=seed), key=sort_key)


def tenant_reply(seen: Seen, users: int) -> Reply | None:
    """The answer to anything but the users pages: the counters of a tenant of `users`
    users, or a backup summary of no days."""
    if seen.path == COUNTERS_PATH:
        return Reply(200, {"users": users, "licenses": users, "status": "paid"})
    if seen.path != USERS_PATH:
        return Reply(200, [])
    return None
