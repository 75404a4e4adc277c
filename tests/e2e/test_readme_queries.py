"""docs/warehouse.md, "Governance questions in SQL", run as written after a night with failures.

A fleet of four tenants (the emulator's torture users, every tag spelling) is loaded and built
by the nightly command, `meltano --environment=prod run tap-spanning target-<db>
dbt-<db>:build` (failure_mode nightly), into DuckDB and into PostgreSQL. Then a night goes
wrong in the three ways that make raw tables lie: acme loses users (Global Admins among them),
globex's key is refused (it fails alone, the run exits 0 and dbt builds), and umbrella is
offboarded (left out of the configuration). Every SQL block of the section, the search
path line for the warehouse first, must then answer exactly what the emulator's ground truth
says (expected_output: acme and initech as the second night found them, globex as the first
did, umbrella nowhere), while the raw users table still holds a removed user. The same
warehouse then gives a fleet report (spanning_reports, with dbt's own run results) that says
the marts are current and umbrella offboarded, and, after a load that dbt did not follow, that
they are stale; the role report, which reads the marts tenant_roles and fleet_overview, counts
each role's members and each tenant's licenses as the ground truth does.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, expected_output, generate_users
from spanning_reports import fleet as fleet_cli
from spanning_reports import roles as roles_cli

from tests.documented import section_text, sql_blocks
from tests.e2e.test_warehouse_fleet import fleet_env
from tests.mart_reading import Warehouse, require_utility, warehouse_for, with_private_dbt
from tests.report_reading import Written, parse
from tests.role_reading import license_truth, parse_report, role_truth
from tests.warehouse import (
    PostgresServer,
    import_or_unavailable,
    meltano,
    pg_database,
    postgres,
    psycopg_module,
    require_plugin,
)

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e

DOCUMENT = "docs/warehouse.md"
SECTION = "### Governance questions in SQL"
QUERIES = 4
# The documented search path line for each warehouse: the one whose comment names it.
SEARCH_PATH_MARK = {"duckdb": "-- DuckDB", "postgres": "-- PostgreSQL"}
ADMIN_ROLES = {"global_admin", "spanning_admin"}
SHRINKS, FAILS, STAYS, LEAVES = "acme", "globex", "initech", "umbrella"
WRONG_KEY = "wrong-key-0000-1111-2222-333333333333"
NIGHT = ("--environment=prod", "run", "tap-spanning")  # failure_mode nightly

Answer = Counter[tuple[Any, ...]]
Output = Mapping[str, list[dict[str, object]]]


# ----------------------------------------------------------------------------- the document


def readme_sql(warehouse: str) -> tuple[str, list[str]]:
    """The section's search path statement for the warehouse, and its queries, in order."""
    blocks = sql_blocks(section_text(DOCUMENT, SECTION))
    assert len(blocks) == QUERIES + 1, f"{DOCUMENT}: {len(blocks)} SQL blocks in {SECTION!r}"
    paths, *queries = blocks
    lines = [line for line in paths.splitlines() if SEARCH_PATH_MARK[warehouse] in line]
    assert len(lines) == 1, f"{DOCUMENT}: no single search path line for {warehouse}"
    statement = lines[0].split("--", 1)[0].strip()
    for query in queries:
        # Current rows only: the raw tables keep removed users and offboarded clients.
        raw = re.findall(r"\b(?:FROM|JOIN)\s+(users|role_memberships|tenants|roles)\b", query)
        assert not raw, f"{DOCUMENT}: a query reads the raw table {raw[0]}"
    return statement, queries


def readme_truth(outputs: Sequence[Output]) -> list[Answer]:
    """What each query must answer (rows, any order), from expected_output alone."""
    users = {(u["tenant_id"], u["msId"]): u for out in outputs for u in out["users"]}
    roles_of: dict[tuple[object, object], set[str]] = {key: set() for key in users}
    for out in outputs:
        for m in out["role_memberships"]:
            roles_of[m["tenant_id"], m["msId"]].add(str(m["roleId"]))
    global_admins = Counter(
        (u["tenant_id"], u["userPrincipalName"], u["displayName"], u["disabled"])
        for key, u in users.items()
        if "global_admin" in roles_of[key]
    )
    archived_licensed = Counter(
        (u["tenant_id"], u["userPrincipalName"], u["email"], u["isArchive"])
        for key, u in users.items()
        if u["assigned"] is True and "archived" in roles_of[key]
    )
    disabled_admins = Counter(
        (u["tenant_id"], u["userPrincipalName"], ", ".join(sorted(roles_of[key] & ADMIN_ROLES)))
        for key, u in users.items()
        if u["disabled"] and roles_of[key] & ADMIN_ROLES
    )
    per_role = Counter(
        (
            role["id"],
            role["name"],
            sum(1 for key in users if role["id"] in roles_of[key]),
            sum(1 for key, u in users.items() if role["id"] in roles_of[key] and u["disabled"]),
        )
        for role in outputs[0]["roles"]
    )
    return [global_admins, archived_licensed, disabled_admins, per_role]


