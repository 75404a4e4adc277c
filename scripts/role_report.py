"""Print who holds which Spanning role, and each tenant's license use, from the DuckDB warehouse.

    python scripts/role_report.py [--database PATH] [--schema NAME]

Run it in the Meltano project, after `meltano run tap-spanning target-duckdb dbt-duckdb:build`
(or `meltano invoke dbt-duckdb:build` after a load). It reads the current rows only: the
staging views that dbt builds over the tap's tables (transform/, README "Governance questions
in SQL"), `stg_spanning__users`, `stg_spanning__role_memberships`, `stg_spanning__roles` and
`stg_spanning__tenants`, never the raw tables, which keep users removed from a tenant and the
users of an offboarded client. Each listed tenant is shown as its last complete sync found it.

It reads the file and schema that target-duckdb loaded, as Meltano configures the loader: it
asks Meltano for that configuration (`meltano invoke --dump=config target-duckdb`: meltano.yml,
the active environment, `.env`, and TARGET_DUCKDB_* variables such as TARGET_DUCKDB_PATH,
exactly what `meltano run` hands target-duckdb), and the views are in dbt's schema beside it,
`<schema>_staging` (main_staging). A relative path is relative to the current directory, as it
is for the loader. --database and --schema (the loader's schema) override what Meltano says.

The role table has one table per tenant when the warehouse holds more than one. The license
counters come from the tenants stream (GET /external/tenant, read in the same sync). The report
sends no request to Spanning and needs no credentials.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tap_spanning.roles import ROLE_IDS

LOADER = "target-duckdb"
MELTANO_TIMEOUT_SECONDS = 300
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# dbt's staging schema: the profile's schema (the loader's) and the models' `+schema: staging`
# (transform/dbt_project.yml), joined as dbt's generate_schema_name does.
VIEWS_SUFFIX = "_staging"
VIEWS = ("stg_spanning__users", "stg_spanning__role_memberships", "stg_spanning__roles")
TENANTS_VIEW = "stg_spanning__tenants"
# The license counters: the API's names (as format_licenses shows them) -> the view's columns.
COUNTERS = {
    "licenses": "licenses",
    "archivedLicenses": "archived_licenses",
    "users": "users",
    "assigned": "assigned",
    "assignedStandard": "assigned_standard",
    "assignedArchive": "assigned_archive",
    "status": "status",
}


class ReportError(Exception):
    """A problem the person running the report can fix; the message says how."""


@dataclass(frozen=True)
class Target:
    """Where target-duckdb loaded: the file and the schema (dbt's views: <schema>_staging)."""

    database: Path
    schema: str

    @property
    def views(self) -> str:
        return self.schema + VIEWS_SUFFIX


@dataclass(frozen=True)
class RoleRow:
    tenant_id: str
    id: str
    name: str
    members: int
    disabled: int


@dataclass(frozen=True)
class TenantUse:
    """One tenant: what the warehouse's users add up to, and what the API counted."""

    tenant_id: str
    users: int
    licensed: int
    licensed_archived: int
    api: dict[str, Any] | None  # the tenants row; None when the tenant has none


@dataclass(frozen=True)
class Report:
    target: Target
    roles: list[RoleRow]
    tenants: list[TenantUse]
    tenants_table: bool


# ----------------------------------------------------------------------------- Meltano


def meltano_executable() -> str:
    """The meltano next to this Python (the project's .venv), else the one on PATH."""
    found = shutil.which("meltano", path=str(Path(sys.executable).parent)) or shutil.which(
        "meltano"
    )
    if found is None:
        raise ReportError(
            "meltano not found (next to this Python or on PATH): run `make meltano-install` "
            "and use .venv/bin/python, or pass --database and --schema"
        )
    return found


def loader_config() -> dict[str, Any]:
    """target-duckdb's configuration exactly as `meltano run` would hand it to the loader."""
    command = [meltano_executable(), "invoke", "--no-install", "--dump=config", LOADER]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command, no shell
            command,
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReportError(f"`meltano invoke --dump=config {LOADER}` failed: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        tail = " | ".join(lines[-3:])
        raise ReportError(
            f"`meltano invoke --dump=config {LOADER}` exited {done.returncode} (run the report "
            f"in the Meltano project, or pass --database and --schema): {tail}"
        )
    try:
        config = json.loads(done.stdout)
    except ValueError:
        raise ReportError(
            f"`meltano invoke --dump=config {LOADER}` did not print a JSON object"
        ) from None
    if not isinstance(config, dict):
        raise ReportError(f"`meltano invoke --dump=config {LOADER}` did not print an object")
    return config


def resolve_target(database: Path | None, schema: str | None) -> Target:
    """The file and schema: from the arguments, else from Meltano's loader configuration."""
    if database is None or schema is None:
        config = loader_config()
        if database is None:
            path = config.get("path")
            if not isinstance(path, str) or not path:
                raise ReportError(f"Meltano gives {LOADER} no `path`: set TARGET_DUCKDB_PATH")
            if path.startswith("md:") or path.startswith("motherduck:"):
                raise ReportError(f"{LOADER} loads into MotherDuck ({path}): not a local file")
            database = Path(path)
        if schema is None:
            schema = str(config.get("default_target_schema") or "main")
    if not IDENTIFIER.fullmatch(schema):
        raise ReportError(f"schema {schema!r} is not a plain identifier")
    return Target(database, schema)


# ----------------------------------------------------------------------------- the warehouse


def view_names(connection: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    """The tables and views of the schema, lower case."""
    rows = connection.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ?",
        [schema],
    ).fetchall()
    return {str(name).lower() for (name,) in rows}


def check_views(present: set[str], target: Target) -> None:
    missing = [name for name in VIEWS if name not in present]
    if missing:
        raise ReportError(
            f"{target.database} has no {', '.join(missing)} in schema {target.views} (dbt's "
            "views of the current rows): build them with `meltano invoke dbt-duckdb:build` "
            "(or load and build: `meltano run tap-spanning target-duckdb dbt-duckdb:build`)"
        )


def read_warehouse(target: Target) -> Report:
    """Role counts per tenant (in the contract's order) and license use, from dbt's views."""
    if not target.database.is_file():
        raise ReportError(
            f"{target.database} does not exist: run `meltano run tap-spanning target-duckdb "
            "dbt-duckdb:build` first"
        )
    try:
        connection = duckdb.connect(str(target.database), read_only=True)
    except duckdb.Error as exc:
        raise ReportError(f"{target.database}: cannot open it ({exc})") from None
    try:
        present = view_names(connection, target.views)
        check_views(present, target)
        connection.execute(f"SET schema = '{target.views}'")  # a checked identifier
        has_tenants = TENANTS_VIEW in present
        # The SQL here is built from constants only.
        tenant_ids = (
            "SELECT tenant_id FROM stg_spanning__users "
            "UNION SELECT tenant_id FROM stg_spanning__tenants"
            if has_tenants
            else "SELECT tenant_id FROM stg_spanning__users"
        )
        roles_sql = f"""
            WITH tenant AS ({tenant_ids})
            SELECT tenant.tenant_id, r.role_id, r.name,
                   count(m.ms_id) AS members,
                   count(u.ms_id) FILTER (WHERE u.disabled) AS disabled_members
            FROM tenant CROSS JOIN stg_spanning__roles AS r
            LEFT JOIN stg_spanning__role_memberships AS m
                   ON m.tenant_id = tenant.tenant_id AND m.role_id = r.role_id
            LEFT JOIN stg_spanning__users AS u ON u.tenant_id = m.tenant_id AND u.ms_id = m.ms_id
            GROUP BY tenant.tenant_id, r.role_id, r.name
        """  # noqa: S608
        roles = [
            RoleRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]))
            for r in connection.execute(roles_sql).fetchall()
        ]
        counted = {
            str(r[0]): (int(r[1]), int(r[2]), int(r[3]))
            for r in connection.execute(
                """
                SELECT tenant_id, count(*),
                       count(*) FILTER (WHERE assigned),
                       count(*) FILTER (WHERE assigned AND is_archive)
                FROM stg_spanning__users GROUP BY tenant_id
                """
            ).fetchall()
        }
        api: dict[str, dict[str, Any]] = {}
        if has_tenants:
            columns = ", ".join(COUNTERS.values())
            tenants_sql = f"SELECT tenant_id, {columns} FROM stg_spanning__tenants"  # noqa: S608
            for row in connection.execute(tenants_sql).fetchall():
                api[str(row[0])] = dict(zip(COUNTERS, row[1:], strict=True))
    except duckdb.Error as exc:
        raise ReportError(f"{target.database}: cannot read dbt's views ({exc})") from None
    finally:
        connection.close()
    order = {role_id: index for index, role_id in enumerate(ROLE_IDS)}
    roles.sort(key=lambda role: (role.tenant_id, order.get(role.id, len(order)), role.id))
    tenants = [
        TenantUse(tenant_id, *counted.get(tenant_id, (0, 0, 0)), api.get(tenant_id))
        for tenant_id in sorted({role.tenant_id for role in roles} | set(counted) | set(api))
    ]
    return Report(target, roles, tenants, has_tenants)


