"""A loopback HTTP emulator of the Spanning Backup for Office 365 API, with faults.

`SpanningEmulator` serves one tenant on one address. `FleetEmulator` serves many
tenants (an MSP's clients), one listener per loopback address standing for a regional
host; each listener tells its tenants apart by their Basic credentials, as the real
regional hosts do. The faults themselves are in faults.py: a request's fault serves
itself through the `_Exchange` at the bottom of this file.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import datetime as dt
import email.utils
import functools
import hmac
import json
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Literal, final
from urllib.parse import quote, unquote

from .backups import (
    BackupStyle,
    DateFormat,
    as_day,
    summary_items,
    user_items,
    utc_today,
    window_days,
)
from .emulated import TENANT_ID_PATTERN, EmulatedTenant, TenantState, check_tenants
from .faults import Fault, FaultPlan, parse_fault
from .hostile import check_hostile, date_header_day, rewrite
from .hosts import is_loopback_host
from .query import (
    DEFAULT_PAGE_SIZE,
    SUMMARY_PATH,
    TENANT_PATH,
    USERS_PATH,
    InvalidQuery,
    PageQuery,
    parse_page_query,
    parse_window,
)
from .snapshot import Snapshot, with_summary
from .tenant import DEFAULT_TENANT_ID, generate_users
from .wire import HTML_TYPE, JSON_TYPE, TEXT_TYPE, Response, dumps

if TYPE_CHECKING:  # typing_extensions for mypy only: the emulator is stdlib-only at run time
    from typing_extensions import override
elif sys.version_info >= (3, 12):
    from typing import override
else:

    def override(method: object) -> object:
        return method


__all__ = [  # what this module has always offered, wherever it lives now
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_API_KEY",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_USER_COUNT",
    "HTML_TYPE",
    "JSON_TYPE",
    "SUMMARY_PATH",
    "TENANT_ID_PATTERN",
    "TENANT_PATH",
    "TEXT_TYPE",
    "USERS_PATH",
    "EmulatedTenant",
    "Fault",
    "FaultPlan",
    "FleetEmulator",
    "LastLink",
    "LinkStyle",
    "PageHook",
    "RequestRecord",
    "SpanningEmulator",
    "parse_fault",
]

DEFAULT_ADMIN_EMAIL = "admin@contoso.example"
DEFAULT_API_KEY = "5f0c2a8e-7d1b-4c3e-9a6f-2b8d4e1c7a90"
DEFAULT_USER_COUNT = 100

LinkStyle = Literal["absolute", "relative"]
LastLink = Literal["empty", "null", "absent"]
PageHook = Callable[[int, dict[str, object]], dict[str, object]]
_Request = socket.socket | tuple[bytes, socket.socket]

_LAST_LINK_FIELDS: dict[str, dict[str, object]] = {
    "empty": {"nextLink": ""},
    "null": {"nextLink": None},
    "absent": {},
}


# ---------------------------------------------------------------- the log, errors, credentials


@dataclass(frozen=True)
class RequestRecord:
    """One request as received, and what the emulator did with it.

    `number` counts from 1: every request of a SpanningEmulator, or the requests of
    one tenant of a FleetEmulator (0 there for a request whose credentials match no
    tenant of the listener it reached; such requests are not numbered).
    """

    number: int
    method: str
    path: str
    headers: dict[str, str] = field(repr=False)  # holds the Basic credentials
    status: int | None
    fault: str | None
    # time.monotonic() when the request arrived: tests measure waits between tries.
    received_at: float = 0.0
    # Whose credentials these were (None: nobody's on this listener), and the address
    # of the listener the request arrived on.
    tenant_id: str | None = None
    host: str = ""


_UNAUTHORIZED = Response(401, dumps({"code": "Unauthorized", "message": ""}))
_USER_NOT_FOUND = Response(
    404, dumps({"statusCode": 404, "code": "NotFound", "message": "User not found"})
)


def _not_found(method: str, path: str) -> Response:
    return Response(404, f"Cannot {method} {path}".encode(), HTML_TYPE)


def _bad_request(message: str) -> Response:
    body = {
        "statusCode": 400,
        "code": "FST_ERR_VALIDATION",
        "error": "Bad Request",
        "message": message,
    }
    return Response(400, dumps(body))


def _credentials(header: str | None) -> tuple[str, str] | None:
    """(email, key) of a Basic Authorization header, or None when it is not one."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    email, colon, key = decoded.partition(":")
    return (email, key) if colon else None