# ----------------------------------------------------------------------------- the fleet


def tenants() -> list[EmulatedTenant]:
    return [
        EmulatedTenant(
            tenant_id=name,
            users=generate_users(size, seed=seed),
            admin_email=f"admin@{name}.example",
            api_key=f"{name}-key-0000-1111-2222-{seed:012d}",
            host=host,
        )
        for name, size, seed, host in (
            (SHRINKS, 70, 61, "127.0.0.1"),
            (FAILS, 45, 62, "127.0.0.2"),
            (STAYS, 40, 63, "127.0.0.3"),
            (LEAVES, 35, 64, "127.0.0.1"),
        )
    ]


def shrunk(users: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """acme on the second night: every fifth user gone, from the second."""
    return [dict(user) for index, user in enumerate(users) if index % 5 != 1]


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    emulator = FleetEmulator(tenants())
    emulator.start()
    yield emulator
    emulator.stop()


def night_env(
    tmp_path: Path,
    fleet: FleetEmulator,
    warehouse: Warehouse,
    listed: Sequence[str],
    refused: str | None = None,
) -> dict[str, str]:
    """The listed tenants (one of them, `refused`, with a wrong key), the loader, dbt private."""
    # A one-tenant key of the project's .env (a developer's) is not this fleet's.
    env = fleet_env(tmp_path, fleet, listed, TAP_SPANNING_API_KEY="", **warehouse.loader_env)
    if refused is not None:
        keys = json.loads(env["TAP_SPANNING_TENANT_API_KEYS"])
        env["TAP_SPANNING_TENANT_API_KEYS"] = json.dumps({**keys, refused: WRONG_KEY})
    return with_private_dbt(env, tmp_path, warehouse)


# ----------------------------------------------------------------------------- the warehouse


@contextmanager
def session(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], list[tuple[Any, ...]] | None]]:
    """One connection to the test's warehouse, as a person opens it: a statement in, its rows
    out (None for a statement without rows, such as SET)."""
    if name == "duckdb":
        duckdb = import_or_unavailable("duckdb", "duckdb==1.0.0")
        connection = duckdb.connect(str(duckdb_path(tmp_path)), read_only=True)

        def run(statement: str) -> list[tuple[Any, ...]] | None:
            cursor = connection.execute(statement)
            return None if cursor.description is None else cursor.fetchall()

        try:
            yield run
        finally:
            connection.close()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    database: str = request.getfixturevalue("pg_database")
    with psycopg_module().connect(server.url_for(database), autocommit=True) as pg:

        def run_pg(statement: str) -> list[tuple[Any, ...]] | None:
            cursor = pg.execute(statement.encode())
            return None if cursor.description is None else cursor.fetchall()

        yield run_pg


def duckdb_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "spanning.duckdb"  # where warehouse_for puts it


