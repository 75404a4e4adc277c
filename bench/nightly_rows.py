"""The warehouse side of `python -m bench --nightly` (bench.nightly), run as a child so that
the bench never imports duckdb or psycopg: a child's peak RSS (wait4) reads no lower than the
bench's own at the moment it is started (bench.measure), and both modules are large.

`python -m bench.nightly_rows duckdb PATH`: the rows of each of the tap's tables in the DuckDB
file (schema main), as one JSON object; `postgres URL SCHEMA`: the same in PostgreSQL;
`create URL NAME` and `drop URL NAME`: a database of the bench run's own, on the server of
that admin URL (dropped WITH (FORCE): a loader or dbt still connected cannot keep it).
"""

from __future__ import annotations

import json
import sys
from typing import Any

# The tap's tables, in the order the page shows them: the current rows, then the histories
# (README, "Streams").
TABLES: tuple[str, ...] = (
    "users",
    "roles",
    "role_memberships",
    "tenants",
    "tenant_syncs",
    "backup_summaries",
    "user_backups",
)
HISTORY_TABLES: tuple[str, ...] = ("tenant_syncs", "backup_summaries", "user_backups")


def duckdb_rows(path: str) -> dict[str, int]:
    import duckdb  # noqa: PLC0415

    with duckdb.connect(path, read_only=True) as connection:
        present = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        return {
            table: int(connection.execute(f'SELECT count(*) FROM main."{table}"').fetchone()[0])  # type: ignore[index]
            for table in TABLES
            if table in present
        }


def postgres_rows(url: str, schema: str) -> dict[str, int]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as connection:
        present = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        }
        found: dict[str, int] = {}
        for table in TABLES:
            if table in present:
                row: Any = connection.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}"'
                ).fetchone()
                found[table] = int(row[0])
        return found


def admin(url: str, statement: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        connection.execute(statement)


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "duckdb":
        print(json.dumps(duckdb_rows(rest[0])))
    elif command == "postgres":
        print(json.dumps(postgres_rows(rest[0], rest[1])))
    elif command == "create":
        admin(rest[0], f'CREATE DATABASE "{rest[1]}"')
    elif command == "drop":
        admin(rest[0], f'DROP DATABASE IF EXISTS "{rest[1]}" WITH (FORCE)')
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
