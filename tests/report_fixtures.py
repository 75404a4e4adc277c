"""The fixture fleet the report tests write into their warehouse (tests/report_warehouse.py).

A fleet of 28 tenants, three of them hand-made (one in trouble everywhere, one healthy, one
that never synced), the others drawn from a seeded generator. fleet_overview's flags and
attention_score are set from each tenant's shape, as dbt's rules would set them, so that the
page can be checked to draw them and never to decide them (a flag set against its number is
shown as set).
"""

from __future__ import annotations

import datetime as dt
import random

from tap_spanning.roles import ROLES
from tests.report_history_rows import alert_rows, coverage_rows, license_rows, role_change_rows
from tests.report_shapes import (
    BUILD_DELAY,
    DAYS_HELD,
    HEALTHY,
    HOSTILE_NAME,
    HOSTILE_UPN,
    KINDS,
    NAMES,
    NEVER,
    TODAY,
    TROUBLED,
    USER_KINDS,
    WEEK_AGO,
    YESTERDAY,
    Shape,
    attention,
    generated,
    hand_made,
)

# What the report tests import from here (the shapes' own module holds the rest).
__all__ = [
    "BUILD_DELAY",
    "DAYS_HELD",
    "HEALTHY",
    "KINDS",
    "NAMES",
    "NEVER",
    "TROUBLED",
    "WEEK_AGO",
    "YESTERDAY",
    "build_times",
    "fleet",
    "generated",
    "hand_made",
    "mart_rows",
]
from tests.report_warehouse import THRESHOLDS, TYPES, Rows