# ----------------------------------------------------------------------------- output


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_roles(report: Report) -> list[str]:
    roles = report.roles
    id_width = max([len(role.id) for role in roles] + [len("Role id")])
    name_width = max([len(role.name) for role in roles] + [len("Name")])
    header = f"  {'Role id':<{id_width}}  {'Name':<{name_width}}  {'Members':>8}  {'Disabled':>8}"
    rule = f"  {'-' * id_width}  {'-' * name_width}  {'-' * 8}  {'-' * 8}"
    users = sum(tenant.users for tenant in report.tenants)
    where = f"{report.target.database} (schema {report.target.views})"
    grouped = len(report.tenants) > 1
    if grouped:
        who = f"{_plural(len(report.tenants), 'tenant')}, {_plural(users, 'user')}"
    else:
        who = ", ".join(
            [*(f"tenant {tenant.tenant_id}" for tenant in report.tenants), _plural(users, "user")]
        )
    lines = [f"Spanning roles in {where}: {who}"]
    for tenant in report.tenants:
        lines.append("")
        if grouped:
            lines.append(f"Tenant {tenant.tenant_id} ({_plural(tenant.users, 'user')})")
        lines.extend((header, rule))
        lines.extend(
            f"  {role.id:<{id_width}}  {role.name:<{name_width}}  {role.members:>8}  "
            f"{role.disabled:>8}"
            for role in roles
            if role.tenant_id == tenant.tenant_id
        )
    return lines


