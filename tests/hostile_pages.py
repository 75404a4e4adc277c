"""Hostile pages: what the tap accepts, what it refuses, and how.

`CASES` below is the contract for hostile pages, written as data: each case says
whether the sync must accept it (exit 0, output equal to the tenant's ground truth)
or fail (exit non-zero, the phrase in the last stderr line), and how many requests
the emulator may see. Every sync first asks GET /external/tenant once (the tenant's
credentials and counters, docs/streams.md, "What a sync emits"), then the users pages. Unless a
case says otherwise the hostile content is on page 2 of a 3-page tenant (6 users,
page_size 2; the page hooks are numbered by users request), so "fails at once" means
exactly 3 requests (the tenant, pages 1 and 2), and a retried page means the tenant,
page 1 and max_retries (2) tries of page 2 = 4 requests. A page is checked before the
next one is asked for, so a page whose *content* fails also ends at 3. An accepted
sync asks the tenant and every page; a failed tenant is not asked again.

`assert_hostile_case_handled` runs one case and checks it: tests/inprocess/test_bad_responses.py
runs the cases in-process, tests/process/test_bad_responses.py those of PROCESS_CASES as
the console script. Every run is at DEBUG; like every run of the tap, it is grepped for
every form of the key (tests/tapdriver.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import SpanningEmulator, expected_output, generate_users

from tests.emulator_requests import paths_of
from tests.hostile_server import TENANT_PATH, USERS_PATH, HostileServer, by_users_request
from tests.leaks import ADMIN_EMAIL
from tests.odd_tenants import ODD_TENANTS, OddTenant, expected_of
from tests.tapdriver import DEBUG_ENV, run_in_process, run_tap
from tests.taprun import assert_output_is

ACCEPT, FAIL = "accept", "fail"
TENANT = generate_users(6, seed=31)
PAGE_SIZE = 2
PAGES = 3
MAX_RETRIES = 2
ABSENT = object()  # a field to delete rather than set
# The first user of page 1, as the emulator pages the tenant.
FIRST_MSID = expected_output(TENANT)["users"][0]["msId"]

Page = dict[str, Any]
PageHook = Callable[[int, Page], Any]


@dataclass(frozen=True)
class Case:
    id: str
    outcome: str  # ACCEPT or FAIL
    # FAIL: must be in the last stderr line; ACCEPT: must be in stderr ("" = nothing).
    phrase: str
    requests: int  # requests the emulator sees, in all
    bug: str = ""  # set when the tap does not do this yet: the test is a strict xfail


TENANT_REQUESTS = 1  # GET /external/tenant, before the first users page
AT_ONCE = TENANT_REQUESTS + 2  # the tenant, pages 1 and 2: page 2 fails before page 3
RETRIED = TENANT_REQUESTS + 1 + MAX_RETRIES  # the tenant, page 1, every try of page 2
SYNCED = TENANT_REQUESTS + PAGES  # the tenant and every page

# fmt: off
CASES: list[Case] = [
    # -- a page that is not a page: retried (it may be a proxy's or a cut-off body), then fails
    Case("page-users-is-a-string",  FAIL, "'users' is str, not a list", RETRIED),
    Case("page-users-is-an-object", FAIL, "'users' is dict, not a list", RETRIED),
    Case("page-users-is-null",      FAIL, "'users' is NoneType, not a list", RETRIED),
    Case("page-is-a-list",          FAIL, "expected a JSON object with 'users', got list", RETRIED),
    Case("page-has-no-users",       FAIL, "has no 'users'", RETRIED),
    Case("page-nextlink-is-number", FAIL, "'nextLink' is int, not a string", RETRIED),
    # -- a user the tap cannot key or type: fails at once, naming the page
    Case("user-is-a-string",        FAIL, "page 2 of users: a user is 'not a user', not a JSON object", AT_ONCE),  # noqa: E501
    Case("user-is-null",            FAIL, "page 2 of users: a user is None, not a JSON object", AT_ONCE),  # noqa: E501
    Case("msid-absent",             FAIL, "page 2 of users: a user has no msId", AT_ONCE),
    Case("msid-null",               FAIL, "page 2 of users: a user has no msId", AT_ONCE),
    Case("msid-empty-string",       FAIL, "page 2 of users: a user has no msId", AT_ONCE),
    Case("msid-number",             FAIL, "page 2 of users: a user has no msId", AT_ONCE),
    Case("boolean-maybe",           FAIL, "isAdmin is 'maybe', not a boolean", AT_ONCE),
    Case("boolean-2",               FAIL, "assigned is 2, not a boolean", AT_ONCE),
    Case("boolean-empty-list",      FAIL, "isDeleted is [], not a boolean", AT_ONCE),
    Case("tags-is-a-string",        FAIL, "tags is 'Global Admin', not a list of strings", AT_ONCE),
    Case("tags-is-an-object",       FAIL, "tags is {'role': 'User'}, not a list of strings", AT_ONCE),  # noqa: E501
    Case("tags-holds-a-number",     FAIL, "tags is ['User', 7], not a list of strings", AT_ONCE),
    Case("tags-holds-null",         FAIL, "tags is ['User', None], not a list of strings", AT_ONCE),
    Case("display-name-is-number",  FAIL, "displayName is 42, not a string", AT_ONCE),
    # -- pages that overlap or repeat
    Case("msid-twice-in-one-page",  FAIL, "twice; the response cannot be trusted", AT_ONCE),
    Case("page-only-repeats",       FAIL, "page 2 of users only repeats the previous page: pagination is not advancing", AT_ONCE),  # noqa: E501
    Case("page-repeats-an-earlier-page", FAIL, f"page 3 of users repeats msId {FIRST_MSID} of page 1: pagination is not advancing", TENANT_REQUESTS + 3),  # noqa: E501
    Case("page-repeats-some-users", ACCEPT, "Tenant default: page 2 of users repeats 1 users of the previous page; they are emitted once", SYNCED),  # noqa: E501
    Case("empty-page-with-nextlink", ACCEPT, "", SYNCED + 1),
    # -- a nextLink the tap must not follow: fails at once, nothing is sent there
    Case("nextlink-other-loopback-host", FAIL, "nextLink points to http://127.0.0.2", AT_ONCE),
    Case("nextlink-other-port",     FAIL, "refusing to send credentials there", AT_ONCE),
    Case("nextlink-lookalike-https-host", FAIL, "refusing to send credentials there", AT_ONCE),
    Case("nextlink-http-public-host", FAIL, "nextLink points to http://203.0.113.5:80", AT_ONCE),
    Case("nextlink-protocol-relative", FAIL, "refusing to send credentials there", AT_ONCE),
    Case("nextlink-with-userinfo",  FAIL, "nextLink must not carry a user name or password", AT_ONCE),  # noqa: E501
    Case("nextlink-file-url",       FAIL, "nextLink must be an http(s) URL, not 'file'", AT_ONCE),
    Case("nextlink-javascript-url", FAIL, "nextLink must be an http(s) URL, not 'javascript'", AT_ONCE),  # noqa: E501
    Case("nextlink-data-url",       FAIL, "nextLink must be an http(s) URL, not 'data'", AT_ONCE),
    Case("nextlink-other-path",     FAIL, "nextLink points to path '/external/tenant'", AT_ONCE),
    Case("nextlink-dot-segments",   FAIL, "nextLink points to path '/external/tenant'", AT_ONCE),
    Case("nextlink-first-page-url", FAIL, "nextLink already followed", AT_ONCE),
    # -- odd but valid content: accepted, emitted exactly
    Case("booleans-as-strings",     ACCEPT, "", SYNCED),
    Case("nulls-everywhere",        ACCEPT, "", SYNCED),
    Case("display-name-of-5-mb",    ACCEPT, "", SYNCED),
    Case("control-and-astral-text", ACCEPT, "names no Spanning role", SYNCED),
    Case("unknown-extra-fields",    ACCEPT, "", SYNCED),
]
# fmt: on


@dataclass
class Context:
    """What a case's setup may use: the emulator, and trap servers that must stay idle."""

    emulator: SpanningEmulator
    stack: ExitStack
    traps: list[HostileServer] = field(default_factory=list)

    def trap(self, host: str = "127.0.0.1", port: int = 0) -> HostileServer:
        server = self.stack.enter_context(HostileServer(host=host, port=port))
        self.traps.append(server)
        return server


