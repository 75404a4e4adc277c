"""One sync of the fleet: who is fetched, in which order, who failed, and what the run says.

`SyncRun` is handed to every stream of one run. It starts each tenant's requests
(`fleet.TwoPasses`, one `TenantClient` a tenant), consumes what the workers hand
back, and gives the streams typed results for their tenant: pages of users
(`TenantPage`) and license counters. The streams never see the fleet's events.

The run has two passes over the fleet (README, "Many tenants"):
1. the credentials: every tenant's `GET /external/tenant`, side by side, before any
   record is written. A refused tenant stops the run (`failure_mode` strict);
   the counters feed the `tenants` stream and bound each tenant's pages;
2. the users, largest tenant first, so that the biggest tenant does not start last
   and leave the other workers idle at the end. It starts in the same workers as
   soon as no credentials request is left to start: no wait for the slowest answer
   between the passes (its pages are written once every tenant has answered).
A failed tenant is not asked again in the same run: its other streams would fail the
same way and cost the others time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import cached_property
from typing import Any

from tap_spanning import budget as response_budget
from tap_spanning.backups import BackupError, BackupWindow, backup_summary_records
from tap_spanning.budget import Hold, ResponseBudget
from tap_spanning.circuit import HostCircuit
from tap_spanning.client import SpanningError, TenantClient
from tap_spanning.clock import backup_today
from tap_spanning.fleet import TenantFailed, TenantItem, TwoPasses
from tap_spanning.records import (
    CounterError,
    PageSequence,
    PagesNotAdvancing,
    TenantPage,
    UserError,
)
from tap_spanning.redaction import scrub
from tap_spanning.settings import NIGHTLY, STRICT, Settings, Tenant
from tap_spanning.transport import MAX_RESPONSE_BYTES

# A long sync logs a progress line at most this often.
PROGRESS_EVERY_SECONDS = 10.0
# The last line names this many failed tenants, then counts the rest: it stays one
# readable line with thousands of them.
NAMED_IN_LAST_LINE = 10
# The reason a refused tenant fails with (client.py): it may stop the whole run.
REFUSED = "credentials refused"


def page_bound(users: object, page_size: int) -> int | None:
    """The most pages a tenant may send: twice what its `users` counter needs, plus 2.

    Counters move while a sync runs (users are added), hence the slack; a tenant past it
    is sending pages that never end (README, "Many tenants"). None when the counter is
    missing: the checks on the pages themselves still hold.
    """
    if not isinstance(users, int) or isinstance(users, bool) or users < 0:
        return None
    return 2 * max(1, math.ceil(users / page_size)) + 2


class RunFailed(RuntimeError):
    """The run stops before writing anything more; its failure line says why."""


@dataclass(frozen=True)
class TenantFailure:
    """Why one tenant failed: the whole message, and its few words for the last line."""

    tenant_id: str
    message: str
    reason: str


def _failure_of(tenant: Tenant, error: BaseException) -> TenantFailure:
    if isinstance(error, SpanningError):
        return TenantFailure(tenant.tenant_id, str(error), error.reason)
    if isinstance(error, BackupError):
        return TenantFailure(tenant.tenant_id, scrub(str(error)), "unreadable backup status")
    if isinstance(error, CounterError):
        return TenantFailure(tenant.tenant_id, scrub(str(error)), "unreadable tenant counters")
    if isinstance(error, PagesNotAdvancing):
        return TenantFailure(tenant.tenant_id, scrub(str(error)), "pagination not advancing")
    if isinstance(error, UserError):
        return TenantFailure(tenant.tenant_id, scrub(str(error)), "unreadable users page")
    # Not one of ours: a bug, or the machine. Its type, and a scrubbed message.
    text = scrub(f"{type(error).__name__}: {error}")
    return TenantFailure(tenant.tenant_id, text, type(error).__name__)


@dataclass
class TenantSync:
    """One tenant's part of the run: when, how much, and whether it failed."""

    tenant: Tenant
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counters: dict[str, Any] | None = None
    # The days the backup streams read, from the tenant's own clock (its Date header).
    backup_window: BackupWindow | None = None
    backup_summaries: list[dict[str, Any]] | None = None
    users: int = 0
    memberships: int = 0
    requests: int = 0
    retries: int = 0
    failure: TenantFailure | None = None
    answered: bool = False
    users_done: bool = False  # its users pass ran to the end


@dataclass(frozen=True)
class _HeldPage:
    """A page on its way to the writer, and the room it holds in the run's budget."""

    page: TenantPage
    hold: Hold | None

    def release(self) -> None:
        if self.hold is not None:
            self.hold.release()


