"""HTTP for one tenant: auth, pagination, retries and error messages.

`TenantClient` talks to one tenant's host with that tenant's credentials, on a
session of its own, so that a fleet's tenants can be fetched side by side:
- Basic auth through `requests.auth.HTTPBasicAuth`, which signs a URL without
  touching it (the SDK's BasicAuthenticator re-encodes the query of a nextLink);
- the first users request carries `size` and `status`; every later one is the
  server's `nextLink`, verbatim, checked to stay on this tenant's host, never seen twice;
- 429, 5xx, connection errors, timeouts and bodies that are not what was asked for are
  retried with capped exponential backoff and jitter, honouring `Retry-After`;
- 4xx fail at once with a message that says what to fix.
Every message is built here from status, path and a short body excerpt: never from
request headers, so the key cannot end up in one.

The streams do not use the SDK's RESTStream: it holds one session, one authenticator
and one base URL per stream, and a fleet needs one of each per tenant, used from
worker threads (docs/development.md).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

import backoff
import msgspec
import requests
from requests.auth import HTTPBasicAuth

from tap_spanning.backups import BackupWindow, PageError
from tap_spanning.budget import Hold, ResponseBudget
from tap_spanning.records import UsersPage, UsersPayload, parse_page, parse_tenant
from tap_spanning.redaction import quote, scrub
from tap_spanning.transport import DeadlineAdapter, ResponseTooLarge
from tap_spanning.urls import (
    BACKUP_SUMMARY_PATH,
    TENANT_PATH,
    USERS_PATH,
    UrlError,
    resolve_next_link,
    with_query_defaults,
)

if TYPE_CHECKING:
    from backoff.types import Details

    from tap_spanning.settings import Settings, Tenant

T = TypeVar("T")

# A users page is decoded into the fields the tap reads; any other body as it is.
_USERS_PAGE = msgspec.json.Decoder(UsersPayload)
_ANY_BODY = msgspec.json.Decoder()

# How much of an error body goes into a message: enough to read, never a whole page.
_BODY_EXCERPT = 300


class SpanningError(Exception):
    """A failure the tap explains in one line: it ends the tenant it happened to.

    `reason` is the few words that the run's last line gives for the tenant
    ("credentials refused", "HTTP 503 after 5 tries"). Not one of the SDK's exception
    types: it ends one tenant, in a worker thread, never the sync.
    """

    def __init__(self, message: str, reason: str) -> None:
        # Messages quote the server (bodies, links): never let one carry the key.
        super().__init__(scrub(message))
        self.reason = scrub(reason)


class _RetriableError(Exception):
    """A try that failed in a way worth another try; `reason` as in SpanningError."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# Exceptions that mean "the request did not complete": worth another try.
RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    _RetriableError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    ResponseTooLarge,
)


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


def describe_failure(exc: BaseException, timeout: float) -> tuple[str, str]:  # noqa: PLR0911
    """(one line saying why a try failed, the few words of it for a summary)."""
    if isinstance(exc, _RetriableError):
        return str(exc), exc.reason
    if isinstance(exc, ResponseTooLarge):
        return str(exc), "response too large"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no complete answer within request_timeout ({timeout:g}s)", "timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off in the middle of the response", "connection broken"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "the response body could not be decoded", "bad response"
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionResetError):
        return (
            "could not connect, or the connection was reset before an answer",
            "connection failed",
        )
    return type(exc).__name__, type(exc).__name__


