"""One sync of the fleet: who is fetched, in which order, who failed, and what the run says.

`SyncRun` is handed to every stream of one run. It knows no stream: when it begins, it
asks for the plan of the streams the catalog wants (tenant_pass.py), starts each
tenant's requests in worker threads (`fleet.TwoPasses`, one `TenantClient` a tenant),
and hands what the workers bring back to the one thread that writes: each tenant's
answer to the credentials pass (`answers`), then the pages of the users pages pass
(`pages`).

The run has two passes over the fleet (docs/many-tenants.md):
1. the credentials: every tenant's `GET /external/tenant`, side by side, before any
   record is written, with what the streams riding it fetch. A refused tenant stops the
   run (`failure_mode` strict);
2. the users pages, the largest tenant first, so that the biggest tenant does not start
   last and leave the other workers idle at the end. It starts in the same workers as
   soon as no credentials request is left to start: no wait for the slowest answer
   between the passes (its pages are written once every tenant has answered).
A failed tenant is not asked again in the same run: its other streams would fail the
same way and cost the others time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property

from tap_spanning import budget as response_budget
from tap_spanning.budget import Hold, ResponseBudget
from tap_spanning.circuit import HostCircuit
from tap_spanning.client import SpanningError, TenantClient
from tap_spanning.config_schema import NIGHTLY, STRICT
from tap_spanning.data_errors import TenantDataError
from tap_spanning.fleet import TenantFailed, TenantItem, TwoPasses
from tap_spanning.redaction import scrub
from tap_spanning.settings import Settings, Tenant
from tap_spanning.tenant_pass import CredentialsHook, PagesFetch, Pass, RunPlan, TenantAnswer
from tap_spanning.transport import MAX_RESPONSE_BYTES

# A long sync logs a progress line at most this often.
PROGRESS_EVERY_SECONDS = 10.0
# The last line names this many failed tenants, then counts the rest: it stays one
# readable line with thousands of them.
NAMED_IN_LAST_LINE = 10
# The reason a refused tenant fails with (client.py): it may stop the whole run.
REFUSED = "credentials refused"
# The plan of a run that is given none: the credentials pass alone.
CREDENTIALS_ONLY = RunPlan(with_credentials=(), pages=None, failed_in={})


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
    if isinstance(error, TenantDataError):
        return TenantFailure(tenant.tenant_id, scrub(str(error)), error.reason)
    # Not one of ours: a bug, or the machine. Its type, and a scrubbed message.
    text = scrub(f"{type(error).__name__}: {error}")
    return TenantFailure(tenant.tenant_id, text, type(error).__name__)


@dataclass
class TenantSync:
    """One tenant's part of the run: when, how much, and whether it failed."""

    tenant: Tenant
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Its answer to the credentials pass, once its credentials answered.
    answer: TenantAnswer | None = None
    # The records written of it, by stream.
    written: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    failure: TenantFailure | None = None
    answered: bool = False
    pages_done: bool = False  # its users pages pass ran to the end
    # stream -> whether a history that sends a tenant's whole set sent it this run.
    sets_sent: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class _HeldPage:
    """A page on its way to the writer, and the room it holds in the run's budget."""

    page: object
    hold: Hold | None

    def release(self) -> None:
        if self.hold is not None:
            self.hold.release()


