"""The key never appears: no form of the API key in any output, at DEBUG, on any path
(docs/operations.md, "Exit codes": the paragraph on the key).

The forms (tests/leaks.py `key_forms`): the key, `email:key`, `base64(email:key)`
(the Basic token), `base64(key)` and the URL-quoted key, of every key a run is given in
its config or environment. "Any output" is stdout (SCHEMA, STATE, the --discover
catalog, --about), stderr (every log line and traceback) and BATCH files.

Coverage of the other paths: every run of the tap in the tests goes through
tests/tapdriver.py, which fails the test if any form appears (`run_in_process` and
`run_tap` when the run ends; a `start_tap` process when its output is read, and
tests/conftest.py fails a test whose started tap was never checked). The fault kinds
and hostile pages run at DEBUG. The runs here are in-process (`tap_spanning.tap.main`
with the same argv, config file and environment); one failing sync at DEBUG also runs
as a `tap-spanning` process (tests/process/test_secrets.py), whose real stderr and exit
status are checked the same way. This file adds the paths where a hostile server hands
the key back (tests/key_echoes.py echoes the Authorization header and the decoded key
into bodies, headers, links and user data), config mistakes around the key, the
commands that print no records (--about, --discover), and the scrubbing itself: every
form of every tenant's key is masked, found by its last characters, so a message costs
the same at 10 tenants and at 100,000 (the bench measures it).

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
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from spanning_emulator import FaultPlan, generate_users

from tap_spanning.redaction import MASK as REDACTION_MASK
from tap_spanning.redaction import SecretIndex, secret_forms
from tap_spanning.settings import SettingsError, resolve_settings
from tests.conftest import EmulatorFactory
from tests.hostile_server import TENANT_PATH, HostileServer, Reply, Seen, free_port
from tests.key_echoes import (
    COUNTERS,
    ECHOES,
    HTML,
    MASK,
    Responder,
    assert_echo_handled,
    config_for,
    hostile_users_pages,
    user,
    users_requests,
)
from tests.leaks import ADMIN_EMAIL, assert_no_secrets, forms_of_key, key_forms, leaks, new_api_key
from tests.tapdriver import DEBUG_ENV, run_in_process
from tests.taprun import TapRun


def run_checked(config: dict[str, Any], tmp_path: Path, *args: str, **options: Any) -> TapRun:
    """An in-process run at DEBUG (run_in_process checks its output for every form of the
    key)."""
    return run_in_process(config, tmp_path, *args, env=DEBUG_ENV, **options)


# ---------------------------------------------------------------- servers that hand it back


@pytest.mark.parametrize("case_id", list(ECHOES))
def test_a_server_echoing_the_key_never_gets_it_printed(
    api_key: str, tmp_path: Path, case_id: str
) -> None:
    responder, _, _ = ECHOES[case_id]
    with HostileServer(responder) as server:
        run = run_checked(config_for(server, api_key), tmp_path, label=f"echo {case_id}")
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


def test_debug_output_of_a_good_sync_holds_no_key(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """A sync that succeeds through a 429 every other request, at DEBUG (the leak check
    of run_in_process is the assertion that matters)."""
    emulator = start_emulator(generate_users(40), faults=FaultPlan(every=2, kind="429"))
    run = run_checked(tap_config(emulator, page_size=10), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG" in run.stderr


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
        "role_membership_history",
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


# ---------------------------------------------------------------- the scrubbing itself


def test_every_form_of_every_key_is_masked_among_many_tenants() -> None:
    """100,000 tenants, three of them sharing one admin email: each form of one key is
    masked wherever it stands, and nothing else is."""
    keys = [str(uuid.uuid4()) for _ in range(100_000)]
    forms = [form for key in keys for form in secret_forms("msp-admin@msp.example", key)]
    index = SecretIndex(forms)
    key = keys[77_777]
    pair = f"msp-admin@msp.example:{key}"
    spelled = [
        key,
        pair,
        quote(key, safe=""),
        base64.b64encode(pair.encode()).decode(),
        base64.b64encode(key.encode()).decode(),
    ]
    for form in spelled:
        text = f"before {form} after; again:{form}."
        assert index.redact(text) == f"before {REDACTION_MASK} after; again:{REDACTION_MASK}."
    untouched = "Tenant t00042: retrying GET /external/users in 1.0s (HTTP 503)"
    assert index.redact(untouched) == untouched


def test_overlapping_forms_and_short_keys_are_masked_whole() -> None:
    index = SecretIndex([*secret_forms("a@b.example", "k3y!"), *secret_forms("", "abcdefghij")])
    assert index.redact("Basic YUBiLmV4YW1wbGU6azN5IQ== and k3y! and xxabcdefghijyy") == (
        f"Basic {REDACTION_MASK} and {REDACTION_MASK} and xx{REDACTION_MASK}yy"
    )
    assert index.redact("a@b.example:k3y!") == REDACTION_MASK
