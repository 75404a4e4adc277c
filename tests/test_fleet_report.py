"""scripts/fleet_report.py, end to end: marts in a warehouse -> the command -> one HTML file ->
headless Chromium.

The six marts of transform/models/contract.md are written here with known rows (a fleet of
28 tenants, three of them hand-made: one in trouble everywhere, one healthy, one that never
synced; the others drawn from a seeded generator), into a DuckDB file and, for the PostgreSQL
path, into a fresh database. The report is written by the command as a user runs it, then
opened in Chromium (bash scripts/chromium.sh installs Debian's package when it is missing):
it must render without a console message or page error, the screenshot must be a real image,
and the numbers the page shows for three tenants must be the marts' numbers. A fleet of 1,000
tenants must give a page that stays small, charts of the worst 20 and tables of 500 rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib.util
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
import yaml
from typing_extensions import override

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "scripts" / "fleet_report.py"
CHROMIUM_SH = ROOT / "scripts" / "chromium.sh"
MARTS_YML = ROOT / "transform" / "models" / "marts" / "marts.yml"
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

# The marts' columns and their types (the same DDL on DuckDB and PostgreSQL, but DOUBLE).
MART_COLUMNS: dict[str, dict[str, str]] = {
    "fleet_overview": {
        "tenant_id": "VARCHAR",
        "license_status": "VARCHAR",
        "users": "BIGINT",
        "licensed_users": "BIGINT",
        "licenses": "BIGINT",
        "archived_licenses": "BIGINT",
        "assigned_standard": "BIGINT",
        "assigned_archive": "BIGINT",
        "seat_use_pct": "DOUBLE",
        "archive_seat_use_pct": "DOUBLE",
        "global_admins": "BIGINT",
        "spanning_admins": "BIGINT",
        "disabled_admins": "BIGINT",
        "wasted_seats": "BIGINT",
        "unprotected_active_users": "BIGINT",
        "last_complete_sync_at": "TIMESTAMP",
        "failed_syncs_in_a_row": "BIGINT",
        "backup_success_yesterday_pct": "DOUBLE",
        "backup_success_7d_pct": "DOUBLE",
    },
    "access_review": {
        "tenant_id": "VARCHAR",
        "ms_id": "VARCHAR",
        "user_principal_name": "VARCHAR",
        "display_name": "VARCHAR",
        "role_id": "VARCHAR",
        "is_disabled": "BOOLEAN",
        "is_deleted_from_microsoft": "BOOLEAN",
        "has_no_microsoft_license": "BOOLEAN",
        "is_archived": "BOOLEAN",
        "needs_review": "BOOLEAN",
    },
    "license_waste": {
        "tenant_id": "VARCHAR",
        "ms_id": "VARCHAR",
        "user_principal_name": "VARCHAR",
        "reason": "VARCHAR",
    },
    "backup_health_daily": {
        "tenant_id": "VARCHAR",
        "date": "DATE",
        "type": "VARCHAR",
        "total": "BIGINT",
        "successful": "BIGINT",
        "partial": "BIGINT",
        "failed": "BIGINT",
        "success_rate": "DOUBLE",
    },
    "failing_users": {
        "tenant_id": "VARCHAR",
        "ms_id": "VARCHAR",
        "user_principal_name": "VARCHAR",
        "type": "VARCHAR",
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
    },
}
TYPES = ("CALENDAR", "CONTACT", "DRIVE", "MAIL", "SPSITE")
USER_TYPES = ("CALENDAR", "CONTACT", "DRIVE", "MAIL")
Rows = dict[str, list[dict[str, Any]]]


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


def mart_rows(shapes: list[Shape]) -> Rows:
    rows: Rows = {mart: [] for mart in MART_COLUMNS}
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
                "is_current": not shape.failed_runs,
            }
        )
        # backup_health_daily, and the success the overview derives from it.
        ok_yesterday = total_yesterday = ok_week = total_week = 0
        for back in range(DAYS_HELD, 0, -1):
            when = TODAY - dt.timedelta(days=back)
            for kind in TYPES if shape.users else ():
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
            for kind in USER_TYPES[: 1 + index % 2]:
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
            }
        )
    return rows


def fleet(tenants: int) -> Rows:
    return mart_rows(hand_made() + generated(tenants - len(hand_made()), seed=tenants))


def ddl(mart: str, schema: str, double: str = "DOUBLE") -> str:
    columns = ", ".join(
        f'"{name}" {double if kind == "DOUBLE" else kind}'
        for name, kind in MART_COLUMNS[mart].items()
    )
    return f'CREATE TABLE "{schema}"."{mart}" ({columns})'


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def write_duckdb(path: Path, rows: Rows, schema: str = "main") -> None:
    """The marts as dbt-duckdb would leave them: tables in `schema` of the file."""
    connection = duckdb.connect(str(path))
    try:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for mart, columns in MART_COLUMNS.items():
            connection.execute(ddl(mart, schema))
            if not rows[mart]:
                continue
            source = path.with_name(f"{path.stem}-{mart}.jsonl")
            source.write_text(
                "".join(
                    json.dumps({k: jsonable(v) for k, v in row.items()}) + "\n"
                    for row in rows[mart]
                ),
                encoding="utf-8",
            )
            types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
            connection.execute(
                f'INSERT INTO "{schema}"."{mart}" SELECT * FROM read_json(?, '
                f"format = 'newline_delimited', columns = {{{types}}})",
                [str(source)],
            )
            source.unlink()
    finally:
        connection.close()


def read_duckdb(path: Path, mart: str) -> dict[str, dict[str, Any]]:
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


# ----------------------------------------------------------------------------- the command


def run_report(*args: str, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPORT), *args, "-o", str(output)],
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
    done = run_report("--duckdb", str(db), output=report)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(report)
    page = report.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(CLICKS.encode()).digest()).decode()
    assert "script-src " in page
    clicks = work / "fleet_report_clicks.html"
    clicks.write_text(
        page.replace("script-src ", f"script-src &#x27;sha256-{digest}&#x27; ", 1).replace(
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


def test_the_screenshot_is_a_real_image(rendered: Rendered) -> None:
    data = rendered.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    # A blank page of that size compresses to a few kilobytes; charts and text do not.
    assert len(data) > 60_000, len(data)


def test_three_tenants_show_the_marts_numbers(rendered: Rendered) -> None:
    overview = read_duckdb(rendered.db, "fleet_overview")
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


def test_the_charts_show_the_marts_numbers(rendered: Rendered) -> None:
    overview = read_duckdb(rendered.db, "fleet_overview")
    syncs = read_duckdb(rendered.db, "tenant_sync_health")
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
    assert sorted(s.attrs["data-type"] for s in series) == sorted(TYPES)
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


def test_the_lists_are_in_order_of_severity(rendered: Rendered) -> None:
    dom = parse(rendered.page)
    tenants = table_rows(dom, "fleet_overview")
    body = rendered.dom.find(lambda n: n.tag == "body")
    opened = body.attrs["data-opened-with"].split("|")
    assert opened == [row.attrs["data-tenant"] for row in tenants], "the page reorders on load"
    severities = [int(row.attrs["data-severity"]) for row in tenants]
    assert severities == sorted(severities, reverse=True)
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
    assert "default-src &#x27;none&#x27;" in csp.group(1)
    # Warehouse text is text: the hostile name and UPN are escaped, never markup.
    assert "&lt;img src=x onerror=&quot;document.title=1&quot;&gt;" in page
    assert "&quot;&gt;&lt;script&gt;document.title=2&lt;/script&gt;@evil.example" in page
    assert page.count("<script>") == 2


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
            for mart in MART_COLUMNS:
                tables[mart] = connection.execute(f'SELECT * FROM main."{mart}"').fetchall()
        finally:
            connection.close()
        with psycopg.connect(url, autocommit=True) as target:
            target.execute('CREATE SCHEMA "spanning"')
            for mart, columns in MART_COLUMNS.items():
                target.execute(ddl(mart, "spanning", "double precision"))
                marks = ", ".join(["%s"] * len(columns))
                with target.cursor() as inserting:
                    inserting.executemany(
                        f'INSERT INTO "spanning"."{mart}" VALUES ({marks})', tables[mart]
                    )
        output = tmp_path / "fleet_report_pg.html"
        done = run_report("--postgres", url, output=output)
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


def test_missing_marts_are_named_with_the_command_that_builds_them(tmp_path: Path) -> None:
    db = tmp_path / "tap_only.duckdb"
    connection = duckdb.connect(str(db))
    connection.execute("CREATE TABLE users (tenant_id VARCHAR)")
    connection.close()
    done = run_report("--duckdb", str(db), output=tmp_path / "r.html")
    assert done.returncode == 1
    assert "fleet_overview" in done.stderr
    assert "dbt-duckdb:build" in done.stderr
    assert not (tmp_path / "r.html").exists()
    missing = run_report("--duckdb", str(tmp_path / "none.duckdb"), output=tmp_path / "r.html")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_the_report_reads_only_columns_the_dbt_marts_declare() -> None:
    """The columns the report selects are the marts' columns of transform/ (marts.yml): a
    renamed column fails here, not on a user's warehouse."""
    spec = importlib.util.spec_from_file_location("fleet_report", REPORT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    declared = yaml.safe_load(MARTS_YML.read_text(encoding="utf-8"))
    models = {
        model["name"]: {column["name"] for column in model.get("columns", [])}
        for model in declared["models"]
    }
    for mart, columns in module.MARTS.items():
        assert mart in models, f"{MARTS_YML} has no model {mart}"
        assert set(columns) <= models[mart], (mart, set(columns) - models[mart])
        assert set(columns) == set(MART_COLUMNS[mart]), f"this test's fixture of {mart}"
