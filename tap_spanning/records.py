"""From API payloads to the tap's records. Pure functions: no I/O, no logging.

A page whose shape is wrong (not an object, `users` not a list) may be a proxy's
error page or a cut-off body, so it raises `PageError`, which the client retries.
A user whose content is wrong raises `UserError`, which fails the sync at once:
asking again will not change the tenant's data, and a user is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tap_spanning.redaction import scrub
from tap_spanning.roles import is_disabled, roles_for_user

# Longest excerpt of a server value quoted in an error message.
_QUOTE_LIMIT = 80


class PageError(ValueError):
    """The body of a 200 response is not a page of users."""


class UserError(ValueError):
    """A user in a page cannot be turned into a record."""


@dataclass(frozen=True)
class UsersPage:
    """One page of `GET /external/users`."""

    users: list[Any]
    next_link: str | None


@dataclass(frozen=True)
class UserRecord:
    """A `users` record, with the role ids and unmatched tags derived from it."""

    record: dict[str, Any]
    role_ids: list[str]
    unmatched_tags: list[str]


def quote(value: object) -> str:
    """A short, printable excerpt of a server value for an error message."""
    text = scrub(repr(value))
    return text if len(text) <= _QUOTE_LIMIT else f"{text[:_QUOTE_LIMIT]}...({len(text)} chars)"


def parse_page(payload: object) -> UsersPage:
    """Check the shape of a users page; the last page's nextLink is "", null or absent."""
    if not isinstance(payload, dict):
        raise PageError(f"expected a JSON object with 'users', got {type(payload).__name__}")
    if "users" not in payload:
        raise PageError(f"the JSON object has no 'users' (keys: {quote(sorted(payload)[:10])})")
    users = payload["users"]
    if not isinstance(users, list):
        raise PageError(f"'users' is {type(users).__name__}, not a list")
    next_link = payload.get("nextLink")
    if next_link == "":
        next_link = None
    if next_link is not None and not isinstance(next_link, str):
        raise PageError(f"'nextLink' is {type(next_link).__name__}, not a string")
    return UsersPage(users, next_link)


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _flag(user: Mapping[str, Any], name: str, msid: str) -> bool | None:
    """A boolean field; "true"/"false" strings and 0/1 are normalised, null stays null."""
    value = user.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UserError(f"user {msid}: {name} is {quote(value)}, not a boolean")


def _text(user: Mapping[str, Any], name: str, msid: str) -> str | None:
    value = user.get(name)
    if value is None or isinstance(value, str):
        return value
    raise UserError(f"user {msid}: {name} is {quote(value)}, not a string")


def _tags(user: Mapping[str, Any], msid: str) -> list[str] | None:
    tags = user.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise UserError(f"user {msid}: tags is {quote(tags)}, not a list of strings")
    return tags


def user_record(user: object) -> UserRecord:
    """Turn one API user into a `users` record and its roles (contract, Part 2)."""
    if not isinstance(user, dict):
        raise UserError(f"a user is {quote(user)}, not a JSON object")
    msid = user.get("msId")
    if not isinstance(msid, str) or not msid.strip():
        upn = user.get("userPrincipalName")
        raise UserError(f"a user has no msId (userPrincipalName {quote(upn)}); it cannot be keyed")
    display_name = _text(user, "displayName", msid)
    if display_name is None:
        display_name = _text(user, "userDisplayName", msid)
    tags = _tags(user, msid)
    is_admin = _flag(user, "isAdmin", msid)
    is_deleted = _flag(user, "isDeleted", msid)
    is_archive = _flag(user, "isArchive", msid)
    role_ids, unmatched = roles_for_user(
        tags, is_admin=bool(is_admin), is_archive=bool(is_archive), is_deleted=bool(is_deleted)
    )
    record = {
        "msId": msid,
        "userPrincipalName": _text(user, "userPrincipalName", msid),
        "email": _text(user, "email", msid),
        "displayName": display_name,
        "assigned": _flag(user, "assigned", msid),
        "isAdmin": is_admin,
        "isDeleted": is_deleted,
        "isArchive": is_archive,
        "tags": tags,
        "disabled": is_disabled(role_ids),
    }
    return UserRecord(record, role_ids, unmatched)


def membership_records(user: UserRecord) -> list[dict[str, Any]]:
    """The `role_memberships` records of one user."""
    msid = user.record["msId"]
    upn = user.record["userPrincipalName"]
    return [
        {"roleId": role_id, "msId": msid, "userPrincipalName": upn} for role_id in user.role_ids
    ]