Setup = Callable[[Context], list[dict[str, Any]]]
SETUPS: dict[str, Setup] = {}


def setup(*ids: str) -> Callable[[Setup], Setup]:
    def register(function: Setup) -> Setup:
        for case_id in ids:
            SETUPS[case_id] = function
        return function

    return register


def on_page_2(change: Callable[[Page], Any], *, persistent: bool = False) -> PageHook:
    """A hook that rewrites page 2 (and, if persistent, every try after it)."""

    def hook(number: int, page: Page) -> Any:
        if number == 2 or (persistent and number > 2):
            return change(copy.deepcopy(page))
        return page

    return hook


def first_user_of_page_2(**fields: Any) -> PageHook:
    def change(page: Page) -> Page:
        user = page["users"][0]
        for name, value in fields.items():
            if value is ABSENT:
                user.pop(name, None)
            else:
                user[name] = value
        return page

    return on_page_2(change)


def hostile(ctx: Context, hook: PageHook) -> list[dict[str, Any]]:
    """The tenant, with `hook` rewriting its pages (numbered by users request)."""
    ctx.emulator.page_hook = by_users_request(ctx.emulator, hook)
    return TENANT


# ---------------------------------------------------------------- setups: pages


@setup("page-users-is-a-string")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: {**p, "users": "alice,bob"}, persistent=True))


