"""What the tap refuses before it syncs, in one line and before any request it need not
make (docs/settings.md, "Settings"; docs/operations.md, "`--state`"): a setting out of
range, credentials Spanning refuses, one tenant configured twice, a state file that is not
a Singer state. A large state is accepted and never echoed.

In-process (tests/tapdriver.py); a wrong key as the console script sees it is in
tests/process/test_exits.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, expected_output, generate_users

from tests.conftest import EmulatorFactory
from tests.failure_fixtures import (
    MiB,
    assert_failed,
    entries_of,
    entry,
    fleet_config,
    log_message,
)
from tests.tapdriver import DEBUG_ENV, run_in_process
from tests.taprun import TapRun

# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"admin_email": None}, "admin_email"),
        ({"api_key": None}, "api_key"),
        ({"base_url": "https://evil.example"}, "base_url"),
        ({"base_url": "http://o365-api-us.spanningbackup.com"}, "base_url"),
        ({"region": "mars"}, "region"),
        ({"region": "eu"}, "region"),  # disagrees with a Spanning base_url below
        ({"page_size": 5000}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"max_retries": 0}, "max_retries"),
        ({"request_timeout": -1}, "request_timeout"),
    ],
)
def test_config_mistakes_fail_before_any_request(
    start_emulator: EmulatorFactory,
    tap_config: Any,
    tmp_path: Path,
    overrides: dict[str, Any],
    setting: str,
) -> None:
    emulator = start_emulator(generate_users(5))
    config = tap_config(emulator)
    if setting == "region" and overrides.get("region") == "eu":
        config["base_url"] = "https://o365-api-us.spanningbackup.com"
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert run.stdout == ""
    assert emulator.requests == []
    assert setting in run.stderr


def test_wrong_email_fails_like_a_wrong_key(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """Spanning refuses another admin's address with a good key, as it refuses a wrong
    key (the wrong key itself, as a process: tests/process/test_exits.py)."""
    emulator = start_emulator(generate_users(5))
    run = run_in_process(
        tap_config(emulator, admin_email="other@contoso.example"), tmp_path, env=DEBUG_ENV
    )
    assert_failed(run, "HTTP 401")


# ---------------------------------------------------------------- credentials given twice


@pytest.mark.parametrize(
    ("case", "says"),
    [
        (
            "same key, email in another case",
            "tenants[4] (twin): has the same admin_email and api_key as tenant 'ok0'",
        ),
        (
            "same key in tenant_api_keys",
            "tenants[4] (twin): has the same admin_email and api_key as tenant 'ok0'",
        ),
        (
            "ids equal but for case",
            "tenants[1] (t0000): tenant_id 't0000' is already used by tenants[0] (ids are "
            "compared without case)",
        ),
    ],
    ids=["email case", "tenant_api_keys", "id case"],
)
def test_one_tenant_configured_twice_is_refused_before_any_request(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path, case: str, says: str
) -> None:
    """The same credentials in two entries (admin_email compared without case) would load
    one tenant's users under two ids; ids equal but for case would mix two tenants' rows
    where case is ignored: both are refused, naming the entries, before any request."""
    emulator, tenants = healthy
    config = fleet_config(entries_of(emulator, tenants))
    first = tenants[0]
    if case == "same key, email in another case":
        twin = entry("twin", first.admin_email.upper(), emulator.base_url("ok1"), first.api_key)
        config["tenants"].append(twin)
    elif case == "same key in tenant_api_keys":
        for item in config["tenants"]:
            config.setdefault("tenant_api_keys", {})[item["tenant_id"]] = item.pop("api_key")
        twin = entry("twin", first.admin_email, emulator.base_url("ok0"), "")
        del twin["api_key"]
        config["tenants"].append(twin)
        config["tenant_api_keys"]["twin"] = first.api_key
    else:
        base_url = emulator.base_url("ok0")
        config["tenants"] = [
            entry("T0000", first.admin_email, base_url, first.api_key),
            entry("t0000", tenants[1].admin_email, base_url, tenants[1].api_key),
        ]
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    message = log_message(run.last_stderr_line())
    print(f"\n{message}")
    assert message.startswith("Config validation failed: "), message
    assert says in message, message
    assert "Traceback" not in run.stderr
    assert run.messages == []
    assert emulator.requests == []


# ---------------------------------------------------------------- the command line's files


def one_line(run: TapRun) -> str:
    """The run's only line on stderr, once it is checked to have refused before any output."""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1
    assert len(lines) == 1, lines
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    return lines[0]


