"""The report of one client printed to PDF by headless Chromium (`--pdf`; scripts/chromium.sh
installs Debian's package when missing): the PDF's text holds the tenant's name, the MSP's,
the marts' numbers, and no other fixture tenant's id or name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.report_fixtures import NAMES, TROUBLED, YESTERDAY, fleet
from tests.report_warehouse import ROOT, write_duckdb

pytestmark = pytest.mark.e2e


def test_the_client_pdf_holds_its_tenant_alone(tmp_path: Path) -> None:
    rows = fleet(28)
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, rows)
    month = f"{YESTERDAY:%Y-%m}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spanning_reports",
            "client",
            "duckdb",
            "--tenant",
            TROUBLED,
            "--month",
            month,
            "--output-dir",
            str(tmp_path / "out"),
            "--msp-name",
            "Acme Managed IT",
            "--pdf",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "FLEET_REPORT_DUCKDB_PATH": str(db)},
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pdf = tmp_path / "out" / f"{TROUBLED}-{month}.pdf"
    assert done.stdout.split() == [str(pdf.with_suffix(".html")), str(pdf)]
    said = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(pdf).pages)
    assert NAMES[TROUBLED] in said
    assert "Acme Managed IT" in said
    (overview,) = [r for r in rows["fleet_overview"] if r["tenant_id"] == TROUBLED]
    assert f"{overview['coverage_pct']:.1f}%" in said
    first = YESTERDAY.replace(day=1)
    (high,) = [
        r for r in rows["license_high_water"] if r["tenant_id"] == TROUBLED and r["month"] == first
    ]
    assert f"High-water mark: {high['peak_assigned_standard']:,}" in said
    for upn in (r["user_principal_name"] for r in rows["unprotected_users"]):
        if upn.endswith(f"@{TROUBLED}.example"):
            assert upn in said.replace(" ", "") or upn in said
    for row in rows["tenant_names"]:
        if row["tenant_id"] != TROUBLED:
            assert row["tenant_id"] not in said
            assert not row["tenant_name"] or row["tenant_name"] not in said
