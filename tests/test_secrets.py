"""Secrets (issue 5): no form of the API key in any output, at DEBUG, on any path.

The forms (tests/tapdriver.py `key_forms`): the key, `email:key`, `base64(email:key)`
(the Basic token), `base64(key)` and the URL-quoted key, of every key a run is given in
its config or environment. "Any output" is stdout (SCHEMA, STATE, the --discover
catalog, --about), stderr (every log line and traceback) and BATCH files.

Coverage of the other paths: every run of the tap in the tests goes through
tests/tapdriver.py, which fails the test if any form appears (`run_in_process` and
`run_tap` when the run ends; a `start_tap` process when its output is read, and
tests/conftest.py fails a test whose started tap was never checked). The fault matrix
and hostile pages run at DEBUG. The runs here are in-process (`tap_spanning.tap.main`
with the same argv, config file and environment); one failing sync at DEBUG also runs
as a `tap-spanning` process, whose real stderr and exit status are checked the same way.
This file adds the paths where a hostile server hands the key back
(tests/hostile_server.py echoes the Authorization header and the decoded key into
bodies, headers, links and user data), config mistakes around the key, and the
commands that print no records (--about, --discover).

Record data: a server that puts the key into a user's displayName, email or tags gets
it back in that RECORD, unchanged. That is the tenant's data; rewriting it would
corrupt the output, and the tap cannot tell a key from a coincidence. What is
guaranteed is that the key reaches no log line, error, STATE, SCHEMA or catalog.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tap_spanning.settings import SettingsError, resolve_settings
from tests.hostile_server import HostileServer, Reply, Seen, free_port
from tests.tapdriver import (
    ADMIN_EMAIL,
    DEBUG_ENV,
    TapRun,
    assert_no_secrets,
    forms_of_key,
    key_forms,
    leaks,
    new_api_key,
    run_in_process,
    run_tap,
)

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


def run_checked(config: dict[str, Any], tmp_path: Path, *args: str, **options: Any) -> TapRun:
    """An in-process run at DEBUG (run_in_process checks its output for every form of the
    key)."""
    return run_in_process(config, tmp_path, *args, env=DEBUG_ENV, **options)


TENANT_PATH = "/external/tenant"
USERS_PATH = "/external/users"
# GET /external/tenant's answer where a test's hostility is in the users pages. Its
# `users` counter bounds the pages at 2 x ceil(26 / 10) + 2 = 8 (README, "Many tenants"),
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


@pytest.mark.parametrize("case_id", list(ECHOES))
def test_a_server_echoing_the_key_never_gets_it_printed(
    api_key: str, tmp_path: Path, case_id: str
) -> None:
    responder, _, _ = ECHOES[case_id]
    with HostileServer(responder) as server:
        run = run_checked(config_for(server, api_key), tmp_path, label=f"echo {case_id}")
        seen = server.requests
    assert_echo_handled(run, server, seen, api_key, case_id)


@pytest.mark.process
def test_a_failing_sync_at_debug_as_a_process_prints_no_key(api_key: str, tmp_path: Path) -> None:
    """The console script itself, at DEBUG, against a server that echoes the key into a
    503 page until the tap gives up: no form of the key in its real stdout or stderr
    (run_tap checks), the real exit status non-zero, the reason the last line."""
    case_id = "503-html-body-persistently"
    responder, _, _ = ECHOES[case_id]
    with HostileServer(responder) as server:
        run = run_tap(
            config_for(server, api_key), tmp_path, env=DEBUG_ENV, label=f"process echo {case_id}"
        )
        seen = server.requests
    assert_echo_handled(run, server, seen, api_key, case_id)


def test_key_in_record_data_is_emitted_as_data_and_logged_nowhere(
    api_key: str, tmp_path: Path
) -> None:
    """A user whose displayName, email and tags hold the key: data as is, logs masked."""

    def respond(server: HostileServer, seen: Seen) -> Reply:
        if seen.path == TENANT_PATH:
            return Reply(200, {**COUNTERS, "status": seen.credentials})
        hostile = user(
            displayName=seen.key,
            email=seen.credentials,
            tags=[seen.key, seen.credentials, "Global Admin"],
        )
        return Reply(200, {"users": [hostile, user()], "nextLink": ""})

    with HostileServer(respond) as server:
        run = run_checked(config_for(server, api_key), tmp_path, key_may_be_record_data=True)
    assert run.returncode == 0, run.stderr[-2000:]
    forms = forms_of_key(api_key)
    record = run.records("users")[0]
    assert record["displayName"] == api_key
    assert record["email"] == forms["email:key"]
    assert record["tags"] == [api_key, forms["email:key"], "Global Admin"]
    # The unknown tags were logged (once each), masked.
    assert run.stderr.count("names no Spanning role") == 2
    assert run.stderr.count(MASK) == 2
    memberships = run.records("role_memberships")
    assert {m["roleId"] for m in memberships if m["msId"] == record["msId"]} == {"global_admin"}
    assert not leaks(json.dumps(memberships), forms)
    (tenant,) = run.records("tenants")
    assert tenant["status"] == forms["email:key"]


# ---------------------------------------------------------------- truncation
# The tap quotes at most 300 characters of an error body or message, and 80 of a server
# value (a tag, a UPN, a page's keys). Each server below puts a secret across that limit,
# so the excerpt ends inside it, where a mask of the whole form cannot match.


def _cut_message(server: HostileServer, seen: Seen) -> Reply:
    message = "x" * 280 + seen.key
    return Reply(400, {"statusCode": 400, "message": message})


def _cut_body(server: HostileServer, seen: Seen) -> Reply:
    return Reply(503, "<p>" + "y" * 230 + seen.authorization + "</p>", HTML)


def _cut_upn(server: HostileServer, seen: Seen) -> Reply:
    return Reply(200, {"users": [{"userPrincipalName": "u" * 50 + seen.key}], "nextLink": ""})


def _cut_tag(server: HostileServer, seen: Seen) -> Reply:
    # Logged at INFO as an unknown tag, on a sync that succeeds.
    return Reply(200, {"users": [user(tags=[seen.authorization])], "nextLink": ""})


@pytest.mark.parametrize(
    ("respond", "succeeds"),
    [(_cut_message, False), (_cut_body, False), (_cut_upn, False), (_cut_tag, True)],
    ids=["400-message", "503-html-body", "upn-of-user-without-msid", "unknown-tag"],
)
def test_a_secret_cut_by_an_excerpt_limit_is_not_printed_in_part(
    api_key: str, tmp_path: Path, respond: Responder, succeeds: bool
) -> None:
    with HostileServer(hostile_users_pages(respond)) as server:
        # Whole forms are checked (and absent) outside records; the prefixes are the bug.
        run = run_checked(
            config_for(server, api_key), tmp_path, label="cut secret", key_may_be_record_data=True
        )
        # The credentials passed, and the hostile users page was served and read.
        assert users_requests(server)
    assert (run.returncode == 0) is succeeds, run.stderr[-2000:]
    token = forms_of_key(api_key)["base64(email:key)"]
    # 12 characters of the key; 44 of the token are base64 of "<email>:" + 11 of them.
    for prefix in (api_key[:12], token[:44]):
        assert prefix not in run.stderr
        assert prefix not in run.non_record_stdout


# ---------------------------------------------------------------- config and commands


@pytest.mark.parametrize(
    "bad_key",
    [
        918273645501234,
        9182736455.01234,
        ["KEY-IN-A-LIST-5f0c2a8e7d1b"],
        {"v": "KEY-IN-DICT-9a6f2b8d"},
    ],
    ids=["integer", "float", "list", "object"],
)
def test_a_key_that_is_not_a_string_is_never_echoed(
    api_key: str, tmp_path: Path, bad_key: object
) -> None:
    config = {
        "base_url": f"http://127.0.0.1:{free_port()}",
        "admin_email": ADMIN_EMAIL,
        "api_key": bad_key,
    }
    run = run_checked(config, tmp_path, label="api_key not a string")
    assert run.returncode != 0
    assert run.stdout == ""
    assert "api_key must be a string" in run.stderr


def test_refused_connection_prints_no_key(api_key: str, tmp_path: Path) -> None:
    config = {
        "base_url": f"http://127.0.0.1:{free_port()}",
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
        "max_retries": 2,
        "max_retry_wait": 0.02,
    }
    run = run_checked(config, tmp_path, label="refused")
    assert run.returncode != 0
    assert "could not connect" in run.last_stderr_line()


@pytest.mark.parametrize(
    "args", [("--about",), ("--about", "--format", "json"), ("--about", "--format", "markdown")]
)
def test_about_prints_no_key(api_key: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    config = {
        "base_url": f"http://127.0.0.1:{free_port()}",
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
    }
    run = run_checked(config, tmp_path, *args)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "api_key" in run.stdout  # the setting is described, its value is not


def test_discover_catalog_holds_no_key(api_key: str, tmp_path: Path) -> None:
    config = {
        "base_url": f"http://127.0.0.1:{free_port()}",
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
    }
    run = run_checked(config, tmp_path, "--discover")
    assert run.returncode == 0, run.stderr[-2000:]
    catalog = json.loads(run.stdout)
    assert {s["tap_stream_id"] for s in catalog["streams"]} == {
        "users",
        "roles",
        "role_memberships",
        "tenants",
        "tenant_syncs",
        "backup_summaries",
        "user_backups",
    }


def test_the_leak_check_is_not_vacuous(api_key: str) -> None:
    """The grep every run goes through does catch each form."""
    forms = key_forms(api_key)
    assert len(forms) == 4  # a GUID's URL-quoted form is the key itself
    for name, form in forms.items():
        with pytest.raises(AssertionError, match=re.escape(name)):
            assert_no_secrets(forms, stderr=f"... {form} ...")
    assert_no_secrets(forms, stderr=f"{api_key[:-1]}", stdout=MASK)
    assert "DEBUG" in DEBUG_ENV["TAP_SPANNING_LOGLEVEL"]


def test_key_forms_cover_every_key_of_a_config_and_its_environment() -> None:
    """Every key a run is given: one tenant's, each fleet entry's, the key map's, the env's."""
    keys = [new_api_key() for _ in range(5)]
    config = {
        "tenants": [
            {"tenant_id": "a", "admin_email": "a@a.example", "api_key": keys[0]},
            {"tenant_id": "b", "admin_email": "b@b.example"},
        ],
        "tenant_api_keys": {"b": keys[1]},
    }
    env = {
        "TAP_SPANNING_API_KEY": keys[2],
        "TAP_SPANNING_TENANT_API_KEYS": json.dumps({"c": keys[3]}),
        "SPANNING_EMULATOR_API_KEY": keys[4],
    }
    forms = set(key_forms(config, env=env).values())
    for key in keys:
        assert key in forms
        assert base64.b64encode(key.encode()).decode() in forms
    for email, key in (("a@a.example", keys[0]), ("b@b.example", keys[1])):
        assert f"{email}:{key}" in forms
        assert base64.b64encode(f"{email}:{key}".encode()).decode() in forms
    odd = "k+y/with spaces=="
    assert quote(odd, safe="") in key_forms({"api_key": odd}).values()


PASTED_KEY = "PASTED-api-key-4c3e9a6f2b8d"


@pytest.mark.parametrize(
    "name",
    [
        "region",
        "page_size",
        "max_retries",
        "request_timeout",
        "max_retry_wait",
        "base_url",
        "admin_email",
        "max_concurrent_tenants",
    ],
)
def test_a_key_pasted_into_another_setting_is_not_echoed(name: str) -> None:
    config = {
        "admin_email": ADMIN_EMAIL,
        "api_key": PASTED_KEY,
        "base_url": "http://127.0.0.1:8765",
        name: PASTED_KEY,
    }
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config)
    assert name in str(caught.value)
    assert PASTED_KEY not in str(caught.value)


@pytest.mark.parametrize("name", ["region", "base_url", "admin_email"])
@pytest.mark.parametrize("key_in", ["entry", "tenant_api_keys"])
def test_a_tenants_key_pasted_into_its_entry_is_not_echoed(name: str, key_in: str) -> None:
    entry = {"tenant_id": "contoso", "admin_email": ADMIN_EMAIL, "base_url": "http://127.0.0.1:1"}
    config: dict[str, Any] = {"tenants": [{**entry, name: PASTED_KEY}]}
    if key_in == "entry":
        config["tenants"][0]["api_key"] = PASTED_KEY
    else:
        config["tenant_api_keys"] = {"contoso": PASTED_KEY}
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config)
    assert f"tenants[0] (contoso): {name}" in str(caught.value)
    assert PASTED_KEY not in str(caught.value)