def _same_credentials(given: tuple[str, str] | None, admin_email: str, api_key: str) -> bool:
    if given is None:
        return False
    email, key = given
    same_key = hmac.compare_digest(key.encode(), api_key.encode())
    return same_key and email.casefold() == admin_email.casefold()


# ---------------------------------------------------------------- listeners


@dataclass(frozen=True)
class _Backups:
    """How a tenant serves its backup status, and which day is today for it."""

    style: BackupStyle
    today: dt.date
    settle_day: dt.date | None


@dataclass(frozen=True)
class _Admission:
    """Who a request is for, decided when it arrives: numbering, faults, latency, data."""

    number: int
    tenant_id: str | None
    snapshot: Snapshot | None  # None: the credentials match no tenant here (401)
    faults: FaultPlan
    latency: float
    page_hook: PageHook | None = None
    backups: _Backups | None = None
    hostile: str | None = None  # the tenant's hostile case (hostile.py)


class _Listener(ThreadingHTTPServer):
    """One loopback address and port: lifecycle, connections and the API's answers.

    Subclasses decide who a request is for (admit) and where its log entry goes.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_page_size: int,
        link_style: LinkStyle,
        last_link: LastLink,
        verbose: bool,
        legacy_summary: bool = False,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(
                f"refusing to serve on {host!r}: the emulator binds loopback addresses only"
            )
        if link_style not in ("absolute", "relative"):
            raise ValueError(f"unknown link_style {link_style!r}")
        if last_link not in ("empty", "null", "absent"):
            raise ValueError(f"unknown last_link {last_link!r}")
        self.max_page_size = max_page_size
        self.link_style: LinkStyle = link_style
        self.last_link: LastLink = last_link
        self.verbose = verbose
        self.legacy_summary = legacy_summary
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._aborted: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), _Handler)

    # -- what subclasses decide

    def admit(self, authorization: str | None) -> _Admission:
        """Number the request just received and find whose it is."""
        raise NotImplementedError

    def record(self, entry: RequestRecord) -> None:
        """Append to the request log."""
        raise NotImplementedError

    # -- lifecycle

    @override
    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = (
            str(self.server_address[0]),
            int(self.server_address[1]),
        )

    def _start_thread(self) -> None:
        if self._thread is None:
            # A short poll interval is what lets stop() return quickly.
            serve = functools.partial(self.serve_forever, poll_interval=0.05)
            self._thread = threading.Thread(target=serve, name="spanning-emulator", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and drop open connections, without waiting on hung ones."""
        self._stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            _quietly_shutdown(connection)
        self.server_close()

    @property
    def base_url(self) -> str:
        """E.g. http://127.0.0.1:8765 (no trailing slash)."""
        host = self.server_name
        return (
            f"http://[{host}]:{self.server_port}"
            if ":" in host
            else f"http://{host}:{self.server_port}"
        )

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    @property
    def stopping(self) -> bool:
        """True once stop() has begun: slow fault handlers give up."""
        return self._stopping.is_set()

    # -- connection bookkeeping (so stop() and the reset faults work)

    @override
    def process_request(self, request: _Request, client_address: object) -> None:
        if isinstance(request, socket.socket):
            with self._lock:
                self._open.add(request)
        super().process_request(request, client_address)

    def abort(self, connection: socket.socket) -> None:
        """Make the coming close send a TCP RST instead of a FIN."""
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            self._aborted.add(connection)

    @override
    def shutdown_request(self, request: _Request) -> None:
        connection = request if isinstance(request, socket.socket) else request[1]
        with self._lock:
            self._open.discard(connection)
            aborted = connection in self._aborted
            self._aborted.discard(connection)
        if aborted:
            self.close_request(request)  # no shutdown(): that would send a FIN first
        else:
            super().shutdown_request(request)

    @override
    def handle_error(self, request: _Request, client_address: object) -> None:
        # Clients that time out or hang up mid-response are expected here.
        if self.verbose:
            super().handle_error(request, client_address)

    # -- the API

    def answer(self, method: str, target: str, admission: _Admission) -> Response:
        """The normal (fault-free) answer to one admitted request."""
        path, _, query = target.partition("?")
        if method != "GET" or not _is_route(path):
            return _not_found(method, path)
        snapshot = admission.snapshot
        if snapshot is None:
            return _UNAUTHORIZED
        if path == TENANT_PATH:
            return Response(200, snapshot.tenant)
        if path == USERS_PATH:
            return self._users_page(snapshot, query, admission)
        if path == SUMMARY_PATH:
            return _backup_summary(snapshot, query, admission)
        body = snapshot.user(unquote(path[len(USERS_PATH) + 1 :]))
        return _USER_NOT_FOUND if body is None else Response(200, body)

    def _users_page(self, snapshot: Snapshot, query: str, admission: _Admission) -> Response:
        try:
            page = parse_page_query(query, self.max_page_size)
        except InvalidQuery as invalid:
            return _bad_request(str(invalid))
        view = snapshot.views[page.in_ad]
        start = 0 if page.after is None else bisect.bisect_right(view.keys, page.after)
        end = start + page.size
        users = view.raw[start:end]
        if page.status == "true" and self._real_summary(page):
            users = _with_backups(snapshot, users, view.keys[start:end], page, admission)
        elif page.status != "false":
            users = [with_summary(raw) for raw in users]
        link = self._next_link(page, view.keys[end - 1]) if end < len(view.keys) else None
        body = _page_body(users, self._link_field(link), admission)
        return Response(200, body)

    def _real_summary(self, page: PageQuery) -> bool:
        """status=true: the tenant's backup history, unless this is the legacy case
        (no start/end on a server that keeps the placeholder there)."""
        return not self.legacy_summary or page.start is not None or page.end is not None

    def _next_link(self, page: PageQuery, last: tuple[str, str]) -> str:
        params = [("msIdOffset", last[1]), ("sortPropOffset", last[0]), ("size", str(page.size))]
        echoed = (
            ("status", page.status),
            ("inActiveDirectory", page.in_ad),
            ("start", None if page.start is None else str(page.start)),
            ("end", None if page.end is None else str(page.end)),
        )
        params += [(name, value) for name, value in echoed if value is not None]
        path = (
            USERS_PATH + "?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in params)
        )
        return path if self.link_style == "relative" else self.base_url + path

    def _link_field(self, link: str | None) -> dict[str, object]:
        """The nextLink member: the link, or the configured last-page spelling."""
        if link is not None:
            return {"nextLink": link}
        return _LAST_LINK_FIELDS[self.last_link]