@setup("page-users-is-an-object")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: {**p, "users": p["users"][0]}, persistent=True))


@setup("page-users-is-null")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: {**p, "users": None}, persistent=True))


@setup("page-is-a-list")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: p["users"], persistent=True))


@setup("page-has-no-users")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(
        ctx, on_page_2(lambda p: {"value": p["users"], "nextLink": p["nextLink"]}, persistent=True)
    )


@setup("page-nextlink-is-number")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: {**p, "nextLink": 3}, persistent=True))


# ---------------------------------------------------------------- setups: users


def replace_first_user(value: Any) -> PageHook:
    def change(page: Page) -> Page:
        page["users"][0] = value
        return page

    return on_page_2(change)


USER_FIELDS: dict[str, dict[str, Any]] = {
    "msid-absent": {"msId": ABSENT},
    "msid-null": {"msId": None},
    "msid-empty-string": {"msId": ""},
    "msid-number": {"msId": 123},
    "boolean-maybe": {"isAdmin": "maybe"},
    "boolean-2": {"assigned": 2},
    "boolean-empty-list": {"isDeleted": []},
    "tags-is-a-string": {"tags": "Global Admin"},
    "tags-is-an-object": {"tags": {"role": "User"}},
    "tags-holds-a-number": {"tags": ["User", 7]},
    "tags-holds-null": {"tags": ["User", None]},
    "display-name-is-number": {"displayName": 42},
}


def user_fields_setup(fields: dict[str, Any]) -> Setup:
    return lambda ctx: hostile(ctx, first_user_of_page_2(**fields))


for _case_id, _fields in USER_FIELDS.items():
    SETUPS[_case_id] = user_fields_setup(_fields)


@setup("user-is-a-string")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, replace_first_user("not a user"))


@setup("user-is-null")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, replace_first_user(None))


# ---------------------------------------------------------------- setups: overlaps


def remembering_page_1(change: Callable[[Page, Page], Page]) -> PageHook:
    """A hook that changes page 2 knowing page 1 as it was sent."""
    first: list[Page] = []

    def hook(number: int, page: Page) -> Page:
        if number == 1:
            first.append(copy.deepcopy(page))
        if number == 2:
            return change(copy.deepcopy(page), first[0])
        return page

    return hook


@setup("msid-twice-in-one-page")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: {**p, "users": [*p["users"], p["users"][0]]}))


@setup("page-only-repeats")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(ctx, remembering_page_1(lambda p, first: {**p, "users": first["users"]}))


@setup("page-repeats-an-earlier-page")
def _(ctx: Context) -> list[dict[str, Any]]:
    # Page 3 repeats page 1's first user (not one of page 2, the page just before).
    first: list[Page] = []

    def hook(number: int, page: Page) -> Page:
        if number == 1:
            first.append(copy.deepcopy(page))
        if number == 3:
            return {**page, "users": [first[0]["users"][0], *page["users"]]}
        return page

    return hostile(ctx, hook)


@setup("page-repeats-some-users")
def _(ctx: Context) -> list[dict[str, Any]]:
    return hostile(
        ctx,
        remembering_page_1(lambda p, first: {**p, "users": [first["users"][-1], *p["users"]]}),
    )


@setup("empty-page-with-nextlink")
def _(ctx: Context) -> list[dict[str, Any]]:
    # Page 2 comes back empty, its nextLink leading to page 2's users after all (the
    # emulator ignores the extra parameter): nothing may be lost.
    return hostile(
        ctx,
        remembering_page_1(lambda p, first: {"users": [], "nextLink": first["nextLink"] + "&x=1"}),
    )


# ---------------------------------------------------------------- setups: nextLink


def next_link(ctx: Context, link: str) -> list[dict[str, Any]]:
    return hostile(ctx, on_page_2(lambda p: {**p, "nextLink": link}))


def _other_loopback_host(ctx: Context) -> str:
    trap = ctx.trap("127.0.0.2", ctx.emulator.server_port)
    return f"{trap.base_url}/external/users?size=2"


def _with_userinfo(ctx: Context) -> str:
    origin = ctx.emulator.base_url.removeprefix("http://")
    return f"http://someone:secret@{origin}/external/users?size=2"


