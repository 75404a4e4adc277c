"""Secrets (issue 5): no form of the API key in any output, at DEBUG, on any path.

The forms: the key, `email:key`, `base64(email:key)` (the Basic token) and
`base64(key)`. "Any output" is stdout (SCHEMA, STATE, the --discover catalog,
--about) and stderr (every log line and traceback).

Coverage of the other adversarial paths: every case of tests/test_fault_matrix.py
and tests/test_hostile.py runs at DEBUG through `run_tap_checked`, which fails the
case if any form appears. This file adds the paths where a hostile server hands the
key back (tests/hostile_server.py echoes the Authorization header and the decoded
key into bodies, headers, links and user data), config mistakes around the key,
and the commands that print no records (--about, --discover).

Record data: a server that puts the key into a user's displayName, email or tags gets
it back in that RECORD, unchanged. That is the tenant's data; rewriting it would
corrupt the output, and the tap cannot tell a key from a coincidence. What is
guaranteed is that the key reaches no log line, error, STATE, SCHEMA or catalog.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tap_spanning.config import SettingsError, resolve_settings
from tests.hostile_server import (
    DEBUG_ENV,
    HostileServer,
    Reply,
    Seen,
    assert_no_secrets,
    free_port,
    leaks,
    run_tap_checked,
    secret_forms,
)
from tests.tapdriver import ADMIN_EMAIL

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

Responder = Callable[[HostileServer, Seen], Reply]
ECHOES: dict[str, tuple[Responder, str, str]] = {}


def echo_case(case_id: str, outcome: str, phrase: str) -> Callable[[Responder], Responder]:
    """Register a responder with the outcome it must lead to ("fail"/"accept" + phrase)."""

    def register(responder: Responder) -> Responder:
        ECHOES[case_id] = (responder, outcome, phrase)
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


@pytest.mark.parametrize("case_id", list(ECHOES))
def test_a_server_echoing_the_key_never_gets_it_printed(
    api_key: str, tmp_path: Path, case_id: str
) -> None:
    responder, outcome, phrase = ECHOES[case_id]
    with HostileServer(responder) as server:
        run = run_tap_checked(config_for(server, api_key), tmp_path, label=f"echo {case_id}")
        seen = server.requests
    # The server did get (and echo) the real key: the check above was not vacuous.
    assert seen
    assert seen[0].credentials == f"{ADMIN_EMAIL}:{api_key}"
    assert "| DEBUG" in run.stderr
    if outcome == "fail":
        assert run.returncode != 0
        last = run.last_stderr_line()
        assert "Sync failed: " in last, run.stderr[-2000:]
        assert phrase in last
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.count("RECORD", "users") == len(seen)
    if case_id != "401-body":  # the 401 message says what to fix, without the body
        assert MASK in run.stderr, "the echo never reached a log line: not a test of redaction"
    assert "Traceback" not in run.stderr


def test_key_in_record_data_is_emitted_as_data_and_logged_nowhere(
    api_key: str, tmp_path: Path
) -> None:
    """A user whose displayName, email and tags hold the key: data as is, logs masked."""

    def respond(server: HostileServer, seen: Seen) -> Reply:
        hostile = user(
            displayName=seen.key,
            email=seen.credentials,
            tags=[seen.key, seen.credentials, "Global Admin"],
        )
        return Reply(200, {"users": [hostile, user()], "nextLink": ""})

    with HostileServer(respond) as server:
        run = run_tap_checked(config_for(server, api_key), tmp_path, key_may_be_record_data=True)
    assert run.returncode == 0, run.stderr[-2000:]
    forms = secret_forms(api_key)
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
    "respond",
    [_cut_message, _cut_body, _cut_upn, _cut_tag],
    ids=["400-message", "503-html-body", "upn-of-user-without-msid", "unknown-tag"],
)
def test_a_secret_cut_by_an_excerpt_limit_is_not_printed_in_part(
    api_key: str, tmp_path: Path, respond: Responder
) -> None:
    with HostileServer(respond) as server:
        # Whole forms are checked (and absent) outside records; the prefixes are the bug.
        run = run_tap_checked(
            config_for(server, api_key), tmp_path, label="cut secret", key_may_be_record_data=True
        )
    token = secret_forms(api_key)["base64(email:key)"]
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
    run = run_tap_checked(config, tmp_path, label="api_key not a string")
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
    run = run_tap_checked(config, tmp_path, label="refused")
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
    run = run_tap_checked(config, tmp_path, *args, parse=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "api_key" in run.stdout  # the setting is described, its value is not


def test_discover_catalog_holds_no_key(api_key: str, tmp_path: Path) -> None:
    config = {
        "base_url": f"http://127.0.0.1:{free_port()}",
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
    }
    run = run_tap_checked(config, tmp_path, "--discover", parse=False)
    assert run.returncode == 0, run.stderr[-2000:]
    catalog = json.loads(run.stdout)
    assert {s["tap_stream_id"] for s in catalog["streams"]} == {
        "users",
        "roles",
        "role_memberships",
    }


def test_the_leak_check_is_not_vacuous(api_key: str) -> None:
    """The grep every adversarial run goes through does catch each form."""
    forms = secret_forms(api_key)
    for name, form in forms.items():
        with pytest.raises(AssertionError, match=name.replace("(", r"\(").replace(")", r"\)")):
            assert_no_secrets(forms, stderr=f"... {form} ...")
    assert_no_secrets(forms, stderr=f"{api_key[:-1]}", stdout=MASK)


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


def test_every_adversarial_run_goes_through_the_leak_check() -> None:
    """Fault-matrix and hostile cases run the tap only through `run_tap_checked`."""
    here = Path(__file__).parent
    for name in ("test_fault_matrix.py", "test_hostile.py"):
        source = (here / name).read_text()
        assert "run_tap_checked(" in source
        assert "run_tap(" not in source
        assert "subprocess.run(" not in source
        # The one hand-driven run (a port that comes up late) greps its output itself.
        hand_driven = source.count("subprocess.Popen(") + source.count("start_tap(")
        assert hand_driven == source.count("assert_no_secrets(")
    assert "DEBUG" in DEBUG_ENV["TAP_SPANNING_LOGLEVEL"]
