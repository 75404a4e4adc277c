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
from dataclasses import dataclass, field
from typing import Any

from tap_spanning.roles import ROLES
from tests.report_warehouse import THRESHOLDS, TYPES, Rows

TODAY = dt.date.today()
YESTERDAY = TODAY - dt.timedelta(days=1)
DAYS_HELD = 8  # backup_health_daily: the 8 days ending yesterday

# The hand-made tenants the numbers are checked for.
TROUBLED, HEALTHY, NEVER = "contoso", "fabrikam", "northwind"
HOSTILE_NAME = '<img src=x onerror="document.title=1">'
HOSTILE_UPN = '"><script>document.title=2</script>@evil.example'
REASON_WITH_URL = (
    "Spanning refused the credentials (HTTP 401 from https://o365-api-us.spanningbackup.com)"
)

BUILD_DELAY = dt.timedelta(minutes=20)  # marts built this long after the newest sync
KINDS = ("CALENDAR", "CONTACT", "DRIVE", "MAIL", "SPSITE")
USER_KINDS = ("CALENDAR", "CONTACT", "DRIVE", "MAIL")


@dataclass
class Shape:
    """What one tenant looks like; its mart rows are derived from it."""

    tenant_id: str
    users: int
    licenses: int | None
    assigned_standard: int
    archived_licenses: int = 0
    assigned_archive: int = 0
    global_admins: int = 3
    spanning_admins: int = 2
    disabled_admins: int = 0
    wasted_seats: int = 0
    unprotected: int = 0
    failed_runs: int = 0
    never_completed: bool = False
    reason: str | None = None
    failure_rate: float = 0.01  # of each day's backups
    failing: list[int] = field(default_factory=list)  # streak days of each failing user
    no_ms_license: int = 0  # license_waste rows beyond the wasted seats
    offboarded: bool = False  # no longer listed: its marts rows kept, counted nowhere


def hand_made() -> list[Shape]:
    return [
        Shape(
            TROUBLED,
            users=1240,
            licenses=1000,
            assigned_standard=1150,
            archived_licenses=50,
            assigned_archive=20,
            global_admins=7,
            spanning_admins=3,
            disabled_admins=2,
            wasted_seats=6,
            unprotected=40,
            failed_runs=3,
            reason=REASON_WITH_URL,
            failure_rate=0.3,
            failing=[9, 6, 4, 3],
            no_ms_license=2,
        ),
        Shape(HEALTHY, users=260, licenses=250, assigned_standard=240, global_admins=3),
        Shape(
            NEVER,
            users=0,
            licenses=None,
            assigned_standard=0,
            global_admins=0,
            spanning_admins=0,
            failed_runs=2,
            never_completed=True,
            reason="Spanning refused the credentials (HTTP 401)",
        ),
    ]


def generated(count: int, seed: int) -> list[Shape]:
    """Tenants of uneven sizes, most healthy, some with one finding or another."""
    rng = random.Random(seed)
    shapes = []
    for index in range(count):
        users = max(5, min(20000, int(rng.lognormvariate(5.2, 1.1))))
        licenses = max(5, round(users * rng.uniform(0.75, 1.35)))
        assigned = min(users, round(licenses * rng.uniform(0.4, 1.15)))
        bad = rng.random() < 0.12
        shapes.append(
            Shape(
                f"client-{index + 1:04d}",
                users=users,
                licenses=licenses,
                assigned_standard=assigned,
                archived_licenses=rng.choice((0, 0, 10, 25)),
                global_admins=rng.choice((0, 1, 2, 2, 3, 3, 3, 4, 4, 5, 6, 9)),
                spanning_admins=rng.randint(1, 4),
                disabled_admins=rng.choice((0, 0, 0, 0, 1, 2)),
                wasted_seats=rng.randint(0, max(0, users // 60)),
                unprotected=max(0, users - assigned) if rng.random() < 0.5 else 0,
                failed_runs=rng.randint(1, 6) if bad else 0,
                reason=rng.choice(("HTTP 500 after 5 tries", "timed out after 60 s"))
                if bad
                else None,
                failure_rate=rng.choice((0.0, 0.005, 0.01, 0.02, 0.08, 0.25)),
                failing=[rng.randint(3, 8) for _ in range(rng.choice((0, 0, 0, 1, 2, 5)))],
                no_ms_license=rng.choice((0, 0, 1)),
            )
        )
    return shapes


def attention(overview: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """fleet_overview's flags and attention_score for this shape, as dbt sets them (marts.yml
    describes each): the fixture's known values, which the page must show, not recompute."""
    limits = THRESHOLDS
    backup = overview["backup_success_yesterday_pct"]
    seat = overview["seat_use_pct"]
    failing = len(shape.failing)
    many = shape.global_admins >= limits["global_admin_flag_at"]
    flags = {
        "is_never_synced": shape.never_completed,
        "is_sync_failing": shape.failed_runs > 0 and not shape.never_completed,
        "is_backup_below_target": backup is not None and backup < limits["backup_target_pct"],
        "is_backup_bad": backup is not None and backup < limits["backup_bad_pct"],
        "has_failing_users": failing > 0,
        "has_too_many_global_admins": many,
        "has_too_few_global_admins": not many
        and shape.users > 0
        and shape.global_admins < limits["global_admin_min"],
        "has_disabled_admins": shape.disabled_admins > 0,
        "is_over_licensed": seat is not None and seat > limits["seat_use_max_pct"],
        "has_unprotected_users": shape.unprotected > 0,
        "has_wasted_seats": shape.wasted_seats > 0,
    }
    weights = {
        "is_never_synced": 10,
        "is_sync_failing": 8,
        "is_backup_below_target": 6 if flags["is_backup_bad"] else 3,
        "has_failing_users": 6 if failing >= limits["failing_users_pattern_at"] else 4,
        "has_too_many_global_admins": 3,
        "has_too_few_global_admins": 1,
        "has_disabled_admins": 3,
        "is_over_licensed": 3,
        "has_unprotected_users": 2,
        "has_wasted_seats": 1,
    }
    if shape.offboarded:  # it needs nothing
        flags = dict.fromkeys(flags, False)
    score = sum(weights[name] for name, holds in flags.items() if holds and name in weights)
    return {
        **flags,
        "failing_users": failing,
        "longest_failing_streak_days": max(shape.failing, default=0),
        "attention_score": score,
        "needs_attention": score > 0,
    }


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
                "wasted_seats": shape.wasted_seats,
                "unprotected_active_users": shape.unprotected,
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
