"""Helpers for the adversarial tests (fault matrix, hostile pages, secrets).

- `HostileServer`: a tiny stdlib HTTP server on loopback whose answers a test writes
  as a function of the request, for what the emulator cannot express (echoing the
  Authorization header or the decoded key back in a body, a header or a nextLink).
  It also serves as a "trap": a server that must never be asked anything.
- `run_tap_checked`: runs the real `tap-spanning` executable at DEBUG, times it, and
  greps everything it printed for every form of the configured API key.
- `free_port`: a loopback port nobody listens on.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
import socketserver
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tap_spanning.emulator import expected_output
from tests.tapdriver import ADMIN_EMAIL, TapRun, strip_descriptions, tap_executable

# Every run of the adversarial tests is at DEBUG: the most talkative level is where a
# header, a URL or a body is most likely to reach a log line.
DEBUG_ENV = {"TAP_SPANNING_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}

# Wall time of every run that exited non-zero, for the "longest failing exit" report.
FAILING_EXITS: list[tuple[str, float]] = []


# ---------------------------------------------------------------- secrets


def secret_forms(api_key: object, admin_email: object = ADMIN_EMAIL) -> dict[str, str]:
    """Every spelling of the configured key that must never be printed, by name.

    For a string key: the key, `email:key` and `base64(email:key)` (the Basic auth
    token), plus `base64(key)`. For a key that is not a string (a config mistake), its
    JSON and str() spellings and any string inside it.
    """
    if isinstance(api_key, str):
        pair = f"{admin_email}:{api_key}"
        return {
            "key": api_key,
            "email:key": pair,
            "base64(email:key)": base64.b64encode(pair.encode()).decode(),
            "base64(key)": base64.b64encode(api_key.encode()).decode(),
        }
    forms = {"json(key)": json.dumps(api_key), "str(key)": str(api_key)}
    if isinstance(api_key, list | dict):
        values = api_key.values() if isinstance(api_key, dict) else api_key
        forms.update({f"item {i}": str(v) for i, v in enumerate(values) if isinstance(v, str)})
    return {name: form for name, form in forms.items() if len(form) >= 6}


def leaks(text: str, forms: dict[str, str]) -> list[str]:
    """Names of the secret forms found in `text` (never the text itself)."""
    return [name for name, form in forms.items() if form in text]


def assert_no_secrets(forms: dict[str, str], **outputs: str) -> None:
    """No output holds any form; the failure names the output and form, not the text."""
    found = {name: leaks(text, forms) for name, text in outputs.items()}
    found = {name: which for name, which in found.items() if which}
    assert not found, f"secret forms printed: {found}"


# ---------------------------------------------------------------- running the tap


@dataclass
class CheckedRun(TapRun):
    """A TapRun that also knows how long it took and what it printed besides records."""

    seconds: float = 0.0
    non_record_stdout: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _parse(stdout: str) -> tuple[list[dict[str, Any]], str]:
    # Singer messages are separated by "\n" only: str.splitlines() would also split
    # at U+2028, U+0085 and friends, which a JSON string may hold unescaped.
    lines = [line for line in stdout.split("\n") if line.strip()]
    messages = [json.loads(line) for line in lines]
    others = [line for line, msg in zip(lines, messages, strict=True) if msg["type"] != "RECORD"]
    return messages, "\n".join(others)


def run_tap_checked(
    config: dict[str, Any],
    tmp_path: Path,
    *args: str,
    label: str = "",
    env: dict[str, str] | None = None,
    catalog: dict[str, Any] | None = None,
    timeout: float = 60,
    parse: bool = True,
    key_may_be_record_data: bool = False,
) -> CheckedRun:
    """Run `tap-spanning --config <file> [args]` at DEBUG and check it printed no key.

    The config's api_key, in every form, must be absent from stderr (logs and
    tracebacks) and stdout (SCHEMA, STATE, catalog, --about). With
    `key_may_be_record_data`, RECORD messages are exempt: a server that puts the key
    in a user's data gets it back as data; everything else is still checked.
    """
    config_file = tmp_path / f"config-{uuid.uuid4().hex[:8]}.json"
    config_file.write_text(json.dumps(config))
    command = [*tap_executable(), "--config", str(config_file), *args]
    if catalog is not None:
        catalog_file = tmp_path / f"catalog-{uuid.uuid4().hex[:8]}.json"
        catalog_file.write_text(json.dumps(catalog))
        command += ["--catalog", str(catalog_file)]
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **DEBUG_ENV, **(env or {})},
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        FAILING_EXITS.append((label or " ".join(args) or "sync", seconds))
    messages, others = _parse(done.stdout) if parse else ([], done.stdout)
    run = CheckedRun(done.returncode, done.stdout, done.stderr, messages, seconds, others)
    forms = secret_forms(config.get("api_key"), config.get("admin_email", ADMIN_EMAIL))
    stdout = others if key_may_be_record_data else done.stdout
    assert_no_secrets(forms, stdout=stdout, stderr=done.stderr)
    return run


def assert_same_output(
    run: TapRun,
    users: list[dict[str, object]],
    expected: dict[str, list[dict[str, object]]] | None = None,
) -> None:
    """Exit 0, and every RECORD of the three streams equals the ground truth, in order."""
    assert run.returncode == 0, run.stderr[-3000:]
    expected = expected or expected_output(users)
    assert run.records("users") == expected["users"]
    assert run.records("role_memberships") == expected["role_memberships"]
    assert strip_descriptions(run.records("roles")) == expected["roles"]
    for stream in ("users", "roles", "role_memberships"):
        assert run.count("SCHEMA", stream) == 1, stream


def retry_warnings(run: TapRun) -> int:
    return sum(1 for line in run.stderr.splitlines() if "Retrying GET /external/users" in line)


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

    def __enter__(self) -> HostileServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()
        self.server_close()
