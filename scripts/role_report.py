"""Print who holds which Spanning role, and each tenant's license use, from the DuckDB warehouse.

    python scripts/role_report.py [--database PATH] [--schema NAME]

Run it in the Meltano project, after `meltano run tap-spanning target-duckdb` (or
`bash scripts/duckdb_refresh.sh`). It reads the file and schema that target-duckdb loaded,
as Meltano configures the loader: it asks Meltano for that configuration
(`meltano invoke --dump=config target-duckdb`: meltano.yml, the active environment, `.env`,
and TARGET_DUCKDB_* variables such as TARGET_DUCKDB_PATH, exactly what `meltano run` hands
target-duckdb). A relative path is relative to the current directory, as it is for the loader.
--database and --schema override what Meltano says.

The role table comes from the users, roles and role_memberships tables, one table per tenant
when the warehouse holds more than one. The license counters come from the tenants table, which
the tap lands from GET /external/tenant in the same sync. The report sends no request to
Spanning and needs no credentials.
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

from tap_spanning.records import TENANT_COUNTERS
from tap_spanning.roles import ROLE_IDS

LOADER = "target-duckdb"
MELTANO_TIMEOUT_SECONDS = 300
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ReportError(Exception):
    """A problem the person running the report can fix; the message says how."""


@dataclass(frozen=True)
class Target:
    """Where target-duckdb loaded: the file and the schema."""

    database: Path
    schema: str


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


def table_columns(connection: duckdb.DuckDBPyConnection, schema: str) -> dict[str, set[str]]:
    """Lower-cased column names of every table in the schema (target-duckdb lower-cases)."""
    rows = connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ?",
        [schema],
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(str(table).lower(), set()).add(str(column).lower())
    return tables


def check_tables(tables: dict[str, set[str]], target: Target) -> None:
    missing = [name for name in ("users", "roles", "role_memberships") if name not in tables]
    if missing:
        raise ReportError(
            f"{target.database} has no {', '.join(missing)} table in schema {target.schema}: "
            "run `bash scripts/duckdb_refresh.sh` first"
        )
    for name in ("users", "role_memberships"):
        if "tenant_id" not in tables[name]:
            raise ReportError(
                f"{target.database}: {target.schema}.{name} has no tenant_id column (it was "
                "loaded by an older tap): run `bash scripts/duckdb_refresh.sh` to reload it"
            )


def read_warehouse(target: Target) -> Report:
    """Role counts per tenant (in the contract's order) and license use, from the tables."""
    if not target.database.is_file():
        raise ReportError(
            f"{target.database} does not exist: run `bash scripts/duckdb_refresh.sh` "
            "(or `meltano run tap-spanning target-duckdb`) first"
        )
    try:
        connection = duckdb.connect(str(target.database), read_only=True)
    except duckdb.Error as exc:
        raise ReportError(f"{target.database}: cannot open it ({exc})") from None
    try:
        connection.execute(f"SET schema = '{target.schema}'")
        tables = table_columns(connection, target.schema)
        check_tables(tables, target)
        has_tenants = "tenants" in tables
        # The SQL here is built from constants and column names checked above only.
        tenant_ids = (
            "SELECT tenant_id FROM users UNION SELECT tenant_id FROM tenants"
            if has_tenants
            else "SELECT tenant_id FROM users"
        )
        roles_sql = f"""
            WITH tenant AS ({tenant_ids})
            SELECT tenant.tenant_id, r.id, r.name,
                   count(m."msId") AS members,
                   count(u."msId") FILTER (WHERE u.disabled) AS disabled_members
            FROM tenant CROSS JOIN roles AS r
            LEFT JOIN role_memberships AS m
                   ON m.tenant_id = tenant.tenant_id AND m."roleId" = r.id
            LEFT JOIN users AS u ON u.tenant_id = m.tenant_id AND u."msId" = m."msId"
            GROUP BY tenant.tenant_id, r.id, r.name
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
                       count(*) FILTER (WHERE assigned AND "isArchive")
                FROM users GROUP BY tenant_id
                """
            ).fetchall()
        }
        api: dict[str, dict[str, Any]] = {}
        if has_tenants:
            present = [
                name for name in (*TENANT_COUNTERS, "status") if name.lower() in tables["tenants"]
            ]
            columns = ", ".join(f'"{name}"' for name in present)
            tenants_sql = f"SELECT tenant_id, {columns} FROM tenants"  # noqa: S608
            for row in connection.execute(tenants_sql).fetchall():
                api[str(row[0])] = dict(zip(present, row[1:], strict=True))
    except duckdb.Error as exc:
        raise ReportError(f"{target.database}: cannot read the tap's tables ({exc})") from None
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
    where = f"{report.target.database} (schema {report.target.schema})"
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
    lines = ["", "License use (the tenants table: GET /external/tenant, read in the same sync)"]
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
                f"assigned ({expected[2]} archive); the users table holds {landed[0]}, "
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
        "--schema", help="target-duckdb's default_target_schema (default: from Meltano)"
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
