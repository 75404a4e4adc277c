"""The shapes of the report tests' fixture fleet (tests/report_fixtures.py): the hand-made
tenants, the generated ones, and fleet_overview's flags as dbt sets them for each shape."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from tests.report_warehouse import THRESHOLDS

TODAY = dt.date.today()
YESTERDAY = TODAY - dt.timedelta(days=1)
DAYS_HELD = 35  # backup_health_daily, license_history: the 35 days ending yesterday
WEEK_AGO = YESTERDAY - dt.timedelta(days=6)  # role_changes: the week ends on the newest day

# The hand-made tenants the numbers are checked for.
TROUBLED, HEALTHY, NEVER = "contoso", "fabrikam", "northwind"
NAMES = {TROUBLED: "Contoso Pharma", HEALTHY: "Fabrikam Bakery"}  # northwind: never named
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
    name: str | None = None  # tenant_names.tenant_name
    shared_mailboxes: int = 2
    unlicensed: int = 0  # would be protectable, hold no Spanning license
    role_changes: int = 0  # grants of global_admin this week (and one revocation before)


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
            name=NAMES[TROUBLED],
            unlicensed=5,
            role_changes=2,
        ),
        Shape(
            HEALTHY,
            users=260,
            licenses=250,
            assigned_standard=240,
            global_admins=3,
            name=NAMES[HEALTHY],
            role_changes=1,
        ),
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
                unprotected=min(12, max(0, users - assigned)) if rng.random() < 0.5 else 0,
                failed_runs=rng.randint(1, 6) if bad else 0,
                reason=rng.choice(("HTTP 500 after 5 tries", "timed out after 60 s"))
                if bad
                else None,
                failure_rate=rng.choice((0.0, 0.005, 0.01, 0.02, 0.08, 0.25)),
                failing=[rng.randint(3, 8) for _ in range(rng.choice((0, 0, 0, 1, 2, 5)))],
                no_ms_license=rng.choice((0, 0, 1)),
                name=f"Client {index + 1} Holdings" if index % 4 else None,
                unlicensed=index % 3,
                role_changes=1 if index % 5 == 0 else 0,
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
        "has_unlicensed_users": shape.unlicensed > 0,
        "has_wasted_seats": shape.wasted_seats + shape.no_ms_license > 0,
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
        "has_unlicensed_users": 1,
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
