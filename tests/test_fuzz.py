"""Property tests (issue 5): role rules, settings validation, the response parser, the
checks across a tenant's pages, and the parsers of GET /external/tenant and Retry-After.

Expected values come from the contract (spanning.md, Part 2), written out here by
hand; nothing below calls the tap's own normaliser to decide what it should return.
Every property is derandomised with no example database, so CI runs the same examples.
"""

from __future__ import annotations

import email.utils
import math
import re
import string
import time
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, example, given, settings
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
from tap_spanning.roles import roles_for_user
from tap_spanning.settings import Settings, SettingsError, resolve_settings
from tap_spanning.streams import UsersStream

# The number of examples comes from the profile tests/conftest.py loads: 200 in the whole
# suite, fewer in `make check`.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------- the contract's tables

# Role ids in the order the tap must return them, and the words of each role's tag.
CONTRACT_ROLES: list[tuple[str, list[list[str]]]] = [
    ("user", [["user"]]),
    ("shared_mailbox", [["shared", "mailbox"]]),
    ("global_admin", [["global", "admin"]]),
    ("spanning_admin", [["spanning", "admin"]]),
    ("archived", [["archived"], ["archive"]]),  # "Archive" and "Archived" both mean it
    ("no_microsoft_license", [["no", "microsoft", "license"]]),
    ("deleted_from_microsoft", [["deleted", "from", "microsoft"]]),
]
ORDER = [role_id for role_id, _ in CONTRACT_ROLES]
FLAG_ROLES = {
    "is_admin": "spanning_admin",
    "is_archive": "archived",
    "is_deleted": "deleted_from_microsoft",
}
# Every role tag with case, separators and the "(read-only)" suffix taken away.
FOLDED_ROLE_TAGS = {"".join(words) for _, spellings in CONTRACT_ROLES for words in spellings}
SEPARATORS = ["", " ", "_", "-", "  ", "__", "--", " _", "- ", "\t"]
NEAR_MISSES = [
    "Admin",
    "Users",
    "Shared",
    "Global",
    "Mailbox",
    "Archiveds",
    "read-only",
    "(read-only)",
    "Global Admin Team",
    "No License",
    "Deleted",
    "Microsoft",
    "Spanning",
    "VIP",
    "Finance",
    "Global Admin (read-write)",
    "user.",
    "user/admin",
    "",
]


def might_name_a_role(tag: str) -> bool:
    """Conservatively: could the contract's rule read this tag as a role?

    Case (lower() or casefold()), whitespace, "_" and "-" are ignored, and so is one
    trailing "(read-only)". Used only to keep random "unknown" tags unknown.
    """
    for cased in (tag.lower(), tag.casefold()):
        folded = "".join(c for c in cased if not (c.isspace() or c in "_-"))
        if folded in FOLDED_ROLE_TAGS or folded.removesuffix("(readonly)") in FOLDED_ROLE_TAGS:
            return True
    return False


@st.composite
def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def role_tag(draw: st.DrawFn, role_id: str) -> str:
    """A spelling of the role's tag: any case, any separators, maybe "(read-only)"."""
    words = draw(st.sampled_from(dict(CONTRACT_ROLES)[role_id]))
    parts = []
    for index, word in enumerate(words):
        if index:
            parts.append(draw(st.sampled_from(SEPARATORS)))
        parts.append(draw(random_case(word)))
    tag = "".join(parts)
    if draw(st.booleans()):
        hyphen = draw(st.sampled_from(["-", " ", "_", "--", ""]))
        suffix = draw(random_case(f"(read{hyphen}only)"))
        tag += draw(st.sampled_from(["", " ", "  ", "_"])) + suffix
    edges = st.sampled_from(["", "", " ", "  ", "\t", "_"])
    return draw(edges) + tag + draw(edges)


unknown_tag = st.one_of(st.sampled_from(NEAR_MISSES), st.text(max_size=24)).filter(
    lambda tag: not might_name_a_role(tag)
)


