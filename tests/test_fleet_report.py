"""The reports package (reports/, spanning_reports): marts in a warehouse -> the page or the
role report.

The marts are written here with known rows into a DuckDB file (and, for the PostgreSQL path,
into a fresh database): a fleet of 28 tenants, three of them hand-made (one in trouble
everywhere, one healthy, one that never synced), the others drawn from a seeded generator. The
columns are those transform/models/marts/marts.yml declares (`mart_columns()`, the one list),
each given a type here; fleet_overview's flags and attention_score are set from each tenant's
shape, as dbt's rules would set them, so that the page can be checked to draw them and never to
decide them (a flag set against its number is shown as set).

The fast tier renders the page in process from that fixture warehouse and reads its DOM: the
freshness alert (stale marts, a failed dbt build, no marts_build), offboarded tenants, names
that hide characters, a tenant named `<script>`, the order by attention_score, the bands of
attention_thresholds, the reader selecting exactly marts.yml's columns, the CSP's hashes, the
pure chart and table geometry, and the role report's text. The e2e tier runs the command as a
process, opens the page in headless Chromium (bash scripts/chromium.sh installs Debian's
package when it is missing: no console message, no page error, a real screenshot, the marts'
numbers in the DOM, headers that sort), reads PostgreSQL, and a fleet of 1,000 tenants.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from spanning_reports import charts, freshness, marts, page, roles, tables, tenant_charts
from spanning_reports import fleet as fleet_report
from spanning_reports.tenants import Thresholds, build_tenants
from typing_extensions import override

from tap_spanning.roles import ROLES
from tests.test_first_hour import parse_report

e2e = pytest.mark.e2e  # the Chromium, PostgreSQL and process tests; the rest is fast

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_SH = ROOT / "scripts" / "chromium.sh"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:54329/postgres"
BROWSER_TIMEOUT = 90
TOP = 20  # the report's default: bars per chart
MAX_ROWS = 500  # and rows per table
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

# attention_thresholds as dbt_project.yml's vars set it.
THRESHOLDS: dict[str, Any] = {
    "backup_target_pct": 95.0,
    "backup_bad_pct": 80.0,
    "global_admin_min": 2,
    "global_admin_max": 4,
    "global_admin_flag_at": 5,
    "seat_use_max_pct": 100.0,
    "failing_users_pattern_at": 10,
}
FLAGS = (
    "is_never_synced",
    "is_sync_failing",
    "is_backup_below_target",
    "is_backup_bad",
    "has_failing_users",
    "has_too_many_global_admins",
    "has_too_few_global_admins",
    "has_disabled_admins",
    "is_over_licensed",
    "has_unprotected_users",
    "has_wasted_seats",
    "needs_attention",
)
# The type of each column the fixture writes (the same DDL on DuckDB and PostgreSQL, but
# DOUBLE); the columns, and their order, are marts.yml's.
TYPES: dict[str, dict[str, str]] = {
    "fleet_overview": {
        "tenant_id": "VARCHAR",
        "license_status": "VARCHAR",
        **dict.fromkeys(
            (
                "users",
                "licensed_users",
                "licenses",
                "archived_licenses",
                "assigned_standard",
                "assigned_archive",
                "global_admins",
                "spanning_admins",
                "disabled_admins",
                "wasted_seats",
                "unprotected_active_users",
                "failed_syncs_in_a_row",
                "failing_users",
                "longest_failing_streak_days",
                "attention_score",
            ),
            "BIGINT",
        ),
        **dict.fromkeys(
            (
                "seat_use_pct",
                "archive_seat_use_pct",
                "backup_success_yesterday_pct",
                "backup_success_7d_pct",
            ),
            "DOUBLE",
        ),
        "last_complete_sync_at": "TIMESTAMP",
        "is_offboarded": "BOOLEAN",
        **dict.fromkeys(FLAGS, "BOOLEAN"),
    },
    "access_review": {
        **dict.fromkeys(
            ("tenant_id", "ms_id", "user_principal_name", "display_name", "role_id"), "VARCHAR"
        ),
        **dict.fromkeys(
            (
                "is_disabled",
                "is_deleted_from_microsoft",
                "has_no_microsoft_license",
                "is_archived",
                "needs_review",
            ),
            "BOOLEAN",
        ),
    },
    "license_waste": dict.fromkeys(
        ("tenant_id", "ms_id", "user_principal_name", "reason"), "VARCHAR"
    ),
    "backup_health_daily": {
        "tenant_id": "VARCHAR",
        "date": "DATE",
        "type": "VARCHAR",
        **dict.fromkeys(("total", "successful", "partial", "failed"), "BIGINT"),
        "success_rate": "DOUBLE",
    },
    "failing_users": {
        **dict.fromkeys(("tenant_id", "ms_id", "user_principal_name", "type"), "VARCHAR"),
        "streak_days": "BIGINT",
        "first_day": "DATE",
        "last_day": "DATE",
    },
    "tenant_sync_health": {
        "tenant_id": "VARCHAR",
        "last_sync_version": "BIGINT",
        "last_sync_at": "TIMESTAMP",
        "last_status": "VARCHAR",
        "last_complete_sync_version": "BIGINT",
        "last_complete_at": "TIMESTAMP",
        "consecutive_failed_runs": "BIGINT",
        "last_reason": "VARCHAR",
        "is_current": "BOOLEAN",
        "is_offboarded": "BOOLEAN",
    },
    "attention_thresholds": {
        name: "DOUBLE" if isinstance(value, float) else "BIGINT"
        for name, value in THRESHOLDS.items()
    },
    "tenant_roles": {
        **dict.fromkeys(("tenant_id", "role_id", "role_name"), "VARCHAR"),
        **dict.fromkeys(("members", "disabled_members"), "BIGINT"),
    },
    "marts_build": {"built_at": "TIMESTAMP", "newest_sync_at": "TIMESTAMP"},
}
# Not a mart: the tap's own tenant_syncs (the columns freshness reads), beside the marts as
# the loaders leave it.
TENANT_SYNCS = {
    "tenant_id": "VARCHAR",
    "sync_version": "BIGINT",
    "status": "VARCHAR",
    "finished_at": "TIMESTAMP",
}
BUILD_DELAY = dt.timedelta(minutes=20)  # marts built this long after the newest sync
KINDS = ("CALENDAR", "CONTACT", "DRIVE", "MAIL", "SPSITE")
USER_KINDS = ("CALENDAR", "CONTACT", "DRIVE", "MAIL")
Rows = dict[str, list[dict[str, Any]]]


def columns_of() -> dict[str, dict[str, str]]:
    """Each table the fixture writes -> its columns (marts.yml's, in its order) and types."""
    declared = marts.mart_columns()
    tables = {mart: {c: TYPES[mart][c] for c in declared[mart]} for mart in TYPES}
    return {**tables, "tenant_syncs": TENANT_SYNCS}


# ----------------------------------------------------------------------------- fixture marts


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


def ddl(table: str, columns: dict[str, str], schema: str, double: str = "DOUBLE") -> str:
    listed = ", ".join(
        f'"{name}" {double if kind == "DOUBLE" else kind}' for name, kind in columns.items()
    )
    return f'CREATE TABLE "{schema}"."{table}" ({listed})'


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def write_duckdb(
    path: Path, rows: Rows, schema: str = "main", without: tuple[str, ...] = ()
) -> None:
    """The marts as dbt-duckdb would leave them: tables in `schema` of the file, with
    marts.yml's columns (but the tables named in `without`)."""
    connection = duckdb.connect(str(path))
    try:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for table, columns in columns_of().items():
            if table in without:
                continue
            connection.execute(ddl(table, columns, schema))
            if not rows[table]:
                continue
            source = path.with_name(f"{path.stem}-{table}.jsonl")
            source.write_text(
                "".join(
                    json.dumps({k: jsonable(row[k]) for k in columns}) + "\n" for row in rows[table]
                ),
                encoding="utf-8",
            )
            types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
            connection.execute(
                f'INSERT INTO "{schema}"."{table}" SELECT * FROM read_json(?, '
                f"format = 'newline_delimited', columns = {{{types}}})",
                [str(source)],
            )
            source.unlink()
    finally:
        connection.close()


def read_back(path: Path, mart: str) -> dict[str, dict[str, Any]]:
    """A mart's rows by tenant_id (the first row of each), as the warehouse returns them."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        cursor = connection.execute(f'SELECT * FROM main."{mart}"')
        names = [column[0] for column in cursor.description or ()]
        found: dict[str, dict[str, Any]] = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            found.setdefault(row["tenant_id"], row)
        return found
    finally:
        connection.close()


def built_at(path: Path) -> dt.datetime:
    """marts_build.built_at of the fixture warehouse (naive: UTC, as dbt leaves it)."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        found = connection.execute("SELECT built_at FROM main.marts_build").fetchone()
    finally:
        connection.close()
    assert found is not None
    return found[0]


def write_results(
    path: Path, statuses: list[str], generated_at: dt.datetime, which: str = "build"
) -> Path:
    """dbt's run_results.json as dbt 1.8 writes it (the fields the report reads, and some it
    does not): one result per status, a model when it succeeded or errored, else a test."""
    results: list[dict[str, Any]] = [
        {
            "status": status,
            "unique_id": f"model.spanning.model_{index}"
            if status in ("success", "error")
            else f"test.spanning.test_{index}",
            "timing": [],
            "thread_id": "Thread-1",
            "execution_time": 0.1,
            "adapter_response": {},
            "message": None,
            "failures": 1 if status == "fail" else None,
        }
        for index, status in enumerate(statuses)
    ]
    document = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.8.10",
            "generated_at": generated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "invocation_id": str(uuid.uuid4()),
            "env": {},
        },
        "results": results,
        "elapsed_time": 1.5,
        "args": {"which": which, "target_path": str(path.parent)},
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the command


