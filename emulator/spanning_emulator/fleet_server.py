"""An MSP's fleet of tenants on loopback: `FleetEmulator`, one listener per regional host.

Each listener tells its tenants apart by their Basic credentials, as the real regional
hosts do; how a request is answered or faulted is listener.py's, as for the one-tenant
`SpanningEmulator` (server.py).
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, final

from .admission import Admission, RequestRecord, ServedBackups, credentials, same_credentials
from .backups import as_day, utc_today
from .emulated import EmulatedTenant, TenantState, check_tenants
from .faults import FaultPlan
from .listener import Listener
from .routes import LastLink, LinkStyle

if TYPE_CHECKING:  # typing_extensions for mypy only: the emulator is stdlib-only at run time
    from typing_extensions import override
elif sys.version_info >= (3, 12):
    from typing import override
else:

    def override(method: object) -> object:
        return method


# Backup options that change which backups the tenant holds, not how they are spelled.
_PROTECTION_OPTIONS = frozenset({"never_backed_up", "stopped_from"})


@final
class _FleetListener(Listener):
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
    def admit(self, authorization: str | None) -> Admission:
        return self.fleet._admit(self.host, credentials(authorization))

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
            listener.start_thread()
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
        self._replace(tenant_id, users=users)

    def set_counters(self, tenant_id: str, counters: Mapping[str, object] | None) -> None:
        """Replace what GET /external/tenant answers for a tenant (None: what its users
        add up to), atomically."""
        self._replace(tenant_id, counters=None if counters is None else dict(counters))

    def set_api_key(self, tenant_id: str, api_key: str) -> None:
        """Give a tenant a new key: its old one is revoked (401 from now on)."""
        state = self._state(tenant_id)
        others = [s.tenant for s in self._states.values() if s is not state]
        check_tenants([*others, replace(state.tenant, api_key=api_key)])
        with self._lock:
            state.tenant = replace(state.tenant, api_key=api_key)

    def _replace(self, tenant_id: str, **changes: object) -> None:
        """Change what a tenant holds and serve it atomically (requests in flight keep
        the old snapshot)."""
        state = self._state(tenant_id)
        tenant = replace(state.tenant, **changes)  # type: ignore[arg-type]
        check_tenants([tenant])
        snapshot = tenant.snapshot()
        with self._lock:
            state.tenant = tenant
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
        user_id_as_text, today, settle_day, never_backed_up, stopped_from)."""
        unknown = set(changes) - {
            "date_format",
            "counts_as_text",
            "user_id_as_text",
            "today",
            "settle_day",
            *_PROTECTION_OPTIONS,
        }
        if unknown:
            raise TypeError(f"not backup options: {', '.join(sorted(unknown))}")
        if _PROTECTION_OPTIONS & set(changes):  # the history served changes: a new snapshot
            self._replace(tenant_id, **changes)
            return
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

    def _admit(self, host: str, given: tuple[str, str] | None) -> Admission:
        state = None
        if given is not None:
            candidates = self._by_host.get(host, {}).get(given[0].casefold(), [])
            for candidate in candidates:
                tenant = candidate.tenant
                if same_credentials(given, tenant.admin_email, tenant.api_key):
                    state = candidate
                    break
        if state is None:
            return Admission(0, None, None, FaultPlan(), 0.0)
        with self._lock:
            state.count += 1
            tenant, snapshot, number = state.tenant, state.snapshot, state.count
        today = tenant.today or self.today
        backups = ServedBackups(
            tenant.backup_style,
            as_day(today) if today is not None else utc_today(),
            tenant.settle_day,
        )
        return Admission(
            number,
            tenant.tenant_id,
            snapshot,
            tenant.faults,
            tenant.latency,
            backups=backups,
            hostile=tenant.hostile,
        )
