"""The role report: who holds which Spanning role, and each tenant's license use, as text.

    python -m spanning_reports roles [--duckdb PATH | --postgres URL] [--schema NAME]

Run it after the marts are built (`meltano run tap-spanning target-duckdb dbt-duckdb:build`);
through Meltano, `meltano invoke fleet-report:roles-duckdb` (or `:roles-postgres`) finds the
warehouse as the dbt profiles do (utility.py). It reads two marts, each with the columns
marts.yml declares: `tenant_roles` (one row per current tenant and role: members, disabled
members) and `fleet_overview` (current users and the license counters of the tenants stream,
GET /external/tenant, read in the same sync). So it shows current rows only, as dbt's
current-rows rule defines them: users removed from a tenant and offboarded clients are in no
count, and a failing tenant is shown as its last complete sync found it. One role table per
tenant when the warehouse holds more than one. It sends no request to Spanning and needs no
credentials.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanning_reports.fleet import add_source_arguments, read_source
from spanning_reports.marts import ROLE_MARTS, Marts, ReportError, Row
from spanning_reports.values import count, flag, text


@dataclass(frozen=True)
class TenantRoles:
    tenant_id: str
    roles: list[Row]  # tenant_roles rows, by role_id
    overview: Row  # fleet_overview's row; {} when it has none


def by_tenant(marts: Marts) -> list[TenantRoles]:
    """The tenants of tenant_roles (the current ones), each with its roles and overview."""
    overview = {text(row["tenant_id"]): row for row in marts["fleet_overview"]}
    roles: dict[str, list[Row]] = {}
    for row in marts["tenant_roles"]:
        roles.setdefault(text(row["tenant_id"]), []).append(row)
    return [
        TenantRoles(
            tenant_id,
            sorted(roles[tenant_id], key=lambda row: text(row["role_id"])),
            overview.get(tenant_id, {}),
        )
        for tenant_id in sorted(roles)
    ]


def plural(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def format_roles(marts: Marts, tenants: Sequence[TenantRoles]) -> list[str]:
    rows = [row for tenant in tenants for row in tenant.roles]
    id_width = max([len(text(row["role_id"])) for row in rows] + [len("Role id")])
    name_width = max([len(text(row["role_name"])) for row in rows] + [len("Name")])
    header = f"  {'Role id':<{id_width}}  {'Name':<{name_width}}  {'Members':>8}  {'Disabled':>8}"
    rule = f"  {'-' * id_width}  {'-' * name_width}  {'-' * 8}  {'-' * 8}"
    users = sum(count(tenant.overview.get("users")) for tenant in tenants)
    grouped = len(tenants) > 1
    if grouped:
        who = f"{plural(len(tenants), 'tenant')}, {plural(users, 'user')}"
    else:
        who = ", ".join([*(f"tenant {t.tenant_id}" for t in tenants), plural(users, "user")])
    lines = [f"Spanning roles in {marts.source} (schema {marts.schema}): {who}"]
    for tenant in tenants:
        lines.append("")
        if grouped:
            tenant_users = count(tenant.overview.get("users"))
            lines.append(f"Tenant {tenant.tenant_id} ({plural(tenant_users, 'user')})")
        lines.extend((header, rule))
        lines.extend(
            f"  {text(row['role_id']):<{id_width}}  {text(row['role_name']):<{name_width}}  "
            f"{count(row['members']):>8}  {count(row['disabled_members']):>8}"
            for row in tenant.roles
        )
    return lines


def of(used: Any, bought: Any) -> str:
    def shown(value: Any) -> str:
        return "?" if value is None else str(count(value))

    return f"{shown(used)} of {shown(bought)}"


def format_licenses(tenants: Sequence[TenantRoles]) -> list[str]:
    lines = [
        "",
        "License use (fleet_overview: the tenants stream, GET /external/tenant, read in the "
        "same sync)",
    ]
    rows = [("Tenant", "Status", "Standard assigned", "Archive assigned", "Users")]
    notes: list[str] = []
    for tenant in tenants:
        o = tenant.overview
        if o.get("licenses") is None and o.get("license_status") is None:
            notes.append(f"  NOTE: {tenant.tenant_id} has no license counters landed: sync again")
            continue
        rows.append(
            (
                tenant.tenant_id,
                text(o.get("license_status")),
                of(o.get("assigned_standard"), o.get("licenses")),
                of(o.get("assigned_archive"), o.get("archived_licenses")),
                str(count(o.get("users"))),
            )
        )
        if flag(o.get("counters_disagree")):
            notes.append(
                f"  NOTE: {tenant.tenant_id}: the API counts {text(o.get('counted_users'))} "
                f"users, {text(o.get('counted_assigned'))} assigned "
                f"({text(o.get('assigned_archive'))} archive); its current users differ "
                f"({count(o.get('users'))} users, {count(o.get('licensed_users'))} licensed): the "
                "tenant changed during the sync, or the tables come from different syncs; sync "
                "again"
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spanning_reports roles",
        description="Print who holds which Spanning role, and each tenant's license use, "
        "from the dbt marts tenant_roles and fleet_overview.",
    )
    add_source_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        marts = read_source(args, ROLE_MARTS, freshness=False)
    except ReportError as exc:
        print(f"role_report: {exc}", file=sys.stderr)
        return 1
    tenants = by_tenant(marts)
    print("\n".join([*format_roles(marts, tenants), *format_licenses(tenants)]))
    return 0
