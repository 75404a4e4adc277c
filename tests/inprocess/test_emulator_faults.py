"""The emulator's faults: a FaultPlan's rules, and every fault kind served as the table of
fault kinds says, read from a raw socket.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable

import pytest
import requests
from spanning_emulator import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    FAULT_KINDS,
    RETRIED_FAULTS,
    FaultKind,
    FaultPlan,
    SpanningEmulator,
    generate_users,
    parse_fault,
)
from spanning_emulator.cli import main as cli_main
from spanning_emulator.faults import Behaviour, Canned

# ------------------------------------------------------------------ faults


def _faulty(plan: FaultPlan) -> SpanningEmulator:
    return SpanningEmulator(generate_users(20), faults=plan)


@pytest.mark.parametrize(("retry_after", "header"), [("7", "7"), (None, None)])
def test_fault_429(retry_after: str | None, header: str | None, session: requests.Session) -> None:
    with _faulty(FaultPlan(at={1: "429"}, retry_after=retry_after)) as emu:
        url = f"{emu.base_url}/external/users?size=5"
        response = session.get(url, timeout=5)
        assert response.status_code == 429
        assert response.text == "Too many requests, please try again later."
        assert response.headers.get("Retry-After") == header
        assert session.get(url, timeout=5).status_code == 200  # the retry gets the real page
        assert [(r.status, r.fault) for r in emu.requests] == [(429, "429"), (200, None)]


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "marker"),
    [
        ("500", 500, "application/json", '"statusCode":500'),
        ("500:html", 500, "text/html", "<title>500 Internal Server Error</title>"),
        ("502", 502, "text/html", "<title>502 Bad Gateway</title>"),
        ("503:json", 503, "application/json", '"statusCode":503'),
        ("504", 504, "text/html", "<title>504 Gateway Time-out</title>"),
        ("504:empty", 504, None, ""),
        ("html200", 200, "text/html", "maintenance"),
    ],
)
def test_fault_status_bodies(
    kind: str, status: int, content_type: str | None, marker: str, session: requests.Session
) -> None:
    with _faulty(FaultPlan(every=2, kind=kind)) as emu:
        url = f"{emu.base_url}/external/users?size=5&status=false"
        assert session.get(url, timeout=5).status_code == 200
        response = session.get(url, timeout=5)
        assert response.status_code == status
        assert response.headers.get("Content-Type", "").split(";")[0] == (content_type or "")
        assert marker in response.text
        assert response.headers["Content-Length"] == str(len(response.content))


def test_fault_hang_times_out_and_stop_does_not_wait(session: requests.Session) -> None:
    emu = _faulty(FaultPlan(at={1: "hang"}, hang_seconds=20)).start()
    with pytest.raises(requests.Timeout):
        session.get(f"{emu.base_url}/external/users", timeout=0.3)
    assert session.get(f"{emu.base_url}/external/users", timeout=5).ok
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2


def test_fault_plan_rules() -> None:
    plan = FaultPlan(every=3, kind="503", at={3: "429", 4: "504:empty"})
    assert [None if (f := plan.fault_for(n)) is None else f.kind for n in range(1, 8)] == [
        None, None, "429", "504:empty", None, "503", None,
    ]  # fmt: skip
    for bad in ("418", "500:xml", "reset", "hang:json", ""):
        with pytest.raises(ValueError, match="unknown fault kind"):
            parse_fault(bad)
    with pytest.raises(ValueError, match="unknown fault kind") as error:
        FaultPlan(at={1: "teapot"})
    assert all(name in str(error.value) for name in FAULT_KINDS)  # the message lists them
    for row in FAULT_KINDS.values():
        assert all(parse_fault(spelling).row is row for spelling in row.spellings)
    assert set(RETRIED_FAULTS) <= set(FAULT_KINDS)


def test_cli_help_lists_every_fault_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in FAULT_KINDS)


# ------------------------------------------------------------------ every fault kind, by the table

FAULT_TARGET = "/external/tenant"  # a short answer: trickling it takes little time
TRICKLE = 0.005  # faults.TRICKLE_INTERVAL while these tests run
HANG = 0.3  # FaultPlan.hang_seconds
BASIC = "Basic " + base64.b64encode(f"{DEFAULT_ADMIN_EMAIL}:{DEFAULT_API_KEY}".encode()).decode()


def _ask(sock: socket.socket, target: str = FAULT_TARGET) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: emulator\r\nAuthorization: {BASIC}\r\n\r\n"
    sock.sendall(request.encode())


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response, as long as its Content-Length: (status, headers lower-cased, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the end of the headers: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed before the end of the body"
        body += chunk
    return int(status_line.split(" ")[1]), headers, body


def _read_until_closed(sock: socket.socket) -> tuple[bytes, str]:
    """Every byte sent until the server closes the connection, and how: 'fin' or 'rst'."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "rst"
        if not chunk:
            return data, "fin"
        data += chunk


