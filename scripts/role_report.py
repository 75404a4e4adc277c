"""Print who holds which Spanning role, from the DuckDB warehouse, and the tenant's licenses.

    python scripts/role_report.py [--database output/spanning.duckdb] [--no-tenant]

The role table comes from the tables that `meltano run tap-spanning target-duckdb` landed.
The license counters of the tenant come from `GET <base_url>/external/tenant`, with the tap's
own settings from the environment: TAP_SPANNING_BASE_URL (or TAP_SPANNING_REGION),
TAP_SPANNING_ADMIN_EMAIL and TAP_SPANNING_API_KEY. As with the tap, the key is sent only to a
Spanning API host or to loopback (the emulator), and never printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import requests

from tap_spanning.roles import ROLE_IDS
from tap_spanning.urls import UrlError, parse_base_url, region_base_url

DEFAULT_DATABASE = Path("output/spanning.duckdb")
TENANT_PATH = "/external/tenant"
TIMEOUT_SECONDS = 30

ROLES_SQL = """
SELECT r.id, r.name,
       count(m."msId") AS members,
       count(*) FILTER (WHERE u.disabled) AS disabled_members
FROM roles AS r
LEFT JOIN role_memberships AS m ON m."roleId" = r.id
LEFT JOIN users AS u ON u."msId" = m."msId"
GROUP BY r.id, r.name
"""
LICENSES_SQL = """
SELECT count(*) AS users,
       count(*) FILTER (WHERE assigned) AS licensed,
       count(*) FILTER (WHERE assigned AND "isArchive") AS licensed_archived
FROM users
"""


class ReportError(Exception):
    """A problem the person running the report can fix; the message says how."""


@dataclass(frozen=True)
class RoleRow:
    id: str
    name: str
    members: int
    disabled: int


@dataclass(frozen=True)
class Licenses:
    users: int
    licensed: int
    licensed_archived: int


def read_warehouse(database: Path, schema: str) -> tuple[list[RoleRow], Licenses]:
    """Role counts (in the contract's order) and license use, from the landed tables."""
    if not database.is_file():
        raise ReportError(
            f"{database} does not exist: run `meltano run tap-spanning target-duckdb` first"
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
        raise ReportError(f"--schema {schema!r} is not a plain identifier")
    connection = duckdb.connect(str(database), read_only=True)
    try:
        connection.execute(f"SET schema = '{schema}'")
        roles = [
            RoleRow(str(r[0]), str(r[1]), int(r[2]), int(r[3]))
            for r in connection.execute(ROLES_SQL).fetchall()
        ]
        row = connection.execute(LICENSES_SQL).fetchone()
    except duckdb.Error as exc:
        raise ReportError(f"{database}: cannot read the tap's tables ({exc})") from None
    finally:
        connection.close()
    if row is None:
        raise ReportError(f"{database}: the users table answered nothing")
    order = {role_id: index for index, role_id in enumerate(ROLE_IDS)}
    roles.sort(key=lambda role: (order.get(role.id, len(order)), role.id))
    return roles, Licenses(int(row[0]), int(row[1]), int(row[2]))


def tenant_base_url(env: dict[str, str]) -> str:
    """The API origin from the tap's settings in the environment, checked as the tap does."""
    base_url = env.get("TAP_SPANNING_BASE_URL", "").strip()
    region = env.get("TAP_SPANNING_REGION", "").strip()
    if not base_url and not region:
        raise ReportError(
            "set TAP_SPANNING_BASE_URL (or TAP_SPANNING_REGION) to fetch the tenant's "
            "licenses, or pass --no-tenant"
        )
    try:
        return str(parse_base_url(base_url or region_base_url(region)))
    except UrlError as exc:
        raise ReportError(str(exc)) from None


def fetch_tenant(env: dict[str, str]) -> dict[str, Any]:
    """GET /external/tenant with Basic auth from the environment."""
    origin = tenant_base_url(env)
    email = env.get("TAP_SPANNING_ADMIN_EMAIL", "").strip()
    api_key = env.get("TAP_SPANNING_API_KEY", "")
    if not email or not api_key:
        raise ReportError(
            "set TAP_SPANNING_ADMIN_EMAIL and TAP_SPANNING_API_KEY to fetch the tenant's "
            "licenses, or pass --no-tenant"
        )
    url = origin + TENANT_PATH
    try:
        response = requests.get(url, auth=(email, api_key), timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise ReportError(f"GET {url} failed: {type(exc).__name__}") from None
    if response.status_code == 401:
        raise ReportError(f"GET {url}: 401, the admin email or API key is wrong")
    if response.status_code != 200:
        raise ReportError(f"GET {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise ReportError(f"GET {url} did not answer JSON") from None
    if not isinstance(body, dict):
        raise ReportError(f"GET {url} answered {type(body).__name__}, not an object")
    return body


def format_roles(roles: list[RoleRow], licenses: Licenses, database: Path) -> list[str]:
    id_width = max([len(role.id) for role in roles] + [len("Role id")])
    name_width = max([len(role.name) for role in roles] + [len("Name")])
    rule = f"  {'-' * id_width}  {'-' * name_width}  {'-' * 8}  {'-' * 8}"
    lines = [
        f"Spanning roles in {database} ({licenses.users} users)",
        "",
        f"  {'Role id':<{id_width}}  {'Name':<{name_width}}  {'Members':>8}  {'Disabled':>8}",
        rule,
    ]
    lines.extend(
        f"  {role.id:<{id_width}}  {role.name:<{name_width}}  {role.members:>8}  {role.disabled:>8}"
        for role in roles
    )
    return lines


def format_licenses(licenses: Licenses, tenant: dict[str, Any] | None) -> list[str]:
    lines = [
        "",
        "License use",
        f"  {'Licensed users (assigned)':<34}{licenses.licensed:>8}",
        f"  {'  of them archived':<34}{licenses.licensed_archived:>8}",
    ]
    if tenant is None:
        return lines
    lines.append(
        f"  {'Tenant (GET /external/tenant)':<34}"
        f"licenses {tenant.get('licenses')}, archivedLicenses {tenant.get('archivedLicenses')}, "
        f"status {tenant.get('status')}"
    )
    api_view = (tenant.get("assigned"), tenant.get("assignedArchive"))
    if None not in api_view and api_view != (licenses.licensed, licenses.licensed_archived):
        lines.append(
            f"  NOTE: the API counts {api_view[0]} assigned ({api_view[1]} archived): "
            "the warehouse is older than the tenant; sync again"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", type=Path, default=DEFAULT_DATABASE, metavar="PATH")
    parser.add_argument("--schema", default="main", help="target-duckdb's default_target_schema")
    parser.add_argument(
        "--no-tenant", action="store_true", help="skip GET /external/tenant (no credentials)"
    )
    args = parser.parse_args(argv)
    try:
        roles, licenses = read_warehouse(args.database, args.schema)
        tenant = None if args.no_tenant else fetch_tenant(dict(os.environ))
    except ReportError as exc:
        print(f"role_report: {exc}", file=sys.stderr)
        return 1
    print("\n".join(format_roles(roles, licenses, args.database)))
    print("\n".join(format_licenses(licenses, tenant)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
