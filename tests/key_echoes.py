"""Servers that hand the key back, for the secrets tests: each echoes the Authorization
header and the decoded key into a body, a header, a link or user data, and says how the
sync must end ("fail" with a phrase in the last stderr line, or "accept").

`ECHOES` maps a case to its server; `assert_echo_handled` checks a run against one (its
output already passed the leak check of tests/leaks.py). tests/inprocess/test_secrets.py runs
every case in-process, tests/process/test_secrets.py one as the console script.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

from tests.hostile_server import TENANT_PATH, USERS_PATH, HostileServer, Reply, Seen, free_port
from tests.leaks import ADMIN_EMAIL
from tests.taprun import TapRun

MASK = "[redacted]"
HTML = "text/html; charset=utf-8"


def user(**fields: Any) -> dict[str, Any]:
    return {
        "msId": str(uuid.uuid4()),
        "userPrincipalName": f"u{uuid.uuid4().hex[:6]}@contoso.example",
        "displayName": "A User",
        "assigned": True,
        "isAdmin": False,
        "isDeleted": False,
        "isArchive": False,
        "tags": ["User"],
        **fields,
    }


def echo(seen: Seen) -> str:
    """Everything secret the request carried, spelled out."""
    return (
        f"Authorization: {seen.authorization} | credentials {seen.credentials} "
        f"| key {seen.key} | token {base64.b64encode(seen.credentials.encode()).decode()}"
    )


Responder = Callable[[HostileServer, Seen], Reply]


# GET /external/tenant's answer where a test's hostility is in the users pages. Its
# `users` counter bounds the pages at 2 x ceil(26 / 10) + 2 = 8 (docs/many-tenants.md),
# more than any server here sends before its case is decided.
COUNTERS = {
    "licenses": 15,
    "archivedLicenses": 5,
    "users": 26,
    "assigned": 11,
    "assignedStandard": 9,
    "assignedArchive": 2,
    "status": "paid",
}


def users_requests(server: HostileServer) -> list[Seen]:
    return [seen for seen in server.requests if seen.path == USERS_PATH]


def hostile_users_pages(responder: Responder) -> Responder:
    """`responder` for the users pages, behind a good GET /external/tenant.

    Every sync proves the credentials with GET /external/tenant before its first users
    page: a server that answered that with its users page or error would fail the
    credentials, and the hostile users page would never be read.
    """

    def respond(server: HostileServer, seen: Seen) -> Reply:
        if seen.path == TENANT_PATH:
            return Reply(200, COUNTERS)
        return responder(server, seen)

    return respond


def config_for(server: HostileServer, api_key: str, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": server.base_url,
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
        "max_retries": 2,
        "max_retry_wait": 0.02,
        "page_size": 10,
        **overrides,
    }


# ---------------------------------------------------------------- the echoing server

ECHOES: dict[str, tuple[Responder, str, str]] = {}
# The cases whose hostility is in GET /external/tenant (the others': the users pages).
TENANT_ECHOES: set[str] = set()


def echo_case(case_id: str, outcome: str, phrase: str) -> Callable[[Responder], Responder]:
    """Register a responder of the users pages (behind a good GET /external/tenant) with
    the outcome it must lead to ("fail"/"accept" + phrase)."""

    def register(responder: Responder) -> Responder:
        ECHOES[case_id] = (hostile_users_pages(responder), outcome, phrase)
        return responder

    return register


@echo_case("400-json-message", "fail", "HTTP 400")
def _(server: HostileServer, seen: Seen) -> Reply:
    body = {"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request"}
    return Reply(400, {**body, "message": echo(seen)})


@echo_case("401-body", "fail", "HTTP 401")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(401, {"code": "Unauthorized", "message": echo(seen)})


@echo_case("404-body", "fail", "404")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(404, f"Cannot GET {seen.path} ({echo(seen)})", HTML)


@echo_case("503-html-body-persistently", "fail", "giving up: HTTP 503")
def _(server: HostileServer, seen: Seen) -> Reply:
    page = f"<html><body><h1>503 Service Unavailable</h1><p>{echo(seen)}</p></body></html>"
    return Reply(503, page, HTML)


@echo_case("302-location-and-body", "fail", "Unexpected HTTP 302")
def _(server: HostileServer, seen: Seen) -> Reply:
    location = f"http://127.0.0.1:{free_port()}/steal?auth={seen.authorization}"
    return Reply(302, echo(seen), HTML, (("Location", location),))


@echo_case("page-keys-hold-the-key", "fail", "has no 'users'")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {seen.key: 1})


@echo_case("upn-of-a-user-without-msid", "fail", "has no msId")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {"users": [{"userPrincipalName": seen.credentials}], "nextLink": ""})


@echo_case("nextlink-query-holds-the-key", "accept", "")
def _(server: HostileServer, seen: Seen) -> Reply:
    if "key=" in seen.query:
        return Reply(200, {"users": [user()], "nextLink": ""})
    token = base64.b64encode(seen.credentials.encode()).decode()
    link = (
        f"{server.base_url}/external/users?key={seen.key}&pair={seen.credentials}"
        f"&token={token}&size=10"
    )
    return Reply(200, {"users": [user()], "nextLink": link})


@echo_case("nextlink-loop-holds-the-key", "fail", "already followed")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {"users": [user()], "nextLink": f"/external/users?k={seen.key}"})


@echo_case("nextlink-host-holds-the-key", "fail", "nextLink points to")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {"users": [user()], "nextLink": f"https://{seen.key}.example/external/users"})


def tenant_echo_case(case_id: str, phrase: str) -> Callable[[Responder], Responder]:
    """A server whose one users page is good and whose GET /external/tenant echoes."""

    def register(answer: Responder) -> Responder:
        def respond(server: HostileServer, seen: Seen) -> Reply:
            if seen.path == TENANT_PATH:
                return answer(server, seen)
            return Reply(200, {"users": [user()], "nextLink": ""})

        ECHOES[case_id] = (respond, "fail", phrase)
        TENANT_ECHOES.add(case_id)
        return answer

    return register


@tenant_echo_case(
    "tenant-401-body", "Spanning refused the credentials (HTTP 401 from /external/tenant)"
)
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(401, {"code": "Unauthorized", "message": echo(seen)})


@tenant_echo_case(
    "tenant-503-html-body", "GET /external/tenant failed 2 times, giving up: HTTP 503"
)
def _(server: HostileServer, seen: Seen) -> Reply:
    page = f"<html><body><h1>503 Service Unavailable</h1><p>{echo(seen)}</p></body></html>"
    return Reply(503, page, HTML)


@tenant_echo_case("tenant-counter-holds-the-key", "counter licenses is '[redacted]'")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {**COUNTERS, "licenses": seen.key})


@tenant_echo_case("tenant-400-json-message", "rejected the request to /external/tenant (HTTP 400)")
def _(server: HostileServer, seen: Seen) -> Reply:
    body = {"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request"}
    return Reply(400, {**body, "message": echo(seen)})


@tenant_echo_case("tenant-404-body", "answered 404 for /external/tenant")
def _(server: HostileServer, seen: Seen) -> Reply:
    return Reply(404, f"Cannot GET {seen.path} ({echo(seen)})", HTML)


@tenant_echo_case("tenant-302-location-and-body", "Unexpected HTTP 302 from /external/tenant")
def _(server: HostileServer, seen: Seen) -> Reply:
    location = f"http://127.0.0.1:{free_port()}/steal?auth={seen.authorization}"
    return Reply(302, echo(seen), HTML, (("Location", location),))


def assert_echo_handled(
    run: TapRun, server: HostileServer, seen: list[Seen], api_key: str, case_id: str
) -> None:
    """What a run against the echoing server `case_id` must show (its leak check passed)."""
    _, outcome, phrase = ECHOES[case_id]
    # The server did get (and echo) the real key: the leak check was not vacuous.
    assert seen
    assert seen[0].credentials == f"{ADMIN_EMAIL}:{api_key}"
    assert "| DEBUG" in run.stderr
    # The credentials first; then the users pages, where the hostility is, or, when it is
    # in GET /external/tenant, nothing more (a failed tenant is not asked again).
    paths = [s.path for s in seen]
    assert paths[0] == TENANT_PATH
    if case_id in TENANT_ECHOES:
        assert set(paths) == {TENANT_PATH}, paths
    else:
        assert paths.count(TENANT_PATH) == 1, paths
        assert USERS_PATH in paths, paths
    if outcome == "fail":
        assert run.returncode != 0
        last = run.last_stderr_line()
        assert "Sync failed: " in last, run.stderr[-2000:]
        assert phrase in last
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.count("RECORD", "users") == len(users_requests(server))
    if not case_id.endswith("401-body"):  # the 401 message says what to fix, not the body
        assert MASK in run.stderr, "the echo never reached a log line: not a test of redaction"
    assert "Traceback" not in run.stderr