def _backup_summary(snapshot: Snapshot, query: str, admission: _Admission) -> Response:
    """GET /external/tenant/backups/summary: the kept days of [start, end] (today only
    without them), one item per day per workload."""
    try:
        window = parse_window(query)
    except InvalidQuery as invalid:
        return _bad_request(str(invalid))
    backups = admission.backups or _Backups(BackupStyle(), utc_today(), None)
    days = window_days(window.start, window.end, backups.today)
    items = summary_items(snapshot.backups, days, backups.style, backups.settle_day)
    return Response(200, dumps(items))


def _with_backups(
    snapshot: Snapshot,
    users: list[bytes],
    keys: list[tuple[str, str]],
    page: PageQuery,
    admission: _Admission,
) -> list[bytes]:
    """The page's users, each with its backupSummary of the days asked (or none)."""
    backups = admission.backups or _Backups(BackupStyle(), utc_today(), None)
    days = window_days(page.start, page.end, backups.today)
    history = snapshot.backups
    served: list[bytes] = []
    for raw, key in zip(users, keys, strict=True):
        items = user_items(history, key, days, backups.style, backups.settle_day)
        served.append(raw if items is None else with_summary(raw, dumps(items)))
    return served


def _page_body(users: list[bytes], link_field: dict[str, object], admission: _Admission) -> bytes:
    hook = admission.page_hook
    if hook is not None:
        payload: dict[str, object] = {"users": [json.loads(raw) for raw in users], **link_field}
        return dumps(hook(admission.number, payload))
    tail = b"," + dumps(link_field)[1:-1] if link_field else b""
    return b'{"users":[' + b",".join(users) + b"]" + tail + b"}"


