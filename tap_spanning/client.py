"""The HTTP side of the tap: auth, pagination, retries and error messages.

`SpanningStream` is the SDK's RESTStream with the Spanning API's rules:
- Basic auth through `requests.auth.HTTPBasicAuth`, which signs a URL without
  touching it (the SDK's BasicAuthenticator re-encodes the query of a nextLink);
- the first request carries `size` and `status`; every later one is the server's
  `nextLink`, verbatim, checked to stay on the configured host, and never seen twice;
- 429, 5xx, connection errors, timeouts and bodies that are not a page are retried
  with capped exponential backoff and jitter, honouring `Retry-After`;
- 4xx fail at once with a message that says what to fix.
Every message is built here from status, path and a short body excerpt: never from
request headers, so the key cannot end up in one.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import backoff
import msgspec
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import HTTPRequest, PageContext

from tap_spanning.config import Settings, resolve_settings
from tap_spanning.records import PageError, UsersPage, parse_page, quote
from tap_spanning.redaction import scrub
from tap_spanning.urls import Origin, UrlError, resolve_next_link

if TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context, RequestFunc

# How much of an error body goes into a message: enough to read, never a whole page.
_BODY_EXCERPT = 300
_PAGE_ATTRIBUTE = "_spanning_page"
# Exceptions that mean "the request did not complete": worth another try.
RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class SpanningError(FatalAPIError):
    """A failure the tap explains in one line; the sync stops and exits non-zero."""

    def __init__(self, message: str) -> None:
        # Messages quote the server (bodies, links): never let one carry the key.
        super().__init__(scrub(message))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def body_excerpt(response: requests.Response) -> str:
    """A one-line excerpt of a response body for an error message."""
    # Scrubbed whole, before the cut: a cut could split the key and hide it from scrub.
    text = " ".join(scrub(response.text).split())
    if not text:
        return "empty body"
    return text if len(text) <= _BODY_EXCERPT else f"{text[:_BODY_EXCERPT]}..."


def describe_failure(exc: BaseException, timeout: float) -> str:
    """One line saying why a try failed."""
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no complete answer within request_timeout ({timeout:g}s)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off in the middle of the response"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "the response body could not be decoded"
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionResetError):
        return "could not connect, or the connection was reset before an answer"
    return type(exc).__name__


def page_of(response: requests.Response) -> UsersPage:
    """The page parsed from a response by `validate_response`."""
    page = getattr(response, _PAGE_ATTRIBUTE, None)
    if not isinstance(page, UsersPage):  # pragma: no cover - validate_response sets it
        msg = "response was not validated"
        raise TypeError(msg)
    return page


class _Watch:
    """The deadline of one request: when it passes, the request's socket is shut."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.expired = False

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


# The watch of the request this thread is making, for the pools below to find.
_current = threading.local()