@dataclass(frozen=True)
class _Parts:
    """What one start of the passes writes to from its workers: the tenants' parts and
    the host circuit (a run begun again gives its new workers new ones)."""

    tenants: dict[str, TenantSync]
    circuit: HostCircuit
    budget: ResponseBudget

    def of(self, tenant: Tenant) -> TenantSync:
        return self.tenants[tenant.tenant_id]

    def users_counter(self, tenant: Tenant) -> float:
        """A tenant's `users` counter, for the largest first; missing counts as large."""
        users = (self.of(tenant).counters or {}).get("users")
        return users if isinstance(users, int) else math.inf

    def failed(self, tenant: Tenant, error: Exception) -> None:
        """The host circuit learns of a failure in the worker, before the worker takes its
        next tenant: the main thread may hear of it only later."""
        self.circuit.failed(str(tenant.origin), _failure_of(tenant, error).reason)


class SyncRun:
    """The run's tenants, failures, counters and closing lines."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        logger: logging.Logger,
        user_agent: str,
        *,
        version: int,
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        # Settings are read when the run begins: `--discover` builds streams without them.
        self._settings_of = settings
        # Is this stream selected (or a child of it)? Requests only for what is wanted.
        self.wanted = wanted or _every_stream
        self.logger = logger
        self.user_agent = user_agent
        self.version = version
        self.begun = False
        self.started = time.monotonic()
        self.pages = 0  # users pages written
        self._lock = threading.Lock()  # the tenants' request counts, added from workers
        self._fleet: TwoPasses[_HeldPage] | None = None
        # The response bytes the run's tenants hold, all of them together (budget.py).
        self.budget = self._new_budget()
        self._fleet_plan: tuple[object, ...] = ()
        self._refused: list[str] = []
        self._distrusted_hosts: set[str] = set()  # hosts whose clock was named once
        self.circuit = HostCircuit()
        self._last_progress = self.started

    @staticmethod
    def _new_budget() -> ResponseBudget:
        # The module's constant read now, not at import: the tests run with a small one.
        return ResponseBudget(response_budget.RESPONSE_BUDGET_BYTES, MAX_RESPONSE_BYTES)

    @cached_property
    def settings(self) -> Settings:
        """The checked settings."""
        return self._settings_of()

    @cached_property
    def tenants(self) -> dict[str, TenantSync]:
        """Every configured tenant's part of the run, in configured order."""
        return {t.tenant_id: TenantSync(t) for t in self.settings.tenants}

    @property
    def failures(self) -> dict[str, TenantFailure]:
        """The failed tenants, in configured order."""
        return {tid: s.failure for tid, s in self.tenants.items() if s.failure is not None}

    # -- fetching

    def _client(self, tenant: Tenant, parts: _Parts) -> TenantClient:
        parts.circuit.check(str(tenant.origin))
        part = parts.of(tenant)
        if part.started_at is None:
            part.started_at = datetime.now(timezone.utc)
        return TenantClient(tenant, self.settings, self.logger, self.user_agent)

    def _close(self, tenant: Tenant, client: TenantClient, parts: _Parts) -> None:
        client.close()
        part = parts.of(tenant)
        with self._lock:
            part.finished_at = datetime.now(timezone.utc)
            part.requests += client.requests_made
            part.retries += client.retries

    def _plan(self, users_page_limit: int | None) -> tuple[object, ...]:
        """What the passes fetch: which streams are wanted, how many users pages."""
        users = self.wanted("users")
        return (
            users,
            self.wanted("backup_summaries"),
            self.wanted("user_backups"),
            users_page_limit if users else None,
        )

    def start(self, *, users_page_limit: int | None = None) -> None:
        """Start both passes in their workers (`fleet.TwoPasses`) and return at once.

        A run begun before the tap knew its catalog (head_start.py) that
        turns out to fetch other streams than the tap syncs is dropped and begun again:
        its workers go on with the parts and the circuit they were given, which the run
        no longer reads.
        """
        plan = self._plan(users_page_limit)
        if self._fleet is not None:
            if plan == self._fleet_plan:
                return
            self._fleet.close()
            self.__dict__.pop("tenants", None)  # fresh parts (a cached_property)
            self.circuit = HostCircuit()
        self._fleet_plan = plan
        if self._fleet is not None:
            self.budget.close()  # the dropped start's workers stop waiting for room
        self.budget = self._new_budget()
        parts = _Parts(self.tenants, self.circuit, self.budget)
        self._fleet = TwoPasses(
            self.settings.tenants,
            self._credentials_job(parts),
            second=self._users_job(parts, users_page_limit)
            if self.wanted("users")
            else None,
            priority=parts.users_counter,
            max_concurrent=self.settings.max_concurrent_tenants,
            name="spanning",
        )

    def close(self) -> None:
        """Stop the workers at their next item (a run dropped, or ended early)."""
        if self._fleet is not None:
            self.budget.close()
            self._fleet.close()

    def preflight(self, *, users_page_limit: int | None = None) -> None:
        """Every tenant's credentials, proven before any record: `GET /external/tenant`.

        Once per run, whichever stream asks first (the users stream, when it is wanted:
        it is synced first, and says how many pages `--test` reads). The users pass
        starts in the same workers as soon as no credentials request is left to start
        (`fleet.TwoPasses`); its pages wait until every tenant has answered. Raises
        RunFailed when a tenant is refused (failure_mode strict) or when no
        tenant answered.
        """
        if self.begun:
            return
        self.start(users_page_limit=users_page_limit)
        self.begun = True
        fleet = self._fleet
        assert fleet is not None  # start() began it
        for event in fleet.first_results():
            if isinstance(event, TenantFailed):
                self.fail(event.tenant, "tenants", event.error)
            else:
                self.tenants[event.tenant.tenant_id].answered = True
        self._refused = [
            tid
            for tid, failure in self.failures.items()
            if failure.reason == REFUSED and self.settings.failure_mode == STRICT
        ]
        try:
            if self._refused:
                raise RunFailed(self.failure_line())
            self.stop_if_no_tenant_answered()
        except RunFailed:
            fleet.close()
            raise

    def _credentials_job(self, parts: _Parts) -> Callable[[Tenant], None]:
        summaries = self.wanted("backup_summaries")
        backups = summaries or self.wanted("user_backups")
        days = self.settings.backup_days

        def job(tenant: Tenant) -> None:
            try:
                client = self._client(tenant, parts)
                part = parts.of(tenant)
                try:
                    part.counters = client.tenant_counters()
                    if backups:
                        part.backup_window = window = BackupWindow.ending(
                            self._today(tenant, client.server_date), days
                        )
                        if summaries:
                            part.backup_summaries = client.backup_summary(
                                window,
                                lambda payload: backup_summary_records(
                                    payload, tenant.tenant_id, self.version, window
                                ),
                            )
                finally:
                    self._close(tenant, client, parts)
            except Exception as exc:
                parts.failed(tenant, exc)
                raise
            parts.circuit.answered(str(tenant.origin))

        return job

    def _today(self, tenant: Tenant, server_date: str | None) -> date:
        """The day a tenant's backup window ends; a host whose clock is more than a day
        off is named once a run, and this machine's clock is used."""
        today = backup_today(server_date, datetime.now(timezone.utc))
        if today.distrusted is not None:
            host = str(tenant.origin)
            with self._lock:
                first = host not in self._distrusted_hosts
                self._distrusted_hosts.add(host)
            if first:
                self.logger.warning(
                    "Host %s sent a Date header of %s, more than a day from this machine's "
                    "clock: the backup window ends on this machine's today (%s) instead",
                    host,
                    today.distrusted.isoformat(),
                    today.day.isoformat(),
                )
        return today.day

    def _users_job(
        self, parts: _Parts, page_limit: int | None
    ) -> Callable[[Tenant], Iterator[_HeldPage]]:
        page_size = self.settings.page_size
        with_backups = self.wanted("user_backups")

        def job(tenant: Tenant) -> Iterator[_HeldPage]:
            try:
                client = self._client(tenant, parts)
                part = parts.of(tenant)
                bound = page_bound((part.counters or {}).get("users"), page_size)
                window = part.backup_window if with_backups else None
                sequence = PageSequence(tenant.tenant_id, self.version, backups=window)
                pages = client.users_pages(
                    page_limit=page_limit, max_pages=bound, backups=window, budget=parts.budget
                )
                try:
                    for index, (page, fetched_at, hold) in enumerate(pages):
                        if index == 0:
                            parts.circuit.answered(str(tenant.origin))
                        try:
                            users = sequence.users_of(page)
                        except BaseException:
                            if hold is not None:
                                hold.release()
                            raise
                        if sequence.repeats_dropped:
                            self.logger.warning(
                                "Tenant %s: page %d of users repeats %d users of the previous "
                                "page; they are emitted once",
                                tenant.tenant_id,
                                sequence.page_number,
                                sequence.repeats_dropped,
                            )
                        yield _HeldPage(TenantPage(tenant.tenant_id, users, fetched_at), hold)
                finally:
                    self._close(tenant, client, parts)
            except Exception as exc:
                parts.failed(tenant, exc)
                raise

        return job

    def users_pages(self, *, page_limit: int | None = None) -> Iterator[TenantPage]:
        """Every tenant's users, a checked page at a time, tenants side by side.

        The largest tenants (by their `users` counter) start first; a tenant whose
        counter is missing counts as large. Each tenant's pages are bounded by its
        counter (`page_bound`).
        """
        self.preflight(users_page_limit=page_limit)
        fleet = self._fleet
        assert fleet is not None  # preflight started it
        for event in fleet.second_events():
            tenant_id = event.tenant.tenant_id
            if isinstance(event, TenantItem):
                self.tenants[tenant_id].answered = True
                try:
                    yield event.item.page
                finally:  # written (or the sync stopped): its room is free again
                    event.item.release()
            elif isinstance(event, TenantFailed):
                self.fail(event.tenant, "users", event.error)
            else:
                self.tenants[tenant_id].users_done = True

    def backup_summaries(self) -> Iterator[list[dict[str, Any]]]:
        """Each tenant's backup_summaries records, from the credentials pass (no request)."""
        self.preflight()
        for part in self.tenants.values():
            if part.failure is None and part.backup_summaries is not None:
                yield part.backup_summaries

    def tenant_counters(self) -> Iterator[tuple[Tenant, dict[str, Any]]]:
        """Each tenant's license counters, from the credentials pass (no request)."""
        self.preflight()
        for part in self.tenants.values():
            if part.failure is None and part.counters is not None:
                yield part.tenant, part.counters

    # -- outcomes

    def fail(self, tenant: Tenant, stream: str, error: BaseException) -> None:
        """Record a tenant's failure, in one log line (the last line names it again)."""
        part = self.tenants[tenant.tenant_id]
        if part.failure is not None:
            return
        part.failure = _failure_of(tenant, error)
        if not self.settings.one_tenant_form:
            self.logger.error(
                "Tenant %s failed in %s: %s", tenant.tenant_id, stream, part.failure.message
            )

    def complete(self) -> bool:
        """True while no tenant has failed: only then may tenant data be activated."""
        return not self.failures

    def exits_failed(self) -> bool:
        """Does the run end with exit 1? When a tenant failed, except in the nightly mode,
        where a night with at least one complete tenant is a normal night (README, "Many
        tenants"): the loader and dbt still run, and tenant_syncs records the failures."""
        failures = self.failures
        if not failures:
            return False
        if self.settings.failure_mode != NIGHTLY:
            return True
        return len(failures) == len(self.tenants)

    def stop_if_no_tenant_answered(self) -> None:
        """If every tenant failed, write nothing more."""
        if self.failures and not any(part.answered for part in self.tenants.values()):
            raise RunFailed(self.failure_line())

    # -- what the run says

    def note_page(self, tenant_id: str, users: int) -> None:
        """Count a page written; log progress at most every PROGRESS_EVERY_SECONDS."""
        self.tenants[tenant_id].users += users
        self.pages += 1
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            elapsed = now - self.started
            written = self._total("users")
            failed = len(self.failures)
            done = sum(1 for part in self.tenants.values() if part.users_done)
            self.logger.info(
                "Progress: %d users in %d pages so far, %.0f users/s, %d retries; "
                "tenants: %d done, %d failed, %d left",
                written,
                self.pages,
                written / elapsed if elapsed else 0.0,
                self._total("retries"),
                done,
                failed,
                len(self.tenants) - done - failed,
            )

    def note_memberships(self, tenant_id: str, memberships: int) -> None:
        """Count the memberships written for a tenant."""
        self.tenants[tenant_id].memberships += memberships

    def _total(self, counter: str) -> int:
        """A counter of every tenant's part of the run, added up."""
        with self._lock:
            return sum(getattr(part, counter) for part in self.tenants.values())

    def summary_line(self) -> str:
        """One line for the end of every run."""
        count = len(self.tenants)
        return (
            f"Synced {self._total('users')} users and {self._total('memberships')} role "
            f"memberships of {count - len(self.failures)} of {count} tenants: "
            f"{self._total('requests')} requests, {self._total('retries')} retries, "
            f"{time.monotonic() - self.started:.1f}s"
        )

    def failure_line(self) -> str:
        """The run's last line when a tenant failed: it names every one of them."""
        failures = self.failures
        if self.settings.one_tenant_form:
            return f"Sync failed: {next(iter(failures.values())).message}"
        if self._refused:
            return (
                f"Credentials refused for {len(self._refused)} of {len(self.tenants)} "
                f"tenants, so nothing was synced: {_first_few(self._refused)} (fix their "
                "keys, or set failure_mode to isolate or nightly to sync the others without them)"
            )
        named = [f"{tid} ({failure.reason})" for tid, failure in failures.items()]
        return f"{len(failures)} of {len(self.tenants)} tenants failed: {_first_few(named)}"


def _first_few(names: list[str]) -> str:
    """The first NAMED_IN_LAST_LINE names, then how many more."""
    shown = ", ".join(names[:NAMED_IN_LAST_LINE])
    more = len(names) - NAMED_IN_LAST_LINE
    return f"{shown} and {more} more (each named in the log above)" if more > 0 else shown


def _every_stream(_stream: str) -> bool:
    return True
