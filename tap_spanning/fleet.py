"""Tenants side by side: one job per tenant in worker threads, results to one thread.

The SDK syncs one thing at a time. A fleet of tenants is mostly waiting on the
network, so `run_per_tenant` runs a job per tenant, up to `max_concurrent` at once,
each in its own thread, and hands what they produce to the calling thread, which
alone writes Singer messages. A job is an iterator (the pages of one tenant): its
thread fetches the next item while the caller works on the one before.

Memory is bounded by the concurrency, not by the fleet: the hand-off queue holds at
most one item per worker, and each worker holds at most one more while it waits for
room. A job that raises ends its own tenant only: the caller receives a
`TenantFailed` and every other tenant carries on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tap_spanning.settings import Tenant

T = TypeVar("T")

# How often a worker waiting for room in the queue checks that the run is still on.
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class TenantItem(Generic[T]):
    """One item a tenant's job produced."""

    tenant: Tenant
    item: T


@dataclass(frozen=True)
class TenantDone:
    """The tenant's job ran to its end."""

    tenant: Tenant


@dataclass(frozen=True)
class TenantFailed:
    """The tenant's job raised: this tenant is over, the others are not."""

    tenant: Tenant
    error: BaseException


def run_per_tenant(
    tenants: Sequence[Tenant],
    job: Callable[[Tenant], Iterator[T]],
    max_concurrent: int,
    name: str,
) -> Iterator[TenantItem[T] | TenantDone | TenantFailed]:
    """Run `job` for every tenant, at most `max_concurrent` at once.

    Yields each item as it arrives (a tenant's items in their order), then one
    `TenantDone` or `TenantFailed` per tenant. Closing the iterator early stops the
    workers at their next item; they are daemon threads, so a request in flight never
    holds up the process's exit.
    """
    # One item waiting per worker: a single tenant's pages are then at most two ahead of
    # the writer, however large they are (a page with a week of backupSummary is ~4 MB).
    workers_count = min(max_concurrent, len(tenants))
    events: queue.Queue[TenantItem[T] | TenantDone | TenantFailed] = queue.Queue(
        maxsize=max(1, workers_count)
    )
    waiting: queue.SimpleQueue[Tenant] = queue.SimpleQueue()
    for tenant in tenants:
        waiting.put(tenant)
    stop = threading.Event()

    def hand_over(event: TenantItem[T] | TenantDone | TenantFailed) -> bool:
        while not stop.is_set():
            try:
                events.put(event, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def work() -> None:
        while not stop.is_set():
            try:
                tenant = waiting.get_nowait()
            except queue.Empty:
                return
            try:
                for item in job(tenant):
                    if not hand_over(TenantItem(tenant, item)):
                        return
            except BaseException as exc:  # any failure ends this tenant only
                hand_over(TenantFailed(tenant, exc))
            else:
                hand_over(TenantDone(tenant))

    workers = [
        threading.Thread(target=work, name=f"{name}-{index}", daemon=True)
        for index in range(workers_count)
    ]
    for worker in workers:
        worker.start()
    finished = 0
    try:
        while finished < len(tenants):
            event = events.get()
            if not isinstance(event, TenantItem):
                finished += 1
            yield event
    finally:
        stop.set()