@st.composite
def tagged_user(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    """(tags, the role ids they name in ORDER, the unknown tags in their order)."""
    roles = draw(st.sets(st.sampled_from(ORDER)))
    pieces: list[tuple[str, bool]] = []
    for role_id in roles:
        for _ in range(draw(st.integers(1, 2))):  # a role may be tagged twice
            pieces.append((draw(role_tag(role_id)), True))
    pieces += [(tag, False) for tag in draw(st.lists(unknown_tag, max_size=4))]
    pieces = draw(st.permutations(pieces))
    tags = [tag for tag, _ in pieces]
    unknown = [tag for tag, known in pieces if not known]
    return tags, [role_id for role_id in ORDER if role_id in roles], unknown


# ---------------------------------------------------------------- (a) tags to roles


@FUZZ
@given(tagged_user())
@example(
    (["Archived (Read-Only)", "shared__mailbox", "VIP"], ["shared_mailbox", "archived"], ["VIP"])
)
@example((["GLOBAL-ADMIN(read-only)", " user "], ["user", "global_admin"], []))
def test_tags_name_exactly_their_roles(case: tuple[list[str], list[str], list[str]]) -> None:
    tags, roles, unknown = case
    assert roles_for_user(tags, is_admin=False, is_archive=False, is_deleted=False) == (
        roles,
        unknown,
    )


@FUZZ
@given(
    st.one_of(st.none(), tagged_user()),
    st.fixed_dictionaries({flag: st.booleans() for flag in FLAG_ROLES}),
)
def test_flags_add_their_roles_whatever_the_tags(
    case: tuple[list[str], list[str], list[str]] | None, flags: dict[str, bool]
) -> None:
    tags: list[str] | None
    unknown: list[str]
    if case is None:  # no tags key, or tags: null: a plain user
        tags, roles, unknown = None, ["user"], []
    else:
        tags, roles, unknown = case
    wanted = set(roles) | {role for flag, role in FLAG_ROLES.items() if flags[flag]}
    assert roles_for_user(tags, **flags) == ([r for r in ORDER if r in wanted], unknown)


# ---------------------------------------------------------------- (b) settings

KEY = "RECOGNISABLE-api-key-7d1b4c3e9a6f"
KNOWN_SETTINGS = (
    "admin_email",
    "api_key",
    "base_url",
    "region",
    "tenant_id",
    "page_size",
    "request_timeout",
    "max_retries",
    "max_retry_wait",
    "max_concurrent_tenants",
)
# The fleet form's settings: random extra keys leave them out, to stay in the one-tenant form.
FLEET_SETTINGS = ("tenants", "tenant_api_keys")
TENANT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# Any JSON value; integers stay within what a float can hold (see the bug below).
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1000), max_value=2**1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
numbers = st.one_of(
    st.integers(-5, 2000),
    st.floats(-5, 2000, allow_nan=False),
    st.sampled_from(["10", " 5 ", "1e3", "0.5", "-1", "abc", "", "1_000", "3.0"]),
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "admin_email": st.sampled_from(
        ["admin@contoso.example", "a@b", "no-at-sign", "a:b@c.example", " x@y.example ", ""]
    ),
    "api_key": st.sampled_from([KEY, f"  {KEY}  ", [KEY], {"key": KEY}]),
    "base_url": st.sampled_from(
        [
            "http://127.0.0.1:8765",
            "http://localhost/external/",
            "http://[::1]:9000",
            "https://o365-api-eu.spanningbackup.com",
            "https://o365-api-us.spanningbackup.com/external",
            "http://o365-api-us.spanningbackup.com",
            "https://evil.example",
            "https://127.0.0.1:99999",
            "ftp://127.0.0.1",
            "http://u:p@127.0.0.1",
            "http://127.0.0.1/external/users",
            "",
        ]
    ),
    "region": st.sampled_from(["us", "eu", "ap", "ca", "uk", "af", "US", "mars", ""]),
    "tenant_id": st.sampled_from(
        ["contoso", "a.b_c-1", " padded ", "x" * 64, "x" * 65, "with space", "é", ""]
    ),
    "page_size": numbers,
    "request_timeout": numbers,
    "max_retries": numbers,
    "max_retry_wait": numbers,
    "max_concurrent_tenants": numbers,
}
ABSENT = object()
VALID_CONFIG: dict[str, Any] = {
    "admin_email": "admin@contoso.example",
    "api_key": KEY,
    "base_url": "http://127.0.0.1:8765",
    "page_size": 100,
    "request_timeout": 30,
    "max_retries": 3,
    "max_retry_wait": 1.5,
}