class TenantClient:
    """One tenant's requests: its own session, credentials and host."""

    def __init__(
        self, tenant: Tenant, settings: Settings, logger: logging.Logger, user_agent: str
    ) -> None:
        self.tenant = tenant
        self.settings = settings
        self.logger = logger
        self.requests_made = 0
        self.retries = 0
        self.server_date: str | None = None  # the Date header of the last good answer
        self.last_body_bytes = 0  # the size of the last body read
        # The room the last users page holds in the run's budget, for users_pages.
        self.last_hold: Hold | None = None
        self.session = requests.Session()
        adapter = DeadlineAdapter(settings.request_timeout)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.auth = HTTPBasicAuth(tenant.admin_email, tenant.api_key)
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def users_pages(
        self,
        *,
        page_limit: int | None = None,
        max_pages: int | None = None,
        backups: BackupWindow | None = None,
        budget: ResponseBudget | None = None,
    ) -> Iterator[tuple[UsersPage, datetime, Hold | None]]:
        """Every page of `GET /external/users` with the time it came back, in order, and
        the room it holds in the run's `budget` until the caller releases it.

        Unlike the SDK's loop, an empty page that still has a nextLink is not the end.
        `page_limit` stops early (`--test`); past `max_pages` the tenant fails: its
        pages run far past what its counters say it holds. With `backups`, every request
        asks for each user's backupSummary of those days (a nextLink that drops the
        parameters gets them back).
        """
        origin = self.tenant.origin
        asked = {"status": "true", **backups.query()} if backups else {"status": "false"}
        query = urlencode({"size": self.settings.page_size, **asked})
        url = f"{origin}{USERS_PATH}?{query}"
        seen = {url}  # a link back to the first page is a loop too
        pages = 0
        while True:
            page, page_url = self.get(url, USERS_PATH, parse_page, _USERS_PAGE, budget)
            hold, self.last_hold = self.last_hold, None
            pages += 1
            yield page, datetime.now(timezone.utc), hold
            if page.next_link is None or (page_limit is not None and pages >= page_limit):
                return
            if max_pages is not None and pages >= max_pages:
                raise SpanningError(
                    f"the users pages do not end: {pages} pages so far, more than twice "
                    "what the tenant's users counter needs, and another nextLink; the "
                    "sync stops rather than emit users twice or run forever",
                    "pagination runaway",
                )
            url = self._next_url(page.next_link, page_url, seen)
            if backups is not None:
                url = with_query_defaults(url, asked)

    def tenant_counters(self) -> dict[str, Any]:
        """The tenant's license counters: `GET /external/tenant`."""
        counters, _ = self.get(f"{self.tenant.origin}{TENANT_PATH}", TENANT_PATH, parse_tenant)
        return counters

    def backup_summary(self, window: BackupWindow, parse: Callable[[object], T]) -> T:
        """The tenant's backup status per day and workload, for `window`."""
        url = f"{self.tenant.origin}{BACKUP_SUMMARY_PATH}?{urlencode(window.query())}"
        summary, _ = self.get(url, BACKUP_SUMMARY_PATH, parse)
        return summary

    def _next_url(self, link: str, page_url: str, seen: set[str]) -> str:
        try:
            url = resolve_next_link(link, self.tenant.origin, page_url)
        except UrlError as exc:
            raise SpanningError(
                f"Spanning sent a nextLink the tap will not follow: {exc}", "nextLink refused"
            ) from None
        if url in seen:
            raise SpanningError(
                f"Spanning sent a nextLink already followed ({quote(link)}): the pages "
                "loop, so the sync stops rather than emit users twice or run forever",
                "pagination loop",
            )
        seen.add(url)
        return url

    def get(
        self,
        url: str,
        endpoint: str,
        parse: Callable[[object], T],
        decoder: msgspec.json.Decoder[Any] = _ANY_BODY,
        budget: ResponseBudget | None = None,
    ) -> tuple[T, str]:
        """GET `url` and parse its JSON body (decoded by `decoder`), retrying what is
        worth retrying. With a `budget`, each try waits for room first, and the good
        answer's room is left in `last_hold` (a failed try gives its room back before
        the wait for the next: a tenant retrying holds nothing).

        Returns the parsed body and the URL it came from (relative nextLinks resolve
        against it).
        """
        tries = self.settings.max_retries

        def on_backoff(details: Details) -> None:
            self.retries += 1
            exc = details.get("exception")
            why = (
                describe_failure(exc, self.settings.request_timeout)[0]
                if isinstance(exc, BaseException)
                else "unknown error"
            )
            self.logger.warning(
                "Tenant %s: retrying GET %s in %.1fs (try %d of %d failed: %s)",
                self.tenant.tenant_id,
                endpoint,
                details.get("wait", 0.0),
                details.get("tries", 0),
                tries,
                why,
            )

        # backoff's own logger would log each retry a second time with the exception's
        # text: the URL, and so a user's UPN in the nextLink's sortPropOffset.
        retrying = backoff.on_exception(
            self._wait_generator,
            RETRIABLE_ERRORS,
            max_tries=tries,
            on_backoff=on_backoff,
            jitter=self._jitter,
            logger=None,
        )(self._get_once)
        try:
            return retrying(url, endpoint, parse, decoder, budget)
        except RETRIABLE_ERRORS as exc:
            why, short = describe_failure(exc, self.settings.request_timeout)
            raise SpanningError(
                f"GET {endpoint} failed {tries} {'time' if tries == 1 else 'times'}, "
                f"giving up: {why}",
                f"{short} after {tries} {'try' if tries == 1 else 'tries'}",
            ) from exc

    def _get_once(
        self,
        url: str,
        endpoint: str,
        parse: Callable[[object], T],
        decoder: msgspec.json.Decoder[Any],
        budget: ResponseBudget | None,
    ) -> tuple[T, str]:
        hold = None if budget is None else budget.reserve()
        try:
            parsed = self._try(url, endpoint, parse, decoder)
        except BaseException:
            if hold is not None:
                hold.release()
            raise
        if hold is not None:
            hold.resize(self.last_body_bytes)
        self.last_hold = hold
        return parsed

    def _try(
        self,
        url: str,
        endpoint: str,
        parse: Callable[[object], T],
        decoder: msgspec.json.Decoder[Any],
    ) -> tuple[T, str]:
        self.requests_made += 1
        # A redirect could carry the Authorization header to another host.
        response = self.session.get(
            url, timeout=self.settings.request_timeout, allow_redirects=False
        )
        self._check_status(response, endpoint)
        # The server's own clock says which day is today for the backup streams.
        self.server_date = response.headers.get("Date")
        self.last_body_bytes = len(response.content)
        try:
            return _parsed(response.content, decoder, parse), response.url
        except msgspec.ValidationError:
            # A number beyond a double (1e400): a server bug that no retry changes.
            raise SpanningError(
                f"HTTP {response.status_code} from {endpoint} but the body holds a number "
                "too large for any warehouse",
                "number out of range",
            ) from None
        except msgspec.DecodeError:
            if _has_non_json_constant(response.content):
                # NaN or Infinity: the server wrote them, a cut-off body never does.
                raise SpanningError(
                    f"HTTP {response.status_code} from {endpoint} but the body holds NaN or "
                    "Infinity, which JSON does not allow",
                    "NaN in the body",
                ) from None
            raise _RetriableError(
                f"HTTP {response.status_code} from {endpoint} but the body is not valid JSON",
                "bad response",
            ) from None
        except (UnicodeDecodeError, PageError) as exc:
            # A cut-off body, a proxy's HTML page, bytes that are not UTF-8: the same
            # request may well succeed.
            reason = exc if isinstance(exc, PageError) else "the body is not valid JSON"
            raise _RetriableError(
                f"HTTP {response.status_code} from {endpoint} but {reason}",
                "bad response",
            ) from None

    def _check_status(self, response: requests.Response, endpoint: str) -> None:
        status = response.status_code
        path = urlsplit(response.url).path or endpoint
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise _RetriableError(
                f"HTTP {status} from {path}: {body_excerpt(response)}", f"HTTP {status}"
            )
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise SpanningError(
                f"Spanning refused the credentials (HTTP {status} from {path}). Check that "
                "api_key is the token from Settings > API Token in the Spanning console, that "
                "admin_email is the address of the admin who created it, and that the "
                f"key belongs to this region ({self.tenant.origin}): a key only works on "
                "its own region's host.",
                "credentials refused",
            )
        if status == HTTPStatus.NOT_FOUND:
            raise SpanningError(
                f"Spanning answered 404 for {path} ({body_excerpt(response)}): base_url is "
                "probably wrong; it should be https://o365-api-<region>.spanningbackup.com "
                "(the tap adds the /external/... paths itself).",
                "HTTP 404, base_url wrong?",
            )
        if status == HTTPStatus.BAD_REQUEST:
            raise SpanningError(
                f"Spanning rejected the request to {path} (HTTP 400): {_server_message(response)}",
                "HTTP 400",
            )
        if status >= HTTPStatus.MULTIPLE_CHOICES:
            raise SpanningError(
                f"Unexpected HTTP {status} from {path} ({body_excerpt(response)}); "
                "redirects are not followed, so that credentials stay on the configured host.",
                f"HTTP {status}",
            )

    def _wait_generator(self) -> Generator[float, Any, None]:
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

    def _jitter(self, value: float) -> float:
        # Up to 10% longer, never shorter: a Retry-After is a floor, not a hint.
        return min(value * (1 + random.random() / 10), self.settings.max_retry_wait)


def _parsed(body: bytes, decoder: msgspec.json.Decoder[Any], parse: Callable[[object], T]) -> T:
    """The body decoded by `decoder` and parsed. A body of another shape than the decoder
    expects, or that the parser refuses, is decoded again as it is, so that the parser's
    message says what came (a user that is not an object, the keys of a page without
    users): the slower path only for a body that fails anyway."""
    if decoder is _ANY_BODY:
        return parse(decoder.decode(body))
    try:
        return parse(decoder.decode(body))
    except (msgspec.ValidationError, PageError):
        return parse(_ANY_BODY.decode(body))


class _NonJsonConstant(ValueError):
    pass


def _reject_constant(name: str) -> object:
    raise _NonJsonConstant(name)


def _has_non_json_constant(body: bytes) -> bool:
    """Is the body JSON but for NaN, Infinity or -Infinity? (Only asked of a body that
    msgspec refused: the slow parser never runs on a good page.)"""
    try:
        json.loads(body, parse_constant=_reject_constant)
    except _NonJsonConstant:
        return True
    except (ValueError, RecursionError):
        return False
    return False


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
