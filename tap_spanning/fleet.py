"""Tenants side by side: two passes over the fleet in worker threads, results to one thread.

The SDK syncs one thing at a time. A fleet of tenants is mostly waiting on the
network, so `TwoPasses` runs each tenant's jobs in worker threads, up to
`max_concurrent` tenants at once, and hands what they produce to the calling thread,
which alone writes Singer messages.

Every tenant has a first job (its credentials and counters, kept by the job) and, if
wanted, a second (an iterator: the pages of its users). A worker takes first jobs
while any is left, then second jobs, the highest priority first among the tenants
whose first job is done. There is no wait between the passes: while the last first
jobs are in flight, the idle workers already fetch second-pass pages, which wait in
the hand-off queue until the caller, having seen every first result, reads them.

Memory is bounded by the concurrency, not by the fleet: the second pass's hand-off
queue holds at most one item per worker, and each worker holds at most one more while
it waits for room (first results are small: one per tenant). A job that raises ends
its own tenant only: the caller receives a `TenantFailed` and every other tenant
carries on.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tap_spanning.settings import Tenant

T = TypeVar("T")

# How often a waiting worker checks that the run is still on.
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class TenantAnswered:
    """The tenant's first job ran to its end."""

    tenant: Tenant


@dataclass(frozen=True)
class TenantItem(Generic[T]):
    """One item a tenant's second job produced."""

    tenant: Tenant
    item: T


@dataclass(frozen=True)
class TenantDone:
    """The tenant's second job ran to its end."""

    tenant: Tenant


@dataclass(frozen=True)
class TenantFailed:
    """The tenant's job raised: this tenant is over, the others are not."""

    tenant: Tenant
    error: BaseException


class _WorkerExited:
    """A worker has no more work: the second pass is over once every worker said so."""


_EXITED = _WorkerExited()

SecondEvent = TenantItem[T] | TenantDone | TenantFailed


class TwoPasses(Generic[T]):
    """Every tenant's first job, then its second, `max_concurrent` tenants at once.

    The workers start at once. Read `first_results` (one event per tenant) before
    `second_events`; `close` stops the workers at their next item (they are daemon
    threads, so a request in flight never holds up the process's exit).
    """

    def __init__(
        self,
        tenants: Sequence[Tenant],
        first: Callable[[Tenant], None],
        *,
        second: Callable[[Tenant], Iterator[T]] | None,
        priority: Callable[[Tenant], float],
        max_concurrent: int,
        name: str,
    ) -> None:
        self._tenants = list(tenants)
        self._first = first
        self._second = second
        self._priority = priority
        self._workers_count = min(max_concurrent, len(self._tenants))
        self._stop = threading.Event()
        # First jobs not yet taken, how many are running, and the tenants ready for
        # their second job (highest priority first), all under one condition.
        self._lock = threading.Condition()
        self._waiting: deque[Tenant] = deque(self._tenants)
        self._in_flight = 0
        self._ready: list[tuple[float, int, Tenant]] = []
        self._arrival = itertools.count()
        self._firsts: queue.SimpleQueue[TenantAnswered | TenantFailed] = queue.SimpleQueue()
        # One item waiting per worker: a single tenant's pages are then at most two ahead
        # of the writer, however large they are (a page with a week of backups is ~4 MB).
        self._events: queue.Queue[SecondEvent[T] | _WorkerExited] = queue.Queue(
            maxsize=max(1, self._workers_count)
        )
        self._workers = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(self._workers_count)
        ]
        for worker in self._workers:
            worker.start()

    # -- the caller's side

    def first_results(self) -> Iterator[TenantAnswered | TenantFailed]:
        """One event per tenant, as each first job ends."""
        for _ in self._tenants:
            yield self._firsts.get()

    def second_events(self) -> Iterator[SecondEvent[T]]:
        """Each second-pass item as it arrives (a tenant's items in their order), then one
        `TenantDone` or `TenantFailed` per tenant whose first job succeeded."""
        exited = 0
        try:
            while exited < self._workers_count:
                event = self._events.get()
                if isinstance(event, _WorkerExited):
                    exited += 1
                else:
                    yield event
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers at their next item."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    # -- the workers' side

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                tenant = self._next_first()
                if tenant is not None:
                    self._run_first(tenant)
                    continue
                tenant = self._next_second()
                if tenant is None:
                    return
                self._run_second(tenant)
        finally:
            self._hand_over(_EXITED)

    def _next_first(self) -> Tenant | None:
        with self._lock:
            if not self._waiting:
                return None
            self._in_flight += 1
            return self._waiting.popleft()

    def _run_first(self, tenant: Tenant) -> None:
        ready = False
        try:
            self._first(tenant)
        except BaseException as exc:  # any failure ends this tenant only
            self._firsts.put(TenantFailed(tenant, exc))
        else:
            self._firsts.put(TenantAnswered(tenant))
            ready = self._second is not None
        with self._lock:
            if ready:
                entry = (-self._priority(tenant), next(self._arrival), tenant)
                heapq.heappush(self._ready, entry)
            self._in_flight -= 1
            self._lock.notify_all()

    def _next_second(self) -> Tenant | None:
        """The ready tenant of highest priority; None once no more can become ready."""
        with self._lock:
            while not self._stop.is_set():
                if self._ready:
                    return heapq.heappop(self._ready)[2]
                if self._in_flight == 0 and not self._waiting:
                    return None
                self._lock.wait(_POLL_SECONDS)
            return None

    def _run_second(self, tenant: Tenant) -> None:
        assert self._second is not None  # only ready when there is a second job
        try:
            for item in self._second(tenant):
                if not self._hand_over(TenantItem(tenant, item)):
                    return
        except BaseException as exc:  # any failure ends this tenant only
            self._hand_over(TenantFailed(tenant, exc))
        else:
            self._hand_over(TenantDone(tenant))

    def _hand_over(self, event: SecondEvent[T] | _WorkerExited) -> bool:
        while not self._stop.is_set():
            try:
                self._events.put(event, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False
