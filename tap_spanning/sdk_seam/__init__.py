"""The seam: the only place that touches a private member of singer-sdk, requests or urllib3.

Everything else in the tap uses public APIs. Each private member used here is listed
in `PRIVATE_MEMBERS` with the behaviour it changes and why, and tests/test_sdk_seam.py
pins each one's existence and call shape, so an upgrade that changes one fails in the
tests rather than in production. The README's table is `seam_table_markdown()`.

Two modules: this one (the table, and the requests and urllib3 members the HTTP client
needs) loads without the SDK, because the client starts before the SDK is loaded (the
head start, head_start.py); `sdk_seam.singer` holds the singer-sdk members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class PrivateMember:
    """A private member of a library the tap depends on, and why the tap touches it."""

    library: str  # the distribution: singer-sdk, requests or urllib3
    owner: str  # the class that defines it
    reason: str  # the behaviour it changes, and why

    def test_name(self, member: str) -> str:
        """The test in tests/test_sdk_seam.py that pins it: test_<owner><member>."""
        return f"test_{self.owner.removesuffix('Base').lower()}{member}"


# member -> where it lives and why. tests/test_sdk_seam.py pins each one (its test is
# named after it) and checks that no other module touches one; the README's table is
# made from this one.
PRIVATE_MEMBERS: dict[str, PrivateMember] = {
    "_validate_config": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "runs the tap's own settings check first: its messages name the setting and the "
        "tenant and never echo a key, where the SDK's schema errors quote values",
    ),
    "_config": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "stores numbers given as text (environment, Meltano) as numbers, so that the "
        "SDK's schema check that follows agrees with the tap's",
    ),
    "_env_var_config": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "the SDK parses TAP_SPANNING_* with int() and a traceback that echoes the value, "
        "and reads any other boolean than 'true' as false; the tap reads them as text and "
        "checks them like settings from a file",
    ),
    "_handle_termination": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "the SDK writes a STATE and exits 0 on SIGTERM/SIGINT; a sync stopped half-way "
        "did not succeed, so exit 128 + signal with the reason as the last line",
    ),
    "_write_activate_version_message": PrivateMember(
        "singer-sdk",
        "Stream",
        "the SDK sends ACTIVATE_VERSION before the first record; a loader with hard delete "
        "would then drop the old rows of a sync that later fails. Held back until every "
        "tenant's data is written",
    ),
    "_stream_version": PrivateMember(
        "singer-sdk",
        "Stream",
        "the SDK's table version is whole seconds, so two runs in one second share it "
        "and the second deletes nothing; set to the run's start in milliseconds",
    ),
    "_write_record_message": PrivateMember(
        "singer-sdk",
        "Stream",
        "skips the SDK's per-record steps (property pop, type conformance, mapping) "
        "when they cannot change the record: half the tap's time at 100,000 users",
    ),
    "_write_schema_message": PrivateMember(
        "singer-sdk",
        "Stream",
        "role_memberships is fed a page at a time, not synced per parent record: "
        "one SCHEMA per run, not one per user",
    ),
    "_content": PrivateMember(
        "requests",
        "Response",
        "a body read in chunks under a size bound (an endless or huge body would fill the "
        "memory of the whole fleet run) is handed back as the response's content, so that "
        ".content, .text and .json() work as usual",
    ),
    "_get_conn": PrivateMember(
        "urllib3",
        "HTTPConnectionPool",
        "the one point where a request takes its connection: the deadline watchdog "
        "(tap_spanning/transport.py) must know the socket to shut when a response "
        "trickles past request_timeout, which requests' per-read timeout never ends",
    ),
}


def seam_table_markdown() -> str:
    """The README's table of private members (tests/test_sdk_seam.py compares them)."""
    rows = [
        "| member | library | why |",
        "|---|---|---|",
        *(
            f"| `{m.owner}.{name}` | {m.library} | {m.reason} |"
            for name, m in PRIVATE_MEMBERS.items()
        ),
    ]
    return "\n".join(rows)


def set_content(response: requests.Response, body: bytes) -> None:
    """Make `body`, read by the caller under its own bounds, the response's content."""
    response._content = body


class LendingPool:
    """Mixed into urllib3's connection pools: `lent` sees each connection a request takes."""

    def lent(self, connection: Any) -> None:
        """Called with the connection the pool just handed to a request."""

    # urllib3's HTTPConnectionPool._get_conn: every request takes its connection here.
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        self.lent(connection)
        return connection
