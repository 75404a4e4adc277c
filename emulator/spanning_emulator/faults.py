"""The emulator's faults, driven by one table: FAULT_KINDS.

A new fault is one row of FAULT_KINDS plus its test.

A row names a kind, says in one line what the client sees, whether the tap is expected
to retry it, and how it is served: a `Canned` response in place of the API's answer,
or a `Behaviour` run on the request's connection through the `Exchange` the server
hands it. parse_fault accepts the rows' names (the 5xx ones also with a body variant,
e.g. '503:json'); its error text and the CLI's help list them from the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol

from .wire import HTML_TYPE, TEXT_TYPE, Response, dumps

TRICKLE_INTERVAL = 0.2  # seconds between the bytes of trickle and slow-headers

_HTML_MAINTENANCE = (
    b"<html><head><title>Scheduled maintenance</title></head><body>"
    b"<h1>We'll be back soon</h1><p>The service is down for maintenance.</p></body></html>"
)
# The reason phrases of nginx's error pages (the status line keeps Python's own).
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_BODIES = ("json", "html", "empty")  # the body variants of the 5xx kinds


@dataclass(frozen=True)
class Fault:
    """A parsed fault kind: `status` is set for 429 and the 5xx kinds, `variant` for the 5xx."""

    kind: str
    status: int | None = None
    variant: str | None = None

    @property
    def row(self) -> FaultKind:
        """This fault's row of FAULT_KINDS."""
        return FAULT_KINDS[self.kind.partition(":")[0]]

    def serve(self, exchange: Exchange) -> None:
        """Answer the request in `exchange` as this fault's row says."""
        self.row.served.serve(self, exchange)


class Exchange(Protocol):
    """One request being answered and its connection, as a fault serves it.

    The listener implements it (listener._Exchange).
    """

    @property
    def plan(self) -> FaultPlan:
        """The fault plan the request was numbered against."""

    @property
    def method(self) -> str:
        """The request's method."""

    @property
    def stopping(self) -> bool:
        """True once the server is stopping: slow faults give up."""

    def answer(self) -> Response:
        """The normal (fault-free) answer to the request."""

    def reply(self, response: Response) -> None:
        """Log the request with the response's status, wait the latency, send it whole."""

    def record(self, status: int | None) -> None:
        """Log the request, with the status it got (None: no response at all)."""

    def wait_latency(self) -> None:
        """Wait the tenant's added latency (cut short when the server stops)."""

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""

    def send_headers(self, response: Response) -> None:
        """The status line and headers; Content-Length is that of the whole body."""

    def write(self, data: bytes) -> None:
        """Raw bytes onto the connection, flushed: OSError once the client has gone."""

    def close(self) -> None:
        """Close the connection once this request is done (no keep-alive)."""

    def abort(self) -> None:
        """Make the coming close send a TCP RST instead of a FIN."""


# ---------------------------------------------------------------- canned responses


def _too_many_requests(_fault: Fault, plan: FaultPlan) -> Response:
    headers = (("Retry-After", plan.retry_after),) if plan.retry_after is not None else ()
    return Response(429, b"Too many requests, please try again later.", TEXT_TYPE, headers)


def _server_error(status: int, variant: str | None) -> Response:
    reason = _REASONS[status]
    if variant == "json":
        return Response(status, dumps({"statusCode": status, "error": reason, "message": reason}))
    if variant == "html":
        title = f"{status} {reason}"
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return Response(status, page.encode(), HTML_TYPE)
    return Response(status, b"", None)


def _server_error_for(fault: Fault, _plan: FaultPlan) -> Response:
    if fault.status is None:
        raise ValueError(f"fault {fault.kind!r} has no status")
    return _server_error(fault.status, fault.variant)


def _maintenance_page(_fault: Fault, _plan: FaultPlan) -> Response:
    return Response(200, _HTML_MAINTENANCE, HTML_TYPE)


# ---------------------------------------------------------------- behaviours


def _reset_before(exchange: Exchange) -> None:
    exchange.record(None)
    exchange.abort()
    exchange.close()


def _hang(exchange: Exchange) -> None:
    exchange.record(None)
    exchange.pause(exchange.plan.hang_seconds)
    exchange.close()