def run_report(*args: str, output: Path) -> subprocess.CompletedProcess[str]:
    """`python -m spanning_reports fleet`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "spanning_reports", "fleet", *args, "-o", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


# ----------------------------------------------------------------------------- the DOM


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    content: list[str | Node] = field(default_factory=list)  # text and children, in order

    @property
    def text(self) -> str:
        return "".join(part if isinstance(part, str) else part.text for part in self.content)

    def find_all(self, test: Callable[[Node], bool]) -> list[Node]:
        found = []
        for child in self.children:
            if test(child):
                found.append(child)
            found.extend(child.find_all(test))
        return found

    def find(self, test: Callable[[Node], bool]) -> Node:
        found = self.find_all(test)
        assert found, "no such element"
        return found[0]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.current = self.root

    @override
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        self.current.content.append(node)
        if tag not in VOID:
            self.current = node

    @override
    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    @override
    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    @override
    def handle_data(self, data: str) -> None:
        self.current.content.append(data)


def parse(page: str) -> Node:
    tree = Tree()
    tree.feed(page)
    tree.close()
    return tree.root


def table_rows(dom: Node, name: str) -> list[Node]:
    table = dom.find(lambda n: n.tag == "table" and n.attrs.get("data-table") == name)
    body = table.find(lambda n: n.tag == "tbody")
    return [row for row in body.children if row.tag == "tr"]


def headers(dom: Node, name: str) -> list[str]:
    table = dom.find(lambda n: n.tag == "table" and n.attrs.get("data-table") == name)
    return [cell.text for cell in table.find_all(lambda n: n.tag == "th")]


def cells_by_header(dom: Node, name: str, row: Node) -> dict[str, str]:
    cells = [cell.text for cell in row.children if cell.tag == "td"]
    return dict(zip(headers(dom, name), cells, strict=True))


def bars(dom: Node, chart: str) -> list[Node]:
    svg = dom.find(lambda n: n.tag == "svg" and n.attrs.get("data-chart") == chart)
    return svg.find_all(lambda n: n.tag == "g" and "bar" in n.attrs.get("class", "").split())


# ----------------------------------------------------------------------------- Chromium


@dataclass
class BrowserRun:
    stdout: str
    stderr: str
    returncode: int

    @property
    def console(self) -> list[str]:
        """The page's console messages and errors that Chromium logged."""
        return [
            line
            for line in self.stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line
        ]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser: scripts/chromium.sh installs Debian's chromium when it is missing."""
    done = subprocess.run(
        ["bash", str(CHROMIUM_SH)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"scripts/chromium.sh failed:\n{done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"scripts/chromium.sh printed no path:\n{done.stderr[-3000:]}"
    path = lines[-1]
    assert Path(path).exists() or shutil.which(path), path
    return path


def browse(chromium: str, page: Path, work: Path, *extra: str) -> subprocess.Popen[str]:
    """Start headless Chromium on the page, a profile of its own, its log on stderr."""
    profile = work / f"profile-{uuid.uuid4().hex[:8]}"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2000",
        *extra,
        page.resolve().as_uri(),
    ]
    env = {**os.environ, "HOME": str(work)}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def finish(process: subprocess.Popen[str]) -> BrowserRun:
    try:
        stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT} s:\n{stderr[-3000:]}")
    return BrowserRun(stdout, stderr, process.returncode)


# A test-only script, appended to a copy of the report (its hash added to the page's CSP, which
# allows only the page's own scripts): records the order the page opens with, then clicks
# headers and records the orders they give.
CLICKS = """
(function () {
  function table(name) { return document.querySelector('table[data-table="' + name + '"]'); }
  function column(t, title) {
    var cells = t.tHead.rows[0].cells;
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].textContent.trim() === title) { return cells[i]; }
    }
    throw new Error('no column ' + title);
  }
  function order(t, attribute) {
    return Array.prototype.map.call(t.tBodies[0].rows, function (row) {
      return row.getAttribute(attribute);
    }).join('|');
  }
  var tenants = table('fleet_overview');
  var record = document.body;
  record.setAttribute('data-opened-with', order(tenants, 'data-tenant'));
  column(tenants, 'Global Admins').querySelector('button').click();
  record.setAttribute('data-click-ga-1', order(tenants, 'data-global-admins'));
  column(tenants, 'Global Admins').querySelector('button').click();
  record.setAttribute('data-click-ga-2', order(tenants, 'data-global-admins'));
  column(tenants, 'Seat use').querySelector('button').click();
  record.setAttribute('data-click-seat-1', order(tenants, 'data-seat-use-pct'));
  column(tenants, 'Seat use').querySelector('button').click();
  record.setAttribute('data-click-seat-2', order(tenants, 'data-seat-use-pct'));
  column(tenants, 'Tenant').querySelector('button').click();
  record.setAttribute('data-click-tenant-1', order(tenants, 'data-tenant'));
  record.setAttribute('data-click-aria', column(tenants, 'Tenant').getAttribute('aria-sort'));
}());
"""


