"""`python -m bench --nightly` still runs end to end (3 tenants), so the night's bench cannot
rot: both nights, both warehouses, every step, and numbers that agree with each other and
with the emulator's fleet (docs/performance.md, "The night")."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.nightly import STEP_NAMES, WAREHOUSES, missing_plugins
from bench.nightly_rows import HISTORY_TABLES
from tests.warehouse import PostgresServer, postgres, unavailable

pytestmark = pytest.mark.e2e

__all__ = ["postgres"]  # the fixture used here

TENANTS = 3


def night_of(results: dict[str, Any], number: int, warehouse: str) -> dict[str, Any]:
    (scenario,) = results["nightly"]
    (found,) = [
        night
        for night in scenario["nights"]
        if night["night"] == number and night["warehouse"] == warehouse
    ]
    return found


def test_nightly_bench_runs_both_nights_into_both_warehouses(
    tmp_path: Path, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = missing_plugins()
    if missing:
        unavailable(f"{', '.join(missing)} not installed in .meltano/: run `make meltano-install`")
    results_path = tmp_path / "nightly.json"
    code = main(["--nightly", str(TENANTS), "--pg-url", postgres.url, "--json", str(results_path)])
    page = capsys.readouterr().out
    assert code == 0, page

    assert f"### The night, a fleet of {TENANTS} tenants" in page
    for warehouse in WAREHOUSES:
        for number in (1, 2):
            for step in STEP_NAMES:
                row = re.compile(
                    rf"^\| night {number} \([^|]*\) \| {warehouse.name} \| {step} \|", re.M
                )
                assert row.search(page), f"no row for night {number}, {warehouse.name}, {step}"
    assert "### Targets" in page
    assert "every step of both nights exits 0 | 16 steps | 16 steps | PASS |" in page
    assert "the tap alone's messages counted = its output lines" in page

    results = json.loads(results_path.read_text())
    (scenario,) = results["nightly"]
    assert scenario["tenants"] == TENANTS
    assert scenario["users"] > 0
    for warehouse in WAREHOUSES:
        first = night_of(results, 1, warehouse.name)
        second = night_of(results, 2, warehouse.name)
        assert first["state_given_bytes"] == 0  # night 1 starts with no state
        assert first["state_bytes"] > 0  # Meltano stored the load's state ...
        assert second["state_given_bytes"] == first["state_bytes"]  # ... and handed it on
        for night in (first, second):
            steps = {step["name"]: step for step in night["steps"]}
            assert list(steps) == list(STEP_NAMES)
            assert all(step["returncode"] == 0 for step in steps.values())
            assert all(step["wall_seconds"] > 0 for step in steps.values())
            assert all(step["peak_rss_bytes"] > 0 for step in steps.values())
            tap = steps["tap alone"]["counts"]
            others = sum(tap["other_messages"].values())
            counted = tap["total_records"] + sum(tap["schemas"].values())
            assert counted + tap["state_messages"] + others == tap["lines"] == night["messages"]
            assert tap["bad_lines"] == 0
            # Every user of the fleet, once a night; the tables hold them all.
            assert tap["records"]["users"] == scenario["users"]
            assert night["rows"]["users"] == scenario["users"]
            assert night["rows"]["tenant_syncs"] >= TENANTS * night["night"]
            end_to_end = sum(
                steps[name]["wall_seconds"] for name in ("load", "dbt build", "report")
            )
            assert night["end_to_end_seconds"] == pytest.approx(end_to_end)
        # The histories keep every night's rows: night 2 adds a sync a tenant and a new day.
        for table in HISTORY_TABLES:
            assert first["rows"][table] > 0, table
            assert second["rows"][table] > first["rows"][table], table
        assert second["rows"]["tenant_syncs"] == 2 * TENANTS
        # Given night 1's state, night 2 sends only the backup days that changed: its new day
        # (no tenant of 3 is one in SETTLE_EVERY), the rows night 2 added.
        counts = [
            {step["name"]: step for step in night["steps"]}["tap alone"]["counts"]["records"]
            for night in (first, second)
        ]
        for table in ("backup_summaries", "user_backups"):
            added = second["rows"][table] - first["rows"][table]
            assert counts[0][table] == first["rows"][table], table
            assert counts[1][table] == added, table
    # Both warehouses landed the same rows each night.
    for number in (1, 2):
        duckdb, pg = (night_of(results, number, w.name)["rows"] for w in WAREHOUSES)
        assert duckdb == pg