class SyncRun:
    """The run's tenants, failures, counters and closing lines."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        logger: logging.Logger,
        user_agent: str,
        *,
        version: int,
        plan: Callable[[], RunPlan] | None = None,
        tallies: Mapping[str, str] | None = None,
    ) -> None:
        # Settings and plan are read when the run begins: `--discover` builds streams
        # without settings, and the catalog says which streams are wanted after they are.
        self._settings_of = settings
        self._plan_of = plan or (lambda: CREDENTIALS_ONLY)
        self.plan = CREDENTIALS_ONLY
        # The streams the closing line counts (stream name: what its records are), the
        # first also in the progress lines.
        self.tallies = dict(tallies or {})
        self.logger = logger
        self.user_agent = user_agent
        self.version = version
        self.begun = False
        self.started = time.monotonic()
        self.pages_written = 0
        self._lock = threading.Lock()  # the tenants' request counts, added from workers
        self._fleet: TwoPasses[_HeldPage] | None = None
        # The response bytes the run's tenants hold, all of them together (budget.py).
        # The module's constant read now, not at import: the tests run with a small one.
        self.budget = ResponseBudget(response_budget.RESPONSE_BUDGET_BYTES, MAX_RESPONSE_BYTES)
        self._refused: list[str] = []
        self._warned: set[str] = set()  # what warn_once said already
        self.circuit = HostCircuit()
        self._last_progress = self.started

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

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a warning the first time `key` is met in the run (from any worker)."""
        with self._lock:
            first = key not in self._warned
            self._warned.add(key)
        if first:
            self.logger.warning(message, *args)

    # -- fetching

    def _client(self, tenant: Tenant) -> TenantClient:
        self.circuit.check(str(tenant.origin))
        part = self.tenants[tenant.tenant_id]
        if part.started_at is None:
            part.started_at = datetime.now(timezone.utc)
        return TenantClient(tenant, self.settings, self.logger, self.user_agent)

    def _close(self, tenant: Tenant, client: TenantClient) -> None:
        client.close()
        part = self.tenants[tenant.tenant_id]
        with self._lock:
            part.finished_at = datetime.now(timezone.utc)
            part.requests += client.requests_made
            part.retries += client.retries

    def _failed_in_worker(self, tenant: Tenant, error: Exception) -> None:
        """The host circuit learns of a failure in the worker, before the worker takes its
        next tenant: the main thread may hear of it only later."""
        self.circuit.failed(str(tenant.origin), _failure_of(tenant, error).reason)

    def _answer_of(self, tenant: Tenant) -> TenantAnswer:
        answer = self.tenants[tenant.tenant_id].answer
        assert answer is not None  # its credentials pass succeeded
        return answer

    def _start(self, page_limit: int | None) -> TwoPasses[_HeldPage]:
        """Start both passes in their workers (`fleet.TwoPasses`) and return at once."""
        self.plan = plan = self._plan_of()
        pages = plan.pages
        # Every tenant's part is made here, before any worker starts: the workers share it,
        # and a cached_property has no lock on Python 3.12 and later.
        _ = self.tenants
        return TwoPasses(
            self.settings.tenants,
            self._credentials_job(plan.with_credentials),
            second=None if pages is None else self._pages_job(pages, page_limit),
            priority=_no_priority
            if pages is None
            else lambda tenant: pages.priority(self._answer_of(tenant)),
            max_concurrent=self.settings.max_concurrent_tenants,
            name="spanning",
        )

    def close(self) -> None:
        """Stop the workers at their next item (a run ended early)."""
        if self._fleet is not None:
            self.budget.close()
            self._fleet.close()

    def preflight(self, *, page_limit: int | None = None) -> None:
        """Every tenant's credentials, proven before any record: `GET /external/tenant`.

        Once per run, whichever stream asks first (the first stream synced, which says
        how many pages `--test` reads). The users pages pass starts in the same workers
        as soon as no credentials request is left to start (`fleet.TwoPasses`); its
        pages wait until every tenant has answered. Raises RunFailed when a tenant is
        refused (failure_mode strict) or when no tenant answered.
        """
        if self.begun:
            return
        self._fleet = fleet = self._start(page_limit)
        self.begun = True
        failed_in = self.plan.failed_in.get(Pass.CREDENTIALS, Pass.CREDENTIALS.value)
        for event in fleet.first_results():
            if isinstance(event, TenantFailed):
                self.fail(event.tenant, failed_in, event.error)
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

    def _credentials_job(self, hooks: Sequence[CredentialsHook]) -> Callable[[Tenant], None]:
        def job(tenant: Tenant) -> None:
            try:
                client = self._client(tenant)
                try:
                    counters = client.tenant_counters()
                    answer = TenantAnswer(tenant, counters, client.server_date)
                    self.tenants[tenant.tenant_id].answer = answer
                    for hook in hooks:
                        hook(client, answer)
                finally:
                    self._close(tenant, client)
            except Exception as exc:
                self._failed_in_worker(tenant, exc)
                raise
            self.circuit.answered(str(tenant.origin))

        return job

    def _pages_job(
        self, fetch: PagesFetch, page_limit: int | None
    ) -> Callable[[Tenant], Iterator[_HeldPage]]:
        def job(tenant: Tenant) -> Iterator[_HeldPage]:
            try:
                client = self._client(tenant)
                pages = fetch.pages(client, self._answer_of(tenant), page_limit, self.budget)
                try:
                    for index, (page, hold) in enumerate(pages):
                        if index == 0:
                            self.circuit.answered(str(tenant.origin))
                        yield _HeldPage(page, hold)
                finally:
                    self._close(tenant, client)
            except Exception as exc:
                self._failed_in_worker(tenant, exc)
                raise

        return job

    def pages(
        self,
        *,
        page_limit: int | None = None,
        tenant_done: Callable[[str, bool], None] | None = None,
    ) -> Iterator[object]:
        """Every tenant's pages of the users pages pass, tenants side by side, each as
        the plan's `PagesFetch` made it, in the tenant's order. `tenant_done(tenant_id,
        complete)` is told when a tenant's pages are all in (complete) or it failed."""
        self.preflight(page_limit=page_limit)
        fleet = self._fleet
        assert fleet is not None  # preflight started it
        failed_in = self.plan.failed_in.get(Pass.USERS_PAGES, Pass.USERS_PAGES.value)
        for event in fleet.second_events():
            tenant_id = event.tenant.tenant_id
            if isinstance(event, TenantItem):
                self.tenants[tenant_id].answered = True
                try:
                    yield event.item.page
                finally:  # written (or the sync stopped): its room is free again
                    event.item.release()
            elif isinstance(event, TenantFailed):
                self.fail(event.tenant, failed_in, event.error)
                if tenant_done is not None:
                    tenant_done(tenant_id, False)
            else:
                self.tenants[tenant_id].pages_done = True
                if tenant_done is not None:
                    tenant_done(tenant_id, True)

    def answers(self) -> Iterator[TenantAnswer]:
        """Each tenant's answer to the credentials pass, in configured order, but for the
        tenants that failed (no request: the pass ran before any record)."""
        self.preflight()
        for part in self.tenants.values():
            if part.failure is None and part.answer is not None:
                yield part.answer

    # -- outcomes

    def fail(self, tenant: Tenant, where: str, error: BaseException) -> None:
        """Record a tenant's failure, in one log line (the last line names it again)."""
        part = self.tenants[tenant.tenant_id]
        if part.failure is not None:
            return
        part.failure = _failure_of(tenant, error)
        if not self.settings.one_tenant_form:
            self.logger.error(
                "Tenant %s failed in %s: %s", tenant.tenant_id, where, part.failure.message
            )

    def complete(self) -> bool:
        """True while no tenant has failed: only then may tenant data be activated."""
        return not self.failures

    def exits_failed(self) -> bool:
        """Does the run end with exit 1? When a tenant failed, except in the nightly mode,
        where a night with at least one complete tenant is a normal night
        (docs/many-tenants.md): the loader and dbt still run, and tenant_syncs records the
        failures."""
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

    def note_written(self, stream: str, tenant_id: str, count: int) -> None:
        """Count `count` records of `stream` written for a tenant."""
        self.tenants[tenant_id].written[stream] += count

    def note_page(self) -> None:
        """Count a page written; log progress at most every PROGRESS_EVERY_SECONDS."""
        self.pages_written += 1
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            elapsed = now - self.started
            stream, noun = next(iter(self.tallies.items()), ("", "records"))
            written = self._written(stream)
            failed = len(self.failures)
            done = sum(1 for part in self.tenants.values() if part.pages_done)
            self.logger.info(
                "Progress: %d %s in %d pages so far, %.0f %s/s, %d retries; "
                "tenants: %d done, %d failed, %d left",
                written,
                noun,
                self.pages_written,
                written / elapsed if elapsed else 0.0,
                noun,
                self._total_retries(),
                done,
                failed,
                len(self.tenants) - done - failed,
            )

    def _written(self, stream: str) -> int:
        """The records of `stream` written, every tenant's added up."""
        return sum(part.written[stream] for part in self.tenants.values())

    def _total_retries(self) -> int:
        with self._lock:
            return sum(part.retries for part in self.tenants.values())

    def summary_line(self) -> str:
        """One line for the end of every run."""
        count = len(self.tenants)
        with self._lock:
            requests = sum(part.requests for part in self.tenants.values())
        counted = " and ".join(
            f"{self._written(stream)} {noun}" for stream, noun in self.tallies.items()
        )
        return (
            f"Synced {counted or 'nothing'} of {count - len(self.failures)} of {count} "
            f"tenants: {requests} requests, {self._total_retries()} retries, "
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


def _no_priority(_tenant: Tenant) -> float:
    return 0.0