def _of(used: Any, bought: Any) -> str:
    return f"{'?' if used is None else used} of {'?' if bought is None else bought}"


def format_licenses(report: Report) -> list[str]:
    lines = ["", "License use (the tenants stream: GET /external/tenant, read in the same sync)"]
    if not report.tenants_table:
        lines.append(
            "  not landed: select the tenants stream (`meltano select tap-spanning tenants '*'`)"
        )
        return lines
    rows = [("Tenant", "Status", "Standard assigned", "Archive assigned", "Users")]
    notes: list[str] = []
    for tenant in report.tenants:
        api = tenant.api
        if api is None:
            notes.append(f"  NOTE: {tenant.tenant_id} has users but no tenants row: sync again")
            continue
        rows.append(
            (
                tenant.tenant_id,
                str(api.get("status")),
                _of(api.get("assignedStandard"), api.get("licenses")),
                _of(api.get("assignedArchive"), api.get("archivedLicenses")),
                str(api.get("users")),
            )
        )
        # The tenant's counters against the users landed for it in the same sync.
        expected = (api.get("users"), api.get("assigned"), api.get("assignedArchive"))
        landed = (tenant.users, tenant.licensed, tenant.licensed_archived)
        if None not in expected and expected != landed:
            notes.append(
                f"  NOTE: {tenant.tenant_id}: the API counts {expected[0]} users, {expected[1]} "
                f"assigned ({expected[2]} archive); its current users are {landed[0]}, "
                f"{landed[1]} and {landed[2]}: the tenant changed during the sync, or the "
                "tables come from different syncs; sync again"
            )
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    for number, row in enumerate(rows):
        lines.append(
            "  "
            + "  ".join(
                cell.ljust(width) if index < 2 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if number == 0:
            lines.append("  " + "  ".join("-" * width for width in widths))
    lines.extend(notes)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database", type=Path, metavar="PATH", help="the DuckDB file (default: from Meltano)"
    )
    parser.add_argument(
        "--schema",
        help="target-duckdb's default_target_schema; dbt's views are in <schema>_staging "
        "(default: from Meltano)",
    )
    args = parser.parse_args(argv)
    try:
        report = read_warehouse(resolve_target(args.database, args.schema))
    except ReportError as exc:
        print(f"role_report: {exc}", file=sys.stderr)
        return 1
    print("\n".join(format_roles(report)))
    print("\n".join(format_licenses(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
