"""Who a request is for, decided when it arrives, and the log entry of what was done.

A listener admits each request (listener.py): it numbers it, checks its Basic
credentials and finds the tenant's data, faults and latency. The routes (routes.py)
answer from the `Admission`; the request log keeps one `RequestRecord` per request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from .backups import BackupStyle
from .faults import FaultPlan
from .snapshot import Snapshot

# A test's rewrite of each users page: (request number, page as JSON) -> page to send.
PageHook = Callable[[int, dict[str, object]], dict[str, object]]


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


@dataclass(frozen=True)
class ServedBackups:
    """How a tenant serves its backup status, and which day is today for it."""

    style: BackupStyle
    today: dt.date
    settle_day: dt.date | None


@dataclass(frozen=True)
class Admission:
    """Who a request is for, decided when it arrives: numbering, faults, latency, data."""

    number: int
    tenant_id: str | None
    snapshot: Snapshot | None  # None: the credentials match no tenant here (401)
    faults: FaultPlan
    latency: float
    page_hook: PageHook | None = None
    backups: ServedBackups | None = None
    hostile: str | None = None  # the tenant's hostile case (hostile.py)


def credentials(header: str | None) -> tuple[str, str] | None:
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


def same_credentials(given: tuple[str, str] | None, admin_email: str, api_key: str) -> bool:
    """Whether `given` are these credentials: the key compared in constant time, the
    email case-insensitively."""
    if given is None:
        return False
    email, key = given
    same_key = hmac.compare_digest(key.encode(), api_key.encode())
    return same_key and email.casefold() == admin_email.casefold()
