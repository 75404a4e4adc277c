"""The API's read routes: which paths exist, and each one's normal (fault-free) answer.

A new route is one function taking a `RouteRequest` and returning a `Response`, and one
entry in `ROUTES` (an exact path) or `PREFIX_ROUTES` (a path with an id after it):
nothing else decides which paths exist. Authorisation, faults, latency and hostile
rewrites are the listener's (listener.py), the same for every route.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote, unquote

from .admission import Admission, ServedBackups
from .backups import BackupStyle, summary_items, user_items, utc_today, window_days
from .query import (
    SUMMARY_PATH,
    TENANT_PATH,
    USERS_PATH,
    InvalidQuery,
    PageQuery,
    parse_page_query,
    parse_window,
)
from .snapshot import Snapshot, with_summary
from .wire import HTML_TYPE, Response, dumps

LinkStyle = Literal["absolute", "relative"]
LastLink = Literal["empty", "null", "absent"]

_LAST_LINK_FIELDS: dict[str, dict[str, object]] = {
    "empty": {"nextLink": ""},
    "null": {"nextLink": None},
    "absent": {},
}

UNAUTHORIZED = Response(401, dumps({"code": "Unauthorized", "message": ""}))
_USER_NOT_FOUND = Response(
    404, dumps({"statusCode": 404, "code": "NotFound", "message": "User not found"})
)


def not_found(method: str, path: str) -> Response:
    """What the API's web server answers a path or method it has no route for."""
    return Response(404, f"Cannot {method} {path}".encode(), HTML_TYPE)


def _bad_request(message: str) -> Response:
    body = {
        "statusCode": 400,
        "code": "FST_ERR_VALIDATION",
        "error": "Bad Request",
        "message": message,
    }
    return Response(400, dumps(body))


class ListenerSettings(Protocol):
    """The listener as a route sees it: how it pages, spells links, and its address."""

    max_page_size: int
    link_style: LinkStyle
    last_link: LastLink
    legacy_summary: bool

    @property
    def base_url(self) -> str:
        """E.g. http://127.0.0.1:8765 (no trailing slash)."""
        ...


@dataclass(frozen=True)
class RouteRequest:
    """One GET of a known path, by a tenant's credentials, as its route answers it."""

    listener: ListenerSettings
    snapshot: Snapshot  # the tenant's data as of the request's arrival
    admission: Admission
    query: str  # after '?', not decoded
    rest: str = ""  # a prefix route's path after the prefix and '/', not decoded


Route = Callable[[RouteRequest], Response]


def answer(listener: ListenerSettings, method: str, target: str, admission: Admission) -> Response:
    """The normal (fault-free) answer to one admitted request: 404 for a path or method
    no route has, then 401 for credentials of no tenant, then the route's answer."""
    path, _, query = target.partition("?")
    found = find_route(path) if method == "GET" else None
    if found is None:
        return not_found(method, path)
    if admission.snapshot is None:
        return UNAUTHORIZED
    route, rest = found
    return route(RouteRequest(listener, admission.snapshot, admission, query, rest))


def find_route(path: str) -> tuple[Route, str] | None:
    """The route of `path` and the part of it after a prefix route's prefix; None: 404.

    Exact paths only: '//external/users', '/external/users/' are no route.
    """
    route = ROUTES.get(path)
    if route is not None:
        return route, ""
    for prefix, prefixed in PREFIX_ROUTES.items():
        if path.startswith(prefix + "/") and len(path) > len(prefix) + 1:
            return prefixed, path[len(prefix) + 1 :]
    return None


# ---------------------------------------------------------------- the routes


def _tenant(request: RouteRequest) -> Response:
    """GET /external/tenant: the tenant's license counters."""
    return Response(200, request.snapshot.tenant)


def _user(request: RouteRequest) -> Response:
    """GET /external/users/{userPrincipalName or msId}: one user."""
    body = request.snapshot.user(unquote(request.rest))
    return _USER_NOT_FOUND if body is None else Response(200, body)