def mart_rows(shapes: list[Shape]) -> Rows:
    rows: Rows = {table: [] for table in [*TYPES, "tenant_syncs"]}
    base = dt.datetime.combine(TODAY, dt.time(2, 0))
    for number, shape in enumerate(shapes):
        tenant = shape.tenant_id
        rng = random.Random(tenant)
        # tenant_sync_health: runs nightly; failed ones after the last complete one.
        last_at = base + dt.timedelta(minutes=number % 50)
        complete_at = (
            None if shape.never_completed else last_at - dt.timedelta(days=shape.failed_runs)
        )
        version = int(last_at.timestamp() * 1000)
        rows["tenant_sync_health"].append(
            {
                "tenant_id": tenant,
                "last_sync_version": version,
                "last_sync_at": last_at,
                "last_status": "failed" if shape.failed_runs else "complete",
                "last_complete_sync_version": None
                if complete_at is None
                else int(complete_at.timestamp() * 1000),
                "last_complete_at": complete_at,
                "consecutive_failed_runs": shape.failed_runs,
                "last_reason": shape.reason if shape.failed_runs else None,
                "is_current": not shape.failed_runs and not shape.offboarded,
                "is_offboarded": shape.offboarded,
            }
        )
        rows["tenant_syncs"].append(
            {
                "tenant_id": tenant,
                "sync_version": version,
                "status": "failed" if shape.failed_runs else "complete",
                "finished_at": last_at,
            }
        )
        # backup_health_daily, and the success the overview derives from it.
        ok_yesterday = total_yesterday = ok_week = total_week = 0
        for back in range(DAYS_HELD, 0, -1):
            when = TODAY - dt.timedelta(days=back)
            for kind in KINDS if shape.users else ():
                total = shape.users if kind != "SPSITE" else shape.users // 10 + 1
                failed = round(total * shape.failure_rate * rng.uniform(0.5, 1.5))
                failed = min(total, failed)
                partial = min(total - failed, rng.randint(0, 2))
                successful = total - failed - partial
                rows["backup_health_daily"].append(
                    {
                        "tenant_id": tenant,
                        "date": when,
                        "type": kind,
                        "total": total,
                        "successful": successful,
                        "partial": partial,
                        "failed": failed,
                        "success_rate": successful / total if total else None,
                    }
                )
                if back == 1:
                    ok_yesterday += successful
                    total_yesterday += total
                if back <= 7:
                    ok_week += successful
                    total_week += total
        # access_review: one row per admin membership.
        for role, members in (
            ("global_admin", shape.global_admins),
            ("spanning_admin", shape.spanning_admins),
        ):
            for index in range(members):
                disabled = role == "global_admin" and index < shape.disabled_admins
                no_license = role == "spanning_admin" and index == 0 and number % 3 == 0
                rows["access_review"].append(
                    {
                        "tenant_id": tenant,
                        "ms_id": f"{tenant}-{role}-{index}",
                        "user_principal_name": f"{role.split('_')[0]}{index}@{tenant}.example",
                        "display_name": HOSTILE_NAME
                        if tenant == TROUBLED and index == 0
                        else f"Admin {index} of {tenant}",
                        "role_id": role,
                        "is_disabled": disabled,
                        "is_deleted_from_microsoft": disabled and index == 0,
                        "has_no_microsoft_license": no_license,
                        "is_archived": disabled and index > 0,
                        "needs_review": disabled or no_license,
                    }
                )
        # license_waste: the wasted seats, then users without a Microsoft license.
        for index in range(shape.wasted_seats + shape.no_ms_license):
            reason = (
                ("deleted_from_microsoft" if index % 2 == 0 else "archived")
                if index < shape.wasted_seats
                else "no_microsoft_license"
            )
            rows["license_waste"].append(
                {
                    "tenant_id": tenant,
                    "ms_id": f"{tenant}-waste-{index}",
                    "user_principal_name": HOSTILE_UPN
                    if tenant == TROUBLED and index == 0
                    else f"left{index}@{tenant}.example",
                    "reason": reason,
                }
            )
        # failing_users: each failing user on one or two workloads.
        for index, streak in enumerate(shape.failing):
            for kind in USER_KINDS[: 1 + index % 2]:
                rows["failing_users"].append(
                    {
                        "tenant_id": tenant,
                        "ms_id": f"{tenant}-user-{index}",
                        "user_principal_name": f"user{index}@{tenant}.example",
                        "type": kind,
                        "streak_days": streak,
                        "first_day": YESTERDAY - dt.timedelta(days=streak - 1),
                        "last_day": YESTERDAY,
                    }
                )
        licenses = shape.licenses
        rows["fleet_overview"].append(
            {
                "tenant_id": tenant,
                "license_status": None if shape.never_completed else "paid",
                "users": shape.users,
                "licensed_users": shape.assigned_standard + shape.assigned_archive,
                "licenses": licenses,
                "archived_licenses": None if shape.never_completed else shape.archived_licenses,
                "assigned_standard": None if shape.never_completed else shape.assigned_standard,
                "assigned_archive": None if shape.never_completed else shape.assigned_archive,
                # The tenant's counters agree with its users: no tenant changed mid-sync.
                "counted_users": None if shape.never_completed else shape.users,
                "counted_assigned": None
                if shape.never_completed
                else shape.assigned_standard + shape.assigned_archive,
                "counters_disagree": False,
                "seat_use_pct": 100 * shape.assigned_standard / licenses if licenses else None,
                "archive_seat_use_pct": 100 * shape.assigned_archive / shape.archived_licenses
                if shape.archived_licenses
                else None,
                "global_admins": shape.global_admins,
                "spanning_admins": shape.spanning_admins,
                "disabled_admins": shape.disabled_admins,
                # One definition: the tenant's license_waste rows.
                "wasted_seats": shape.wasted_seats + shape.no_ms_license,
                "unlicensed_users": shape.unlicensed,
                "last_complete_sync_at": complete_at,
                "failed_syncs_in_a_row": shape.failed_runs,
                "backup_success_yesterday_pct": 100 * ok_yesterday / total_yesterday
                if total_yesterday
                else None,
                "backup_success_7d_pct": 100 * ok_week / total_week if total_week else None,
                "is_offboarded": shape.offboarded,
            }
        )
        overview = rows["fleet_overview"][-1]
        overview.update(attention(overview, shape))
        overview.update(coverage_rows(rows, shape))
        license_rows(rows, shape)
        role_change_rows(rows, shape, version)
        overview["open_alerts"] = alert_rows(rows, shape, overview)
        if not shape.never_completed and not shape.offboarded:
            held = {"global_admin": shape.global_admins, "spanning_admin": shape.spanning_admins}
            for tier in ROLES:
                role_id, role_name = tier.id, tier.name
                rows["tenant_roles"].append(
                    {
                        "tenant_id": tenant,
                        "role_id": role_id,
                        "role_name": role_name,
                        "members": held.get(role_id, 0),
                        "disabled_members": shape.disabled_admins
                        if role_id == "global_admin"
                        else 0,
                    }
                )
    rows["attention_thresholds"].append(dict(THRESHOLDS))
    names = {shape.tenant_id: shape.name for shape in shapes}
    for table, listed in rows.items():
        for row in listed:
            if "tenant_id" in row and table != "tenant_syncs":
                row["tenant_name"] = names.get(row["tenant_id"])
    rows["tenant_names"] = [{"tenant_id": s.tenant_id, "tenant_name": s.name} for s in shapes]
    newest = max((row["finished_at"] for row in rows["tenant_syncs"]), default=None)
    if newest is not None:
        rows["marts_build"].append({"built_at": newest + BUILD_DELAY, "newest_sync_at": newest})
    return rows


def fleet(tenants: int) -> Rows:
    return mart_rows(hand_made() + generated(tenants - len(hand_made()), seed=tenants))


def build_times(rows: Rows) -> tuple[dt.datetime, dt.datetime]:
    """The fixture's marts_build: (built_at, newest_sync_at)."""
    (build,) = rows["marts_build"]
    return build["built_at"], build["newest_sync_at"]