# The nextLink each case puts on page 2, made from what the setup may use.
NEXT_LINKS: dict[str, Callable[[Context], str]] = {
    "nextlink-other-loopback-host": _other_loopback_host,
    "nextlink-other-port": lambda ctx: f"{ctx.trap().base_url}/external/users?size=2",
    "nextlink-lookalike-https-host": lambda ctx: (
        "https://o365-api-us.spanningbackup.com.evil.example/external/users"
    ),
    "nextlink-http-public-host": lambda ctx: "http://203.0.113.5/external/users?size=2",
    "nextlink-protocol-relative": lambda ctx: "//evil.example/external/users?size=2",
    "nextlink-with-userinfo": _with_userinfo,
    "nextlink-file-url": lambda ctx: "file:///etc/passwd",
    "nextlink-javascript-url": lambda ctx: "javascript:fetch('/external/users')",
    "nextlink-data-url": lambda ctx: 'data:application/json,{"users":[]}',
    "nextlink-other-path": lambda ctx: f"{ctx.emulator.base_url}/external/tenant",
    "nextlink-dot-segments": lambda ctx: "/external/users/../tenant?size=2",
}


def next_link_setup(make_link: Callable[[Context], str]) -> Setup:
    return lambda ctx: next_link(ctx, make_link(ctx))


for _case_id, _make_link in NEXT_LINKS.items():
    SETUPS[_case_id] = next_link_setup(_make_link)


@setup("nextlink-first-page-url")
def _(ctx: Context) -> list[dict[str, Any]]:
    emulator = ctx.emulator

    def back_to_page_1(page: Page) -> Page:
        # As the tap sent it: /external/users?size=2&... (GET /external/tenant came first)
        first = next(r.path for r in emulator.requests if r.path.startswith(USERS_PATH))
        return {**page, "nextLink": f"{emulator.base_url}{first}"}

    return hostile(ctx, on_page_2(back_to_page_1))


# ---------------------------------------------------------------- setups: odd but valid


def odd_tenant_setup(make: OddTenant) -> Setup:
    return lambda ctx: make(ctx.emulator, TENANT)


for _case_id, _make in ODD_TENANTS.items():
    SETUPS[_case_id] = odd_tenant_setup(_make)


# ---------------------------------------------------------------- the test


# These cases run the console script as a process (tests/process/test_bad_responses.py),
# for its real exit status and last stderr line (a page retried, then refused; a nextLink
# refused at once); the others run in the test process (tests/inprocess/test_bad_responses.py).
PROCESS_CASES = ("page-users-is-a-string", "nextlink-other-port")


def case_params(*, process: bool) -> list[Any]:
    """The cases of one tier, each a pytest param named by its id."""
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=f"BUG: {case.bug}")] if case.bug else [],
        )
        for case in CASES
        if (case.id in PROCESS_CASES) is process
    ]


def assert_hostile_case_handled(
    start_emulator: Callable[..., SpanningEmulator],
    api_key: str,
    tmp_path: Path,
    case: Case,
    *,
    as_process: bool,
) -> None:
    """Run the tap on `case`'s hostile pages (the console script if `as_process`): it
    accepts or fails as the case says, asks no more than it says, and sends nothing where
    a refused nextLink points."""
    emulator = start_emulator(TENANT)
    config = {
        "base_url": emulator.base_url,
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
        "page_size": PAGE_SIZE,
        "max_retries": MAX_RETRIES,
        "max_retry_wait": 0.02,
    }
    with ExitStack() as stack:
        ctx = Context(emulator, stack)
        users = SETUPS[case.id](ctx)
        run_the_tap = run_tap if as_process else run_in_process
        run = run_the_tap(config, tmp_path, env=DEBUG_ENV, label=f"hostile {case.id}")
        for trap in ctx.traps:
            assert trap.requests == [], "a request went where the nextLink pointed"
    assert "Traceback" not in run.stderr
    if case.outcome == ACCEPT:
        assert_output_is(run, users, expected=expected_of(users))
        assert case.phrase in run.stderr
        # No log line per user: no msId or UPN of the tenant in a log line above DEBUG
        # (at DEBUG, urllib3 logs each page's URL, which holds the keyset offsets).
        logged = "\n".join(line for line in run.stderr.splitlines() if "| DEBUG" not in line)
        for user in users:
            for value in (user.get("msId"), user.get("userPrincipalName")):
                assert not isinstance(value, str) or value not in logged
    else:
        assert run.returncode != 0
        last = run.last_stderr_line()
        assert "Sync failed: " in last, run.stderr[-3000:]
        assert case.phrase in last
    assert len(emulator.requests) == case.requests
    # The tenant's credentials and counters first, then only users pages.
    assert paths_of(emulator.requests) == [TENANT_PATH] * TENANT_REQUESTS + [USERS_PATH] * (
        case.requests - 1
    )
    # Whatever happens, no user is emitted twice.
    msids = [record["msId"] for record in run.records("users")]
    assert len(msids) == len(set(msids)), "a user was emitted twice"
    # Log lines quote server text with repr(): no raw control character reaches a terminal.
    for control in ("\u0000", "\u001b", "\u2028", "\u0085"):
        assert control not in run.stderr
