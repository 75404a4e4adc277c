"""The query strings of GET /external/users and of the backup summary, validated as
the API's Fastify schema does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

DEFAULT_PAGE_SIZE = 50
# The API's read routes (routes.py answers them; hostile.py changes some answers).
USERS_PATH = "/external/users"
TENANT_PATH = "/external/tenant"
SUMMARY_PATH = "/external/tenant/backups/summary"

_INTEGER = re.compile(r"[+-]?[0-9]+")
_EPOCH_MS = re.compile(r"[+-]?[0-9]{1,18}")  # longer is no instant (and a costly int())


class InvalidQuery(Exception):
    """A query-string validation failure, answered with a Fastify-style 400."""


@dataclass(frozen=True)
class PageQuery:
    """The page asked for: its size, filters and the key it starts after."""

    size: int
    status: str | None
    in_ad: str | None
    after: tuple[str, str] | None
    # The backup window (epoch ms), echoed in nextLinks; served with status=true.
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Window:
    """The days asked of the backup status: epoch milliseconds, either may be absent."""

    start: int | None
    end: int | None


def _single(params: dict[str, list[str]], name: str, kind: str) -> str | None:
    values = params.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise InvalidQuery(f"querystring/{name} must be {kind}")
    return values[0]


def _boolean(params: dict[str, list[str]], name: str) -> str | None:
    value = _single(params, name, "boolean")
    if value is not None and value not in ("true", "false"):
        raise InvalidQuery(f"querystring/{name} must be boolean")
    return value


def _size(params: dict[str, list[str]], max_size: int) -> int:
    value = _single(params, "size", "integer")
    if value is None:
        return min(DEFAULT_PAGE_SIZE, max_size)
    if not _INTEGER.fullmatch(value):
        raise InvalidQuery("querystring/size must be integer")
    size = int(value)
    if size < 1:
        raise InvalidQuery("querystring/size must be >= 1")
    if size > max_size:
        raise InvalidQuery(f"querystring/size must be <= {max_size}")
    return size


def _epoch_ms(params: dict[str, list[str]], name: str) -> int | None:
    value = _single(params, name, "integer")
    if value is None:
        return None
    if not _EPOCH_MS.fullmatch(value):
        raise InvalidQuery(f"querystring/{name} must be integer")
    return int(value)


def _window(params: dict[str, list[str]]) -> Window:
    return Window(_epoch_ms(params, "start"), _epoch_ms(params, "end"))


def parse_window(query: str) -> Window:
    """start and end of GET /external/tenant/backups/summary; InvalidQuery when bad."""
    return _window(parse_qs(query, keep_blank_values=True))


def parse_page_query(query: str, max_size: int) -> PageQuery:
    """The page wanted; InvalidQuery when the API would answer 400."""
    params = parse_qs(query, keep_blank_values=True)
    ms_id = _single(params, "msIdOffset", "string")
    sort_prop = _single(params, "sortPropOffset", "string")
    after = None if ms_id is None and sort_prop is None else (sort_prop or "", ms_id or "")
    size = _size(params, max_size)
    status, in_ad = _boolean(params, "status"), _boolean(params, "inActiveDirectory")
    window = _window(params)
    return PageQuery(size, status, in_ad, after, window.start, window.end)
