"""Per host: when its tenants keep failing the same way, the rest fail fast."""

from __future__ import annotations

import threading

from tap_spanning.client import SpanningError


class HostCircuit:
    """Per host: when its tenants keep failing the same way, the rest fail fast.

    Once OPENS_AFTER of a host's tenants in a row have failed to connect or
    timed out (after all their tries), with no tenant of that host answering in
    between, every other tenant of that host fails at once with "host unreachable",
    and the other hosts carry on. A regional outage then costs about one round of
    tries (max_retries x request_timeout), not one per tenant (docs/operations.md, "Failure
    behaviour"). Called from worker threads.
    """

    OPENS_AFTER = 3
    # The failures (client.py reasons, before " after N tries") that say the host is away.
    UNREACHABLE = frozenset({"timeout", "connection failed", "connection broken"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streaks: dict[str, tuple[str, int]] = {}  # host -> (kind, tenants in a row)
        self._open: dict[str, str] = {}  # host -> why

    def answered(self, host: str) -> None:
        """A tenant of `host` answered: its failures so far were not the host's."""
        with self._lock:
            self._streaks.pop(host, None)

    def failed(self, host: str, reason: str) -> None:
        """A tenant of `host` failed for `reason`."""
        kind = reason.split(" after ", 1)[0]
        if kind == "host unreachable":
            return  # failed by the circuit itself
        with self._lock:
            if kind not in self.UNREACHABLE:
                self._streaks.pop(host, None)
                return
            previous, count = self._streaks.get(host, (kind, 0))
            count = count + 1 if previous == kind else 1
            self._streaks[host] = (kind, count)
            if count >= self.OPENS_AFTER:
                self._open.setdefault(
                    host, f"{count} of its tenants in a row failed the same way ({kind})"
                )

    def check(self, host: str) -> None:
        """Raise for a tenant of a host that is known to be away."""
        why = self._open.get(host)
        if why is not None:
            raise SpanningError(
                f"host unreachable: {host} is not answering, {why}; this tenant was not asked",
                "host unreachable",
            )
