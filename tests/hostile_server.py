"""Helpers for the adversarial tests (fault matrix, hostile pages, secrets).

- `HostileServer`: a tiny stdlib HTTP server on loopback whose answers a test writes
  as a function of the request, for what the emulator cannot express (echoing the
  Authorization header or the decoded key back in a body, a header or a nextLink).
  It also serves as a "trap": a server that must never be asked anything.
- `retry_warnings`: how many retries a run logged.
- `free_port`: a loopback port nobody listens on.
- `by_users_request`: an emulator page hook numbered by users request, not by request
  (every sync asks GET /external/tenant before its first users page).

The tap is run, and its output checked for every form of the key, by tests/tapdriver.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from spanning_emulator import PageHook, SpanningEmulator
from typing_extensions import override

from tests.taprun import TapRun

# Every sync asks GET /external/tenant first, then the users pages (docs/streams.md, "What a
# sync emits").
TENANT_PATH = "/external/tenant"
USERS_PATH = "/external/users"


def retry_warnings(run: TapRun, endpoint: str = "/external/users") -> int:
    """How many tries of GET `endpoint` failed and were retried, by the tap's log."""
    return sum(1 for line in run.stderr.splitlines() if f"retrying GET {endpoint} in " in line)


def by_users_request(emulator: SpanningEmulator, hook: PageHook) -> PageHook:
    """`hook` as `emulator.page_hook`, but told the number of the users request (1: the
    first users page's first try) rather than the emulator's number, which counts every
    request (GET /external/tenant, asked first, included).

    The users requests before one are those the emulator logged with a lower number:
    a request is logged before it is answered, and a tenant's requests come one at a
    time, so the count holds whatever faults or other requests came before.
    """

    def numbered(number: int, page: dict[str, object]) -> dict[str, object]:
        earlier = [
            r for r in emulator.requests if r.number < number and r.path.startswith(USERS_PATH)
        ]
        return hook(len(earlier) + 1, page)

    return numbered


def free_port() -> int:
    """A loopback port with nobody listening on it (bound, read, closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- the hostile server


@dataclass(frozen=True)
class Seen:
    """One request as the hostile server received it."""

    path: str
    query: str
    authorization: str
    # What the Basic header carries, decoded: "email:key" (empty if absent or garbled).
    credentials: str
    received_at: float

    @property
    def key(self) -> str:
        return self.credentials.partition(":")[2]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Responder = Callable[["HostileServer", Seen], Reply]


def _decode(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HostileServer

    @override
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        target = self.requestline.split(" ")[1] if self.requestline.count(" ") == 2 else self.path
        parts = urlsplit(target)
        authorization = self.headers.get("Authorization", "")
        seen = Seen(
            parts.path, parts.query, authorization, _decode(authorization), time.monotonic()
        )
        self.server.record(seen)
        reply = self.server.responder(self.server, seen)
        body = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET


def _trap(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {"users": [], "nextLink": ""})


class HostileServer(ThreadingHTTPServer):
    """A loopback server answering each request with `responder(server, seen)`."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, responder: Responder = _trap, host: str = "127.0.0.1", port: int = 0):
        self.responder = responder
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @override
    def server_bind(self) -> None:
        # Skip HTTPServer's reverse DNS lookup of the host.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = (
            str(self.server_address[0]),
            int(self.server_address[1]),
        )

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    @property
    def base_url(self) -> str:
        return f"http://{self.server_name}:{self.server_port}"

    @override
    def __enter__(self) -> HostileServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @override
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()
        self.server_close()