def _normal_body(emu: SpanningEmulator) -> bytes:
    return emu.respond("GET", FAULT_TARGET, BASIC, 0).body


def _logged_status(emu: SpanningEmulator) -> int | None:
    return emu.requests[0].status


def _assert_kept_alive(emu: SpanningEmulator, sock: socket.socket) -> None:
    """The same connection answers the next request normally."""
    _ask(sock)
    assert _read_response(sock)[::2] == (200, _normal_body(emu))


def _served_canned(emu: SpanningEmulator, sock: socket.socket, kind: str, served: Canned) -> None:
    canned = served.make(parse_fault(kind), emu.faults)
    status, headers, body = _read_response(sock)
    assert (status, headers.get("content-type"), body) == (
        canned.status,
        canned.content_type,
        canned.body,
    )
    assert all(headers[name.lower()] == value for name, value in canned.headers)
    assert _logged_status(emu) == canned.status
    _assert_kept_alive(emu, sock)


def _served_reset_before(emu: SpanningEmulator, sock: socket.socket) -> None:
    assert _read_until_closed(sock) == (b"", "rst")
    assert _logged_status(emu) is None


def _served_reset_during(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    data, end = _read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"\r\nContent-Length: {len(full)}".encode() in head  # promises the whole body
    assert (body, end) == (full[: len(full) // 2], "fin")
    assert _logged_status(emu) == 200


def _served_truncate(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    status, _, body = _read_response(sock)
    assert (status, body) == (200, full[: len(full) // 2])  # Content-Length to match
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert _logged_status(emu) == 200
    _assert_kept_alive(emu, sock)


def _served_hang(emu: SpanningEmulator, sock: socket.socket) -> None:
    started = time.monotonic()
    assert _read_until_closed(sock) == (b"", "fin")
    assert time.monotonic() - started >= HANG
    assert _logged_status(emu) is None


def _served_trickle(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    started = time.monotonic()
    data, end = _read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\nServer: ")  # the real status and headers
    assert (body, end) == (full, "fin")
    assert time.monotonic() - started >= len(full) * TRICKLE
    assert _logged_status(emu) == 200


def _served_slow_headers(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    started = time.monotonic()
    data, end = _read_until_closed(sock)
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(full)}\r\n\r\n"
    )
    assert (data, end) == (head.encode() + full, "fin")
    assert time.monotonic() - started >= len(data) * TRICKLE
    assert _logged_status(emu) == 200


# How each Behaviour row of FAULT_KINDS looks from the client, its request just sent.
SERVED_BY_BEHAVIOUR: dict[str, Callable[[SpanningEmulator, socket.socket], None]] = {
    "reset-before": _served_reset_before,
    "reset-during": _served_reset_during,
    "truncate": _served_truncate,
    "hang": _served_hang,
    "trickle": _served_trickle,
    "slow-headers": _served_slow_headers,
}


@pytest.mark.parametrize("row", FAULT_KINDS.values(), ids=lambda row: row.name)
def test_each_fault_kind_is_served_as_its_row_says(
    row: FaultKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every spelling of every row: a canned row sends its response and keeps the
    connection; a behaviour row needs its check in SERVED_BY_BEHAVIOUR."""
    monkeypatch.setattr("spanning_emulator.faults.TRICKLE_INTERVAL", TRICKLE)
    served = row.served
    if isinstance(served, Behaviour):
        assert row.name in SERVED_BY_BEHAVIOUR, f"no check of how {row.name!r} is served"
    for kind in row.spellings:
        plan = FaultPlan(at={1: kind}, retry_after="7", hang_seconds=HANG)
        with _faulty(plan) as emu:
            with socket.create_connection((emu.server_name, emu.server_port), timeout=5) as sock:
                _ask(sock)
                if isinstance(served, Canned):
                    _served_canned(emu, sock, kind, served)
                else:
                    SERVED_BY_BEHAVIOUR[row.name](emu, sock)
            assert (emu.requests[0].number, emu.requests[0].fault) == (1, kind)
            with socket.create_connection((emu.server_name, emu.server_port), timeout=5) as sock:
                _assert_kept_alive(emu, sock)  # the next request, on a new connection
