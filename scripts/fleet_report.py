"""Write the fleet report: one self-contained HTML page from the dbt marts of transform/.

    python scripts/fleet_report.py [--duckdb PATH] [--schema NAME] [-o output/fleet_report.html]
    python scripts/fleet_report.py --postgres URL [--schema NAME] [-o PATH]

Run it after the marts are built (`meltano run tap-spanning target-duckdb dbt-duckdb:build`, or
target-postgres and dbt-postgres:build). It reads the six marts of transform/models/contract.md
(fleet_overview, access_review, license_waste, backup_health_daily, failing_users,
tenant_sync_health) from the schema dbt built them in: `main` of the DuckDB file (the file is
$TARGET_DUCKDB_PATH, else output/spanning.duckdb, unless --duckdb names one; it is opened
read-only), or `spanning` of the PostgreSQL database (in a read-only transaction). --schema
names another.

The top of the page says how fresh the marts are, in red when they are not current: built
before the newest sync in tenant_syncs, or by a dbt build that failed (dbt's run_results.json
of that warehouse, transform/target/duckdb or transform/target/postgres, or --dbt-results);
scripts/fleet_freshness.py. Offboarded tenants (is_offboarded) are listed as such and counted
in none of the fleet's figures. Names are shown with every invisible or direction-changing
character made visible, each name isolated (scripts/fleet_names.py).

The page is one file that makes no request when opened: inline CSS, charts drawn here as inline
SVG, a few lines of inline JavaScript that sort the tables when a header is clicked (the
Content-Security-Policy of the page allows nothing else). It stays small for a fleet of
thousands of tenants: each chart shows the worst --top tenants (20) and says how many more there
are, each table its first --max-rows rows (500) in order of severity. Every number is also in
the DOM as a data-* attribute (data-tenant, data-seat-use-pct, data-global-admins,
data-backup-success-yesterday-pct, ...) for tests and scrapers. The path written is printed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import decimal
import hashlib
import math
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg

# Run as `python scripts/fleet_report.py`: its own folder is on sys.path.
from fleet_freshness import Freshness, FreshnessError, read_freshness
from fleet_names import escape, escape_attribute, name_html, visible

DEFAULT_DUCKDB = "output/spanning.duckdb"
DEFAULT_OUTPUT = "output/fleet_report.html"
DEFAULT_TOP = 20
DEFAULT_MAX_ROWS = 500

# Microsoft: keep Global Admins to fewer than five, and at least two (a break-glass account).
GLOBAL_ADMIN_BAND = (2, 4)
GLOBAL_ADMIN_FLAG = 5
BACKUP_TARGET_PCT = 95.0  # a tenant's day below this is flagged
BACKUP_BAD_PCT = 80.0  # and below this, flagged red

# The marts and the columns read from each (transform/models/contract.md).
MARTS: dict[str, tuple[str, ...]] = {
    "fleet_overview": (
        "tenant_id",
        "license_status",
        "users",
        "licensed_users",
        "licenses",
        "archived_licenses",
        "assigned_standard",
        "assigned_archive",
        "seat_use_pct",
        "archive_seat_use_pct",
        "global_admins",
        "spanning_admins",
        "disabled_admins",
        "wasted_seats",
        "unprotected_active_users",
        "last_complete_sync_at",
        "failed_syncs_in_a_row",
        "backup_success_yesterday_pct",
        "backup_success_7d_pct",
    ),
    "access_review": (
        "tenant_id",
        "ms_id",
        "user_principal_name",
        "display_name",
        "role_id",
        "is_disabled",
        "is_deleted_from_microsoft",
        "has_no_microsoft_license",
        "is_archived",
        "needs_review",
    ),
    "license_waste": ("tenant_id", "ms_id", "user_principal_name", "reason"),
    "backup_health_daily": (
        "tenant_id",
        "date",
        "type",
        "total",
        "successful",
        "partial",
        "failed",
        "success_rate",
    ),
    "failing_users": (
        "tenant_id",
        "ms_id",
        "user_principal_name",
        "type",
        "streak_days",
        "first_day",
        "last_day",
    ),
    "tenant_sync_health": (
        "tenant_id",
        "last_sync_version",
        "last_sync_at",
        "last_status",
        "last_complete_sync_version",
        "last_complete_at",
        "consecutive_failed_runs",
        "last_reason",
        "is_current",
    ),
}
# Columns read when the marts have them: a warehouse built by an older transform/ has not.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "fleet_overview": ("is_offboarded",),
    "tenant_sync_health": ("is_offboarded",),
}

WORKLOADS = {
    "MAIL": "Mail",
    "DRIVE": "OneDrive",
    "SPSITE": "SharePoint sites",
    "CALENDAR": "Calendar",
    "CONTACT": "Contacts",
}
PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d")
BLUE, GREEN, AMBER, RED, GREY, TRACK = (
    "#2563eb",
    "#16a34a",
    "#d97706",
    "#dc2626",
    "#9ca3af",
    "#e5e7eb",
)
ROLE_NAMES = {"global_admin": "Global Admin", "spanning_admin": "Spanning Admin"}
WASTE_REASONS = {
    "deleted_from_microsoft": "deleted from Microsoft",
    "archived": "archived",
    "no_microsoft_license": "no Microsoft license",
}

Row = dict[str, Any]


class ReportError(Exception):
    """A problem the person running the report can fix; the message says how."""


# ----------------------------------------------------------------------------- the warehouse


@dataclass
class Marts:
    """The six marts, one list of rows (column name -> value) each, and how fresh they are."""

    source: str  # where they came from, for the page (no password)
    schema: str
    rows: dict[str, list[Row]]
    freshness: Freshness

    def __getitem__(self, mart: str) -> list[Row]:
        return self.rows[mart]


# A query's column names and rows, from either warehouse.
Run = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mart_query(schema: str, mart: str, columns: Sequence[str]) -> str:
    listed = ", ".join(quote_identifier(column) for column in columns)
    return f"SELECT {listed} FROM {quote_identifier(schema)}.{quote_identifier(mart)}"  # noqa: S608 - quoted identifiers of a fixed list


def missing_marts(present: Iterable[str]) -> list[str]:
    have = {name.lower() for name in present}
    return [mart for mart in MARTS if mart not in have]


def build_hint(warehouse: str) -> str:
    return (
        f"build them first: `meltano run tap-spanning target-{warehouse} dbt-{warehouse}:build` "
        f"(or `meltano invoke dbt-{warehouse}:build`), or pass --schema"
    )


def table_columns(pairs: Iterable[tuple[Any, Any]]) -> dict[str, set[str]]:
    """(table, column) pairs of information_schema.columns -> table -> its columns."""
    tables: dict[str, set[str]] = defaultdict(set)
    for name, column in pairs:
        tables[str(name).lower()].add(str(column).lower())
    return dict(tables)


def read_marts(run: Run, where: str, schema: str, warehouse: str, results: Path | None) -> Marts:
    """The marts of `schema` and their freshness; `run` answers a query, `warehouse` is
    duckdb or postgres (the commands named in messages)."""
    _, pairs = run(
        "SELECT table_name, column_name FROM information_schema.columns "  # noqa: S608 - a quoted literal
        "WHERE table_catalog = current_database() "
        f"AND table_schema = '{schema.replace(chr(39), chr(39) * 2)}'"
    )
    columns = table_columns((name, column) for name, column in pairs)
    missing = missing_marts(columns)
    if missing:
        raise ReportError(
            f"{where}: schema {schema} has no {', '.join(missing)}: {build_hint(warehouse)}"
        )
    rows: dict[str, list[Row]] = {}
    for mart, wanted in MARTS.items():
        optional = [c for c in OPTIONAL_COLUMNS.get(mart, ()) if c in columns[mart]]
        names, values = run(mart_query(schema, mart, [*wanted, *optional]))
        rows[mart] = [dict(zip(names, row, strict=True)) for row in values]
    try:
        freshness = read_freshness(lambda query: run(query)[1], columns, schema, warehouse, results)
    except FreshnessError as exc:
        raise ReportError(str(exc)) from None
    return Marts(where, schema, rows, freshness)


def read_duckdb(path: Path, schema: str, results: Path | None = None) -> Marts:
    if not path.is_file():
        raise ReportError(
            f"{path} does not exist: load and build it first (`meltano run tap-spanning "
            "target-duckdb dbt-duckdb:build`), or pass --duckdb"
        )
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise ReportError(f"{path}: cannot open it read-only ({exc})") from None

    def run(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = connection.execute(query)
        return [column[0] for column in cursor.description or ()], cursor.fetchall()

    try:
        return read_marts(run, str(path), schema, "duckdb", results)
    except duckdb.Error as exc:
        raise ReportError(f"{path}: reading the marts failed: {exc}") from None
    finally:
        connection.close()


def describe_postgres(url: str) -> str:
    """host:port/dbname of a connection string, without user or password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "PostgreSQL"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"PostgreSQL {host}:{port}/{parts.get('dbname') or ''}"


