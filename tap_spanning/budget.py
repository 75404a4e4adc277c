"""One budget for the response bytes a run holds, whatever each tenant sends.

A users page may be up to 16 MiB (transport.MAX_RESPONSE_BYTES), and it is held, as
bytes and then as records, until the writer has written it. Tenants fetched side by
side would each hold several (one being read, one waiting for the hand-off, one in
it), so 64 tenants sending pages near the bound could hold gigabytes. Here a tenant
reserves room before it asks for a page and gives it back once the page is written;
when the budget is spent it waits for room rather than failing (docs/many-tenants.md).

The reservation is an estimate (the largest page of the run so far, and before any
page the bound itself) corrected to the body's real size once it is read; a body
larger than its estimate takes the difference without waiting, so nobody waits while
holding half a response. A page larger than the whole budget is still fetched, alone.
"""

from __future__ import annotations

import threading

# The run's budget: what every tenant's pages in flight may hold together. Four pages
# near the 16 MiB bound; a page of 1,000 users with a week of backups is about 5 MiB.
RESPONSE_BUDGET_BYTES = 64 * 2**20


class BudgetClosed(RuntimeError):
    """The run stopped while a tenant was waiting for room."""


class Hold:
    """Room held for one response, from before its request until its page is written."""

    def __init__(self, budget: ResponseBudget, size: int) -> None:
        self._budget = budget
        self.size = size

    def resize(self, size: int) -> None:
        """The body's real size, once read: never waits."""
        self._budget.adjust(size - self.size, page_bytes=size)
        self.size = size

    def release(self) -> None:
        """Give the room back (once; again is a no-op)."""
        if self.size:
            self._budget.adjust(-self.size)
            self.size = 0


class ResponseBudget:
    """The bytes held for responses across the run's tenants. Thread-safe."""

    def __init__(self, limit: int = RESPONSE_BUDGET_BYTES, first_estimate: int = 0) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0  # the most held at once, for the benchmark
        self.largest_page = 0
        # The estimate before any page came back: the largest body the transport reads,
        # or the whole budget if that is smaller.
        self._first_estimate = min(first_estimate or limit, limit)
        self._closed = False
        self._room = threading.Condition()

    def estimate(self) -> int:
        """What the next page is expected to take."""
        return self.largest_page or self._first_estimate

    def reserve(self, size: int | None = None) -> Hold:
        """Wait for room for `size` bytes (default: `estimate()`), then hold it."""
        size = self.estimate() if size is None else size
        with self._room:
            while self.used > 0 and self.used + size > self.limit:
                if self._closed:
                    raise BudgetClosed("the run stopped while waiting for room")
                self._room.wait()
            self.used += size
            self.peak = max(self.peak, self.used)
        return Hold(self, size)

    def close(self) -> None:
        """Wake every waiting tenant: the run is over."""
        with self._room:
            self._closed = True
            self._room.notify_all()

    def adjust(self, delta: int, *, page_bytes: int = 0) -> None:
        """Hold `delta` more bytes (less, when negative), never waiting; a page of
        `page_bytes` came back, for the estimates that follow."""
        with self._room:
            self.largest_page = max(self.largest_page, page_bytes)
            self.used += delta
            self.peak = max(self.peak, self.used)
            if delta < 0:
                self._room.notify_all()
