"""Property tests of what the API answers: a user, a users page, the checks across a
tenant's pages, GET /external/tenant's counters, and Retry-After.

Expected values come from the contract (docs/streams.md), written out here by hand;
nothing below calls the tap's own normaliser to decide what it should return. Every
property is derandomised with no example database, so CI runs the same examples.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tap_spanning.backups import PageError
from tap_spanning.client import retry_after_seconds
from tap_spanning.records import (
    CounterError,
    PageSequence,
    UserError,
    UsersPage,
    parse_page,
    parse_tenant,
    user_record,
)
from tap_spanning.streams import UsersStream
from tests.fuzzing import (
    FUZZ,
    ORDER,
    json_values,
)

# ---------------------------------------------------------------- the response parser

USERS_SCHEMA = UsersStream.schema
USER_FIELDS = ("msId", "userPrincipalName", "email", "displayName", "assigned", "isAdmin")
FLAGS = ("assigned", "isAdmin", "isDeleted", "isArchive")
TEXTS = ("msId", "userPrincipalName", "email", "displayName", "userDisplayName")
# Hand-written: the spellings of a boolean the tap accepts, and their meaning.
BOOLEAN_MEANING = {
    "true": True,
    "TRUE": True,
    "1": True,
    "yes": True,
    "false": False,
    "False": False,
    "0": False,
    "no": False,
    "No": False,
}
BOOLEAN_STRINGS = list(BOOLEAN_MEANING)
boolean_like = st.one_of(
    st.booleans(),
    st.sampled_from([*BOOLEAN_STRINGS, " yes ", "maybe", "", "t", "on"]),
    st.sampled_from([0, 1, 2, -1, 1.0, 0.0, [], {}]),
)
text_like = st.one_of(st.text(max_size=20), st.uuids().map(str))
tags_like = st.one_of(
    st.lists(st.text(max_size=12), max_size=4),
    st.lists(st.sampled_from(["User", "Global Admin", "ARCHIVE", "VIP", "deleted_from_microsoft"])),
)
# A user the API could send: msId a GUID, every other field of its type, null or absent.
valid_user = st.fixed_dictionaries(
    {"msId": st.uuids().map(str)},
    optional={
        **{name: st.one_of(st.none(), st.text(max_size=20)) for name in TEXTS[1:]},
        **{
            name: st.one_of(st.none(), st.booleans(), st.sampled_from([*BOOLEAN_STRINGS, 0, 1]))
            for name in FLAGS
        },
        "tags": st.one_of(st.none(), tags_like),
        "backupSummary": json_values,
        "inActiveDirectory": json_values,
    },
)
# The same with one field set to anything at all.
broken_user = st.tuples(
    valid_user, st.sampled_from([*TEXTS, *FLAGS, "tags"]), st.one_of(json_values, boolean_like)
).map(lambda parts: {**parts[0], parts[1]: parts[2]})
# Any value in any field.
wild_user = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.one_of(text_like, json_values) for name in TEXTS},
        **{name: st.one_of(boolean_like, json_values) for name in FLAGS},
        "tags": st.one_of(tags_like, json_values),
    },
)
user_shaped = st.one_of(valid_user, broken_user, wild_user)


TENANT = "contoso-eu"
SYNC_VERSION = 1_795_000_000_000  # a run's version: milliseconds since the epoch


def check_record(raw: Any) -> None:
    """user_record(raw) is a valid `users` record true to its input, or a UserError."""
    try:
        user = user_record(raw, TENANT, SYNC_VERSION)
    except UserError:
        return
    record = user.record
    jsonschema.validate(record, USERS_SCHEMA)
    assert next(iter(record)) == "tenant_id"
    assert record["tenant_id"] == TENANT
    assert set(record) == {
        "tenant_id",
        *USER_FIELDS,
        "isDeleted",
        "isArchive",
        "tags",
        "disabled",
        "sync_version",
    }
    assert record["sync_version"] == SYNC_VERSION
    assert isinstance(record["msId"], str)
    assert record["msId"].strip()
    assert isinstance(record["disabled"], bool)
    for name in ("msId", "userPrincipalName", "email"):
        assert record[name] == raw.get(name)
    shown = raw.get("displayName")
    assert record["displayName"] == (shown if shown is not None else raw.get("userDisplayName"))
    assert record["tags"] == raw.get("tags")
    # Derived roles follow the rules, whatever else the user holds.
    assert user.role_ids == [role for role in ORDER if role in user.role_ids]
    assert record["disabled"] == bool({"archived", "deleted_from_microsoft"} & set(user.role_ids))
    for flag, role in (("isAdmin", "spanning_admin"), ("isArchive", "archived")):
        if record[flag] is True:
            assert role in user.role_ids
    if record["isDeleted"] is True:
        assert "deleted_from_microsoft" in user.role_ids
    if record["tags"] is None:
        assert "user" in user.role_ids
    # Flags: a boolean as sent, a recognised spelling as what it means, null as null.
    for flag in FLAGS:
        value = raw.get(flag)
        if value is None or isinstance(value, bool):
            assert record[flag] is value
        elif isinstance(value, str) and value in BOOLEAN_MEANING:
            assert record[flag] is BOOLEAN_MEANING[value]
        else:
            assert isinstance(record[flag], bool)


@FUZZ
@given(st.one_of(json_values, user_shaped))
def test_a_user_becomes_a_valid_record_or_a_user_error(raw: Any) -> None:
    check_record(raw)


pages = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "users": st.one_of(
                st.lists(st.one_of(user_shaped, json_values), max_size=4), json_values
            )
        },
        optional={
            "nextLink": st.one_of(st.none(), st.just(""), text_like, json_values),
            "total": json_values,
        },
    ),
)


@FUZZ
@given(pages)
@example({"users": [], "nextLink": ""})
@example({"users": [{"msId": "x"}], "nextLink": None})
def test_a_body_becomes_a_page_or_a_page_error(payload: Any) -> None:
    try:
        page = parse_page(payload)
    except PageError:
        return
    assert isinstance(page, UsersPage)
    assert isinstance(page.users, list)
    assert page.users is payload["users"]
    assert page.next_link is None or (isinstance(page.next_link, str) and page.next_link)
    if payload.get("nextLink") not in (None, ""):
        assert page.next_link == payload["nextLink"]
    for raw in page.users:
        check_record(raw)


# ---------------------------------------------------------------- across a tenant's pages

POOL = [f"00000000-0000-4000-8000-{n:012d}" for n in range(8)]
NO_MSID = -1  # a user the tap cannot key
page_of_indexes = st.lists(st.sampled_from([*range(len(POOL)), NO_MSID]), max_size=6)


def raw_user(index: int) -> dict[str, Any]:
    if index == NO_MSID:
        return {"userPrincipalName": "nobody@contoso.example", "tags": ["User"]}
    return {"msId": POOL[index], "userPrincipalName": f"u{index}@contoso.example"}


@FUZZ
@given(st.lists(page_of_indexes, min_size=1, max_size=6))
@example([[0, 1], [1, 2], [2, 3]])  # each page repeats one user of the page before
@example([[0, 1], [], [0, 1]])
@example([[0, 1], [0, 1]])
@example([[0, 1, 0]])
def test_pages_give_each_user_once_or_a_user_error(pages: list[list[int]]) -> None:
    """The contract's rules, written out: a page's users in order, minus those the page
    before also listed (counted); a page listing an msId twice, a page of nothing but
    repeats, a page repeating a user of an earlier page, or a user without msId fail,
    naming the page."""
    sequence = PageSequence(TENANT, SYNC_VERSION)
    previous: set[str] = set()
    earlier: dict[str, int] = {}  # msId -> the page before the previous one that gave it
    for number, indexes in enumerate(pages, start=1):
        page = UsersPage([raw_user(index) for index in indexes], "next")
        # What the page must give, or the error it must raise.
        error = None
        seen: list[str] = []
        for index in indexes:
            if index == NO_MSID:
                error = f"page {number} of users: a user has no msId"
                break
            if POOL[index] in seen:
                error = f"page {number} of users lists msId {POOL[index]} twice"
                break
            if POOL[index] not in previous and POOL[index] in earlier:
                first = earlier[POOL[index]]
                error = f"page {number} of users repeats msId {POOL[index]} of page {first}"
                break
            seen.append(POOL[index])
        kept = [msid for msid in seen if msid not in previous]
        if error is None and seen and not kept:
            error = f"page {number} of users only repeats the previous page"
        if error is not None:
            with pytest.raises(UserError) as caught:
                sequence.users_of(page)
            assert str(caught.value).startswith(error)
            return
        users = sequence.users_of(page)
        assert [user.record["msId"] for user in users] == kept
        assert all(user.record["tenant_id"] == TENANT for user in users)
        assert sequence.repeats_dropped == len(seen) - len(kept)
        assert sequence.page_number == number
        earlier.update(dict.fromkeys(previous, number - 1))
        previous = set(seen)


# ---------------------------------------------------------------- GET /external/tenant

COUNTER_NAMES = (
    "licenses",
    "archivedLicenses",
    "users",
    "assigned",
    "assignedStandard",
    "assignedArchive",
)
counters_like = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            **{
                name: st.one_of(st.integers(-5, 10**6), st.integers(2**53 - 2, 2**60), json_values)
                for name in COUNTER_NAMES
            },
            "status": st.one_of(st.sampled_from(["trial", "paid", "expired"]), json_values),
            "extra": json_values,
        },
    ),
)


@FUZZ
@given(counters_like)
@example({"licenses": 15, "archivedLicenses": 5, "users": 26, "assigned": 11,
          "assignedStandard": 9, "assignedArchive": 2, "status": "paid"})  # fmt: skip
@example({"licenses": True})
@example({"licenses": 1.5})
@example({"licenses": 15.0})  # a whole number sent as a float, read as the backup counts are
@example({"licenses": 10**40})
@example({"assigned": -3})
@example({"users": 2**53})
def test_tenant_counters_are_whole_numbers_or_a_page_error(payload: Any) -> None:
    """Each counter a whole number from 0 to 2^53-1 or null (absent), status a string or
    null. A counter of another JSON type, or a body that is not an object, is not what was
    asked for (PageError, retried like a cut-off page); a number no warehouse holds
    (negative, fractional, too large) fails the tenant (CounterError, not retried)."""
    expected: type[Exception] | None = None
    if not isinstance(payload, dict):
        expected = PageError
    else:
        for name in COUNTER_NAMES:  # the first wrong counter, in the order they are read
            value = payload.get(name)
            whole = type(value) is int or (type(value) is float and value.is_integer())
            if value is None or (whole and 0 <= value <= 2**53 - 1):
                continue
            expected = PageError if isinstance(value, bool | str | list | dict) else CounterError
            break
        status = payload.get("status")
        if expected is None and not (status is None or isinstance(status, str)):
            expected = PageError
    if expected is not None:
        with pytest.raises(expected):
            parse_tenant(payload)
        return
    counters = parse_tenant(payload)
    assert counters == {name: payload.get(name) for name in (*COUNTER_NAMES, "status")}


# ---------------------------------------------------------------- Retry-After


@FUZZ
@given(st.one_of(st.integers(-100, 10**6), st.floats(0, 10**6, allow_nan=False)))
def test_retry_after_in_seconds(seconds: float) -> None:
    assert retry_after_seconds(str(seconds)) == max(0.0, float(seconds))


@FUZZ
@given(st.integers(-3600, 3600))
def test_retry_after_as_an_http_date(ahead: int) -> None:
    now = time.time()
    header = email.utils.formatdate(now + ahead, usegmt=True)  # whole seconds
    assert retry_after_seconds(header, now=now) == pytest.approx(max(0.0, ahead), abs=1.0)


@pytest.mark.parametrize("header", [None, "", "  ", "soon", "nan", "Thu, 99 Foo 2024", "1 day"])
def test_retry_after_that_says_nothing_usable(header: str | None) -> None:
    assert retry_after_seconds(header) is None
