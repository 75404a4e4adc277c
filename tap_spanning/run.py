"""One sync of the fleet: who is fetched, who failed, and what the run says at the end.

`SyncRun` is shared by the streams of one run. It starts each tenant's requests
(`fleet.run_per_tenant`, one `TenantClient` a tenant), keeps the failures, and logs
progress and the closing lines. A failed tenant is not asked again in the same run:
its other streams would fail the same way and cost the others time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tap_spanning.client import SpanningError, TenantClient
from tap_spanning.fleet import TenantDone, TenantFailed, TenantItem, run_per_tenant
from tap_spanning.records import PageSequence, UserError, UsersBatch
from tap_spanning.redaction import scrub
from tap_spanning.settings import Settings, Tenant

T = TypeVar("T")

# A long sync logs a progress line at most this often.
PROGRESS_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class HeldCounters:
    """A tenant's counters (or why they failed), fetched on the users pass for `tenants`."""

    counters: dict[str, object] | None
    error: BaseException | None


UsersEvent = TenantItem[UsersBatch | HeldCounters] | TenantDone | TenantFailed
CountersEvent = TenantItem[dict[str, object]] | TenantDone | TenantFailed


class RunFailed(RuntimeError):
    """No tenant could be synced: the run stops before writing anything more."""


@dataclass(frozen=True)
class TenantFailure:
    """Why one tenant failed: the whole message, and its few words for the last line."""

    tenant_id: str
    message: str
    reason: str


def _failure_of(tenant: Tenant, error: BaseException) -> TenantFailure:
    if isinstance(error, SpanningError):
        return TenantFailure(tenant.tenant_id, str(error), error.reason)
    if isinstance(error, UserError):
        return TenantFailure(tenant.tenant_id, scrub(str(error)), "unreadable users page")
    # Not one of ours: a bug, or the machine. Its type, and a scrubbed message.
    text = scrub(f"{type(error).__name__}: {error}")
    return TenantFailure(tenant.tenant_id, text, type(error).__name__)