def _users_page(request: RouteRequest) -> Response:
    """GET /external/users: one page of users in API order, with its nextLink."""
    listener, snapshot, admission = request.listener, request.snapshot, request.admission
    try:
        page = parse_page_query(request.query, listener.max_page_size)
    except InvalidQuery as invalid:
        return _bad_request(str(invalid))
    view = snapshot.views[page.in_ad]
    start = 0 if page.after is None else bisect.bisect_right(view.keys, page.after)
    end = start + page.size
    users = view.raw[start:end]
    if page.status == "true" and _real_summary(listener, page):
        users = _with_backups(snapshot, users, view.keys[start:end], page, admission)
    elif page.status != "false":
        users = [with_summary(raw) for raw in users]
    link = _next_link(listener, page, view.keys[end - 1]) if end < len(view.keys) else None
    body = _page_body(users, _link_field(listener, link), admission)
    return Response(200, body)


def _backup_summary(request: RouteRequest) -> Response:
    """GET /external/tenant/backups/summary: the kept days of [start, end] (today only
    without them), one item per day per workload."""
    try:
        window = parse_window(request.query)
    except InvalidQuery as invalid:
        return _bad_request(str(invalid))
    backups = _served_backups(request.admission)
    days = window_days(window.start, window.end, backups.today)
    items = summary_items(request.snapshot.backups, days, backups.style, backups.settle_day)
    return Response(200, dumps(items))


# The route table. A route for a new per-tenant stream goes here: its path (query.py)
# and its function above.
ROUTES: dict[str, Route] = {
    USERS_PATH: _users_page,
    TENANT_PATH: _tenant,
    SUMMARY_PATH: _backup_summary,
}
# Paths that are a prefix, '/' and an id (one or more characters, '/' included).
PREFIX_ROUTES: dict[str, Route] = {
    USERS_PATH: _user,
}


# ---------------------------------------------------------------- users pages


def _served_backups(admission: Admission) -> ServedBackups:
    return admission.backups or ServedBackups(BackupStyle(), utc_today(), None)


def _real_summary(listener: ListenerSettings, page: PageQuery) -> bool:
    """status=true: the tenant's backup history, unless this is the legacy case
    (no start/end on a server that keeps the placeholder there)."""
    return not listener.legacy_summary or page.start is not None or page.end is not None


def _next_link(listener: ListenerSettings, page: PageQuery, last: tuple[str, str]) -> str:
    params = [("msIdOffset", last[1]), ("sortPropOffset", last[0]), ("size", str(page.size))]
    echoed = (
        ("status", page.status),
        ("inActiveDirectory", page.in_ad),
        ("start", None if page.start is None else str(page.start)),
        ("end", None if page.end is None else str(page.end)),
    )
    params += [(name, value) for name, value in echoed if value is not None]
    path = USERS_PATH + "?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in params)
    return path if listener.link_style == "relative" else listener.base_url + path


def _link_field(listener: ListenerSettings, link: str | None) -> dict[str, object]:
    """The nextLink member: the link, or the configured last-page spelling."""
    if link is not None:
        return {"nextLink": link}
    return _LAST_LINK_FIELDS[listener.last_link]


def _with_backups(
    snapshot: Snapshot,
    users: list[bytes],
    keys: list[tuple[str, str]],
    page: PageQuery,
    admission: Admission,
) -> list[bytes]:
    """The page's users, each with its backupSummary of the days asked (or none)."""
    backups = _served_backups(admission)
    days = window_days(page.start, page.end, backups.today)
    history = snapshot.backups
    served: list[bytes] = []
    for raw, key in zip(users, keys, strict=True):
        items = user_items(history, key, days, backups.style, backups.settle_day)
        served.append(raw if items is None else with_summary(raw, dumps(items)))
    return served


def _page_body(users: list[bytes], link_field: dict[str, object], admission: Admission) -> bytes:
    hook = admission.page_hook
    if hook is not None:
        payload: dict[str, object] = {"users": [json.loads(raw) for raw in users], **link_field}
        return dumps(hook(admission.number, payload))
    tail = b"," + dumps(link_field)[1:-1] if link_field else b""
    return b'{"users":[' + b",".join(users) + b"]" + tail + b"}"
