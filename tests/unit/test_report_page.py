"""The fleet report's page, rendered in process from the fixture warehouse and read as a
DOM: offboarded tenants, names that hide characters, tenants ordered by attention_score and
worded by the marts' flags (the page decides nothing), the bands of attention_thresholds, a
tenant named `<script>`, and a CSP that allows exactly the page's own scripts.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

from spanning_reports import page

from tests.report_fixtures import (
    HEALTHY,
    NEVER,
    TROUBLED,
    YESTERDAY,
    fleet,
    generated,
    hand_made,
    mart_rows,
)
from tests.report_reading import Written, bars, cells_by_header, headers, report, table_rows
from tests.report_warehouse import FLAGS, THRESHOLDS

__all__ = ["report"]  # the fixture used here


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
        "coverage": cards["coverage"],
        "alerts": f"{sum(1 for r in kept('alerts') if r['status'] == 'open'):,}",
        "offboarded": "2",
    }
    overview = [row for row in rows["fleet_overview"] if row["tenant_id"] not in gone]
    # One definition of wasted licenses: fleet_overview.wasted_seats, the card as the table.
    assert cards["waste"] == f"{sum(row['wasted_seats'] for row in overview):,}"
    protected = sum(row["protected_users"] for row in overview)
    protectable = sum(row["protectable_users"] for row in overview)
    assert cards["coverage"] == f"{100 * protected / protectable:.1f}%"
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
    named = {row["tenant_id"]: row["tenant_name"] for row in rows["tenant_names"]}
    for table_name, columns in (
        ("fleet_overview", ["Tenant"]),
        ("access_review", ["Tenant", "User", "Name", "Role"]),
        ("license_waste", ["Tenant", "User", "Reason"]),
        ("failing_users", ["Tenant", "User", "Workload"]),
        ("alerts", ["Tenant", "What"]),
        ("role_changes", ["Tenant", "User", "Role"]),
    ):
        titles = headers(dom, table_name)
        for table_row in table_rows(dom, table_name):
            cells = [c for c in table_row.children if c.tag == "td"]
            for column in columns:
                kids = cells[titles.index(column)].children
                if column == "Tenant" and named[table_row.attrs["data-tenant"]]:
                    # The name, the id beside it: each isolated.
                    assert [kid.tag for kid in kids] == ["bdi", "small"], (table_name, column)
                    assert [kid.tag for kid in kids[1].children] == ["bdi"]
                    continue
                assert [kid.tag for kid in kids] == ["bdi"], (table_name, column)
    # An attribute keeps the value, as a character reference; a chart label shows the token.
    assert 'data-type="MA&#x202B;IL"' in page
    failing = [r for r in table_rows(dom, "failing_users") if r.attrs["data-type"] == "MA\u202bIL"]
    assert cells_by_header(dom, "failing_users", failing[0])["Workload"] == "MA\u27e8U+202B\u27e9IL"
    runs = {bar.attrs["data-tenant"]: bar for bar in bars(dom, "failed-runs")}
    assert "HTTP 401 \u27e8U+202E\u27e9rof\u27e8U+061C\u27e9 deifitnedi" in runs[TROUBLED].text


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
    assert "8 licenses to reclaim" in shown[TROUBLED]
    assert "40 unprotected" in shown[TROUBLED]
    assert "5 unlicensed" in shown[TROUBLED]
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
    assert cells_by_header(dom, "fleet_overview", listed)["Tenant"] == f"Contoso Pharma {hostile}"
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
