"""The fleet report says at its top when the marts may not be what the warehouse holds:
marts older than the newest sync, a failed dbt build (dbt's run_results.json, named or at
the warehouse's default path), no marts_build; and says when current marts were built.
The command runs in process on the fixture warehouse (tests/report_reading.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from spanning_reports import freshness

from tests.report_fixtures import BUILD_DELAY, HEALTHY, build_times, fleet
from tests.report_reading import Written, report
from tests.report_warehouse import ROOT, write_results

__all__ = ["report"]  # the fixture used here

UTC_SHOWN = "%Y-%m-%d %H:%M:%S UTC"  # how the page shows a time


def test_current_marts_say_when_they_were_built(report: Callable[..., Written]) -> None:
    rows = fleet(28)
    built, newest = build_times(rows)
    assert built > max(row["finished_at"] for row in rows["tenant_syncs"])
    written = report(rows)
    assert written.code == 0, written.stderr
    assert written.alert() is None
    assert written.stderr == ""
    line = written.dom.find(lambda n: "data-freshness" in n.attrs)
    assert line.attrs["data-freshness"] == "current"
    assert line.text == f"marts built at {built:{UTC_SHOWN}}, newest sync at {newest:{UTC_SHOWN}}"


@pytest.mark.parametrize("unseen", ["after the build", "after the build's newest sync"])
def test_marts_older_than_the_newest_sync_are_said_at_the_top(
    report: Callable[..., Written], unseen: str
) -> None:
    """A sync that finished after the build ran, or one the build did not see (its load
    committed after the build read tenant_syncs): the top of the page says so, in red, with
    both times."""
    rows = fleet(28)
    built, seen = build_times(rows)
    later = (
        built + dt.timedelta(hours=1) if unseen == "after the build" else built - BUILD_DELAY / 2
    )
    assert later > seen
    rows["tenant_syncs"].append(
        {"tenant_id": HEALTHY, "sync_version": 1, "status": "complete", "finished_at": later}
    )
    written = report(rows)
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None, "no alert first in the page"
    assert alert.attrs["class"] == "alert", "stale marts are said in red, not amber"
    assert alert.attrs["data-freshness"] == "stale"
    assert alert.attrs["data-marts-built-at"] == built.replace(tzinfo=dt.timezone.utc).isoformat()
    assert alert.attrs["data-newest-sync-at"] == later.replace(tzinfo=dt.timezone.utc).isoformat()
    sentence = (
        f"The marts are older than the newest sync: marts built at {built:{UTC_SHOWN}} (from "
        f"syncs up to {seen:{UTC_SHOWN}}); newest sync at {later:{UTC_SHOWN}}."
    )
    assert alert.text.startswith(sentence), alert.text
    assert "meltano invoke dbt-duckdb:build" in alert.text
    assert sentence in written.stderr
    assert written.stdout.strip().endswith("fleet_report.html")
    # Red: the alert's rule draws it in the page's red.
    style = re.search(r"\.alert\{([^}]*)\}", written.page)
    assert style is not None
    assert "var(--red)" in style.group(1)
    assert "--red:#dc2626" in written.page


@pytest.mark.parametrize("failed", ["error", "fail"])
def test_a_failed_dbt_build_is_said_at_the_top(
    report: Callable[..., Written], tmp_path: Path, failed: str
) -> None:
    rows = fleet(28)
    built, _ = build_times(rows)
    finished = built + dt.timedelta(minutes=2)
    statuses = ["success", "pass", failed, "skipped", "warn"]
    results = write_results(tmp_path / "run_results.json", statuses, finished)
    written = report(rows, "--dbt-results", str(results))
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None
    assert alert.attrs["class"] == "alert"
    assert alert.attrs["data-freshness"] == "build-failed"
    assert (
        alert.attrs["data-build-failed-at"] == finished.replace(tzinfo=dt.timezone.utc).isoformat()
    )
    node = "model.spanning.model_2" if failed == "error" else "test.spanning.test_2"
    assert alert.text.startswith(
        f"The last dbt build failed at {finished:{UTC_SHOWN}} ({node}); marts built at "
        f"{built:{UTC_SHOWN}}"
    ), alert.text
    assert str(results) in alert.text


def test_a_failure_before_the_last_build_and_success_are_not_said(
    report: Callable[..., Written], tmp_path: Path
) -> None:
    """Results older than the marts belong to a build another build replaced since."""
    rows = fleet(28)
    built, _ = build_times(rows)
    old = write_results(tmp_path / "old.json", ["error"], built - dt.timedelta(hours=1))
    good = write_results(tmp_path / "good.json", ["success", "pass", "warn"], built)
    for results in (old, good):
        written = report(rows, "--dbt-results", str(results))
        assert written.code == 0, written.stderr
        assert written.alert() is None, results.name


def test_the_default_dbt_results_are_the_warehouses_own(
    report: Callable[..., Written], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dbt-results: Meltano's target_path of the utility (DBT_DUCKDB_TARGET_PATH),
    else transform/target/duckdb or transform/target/postgres of the project."""
    rows = fleet(28)
    built, _ = build_times(rows)
    target = tmp_path / "dbt-target"  # the fixture's DBT_DUCKDB_TARGET_PATH
    target.mkdir()
    results = write_results(target / "run_results.json", ["error"], built, which="run")
    written = report(rows)
    alert = written.alert()
    assert alert is not None
    assert alert.text.startswith(f"The last dbt run failed at {built:{UTC_SHOWN}}")
    assert str(results) in alert.text

    transform = ROOT / "transform" / "target"
    assert freshness.default_results("duckdb", {}) == transform / "duckdb" / "run_results.json"
    assert freshness.default_results("postgres", {}) == transform / "postgres" / "run_results.json"
    assert freshness.default_results("postgres", {"DBT_POSTGRES_TARGET_PATH": "t/pg"}) == (
        ROOT / "t" / "pg" / "run_results.json"
    )
    # Unreadable at the default path: said, not fatal.
    (target / "run_results.json").write_text("{not json", encoding="utf-8")
    written = report(rows)
    assert written.code == 0
    alert = written.alert()
    assert alert is not None
    assert alert.attrs["class"] == "alert unknown"
    assert "Whether the last dbt build failed is unknown" in alert.text


def test_dbt_results_named_but_unreadable_fail_the_command(
    report: Callable[..., Written], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "run_results.json"
    written = report(fleet(28), "--dbt-results", str(missing))
    assert written.code == 1
    assert written.page == ""
    assert written.stderr.startswith(f"fleet_report: {missing}: cannot read dbt's run results")


def test_without_marts_build_the_freshness_is_unknown(report: Callable[..., Written]) -> None:
    written = report(fleet(28), without=("marts_build",))
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None
    assert alert.attrs["class"] == "alert unknown"
    assert alert.attrs["data-freshness"] == "unknown"
    assert alert.text.startswith(
        "The marts' freshness is unknown: the warehouse has no marts_build"
    )
    line = written.dom.find(
        lambda n: n.attrs.get("data-freshness") == "unknown" and n.tag == "span"
    )
    assert line.text == "marts built at an unknown time"