def _truncate(exchange: Exchange) -> None:
    response = exchange.answer()
    exchange.reply(replace(response, body=response.body[: len(response.body) // 2]))


def _reset_during(exchange: Exchange) -> None:
    response = exchange.answer()
    exchange.record(response.status)
    exchange.wait_latency()
    exchange.send_headers(response)
    if exchange.method == "HEAD":  # no body to break off: the connection stays open
        return
    exchange.write(response.body[: len(response.body) // 2])
    exchange.close()


def _trickle(exchange: Exchange) -> None:
    response = exchange.answer()
    exchange.record(response.status)
    exchange.wait_latency()
    exchange.close()
    exchange.send_headers(response)
    _dribble(exchange, response.body)


def _slow_headers(exchange: Exchange) -> None:
    response = exchange.answer()
    exchange.record(response.status)
    exchange.wait_latency()
    exchange.close()
    head = (
        f"HTTP/1.1 {response.status} OK\r\nContent-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n\r\n"
    ).encode("latin-1")
    _dribble(exchange, head + response.body)


def _dribble(exchange: Exchange, data: bytes) -> None:
    """One byte every TRICKLE_INTERVAL: never idle for long, never done soon; only a
    client-side deadline (or the server stopping) ends it."""
    for index in range(len(data)):
        if exchange.stopping:
            return
        try:
            exchange.write(data[index : index + 1])
        except OSError:
            return
        time.sleep(TRICKLE_INTERVAL)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Canned:
    """Served as a canned response in place of the API's answer."""

    make: Callable[[Fault, FaultPlan], Response]

    def serve(self, fault: Fault, exchange: Exchange) -> None:
        """Reply with the canned response."""
        exchange.reply(self.make(fault, exchange.plan))


@dataclass(frozen=True)
class Behaviour:
    """Served by a behaviour run on the request's connection."""

    run: Callable[[Exchange], None]

    def serve(self, _fault: Fault, exchange: Exchange) -> None:
        """Run the behaviour."""
        self.run(exchange)


@dataclass(frozen=True)
class FaultKind:
    """One row of FAULT_KINDS."""

    name: str
    description: str  # one line: what the client sees
    retried: bool  # whether the tap is expected to retry it
    served: Canned | Behaviour
    status: int | None = None  # Fault.status: the HTTP status of 429 and the 5xx kinds
    variants: tuple[str, ...] = ()  # the body variants a 5xx kind accepts after ':'
    default_variant: str | None = None  # the body without one

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"fault kind {self.name!r}: a name without ':'")
        if bool(self.variants) != (self.default_variant in self.variants):
            raise ValueError(f"fault kind {self.name}: default_variant is one of variants or None")

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every spelling parse_fault accepts for this row: the name, then each variant."""
        return (self.name, *(f"{self.name}:{variant}" for variant in self.variants))


def _server_error_kind(status: int, default: str) -> FaultKind:
    return FaultKind(
        str(status),
        f"{status} {_REASONS[status]}, with a JSON, nginx HTML or empty body "
        f"({default} unless named)",
        retried=True,
        served=Canned(_server_error_for),
        status=status,
        variants=_BODIES,
        default_variant=default,
    )


def _table(*rows: FaultKind) -> Mapping[str, FaultKind]:
    table = {row.name: row for row in rows}
    if len(table) != len(rows):
        raise ValueError("two rows of FAULT_KINDS have the same name")
    return MappingProxyType(table)


FAULT_KINDS: Mapping[str, FaultKind] = _table(
    FaultKind(
        "429",
        "429 Too Many Requests, with the plan's Retry-After (none when it is None)",
        retried=True,
        served=Canned(_too_many_requests),
        status=429,
    ),
    _server_error_kind(500, "json"),
    _server_error_kind(502, "html"),
    _server_error_kind(503, "html"),
    _server_error_kind(504, "html"),
    FaultKind(
        "reset-before",
        "no response: the connection is reset (TCP RST) at once",
        retried=True,
        served=Behaviour(_reset_before),
    ),
    FaultKind(
        "reset-during",
        "the real status and headers and half the body, then the connection closes",
        retried=True,
        served=Behaviour(_reset_during),
    ),
    FaultKind(
        "truncate",
        "the real answer cut to half its body, Content-Length to match: invalid JSON",
        retried=True,
        served=Behaviour(_truncate),
    ),
    FaultKind(
        "hang",
        "no response for the plan's hang_seconds, then the connection closes",
        retried=True,
        served=Behaviour(_hang),
    ),
    FaultKind(
        "trickle",
        "the real status and headers, then the body one byte every 0.2 s",
        retried=True,
        served=Behaviour(_trickle),
    ),
    FaultKind(
        "slow-headers",
        "status line (reason always OK), Content-Type, Content-Length, body: a byte every 0.2 s",
        retried=True,
        served=Behaviour(_slow_headers),
    ),
    FaultKind(
        "html200",
        "200 OK with an HTML maintenance page instead of JSON",
        retried=True,
        served=Canned(_maintenance_page),
    ),
)
RETRIED_FAULTS: tuple[str, ...] = tuple(name for name, row in FAULT_KINDS.items() if row.retried)


def _kinds_text() -> str:
    """E.g. '429, 500/502[:json|:html|:empty], hang or html200': rows in table order,
    neighbours with the same variants together."""
    groups: list[tuple[list[str], tuple[str, ...]]] = []
    for row in FAULT_KINDS.values():
        if row.variants and groups and groups[-1][1] == row.variants:
            groups[-1][0].append(row.name)
        else:
            groups.append(([row.name], row.variants))
    words = [
        "/".join(names) + (f"[:{'|:'.join(variants)}]" if variants else "")
        for names, variants in groups
    ]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


FAULT_KINDS_TEXT = _kinds_text()


def parse_fault(kind: str) -> Fault:
    """Parse the name of a row of FAULT_KINDS; a 5xx one may add ':json', ':html' or
    ':empty' (else its default body). ValueError otherwise."""
    name, _, variant = kind.partition(":")
    row = FAULT_KINDS.get(name)
    if row is not None and row.variants:
        body = variant or row.default_variant
        if body in row.variants:
            return Fault(kind, row.status, body)
    elif row is not None and not variant:
        return Fault(kind, row.status)
    raise ValueError(f"unknown fault kind {kind!r}: use {FAULT_KINDS_TEXT}")


@dataclass
class FaultPlan:
    """Which requests get which fault.

    Requests are numbered from 1: every request of a SpanningEmulator counts; in a
    FleetEmulator each tenant counts its own requests only.
    """

    every: int = 0
    kind: str = "500"
    at: dict[int, str] = field(default_factory=dict)
    retry_after: str | None = "1"
    hang_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError("every must be >= 0")
        for kind in [self.kind, *self.at.values()]:
            parse_fault(kind)

    def fault_for(self, number: int) -> Fault | None:
        """The fault for request `number`, if any; `at` wins over `every`."""
        if number in self.at:
            return parse_fault(self.at[number])
        if self.every and number % self.every == 0:
            return parse_fault(self.kind)
        return None
