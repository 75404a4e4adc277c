"""The transport under every request: a deadline and a size bound on the whole response.

requests' timeout applies to each socket read, so a server that trickles a byte every
few seconds, in the headers or the body, would hold a sync forever. `DeadlineAdapter`
bounds a request from connect to its last body byte: one watchdog thread shuts the
request's socket when its deadline passes, and the request fails as a timeout (then it
is retried like any other). The pools learn which connection a request holds through
`sdk_seam.LendingPool`, the one place that overrides a private urllib3 member.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from typing_extensions import override

from tap_spanning.sdk_seam import LendingPool, set_content

# The largest body read: far above the largest real page (1,000 users with a week of
# backupSummary each is about 5 MiB), far below what would hurt a fleet run's memory.
MAX_RESPONSE_BYTES = 16 * 2**20
_CHUNK = 64 * 1024


class ResponseTooLarge(requests.exceptions.RequestException):
    """The body ran past MAX_RESPONSE_BYTES: the try fails, like a timeout, and is retried."""


class _Watch:
    """The deadline of one request: when it passes, the request's socket is shut."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.expired = False
        self.done = False  # the request ended in time: the watchdog forgets it

    def expire(self) -> None:
        """Called by the timer thread: end whatever read the request is blocked in."""
        self.expired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def watch(self, connection: Any) -> None:
        """Called when the request takes a connection from the pool."""
        self.connection = connection
        if self.expired:
            self.expire()


class _Watchdog:
    """One thread for every request's deadline (a thread per request costs each one).

    Deadlines wait in a heap; a request that ends in time marks its watch done and
    is dropped when its deadline comes round.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, watch: _Watch, seconds: float) -> None:
        """Expire `watch` in `seconds` unless it is done by then."""
        with self._wakeup:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="spanning-watchdog", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), watch))
            self._wakeup.notify()

    def _run(self) -> None:
        with self._wakeup:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done:
                        watch.expire()
                self._wakeup.wait(self._heap[0][0] - now if self._heap else None)


_watchdog = _Watchdog()
# The watch of the request this thread is making, for the pools below to find.
_current = threading.local()


class _WatchedPool(LendingPool):
    """Hands each connection it lends to the current request's watch."""

    @override
    def lent(self, connection: Any) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.watch(connection)


class _WatchedHTTPPool(_WatchedPool, urllib3.HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    pass


class DeadlineAdapter(HTTPAdapter):
    """An adapter that bounds a whole request, from connect to the last body byte.

    requests' timeout applies to each socket read, so a server that trickles a byte
    every few seconds, in the headers or the body, would hold a sync forever. Here the
    watchdog shuts the request's socket once `seconds` have passed, and the request fails
    as a timeout (then it is retried like any other).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    @override
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    @override
    def send(  # the signature of HTTPAdapter.send
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        watch = _Watch()
        _current.watch = watch
        _watchdog.arm(watch, self.seconds)
        try:
            response = super().send(request, True, timeout, verify, cert, proxies)
            if not stream:
                # The body too, under the same deadline, and never more than the bound.
                set_content(response, _bounded_body(response, request))
        except requests.exceptions.RequestException as exc:
            if watch.expired:
                raise self._late(request) from exc
            raise
        finally:
            watch.done = True
            # The watch waits in the watchdog's heap until its deadline: it must not keep
            # the connection (and its buffers) alive that long.
            watch.connection = None
            _current.watch = None
        if watch.expired:  # a body cut short by the shut socket
            response.close()
            raise self._late(request)
        return response

    def _late(self, request: requests.PreparedRequest) -> requests.exceptions.ReadTimeout:
        return requests.exceptions.ReadTimeout(
            f"the response took longer than {self.seconds:g}s", request=request
        )


def _bounded_body(response: requests.Response, request: requests.PreparedRequest) -> bytes:
    """The whole body, read in chunks; past MAX_RESPONSE_BYTES the try fails at once."""
    declared = response.headers.get("Content-Length", "")
    too_large = ResponseTooLarge(
        f"the response was larger than {MAX_RESPONSE_BYTES // 2**20} MiB", request=request
    )
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        response.close()
        raise too_large
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            chunks.clear()
            response.close()
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