@pytest.mark.parametrize("option", ["--catalog", "--state"])
def test_a_missing_catalog_or_state_file_is_one_line_naming_it(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, option: str
) -> None:
    """Our line and exit 1, where click's own file option would print its usage and exit 2."""
    emulator = start_emulator(generate_users(5))
    missing = tmp_path / "nowhere.json"
    run = run_in_process(tap_config(emulator), tmp_path, option, str(missing))
    what = option.removeprefix("--")
    assert one_line(run) == f"{what} file {missing}: cannot be read (No such file or directory)"
    assert emulator.requests == []


@pytest.mark.parametrize("mode", ["--discover", "--test", "--about"])
@pytest.mark.parametrize("bad", ["config", "catalog", "state"])
def test_a_bad_file_is_refused_in_every_mode_wherever_it_stands(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, mode: str, bad: str
) -> None:
    """--discover and --test run as the command line is read: the files are checked before
    them, even when they come after the mode on the command line."""
    emulator = start_emulator(generate_users(5))
    broken = tmp_path / f"{bad}.json"
    broken.write_text('{"api_key": "' + "k" * 8 + '",')
    config = tap_config(emulator)
    if bad == "config":
        run = run_in_process(None, tmp_path, mode, "--config", str(broken))
    else:
        run = run_in_process(config, tmp_path, mode, f"--{bad}", str(broken))
    assert one_line(run) == f"{bad} file {broken}: not valid JSON (line 1)"
    assert emulator.requests == []


# ---------------------------------------------------------------- --state


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"bookmarks": {"users": {}', "not valid JSON"),
        ('"bookmarks"', "must be a Singer state"),
        ('{"bookmarks": "users"}', "must be a Singer state"),
        (
            '{"bookmarks": {"user_backups": {"sent_days": ["t1"]}}}',
            "bookmarks.user_backups.sent_days must be an object of tenants",
        ),
        (
            '{"bookmarks": {"backup_summaries": {"sent_days": {"t1": {"2026-12-01": 7}}}}}',
            "bookmarks.backup_summaries.sent_days must map each day (YYYY-MM-DD, or 'set') to a "
            "digest",
        ),
        # A bookmark named otherwise than a stream is not named: it could be anything.
        (
            '{"bookmarks": {"0f8fad5b-d9cb-469f": {"sent_days": {"t1": "x"}}}}',
            "a bookmark.sent_days must map each tenant to an object of days",
        ),
    ],
    ids=[
        "not JSON",
        "a JSON string",
        "bookmarks a string",
        "sent_days a list",
        "a digest not hex",
        "an odd bookmark",
    ],
)
def test_a_state_file_that_is_not_a_state_is_one_line_naming_it(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, content: str, says: str
) -> None:
    """One line naming the file and what is wrong with it, no traceback, no request."""
    emulator = start_emulator(generate_users(10, seed=4))
    state = tmp_path / "state.json"
    state.write_text(content)
    run = run_in_process(tap_config(emulator), tmp_path, "--state", str(state))
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"state file {state}: {says}"), lines[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert emulator.requests == []


def test_a_large_state_is_accepted_and_never_echoed(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """The tap keeps no bookmarks: the STATE it writes is its own, small, whatever it
    was given; none of the given state's bookmarks is written back or logged."""
    users = generate_users(120, seed=6)
    emulator = start_emulator(users)
    bookmarks = {
        f"xyzzy_{index:05d}": {
            "replication_key": "updated_at",
            "replication_key_value": f"2024-01-01T00:00:{index % 60:02d}Z",
            "note": "p" * 120,
        }
        for index in range(10_000)
    }
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": bookmarks, "currently_syncing": "xyzzy_00001"}))
    size = state.stat().st_size
    print(f"\nstate file: {size / MiB:.1f} MiB")
    assert size > 2 * 10**6
    run = run_in_process(tap_config(emulator, page_size=50), tmp_path, "--state", str(state))
    assert run.returncode == 0, run.stderr[-2000:]
    truth = expected_output(users)
    for stream in ("users", "role_memberships", "roles"):
        assert run.records(stream) == truth[stream], stream
    states = [line for line in run.stdout.split("\n") if line.startswith('{"type":"STATE"')]
    assert states, "the run writes its state"
    assert max(len(line) for line in states) < 1000
    assert "xyzzy" not in run.stdout
    assert "xyzzy" not in run.stderr