def fleet_report(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Written:
    """The fleet report on the test's warehouse, with the run results of its dbt."""
    if name == "duckdb":
        where = ["--duckdb", str(duckdb_path(tmp_path))]
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        where = ["--postgres", server.url_for(request.getfixturevalue("pg_database"))]
    output = tmp_path / "fleet_report.html"
    results = tmp_path / "dbt" / "target" / "run_results.json"  # with_private_dbt's target
    assert results.is_file(), "dbt wrote no run_results.json"
    capsys.readouterr()
    code = fleet_cli.main([*where, "--dbt-results", str(results), "-o", str(output)])
    captured = capsys.readouterr()
    return Written(code, output.read_text(encoding="utf-8"), captured.out, captured.err)


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("warehouse_name", ["duckdb", "postgres"])
def test_readme_governance_queries_answer_current_rows_after_a_night_with_failures(
    warehouse_name: str,
    fleet: FleetEmulator,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    warehouse = warehouse_for(warehouse_name, request, tmp_path)
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", warehouse.loader)
    require_utility(warehouse.dbt)
    statement, queries = readme_sql(warehouse_name)
    everyone = [tenant.tenant_id for tenant in fleet.tenants]
    build = (warehouse.loader, f"{warehouse.dbt}:build")

    # The first night: every tenant completes.
    meltano(night_env(tmp_path, fleet, warehouse, everyone), *NIGHT, *build)
    first_night = {tenant.tenant_id: tenant for tenant in fleet.tenants}
    first = {t: expected_output(c.users, tenant_id=t) for t, c in first_night.items()}

    # The second night: acme shrinks, globex is refused, umbrella is no longer listed. The
    # nightly mode exits 0 with a tenant failed, so dbt builds.
    before = fleet.tenant(SHRINKS).users
    fleet.set_users(SHRINKS, shrunk(before))
    fleet.set_users(FAILS, shrunk(fleet.tenant(FAILS).users))  # would show, were it read
    listed = [SHRINKS, FAILS, STAYS]
    night = meltano(night_env(tmp_path, fleet, warehouse, listed, refused=FAILS), *NIGHT, *build)
    assert f"{FAILS} (credentials refused)" in night.output
    second = {t: expected_output(fleet.tenant(t).users, tenant_id=t) for t in (SHRINKS, STAYS)}

    # What must be, and why it is a test: a Global Admin among the removed users, and among
    # the offboarded client's; the failed tenant's answer is its first night.
    removed = {str(u["msId"]) for u in first[SHRINKS]["users"]} - {
        str(u["msId"]) for u in second[SHRINKS]["users"]
    }
    admins = {
        (str(m["tenant_id"]), str(m["msId"]))
        for out in first.values()
        for m in out["role_memberships"]
        if m["roleId"] == "global_admin"
    }
    assert {(SHRINKS, ms_id) for ms_id in removed} & admins, "no Global Admin was removed"
    assert any(tenant == LEAVES for tenant, _ in admins), "umbrella has no Global Admin"
    truth = readme_truth([second[SHRINKS], first[FAILS], second[STAYS]])
    assert all(truth), "a query whose truth is empty proves nothing"

    with session(warehouse_name, request, tmp_path) as run:
        run(statement)  # the documented search path line, as a person runs it first
        # The raw table still holds a removed user: reading it would be wrong.
        raw = run(f"SELECT \"msId\" FROM users WHERE tenant_id = '{SHRINKS}'")
        assert raw is not None
        assert removed & {str(row[0]) for row in raw}, "the raw table lost the removed users"
        for number, (query, wanted) in enumerate(zip(queries, truth, strict=True), start=1):
            rows = run(query)
            assert rows is not None
            assert Counter(tuple(row) for row in rows) == wanted, (
                f"{warehouse_name}: documented governance query {number} answers wrongly"
            )

    if warehouse_name == "duckdb":  # the role report reads the marts of the same views
        capsys.readouterr()
        code = roles_cli.main(["--duckdb", str(duckdb_path(tmp_path)), "--schema", "main"])
        shown = parse_report(capsys.readouterr().out)
        assert code == 0
        current = {
            SHRINKS: fleet.tenant(SHRINKS),
            FAILS: first_night[FAILS],
            STAYS: fleet.tenant(STAYS),
        }
        assert shown.roles == {t: role_truth(c.users, t) for t, c in current.items()}
        assert shown.licenses == {t: license_truth(c.served_counters()) for t, c in current.items()}
        assert not shown.notes

    # The fleet report of this night: current, umbrella offboarded, globex failing.
    written = fleet_report(warehouse_name, request, tmp_path, capsys)
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is None, alert.text if alert else ""
    body = written.dom.find(lambda n: n.tag == "body")
    assert (body.attrs["data-tenants"], body.attrs["data-offboarded"]) == ("3", "1")
    offboarded = [
        row.attrs["data-tenant"]
        for row in parse(written.page).find_all(lambda n: n.attrs.get("data-offboarded") == "true")
    ]
    assert offboarded == [LEAVES]

    # A load that dbt does not follow: the report says the marts are stale.
    meltano(night_env(tmp_path, fleet, warehouse, [SHRINKS, STAYS]), *NIGHT, warehouse.loader)
    written = fleet_report(warehouse_name, request, tmp_path, capsys)
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None, "a load after the build is not said"
    assert alert.attrs["data-freshness"] == "stale"
    assert alert.text.startswith("The marts are older than the newest sync: marts built at ")
