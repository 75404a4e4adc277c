"""The report of one client: one HTML file (and, with --pdf, its PDF) per tenant and month.

    python -m spanning_reports client duckdb|postgres --tenant ID --month YYYY-MM
        [--output-dir DIR] [--msp-name NAME] [--pdf]
    python -m spanning_reports client duckdb|postgres --all --day YYYY-MM-DD [...]
    python -m spanning_reports client duckdb|postgres --monthly [...]

It writes <DIR>/<tenant_id>-<YYYY-MM>.html (and .pdf), printing each path. --all writes one
per current tenant (fleet_overview, not offboarded) for the month of --day. --monthly is
the nightly job's form: on day client_report_day of the month (FLEET_REPORT_CLIENT_REPORT_DAY,
else the 5th), --all for the month before; on any other day it writes nothing.
The warehouse is found as the fleet-report utility finds it (utility.py: its
FLEET_REPORT_* settings, else dbt's, else the loader's); --output-dir defaults to the
setting client_output_dir (FLEET_REPORT_CLIENT_OUTPUT_DIR), else output/clients, and
--msp-name to msp_name (FLEET_REPORT_MSP_NAME). Each tenant's marts are read filtered by its
tenant_id in SQL: a file holds that tenant's data alone (client_page.py). --pdf prints the
HTML with headless Chromium (scripts/chromium.sh finds it, or installs Debian's package).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from spanning_reports.client_page import Month, render_client
from spanning_reports.marts import (
    CLIENT_MARTS,
    ReportError,
    mart_columns,
    open_warehouse,
    read_marts,
)
from spanning_reports.project import project_root
from spanning_reports.utility import in_project, source_args
from spanning_reports.values import flag, text

DEFAULT_OUTPUT_DIR = "output/clients"
# The day of the month the nightly job writes every client's report of the month before.
DEFAULT_REPORT_DAY = 5
# The tap's tenant ids (README, "Configure a fleet"): safe as a file name.
TENANT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
PDF_TIMEOUT = 120


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spanning_reports client",
        description="Write the report of one client (HTML, and PDF with --pdf) from its rows "
        "of the dbt marts.",
    )
    parser.add_argument("warehouse", choices=("duckdb", "postgres"))
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", metavar="ID", help="the tenant's id")
    which.add_argument("--all", action="store_true", help="every current tenant (with --day)")
    which.add_argument(
        "--monthly",
        action="store_true",
        help="on day client_report_day of the month (else the 5th), --all for the month before",
    )
    parser.add_argument("--month", metavar="YYYY-MM", help="the month (with --tenant)")
    parser.add_argument("--day", metavar="YYYY-MM-DD", help="a day of the month (with --all)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(
            in_project(env, env.get("FLEET_REPORT_CLIENT_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR)
        ),
        help="default: the setting client_output_dir, else output/clients",
    )
    parser.add_argument(
        "--msp-name", default=env.get("FLEET_REPORT_MSP_NAME") or "", help="default: msp_name"
    )
    parser.add_argument("--pdf", action="store_true", help="also print each to PDF (Chromium)")
    parser.add_argument("--marts-yml", type=Path, metavar="PATH", help="the marts' YAML")
    args = parser.parse_args(argv)
    if args.tenant is not None and not args.month:
        parser.error("--tenant needs --month YYYY-MM")
    if args.all and not args.day:
        parser.error("--all needs --day YYYY-MM-DD")
    if args.monthly:
        args.report_day = report_day(env.get("FLEET_REPORT_CLIENT_REPORT_DAY"))
        if args.report_day is None:
            parser.error("client_report_day must be a day of the month, 1 to 28")
    return args


def report_day(setting: str | None) -> int | None:
    """The day of the month of --monthly: 1 to 28 (every month has it), else None."""
    if not setting:
        return DEFAULT_REPORT_DAY
    value = setting.strip()
    return int(value) if value.isdigit() and 1 <= int(value) <= 28 else None


def monthly_month(today: dt.date, day: int) -> Month | None:
    """The month --monthly reports on `today`: the month before, on day `day`; else None."""
    if today.day != day:
        return None
    return Month.of(today.replace(day=1) - dt.timedelta(days=1))


def chromium() -> str:
    """The browser's path, from scripts/chromium.sh (installs Debian's chromium if missing)."""
    script = project_root() / "scripts" / "chromium.sh"
    done = subprocess.run(  # noqa: S603 - the project's own script
        ["bash", str(script)],  # noqa: S607 - bash from PATH, as the Makefile runs it
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ReportError(f"no Chromium for --pdf: {done.stderr.strip()[-500:]}")
    return lines[-1]


def print_pdf(browser: str, html: Path, pdf: Path) -> None:
    """The page printed by headless Chromium, with a profile of its own."""
    with tempfile.TemporaryDirectory(prefix="client-pdf-") as profile:
        done = subprocess.run(  # noqa: S603 - the browser scripts/chromium.sh names
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=PDF_TIMEOUT,
            check=False,
            env={**os.environ, "HOME": profile},
        )
    if done.returncode != 0 or not pdf.is_file():
        raise ReportError(f"Chromium did not print {pdf}: {done.stderr.strip()[-500:]}")


def write(path: Path, page: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    today: dt.date | None = None,
) -> int:
    environ = os.environ if env is None else env
    args = parse_args(list(sys.argv[1:] if argv is None else argv), environ)
    try:
        return run(args, environ, today or dt.datetime.now(dt.timezone.utc).date())
    except ReportError as exc:
        print(f"client_report: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"client_report: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace, env: Mapping[str, str], today: dt.date) -> int:
    if args.monthly:
        due = monthly_month(today, args.report_day)
        if due is None:
            print(
                f"client_report: the client reports are written on day {args.report_day} of "
                "the month (client_report_day); nothing to write today",
                file=sys.stderr,
            )
            return 0
        month = due
    elif args.all:
        try:
            month = Month.of(dt.date.fromisoformat(args.day))
        except ValueError:
            raise ReportError(f"--day {args.day!r}: not YYYY-MM-DD") from None
    else:
        month = Month.parse(args.month)
    declared = mart_columns(args.marts_yml)
    _, source, _, schema = source_args(args.warehouse, env)
    where: Path | str = Path(source) if args.warehouse == "duckdb" else source
    opened, shown, adapter = open_warehouse(where)
    browser = chromium() if args.pdf else None
    with opened as query:
        if args.all or args.monthly:
            listed = read_marts(
                query,
                shown,
                schema,
                adapter,
                marts=["fleet_overview"],
                declared={"fleet_overview": ["tenant_id", "is_offboarded"]},
                freshness=False,
            )
            tenants = sorted(
                text(row["tenant_id"])
                for row in listed["fleet_overview"]
                if not flag(row["is_offboarded"])
            )
        else:
            tenants = [args.tenant]
        for tenant in tenants:
            if not TENANT_ID.fullmatch(tenant) or tenant in (".", ".."):
                raise ReportError(f"tenant id {tenant!r} cannot name a file")
            marts = read_marts(
                query,
                shown,
                schema,
                adapter,
                marts=CLIENT_MARTS,
                declared=declared,
                freshness=False,
                tenant=tenant,
            )
            html = args.output_dir / f"{tenant}-{month.label}.html"
            write(html, render_client(marts, tenant, month, msp_name=args.msp_name))
            print(html)
            if browser is not None:
                pdf = html.with_suffix(".pdf")
                print_pdf(browser, html, pdf)
                print(pdf)
    return 0
