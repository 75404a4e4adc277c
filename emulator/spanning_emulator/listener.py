"""The listener every emulator serves on: one loopback address and port, its
connections, and each request's way from arrival to answer (or fault).

A request is admitted (admission.py: numbered, its tenant found by its credentials),
then its tenant's fault plan picks a fault or none; the normal answer is the route's
(routes.py), changed by the tenant's hostile case (hostile.py) if it has one. A fault
serves itself through the request's `_Exchange` (faults.Exchange). Subclasses
(server.py, fleet_server.py) decide who a request is for and where its log entry goes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import functools
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from . import routes
from .admission import Admission, RequestRecord
from .backups import BackupStyle
from .faults import Fault
from .hostile import date_header_day, rewrite
from .hosts import is_loopback_host
from .routes import LastLink, LinkStyle
from .wire import Response

if TYPE_CHECKING:  # typing_extensions for mypy only: the emulator is stdlib-only at run time
    from typing_extensions import override
elif sys.version_info >= (3, 12):
    from typing import override
else:

    def override(method: object) -> object:
        return method


_Request = socket.socket | tuple[bytes, socket.socket]


class Listener(ThreadingHTTPServer):
    """One loopback address and port: lifecycle, connections and the API's answers
    (routes.py's, with this listener's paging and link settings).

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

    def admit(self, authorization: str | None) -> Admission:
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

    def start_thread(self) -> None:
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

    # A method of the listener, so that one listener's answers can be replaced (the bench
    # caches its costly pages: bench/emulator.py).
    def answer(self, method: str, target: str, admission: Admission) -> Response:
        """The normal (fault-free) answer to one admitted request (routes.py)."""
        return routes.answer(self, method, target, admission)


def _quietly_shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its handler
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Turns each HTTP request into its listener's answer, or the tenant's fault."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else small keep-alive responses stall ~40 ms on delayed ACKs
    server: Listener

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
        self, handler: _Handler, admission: Admission, fault: Fault | None, received_at: float
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