def read_postgres(url: str, schema: str, results: Path | None = None) -> Marts:
    where = describe_postgres(url)
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise ReportError(f"{where}: cannot connect ({exc})") from None

    def run(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with connection.cursor() as cursor:
            cursor.execute(query.encode())
            names = [column.name for column in cursor.description or ()]
            return names, list(cursor.fetchall())

    try:
        connection.read_only = True
        return read_marts(run, where, schema, "postgres", results)
    except psycopg.Error as exc:
        raise ReportError(f"{where}: reading the marts failed: {exc}") from None
    finally:
        connection.close()


# ----------------------------------------------------------------------------- values


def num(value: Any) -> float | None:
    """A number from the warehouse (int, float, Decimal, numeric text), else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, decimal.Decimal)):
        result = float(value)
    else:
        try:
            result = float(str(value))
        except ValueError:
            return None
    return None if math.isnan(result) else result


def count(value: Any) -> int:
    found = num(value)
    return 0 if found is None else round(found)


def flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "t", "1", "yes"}
    return bool(value)


def day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def text(value: Any) -> str:
    return "" if value is None else str(value)


def fmt_int(value: float | None) -> str:
    return "\u2014" if value is None else f"{round(value):,}"


def fmt_pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{value:.1f}%"


def fmt_time(value: Any) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, dt.datetime):
        moment: dt.datetime = value
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M")
    return str(value)


def data_value(value: Any) -> str:
    """A data-* attribute value: numbers plainly (4 decimals at most), null as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def esc(value: Any) -> str:
    """Text as HTML: escaped, every invisible or direction-changing character shown."""
    return escape(text(value))


def name_cell(value: Any) -> str:
    """A name from the warehouse as HTML: escaped, its hidden characters shown, isolated."""
    return name_html(text(value))


def attrs(values: dict[str, Any]) -> str:
    return "".join(
        f' {key}="{escape_attribute(data_value(value))}"' for key, value in values.items()
    )


def short(label: str, limit: int) -> str:
    label = visible(label)  # cut what is shown, tokens included
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def workload(kind: str) -> str:
    return WORKLOADS.get(kind, kind)


def plural(number: int, noun: str, nouns: str | None = None) -> str:
    return f"{number:,} {noun if number == 1 else (nouns or noun + 's')}"


# ----------------------------------------------------------------------------- the fleet


@dataclass
class Tenant:
    """One tenant: its fleet_overview row, its sync health and what the other marts count."""

    tenant_id: str
    overview: Row
    sync: Row
    failing_users: int = 0
    longest_streak: int = 0
    issues: list[tuple[int, str]] = field(default_factory=list)  # (weight, text)

    @property
    def severity(self) -> int:
        return sum(weight for weight, _ in self.issues)

    def get(self, column: str) -> float | None:
        return num(self.overview.get(column))

    @property
    def offboarded(self) -> bool:
        """No longer listed in the tap's tenants: its history kept, counted in no figure."""
        return flag(self.overview.get("is_offboarded")) or flag(self.sync.get("is_offboarded"))

    @property
    def never_completed(self) -> bool:
        return (
            self.overview.get("last_complete_sync_at") is None
            and self.sync.get("last_complete_at") is None
        )

    @property
    def sync_failing(self) -> bool:
        return count(self.overview.get("failed_syncs_in_a_row")) > 0 or (
            self.sync.get("is_current") is not None and not flag(self.sync.get("is_current"))
        )


def tenant_issues(tenant: Tenant) -> list[tuple[int, str]]:
    """What needs attention, each with a weight: the tenants are listed by their sum."""
    found: list[tuple[int, str]] = []
    if tenant.offboarded:
        return found  # nothing of it needs attention any more
    failed = count(tenant.overview.get("failed_syncs_in_a_row"))
    if tenant.never_completed:
        found.append((10, "never synced"))
    elif tenant.sync_failing:
        found.append((8, f"sync failing ({plural(failed, 'run')})"))
    backup = tenant.get("backup_success_yesterday_pct")
    if backup is not None and backup < BACKUP_TARGET_PCT:
        found.append((6 if backup < BACKUP_BAD_PCT else 3, f"backups {fmt_pct(backup)}"))
    if tenant.failing_users:
        weight = 6 if tenant.failing_users >= 10 else 4  # ten or more: a pattern, not a user
        found.append((weight, plural(tenant.failing_users, "failing user")))
    global_admins = count(tenant.overview.get("global_admins"))
    if global_admins >= GLOBAL_ADMIN_FLAG:
        found.append((3, f"{global_admins} Global Admins"))
    elif global_admins < GLOBAL_ADMIN_BAND[0] and tenant.overview.get("users"):
        found.append((1, plural(global_admins, "Global Admin")))
    disabled = count(tenant.overview.get("disabled_admins"))
    if disabled:
        found.append((3, plural(disabled, "disabled admin")))
    seat_use = tenant.get("seat_use_pct")
    if seat_use is not None and seat_use > 100:
        found.append((3, f"over licensed ({fmt_pct(seat_use)})"))
    unprotected = count(tenant.overview.get("unprotected_active_users"))
    if unprotected:
        found.append((2, f"{unprotected:,} unprotected"))
    wasted = count(tenant.overview.get("wasted_seats"))
    if wasted:
        found.append((1, plural(wasted, "wasted seat")))
    return found


def build_tenants(marts: Marts) -> list[Tenant]:
    """Every tenant of fleet_overview (and of tenant_sync_health), worst first."""
    syncs = {text(row["tenant_id"]): row for row in marts["tenant_sync_health"]}
    overview = {text(row["tenant_id"]): row for row in marts["fleet_overview"]}
    tenants = {
        tenant_id: Tenant(tenant_id, overview.get(tenant_id, {}), syncs.get(tenant_id, {}))
        for tenant_id in sorted(set(overview) | set(syncs))
    }
    failing: dict[str, set[str]] = defaultdict(set)
    for row in marts["failing_users"]:
        tenant = tenants.get(text(row["tenant_id"]))
        if tenant is not None:
            failing[tenant.tenant_id].add(text(row["ms_id"]))
            tenant.longest_streak = max(tenant.longest_streak, count(row["streak_days"]))
    for tenant_id, users in failing.items():
        tenants[tenant_id].failing_users = len(users)
    for tenant in tenants.values():
        tenant.issues = sorted(tenant_issues(tenant), key=lambda issue: -issue[0])
    # The offboarded last: they need nothing.
    return sorted(
        tenants.values(),
        key=lambda tenant: (tenant.offboarded, -tenant.severity, tenant.tenant_id),
    )


# The marts whose rows belong to a tenant and add up to the fleet's figures.
PER_TENANT_ROWS = ("access_review", "license_waste", "backup_health_daily", "failing_users")


def without_offboarded(marts: Marts, tenants: Sequence[Tenant]) -> Marts:
    """The marts less the rows of offboarded tenants, which no fleet figure counts (the
    staging views already drop their users; their backup history stays in the warehouse)."""
    gone = {tenant.tenant_id for tenant in tenants if tenant.offboarded}
    if not gone:
        return marts
    rows = dict(marts.rows)
    for mart in PER_TENANT_ROWS:
        rows[mart] = [row for row in marts[mart] if text(row["tenant_id"]) not in gone]
    return Marts(marts.source, marts.schema, rows, marts.freshness)


# ----------------------------------------------------------------------------- SVG charts

ROW_HEIGHT = 22
BAR_HEIGHT = 14
CHART_TOP = 26
CHAR_WIDTH = 6.4  # about, of an 11px sans-serif character: text is cut to fit its room
WIDE = 1100  # the viewBox width of a chart across the page (about its size on screen)


@dataclass(frozen=True)
class Layout:
    """A bar chart's columns, in viewBox units: tenant label, bars, value label."""

    width: int
    label_width: int
    plot_width: int

    @property
    def plot_left(self) -> int:
        return self.label_width + 8

    @property
    def value_left(self) -> int:
        return self.plot_left + self.plot_width + 8

    @property
    def label_chars(self) -> int:
        return int(self.label_width / CHAR_WIDTH)

    @property
    def value_chars(self) -> int:
        return int((self.width - self.value_left) / CHAR_WIDTH)


HALF = Layout(560, 156, 196)  # a chart in one of two columns
FULL = Layout(WIDE, 170, 400)


@dataclass(frozen=True)
class Bar:
    tenant: str
    value: float  # in axis units; clipped at the axis maximum
    label: str  # right of the bar
    color: str
    title: str  # the tooltip
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Band:
    start: float
    end: float
    color: str
    label: str = ""


def fx(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    chart: str,
    bars: Sequence[Bar],
    *,
    axis_max: float,
    ticks: Sequence[float],
    tick_label: Callable[[float], str],
    bands: Sequence[Band] = (),
    markers: Sequence[tuple[float, str]] = (),
    track: bool = False,
    layout: Layout = HALF,
) -> str:
    """Horizontal bars, one row per tenant, in the order given."""
    height = CHART_TOP + ROW_HEIGHT * len(bars) + 22
    plot_bottom = CHART_TOP + ROW_HEIGHT * len(bars)
    plot_left = layout.plot_left

    def x(value: float) -> float:
        return plot_left + layout.plot_width * max(0.0, min(value, axis_max)) / axis_max

    parts = [
        f'<svg class="chart" data-chart="{esc(chart)}" viewBox="0 0 {layout.width} {height}" '
        f'role="img" aria-label="{esc(chart)}">'
    ]
    for band in bands:
        parts.append(
            f'<rect x="{fx(x(band.start))}" y="{CHART_TOP - 4}" '
            f'width="{fx(x(band.end) - x(band.start))}" height="{plot_bottom - CHART_TOP + 4}" '
            f'fill="{band.color}"/>'
        )
        if band.label:
            parts.append(
                f'<text class="band" x="{fx((x(band.start) + x(band.end)) / 2)}" '
                f'y="{CHART_TOP - 8}" text-anchor="middle">{esc(band.label)}</text>'
            )
    for tick in ticks:
        parts.append(
            f'<line class="grid" x1="{fx(x(tick))}" x2="{fx(x(tick))}" y1="{CHART_TOP - 4}" '
            f'y2="{plot_bottom}"/>'
            f'<text class="tick" x="{fx(x(tick))}" y="{plot_bottom + 14}" '
            f'text-anchor="middle">{esc(tick_label(tick))}</text>'
        )
    for index, bar in enumerate(bars):
        top = CHART_TOP + ROW_HEIGHT * index
        middle = top + ROW_HEIGHT / 2
        bar_top = middle - BAR_HEIGHT / 2
        data = {"data-tenant": bar.tenant, "data-value": bar.value, **bar.data}
        parts.append(f'<g class="bar"{attrs(data)}><title>{esc(bar.title)}</title>')
        parts.append(
            f'<text class="label" x="{layout.label_width}" y="{fx(middle + 4)}" '
            f'text-anchor="end">{esc(short(bar.tenant, layout.label_chars))}</text>'
        )
        if track:
            parts.append(
                f'<rect x="{plot_left}" y="{fx(bar_top)}" width="{fx(x(100) - plot_left)}" '
                f'height="{BAR_HEIGHT}" fill="{TRACK}"/>'
            )
        width = x(bar.value) - plot_left
        if width > 0:
            parts.append(
                f'<rect x="{plot_left}" y="{fx(bar_top)}" width="{fx(max(width, 1.5))}" '
                f'height="{BAR_HEIGHT}" rx="2" fill="{bar.color}"/>'
            )
        if bar.value > axis_max:
            parts.append(
                f'<text class="clip" x="{fx(x(axis_max) - 3)}" y="{fx(middle + 4)}" '
                'text-anchor="end">\u00bb</text>'
            )
        parts.append(
            f'<text class="value" x="{layout.value_left}" y="{fx(middle + 4)}">'
            f"{esc(short(bar.label, layout.value_chars))}</text></g>"
        )
    for value, label in markers:
        parts.append(
            f'<line class="marker" x1="{fx(x(value))}" x2="{fx(x(value))}" '
            f'y1="{CHART_TOP - 4}" y2="{plot_bottom}"/>'
            f'<text class="marker" x="{fx(x(value))}" y="{CHART_TOP - 8}" '
            f'text-anchor="middle">{esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def nice_ticks(maximum: float, steps: int = 5, whole: bool = False) -> tuple[float, list[float]]:
    """An axis maximum >= maximum and about `steps` round ticks from 0 (whole: 1 apart at
    least, for counts)."""
    maximum = max(maximum, 1.0)
    raw = maximum / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(step, 1)
    top = math.ceil(maximum / step) * step
    return top, [step * index for index in range(round(top / step) + 1)]


def more_note(shown: int, total: int, noun: str, where: str, nouns: str | None = None) -> str:
    if total <= shown:
        return f'<p class="note">All {plural(total, noun, nouns)} shown.</p>'
    return (
        f'<p class="note more" data-shown="{shown}" data-total="{total}">The worst {shown:,} of '
        f"{plural(total, noun, nouns)}: {total - shown:,} more not drawn ({where}).</p>"
    )


def seat_chart(tenants: Sequence[Tenant], top: int) -> str:
    """Assigned Standard seats against licenses: over-licensed first, then most unused."""
    licensed = [t for t in tenants if (t.get("licenses") or 0) > 0]

    def worst(tenant: Tenant) -> tuple[int, float, str]:
        pct = tenant.get("seat_use_pct") or 0.0
        unused = (tenant.get("licenses") or 0) - (tenant.get("assigned_standard") or 0)
        return (0, -pct, tenant.tenant_id) if pct > 100 else (1, -unused, tenant.tenant_id)

    shown = sorted(licensed, key=worst)[:top]
    bars = []
    for tenant in shown:
        pct = tenant.get("seat_use_pct") or 0.0
        assigned, licenses = tenant.get("assigned_standard"), tenant.get("licenses")
        color = RED if pct > 100 else AMBER if pct < 50 else BLUE
        label = f"{fmt_int(assigned)} / {fmt_int(licenses)} ({fmt_pct(pct)})"
        bars.append(
            Bar(
                tenant.tenant_id,
                pct,
                label,
                color,
                f"{tenant.tenant_id}: {label} of Standard licenses assigned",
                {"data-seat-use-pct": tenant.get("seat_use_pct")},
            )
        )
    axis_max, ticks = nice_ticks(max([100.0, *(min(b.value, 200.0) for b in bars)]))
    without = len(tenants) - len(licensed)
    body = (
        bar_chart(
            "seat-use",
            bars,
            axis_max=axis_max,
            ticks=ticks,
            tick_label=lambda v: f"{v:g}%",
            markers=[(100.0, "licenses")],
            track=True,
        )
        if bars
        else '<p class="empty">No tenant has license counters yet.</p>'
    )
    note = more_note(len(shown), len(licensed), "licensed tenant", "Tenants table")
    if without:
        note += f'<p class="note">{plural(without, "tenant")} without license counters.</p>'
    return body + note


def admin_chart(tenants: Sequence[Tenant], top: int) -> str:
    """Global Admins per tenant against the 2-4 band: too many first, then too few."""
    low, high = GLOBAL_ADMIN_BAND
    counted = [t for t in tenants if t.overview.get("users")]

    def worst(tenant: Tenant) -> tuple[int, int, int, str]:
        admins = count(tenant.overview.get("global_admins"))
        disabled = count(tenant.overview.get("disabled_admins"))
        rank = 0 if admins >= GLOBAL_ADMIN_FLAG else 1 if admins < low else 2
        return rank, -admins if rank == 0 else admins, -disabled, tenant.tenant_id

    shown = sorted(counted, key=worst)[:top]
    bars = []
    for tenant in shown:
        admins = count(tenant.overview.get("global_admins"))
        disabled = count(tenant.overview.get("disabled_admins"))
        spanning = count(tenant.overview.get("spanning_admins"))
        color = RED if admins >= GLOBAL_ADMIN_FLAG else AMBER if admins < low else GREEN
        label = f"{admins} GA \u00b7 {spanning} Spanning" + (
            f" \u00b7 {disabled} disabled" if disabled else ""
        )
        bars.append(
            Bar(
                tenant.tenant_id,
                float(admins),
                label,
                color,
                f"{tenant.tenant_id}: {admins} Global Admins, {spanning} Spanning Admins, "
                f"{disabled} disabled admins",
                {"data-global-admins": admins, "data-disabled-admins": disabled},
            )
        )
    axis_max, ticks = nice_ticks(
        max([GLOBAL_ADMIN_FLAG + 2.0, *(b.value for b in bars)]), whole=True
    )
    body = (
        bar_chart(
            "global-admins",
            bars,
            axis_max=axis_max,
            ticks=ticks,
            tick_label=lambda v: f"{v:g}",
            bands=[
                # Half a unit either side: a bar of 2, 3 or 4 ends in the green band.
                Band(low - 0.5, high + 0.5, "#dcfce7", f"{low}\u2013{high}"),
                Band(GLOBAL_ADMIN_FLAG - 0.5, axis_max, "#fee2e2", f"{GLOBAL_ADMIN_FLAG}+"),
            ],
        )
        if bars
        else '<p class="empty">No tenant has users yet.</p>'
    )
    return body + more_note(len(shown), len(counted), "tenant", "Tenants table")


def backup_line_chart(rows: Sequence[Row]) -> str:
    """Fleet-wide success per workload and day: sum(successful) / sum(total) of the tenants."""
    totals: dict[tuple[str, dt.date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        when = day(row["date"])
        total = num(row["total"])
        if when is None or not total:
            continue
        cell = totals[(text(row["type"]), when)]
        cell[0] += num(row["successful"]) or 0.0
        cell[1] += total
    if not totals:
        return '<p class="empty">No backup history in backup_health_daily.</p>'
    kinds = sorted({kind for kind, _ in totals}, key=lambda k: (k not in WORKLOADS, workload(k)))
    days = sorted({when for _, when in totals})
    points = {key: 100 * ok / total for key, (ok, total) in totals.items()}
    lowest = min(points.values())
    floor = min(90.0, math.floor(lowest / 10) * 10)
    width, height = WIDE, 300
    left, right, top, bottom = 48, WIDE - 16, 40, height - 30
    span = max((days[-1] - days[0]).days, 1)

    def x(when: dt.date) -> float:
        if len(days) == 1:
            return (left + right) / 2
        return left + (right - left) * (when - days[0]).days / span

    def y(pct: float) -> float:
        return bottom - (bottom - top) * (pct - floor) / (100 - floor)

    parts = [
        f'<svg class="chart" data-chart="backup-success" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="backup success per workload">'
    ]
    step = 5 if 100 - floor <= 30 else 10
    for tick in range(int(floor), 101, step):
        parts.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{fx(y(tick))}" y2="{fx(y(tick))}"/>'
            f'<text class="tick" x="{left - 6}" y="{fx(y(tick) + 4)}" text-anchor="end">'
            f"{tick}%</text>"
        )
    if floor < BACKUP_TARGET_PCT:
        parts.append(
            f'<line class="marker" x1="{left}" x2="{right}" y1="{fx(y(BACKUP_TARGET_PCT))}" '
            f'y2="{fx(y(BACKUP_TARGET_PCT))}"/>'
        )
    label_every = max(1, math.ceil(len(days) / 10))
    for index, when in enumerate(days):
        if index % label_every == 0 or index == len(days) - 1:
            parts.append(
                f'<text class="tick" x="{fx(x(when))}" y="{bottom + 16}" text-anchor="middle">'
                f"{when:%m-%d}</text>"
            )
    legend_x = left
    for index, kind in enumerate(kinds):
        color = PALETTE[index % len(PALETTE)]
        series = [(when, points[(kind, when)]) for when in days if (kind, when) in points]
        path = " ".join(
            f"{'M' if n == 0 else 'L'}{fx(x(when))},{fx(y(pct))}"
            for n, (when, pct) in enumerate(series)
        )
        parts.append(
            f'<g class="series" data-type="{escape_attribute(kind)}"><path d="{path}" fill="none" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        for when, pct in series:
            ok, total = totals[(kind, when)]
            parts.append(
                f'<circle cx="{fx(x(when))}" cy="{fx(y(pct))}" r="3" fill="{color}"'
                f"{attrs({'data-date': when.isoformat(), 'data-success-pct': pct})}>"
                f"<title>{esc(workload(kind))} {when}: {fmt_pct(pct)} "
                f"({fmt_int(ok)} of {fmt_int(total)})</title></circle>"
            )
        parts.append("</g>")
        name = workload(kind)
        parts.append(
            f'<rect x="{legend_x}" y="10" width="12" height="12" rx="2" fill="{color}"/>'
            f'<text class="legend" x="{legend_x + 16}" y="20">{esc(name)}</text>'
        )
        legend_x += 28 + 7 * len(name)
    parts.append("</svg>")
    note = (
        f'<p class="note">{plural(len(days), "day")} held, {days[0]} to {days[-1]}; '
        f"the dashed line is {BACKUP_TARGET_PCT:g}%.</p>"
    )
    return "".join(parts) + note


def backup_tenant_chart(tenants: Sequence[Tenant], top: int) -> str:
    """The tenants with the lowest backup success yesterday."""
    held = [t for t in tenants if t.get("backup_success_yesterday_pct") is not None]
    shown = sorted(held, key=lambda t: (t.get("backup_success_yesterday_pct") or 0.0, t.tenant_id))[
        :top
    ]
    bars = []
    for tenant in shown:
        pct = tenant.get("backup_success_yesterday_pct") or 0.0
        week = tenant.get("backup_success_7d_pct")
        color = RED if pct < BACKUP_BAD_PCT else AMBER if pct < BACKUP_TARGET_PCT else GREEN
        label = f"{fmt_pct(pct)} (7 days: {fmt_pct(week)})"
        bars.append(
            Bar(
                tenant.tenant_id,
                pct,
                label,
                color,
                f"{tenant.tenant_id}: {label}",
                {"data-backup-success-yesterday-pct": pct},
            )
        )
    if not bars:
        return '<p class="empty">No tenant has backup results for yesterday.</p>'
    chart = bar_chart(
        "backup-yesterday",
        bars,
        axis_max=100.0,
        ticks=[0, 20, 40, 60, 80, 100],
        tick_label=lambda v: f"{v:g}%",
        markers=[(BACKUP_TARGET_PCT, f"{BACKUP_TARGET_PCT:g}%")],
        track=True,
    )
    return chart + more_note(len(shown), len(held), "tenant", "Tenants table")


def failing_chart(tenants: Sequence[Tenant], top: int) -> str:
    failing = sorted(
        (t for t in tenants if t.failing_users),
        key=lambda t: (-t.failing_users, -t.longest_streak, t.tenant_id),
    )
    shown = failing[:top]
    if not shown:
        return '<p class="empty good">No user has been failing for days in any tenant.</p>'
    bars = [
        Bar(
            tenant.tenant_id,
            float(tenant.failing_users),
            f"{plural(tenant.failing_users, 'user')} \u00b7 longest {tenant.longest_streak} days",
            RED if tenant.longest_streak >= 7 else AMBER,
            f"{tenant.tenant_id}: {plural(tenant.failing_users, 'user')} failing, the longest "
            f"for {tenant.longest_streak} days",
            {"data-failing-users": tenant.failing_users},
        )
        for tenant in shown
    ]
    axis_max, ticks = nice_ticks(max(b.value for b in bars), whole=True)
    chart = bar_chart(
        "failing-users",
        bars,
        axis_max=axis_max,
        ticks=ticks,
        tick_label=lambda v: f"{v:g}",
    )
    return chart + more_note(
        len(shown),
        len(failing),
        "tenant with failing users",
        "table below",
        "tenants with failing users",
    )


def sync_chart(tenants: Sequence[Tenant], top: int) -> str:
    never = [t for t in tenants if t.never_completed]
    failing = [t for t in tenants if t.sync_failing and t not in never]
    current = len(tenants) - len(failing) - len(never)
    total = max(len(tenants), 1)
    parts = [
        f'<svg class="chart" data-chart="sync-split" viewBox="0 0 {WIDE} 44" role="img" '
        'aria-label="tenants by sync health">'
    ]
    left = 0.0
    for name, number, color in (
        ("current", current, GREEN),
        ("failing", len(failing), RED),
        ("never completed", len(never), GREY),
    ):
        width = WIDE * number / total
        if number:
            parts.append(
                f'<g class="split" data-status="{name}" data-count="{number}">'
                f'<rect x="{fx(left)}" y="4" width="{fx(width)}" height="20" fill="{color}"/>'
                f"<title>{plural(number, 'tenant')} {name}</title></g>"
            )
        left += width
    legend = " \u00b7 ".join(
        f"{number:,} {name}"
        for name, number in (
            ("current", current),
            ("failing", len(failing)),
            ("never completed", len(never)),
        )
    )
    parts.append(f'<text class="legend" x="0" y="40">{esc(legend)}</text></svg>')
    broken = sorted(
        failing + never,
        key=lambda t: (-count(t.sync.get("consecutive_failed_runs")), t.tenant_id),
    )
    shown = broken[:top]
    bars = []
    for tenant in shown:
        runs = count(tenant.sync.get("consecutive_failed_runs"))
        reason = text(tenant.sync.get("last_reason")) or text(tenant.sync.get("last_status"))
        bars.append(
            Bar(
                tenant.tenant_id,
                float(runs),
                f"{plural(runs, 'run')} \u00b7 {reason}",
                GREY if tenant in never else RED,
                f"{tenant.tenant_id}: {plural(runs, 'failed run')} in a row: {reason}",
                {"data-consecutive-failed-runs": runs},
            )
        )
    if bars:
        axis_max, ticks = nice_ticks(max(b.value for b in bars), whole=True)
        parts.append(
            bar_chart(
                "failed-runs",
                bars,
                axis_max=axis_max,
                ticks=ticks,
                tick_label=lambda v: f"{v:g}",
                layout=FULL,
            )
        )
        parts.append(more_note(len(shown), len(broken), "failing tenant", "Tenants table"))
    else:
        parts.append('<p class="empty good">Every tenant\'s last sync completed.</p>')
    return "".join(parts)


# ----------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False
    tags: bool = False  # a cell of tags, which wraps; every other cell stays on one line


def table(
    name: str,
    columns: Sequence[Column],
    rows: Sequence[tuple[dict[str, Any], list[str]]],
    total: int,
    empty: str,
) -> str:
    """A sortable table; rows are (data-* attributes, cells already escaped HTML)."""
    if not rows:
        return f'<p class="empty" data-table="{esc(name)}">{esc(empty)}</p>'
    head = "".join(
        f'<th{" class=num" if column.numeric else ""}><button type="button">'
        f"{esc(column.title)}</button></th>"
        for column in columns
    )
    body = "".join(
        f"<tr{attrs(data)}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
        for data, cells in rows
    )

    # Numeric columns are right-aligned (and tag columns wrap) by a rule per table, not a class
    # on every cell.
    def cells(kind: str) -> str:
        return ",".join(
            f'table[data-table="{esc(name)}"] td:nth-child({index})'
            for index, column in enumerate(columns, start=1)
            if getattr(column, kind)
        )

    rules = [
        f"{selector}{{{rule}}}"
        for selector, rule in (
            (cells("numeric"), "text-align:right"),
            (cells("tags"), "white-space:normal;min-width:250px"),
        )
        if selector
    ]
    style = f"<style>{''.join(rules)}</style>" if rules else ""
    note = (
        f'<p class="note more" data-shown="{len(rows)}" data-total="{total}">The first '
        f"{len(rows):,} of {total:,} rows: {total - len(rows):,} more not shown (query the "
        f"{esc(name)} mart). Sorting sorts the rows shown.</p>"
        if total > len(rows)
        else ""
    )
    return (
        f'{style}<div class="scroll"><table class="sortable" data-table="{esc(name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}"
    )


def badges(items: Iterable[str], css: str = "") -> str:
    """Tags in a cell: <i> (an issue, red), <i class=w> (a reason, amber), <i class=ok>."""
    opening = f"<i class={css}>" if css else "<i>"
    return "".join(f"{opening}{esc(item)}</i>" for item in items)


def tenants_table(tenants: Sequence[Tenant], max_rows: int) -> str:
    columns = [
        Column("Tenant"),
        Column("Issues", tags=True),
        Column("Users", True),
        Column("Seats used", True),
        Column("Seat use", True),
        Column("Global Admins", True),
        Column("Spanning Admins", True),
        Column("Disabled admins", True),
        Column("Wasted seats", True),
        Column("Unprotected users", True),
        Column("Backups yesterday", True),
        Column("Backups 7 days", True),
        Column("Failing users", True),
        Column("Failed syncs in a row", True),
        Column("Last complete sync"),
    ]
    rows = []
    for tenant in tenants[:max_rows]:
        o = tenant.overview
        data = {
            "data-tenant": tenant.tenant_id,
            "data-severity": tenant.severity,
            "data-users": num(o.get("users")),
            "data-licenses": num(o.get("licenses")),
            "data-assigned-standard": num(o.get("assigned_standard")),
            "data-seat-use-pct": tenant.get("seat_use_pct"),
            "data-global-admins": num(o.get("global_admins")),
            "data-spanning-admins": num(o.get("spanning_admins")),
            "data-disabled-admins": num(o.get("disabled_admins")),
            "data-wasted-seats": num(o.get("wasted_seats")),
            "data-unprotected-active-users": num(o.get("unprotected_active_users")),
            "data-backup-success-yesterday-pct": tenant.get("backup_success_yesterday_pct"),
            "data-backup-success-7d-pct": tenant.get("backup_success_7d_pct"),
            "data-failing-users": tenant.failing_users,
            "data-failed-syncs-in-a-row": num(o.get("failed_syncs_in_a_row")),
            "data-offboarded": tenant.offboarded,
        }
        issues = [issue for _, issue in tenant.issues]
        severity = f'<span hidden data-v="{tenant.severity}"></span>'
        if tenant.offboarded:
            label = badges(["offboarded"], "off")
        else:
            label = badges(issues) if issues else badges(["ok"], "ok")
        cells = [
            name_cell(tenant.tenant_id),
            severity + label,
            esc(fmt_int(num(o.get("users")))),
            esc(f"{fmt_int(num(o.get('assigned_standard')))} / {fmt_int(num(o.get('licenses')))}"),
            esc(fmt_pct(tenant.get("seat_use_pct"))),
            esc(fmt_int(num(o.get("global_admins")))),
            esc(fmt_int(num(o.get("spanning_admins")))),
            esc(fmt_int(num(o.get("disabled_admins")))),
            esc(fmt_int(num(o.get("wasted_seats")))),
            esc(fmt_int(num(o.get("unprotected_active_users")))),
            esc(fmt_pct(tenant.get("backup_success_yesterday_pct"))),
            esc(fmt_pct(tenant.get("backup_success_7d_pct"))),
            esc(fmt_int(float(tenant.failing_users))),
            esc(fmt_int(num(o.get("failed_syncs_in_a_row")))),
            esc(fmt_time(o.get("last_complete_sync_at") or tenant.sync.get("last_complete_at"))),
        ]
        rows.append((data, cells))
    return table("fleet_overview", columns, rows, len(tenants), "No tenant in fleet_overview.")


REVIEW_FLAGS = (
    ("is_disabled", "disabled"),
    ("is_deleted_from_microsoft", "deleted from Microsoft"),
    ("has_no_microsoft_license", "no Microsoft license"),
    ("is_archived", "archived"),
)


def access_table(rows: Sequence[Row], max_rows: int) -> str:
    def order(row: Row) -> tuple[bool, int, str, str, str]:
        flags = sum(flag(row[column]) for column, _ in REVIEW_FLAGS)
        return (
            not flag(row["needs_review"]),
            -flags,
            text(row["tenant_id"]),
            text(row["role_id"]),
            text(row["user_principal_name"]),
        )

    ordered = sorted(rows, key=order)
    columns = [
        Column("Tenant"),
        Column("User"),
        Column("Name"),
        Column("Role"),
        Column("Review"),
        Column("Why", tags=True),
    ]
    shown = []
    for row in ordered[:max_rows]:
        review = flag(row["needs_review"])
        why = [label for column, label in REVIEW_FLAGS if flag(row[column])]
        role = text(row["role_id"])
        data = {
            "data-tenant": text(row["tenant_id"]),
            "data-ms-id": text(row["ms_id"]),
            "data-role": role,
            "data-needs-review": review,
        }
        cells = [
            name_cell(row["tenant_id"]),
            name_cell(row["user_principal_name"]),
            name_cell(row["display_name"]),
            name_cell(ROLE_NAMES.get(role, role)),
            badges(["review"]) if review else badges(["ok"], "ok"),
            badges(why, "w"),
        ]
        shown.append((data, cells))
    return table("access_review", columns, shown, len(rows), "No admin role in access_review.")


def waste_table(rows: Sequence[Row], max_rows: int) -> str:
    reasons = list(WASTE_REASONS)

    def order(row: Row) -> tuple[int, str, str]:
        reason = text(row["reason"])
        rank = reasons.index(reason) if reason in reasons else len(reasons)
        return rank, text(row["tenant_id"]), text(row["user_principal_name"])

    columns = [Column("Tenant"), Column("User"), Column("Reason")]
    shown = [
        (
            {
                "data-tenant": text(row["tenant_id"]),
                "data-ms-id": text(row["ms_id"]),
                "data-reason": text(row["reason"]),
            },
            [
                name_cell(row["tenant_id"]),
                name_cell(row["user_principal_name"]),
                name_cell(WASTE_REASONS.get(text(row["reason"]), text(row["reason"]))),
            ],
        )
        for row in sorted(rows, key=order)[:max_rows]
    ]
    return table("license_waste", columns, shown, len(rows), "No license to reclaim.")


def failing_table(rows: Sequence[Row], max_rows: int) -> str:
    def order(row: Row) -> tuple[int, str, str, str]:
        return (
            -count(row["streak_days"]),
            text(row["tenant_id"]),
            text(row["user_principal_name"]),
            text(row["type"]),
        )

    columns = [
        Column("Tenant"),
        Column("User"),
        Column("Workload"),
        Column("Days failing", True),
        Column("Since"),
        Column("Last day"),
    ]
    shown = [
        (
            {
                "data-tenant": text(row["tenant_id"]),
                "data-ms-id": text(row["ms_id"]),
                "data-type": text(row["type"]),
                "data-streak-days": count(row["streak_days"]),
            },
            [
                name_cell(row["tenant_id"]),
                name_cell(row["user_principal_name"]),
                name_cell(workload(text(row["type"]))),
                esc(f"{count(row['streak_days']):,}"),
                esc(day(row["first_day"]) or row["first_day"]),
                esc(day(row["last_day"]) or row["last_day"]),
            ],
        )
        for row in sorted(rows, key=order)[:max_rows]
    ]
    return table("failing_users", columns, shown, len(rows), "No user has been failing for days.")


# ----------------------------------------------------------------------------- the page

STYLE = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--red:#dc2626;--amber:#b45309}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header,main{max-width:1180px;margin:0 auto;padding:16px 24px}
header{padding-top:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 2px}
.sub{color:var(--muted);margin:0}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 18px;
margin:0 0 16px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px;
margin:0 0 16px}
.grid2>section{margin:0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(104px,1fr));gap:10px;
margin:0 0 16px}
.kpi{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.kpi b{display:block;font-size:22px}
.kpi span{color:var(--muted);font-size:12px}
.kpi.bad b{color:var(--red)}
.why-text{color:var(--muted);margin:2px 0 10px}
svg.chart{display:block;width:100%;height:auto;margin:6px 0}
svg text{font-size:11px;fill:#374151}
svg text.label{fill:var(--ink)}
svg text.value,svg text.legend{fill:#374151}
svg text.band{fill:#6b7280;font-size:10px}
svg text.tick{fill:#6b7280;font-size:10px}
svg text.marker{fill:#111827;font-size:10px}
svg text.clip{fill:#fff;font-weight:bold}
svg line.grid{stroke:#f1f5f9}
svg line.marker{stroke:#111827;stroke-dasharray:3 3}
.note{color:var(--muted);font-size:12px;margin:4px 0 0}
.empty{color:var(--muted);font-style:italic}
.empty.good{color:#15803d}
.scroll{max-height:560px;overflow:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;
white-space:nowrap}
th{white-space:normal;vertical-align:bottom}
th{position:sticky;top:0;background:#f3f4f6;z-index:1}
th button{all:unset;cursor:pointer;font-weight:600}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
th.num{text-align:right}
td{font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
td i{display:inline-block;border-radius:10px;padding:0 7px;margin:1px 2px;font-style:normal;
font-size:11px;white-space:nowrap;background:#fee2e2;color:#991b1b}
td i.w{background:#fef3c7;color:#92400e}
td i.ok{background:#dcfce7;color:#166534}
td i.off{background:#e5e7eb;color:#374151}
.ctl{display:inline-block;border:1px solid var(--red);border-radius:3px;padding:0 2px;
margin:0 1px;font:bold 10px/1.3 ui-monospace,monospace;color:var(--red);background:#fff}
bdi{unicode-bidi:isolate}
.alert{max-width:1132px;margin:16px auto 0;padding:10px 16px;border:2px solid var(--red);
border-radius:8px;background:#fef2f2;color:#991b1b;font-weight:600}
@media (max-width:1180px){.alert{margin:16px 24px 0}}
.alert.unknown{border-color:var(--amber);background:#fffbeb;color:#92400e}
.alert p{margin:2px 0}
footer{color:var(--muted);font-size:12px;max-width:1180px;margin:0 auto;padding:0 24px 24px}
"""

# Records a page error on <html data-js-errors> (the report's browser test reads it); first, so
# that it also sees a syntax error of the script after it.
ERROR_SCRIPT = (
    "window.addEventListener('error',function(e){var d=document.documentElement;"
    "d.setAttribute('data-js-errors',(d.getAttribute('data-js-errors')||'')+"
    "(e.message||'error')+'\\n');});"
)

# Sorts a table by the clicked header: numbers (1,234 / 98.5%) as numbers, blanks last; the
# first click sorts numbers descending, text ascending.
SORT_SCRIPT = """
(function () {
  'use strict';
  function key(cell) {
    var hidden = cell.querySelector('[data-v]');
    var raw = hidden ? hidden.getAttribute('data-v') : cell.textContent.trim();
    if (raw === '' || raw === '\\u2014') { return null; }
    var plain = raw.replace(/,/g, '').replace(/%$/, '');
    return /^-?\\d+(\\.\\d+)?$/.test(plain) ? parseFloat(plain) : raw.toLowerCase();
  }
  function compare(a, b) {
    if (a === b) { return 0; }
    if (typeof a === 'number' && typeof b === 'number') { return a - b; }
    if (typeof a === 'number') { return -1; }
    if (typeof b === 'number') { return 1; }
    return a < b ? -1 : 1;
  }
  function sort(table, index, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) {
      return { row: row, key: key(row.cells[index]), position: position };
    });
    var numeric = keyed.some(function (item) { return typeof item.key === 'number'; });
    var current = th.getAttribute('aria-sort');
    var ascending = current ? current === 'descending' : !numeric;
    keyed.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        return a.key === b.key ? a.position - b.position : (a.key === null ? 1 : -1);
      }
      var order = compare(a.key, b.key);
      return (ascending ? order : -order) || a.position - b.position;
    });
    keyed.forEach(function (item) { body.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.querySelector('button').addEventListener('click', function () {
        sort(table, index, th);
      });
    });
  });
  document.documentElement.setAttribute('data-js', 'ready');
}());
"""


def script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Nothing may load: no request leaves the page, whatever text the warehouse holds.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    f"form-action 'none'; script-src {script_hash(ERROR_SCRIPT)} {script_hash(SORT_SCRIPT)}"
)


def kpis(tenants: Sequence[Tenant], marts: Marts, offboarded: int) -> str:
    """The fleet's figures: of its current tenants only (`marts` without the offboarded)."""
    licenses = sum(t.get("licenses") or 0 for t in tenants)
    assigned = sum(t.get("assigned_standard") or 0 for t in tenants)
    users = sum(count(t.overview.get("users")) for t in tenants)
    failing_syncs = sum(1 for t in tenants if t.sync_failing)
    review = sum(1 for row in marts["access_review"] if flag(row["needs_review"]))
    ga_flagged = sum(1 for t in tenants if count(t.overview.get("global_admins")) >= 5)
    failing_users = len({(text(r["tenant_id"]), text(r["ms_id"])) for r in marts["failing_users"]})
    yesterday = dt.date.today() - dt.timedelta(days=1)
    ok = total = 0.0
    for row in marts["backup_health_daily"]:
        if day(row["date"]) == yesterday:
            ok += num(row["successful"]) or 0.0
            total += num(row["total"]) or 0.0
    backup = 100 * ok / total if total else None
    cards = [
        ("tenants", f"{len(tenants):,}", "tenants", False),
        ("sync-failing", f"{failing_syncs:,}", "last sync failed", failing_syncs > 0),
        ("users", f"{users:,}", "users", False),
        (
            "seat-use",
            fmt_pct(100 * assigned / licenses if licenses else None),
            f"seat use ({fmt_int(assigned)} / {fmt_int(licenses)})",
            False,
        ),
        (
            "backup-yesterday",
            fmt_pct(backup),
            f"backups OK on {yesterday:%b %d}",
            backup is not None and backup < BACKUP_TARGET_PCT,
        ),
        ("failing-users", f"{failing_users:,}", "users failing for days", failing_users > 0),
        ("review", f"{review:,}", "admin roles to review", review > 0),
        ("ga-flagged", f"{ga_flagged:,}", "tenants with 5+ GAs", ga_flagged > 0),
        ("waste", f"{len(marts['license_waste']):,}", "licenses to reclaim", False),
    ]
    if offboarded:
        cards.append(("offboarded", f"{offboarded:,}", "offboarded, not counted", False))
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi{" bad" if bad else ""}" data-kpi="{name}"><b>{esc(value)}</b>'
            f"<span>{esc(label)}</span></div>"
            for name, value, label, bad in cards
        )
        + "</div>"
    )


def freshness_alert(freshness: Freshness) -> str:
    """The first thing on the page when the marts are not current: red when they are stale
    or their build failed, amber when their freshness is unknown."""
    said = freshness.warnings()
    if not said:
        return ""
    severe = freshness.stale or freshness.build_failed
    times = {
        "data-freshness": freshness.state,
        "data-marts-built-at": freshness.built_at and freshness.built_at.isoformat(),
        "data-newest-sync-at": freshness.newest_sync_at and freshness.newest_sync_at.isoformat(),
        "data-build-failed-at": freshness.build.finished_at.isoformat()
        if freshness.build_failed and freshness.build and freshness.build.finished_at
        else None,
    }
    return (
        f'<div class="alert{"" if severe else " unknown"}" role="alert"{attrs(times)}>'
        + "".join(f"<p>{esc(sentence)}</p>" for sentence in said)
        + "</div>"
    )


def section(anchor: str, title: str, why: str, body: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="why-text">{esc(why)}</p>'
        f"{body}</section>"
    )


def render(
    marts: Marts,
    *,
    top: int = DEFAULT_TOP,
    max_rows: int = DEFAULT_MAX_ROWS,
    title: str = "Spanning fleet report",
    generated: dt.datetime | None = None,
) -> str:
    """The whole page."""
    generated = generated or dt.datetime.now(dt.timezone.utc)
    listed = build_tenants(marts)  # every tenant, the offboarded last
    tenants = [tenant for tenant in listed if not tenant.offboarded]  # the current fleet
    offboarded = len(listed) - len(tenants)
    marts = without_offboarded(marts, listed)
    review = sum(1 for row in marts["access_review"] if flag(row["needs_review"]))
    streak_users = marts["failing_users"]
    charts = "".join(
        [
            '<div class="grid2">',
            section(
                "seat-use",
                "Seat use per tenant",
                "Standard licenses assigned against licenses bought: over-licensed tenants "
                "first (red), then the most unused licenses.",
                seat_chart(tenants, top),
            ),
            section(
                "admins",
                "Global Admins per tenant",
                f"Microsoft recommends {GLOBAL_ADMIN_BAND[0]}\u2013{GLOBAL_ADMIN_BAND[1]} "
                f"Global Admins and flags {GLOBAL_ADMIN_FLAG} or more; too many first, then "
                "too few.",
                admin_chart(tenants, top),
            ),
            "</div>",
            section(
                "backups",
                "Backup success per workload",
                "All tenants together: accounts (or sites) backed up successfully, each day "
                "held in backup_health_daily.",
                backup_line_chart(marts["backup_health_daily"]),
            ),
            '<div class="grid2">',
            section(
                "backup-tenants",
                "Lowest backup success yesterday",
                f"Per tenant, all workloads; below {BACKUP_TARGET_PCT:g}% is flagged.",
                backup_tenant_chart(tenants, top),
            ),
            section(
                "failing-tenants",
                "Failing users per tenant",
                "Users whose backup of a workload has failed (or been partial) for days running.",
                failing_chart(tenants, top),
            ),
            "</div>",
            section(
                "sync-health",
                "Tenants by sync health",
                "Whether each tenant's last sync completed; the failing ones by failed runs "
                "in a row, with the last reason.",
                sync_chart(tenants, top),
            ),
        ]
    )
    tables = "".join(
        [
            section(
                "tenants",
                f"Tenants ({len(tenants):,}"
                + (f", and {offboarded:,} offboarded)" if offboarded else ")"),
                "Worst first: a failing sync, failing backups, then admin and license "
                "findings; offboarded tenants (no longer synced, counted in no figure) last. "
                "Click a header to sort.",
                tenants_table(listed, max_rows),
            ),
            section(
                "access-review",
                f"Access review ({review:,} of {len(marts['access_review']):,} admin roles "
                "to review)",
                "Global and Spanning Admins; those disabled, deleted from Microsoft, without "
                "a Microsoft license or archived first.",
                access_table(marts["access_review"], max_rows),
            ),
            section(
                "license-waste",
                f"License waste ({len(marts['license_waste']):,} Standard licenses to reclaim)",
                "Assigned Standard licenses of users deleted from Microsoft, archived, or "
                "without a Microsoft license.",
                waste_table(marts["license_waste"], max_rows),
            ),
            section(
                "failing-users",
                f"Failing users ({len(streak_users):,} user workloads)",
                "Failed or partial for days running up to the tenant's latest day; the "
                "longest streak first.",
                failing_table(streak_users, max_rows),
            ),
        ]
    )
    stamp = generated.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><script>{ERROR_SCRIPT}</script>"
        f"<style>{STYLE}</style></head>"
        f'<body data-tenants="{len(tenants)}" data-offboarded="{offboarded}">'
        f"{freshness_alert(marts.freshness)}"
        f"<header><h1>{esc(title)}</h1>"
        f'<p class="sub">{plural(len(tenants), "tenant")}'
        + (f" (and {offboarded:,} offboarded)" if offboarded else "")
        + f" \u00b7 from {esc(marts.source)}, schema {esc(marts.schema)} \u00b7 "
        f'<span data-freshness="{esc(marts.freshness.state)}">'
        f"{esc(marts.freshness.summary())}</span> \u00b7 generated {esc(stamp)}</p></header>"
        f"<main>{kpis(tenants, marts, offboarded)}{charts}{tables}</main>"
        "<footer>Written by scripts/fleet_report.py from the marts of transform/ "
        "(fleet_overview, access_review, license_waste, backup_health_daily, failing_users, "
        "tenant_sync_health). The page loads nothing from the network.</footer>"
        f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )


# ----------------------------------------------------------------------------- the command


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write the fleet report (one self-contained HTML file) from the dbt marts.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--duckdb",
        type=Path,
        metavar="PATH",
        help=f"the DuckDB file (default: $TARGET_DUCKDB_PATH, else {DEFAULT_DUCKDB})",
    )
    source.add_argument("--postgres", metavar="URL", help="a PostgreSQL connection URL")
    parser.add_argument(
        "--schema", help="the marts' schema (default: main for DuckDB, spanning for PostgreSQL)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), help="default %(default)s"
    )
    parser.add_argument(
        "--top", type=positive, default=DEFAULT_TOP, help="tenants per chart (%(default)s)"
    )
    parser.add_argument(
        "--max-rows", type=positive, default=DEFAULT_MAX_ROWS, help="rows per table (%(default)s)"
    )
    parser.add_argument(
        "--dbt-results",
        type=Path,
        metavar="PATH",
        help="dbt's run_results.json of the last build (default: transform/target/duckdb or "
        "transform/target/postgres, as meltano.yml's dbt utilities write it; "
        "$DBT_DUCKDB_TARGET_PATH or $DBT_POSTGRES_TARGET_PATH when set)",
    )
    parser.add_argument("--title", default="Spanning fleet report")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.postgres:
            marts = read_postgres(args.postgres, args.schema or "spanning", args.dbt_results)
        else:
            path = args.duckdb or Path(os.environ.get("TARGET_DUCKDB_PATH") or DEFAULT_DUCKDB)
            marts = read_duckdb(path, args.schema or "main", args.dbt_results)
        page = render(marts, top=args.top, max_rows=args.max_rows, title=args.title)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        partial = args.output.with_name(args.output.name + ".tmp")
        partial.write_text(page, encoding="utf-8")
        partial.replace(args.output)
    except ReportError as exc:
        print(f"fleet_report: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fleet_report: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    # On stderr too, for a scheduled run that nobody opens the page of.
    for sentence in marts.freshness.warnings():
        print(f"fleet_report: {sentence}", file=sys.stderr)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
