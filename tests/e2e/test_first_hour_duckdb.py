"""docs/warehouse.md's "Load into a warehouse", DuckDB, run as written (tests/first_hour.py):
load, the role report, the refresh after removals, TARGET_DUCKDB_PATH followed by every
step; and the role report of a fleet, grouped by tenant. Expected values come from the
emulator's own ground truth (expected_output, tenant_summary), never from the report's output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, generate_users, tenant_summary

from tests.documented import blocks_at
from tests.first_hour import (
    LOAD,
    assert_no_key,
    base_env,
    landed_msids,
    meltano,
    new_key,
    run,
    run_block,
    scratch,
    serving,
)
from tests.role_reading import license_truth, parse_report, role_truth

__all__ = ["scratch"]  # the fixture used here

pytestmark = pytest.mark.e2e


def test_load_into_duckdb_as_the_readme_shows(scratch: Path) -> None:
    """Load, report, refresh after removals; TARGET_DUCKDB_PATH followed by every step."""
    first, *refresh = blocks_at(*LOAD, "DuckDB")
    assert refresh, "docs/warehouse.md's DuckDB section should show the refresh"
    key = new_key()
    users = generate_users(300, seed=32, profile="realistic")
    with serving(users, "admin@contoso.example", key) as emulator:
        env = base_env(
            TAP_SPANNING_BASE_URL=emulator.base_url,
            TAP_SPANNING_ADMIN_EMAIL=emulator.admin_email,
            TAP_SPANNING_API_KEY=key,
        )
        ran = run_block(first, scratch, env).ok()
        report = parse_report(ran.stdout)
        assert report.roles == {None: role_truth(users)}, report
        assert report.licenses == {"default": license_truth(tenant_summary(users))}
        assert not report.notes
        assert re.search(rf"│\s*default\s*│\s*{len(users)}\s*│", ran.stdout), ran.stdout
        # The report reads the landed tenants table: it sends no request of its own.
        requests = len(emulator.requests)
        again = run("role_report", ["python", "-m", "spanning_reports", "roles"], scratch, env).ok()
        assert len(emulator.requests) == requests
        assert parse_report(again.stdout) == report

        # Users removed from the tenant are gone after the refresh.
        later = users[25:]
        emulator.set_users(later)
        outputs = [run_block(block, scratch, env).ok().output for block in refresh]
        live = scratch / "output" / "spanning.duckdb"
        assert landed_msids(live) == {str(u["msId"]) for u in later}
        report = parse_report(
            run("role_report", ["python", "-m", "spanning_reports", "roles"], scratch, env)
            .ok()
            .stdout
        )
        assert report.roles == {None: role_truth(later)}
        assert report.licenses == {"default": license_truth(tenant_summary(later))}

        # TARGET_DUCKDB_PATH: Meltano, the refresh and the report all follow it.
        third = later[40:]
        emulator.set_users(third)
        elsewhere = scratch / "elsewhere" / "copy.duckdb"
        moved = {**env, "TARGET_DUCKDB_PATH": str(elsewhere)}
        outputs += [run_block(block, scratch, moved).ok().output for block in refresh]
        shown = run(
            "role_report", ["python", "-m", "spanning_reports", "roles"], scratch, moved
        ).ok()
        report = parse_report(shown.stdout)
        assert str(elsewhere) in report.title
        assert report.roles == {None: role_truth(third)}
        assert landed_msids(elsewhere) == {str(u["msId"]) for u in third}
        assert landed_msids(live) == {str(u["msId"]) for u in later}  # untouched
    assert_no_key(key, ran.output, again.output, shown.output, *outputs)


def test_the_role_report_groups_a_fleet_by_tenant(scratch: Path) -> None:
    """Several tenants in one warehouse: one role table each, each tenant's license row."""
    acme = generate_users(60, seed=41, profile="realistic", domain="acme.example")
    globex = generate_users(35, seed=42, profile="realistic", domain="globex.example")
    # globex's counters disagree with its users (the tenant changed during the sync).
    globex_counters = {**tenant_summary(globex), "status": "trial"}
    globex_counters["assigned"] = int(str(globex_counters["assigned"])) + 3
    tenants = [
        EmulatedTenant("acme", acme, "admin@acme.example", new_key()),
        EmulatedTenant("globex", globex, "it@globex.example", new_key(), counters=globex_counters),
        EmulatedTenant("initech", [], "admin@initech.example", new_key()),  # no users yet
    ]
    with FleetEmulator(tenants) as fleet:
        env = base_env(
            # meltano.yml's one-tenant demo settings, blanked for a fleet
            TAP_SPANNING_BASE_URL="",
            TAP_SPANNING_ADMIN_EMAIL="",
            TAP_SPANNING_TENANTS=json.dumps(
                [
                    {
                        "tenant_id": t.tenant_id,
                        "admin_email": t.admin_email,
                        "base_url": fleet.base_url(t.tenant_id),
                    }
                    for t in tenants
                ]
            ),
            TAP_SPANNING_TENANT_API_KEYS=json.dumps({t.tenant_id: t.api_key for t in tenants}),
        )
        (scratch / "output").mkdir()
        # The role report reads dbt's current-row views: the load, then the build.
        meltano(scratch, env, "run", "tap-spanning", "target-duckdb", "dbt-duckdb:build").ok()
    shown = run("role_report", ["python", "-m", "spanning_reports", "roles"], scratch, env).ok()
    report = parse_report(shown.stdout)
    assert report.roles == {
        "acme": role_truth(acme, "acme"),
        "globex": role_truth(globex, "globex"),
        "initech": role_truth([], "initech"),
    }
    assert report.licenses == {
        "acme": license_truth(tenant_summary(acme)),
        "globex": license_truth(globex_counters),
        "initech": license_truth(tenant_summary([])),
    }
    assert len(report.notes) == 1, report.notes
    assert "globex" in report.notes[0], report.notes
    assert "3 tenants" in report.title
