"""The nightly run (README, "The nightly run"): one Meltano command per warehouse.

A fleet of five tenants, as an MSP's nights go: three healthy, one whose key was revoked (the
emulator refuses the key the tap holds) and one whose host is dead (a loopback port bound but
never listening: every connection is refused). The nightly job of meltano.yml, in the `prod`
environment (failure_mode nightly), must end 0 with both failures recorded and named, the
marts rebuilt from this very sync (`marts_build`), and the fleet report written by the
`fleet-report` utility, naming both failed tenants. In the default environment the same
config fails `meltano config test tap-spanning`, naming the refused tenant.

DuckDB runs the job as the README writes it (`meltano --environment=prod run nightly-duckdb`);
PostgreSQL through its schedule (`meltano schedule run nightly-postgres`), which must select
the prod environment by itself: in the default one the refused key stops the run (exit 1).
Expected values come from the emulator's tenants, never from the run's own output. One fast
test holds the report utility's lookup order (spanning_reports.utility) as written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, generate_users

from tests.e2e.test_warehouse_fleet import fleet_env, tenants
from tests.warehouse import (
    PROJECT_DIR,
    MeltanoRun,
    PostgresServer,
    duckdb_tables,
    meltano,
    pg_database,
    postgres,
    postgres_tables,
    require_plugin,
    unavailable,
)

pytestmark = pytest.mark.e2e

__all__ = ["pg_database", "postgres"]  # fixtures used here

HEALTHY = ("acme", "globex", "initech")  # tests/e2e/test_warehouse_fleet.py's tenants
REVOKED = "revoked-client"
DEAD = "dead-host-client"
FLEET_SIZE = len(HEALTHY) + 2
WRONG_KEY = "revoked-0000-1111-2222-333333333333"
FOREIGN_PREFIXES = ("DBT_", "FLEET_REPORT_")  # the developer's own dbt or report settings


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    revoked = EmulatedTenant(
        tenant_id=REVOKED,
        users=generate_users(40, seed=41),
        admin_email=f"admin@{REVOKED}.example",
        api_key="revoked-key-0000-1111-2222-000000000041",
    )
    emulator = FleetEmulator([*tenants(), revoked])
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def dead_host() -> Iterator[str]:
    """A loopback URL whose port is held (bound, never listening): connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def nightly_env(
    tmp_path: Path, fleet: FleetEmulator, dead_host: str, **loader: str
) -> dict[str, str]:
    """The fleet (the revoked tenant with a wrong key, the dead host listed), private dirs."""
    served = [tenant.tenant_id for tenant in fleet.tenants]
    env = fleet_env(tmp_path, fleet, served, **loader)
    entries = json.loads(env["TAP_SPANNING_TENANTS"])
    entries.append(
        {"tenant_id": DEAD, "admin_email": f"admin@{DEAD}.example", "base_url": dead_host}
    )
    keys = json.loads(env["TAP_SPANNING_TENANT_API_KEYS"])
    keys.update({REVOKED: WRONG_KEY, DEAD: "dead-0000-1111-2222-333333333333"})
    for name in [name for name in env if name.startswith(FOREIGN_PREFIXES)]:
        del env[name]
    env.update(
        TAP_SPANNING_TENANTS=json.dumps(entries),
        TAP_SPANNING_TENANT_API_KEYS=json.dumps(keys),
        TAP_SPANNING_MAX_RETRIES="2",
        # dbt's compiled files and logs, and the report, of this test only.
        DBT_DUCKDB_TARGET_PATH=str(tmp_path / "dbt" / "target"),
        DBT_DUCKDB_LOG_PATH=str(tmp_path / "dbt" / "logs"),
        DBT_POSTGRES_TARGET_PATH=str(tmp_path / "dbt" / "target"),
        DBT_POSTGRES_LOG_PATH=str(tmp_path / "dbt" / "logs"),
        FLEET_REPORT_OUTPUT=str(report_path(tmp_path)),
    )
    return env


def report_path(tmp_path: Path) -> Path:
    return tmp_path / "report" / "fleet_report.html"


def utc(value: Any) -> dt.datetime:
    """A timestamp as the warehouse holds it (naive means UTC), made aware."""
    assert isinstance(value, dt.datetime), value
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def check_failure_line(run: MeltanoRun) -> None:
    """The tap's closing line names both failed tenants, and the run still ended 0."""
    lines = [line for line in run.output.splitlines() if "tenants failed:" in line]
    assert lines, run.output[-4000:]
    named = re.search(rf"2 of {FLEET_SIZE} tenants failed: (.*)$", lines[-1])
    assert named, lines[-1]
    assert f"{REVOKED} (credentials refused)" in named.group(1), lines[-1]
    assert DEAD in named.group(1), lines[-1]


