"""The benchmark still runs end to end (tiny sizes), so `make bench` cannot rot."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from pathlib import Path

import pytest
from spanning_emulator import (
    DATE_FORMATS,
    BackupHistory,
    DateFormat,
    expected_user_backups,
    generate_users,
    trailing_days,
)
from spanning_emulator.backups import BackupStyle, user_items

from bench import floor
from bench.cli import main
from tap_spanning.backups import BackupWindow

# The benchmark is a program of its own: run as its users run it.
pytestmark = pytest.mark.process


def test_bench_runs_at_a_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_path = tmp_path / "results.json"
    code = main(
        [
            "--users",
            "300",
            "--page-size",
            "100",
            "--repeat",
            "1",
            "--latency-ms",
            "20",
            "--latency-users",
            "300",
            "--verify",
            "--json",
            str(results_path),
        ]
    )
    table = capsys.readouterr().out
    assert code == 0

    assert "### 300 users, page size 100, latency 0 ms" in table
    assert "### Targets" in table
    for row in ("| tap |", "| floor |", "| tap / floor |"):
        assert row in table
    assert "| records per stream, tap = floor, 300 users, page size 100, latency 0 ms" in table

    results = json.loads(results_path.read_text())
    (scenario,) = results["scenarios"]
    tap, floor = scenario["tap"]["runs"][0], scenario["floor"]["runs"][0]
    assert tap["returncode"] == floor["returncode"] == 0
    assert tap["counts"]["records"] == floor["counts"]["records"]
    assert tap["counts"]["records"]["users"] == 300
    assert tap["counts"]["records"]["roles"] == 7
    assert tap["counts"]["records"]["tenants"] == 1
    assert tap["counts"]["bad_lines"] == floor["counts"]["bad_lines"] == 0
    # ceil(300 / 100) users pages and the one GET /external/tenant.
    assert tap["requests"] == floor["requests"] == 4
    assert scenario["verify"]["equal"] is True
    assert results["latency"]["tap"]["requests"] == 4
    by_name = {target["name"]: target["result"] for target in results["targets"]}
    record_targets = [name for name in by_name if name.startswith("records per stream")]
    assert record_targets
    assert all(by_name[name] == "PASS" for name in record_targets)


def test_bench_user_backups_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results_path = tmp_path / "results.json"
    code = main(
        [
            "--users",
            "300",
            "--page-size",
            "100",  # three pages: every nextLink must keep the window
            "--repeat",
            "1",
            "--user-backups",
            "--verify",
            "--latency-ms",
            "0",
            "--json",
            str(results_path),
        ]
    )
    table = capsys.readouterr().out
    assert code == 0

    assert "### 300 users, page size 100, latency 0 ms, user_backups" in table
    assert "| user_backups |" in table
    assert "Users page (page size 100" in table

    results = json.loads(results_path.read_text())
    (scenario,) = results["scenarios"]
    tap, floor_run = scenario["tap"]["runs"][0], scenario["floor"]["runs"][0]
    assert tap["returncode"] == floor_run["returncode"] == 0
    assert tap["counts"]["records"] == floor_run["counts"]["records"]
    assert tap["counts"]["records"]["users"] == 300
    # Every backed-up user has 7 days x 4 workloads.
    backups = tap["counts"]["records"]["user_backups"]
    assert backups > 0
    assert backups % 28 == 0
    assert (
        tap["counts"]["schemas"]["user_backups"]
        == floor_run["counts"]["schemas"]["user_backups"]
        == 1
    )
    assert tap["counts"]["bad_lines"] == floor_run["counts"]["bad_lines"] == 0
    # The same pages as without backups: ceil(300 / 100) and the one tenant request.
    assert tap["requests"] == floor_run["requests"] == 4
    assert scenario["verify"]["equal"] is True
    assert scenario["verify"]["streams"]["user_backups"]["same_records"] is True
    pages = scenario["user_backups"]["users_pages"]
    assert pages["status=false"]["pages"] == pages["status=true"]["pages"] == 3
    assert pages["status=true"]["mean_bytes"] > pages["status=false"]["mean_bytes"]
    by_name = {target["name"]: target["result"] for target in results["targets"]}
    assert by_name
    assert all(result == "PASS" for name, result in by_name.items() if "user_backups" in name)


@pytest.mark.parametrize("as_text", [False, True], ids=["numbers", "text"])
@pytest.mark.parametrize("date_format", DATE_FORMATS)
def test_floor_reads_every_backup_spelling(date_format: DateFormat, as_text: bool) -> None:
    """The floor's own conversion gives the emulator's expected user_backups records."""
    users = generate_users(80, seed=3)
    history = BackupHistory(users)
    today = dt.date(2026, 3, 1)
    style = BackupStyle(date_format, as_text, as_text)
    found: list[dict[str, object]] = []
    for account in history.accounts:  # API order
        user = dict(account.user)
        items = user_items(history, account.key, trailing_days(today), style)
        if items is not None:
            user["backupSummary"] = items
        found += floor.backup_records(user, "default", 1)
    expected = expected_user_backups(users, today=today, history=history)
    assert expected
    assert [{k: v for k, v in r.items() if k != "sync_version"} for r in found] == expected


@pytest.mark.parametrize("hour", [0, 13, 23])
def test_floor_asks_the_tap_s_window(hour: int) -> None:
    """The floor's start and end are the tap's for the same Date header."""
    moment = dt.datetime(2026, 3, 1, hour, 59, 59, tzinfo=dt.timezone.utc)
    header = email.utils.format_datetime(moment, usegmt=True)
    assert floor.backup_window(header) == BackupWindow.ending(moment.date(), 7).query()


def test_bench_fleet_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results_path = tmp_path / "fleet.json"
    code = main(
        [
            "--fleet",
            "5",
            "--latency-ms",
            "5",
            "--repeat",
            "1",
            "--sample",
            "2",
            "--meltano-sample",
            "0",  # Meltano takes seconds a run: measured by `python -m bench --fleet`
            "--json",
            str(results_path),
        ]
    )
    table = capsys.readouterr().out
    assert code == 0

    assert "### Fleet of 5 tenants" in table
    assert "### Targets" in table
    for row in (
        "| tap, one run over the fleet |",
        "| floor, one tenant of all ",
        "| ideal = max(CPU floor ",
        "| tap process per tenant, extrapolated to 5 tenants ",
    ):
        assert row in table

    results = json.loads(results_path.read_text())
    (fleet,) = results["fleets"]
    tap = fleet["tap"]["runs"][0]
    assert tap["returncode"] == 0
    assert tap["counts"]["records"]["users"] == fleet["users"]
    assert tap["counts"]["records"]["tenants"] == 5
    assert tap["requests"] == fleet["expected_requests"]
    assert fleet["tenants_with_expected_requests"] == 5
    assert fleet["verify"]["equal"] is True
    assert fleet["verify"]["tenants_equal"] == 5
    assert fleet["per_tenant"]["ok"] is True
    assert fleet["floor"]["runs"][0]["counts"]["records"]["users"] == fleet["users"]


def test_bench_dead_hosts_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results_path = tmp_path / "dead.json"
    code = main(["--dead-hosts", "3,12", "--repeat", "1", "--json", str(results_path)])
    table = capsys.readouterr().out
    assert code == 0

    assert "### Dead hosts: every tenant's host (127.0.0.2, " in table
    assert "| wall at 12 <= 4x wall at 3 (linear) |" in table
    results = json.loads(results_path.read_text())
    small, big = results["dead_hosts"]
    assert (small["tenants"], big["tenants"]) == (3, 12)
    for found in (small, big):
        (run,) = found["runs"]
        # Every tenant failed: no record at all, exit 1, each named in the last line.
        assert run["returncode"] == 1
        assert run["counts"]["total_records"] == 0
        assert run["named_in_last_line"] == found["tenants"]
        assert run["peak_rss_bytes"] > 0
        assert found["ok"] is True
    by_name = {target["name"]: target["result"] for target in results["targets"]}
    assert [result for name, result in by_name.items() if "dead tenants" in name] == ["PASS"] * 2


def test_bench_huge_pages_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results_path = tmp_path / "huge.json"
    code = main(
        [
            "--huge-pages",
            "1,2",
            "--huge-pages-tenants",
            "2",
            "--huge-pages-users",
            "30",
            "--page-size",
            "20",  # two pages a tenant, the last one short
            "--repeat",
            "1",
            "--json",
            str(results_path),
        ]
    )
    table = capsys.readouterr().out
    assert code == 0

    assert "### Huge pages: 2 tenants of 30 users" in table
    assert "| peak RSS, 2 at once <= 1.2x 1 at once |" in table
    results = json.loads(results_path.read_text())
    one, two = results["huge_pages"]
    assert (one["max_concurrent_tenants"], two["max_concurrent_tenants"]) == (1, 2)
    for found in (one, two):
        (run,) = found["runs"]
        assert run["returncode"] == 0
        assert run["counts"]["records"]["users"] == 60
        assert run["counts"]["records"]["tenants"] == 2
        # Two tenants of two pages and one GET /external/tenant each.
        assert run["requests"] == 6
        (budget,) = found["budgets"]
        # 30 users padded to HUGE_USER_BYTES each: the first page of 20 is ~300 KB.
        assert 250_000 < budget["largest_page"] < 400_000
        assert budget["peak"] >= budget["largest_page"]
        assert found["ok"] is True