@dataclass
class Rendered:
    db: Path
    report: Path
    page: str  # the file, as written
    screenshot: Path
    drawn: BrowserRun  # --screenshot of the report
    shown: BrowserRun  # --dump-dom of the copy with CLICKS

    @property
    def dom(self) -> Node:
        """The page as Chromium holds it after loading it, and after the clicks."""
        return parse(self.shown.stdout)


@pytest.fixture(scope="module")
def rendered(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    work = tmp_path_factory.mktemp("fleet_report")
    db = work / "spanning.duckdb"
    write_duckdb(db, fleet(28))
    report = work / "fleet_report.html"
    results = write_results(work / "run_results.json", ["success"], built_at(db))
    done = run_report("--duckdb", str(db), "--dbt-results", str(results), output=report)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(report)
    page = report.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(CLICKS.encode()).digest()).decode()
    assert "script-src " in page
    clicks = work / "fleet_report_clicks.html"
    clicks.write_text(
        page.replace("script-src ", f"script-src &#39;sha256-{digest}&#39; ", 1).replace(
            "</body>", f"<script>{CLICKS}</script></body>"
        ),
        encoding="utf-8",
    )
    screenshot = work / "fleet_report.png"
    # Two browsers at once: the run is one browser start long.
    drawn = browse(chromium, report, work, f"--screenshot={screenshot}")
    shown = browse(chromium, clicks, work, "--dump-dom")
    return Rendered(db, report, page, screenshot, finish(drawn), finish(shown))


# ----------------------------------------------------------------------------- the tests


@e2e
def test_the_report_renders_in_chromium_without_errors(rendered: Rendered) -> None:
    for run in (rendered.shown, rendered.drawn):
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.console == [], "\n".join(run.console)
    html_tag = rendered.dom.find(lambda n: n.tag == "html")
    assert html_tag.attrs.get("data-js") == "ready", "the sort script did not run to its end"
    assert "data-js-errors" not in html_tag.attrs, html_tag.attrs["data-js-errors"]
    body = rendered.dom.find(lambda n: n.tag == "body")
    assert body.attrs["data-tenants"] == "28"
    title = rendered.dom.find(lambda n: n.tag == "title")
    assert title.text == "Spanning fleet report", "a warehouse string ran as a script"


@e2e
def test_the_screenshot_is_a_real_image(rendered: Rendered) -> None:
    data = rendered.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    # A blank page of that size compresses to a few kilobytes; charts and text do not.
    assert len(data) > 60_000, len(data)


@e2e
def test_three_tenants_show_the_marts_numbers(rendered: Rendered) -> None:
    overview = read_back(rendered.db, "fleet_overview")
    dom = rendered.dom
    rows = {row.attrs["data-tenant"]: row for row in table_rows(dom, "fleet_overview")}
    assert set(rows) == set(overview)
    for tenant in (TROUBLED, HEALTHY, NEVER):
        mart, row = overview[tenant], rows[tenant]
        shown = cells_by_header(dom, "fleet_overview", row)
        for attribute, column in (
            ("data-users", "users"),
            ("data-licenses", "licenses"),
            ("data-assigned-standard", "assigned_standard"),
            ("data-seat-use-pct", "seat_use_pct"),
            ("data-global-admins", "global_admins"),
            ("data-spanning-admins", "spanning_admins"),
            ("data-disabled-admins", "disabled_admins"),
            ("data-wasted-seats", "wasted_seats"),
            ("data-unprotected-active-users", "unprotected_active_users"),
            ("data-backup-success-yesterday-pct", "backup_success_yesterday_pct"),
            ("data-backup-success-7d-pct", "backup_success_7d_pct"),
            ("data-failed-syncs-in-a-row", "failed_syncs_in_a_row"),
        ):
            value = mart[column]
            if value is None:
                assert row.attrs[attribute] == "", (tenant, attribute)
            else:
                assert float(row.attrs[attribute]) == pytest.approx(value, abs=1e-4), (
                    tenant,
                    attribute,
                )

        def pct(value: float | None) -> str:
            return "\u2014" if value is None else f"{value:.1f}%"

        def whole(value: int | None) -> str:
            return "\u2014" if value is None else f"{value:,}"

        assert shown["Tenant"] == tenant
        assert shown["Users"] == whole(mart["users"])
        assert (
            shown["Seats used"] == f"{whole(mart['assigned_standard'])} / {whole(mart['licenses'])}"
        )
        assert shown["Seat use"] == pct(mart["seat_use_pct"])
        assert shown["Global Admins"] == whole(mart["global_admins"])
        assert shown["Disabled admins"] == whole(mart["disabled_admins"])
        assert shown["Wasted seats"] == whole(mart["wasted_seats"])
        assert shown["Unprotected users"] == whole(mart["unprotected_active_users"])
        assert shown["Backups yesterday"] == pct(mart["backup_success_yesterday_pct"])
        assert shown["Backups 7 days"] == pct(mart["backup_success_7d_pct"])
        assert shown["Failed syncs in a row"] == whole(mart["failed_syncs_in_a_row"])
    # The hand-made numbers, as a reader sees them.
    troubled = cells_by_header(dom, "fleet_overview", rows[TROUBLED])
    assert troubled["Seats used"] == "1,150 / 1,000"
    assert troubled["Seat use"] == "115.0%"
    assert troubled["Global Admins"] == "7"
    assert troubled["Failing users"] == "4"
    assert cells_by_header(dom, "fleet_overview", rows[NEVER])["Seat use"] == "\u2014"
    assert cells_by_header(dom, "fleet_overview", rows[HEALTHY])["Issues"] == "ok"


@e2e
def test_the_charts_show_the_marts_numbers(rendered: Rendered) -> None:
    overview = read_back(rendered.db, "fleet_overview")
    syncs = read_back(rendered.db, "tenant_sync_health")
    dom = rendered.dom
    seat = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "seat-use")}
    assert float(seat[TROUBLED].attrs["data-seat-use-pct"]) == pytest.approx(115.0)
    assert "1,150 / 1,000 (115.0%)" in seat[TROUBLED].text
    assert NEVER not in seat  # no licenses: not drawn
    admins = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "global-admins")}
    assert admins[TROUBLED].attrs["data-global-admins"] == "7"
    assert admins[TROUBLED].attrs["data-disabled-admins"] == "2"
    assert "7 GA" in admins[TROUBLED].text
    failing = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "failing-users")}
    assert failing[TROUBLED].attrs["data-failing-users"] == "4"
    assert "longest 9 days" in failing[TROUBLED].text
    runs = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "failed-runs")}
    for tenant in (TROUBLED, NEVER):
        assert runs[tenant].attrs["data-consecutive-failed-runs"] == str(
            syncs[tenant]["consecutive_failed_runs"]
        )
    assert HEALTHY not in runs
    assert "https://o365-api-us.spanningbackup.com" in runs[TROUBLED].text  # text, not a link
    backups = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "backup-yesterday")}
    assert float(backups[TROUBLED].attrs["data-backup-success-yesterday-pct"]) == pytest.approx(
        overview[TROUBLED]["backup_success_yesterday_pct"], abs=1e-4
    )
    split = {
        node.attrs["data-status"]: int(node.attrs["data-count"])
        for node in dom.find_all(lambda n: n.attrs.get("class") == "split")
    }
    assert split.get("never completed") == 1
    failed = sum(1 for row in syncs.values() if row["consecutive_failed_runs"])
    assert split["failing"] == failed - 1
    assert split["current"] == len(syncs) - failed
    # Fleet-wide success per workload and day: one series per type, a point per day held.
    line = dom.find(lambda n: n.tag == "svg" and n.attrs.get("data-chart") == "backup-success")
    series = line.find_all(lambda n: n.tag == "g" and "data-type" in n.attrs)
    assert sorted(s.attrs["data-type"] for s in series) == sorted(KINDS)
    mail = next(s for s in series if s.attrs["data-type"] == "MAIL")
    points = mail.find_all(lambda n: n.tag == "circle")
    assert len(points) == DAYS_HELD
    connection = duckdb.connect(str(rendered.db), read_only=True)
    try:
        result = connection.execute(
            "SELECT 100.0 * sum(successful) / sum(total) FROM main.backup_health_daily "
            "WHERE type = 'MAIL' AND date = ?",
            [YESTERDAY],
        ).fetchone()
    finally:
        connection.close()
    assert result is not None
    last = next(p for p in points if p.attrs["data-date"] == YESTERDAY.isoformat())
    assert float(last.attrs["data-success-pct"]) == pytest.approx(result[0], abs=1e-4)