def check_warehouse(fetch: Any, fleet: FleetEmulator, started: dt.datetime) -> None:
    """One run: three tenants complete with all their users, two failed; marts of this run."""
    _, syncs = fetch(
        "SELECT tenant_id, sync_version, status, reason, finished_at FROM tenant_syncs"
    )
    assert len({version for _, version, _, _, _ in syncs}) == 1, syncs
    status = {tenant: state for tenant, _, state, _, _ in syncs}
    assert status == {**dict.fromkeys(HEALTHY, "complete"), REVOKED: "failed", DEAD: "failed"}
    reasons = {tenant: reason for tenant, _, _, reason, _ in syncs}
    assert "refused" in str(reasons[REVOKED]), reasons
    assert reasons[DEAD], reasons
    newest = max(utc(finished) for *_, finished in syncs)

    served = {tenant.tenant_id: len(tenant.users) for tenant in fleet.tenants}
    _, users = fetch("SELECT tenant_id, count(*) FROM users GROUP BY tenant_id")
    assert dict(users) == {tenant: served[tenant] for tenant in HEALTHY}

    # Rebuilt after this sync, from it: dbt ran on a night with failures.
    _, build = fetch("SELECT built_at, newest_sync_at FROM marts_build")
    assert len(build) == 1, build
    built_at, newest_sync_at = (utc(value) for value in build[0])
    assert utc(newest_sync_at) == newest
    assert built_at >= newest >= started, (built_at, newest, started)
    _, health = fetch("SELECT tenant_id, is_current FROM tenant_sync_health")
    assert dict(health) == {**dict.fromkeys(HEALTHY, True), REVOKED: False, DEAD: False}


def check_report(path: Path) -> None:
    """The report of this run: the failed-runs chart holds exactly the two failed tenants."""
    page = path.read_text(encoding="utf-8")
    chart = re.search(r'<svg class="chart" data-chart="failed-runs".*?</svg>', page, re.S)
    assert chart, "the report has no failed-runs chart"
    assert sorted(re.findall(r'<g class="bar" data-tenant="([^"]+)"', chart.group(0))) == sorted(
        [REVOKED, DEAD]
    )
    for tenant in HEALTHY:
        assert f'data-tenant="{tenant}"' in page, tenant


def require_nightly_plugins(loader: str, dbt: str) -> None:
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", loader)
    for utility, executable in ((dbt, "dbt"), ("fleet-report", "python")):
        if not (
            PROJECT_DIR / ".meltano" / "utilities" / utility / "venv" / "bin" / executable
        ).exists():
            unavailable(f"{utility} is not installed in .meltano/: run `make meltano-install`")


def test_config_test_in_the_default_environment_names_the_refused_tenant(
    fleet: FleetEmulator, dead_host: str, tmp_path: Path
) -> None:
    require_plugin("extractors", "tap-spanning")
    env = nightly_env(tmp_path, fleet, dead_host)
    run = meltano(env, "config", "test", "tap-spanning", succeed=False)
    refused = [line for line in run.output.splitlines() if "refused" in line.lower()]
    assert any(REVOKED in line for line in refused), run.output[-4000:]


def test_nightly_duckdb_ends_0_with_the_marts_and_the_report(
    fleet: FleetEmulator, dead_host: str, tmp_path: Path
) -> None:
    require_nightly_plugins("target-duckdb", "dbt-duckdb")
    database = tmp_path / "warehouse" / "spanning.duckdb"
    database.parent.mkdir()
    env = nightly_env(tmp_path, fleet, dead_host, TARGET_DUCKDB_PATH=str(database))
    started = dt.datetime.now(dt.timezone.utc)
    run = meltano(env, "--environment=prod", "run", "nightly-duckdb")
    check_failure_line(run)
    with duckdb_tables(database) as fetch:
        check_warehouse(fetch, fleet, started)
    check_report(report_path(tmp_path))


def test_nightly_postgres_schedule_ends_0_with_the_marts_and_the_report(
    fleet: FleetEmulator,
    dead_host: str,
    tmp_path: Path,
    postgres: PostgresServer,
    pg_database: str,
) -> None:
    require_nightly_plugins("target-postgres", "dbt-postgres")
    env = nightly_env(tmp_path, fleet, dead_host, **postgres.loader_env(pg_database))
    started = dt.datetime.now(dt.timezone.utc)
    run = meltano(env, "schedule", "run", "nightly-postgres")
    check_failure_line(run)
    with postgres_tables(postgres.url_for(pg_database)) as fetch:
        check_warehouse(fetch, fleet, started)
    check_report(report_path(tmp_path))


