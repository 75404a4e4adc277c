"""Create the current-rows views (sql/current_rows.sql) in a warehouse: README, "Many tenants".

    python scripts/current_views.py --duckdb output/spanning.duckdb
    python scripts/current_views.py --postgres postgresql://postgres@127.0.0.1:54329/spanning

The views (`current_users`, `current_role_memberships`, `current_tenants`, and the two they
read: `tenant_current_versions`, each tenant's last complete run unless offboarded, and
`offboarded_tenants`, the tenants no longer configured: another tenant of a tenant's newest
run has run since without it) go beside the tap's tables, in `--schema` (DuckDB `main`,
PostgreSQL `spanning`). Run it once; the views follow every later load, and running it again
replaces them with this version's. The dbt project (transform/) applies the same rule in its
staging models.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SQL = Path(__file__).resolve().parent.parent / "sql" / "current_rows.sql"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/current_views.py", description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--duckdb", metavar="PATH", help="a DuckDB file (default: the loader's)")
    where.add_argument("--postgres", metavar="URL", help="a PostgreSQL URL")
    parser.add_argument("--schema", help="the tap's schema (main, or spanning on PostgreSQL)")
    args = parser.parse_args(argv)
    sql = SQL.read_text(encoding="utf-8")
    if args.postgres:
        import psycopg  # noqa: PLC0415  # only for PostgreSQL

        schema = args.schema or "spanning"
        with psycopg.connect(args.postgres, autocommit=True) as pg:
            search_path = psycopg.sql.SQL("SET search_path TO {}")
            pg.execute(search_path.format(psycopg.sql.Identifier(schema)))
            pg.execute(sql.encode())
        where_to = f"PostgreSQL schema {schema}"
    else:
        import duckdb  # noqa: PLC0415  # only for DuckDB

        path = args.duckdb or os.environ.get("TARGET_DUCKDB_PATH") or "output/spanning.duckdb"
        schema = args.schema or "main"
        db = duckdb.connect(path)
        try:
            db.execute(f"SET schema = '{schema}'")
            db.execute(sql)
        finally:
            db.close()
        where_to = f"{path}, schema {schema}"
    print(f"current_users, current_role_memberships, current_tenants: created in {where_to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
