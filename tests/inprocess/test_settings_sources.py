"""Settings explain themselves from any source: a file, the environment, or both.

Every mistake is reported before any request, names the setting, never echoes a value
that could be a key, prints no traceback, and exits 1 (README, "Configure a real tenant").

The runs are in-process (`tap_spanning.tap.main` with the same argv, config file and
environment); one environment mistake also runs as a `tap-spanning` process, for its real
exit status and the last line of its stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tap_spanning.tap import TapSpanning
from tests.conftest import EmulatorFactory
from tests.tapdriver import run_in_process, run_tap
from tests.taprun import TapRun


def run_with_env(
    env: dict[str, str], tmp_path: Path, *args: str, as_process: bool = False
) -> TapRun:
    """`tap-spanning --config=ENV` with these TAP_SPANNING_* (and no other): in-process,
    or as a process."""
    settings = TapSpanning.config_jsonschema["properties"]
    assert not [name for name in settings if f"TAP_SPANNING_{name.upper()}" in os.environ]
    if as_process:
        return run_tap("ENV", tmp_path, *args, env=env)
    return run_in_process("ENV", tmp_path, *args, env=env)


def env_for(emulator: Any, api_key: str, **more: str) -> dict[str, str]:
    return {
        "TAP_SPANNING_BASE_URL": emulator.base_url,
        "TAP_SPANNING_ADMIN_EMAIL": emulator.admin_email,
        "TAP_SPANNING_API_KEY": api_key,
        **more,
    }


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("TAP_SPANNING_PAGE_SIZE", "page_size"),
        ("TAP_SPANNING_MAX_RETRIES", "max_retries"),
        ("TAP_SPANNING_REQUEST_TIMEOUT", "request_timeout"),
        ("TAP_SPANNING_MAX_RETRY_WAIT", "max_retry_wait"),
        ("TAP_SPANNING_MAX_CONCURRENT_TENANTS", "max_concurrent_tenants"),
        ("TAP_SPANNING_EMIT_ACTIVATE_VERSION_MESSAGES", "emit_activate_version_messages"),
        ("TAP_SPANNING_FLATTENING_ENABLED", "flattening_enabled"),
        ("TAP_SPANNING_FLATTENING_MAX_DEPTH", "flattening_max_depth"),
    ],
)
def test_a_key_pasted_into_a_numeric_or_boolean_variable_is_named_not_echoed(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path, variable: str, setting: str
) -> None:
    emulator = start_emulator()
    done = run_with_env(env_for(emulator, api_key, **{variable: api_key}), tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert any(setting in line for line in errors), done.stderr
    assert api_key not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert emulator.requests == []




def test_settings_from_the_environment_sync_like_settings_from_a_file(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator()
    done = run_with_env(
        env_for(
            emulator,
            api_key,
            TAP_SPANNING_PAGE_SIZE="40",
            TAP_SPANNING_REQUEST_TIMEOUT="2.5",
            TAP_SPANNING_EMIT_ACTIVATE_VERSION_MESSAGES="true",
        ),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    # Every stream of tenant data and roles activated; tenant_syncs, a history, never.
    activated = {m["stream"] for m in messages if m["type"] == "ACTIVATE_VERSION"}
    assert activated == {"users", "role_memberships", "tenants", "roles"}
    assert [
        m["record"]["status"]
        for m in messages
        if m.get("stream") == "tenant_syncs" and m["type"] == "RECORD"
    ] == ["complete"]
    # The page size from the environment: the credentials, then ceil(users / 40) pages.
    paths = [urlsplit(r.path).path for r in emulator.requests]
    pages = -(-emulator.user_count // 40)
    assert paths == ["/external/tenant"] + ["/external/users"] * pages


def test_a_fleet_from_the_environment(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator()
    tenants = [
        {"tenant_id": "hq", "admin_email": emulator.admin_email, "base_url": emulator.base_url}
    ]
    done = run_with_env(
        {
            "TAP_SPANNING_TENANTS": json.dumps(tenants),
            "TAP_SPANNING_TENANT_API_KEYS": json.dumps({"hq": api_key}),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    users = [json.loads(line) for line in done.stdout.splitlines()]
    records = [m["record"] for m in users if m["type"] == "RECORD" and m["stream"] == "users"]
    assert records
    assert {record["tenant_id"] for record in records} == {"hq"}
    syncs = [m["record"] for m in users if m["type"] == "RECORD" and m["stream"] == "tenant_syncs"]
    assert [(r["tenant_id"], r["status"], r["users"]) for r in syncs] == [
        ("hq", "complete", len(records))
    ]


def test_a_fleet_list_that_is_not_json_is_named(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    done = run_with_env(
        {
            "TAP_SPANNING_TENANTS": "[{oops",
            "TAP_SPANNING_TENANT_API_KEYS": json.dumps({"x": api_key}),
        },
        tmp_path,
    )
    assert done.returncode == 1
    assert "tenants must be a non-empty list" in done.stderr
    assert api_key not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_misspelt_setting_is_named_with_the_closest_one(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    emulator = start_emulator()
    config = tap_config(emulator)
    config["pagesize"] = 10
    config["colour"] = "blue"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    warnings = [line for line in run.stderr.splitlines() if "Unknown settings" in line]
    assert len(warnings) == 1
    assert "pagesize (did you mean page_size?)" in warnings[0]
    assert "colour" in warnings[0]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("{not json", "not valid JSON (line 1)"),
        ("[1, 2]", "must be a JSON object of settings"),
        (b"\xff\xfe\x00", "not UTF-8 text"),
    ],
)
def test_a_bad_config_file_gets_one_line_naming_the_file(
    tmp_path: Path, content: str | bytes | None, says: str
) -> None:
    path = tmp_path / "config.json"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    done = run_in_process(None, tmp_path, "--config", str(path))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"config file {path}: {says}"]
    assert done.stdout == ""


def test_a_key_inside_a_file_that_is_not_json_is_not_echoed(tmp_path: Path) -> None:
    key = "c0ffee00-1111-2222-3333-444455556666"
    path = tmp_path / "config.json"
    path.write_text('{"api_key": "' + key + '",,}')
    done = run_in_process(None, tmp_path, "--config", str(path))
    assert done.returncode == 1
    assert key not in done.stderr