def _apply(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    changed = {**config, **changes}
    return {name: value for name, value in changed.items() if value is not ABSENT}


# A valid config with up to four settings changed (to a plausible value, any JSON value,
# or removed), or a config made of nothing but random settings; plus unknown keys.
mutated_configs = st.lists(st.sampled_from(KNOWN_SETTINGS), unique=True, max_size=4).flatmap(
    lambda names: st.fixed_dictionaries(
        {name: st.one_of(PLAUSIBLE[name], json_values, st.just(ABSENT)) for name in names}
    ).map(lambda changes: _apply(VALID_CONFIG, changes))
)
random_configs = st.fixed_dictionaries(
    {}, optional={name: st.one_of(PLAUSIBLE[name], json_values) for name in KNOWN_SETTINGS}
)
configs = st.tuples(
    st.one_of(mutated_configs, random_configs),
    st.dictionaries(
        st.text(max_size=12).filter(lambda name: name not in KNOWN_SETTINGS + FLEET_SETTINGS),
        json_values,
        max_size=3,
    ),
).map(lambda pair: {**pair[1], **pair[0]})


@FUZZ
@given(configs)
@example({"admin_email": "admin@contoso.example", "api_key": KEY, "region": "eu"})
@example({"admin_email": "a@b.example", "api_key": KEY, "base_url": "http://127.0.0.1:1"})
def test_settings_resolve_or_say_which_setting_is_wrong(config: dict[str, Any]) -> None:
    # Anything but Settings or SettingsError escapes here and fails the property.
    resolved: Settings | SettingsError
    try:
        resolved = resolve_settings(config)
    except SettingsError as error:
        resolved = error
    if isinstance(resolved, SettingsError):
        assert resolved.errors
        for message in resolved.errors:
            assert any(name in message for name in KNOWN_SETTINGS), message
            assert KEY not in message
        assert KEY not in str(resolved)
        return
    (tenant,) = resolved.tenants
    assert tenant.api_key == str(config["api_key"]).strip()
    assert tenant.api_key not in repr(resolved)
    assert tenant.admin_email == str(config["admin_email"]).strip()
    wanted_id = config.get("tenant_id")
    assert tenant.tenant_id == ("default" if wanted_id is None else str(wanted_id).strip())
    assert TENANT_ID.fullmatch(tenant.tenant_id)
    assert 1 <= resolved.page_size <= 1000
    assert resolved.request_timeout > 0
    assert math.isfinite(resolved.request_timeout)
    assert 1 <= resolved.max_retries <= 100
    assert resolved.max_retry_wait >= 0
    assert 1 <= resolved.max_concurrent_tenants <= 64


@pytest.mark.parametrize("name", ["request_timeout", "max_retry_wait"])
def test_a_huge_integer_setting_is_a_settings_error(name: str) -> None:
    config = {"admin_email": "a@b.example", "api_key": KEY, "base_url": "http://127.0.0.1:1"}
    with pytest.raises(SettingsError) as caught:
        resolve_settings({**config, name: 10**400})
    assert name in str(caught.value)


# ---------------------------------------------------------------- (c) the response parser

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


# ---------------------------------------------------------------- (d) across a tenant's pages

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


# ---------------------------------------------------------------- (e) GET /external/tenant

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


# ---------------------------------------------------------------- (f) Retry-After


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


def test_a_printable_key_is_recognisable() -> None:
    # The fuzzed configs rely on KEY never being produced by chance.
    assert set(KEY) <= set(string.ascii_letters + string.digits + "-")