# ---------------------------------------------------------------- one tenant


@final
class SpanningEmulator(_Listener):
    """The Spanning API on loopback: users, tenant, single user, backup status, Basic
    auth, faults.

    One tenant on one address; every request is numbered (from 1) for `faults`,
    whatever its credentials.

    Backup status (backups.py): `date_format`, `counts_as_text` and `user_id_as_text`
    say how it is spelled (the attribute `backup_style`); `today` (None: the real UTC
    today, asked at each request) picks the 7 days kept; `settle_day` redraws that
    day's counts. All three may be changed on a running emulator. status=true without
    start/end answers today's items, as the API does; `legacy_summary` instead splices
    an old placeholder backupSummary there (and when status is absent). `hostile`: a
    case of hostile.HOSTILE_CASES, as for a fleet's tenant.
    """

    def __init__(
        self,
        users: Sequence[Mapping[str, object]] | None = None,
        *,
        admin_email: str = DEFAULT_ADMIN_EMAIL,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        max_page_size: int = 1000,
        latency: float = 0.0,
        link_style: LinkStyle = "absolute",
        last_link: LastLink = "empty",
        faults: FaultPlan | None = None,
        verbose: bool = False,
        tenant_id: str = DEFAULT_TENANT_ID,
        date_format: DateFormat = "iso",
        counts_as_text: bool = False,
        user_id_as_text: bool = False,
        today: dt.date | None = None,
        settle_day: dt.date | None = None,
        legacy_summary: bool = False,
        hostile: str | None = None,
    ) -> None:
        served = generate_users(DEFAULT_USER_COUNT) if users is None else users
        check_hostile(hostile, served)
        self.hostile = hostile
        self.admin_email = admin_email
        self.api_key = api_key
        self.latency = latency
        self.faults = faults or FaultPlan()
        self.tenant_id = tenant_id
        self.page_hook: PageHook | None = None
        self.backup_style = BackupStyle(date_format, counts_as_text, user_id_as_text)
        self.today = today
        self.settle_day = settle_day
        self._snapshot = Snapshot(served, tenant_id=tenant_id)
        self._log: list[RequestRecord] = []
        self._count = 0
        super().__init__(
            host,
            port,
            max_page_size=max_page_size,
            link_style=link_style,
            last_link=last_link,
            verbose=verbose,
            legacy_summary=legacy_summary,
        )

    def start(self) -> SpanningEmulator:
        """Serve in a daemon thread; returns self."""
        self._start_thread()
        return self

    @override
    def __enter__(self) -> SpanningEmulator:
        return self.start()

    @override
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- tenant and request log

    def set_users(self, users: Sequence[Mapping[str, object]]) -> None:
        """Replace the tenant atomically (requests in flight keep the old one)."""
        self._snapshot = Snapshot(users, tenant_id=self.tenant_id)

    @property
    def user_count(self) -> int:
        """Users in the current tenant."""
        return self._snapshot.count

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the log of every request received so far."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the log and restart request numbering at 1 (fault plans count from there)."""
        with self._lock:
            self._log.clear()
            self._count = 0

    def next_request_number(self) -> int:
        """Number the request just received (from 1, every request counts)."""
        with self._lock:
            self._count += 1
            return self._count

    @override
    def record(self, entry: RequestRecord) -> None:
        """Append to the request log."""
        with self._lock:
            self._log.append(entry)

    @override
    def admit(self, authorization: str | None) -> _Admission:
        return self._admission(authorization, self.next_request_number())

    def respond(self, method: str, target: str, authorization: str | None, number: int) -> Response:
        """The normal (fault-free) answer to one request."""
        return self.answer(method, target, self._admission(authorization, number))

    def _admission(self, authorization: str | None, number: int) -> _Admission:
        authorised = _same_credentials(_credentials(authorization), self.admin_email, self.api_key)
        backups = _Backups(
            self.backup_style,
            as_day(self.today) if self.today is not None else utc_today(),
            self.settle_day,
        )
        return _Admission(
            number,
            self.tenant_id if authorised else None,
            self._snapshot if authorised else None,
            self.faults,
            self.latency,
            self.page_hook,
            backups,
            self.hostile,
        )


