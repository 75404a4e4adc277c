"""The emulator's command line, called in-process: the files it writes (users, expected
streams, a fleet, the backup streams) and the mistakes it refuses.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from spanning_emulator import (
    expected_backup_summaries,
    expected_output,
    expected_tenant_record,
    expected_user_backups,
    generate_fleet,
    generate_users,
)
from spanning_emulator.cli import main as cli_main
from spanning_emulator.fleetfiles import client_name

from tests.backup_reading import (
    TODAY,
    WEEK,
)

# ------------------------------------------------------------------ command line


def test_cli_write_expected(tmp_path: Path) -> None:
    assert cli_main(["--users", "120", "--seed", "2", "--write-expected", str(tmp_path)]) == 0
    streams = {
        name: [
            json.loads(line)
            for line in (tmp_path / f"{name}.jsonl").read_text("utf-8").splitlines()
        ]
        for name in ("users", "roles", "role_memberships")
    }
    assert len(streams["users"]) == 120
    assert len(streams["roles"]) == 7
    msids = {u["msId"] for u in streams["users"]}
    assert {m["msId"] for m in streams["role_memberships"]} <= msids
    assert streams == expected_output(generate_users(120, seed=2))


def test_cli_write_users_and_serve_them_back(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    assert cli_main(["--users", "15", "--write-users", str(path)]) == 0
    assert json.loads(path.read_text("utf-8")) == generate_users(15)
    assert cli_main(["--users-file", str(path), "--write-expected", str(tmp_path / "out")]) == 0
    assert len((tmp_path / "out" / "users.jsonl").read_text("utf-8").splitlines()) == 15


def test_cli_refuses_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--host", "192.168.1.10"])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err


# ------------------------------------------------------------------ fleet command line


def _fleet_files(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): path.read_text("utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_cli_write_fleet(tmp_path: Path) -> None:
    hosts = ("127.0.0.1", "127.0.0.2")
    argv = ["--tenants", "6", "--seed", "4", "--hosts", ",".join(hosts), "--port", "9123"]
    assert cli_main([*argv, "--write-fleet", str(tmp_path)]) == 0
    tenants = generate_fleet(6, seed=4, hosts=hosts)
    config = json.loads((tmp_path / "tap-config.json").read_text("utf-8"))
    assert config == {
        "tenants": [
            {
                "tenant_id": t.tenant_id,
                # The client's name: the id's words, then its number ("t0007-fourth-coffee").
                "name": " ".join(w.capitalize() for w in t.tenant_id.split("-")[1:])
                + f" ({t.tenant_id.split('-')[0]})",
                "admin_email": t.admin_email,
                "base_url": f"http://{t.host}:9123",
            }
            for t in tenants
        ],
        "page_size": 1000,
    }
    assert client_name("t0007-fourth-coffee") == "Fourth Coffee (t0007)"
    env_lines = (tmp_path / "tenant-keys.env").read_text("utf-8").splitlines()
    assert len(env_lines) == 1
    name, _, value = env_lines[0].partition("=")
    assert name == "TAP_SPANNING_TENANT_API_KEYS"
    assert value.startswith("'")
    assert value.endswith("'")
    assert json.loads(value[1:-1]) == {t.tenant_id: t.api_key for t in tenants}
    assert (tmp_path / "tenant-keys.env").stat().st_mode & 0o077 == 0
    # The keys are in the .env file and nowhere else.
    for relative, text in _fleet_files(tmp_path).items():
        if relative != "tenant-keys.env":
            assert not any(t.api_key in text for t in tenants), relative

    def jsonl(path: Path) -> list[dict[str, object]]:
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]

    expected = tmp_path / "expected"
    assert jsonl(expected / "roles.jsonl") == expected_output([])["roles"]
    for tenant in tenants:
        folder = expected / tenant.tenant_id
        output = expected_output(tenant.users, tenant.tenant_id)
        assert jsonl(folder / "users.jsonl") == output["users"]
        assert jsonl(folder / "role_memberships.jsonl") == output["role_memberships"]
        (record,) = jsonl(folder / "tenants.jsonl")
        assert record == expected_tenant_record(
            tenant.tenant_id,
            tenant.served_counters(),
            f"http://{tenant.host}:9123",
            client_name(tenant.tenant_id),
        )
        assert record["users"] == len(tenant.users)
    assert sorted(p.name for p in expected.iterdir()) == sorted(
        ["roles.jsonl", *(t.tenant_id for t in tenants)]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenants", "3", "--users", "10"], "--users"),
        (["--tenants", "3", "--api-key", "k"], "--api-key"),
        (["--tenants", "3", "--hosts", "127.0.0.1,10.1.1.1"], "loopback"),
        (["--tenants", "3", "--tenant-fault", "nobody:1=500"], "nobody"),
        (["--tenants", "3", "--tenant-latency-ms", "nobody=5"], "nobody"),
        (["--tenants", "3", "--port", "0", "--write-fleet", "x"], "--port"),
        (["--write-fleet", "x"], "--tenants"),
        (["--tenant-fault", "a:1=500"], "--tenants"),
        (["--settle-every", "10"], "--tenants"),
        (["--tenants", "3", "--settle-every", "-1"], "--settle-every must be >= 0"),
    ],
)
def test_cli_fleet_flag_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_profile_flag(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    assert cli_main(["--users", "25", "--profile", "realistic", "--write-users", str(path)]) == 0
    assert json.loads(path.read_text("utf-8")) == generate_users(25, 1, "realistic")


# ------------------------------------------------------------------ the backup streams


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_cli_writes_the_backup_streams(tmp_path: Path) -> None:
    argv = ["--users", "40", "--seed", "2", "--today", TODAY.isoformat()]
    assert cli_main([*argv, "--write-expected", str(tmp_path / "one")]) == 0
    users = generate_users(40, seed=2)
    assert _jsonl(tmp_path / "one" / "backup_summaries.jsonl") == expected_backup_summaries(
        users, today=TODAY
    )
    assert _jsonl(tmp_path / "one" / "user_backups.jsonl") == expected_user_backups(
        users, today=TODAY
    )
    fleet_argv = ["--tenants", "3", "--port", "9123", "--today", TODAY.isoformat()]
    assert cli_main([*fleet_argv, "--write-fleet", str(tmp_path / "fleet")]) == 0
    for tenant in generate_fleet(3, today=TODAY):
        folder = tmp_path / "fleet" / "expected" / tenant.tenant_id
        expected = tenant.expected_backups()
        assert _jsonl(folder / "backup_summaries.jsonl") == expected["backup_summaries"]
        assert _jsonl(folder / "user_backups.jsonl") == expected["user_backups"]
        assert {r["date"] for r in expected["backup_summaries"]} == {d.isoformat() for d in WEEK}


def test_cli_backup_flag_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--tenants", "2", "--date-format", "mdy"], "--date-format"),
        (["--tenants", "2", "--counts-as-text"], "--counts-as-text"),
        (["--today", "27/11/2026"], "YYYY-MM-DD"),
        (["--date-format", "dmy"], "invalid choice"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def _days(records: list[dict[str, object]]) -> dict[object, list[str]]:
    """Each day's records, as sorted JSON: what a day's digest sums."""
    found: dict[object, list[str]] = {}
    for record in records:
        found.setdefault(record["date"], []).append(json.dumps(record, sort_keys=True))
    return {day: sorted(held) for day, held in found.items()}


def test_cli_settle_every_changes_one_day_of_one_tenant_in_k_a_night(tmp_path: Path) -> None:
    """`--settle-every 2` (the nightly benchmark's late tenants): night after night, the second
    tenant's yesterday settles into other counts, the first's never changes; both get a new
    day."""
    tomorrow = TODAY + dt.timedelta(days=1)
    for day in (TODAY, tomorrow):
        argv = ["--tenants", "2", "--port", "9123", "--today", day.isoformat()]
        folder = str(tmp_path / str(day))
        assert cli_main([*argv, "--settle-every", "2", "--write-fleet", folder]) == 0
    for number, tenant in enumerate(generate_fleet(2), start=1):
        for stream in ("backup_summaries", "user_backups"):
            before, after = (
                _days(
                    _jsonl(tmp_path / str(day) / "expected" / tenant.tenant_id / f"{stream}.jsonl")
                )
                for day in (TODAY, tomorrow)
            )
            changed = {day for day, held in after.items() if before.get(day) != held}
            late = {TODAY.isoformat()} if number == 2 else set()
            assert changed == {tomorrow.isoformat(), *late}, (tenant.tenant_id, stream)