class SyncRun:
    """The run's tenants, failures, counters and closing lines."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        user_agent: str,
        *,
        one_tenant_form: bool,
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.user_agent = user_agent
        self.one_tenant_form = one_tenant_form
        self.failures: dict[str, TenantFailure] = {}
        # Counters fetched on the users pass, until `tenants` writes them (None: not held).
        self.held_counters: dict[str, HeldCounters] | None = None
        # Tenants that answered at least one request well.
        self.answered: set[str] = set()
        self.started = time.monotonic()
        self.users = 0
        self.memberships = 0
        self.pages = 0
        self._requests = 0
        self._retries = 0
        self._lock = threading.Lock()  # counters added from worker threads
        self._last_progress = self.started

    # -- fetching

    def _pending_tenants(self) -> list[Tenant]:
        return [t for t in self.settings.tenants if t.tenant_id not in self.failures]

    def _client(self, tenant: Tenant) -> TenantClient:
        return TenantClient(tenant, self.settings, self.logger, self.user_agent)

    def _close(self, client: TenantClient) -> None:
        client.close()
        with self._lock:
            self._requests += client.requests_made
            self._retries += client.retries

    def users_batches(
        self, *, page_limit: int | None = None, with_counters: bool = False
    ) -> Iterator[UsersEvent]:
        """Every tenant's users, a checked page at a time, tenants side by side.

        `with_counters` (when `tenants` is selected too): each tenant's counters are
        fetched right after its last page, on the same connection, and held for the
        `tenants` stream. A second pass over the fleet would open every connection again
        and wait for the slowest tenant twice. A counters failure is held too: it fails
        the tenant in `tenants`, not in `users`.
        """
        if with_counters:
            self.held_counters = {}

        def job(tenant: Tenant) -> Iterator[UsersBatch | HeldCounters]:
            client = self._client(tenant)
            sequence = PageSequence(tenant.tenant_id)
            try:
                for page, fetched_at in client.users_pages(page_limit=page_limit):
                    users = sequence.users_of(page)
                    if sequence.repeats_dropped:
                        self.logger.warning(
                            "Tenant %s: page %d of users repeats %d users of the previous "
                            "page; they are emitted once",
                            tenant.tenant_id,
                            sequence.page_number,
                            sequence.repeats_dropped,
                        )
                    yield UsersBatch(users, fetched_at)
                if with_counters:
                    try:
                        held = HeldCounters(client.tenant_counters(), None)
                    except Exception as exc:  # held for `tenants`
                        held = HeldCounters(None, exc)
                    yield held
            finally:
                self._close(client)

        return self._run(job, "users")

    def hold(self, tenant: Tenant, held: HeldCounters) -> None:
        """Keep a tenant's counters from the users pass until `tenants` writes them."""
        if self.held_counters is not None:
            self.held_counters[tenant.tenant_id] = held

    def tenant_counters(self) -> Iterator[CountersEvent]:
        """Every tenant's license counters: one request a tenant (or held from users)."""
        if self.held_counters is not None:
            held, self.held_counters = self.held_counters, None
            yield from self._held(held)
            return
        yield from self._fetch_counters()

    def _held(self, held: dict[str, HeldCounters]) -> Iterator[CountersEvent]:
        for tenant in self._pending_tenants():
            counters = held.get(tenant.tenant_id)
            if counters is None:
                continue  # the users pass ended before its counters: failed there
            if counters.error is not None or counters.counters is None:
                error = counters.error or RuntimeError("no counters")
                self.fail(tenant, "tenants", error)
                yield TenantFailed(tenant, error)
            else:
                self.answered.add(tenant.tenant_id)
                yield TenantItem(tenant, counters.counters)
                yield TenantDone(tenant)

    def _fetch_counters(self) -> Iterator[CountersEvent]:

        def job(tenant: Tenant) -> Iterator[dict[str, object]]:
            client = self._client(tenant)
            try:
                yield client.tenant_counters()
            finally:
                self._close(client)

        return self._run(job, "tenants")

    def _run(
        self, job: Callable[[Tenant], Iterator[T]], stream: str
    ) -> Iterator[TenantItem[T] | TenantDone | TenantFailed]:
        """Run `job` for every tenant not failed yet; failures are recorded here."""
        tenants = self._pending_tenants()
        concurrency = self.settings.max_concurrent_tenants
        for event in run_per_tenant(tenants, job, concurrency, f"spanning-{stream}"):
            if isinstance(event, TenantItem):
                self.answered.add(event.tenant.tenant_id)
            elif isinstance(event, TenantFailed):
                self.fail(event.tenant, stream, event.error)
            yield event

    # -- outcomes

    def fail(self, tenant: Tenant, stream: str, error: BaseException) -> None:
        """Record a tenant's failure, in one log line (the last line names it again)."""
        failure = _failure_of(tenant, error)
        self.failures.setdefault(tenant.tenant_id, failure)
        if not self.one_tenant_form:
            self.logger.error(
                "Tenant %s failed in %s: %s", tenant.tenant_id, stream, failure.message
            )

    def complete(self) -> bool:
        """True while no tenant has failed: only then may tenant data be activated."""
        return not self.failures

    def stop_if_no_tenant_answered(self) -> None:
        """After a stream of tenant data: if every tenant failed, write nothing more."""
        if self.failures and not self.answered:
            raise RunFailed(self.failure_line())

    # -- what the run says

    def note_page(self, users: int) -> None:
        """Count a page written; log progress at most every PROGRESS_EVERY_SECONDS."""
        self.users += users
        self.pages += 1
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            elapsed = now - self.started
            with self._lock:
                retries = self._retries
            self.logger.info(
                "Progress: %d users in %d pages so far, %.0f users/s, %d retries",
                self.users,
                self.pages,
                self.users / elapsed if elapsed else 0.0,
                retries,
            )

    def summary_line(self) -> str:
        """One line for the end of every run."""
        with self._lock:
            requests, retries = self._requests, self._retries
        tenants = len(self.settings.tenants)
        return (
            f"Synced {self.users} users and {self.memberships} role memberships of "
            f"{tenants - len(self.failures)} of {tenants} tenants: {requests} requests, "
            f"{retries} retries, {time.monotonic() - self.started:.1f}s"
        )

    def failure_line(self) -> str:
        """The run's last line when a tenant failed: it names every one of them."""
        if self.one_tenant_form:
            failure = next(iter(self.failures.values()))
            return f"Sync failed: {failure.message}"
        named = ", ".join(
            f"{t.tenant_id} ({self.failures[t.tenant_id].reason})"
            for t in self.settings.tenants  # in the configured order, whatever failed first
            if t.tenant_id in self.failures
        )
        return f"{len(self.failures)} of {len(self.settings.tenants)} tenants failed: {named}"