class _WatchedPool:
    """Hands each connection it lends to the current request's watch."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.watch(connection)
        return connection


class _WatchedHTTPPool(_WatchedPool, urllib3.HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    pass


class DeadlineAdapter(HTTPAdapter):
    """An adapter that bounds a whole request, from connect to the last body byte.

    requests' timeout applies to each socket read, so a server that trickles a byte
    every few seconds, in the headers or the body, would hold a sync forever. Here a
    timer shuts the request's socket once `seconds` have passed, and the request fails
    as a timeout (then it is retried like any other).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def send(  # noqa: PLR0917  # the signature of HTTPAdapter.send
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        watch = _Watch()
        timer = threading.Timer(self.seconds, watch.expire)
        timer.daemon = True
        _current.watch = watch
        timer.start()
        try:
            response = super().send(request, True, timeout, verify, cert, proxies)
            if not stream:
                _ = response.content  # the body too, under the same deadline
        except requests.exceptions.RequestException as exc:
            if watch.expired:
                raise self._late(request) from exc
            raise
        finally:
            timer.cancel()
            _current.watch = None
        if watch.expired:  # a body cut short by the shut socket
            response.close()
            raise self._late(request)
        return response

    def _late(self, request: requests.PreparedRequest) -> requests.exceptions.ReadTimeout:
        return requests.exceptions.ReadTimeout(
            f"the response took longer than {self.seconds:g}s", request=request
        )


class NextLinkPaginator(BaseAPIPaginator[str | None]):
    """Follows `nextLink` on the configured host; fails on a link seen before."""

    def __init__(self, origin: Origin, first_url: str) -> None:
        super().__init__(None)
        self._origin = origin
        # A link back to the first page is a loop too.
        self._seen: set[str] = {first_url}

    def get_next(self, response: requests.Response) -> str | None:
        link = page_of(response).next_link
        if link is None:
            return None
        try:
            url = resolve_next_link(link, self._origin, response.url)
        except UrlError as exc:
            raise SpanningError(
                f"Spanning sent a nextLink the tap will not follow: {exc}"
            ) from None
        if url in self._seen:
            raise SpanningError(
                f"Spanning sent a nextLink already followed ({quote(link)}): the pages "
                "loop, so the sync stops rather than emit users twice or run forever"
            )
        self._seen.add(url)
        return url


class SpanningStream(RESTStream[str | None]):
    """Base stream for `GET /external/...` endpoints of one tenant."""

    # A redirect could carry the Authorization header to another host.
    allow_redirects = False
    @cached_property
    def settings(self) -> Settings:
        return resolve_settings(self.config)

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        adapter = DeadlineAdapter(self.settings.request_timeout)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    @property
    def requests_session(self) -> requests.Session:
        return self._session

    @property
    def url_base(self) -> str:
        return f"{self.settings.origin}/external"

    @property
    def endpoint(self) -> str:
        """The path requested, for messages: /external/users."""
        return f"/external{self.path}"

    @cached_property
    def authenticator(self) -> HTTPBasicAuth:
        return HTTPBasicAuth(self.settings.admin_email, self.settings.api_key)

    @property
    def timeout(self) -> float:  # type: ignore[override]  # requests takes a float
        return self.settings.request_timeout

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    def get_new_paginator(self) -> NextLinkPaginator:
        params = self.get_url_params(None, None)
        first_query = params if isinstance(params, str) else urlencode(params)
        return NextLinkPaginator(self.settings.origin, f"{self.get_url(None)}?{first_query}")

    def get_http_request(self, *, page: PageContext[str | None]) -> HTTPRequest:
        if page.next_page_token:
            # The nextLink already holds every parameter; adding ours would repeat them.
            return HTTPRequest(url=page.next_page_token, headers=self.http_headers)
        return super().get_http_request(page=page)

    # Errors and retries

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        path = urlsplit(response.url).path or self.path or ""
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(
                f"HTTP {status} from {path}: {body_excerpt(response)}", response
            )
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise SpanningError(
                f"Spanning refused the credentials (HTTP {status} from {path}). Check that "
                "api_key is the token from Settings > API Token in the Spanning console, that "
                "admin_email is the address of the admin who created it, and that the "
                f"key belongs to this region ({self.settings.origin}): a key only works on "
                "its own region's host."
            )
        if status == HTTPStatus.NOT_FOUND:
            raise SpanningError(
                f"Spanning answered 404 for {path} ({body_excerpt(response)}): base_url is "
                "probably wrong; it should be https://o365-api-<region>.spanningbackup.com "
                "(the tap adds /external/users itself)."
            )
        if status == HTTPStatus.BAD_REQUEST:
            raise SpanningError(
                f"Spanning rejected the request to {path} (HTTP 400): {_server_message(response)}"
            )
        if status >= HTTPStatus.MULTIPLE_CHOICES:
            raise SpanningError(
                f"Unexpected HTTP {status} from {path} ({body_excerpt(response)}); "
                "redirects are not followed, so that credentials stay on the configured host."
            )
        try:
            page = parse_page(msgspec.json.decode(response.content))
        except (msgspec.DecodeError, PageError) as exc:
            # A cut-off body, a proxy's HTML page: the same request may well succeed.
            reason = exc if isinstance(exc, PageError) else "the body is not valid JSON"
            raise RetriableAPIError(f"HTTP {status} from {path} but {reason}", response) from None
        setattr(response, _PAGE_ATTRIBUTE, page)

    def backoff_max_tries(self) -> int:
        return self.settings.max_retries

    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """Exponential backoff from 1 s, or what Retry-After asks, capped by max_retry_wait."""
        attempt = 0
        exc = yield 0.0  # backoff primes the generator, then sends each failure
        while True:
            wait = float(2**attempt)
            response = getattr(exc, "response", None)
            if isinstance(response, requests.Response):
                asked = retry_after_seconds(response.headers.get("Retry-After"))
                if asked is not None:
                    wait = asked
            attempt += 1
            exc = yield min(wait, self.settings.max_retry_wait)

    def backoff_jitter(self, value: float) -> float:
        # Up to 10% longer, never shorter: a Retry-After is a floor, not a hint.
        return min(value * (1 + random.random() / 10), self.settings.max_retry_wait)

    def backoff_handler(self, details: Details) -> None:
        exc = details.get("exception")
        self.logger.warning(
            "Retrying GET %s in %.1fs (try %d of %d failed: %s)",
            self.endpoint,
            details.get("wait", 0.0),
            details.get("tries", 0),
            self.settings.max_retries,
            describe_failure(exc, self.timeout)
            if isinstance(exc, BaseException)
            else "unknown error",
        )

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        # The SDK's decorator also hands backoff a logger, which then logs each retry
        # a second time with the exception's text: the URL, and so a user's UPN in the
        # nextLink's sortPropOffset. backoff_handler says what is needed, once.
        retrying: Callable[..., requests.Response] = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_ERRORS,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(func)
        tries = self.settings.max_retries

        def request_or_give_up(*args: Any, **kwargs: Any) -> requests.Response:
            try:
                return retrying(*args, **kwargs)
            except RETRIABLE_ERRORS as exc:
                raise SpanningError(
                    f"GET {self.endpoint} failed {tries} times, giving up: "
                    f"{describe_failure(exc, self.timeout)}"
                ) from exc

        return request_or_give_up

    def request_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """The pages' records, with the next page fetched while this one is processed.

        The SDK's loop waits for each page and then works through it: against a slow
        API the tap would wait for the network and for itself in turn. Here the next
        request (its nextLink already checked) is under way in a worker thread while the
        current page's records are written, so a page costs the longer of the two, not
        their sum. At most two pages are in memory. A page that fails for good fails
        the sync when it is reached, after the pages before it, as in the SDK's loop.
        Unlike the SDK's loop, an empty page that still has a nextLink is not the end.
        """
        paginator = self.get_new_paginator()
        request = self.request_decorator(self._request)
        with (
            self.get_http_request_counter() as request_counter,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanning-fetch") as fetcher,
        ):
            request_counter.with_context(context)

            def fetch() -> tuple[requests.PreparedRequest, Future[requests.Response]]:
                prepared = self._prepare_request(context=context, page=paginator)
                return prepared, fetcher.submit(request, prepared, context)

            pending: tuple[requests.PreparedRequest, Future[requests.Response]] | None = fetch()
            while pending is not None:
                prepared, future = pending
                response = future.result()
                request_counter.increment()
                self.update_sync_costs(prepared, response, context)
                paginator.advance(response)
                pending = None if paginator.finished else fetch()
                yield from self.parse_response(response)

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover - streams parse pages themselves


def _server_message(response: requests.Response) -> str:
    """The `message` of a JSON error body, else an excerpt of the body."""
    try:
        payload = response.json()
    except ValueError:
        return body_excerpt(response)
    message = payload.get("message") if isinstance(payload, dict) else None
    if isinstance(message, str) and message.strip():
        return " ".join(scrub(message).split())[:_BODY_EXCERPT]
    return body_excerpt(response)
