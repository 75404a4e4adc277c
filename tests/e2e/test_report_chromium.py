"""The fleet report in headless Chromium: the page the command writes of the fixture fleet
(tests/report_fixtures.py), opened as a reader opens it.

bash scripts/chromium.sh installs Debian's package when it is missing. No console message,
no page error, a real screenshot, the marts' numbers in the DOM, the lists in order of
attention, headers that sort, and a page that requests nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.report_fixtures import DAYS_HELD, HEALTHY, KINDS, NEVER, TROUBLED, YESTERDAY
from tests.report_reading import (
    Node,
    Reported,
    bars,
    cells_by_header,
    parse,
    reported,
    table_rows,
)
from tests.report_warehouse import ROOT, read_back

__all__ = ["reported"]  # the fixture used here

pytestmark = pytest.mark.e2e

CHROMIUM_SH = ROOT / "scripts" / "chromium.sh"
BROWSER_TIMEOUT = 90

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
def rendered(chromium: str, reported: Reported) -> Rendered:
    work = reported.report.parent
    page = reported.page
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
    drawn = browse(chromium, reported.report, work, f"--screenshot={screenshot}")
    shown = browse(chromium, clicks, work, "--dump-dom")
    return Rendered(reported.db, reported.report, page, screenshot, finish(drawn), finish(shown))


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
            ("data-unprotected-users", "unprotected_users"),
            ("data-protectable-users", "protectable_users"),
            ("data-protected-users", "protected_users"),
            ("data-coverage-pct", "coverage_pct"),
            ("data-unlicensed-users", "unlicensed_users"),
            ("data-open-alerts", "open_alerts"),
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

        assert (
            shown["Tenant"] == f"{mart['tenant_name']} {tenant}" if mart["tenant_name"] else tenant
        )
        assert shown["Users"] == whole(mart["users"])
        assert (
            shown["Seats used"] == f"{whole(mart['assigned_standard'])} / {whole(mart['licenses'])}"
        )
        assert shown["Seat use"] == pct(mart["seat_use_pct"])
        assert shown["Global Admins"] == whole(mart["global_admins"])
        assert shown["Disabled admins"] == whole(mart["disabled_admins"])
        assert shown["Licenses to reclaim"] == whole(mart["wasted_seats"])
        assert shown["Unprotected users"] == whole(mart["unprotected_users"])
        assert shown["Unlicensed users"] == whole(mart["unlicensed_users"])
        assert shown["Open alerts"] == whole(mart["open_alerts"])
        assert shown["Coverage"] == (
            f"{whole(mart['protected_users'])} / {whole(mart['protectable_users'])} "
            f"({pct(mart['coverage_pct'])})"
        )
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
    names = read_back(rendered.db, "tenant_names")

    def shown(tenant: str) -> str:  # the cell's text: the name, then the id
        name = names[tenant]["tenant_name"]
        return f"{name} {tenant}".lower() if name else tenant.lower()

    assert tenant_order == sorted(tenant_order, key=shown)
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
    assert "default-src &#39;none&#39;" in csp.group(1)
    # Warehouse text is text: the hostile name and UPN are escaped, never markup.
    assert "&lt;img src=x onerror=&quot;document.title=1&quot;&gt;" in page
    assert "&quot;&gt;&lt;script&gt;document.title=2&lt;/script&gt;@evil.example" in page
    assert page.count("<script>") == 2