@e2e
def test_the_lists_are_in_order_of_attention(rendered: Rendered) -> None:
    dom = parse(rendered.page)
    tenants = table_rows(dom, "fleet_overview")
    body = rendered.dom.find(lambda n: n.tag == "body")
    opened = body.attrs["data-opened-with"].split("|")
    assert opened == [row.attrs["data-tenant"] for row in tenants], "the page reorders on load"
    scores = [int(row.attrs["data-attention-score"]) for row in tenants]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0
    assert tenants[0].attrs["data-tenant"] in {NEVER, TROUBLED}
    review = [row.attrs["data-needs-review"] for row in table_rows(dom, "access_review")]
    assert review == sorted(review, key=lambda flag: flag != "true")
    assert "true" in review
    assert "false" in review
    streaks = [int(row.attrs["data-streak-days"]) for row in table_rows(dom, "failing_users")]
    assert streaks == sorted(streaks, reverse=True)
    assert streaks[0] == 9
    reasons = [row.attrs["data-reason"] for row in table_rows(dom, "license_waste")]
    rank = ["deleted_from_microsoft", "archived", "no_microsoft_license"]
    assert [rank.index(r) for r in reasons] == sorted(rank.index(r) for r in reasons)


@e2e
def test_headers_sort_the_tables(rendered: Rendered) -> None:
    body = rendered.dom.find(lambda n: n.tag == "body").attrs

    def numbers(key: str) -> list[float | None]:
        """The column's values as the page shows them (one decimal): ties keep their order."""
        return [round(float(v), 1) if v else None for v in body[key].split("|")]

    admins = numbers("data-click-ga-1")
    assert admins == sorted(admins, key=lambda v: -(v or 0)), "first click: descending"
    assert numbers("data-click-ga-2") == sorted(admins, key=lambda v: v or 0)
    seats = numbers("data-click-seat-1")
    present = [v for v in seats if v is not None]
    assert present == sorted(present, reverse=True)
    assert seats[-1] is None, "blanks sort last"
    seats_up = numbers("data-click-seat-2")
    assert [v for v in seats_up if v is not None] == sorted(present)
    assert seats_up[-1] is None, "blanks sort last both ways"
    tenant_order = body["data-click-tenant-1"].split("|")
    assert tenant_order == sorted(tenant_order, key=str.lower)
    assert body["data-click-aria"] == "ascending"


@e2e
def test_the_page_requests_nothing(rendered: Rendered) -> None:
    page = rendered.page
    assert not re.search(
        r"""\b(?:src|href|action|srcset|poster|data|xlink:href)\s*=\s*["']?\s*(?:[a-z]+:)?//""",
        page,
        re.IGNORECASE,
    )
    dom = parse(page)
    loading = {"src", "href", "srcset", "action", "poster", "xlink:href", "data", "background"}
    assert [n.attrs for n in dom.find_all(lambda n: bool(loading & set(n.attrs)))] == []
    assert not re.search(r"url\(|@import|<link|<iframe|<object|<embed|<img", page, re.I)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    assert "default-src &#39;none&#39;" in csp.group(1)
    # Warehouse text is text: the hostile name and UPN are escaped, never markup.
    assert "&lt;img src=x onerror=&quot;document.title=1&quot;&gt;" in page
    assert "&quot;&gt;&lt;script&gt;document.title=2&lt;/script&gt;@evil.example" in page
    assert page.count("<script>") == 2


@e2e
def test_the_report_reads_postgresql_too(
    rendered: Rendered, tmp_path: Path, postgres_url: str
) -> None:
    """The same marts in PostgreSQL (schema spanning, as dbt-postgres builds them) give the
    same page, but for the line naming the source."""
    name = f"fleet_report_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(postgres_url, dbname=name)
    try:
        connection = duckdb.connect(str(rendered.db), read_only=True)
        try:
            tables = {}
            for table in columns_of():
                tables[table] = connection.execute(f'SELECT * FROM main."{table}"').fetchall()
        finally:
            connection.close()
        with psycopg.connect(url, autocommit=True) as target:
            target.execute('CREATE SCHEMA "spanning"')
            for table, columns in columns_of().items():
                target.execute(ddl(table, columns, "spanning", "double precision"))
                marks = ", ".join(["%s"] * len(columns))
                with target.cursor() as inserting:
                    inserting.executemany(
                        f'INSERT INTO "spanning"."{table}" VALUES ({marks})', tables[table]
                    )
        output = tmp_path / "fleet_report_pg.html"
        results = write_results(tmp_path / "run_results.json", ["success"], built_at(rendered.db))
        done = run_report("--postgres", url, "--dbt-results", str(results), output=output)
        assert done.returncode == 0, done.stderr
        page = output.read_text(encoding="utf-8")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def main(text: str) -> str:
        found = re.search(r"<main>.*</main>", text, re.S)
        assert found is not None
        return found.group(0)

    assert main(page) == main(rendered.page)
    where = psycopg.conninfo.conninfo_to_dict(url)
    assert f"{where['host']}:{where['port']}/{name}" in page
    assert "schema spanning" in page


@pytest.fixture
def postgres_url() -> str:
    """TAP_SPANNING_TEST_PG_URL, else the private cluster, started (and installed) by
    scripts/postgres.sh when it is not running."""
    url = os.environ.get("TAP_SPANNING_TEST_PG_URL")
    if not url:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"scripts/postgres.sh start failed:\n{done.stderr[-3000:]}"
        url = done.stdout.strip().splitlines()[-1]
    return url


@e2e
def test_a_thousand_tenants_stay_small(tmp_path: Path) -> None:
    db = tmp_path / "fleet_1000.duckdb"
    write_duckdb(db, fleet(1000))
    report = tmp_path / "fleet_report_1000.html"
    done = run_report("--duckdb", str(db), output=report)
    assert done.returncode == 0, done.stderr
    page = report.read_text(encoding="utf-8")
    size = len(page.encode("utf-8"))
    print(f"fleet report for 1,000 tenants: {size:,} bytes")
    assert size < 1_500_000, size
    dom = parse(page)
    for chart in ("seat-use", "global-admins", "backup-yesterday", "failing-users", "failed-runs"):
        assert 0 < len(bars(dom, chart)) <= TOP, chart
    tenants = table_rows(dom, "fleet_overview")
    assert len(tenants) == MAX_ROWS
    notes = {
        (n.attrs["data-shown"], n.attrs["data-total"])
        for n in dom.find_all(lambda n: "more" in n.attrs.get("class", "").split())
    }
    assert (str(TOP), "1000") in notes or any(shown == str(TOP) for shown, _ in notes)
    assert (str(MAX_ROWS), "1000") in notes
    assert "500 more not shown" in page
    body = dom.find(lambda n: n.tag == "body")
    assert body.attrs["data-tenants"] == "1000"