# ---------------------------------------------------------------- a fleet of tenants


@final
class _FleetListener(_Listener):
    """One regional host of a fleet: serves the tenants whose host it is."""

    def __init__(
        self,
        fleet: FleetEmulator,
        host: str,
        port: int,
        *,
        max_page_size: int,
        link_style: LinkStyle,
        last_link: LastLink,
        verbose: bool,
        legacy_summary: bool,
    ) -> None:
        self.fleet = fleet
        self.host = host
        super().__init__(
            host,
            port,
            max_page_size=max_page_size,
            link_style=link_style,
            last_link=last_link,
            verbose=verbose,
            legacy_summary=legacy_summary,
        )

    @override
    def admit(self, authorization: str | None) -> _Admission:
        return self.fleet._admit(self.host, _credentials(authorization))

    @override
    def record(self, entry: RequestRecord) -> None:
        self.fleet._record(entry)


class FleetEmulator:
    """Many tenants, one listener per distinct loopback host, all on one port if possible.

    A listener serves only the tenants whose `host` it is, and tells them apart by
    their Basic credentials (email case-insensitive); another host's tenant gets 401
    exactly like a wrong key (keys are region-scoped). Faults and latency are per
    tenant, and each tenant numbers its own requests from 1. Requests whose
    credentials match no tenant of the listener get 401, no fault and no latency.

    Each tenant serves its own backup status, spelled its own way; `today` is the
    day of every tenant without a `today` of its own (None: the real UTC today).
    `legacy_summary` is SpanningEmulator's. A tenant's `hostile` case changes its
    answers (hostile.py) after any fault plan has picked the request.
    """

    def __init__(
        self,
        tenants: Sequence[EmulatedTenant],
        *,
        port: int = 0,
        max_page_size: int = 1000,
        link_style: LinkStyle = "absolute",
        last_link: LastLink = "empty",
        verbose: bool = False,
        today: dt.date | None = None,
        legacy_summary: bool = False,
    ) -> None:
        check_tenants(tenants)
        self.today = today
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._states = {tenant.tenant_id: TenantState(tenant) for tenant in tenants}
        self._by_host: dict[str, dict[str, list[TenantState]]] = {}
        for state in self._states.values():
            emails = self._by_host.setdefault(state.tenant.host, {})
            emails.setdefault(state.tenant.admin_email.casefold(), []).append(state)
        self._listeners: dict[str, _FleetListener] = {}

        def bind(host: str, port: int) -> _FleetListener:
            return _FleetListener(
                self,
                host,
                port,
                max_page_size=max_page_size,
                link_style=link_style,
                last_link=last_link,
                verbose=verbose,
                legacy_summary=legacy_summary,
            )

        try:
            wanted = port
            for host in self._by_host:
                try:
                    listener = bind(host, wanted)
                except OSError:
                    if port != 0 or not self._listeners:
                        raise
                    listener = bind(host, 0)  # the first listener's port is taken here
                if not self._listeners:
                    wanted = listener.server_port
                self._listeners[host] = listener
        except BaseException:
            for listener in self._listeners.values():
                listener.server_close()
            raise

    # -- lifecycle

    def start(self) -> FleetEmulator:
        """Serve every listener in its own daemon thread; returns self."""
        for listener in self._listeners.values():
            listener._start_thread()
        return self

    def stop(self) -> None:
        """Stop every listener, without waiting on hung connections."""
        for listener in self._listeners.values():
            listener.stop()

    def __enter__(self) -> FleetEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and tenants

    def base_url(self, tenant_id: str) -> str:
        """The base URL of the tenant's host, e.g. http://127.0.0.2:41234."""
        return self._listeners[self._state(tenant_id).tenant.host].base_url

    @property
    def base_urls(self) -> list[str]:
        """One base URL per listener (per distinct host), in order of first tenant."""
        return [listener.base_url for listener in self._listeners.values()]

    @property
    def tenants(self) -> list[EmulatedTenant]:
        """Every tenant as currently defined, in the order given."""
        return [state.tenant for state in self._states.values()]

    def tenant(self, tenant_id: str) -> EmulatedTenant:
        """The tenant as currently defined (after any set_users/set_faults)."""
        return self._state(tenant_id).tenant

    def set_users(self, tenant_id: str, users: Sequence[Mapping[str, object]]) -> None:
        """Replace a tenant's users atomically (requests in flight keep the old ones)."""
        state = self._state(tenant_id)
        snapshot = Snapshot(users, state.tenant.counters, tenant_id=tenant_id)
        with self._lock:
            state.tenant = replace(state.tenant, users=users)
            state.snapshot = snapshot

    def set_faults(self, tenant_id: str, plan: FaultPlan) -> None:
        """Replace a tenant's fault plan (its request numbering goes on)."""
        state = self._state(tenant_id)
        with self._lock:
            state.tenant = replace(state.tenant, faults=plan)

    def set_latency(self, tenant_id: str, seconds: float) -> None:
        """Replace a tenant's added latency per response."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        state = self._state(tenant_id)
        with self._lock:
            state.tenant = replace(state.tenant, latency=seconds)

    def set_today(self, today: dt.date | None, tenant_id: str | None = None) -> None:
        """Move "today" for the whole fleet (tenants without their own), or for one
        tenant; None: back to the real UTC today (or the fleet's, for a tenant)."""
        if tenant_id is None:
            self.today = today
            return
        state = self._state(tenant_id)
        with self._lock:
            state.tenant = replace(state.tenant, today=today)

    def set_backup_options(self, tenant_id: str, **changes: object) -> None:
        """Replace a tenant's backup options (date_format, counts_as_text,
        user_id_as_text, today, settle_day)."""
        unknown = set(changes) - {
            "date_format",
            "counts_as_text",
            "user_id_as_text",
            "today",
            "settle_day",
        }
        if unknown:
            raise TypeError(f"not backup options: {', '.join(sorted(unknown))}")
        state = self._state(tenant_id)
        tenant = replace(state.tenant, **changes)  # type: ignore[arg-type]
        check_tenants([tenant])
        with self._lock:
            state.tenant = tenant

    def set_hostile(self, tenant_id: str, case: str | None) -> None:
        """Make a tenant hostile by a case of hostile.HOSTILE_CASES (None: honest again)."""
        state = self._state(tenant_id)
        tenant = replace(state.tenant, hostile=case)
        check_tenants([tenant])
        with self._lock:
            state.tenant = tenant

    def _state(self, tenant_id: str) -> TenantState:
        try:
            return self._states[tenant_id]
        except KeyError:
            raise KeyError(f"unknown tenant {tenant_id!r}") from None

    # -- request log

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the log of every listener, in arrival order."""
        with self._lock:
            log = list(self._log)
        return sorted(log, key=lambda entry: entry.received_at)

    def clear_requests(self) -> None:
        """Empty the log and restart every tenant's request numbering at 1."""
        with self._lock:
            self._log.clear()
            for state in self._states.values():
                state.count = 0

    def _record(self, entry: RequestRecord) -> None:
        with self._lock:
            self._log.append(entry)

    def _admit(self, host: str, given: tuple[str, str] | None) -> _Admission:
        state = None
        if given is not None:
            candidates = self._by_host.get(host, {}).get(given[0].casefold(), [])
            for candidate in candidates:
                tenant = candidate.tenant
                if _same_credentials(given, tenant.admin_email, tenant.api_key):
                    state = candidate
                    break
        if state is None:
            return _Admission(0, None, None, FaultPlan(), 0.0)
        with self._lock:
            state.count += 1
            tenant, snapshot, number = state.tenant, state.snapshot, state.count
        today = tenant.today or self.today
        backups = _Backups(
            tenant.backup_style,
            as_day(today) if today is not None else utc_today(),
            tenant.settle_day,
        )
        return _Admission(
            number,
            tenant.tenant_id,
            snapshot,
            tenant.faults,
            tenant.latency,
            backups=backups,
            hostile=tenant.hostile,
        )


def _is_route(path: str) -> bool:
    """Exact routes only: '//external/users' or '/external/users/' are 404s."""
    if path in (USERS_PATH, TENANT_PATH, SUMMARY_PATH):
        return True
    return path.startswith(USERS_PATH + "/") and len(path) > len(USERS_PATH) + 1


def _quietly_shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its handler
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Turns each HTTP request into its listener's answer, or the tenant's fault."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else small keep-alive responses stall ~40 ms on delayed ACKs
    server: _Listener

    @override
    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            sys.stderr.write(f"spanning-emulator: {self.address_string()} {format % args}\n")

    @property
    def target(self) -> str:
        """The request target exactly as sent (self.path collapses a leading '//')."""
        parts = self.requestline.split(" ")
        return parts[1] if len(parts) == 3 else self.path

    # The day the tenant counts as today: its Date header says it (the tap reads the
    # backup window from it), at the real time of day.
    _today: dt.date | None = None

    @override
    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is None and self._today is not None:
            now = dt.datetime.now(dt.timezone.utc)
            moment = dt.datetime.combine(self._today, now.timetz())
            return email.utils.formatdate(moment.timestamp(), usegmt=True)
        return super().date_time_string(timestamp)

    def _serve(self) -> None:
        received_at = time.monotonic()
        admission = self.server.admit(self.headers.get("Authorization"))
        today = admission.backups.today if admission.backups is not None else None
        self._today = date_header_day(admission.hostile, today)
        self._drain_body()
        fault = admission.faults.fault_for(admission.number)
        exchange = _Exchange(self, admission, fault, received_at)
        if fault is None:
            exchange.reply(exchange.answer())
        else:
            fault.serve(exchange)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _drain_body(self) -> None:
        """Read any request body so the keep-alive connection stays in sync."""
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > 0:
            self.rfile.read(int(length))


class _Exchange:
    """One admitted request and its connection, as a fault serves it (faults.Exchange)."""

    def __init__(
        self, handler: _Handler, admission: _Admission, fault: Fault | None, received_at: float
    ) -> None:
        self._handler = handler
        self._admission = admission
        self._fault = fault
        self._received_at = received_at
        self.plan = admission.faults
        self.method = handler.command

    @property
    def stopping(self) -> bool:
        """True once the server is stopping: slow faults give up."""
        return self._handler.server.stopping

    def answer(self) -> Response:
        """The normal (fault-free) answer to the request, as the tenant serves it."""
        handler, admission = self._handler, self._admission
        response = handler.server.answer(handler.command, handler.target, admission)
        if admission.hostile is None or admission.snapshot is None:
            return response
        style = admission.backups.style if admission.backups is not None else BackupStyle()
        return rewrite(admission.hostile, handler.target, response, admission.snapshot, style)

    def reply(self, response: Response) -> None:
        """Log the request with the response's status, wait the latency, send it whole."""
        self.record(response.status)
        self.wait_latency()
        self.send_headers(response)
        if self.method != "HEAD":
            self.write(response.body)

    def record(self, status: int | None) -> None:
        """Log the request, with the status it got (None: no response at all)."""
        handler, admission = self._handler, self._admission
        handler.server.record(
            RequestRecord(
                admission.number,
                handler.command,
                handler.target,
                dict(handler.headers.items()),
                status,
                None if self._fault is None else self._fault.kind,
                self._received_at,
                admission.tenant_id,
                handler.server.server_name,
            )
        )

    def wait_latency(self) -> None:
        """Wait the tenant's added latency (cut short when the server stops)."""
        self._handler.server.pause(self._admission.latency)

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        self._handler.server.pause(seconds)

    def send_headers(self, response: Response) -> None:
        """The status line and headers; Content-Length is that of the whole body."""
        handler = self._handler
        handler.send_response(response.status)
        if response.content_type is not None:
            handler.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()

    def write(self, data: bytes) -> None:
        """Raw bytes onto the connection, flushed: OSError once the client has gone."""
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def close(self) -> None:
        """Close the connection once this request is done (no keep-alive)."""
        self._handler.close_connection = True

    def abort(self) -> None:
        """Make the coming close send a TCP RST instead of a FIN."""
        self._handler.server.abort(self._handler.connection)
