"""From API payloads to the tap's records. Pure functions: no I/O, no logging.

A page whose shape is wrong (not an object, `users` not a list) may be a proxy's
error page or a cut-off body, so it raises `PageError`, which the client retries.
A user whose content is wrong raises `UserError`, which fails the tenant at once:
asking again will not change the tenant's data, and a user is never dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypedDict

from tap_spanning.backups import (
    MAX_COUNT,
    BackupError,
    BackupWindow,
    PageError,
    count_value,
    user_backup_records,
)
from tap_spanning.data_errors import TenantDataError
from tap_spanning.redaction import quote
from tap_spanning.roles import is_disabled, roles_for_user


class UserError(TenantDataError):
    """A user in a page cannot be turned into a record."""

    reason = "unreadable users page"


class PagesNotAdvancing(UserError):
    """A tenant's pages repeat users they already gave: pagination is not advancing."""

    reason = "pagination not advancing"


# How many of a tenant's latest users are remembered to catch a page that repeats an
# earlier one: enough for several pages, the same whatever the tenant's size.
REPEAT_WINDOW_USERS = 2_000


class ApiUser(TypedDict, total=False):
    """The fields of an API user the tap reads (docs/streams.md). A page is
    decoded into these alone: a field the tap never reads (a server may add any) is
    skipped unread, not held in memory for every user of every page in flight."""

    msId: Any
    userPrincipalName: Any
    email: Any
    displayName: Any
    userDisplayName: Any
    assigned: Any
    isAdmin: Any
    isDeleted: Any
    isArchive: Any
    tags: Any
    backupSummary: Any


class UsersPayload(TypedDict, total=False):
    """A users page as decoded (`ApiUser`); its shape is checked by `parse_page`."""

    users: list[ApiUser]
    nextLink: Any


@dataclass(frozen=True)
class UsersPage:
    """One page of `GET /external/users`."""

    users: list[Any]
    next_link: str | None


@dataclass(frozen=True)
class TenantPage:
    """One page of a tenant's users as records, checked, and when the page came back."""

    tenant_id: str
    users: list[UserRecord]
    extracted_at: datetime


@dataclass(frozen=True)
class UserRecord:
    """A `users` record, with the role ids and unmatched tags derived from it, and its
    `user_backups` records when they were asked for."""

    record: dict[str, Any]
    role_ids: list[str]
    unmatched_tags: list[str]
    backups: list[dict[str, Any]] = field(default_factory=list)


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


def user_record(user: object, tenant_id: str, sync_version: int) -> UserRecord:
    """Turn one API user into a `users` record and its roles (docs/streams.md).

    `sync_version` is the run's version, on every record of tenant data
    (docs/many-tenants.md: the current-rows rule).
    """
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
        "tenant_id": tenant_id,
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
        "sync_version": sync_version,
    }
    return UserRecord(record, role_ids, unmatched)


def membership_records(user: UserRecord) -> list[dict[str, Any]]:
    """The `role_memberships` records of one user."""
    record = user.record
    tenant_id, msid, upn = record["tenant_id"], record["msId"], record["userPrincipalName"]
    version = record["sync_version"]
    return [
        {
            "tenant_id": tenant_id,
            "roleId": role_id,
            "msId": msid,
            "userPrincipalName": upn,
            "sync_version": version,
        }
        for role_id in user.role_ids
    ]


class PageSequence:
    """The checks that span one tenant's pages: no user twice, pages that advance.

    Keyset pages should never overlap. If a page repeats users of the page just before
    (an offset that is inclusive, say), the repeats are dropped, counted in
    `repeats_dropped`, so that they are not emitted twice. A page of nothing but those
    repeats, or a page that repeats a user of an earlier page, means pagination is not
    advancing (`PagesNotAdvancing`); a page listing one msId twice cannot be trusted
    (`UserError`). The earlier pages are remembered up to REPEAT_WINDOW_USERS users, so
    that memory stays flat whatever the tenant's size; the counters' page bound
    (docs/many-tenants.md) catches a loop longer than that.
    """

    def __init__(
        self, tenant_id: str, sync_version: int, *, backups: BackupWindow | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.sync_version = sync_version
        self.backups = backups  # each user's backupSummary too, for these days
        self.page_number = 0
        self.repeats_dropped = 0
        self._previous_page: set[str] = set()
        # msId -> page number, for the pages before the previous one, oldest first.
        self._earlier: dict[str, int] = {}
        self._earlier_pages: deque[set[str]] = deque()

    def users_of(self, page: UsersPage) -> list[UserRecord]:
        """The records of the next page, in the order sent."""
        self.page_number += 1
        number = self.page_number
        users: list[UserRecord] = []
        seen: set[str] = set()
        repeats = 0
        for raw in page.users:
            try:
                user = user_record(raw, self.tenant_id, self.sync_version)
                if self.backups is not None:
                    backups = user_backup_records(raw, user.record, self.backups)
                    user = replace(user, backups=backups)
            except (UserError, BackupError) as exc:
                raise type(exc)(f"page {number} of users: {exc}") from None
            msid = user.record["msId"]
            if msid in seen:
                raise UserError(
                    f"page {number} of users lists msId {msid} twice; "
                    "the response cannot be trusted"
                )
            seen.add(msid)
            if msid in self._previous_page:
                repeats += 1
                continue
            if msid in self._earlier:
                raise PagesNotAdvancing(
                    f"page {number} of users repeats msId {msid} of page "
                    f"{self._earlier[msid]}: pagination is not advancing"
                )
            users.append(user)
        if repeats and not users:
            raise PagesNotAdvancing(
                f"page {number} of users only repeats the previous page: "
                "pagination is not advancing"
            )
        self.repeats_dropped = repeats
        self._remember(self._previous_page, number - 1)
        self._previous_page = seen
        return users

    def _remember(self, page: set[str], number: int) -> None:
        self._earlier.update(dict.fromkeys(page, number))
        self._earlier_pages.append(page)
        while len(self._earlier) > REPEAT_WINDOW_USERS and self._earlier_pages:
            for msid in self._earlier_pages.popleft():
                self._earlier.pop(msid, None)


# The counters of `GET /external/tenant`, and what each counts (the `tenants` schema).
TENANT_COUNTERS = {
    "licenses": "Standard licenses bought",
    "archivedLicenses": "Archive licenses bought",
    "users": "Users in the tenant",
    "assigned": "Licenses assigned",
    "assignedStandard": "Standard licenses assigned",
    "assignedArchive": "Archive licenses assigned",
}


class CounterError(TenantDataError):
    """A license counter no warehouse can hold (negative, fractional, too large): the
    tenant fails, and asking again would not change it."""

    reason = "unreadable tenant counters"


def parse_tenant(payload: object) -> dict[str, Any]:
    """The counters of `GET /external/tenant`: missing ones are None, status as sent."""
    if not isinstance(payload, dict):
        raise PageError(f"expected a JSON object of counters, got {type(payload).__name__}")
    counters: dict[str, Any] = {}
    for name in TENANT_COUNTERS:
        value = payload.get(name)
        if isinstance(value, bool | str | list | dict):
            raise PageError(f"counter {name} is {quote(value)}, not a whole number")
        count = None if value is None else count_value(value)
        if value is not None and count is None:
            raise CounterError(
                f"counter {name} of GET /external/tenant is not a whole number from 0 to "
                f"{MAX_COUNT}"
            )
        counters[name] = count
    status = payload.get("status")
    if status is not None and not isinstance(status, str):
        raise PageError(f"status is {quote(status)}, not a string")
    counters["status"] = status
    return counters