# ----------------------------------------------------------------------------- in process

UTC_SHOWN = "%Y-%m-%d %H:%M:%S UTC"  # how the page shows a time


@dataclass
class Written:
    code: int
    page: str  # "" when nothing was written
    stdout: str
    stderr: str

    @property
    def dom(self) -> Node:
        return parse(self.page)

    def alert(self) -> Node | None:
        """The first element of the body, when it is the freshness alert."""
        body = self.dom.find(lambda n: n.tag == "body")
        first = body.children[0]
        return first if "alert" in first.attrs.get("class", "").split() else None


@pytest.fixture
def report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Written]:
    """Write the marts into a DuckDB file and run the command on it, in process. dbt's
    default results are looked for in this test's folder, never in the developer's tree."""
    monkeypatch.setenv("DBT_DUCKDB_TARGET_PATH", str(tmp_path / "dbt-target"))

    def run(rows: Rows, *args: str, without: tuple[str, ...] = ()) -> Written:
        db = tmp_path / f"spanning-{uuid.uuid4().hex[:6]}.duckdb"
        write_duckdb(db, rows, without=without)
        output = tmp_path / "fleet_report.html"
        output.unlink(missing_ok=True)
        code = fleet_report.main(["--duckdb", str(db), "-o", str(output), *args])
        captured = capsys.readouterr()
        page = output.read_text(encoding="utf-8") if output.exists() else ""
        return Written(code, page, captured.out, captured.err)

    return run


def build_times(rows: Rows) -> tuple[dt.datetime, dt.datetime]:
    """The fixture's marts_build: (built_at, newest_sync_at)."""
    (build,) = rows["marts_build"]
    return build["built_at"], build["newest_sync_at"]


def test_current_marts_say_when_they_were_built(report: Callable[..., Written]) -> None:
    rows = fleet(28)
    built, newest = build_times(rows)
    assert built > max(row["finished_at"] for row in rows["tenant_syncs"])
    written = report(rows)
    assert written.code == 0, written.stderr
    assert written.alert() is None
    assert written.stderr == ""
    line = written.dom.find(lambda n: "data-freshness" in n.attrs)
    assert line.attrs["data-freshness"] == "current"
    assert line.text == f"marts built at {built:{UTC_SHOWN}}, newest sync at {newest:{UTC_SHOWN}}"


@pytest.mark.parametrize("unseen", ["after the build", "after the build's newest sync"])
def test_marts_older_than_the_newest_sync_are_said_at_the_top(
    report: Callable[..., Written], unseen: str
) -> None:
    """A sync that finished after the build ran, or one the build did not see (its load
    committed after the build read tenant_syncs): the top of the page says so, in red, with
    both times."""
    rows = fleet(28)
    built, seen = build_times(rows)
    later = (
        built + dt.timedelta(hours=1) if unseen == "after the build" else built - BUILD_DELAY / 2
    )
    assert later > seen
    rows["tenant_syncs"].append(
        {"tenant_id": HEALTHY, "sync_version": 1, "status": "complete", "finished_at": later}
    )
    written = report(rows)
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None, "no alert first in the page"
    assert alert.attrs["class"] == "alert", "stale marts are said in red, not amber"
    assert alert.attrs["data-freshness"] == "stale"
    assert alert.attrs["data-marts-built-at"] == built.replace(tzinfo=dt.timezone.utc).isoformat()
    assert alert.attrs["data-newest-sync-at"] == later.replace(tzinfo=dt.timezone.utc).isoformat()
    sentence = (
        f"The marts are older than the newest sync: marts built at {built:{UTC_SHOWN}} (from "
        f"syncs up to {seen:{UTC_SHOWN}}); newest sync at {later:{UTC_SHOWN}}."
    )
    assert alert.text.startswith(sentence), alert.text
    assert "meltano invoke dbt-duckdb:build" in alert.text
    assert sentence in written.stderr
    assert written.stdout.strip().endswith("fleet_report.html")
    # Red: the alert's rule draws it in the page's red.
    style = re.search(r"\.alert\{([^}]*)\}", written.page)
    assert style is not None
    assert "var(--red)" in style.group(1)
    assert "--red:#dc2626" in written.page


@pytest.mark.parametrize("failed", ["error", "fail"])
def test_a_failed_dbt_build_is_said_at_the_top(
    report: Callable[..., Written], tmp_path: Path, failed: str
) -> None:
    rows = fleet(28)
    built, _ = build_times(rows)
    finished = built + dt.timedelta(minutes=2)
    statuses = ["success", "pass", failed, "skipped", "warn"]
    results = write_results(tmp_path / "run_results.json", statuses, finished)
    written = report(rows, "--dbt-results", str(results))
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None
    assert alert.attrs["class"] == "alert"
    assert alert.attrs["data-freshness"] == "build-failed"
    assert (
        alert.attrs["data-build-failed-at"] == finished.replace(tzinfo=dt.timezone.utc).isoformat()
    )
    node = "model.spanning.model_2" if failed == "error" else "test.spanning.test_2"
    assert alert.text.startswith(
        f"The last dbt build failed at {finished:{UTC_SHOWN}} ({node}); marts built at "
        f"{built:{UTC_SHOWN}}"
    ), alert.text
    assert str(results) in alert.text


def test_a_failure_before_the_last_build_and_success_are_not_said(
    report: Callable[..., Written], tmp_path: Path
) -> None:
    """Results older than the marts belong to a build another build replaced since."""
    rows = fleet(28)
    built, _ = build_times(rows)
    old = write_results(tmp_path / "old.json", ["error"], built - dt.timedelta(hours=1))
    good = write_results(tmp_path / "good.json", ["success", "pass", "warn"], built)
    for results in (old, good):
        written = report(rows, "--dbt-results", str(results))
        assert written.code == 0, written.stderr
        assert written.alert() is None, results.name


