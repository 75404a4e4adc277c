"""The fleet report: one self-contained HTML page from the dbt marts of transform/.

    python -m spanning_reports fleet [--duckdb PATH] [--schema NAME] [-o output/fleet_report.html]
    python -m spanning_reports fleet --postgres URL [--schema NAME] [-o PATH]

Run it after the marts are built (`meltano run tap-spanning target-duckdb dbt-duckdb:build`, or
target-postgres and dbt-postgres:build). It reads fleet_overview, attention_thresholds,
access_review, license_waste, backup_health_daily, failing_users, tenant_sync_health, alerts
and role_changes, each with the columns the marts' YAML files declare, from the schema dbt
built them in: `main` of the DuckDB file ($TARGET_DUCKDB_PATH, else output/spanning.duckdb,
unless --duckdb names one; opened read-only), or `spanning` of the PostgreSQL database (in a
read-only transaction). --schema names another.

The top of the page says how fresh the marts are, in red when they are not current: built
before the newest sync in tenant_syncs, or by a dbt build that failed (dbt's run_results.json
of that warehouse, or --dbt-results; freshness.py). Every number and flag on the page is a
mart's: tenants are listed by fleet_overview.attention_score, each flag worded from its column,
each band drawn from attention_thresholds. Offboarded tenants (is_offboarded) are listed as
such and counted in no figure. Names show every hidden character (names.py).

Each chart shows the worst --top tenants (20) and says how many more there are, each table its
first --max-rows rows (500). Every number is also in the DOM as a data-* attribute
(data-tenant, data-seat-use-pct, data-global-admins, data-attention-score, ...) for tests and
scrapers. The path written is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from spanning_reports.marts import (
    FLEET_MARTS,
    Marts,
    ReportError,
    mart_columns,
    read_warehouse,
)
from spanning_reports.page import DEFAULT_MAX_ROWS, DEFAULT_TOP, TITLE, render

DEFAULT_DUCKDB = "output/spanning.duckdb"
DEFAULT_OUTPUT = "output/fleet_report.html"


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """--duckdb or --postgres, --schema and --marts-yml: shared with the role report."""
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
        "--marts-yml",
        type=Path,
        metavar="PATH",
        help="the marts' columns (default: transform/models/marts/marts.yml of the project: "
        "$MELTANO_PROJECT_ROOT, else this checkout)",
    )


def read_source(args: argparse.Namespace, marts: Sequence[str], *, freshness: bool = True) -> Marts:
    declared = mart_columns(args.marts_yml)
    results = getattr(args, "dbt_results", None)
    source: Path | str = (
        args.postgres or args.duckdb or Path(os.environ.get("TARGET_DUCKDB_PATH") or DEFAULT_DUCKDB)
    )
    schema = args.schema or ("spanning" if args.postgres else "main")
    return read_warehouse(source, schema, marts, declared, results, freshness=freshness)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spanning_reports fleet",
        description="Write the fleet report (one self-contained HTML file) from the dbt marts.",
    )
    add_source_arguments(parser)
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
    parser.add_argument("--title", default=TITLE)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        marts = read_source(args, FLEET_MARTS)
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
    for sentence in marts.freshness.warnings() if marts.freshness else ():
        print(f"fleet_report: {sentence}", file=sys.stderr)
    print(args.output)
    return 0