def test_the_default_dbt_results_are_the_warehouses_own(
    report: Callable[..., Written], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dbt-results: Meltano's target_path of the utility (DBT_DUCKDB_TARGET_PATH),
    else transform/target/duckdb or transform/target/postgres of the project."""
    rows = fleet(28)
    built, _ = build_times(rows)
    target = tmp_path / "dbt-target"  # the fixture's DBT_DUCKDB_TARGET_PATH
    target.mkdir()
    results = write_results(target / "run_results.json", ["error"], built, which="run")
    written = report(rows)
    alert = written.alert()
    assert alert is not None
    assert alert.text.startswith(f"The last dbt run failed at {built:{UTC_SHOWN}}")
    assert str(results) in alert.text

    transform = ROOT / "transform" / "target"
    assert freshness.default_results("duckdb", {}) == transform / "duckdb" / "run_results.json"
    assert freshness.default_results("postgres", {}) == transform / "postgres" / "run_results.json"
    assert freshness.default_results("postgres", {"DBT_POSTGRES_TARGET_PATH": "t/pg"}) == (
        ROOT / "t" / "pg" / "run_results.json"
    )
    # Unreadable at the default path: said, not fatal.
    (target / "run_results.json").write_text("{not json", encoding="utf-8")
    written = report(rows)
    assert written.code == 0
    alert = written.alert()
    assert alert is not None
    assert alert.attrs["class"] == "alert unknown"
    assert "Whether the last dbt build failed is unknown" in alert.text


def test_dbt_results_named_but_unreadable_fail_the_command(
    report: Callable[..., Written], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "run_results.json"
    written = report(fleet(28), "--dbt-results", str(missing))
    assert written.code == 1
    assert written.page == ""
    assert written.stderr.startswith(f"fleet_report: {missing}: cannot read dbt's run results")


def test_without_marts_build_the_freshness_is_unknown(report: Callable[..., Written]) -> None:
    written = report(fleet(28), without=("marts_build",))
    assert written.code == 0, written.stderr
    alert = written.alert()
    assert alert is not None
    assert alert.attrs["class"] == "alert unknown"
    assert alert.attrs["data-freshness"] == "unknown"
    assert alert.text.startswith(
        "The marts' freshness is unknown: the warehouse has no marts_build"
    )
    line = written.dom.find(
        lambda n: n.attrs.get("data-freshness") == "unknown" and n.tag == "span"
    )
    assert line.text == "marts built at an unknown time"


def test_offboarded_tenants_are_labelled_and_counted_nowhere(
    report: Callable[..., Written],
) -> None:
    shapes = hand_made() + generated(25, seed=28)
    gone = {TROUBLED, next(s.tenant_id for s in shapes[3:] if s.failed_runs)}
    for shape in shapes:
        shape.offboarded = shape.tenant_id in gone
    rows = mart_rows(shapes)
    written = report(rows)
    assert written.code == 0, written.stderr
    dom = written.dom
    current = [shape for shape in shapes if not shape.offboarded]

    def kept(mart: str) -> list[dict[str, Any]]:
        return [row for row in rows[mart] if row["tenant_id"] not in gone]

    body = dom.find(lambda n: n.tag == "body")
    assert (body.attrs["data-tenants"], body.attrs["data-offboarded"]) == (str(len(current)), "2")
    cards = {
        node.attrs["data-kpi"]: node.find(lambda n: n.tag == "b").text
        for node in dom.find_all(lambda n: "data-kpi" in n.attrs)
    }
    assert cards == {
        "tenants": f"{len(current):,}",
        "sync-failing": f"{sum(1 for s in current if s.failed_runs):,}",
        "users": f"{sum(s.users for s in current):,}",
        "seat-use": cards["seat-use"],  # checked below
        "backup-yesterday": cards["backup-yesterday"],
        "failing-users": f"{len({(r['tenant_id'], r['ms_id']) for r in kept('failing_users')}):,}",
        "review": f"{sum(1 for r in kept('access_review') if r['needs_review']):,}",
        "ga-flagged": f"{sum(1 for s in current if s.global_admins >= 5):,}",
        "waste": f"{len(kept('license_waste')):,}",
        "offboarded": "2",
    }
    licenses = sum(s.licenses or 0 for s in current)
    assigned = sum(s.assigned_standard for s in current if not s.never_completed)
    assert cards["seat-use"] == f"{100 * assigned / licenses:.1f}%"
    yesterday = [r for r in kept("backup_health_daily") if r["date"] == YESTERDAY]
    ok = sum(r["successful"] for r in yesterday) / sum(r["total"] for r in yesterday)
    assert cards["backup-yesterday"] == f"{100 * ok:.1f}%"
    # Listed last, labelled, nothing else said of them.
    tenants = table_rows(dom, "fleet_overview")
    assert [row.attrs["data-tenant"] for row in tenants[-2:]] == sorted(gone)
    for row in tenants:
        offboarded = row.attrs["data-tenant"] in gone
        assert row.attrs["data-offboarded"] == ("true" if offboarded else "false")
        issues = cells_by_header(dom, "fleet_overview", row)["Issues"]
        assert (issues == "offboarded") == offboarded, (row.attrs["data-tenant"], issues)
    # No chart draws them, no table lists their rows.
    drawn = {
        node.attrs["data-tenant"]
        for node in dom.find_all(lambda n: n.tag == "g" and "data-tenant" in n.attrs)
    }
    assert drawn, "no chart drew a tenant"
    assert not drawn & gone
    split = sum(
        int(node.attrs["data-count"]) for node in dom.find_all(lambda n: "data-count" in n.attrs)
    )
    assert split == len(current)
    for mart in ("access_review", "license_waste", "failing_users"):
        listed = {row.attrs["data-tenant"] for row in table_rows(dom, mart)}
        assert listed
        assert not listed & gone, mart


HIDING_NAME = "Ev\u202eexe.gnp\u200b<b>x</b>"  # reads "Evpng.exe", with markup around


def test_names_show_their_hidden_characters_isolated(report: Callable[..., Written]) -> None:
    rows = fleet(28)
    review = next(
        row
        for row in rows["access_review"]
        if row["tenant_id"] == HEALTHY and row["role_id"] == "global_admin"
    )
    review["display_name"] = HIDING_NAME
    review["user_principal_name"] = "ev\u2067e\u2069@\u200ffabrikam.example\ufeff"
    streak = next(row for row in rows["failing_users"] if row["tenant_id"] == TROUBLED)
    streak["type"] = "MA\u202bIL"
    health = next(row for row in rows["tenant_sync_health"] if row["tenant_id"] == TROUBLED)
    health["last_reason"] = "HTTP 401 \u202erof\u061c deifitnedi"
    written = report(rows)
    assert written.code == 0, written.stderr
    page = written.page
    for hidden in "\u202e\u200b\u2067\u2069\u200f\ufeff\u202b\u061c":
        assert hidden not in page, f"U+{ord(hidden):04X} is in the page as itself"

    def ctl(code: str, name: str) -> str:
        return f'<span class=ctl title="U+{code} {name}">\u27e8U+{code}\u27e9</span>'

    cell = (
        f"<td><bdi>Ev{ctl('202E', 'RIGHT-TO-LEFT OVERRIDE')}exe.gnp"
        f"{ctl('200B', 'ZERO WIDTH SPACE')}&lt;b&gt;x&lt;/b&gt;</bdi></td>"
    )
    assert cell in page
    dom = written.dom
    row = next(
        r
        for r in table_rows(dom, "access_review")
        if r.attrs["data-ms-id"] == review["ms_id"] and r.attrs["data-role"] == "global_admin"
    )
    shown = cells_by_header(dom, "access_review", row)
    assert shown["Name"] == "Ev\u27e8U+202E\u27e9exe.gnp\u27e8U+200B\u27e9<b>x</b>"
    assert shown["User"] == (
        "ev\u27e8U+2067\u27e9e\u27e8U+2069\u27e9@\u27e8U+200F\u27e9fabrikam.example\u27e8U+FEFF\u27e9"
    )
    assert not row.find_all(lambda n: n.tag == "b"), "markup of a name became an element"
    # Every name cell of every table is isolated.
    for table_name, columns in (
        ("fleet_overview", ["Tenant"]),
        ("access_review", ["Tenant", "User", "Name", "Role"]),
        ("license_waste", ["Tenant", "User", "Reason"]),
        ("failing_users", ["Tenant", "User", "Workload"]),
    ):
        titles = headers(dom, table_name)
        for table_row in table_rows(dom, table_name):
            cells = [c for c in table_row.children if c.tag == "td"]
            for column in columns:
                kids = cells[titles.index(column)].children
                assert [kid.tag for kid in kids] == ["bdi"], (table_name, column)
    # An attribute keeps the value, as a character reference; a chart label shows the token.
    assert 'data-type="MA&#x202B;IL"' in page
    failing = [r for r in table_rows(dom, "failing_users") if r.attrs["data-type"] == "MA\u202bIL"]
    assert cells_by_header(dom, "failing_users", failing[0])["Workload"] == "MA\u27e8U+202B\u27e9IL"
    runs = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "failed-runs")}
    assert "HTTP 401 \u27e8U+202E\u27e9rof\u27e8U+061C\u27e9 deifitnedi" in runs[TROUBLED].text


# ----------------------------------------------------------------------------- the marts read


def test_the_fixture_writes_every_column_marts_yml_declares() -> None:
    """The fixture's types cover marts.yml's columns exactly: a column added to a mart is
    added here, so every test below runs on the marts as dbt builds them."""
    declared = marts.mart_columns()
    for table, types in TYPES.items():
        assert table in declared, f"marts.yml has no model {table}"
        assert set(types) == set(declared[table]), (table, set(declared[table]) ^ set(types))
    for mart in (*marts.FLEET_MARTS, *marts.ROLE_MARTS):
        assert mart in TYPES, mart


def test_the_reader_selects_exactly_the_columns_of_marts_yml(tmp_path: Path) -> None:
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, fleet(28))
    declared = marts.mart_columns()
    selects: list[str] = []
    with marts.duckdb_run(db) as run:

        def recording(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            selects.append(query)
            return run(query)

        found = marts.read_marts(
            recording,
            str(db),
            "main",
            "duckdb",
            marts=marts.FLEET_MARTS,
            declared=declared,
            freshness=False,
        )
    for mart in marts.FLEET_MARTS:
        wanted = ", ".join(f'"{column}"' for column in declared[mart])
        assert f'SELECT {wanted} FROM "main"."{mart}"' in selects, mart
        assert found[mart], mart
        assert all(list(row) == declared[mart] for row in found[mart]), mart
    assert found.freshness is None


def test_a_mart_without_a_declared_column_names_it_and_the_build(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    write_duckdb(db, fleet(28))
    connection = duckdb.connect(str(db))
    connection.execute("ALTER TABLE main.fleet_overview DROP COLUMN attention_score")
    connection.execute("DROP TABLE main.attention_thresholds")
    connection.close()
    with pytest.raises(marts.ReportError) as raised:
        marts.read_duckdb(db, "main", marts.FLEET_MARTS, marts.mart_columns())
    message = str(raised.value)
    assert "fleet_overview.attention_score" in message
    assert "attention_thresholds" in message
    assert "dbt-duckdb:build" in message


def test_marts_yml_is_the_projects_or_the_one_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    assert marts.marts_yml_path(env={}) == ROOT / "transform" / "models" / "marts" / "marts.yml"
    assert marts.marts_yml_path(env={"MELTANO_PROJECT_ROOT": str(project)}) == (
        project / "transform" / "models" / "marts" / "marts.yml"
    )
    other = tmp_path / "marts.yml"
    other.write_text("models:\n  - name: fleet_overview\n    columns: [{name: tenant_id}]\n")
    assert marts.mart_columns(other) == {"fleet_overview": ["tenant_id"]}
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, fleet(28))
    code = fleet_report.main(
        ["--duckdb", str(db), "--marts-yml", str(other), "-o", str(tmp_path / "r")]
    )
    assert code == 1
    assert "marts.yml declares no access_review" in capsys.readouterr().err
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(project))
    with pytest.raises(marts.ReportError, match="cannot read the marts' columns"):
        marts.mart_columns()


def test_missing_marts_are_named_with_the_command_that_builds_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "tap_only.duckdb"
    connection = duckdb.connect(str(db))
    connection.execute("CREATE TABLE users (tenant_id VARCHAR)")
    connection.close()
    output = tmp_path / "r.html"
    assert fleet_report.main(["--duckdb", str(db), "-o", str(output)]) == 1
    said = capsys.readouterr().err
    assert "fleet_overview" in said
    assert "dbt-duckdb:build" in said
    assert not output.exists()
    assert fleet_report.main(["--duckdb", str(tmp_path / "none.duckdb"), "-o", str(output)]) == 1
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- what is drawn


def test_tenants_are_listed_and_worded_by_the_marts_flags(report: Callable[..., Written]) -> None:
    """The page orders by attention_score and words each flag that holds: a flag the mart
    sets against its number is shown, one it leaves unset is not (the page decides nothing)."""
    rows = fleet(28)
    overview = {row["tenant_id"]: row for row in rows["fleet_overview"]}
    healthy = overview[HEALTHY]
    healthy.update(is_over_licensed=True, attention_score=99, needs_attention=True)
    assert healthy["seat_use_pct"] < 100
    troubled = overview[TROUBLED]
    assert troubled["global_admins"] == 7
    troubled.update(has_too_many_global_admins=False)
    calm = overview["client-0001"]
    calm.update(dict.fromkeys(FLAGS, False), attention_score=0, wasted_seats=3)
    written = report(rows)
    assert written.code == 0, written.stderr
    dom = written.dom
    listed = table_rows(dom, "fleet_overview")
    assert listed[0].attrs["data-tenant"] == HEALTHY
    assert listed[0].attrs["data-attention-score"] == "99"
    shown = {
        row.attrs["data-tenant"]: cells_by_header(dom, "fleet_overview", row)["Issues"]
        for row in listed
    }
    assert shown[HEALTHY] == f"over licensed ({healthy['seat_use_pct']:.1f}%)"
    assert "Global Admins" not in shown[TROUBLED]
    assert shown[TROUBLED].startswith("sync failing (3 runs)backups ")
    assert "4 failing users" in shown[TROUBLED]
    assert "6 wasted seats" in shown[TROUBLED]
    assert shown[NEVER] == "never synced"
    assert shown["client-0001"] == "ok"  # wasted seats, but has_wasted_seats is false


def test_the_bands_are_attention_thresholds(report: Callable[..., Written]) -> None:
    rows = fleet(28)
    rows["attention_thresholds"] = [
        {
            **THRESHOLDS,
            "global_admin_min": 1,
            "global_admin_max": 6,
            "global_admin_flag_at": 8,
            "backup_target_pct": 90.0,
        }
    ]
    written = report(rows)
    assert written.code == 0, written.stderr
    dom = written.dom
    admins = dom.find(lambda n: n.tag == "svg" and n.attrs.get("data-chart") == "global-admins")
    assert [n.text for n in admins.find_all(lambda n: n.attrs.get("class") == "band")] == [
        "1\u20136",
        "8+",
    ]
    section = dom.find(lambda n: n.tag == "section" and n.attrs.get("id") == "admins")
    assert "Microsoft recommends 1\u20136 Global Admins and flags 8 or more" in section.text
    backups = dom.find(lambda n: n.tag == "svg" and n.attrs.get("data-chart") == "backup-yesterday")
    markers = backups.find_all(lambda n: n.tag == "text" and n.attrs.get("class") == "marker")
    assert [n.text for n in markers] == ["90%"]
    cards = {n.attrs["data-kpi"]: n.text for n in dom.find_all(lambda n: "data-kpi" in n.attrs)}
    assert cards["ga-flagged"].endswith("tenants with 8+ GAs")
    rows["attention_thresholds"].append(dict(THRESHOLDS))
    twice = report(rows)
    assert twice.code == 1
    assert "attention_thresholds holds 2 rows" in twice.stderr


def test_a_tenant_named_script_is_text(report: Callable[..., Written]) -> None:
    rows = fleet(28)
    hostile = "<script>document.title='owned'</script>"
    for table in rows.values():
        for row in table:
            if row.get("tenant_id") == TROUBLED:
                row["tenant_id"] = hostile
    written = report(rows)
    assert written.code == 0, written.stderr
    assert hostile not in written.page
    assert written.page.count("<script>") == 2
    assert "&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in written.page
    dom = written.dom
    assert dom.find(lambda n: n.tag == "title").text == page.TITLE
    listed = next(r for r in table_rows(dom, "fleet_overview") if r.attrs["data-tenant"] == hostile)
    assert cells_by_header(dom, "fleet_overview", listed)["Tenant"] == hostile
    assert len(dom.find_all(lambda n: n.tag == "script")) == 2


def test_the_csp_allows_exactly_the_pages_own_scripts(report: Callable[..., Written]) -> None:
    written = report(fleet(28))
    scripts = re.findall(r"<script>(.*?)</script>", written.page, re.S)
    assert len(scripts) == 2
    policy = written.dom.find(
        lambda n: n.tag == "meta" and n.attrs.get("http-equiv") == "Content-Security-Policy"
    ).attrs["content"]
    allowed = re.findall(r"'sha256-([^']+)'", policy)
    assert sorted(allowed) == sorted(
        base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts
    )
    assert policy.startswith("default-src 'none';")
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1]


# ----------------------------------------------------------------------------- pure parts


def test_nice_ticks_are_round_and_cover_the_maximum() -> None:
    assert charts.nice_ticks(7, whole=True) == (8, [0, 2, 4, 6, 8])
    assert charts.nice_ticks(100.0) == (100, [0, 20, 40, 60, 80, 100])
    assert charts.nice_ticks(115.0) == (150, [0, 50, 100, 150])  # a step of 23 rounds to 50
    assert charts.nice_ticks(0.2, whole=True) == (1, [0, 1])


def test_a_bar_chart_clips_cuts_and_skips_zero() -> None:
    name = "a-tenant-with-a-very-long-name-that-does-not-fit"
    drawn = charts.bar_chart(
        "c",
        [
            charts.Bar(name, 250.0, "250", charts.RED, "t"),
            charts.Bar("zero", 0.0, "0", charts.GREEN, "t", {"data-x": 1}),
        ],
        axis_max=200.0,
        ticks=[0, 100, 200],
        tick_label=lambda v: f"{v:g}%",
        bands=[charts.Band(50, 100, "#eee", "ok")],
    )
    clipped, zero = drawn.bars
    layout = charts.HALF
    assert clipped.clipped
    assert clipped.width == str(layout.plot_width)  # the whole plot, no further
    assert clipped.tenant_label.endswith("\u2026")
    assert len(clipped.tenant_label) == layout.label_chars
    assert zero.width is None
    assert not zero.clipped
    assert zero.data == {"data-tenant": "zero", "data-value": 0.0, "data-x": 1}
    assert [tick.label for tick in drawn.ticks] == ["0%", "100%", "200%"]
    (band,) = drawn.bands
    assert band.width == str(layout.plot_width // 4)
    assert band.label is not None
    assert drawn.height == charts.CHART_TOP + 2 * charts.ROW_HEIGHT + 22


def test_charts_choose_by_the_flags_and_bands(tmp_path: Path) -> None:
    rows = fleet(28)
    found = marts.Marts("fixture", "main", rows)
    tenants = [t for t in build_tenants(found) if not t.offboarded]
    limits = Thresholds.from_row(THRESHOLDS)
    admins = tenant_charts.admin_chart(tenants, 5, limits)
    assert admins.drawing is not None
    first = admins.drawing.bars[0]
    assert first.bar.color == charts.RED
    assert first.data["data-global-admins"] >= THRESHOLDS["global_admin_flag_at"]
    (note,) = admins.notes
    assert isinstance(note, charts.Note)
    assert (note.shown, note.more) == (5, True)
    seats = tenant_charts.seat_chart(tenants, 3, limits)
    assert seats.drawing.bars[0].bar.tenant == TROUBLED  # the one over licensed the most
    assert any("without license counters" in str(n) for n in seats.notes)
    quiet = [t for t in tenants if not t.sync_failing and not t.never_synced]
    assert tenant_charts.sync_chart(quiet, 5).empty == "Every tenant's last sync completed."
    empty = charts.backup_line_chart([], limits)
    assert (empty.drawing, empty.empty) == (None, "No backup history in backup_health_daily.")


def test_tables_order_and_cut_their_rows() -> None:
    rows = fleet(28)
    review = tables.access_table(rows["access_review"], 3)
    assert review.total == len(rows["access_review"])
    assert review.more == review.total - 3
    assert all(row["needs_review"] for row in review.rows)
    assert len(tables.review_reasons(review.rows[0])) >= len(tables.review_reasons(review.rows[-1]))
    waste = tables.waste_table(rows["license_waste"], 1000)
    reasons = [row["reason"] for row in waste.rows]
    assert reasons == sorted(reasons, key=list(tables.WASTE_REASONS).index)
    streaks = [row["streak_days"] for row in tables.failing_table(rows["failing_users"], 9).rows]
    assert streaks[0] == 9
    assert streaks == sorted(streaks, reverse=True)


# ----------------------------------------------------------------------------- the role report


def test_the_role_report_prints_tenant_roles_and_license_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = fleet(28)
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, rows)
    assert roles.main(["--duckdb", str(db)]) == 0
    shown = parse_report(capsys.readouterr().out)
    expected: dict[str | None, dict[str, tuple[int, int]]] = {}
    for row in rows["tenant_roles"]:
        expected.setdefault(row["tenant_id"], {})[row["role_id"]] = (
            row["members"],
            row["disabled_members"],
        )
    assert shown.roles == expected
    assert NEVER not in shown.roles  # no complete sync: no current rows
    assert shown.title.startswith(f"Spanning roles in {db} (schema main): ")
    assert f"{len(expected)} tenants" in shown.title
    overview = {row["tenant_id"]: row for row in rows["fleet_overview"]}
    assert shown.licenses[TROUBLED] == ("paid", 1150, 1000, 20, 50, 1240)
    assert set(shown.licenses) == set(expected)
    assert shown.licenses[HEALTHY][-1] == overview[HEALTHY]["users"]
    assert not shown.notes


def test_the_role_report_of_one_tenant_is_not_grouped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = mart_rows([hand_made()[1]])
    rows["fleet_overview"][0]["license_status"] = None
    rows["fleet_overview"][0]["licenses"] = None
    db = tmp_path / "one.duckdb"
    write_duckdb(db, rows)
    assert roles.main(["--duckdb", str(db), "--schema", "main"]) == 0
    shown = parse_report(capsys.readouterr().out)
    assert list(shown.roles) == [None]
    assert shown.roles[None]["global_admin"] == (3, 0)
    assert shown.title.endswith(f"tenant {HEALTHY}, 260 users")
    assert shown.licenses == {}
    assert shown.notes == [f"NOTE: {HEALTHY} has no license counters landed: sync again"]
    assert roles.main(["--duckdb", str(tmp_path / "none.duckdb")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_each_table_aligns_numbers_and_wraps_tags_by_its_own_rule(
    report: Callable[..., Written],
) -> None:
    """The per-table rules are CSS as written, not escaped text a browser would ignore."""
    written = report(fleet(28))
    assert (
        'table[data-table="fleet_overview"] td:nth-child(2){white-space:normal;min-width:250px}'
        in written.page
    )
    assert 'table[data-table="failing_users"] td:nth-child(4){text-align:right}' in written.page
    # license_waste has no numeric and no tag column: no rule, not an empty selector.
    assert "<style>{" not in written.page
    assert "&#34;" not in "".join(re.findall(r"<style>(.*?)</style>", written.page, re.S))
