"""Reading the dbt marts of transform/ from DuckDB or PostgreSQL.

The columns read are those the YAML files of transform/models/marts/ declare (marts.yml, alerts.yml
and any other file with a `models:` list; not the *_unit_tests.yml), the one list of mart
columns (docs/warehouse.md, "Answers: the dbt marts"): the reader selects exactly those, so a column
renamed in dbt fails here with the command that rebuilds the marts, never later in a chart.
The folder is found in the Meltano project: $MELTANO_PROJECT_ROOT, else the checkout this
package lives in, else the current directory; without one there, the copy the package was
built with (spanning_reports/marts_yml/); --marts-yml names another file or folder.

Each warehouse's driver is imported when that warehouse is read: the package installs with
one of them (its extras [duckdb] and [postgres]).

A report of one client reads with `tenant=`: every query of a mart holding tenant_id is
filtered by it in SQL, so no other tenant's row ever reaches the process.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spanning_reports.freshness import Freshness, FreshnessError, read_freshness
from spanning_reports.project import marts_dir

# The marts each report draws from.
FLEET_MARTS = (
    "fleet_overview",
    "access_review",
    "license_waste",
    "backup_health_daily",
    "failing_users",
    "tenant_sync_health",
    "attention_thresholds",
    "alerts",
    "role_changes",
)
# The report of one client: each read filtered by its tenant_id (attention_thresholds, the
# bands, holds no tenant's data).
CLIENT_MARTS = (
    "tenant_names",
    "fleet_overview",
    "user_protection",
    "unprotected_users",
    "failing_users",
    "backup_health_daily",
    "license_history",
    "license_high_water",
    "role_changes",
    "attention_thresholds",
)
FLEET_WIDE_MARTS = frozenset({"attention_thresholds", "marts_build"})
ROLE_MARTS = ("tenant_roles", "fleet_overview")

Row = dict[str, Any]
# A query's column names and rows, from either warehouse.
Run = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


class ReportError(Exception):
    """A problem the person running the report can fix; the message says how."""


def marts_yml_path(path: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The file or folder of the marts' YAML: the one given, else the project's folder (or
    the bundled copy)."""
    return path if path is not None else marts_dir(env)


def declaring_files(where: Path) -> list[Path]:
    """A file as given; a folder's *.yml but the dbt unit tests', by name."""
    if not where.is_dir():
        return [where]
    return sorted(p for p in where.glob("*.yml") if not p.name.endswith("_unit_tests.yml"))


def mart_columns(path: Path | None = None) -> dict[str, list[str]]:
    """Each model declared (in a file, or in every YAML file of a folder) -> its columns, in
    the file's order."""
    where = marts_yml_path(path)
    declared: dict[str, list[str]] = {}
    for file in declaring_files(where):
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ReportError(
                f"{file}: cannot read the marts' columns ({exc}); pass --marts-yml"
            ) from None
        models = document.get("models") if isinstance(document, dict) else None
        if not isinstance(models, list):
            if file == where:
                raise ReportError(f"{where}: no `models:` list; pass --marts-yml")
            continue  # a folder's other YAML (sources, unit tests under another name)
        declared.update(
            {
                str(model["name"]): [str(column["name"]) for column in model.get("columns") or []]
                for model in models
                if isinstance(model, dict) and "name" in model
            }
        )
    if not declared:
        raise ReportError(f"{where}: no YAML file with a `models:` list; pass --marts-yml")
    return declared


@dataclass
class Marts:
    """Rows of the marts read (column name -> value), where from, and how fresh."""

    source: str  # where they came from, for the page (no password)
    schema: str
    rows: dict[str, list[Row]]
    freshness: Freshness | None = None

    def __getitem__(self, mart: str) -> list[Row]:
        return self.rows[mart]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A text literal, the same in DuckDB and PostgreSQL (standard_conforming_strings)."""
    return "'" + value.replace("'", "''") + "'"


def mart_query(schema: str, mart: str, columns: Sequence[str], tenant: str | None = None) -> str:
    """Every declared column; with `tenant`, that tenant's rows alone."""
    listed = ", ".join(quote_identifier(column) for column in columns)
    query = f"SELECT {listed} FROM {quote_identifier(schema)}.{quote_identifier(mart)}"  # noqa: S608 - quoted identifiers of marts.yml
    if tenant is not None:
        query += f" WHERE {quote_identifier('tenant_id')} = {sql_literal(tenant)}"
    return query


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


def missing_columns(
    present: Mapping[str, set[str]], wanted: Mapping[str, Sequence[str]]
) -> list[str]:
    """What marts.yml declares and the schema lacks: `mart` or `mart.column`."""
    missing = []
    for mart, columns in wanted.items():
        if mart not in present:
            missing.append(mart)
            continue
        missing.extend(f"{mart}.{c}" for c in columns if c.lower() not in present[mart])
    return missing


def read_marts(
    run: Run,
    where: str,
    schema: str,
    warehouse: str,
    *,
    marts: Sequence[str],
    declared: Mapping[str, list[str]],
    results: Path | None = None,
    freshness: bool = True,
    tenant: str | None = None,
) -> Marts:
    """The marts named, each with the columns marts.yml declares; `run` answers a query,
    `warehouse` is duckdb or postgres (the commands named in messages). With `tenant`, each
    mart is read filtered by that tenant_id, and one without the column is refused unless it
    holds no tenant's data (FLEET_WIDE_MARTS)."""
    if tenant is not None:
        unfiltered = [
            mart
            for mart in marts
            if mart not in FLEET_WIDE_MARTS and "tenant_id" not in declared.get(mart, ())
        ]
        if unfiltered:
            raise ReportError(f"{', '.join(unfiltered)}: no tenant_id to read one tenant's rows by")
    undeclared = [mart for mart in marts if mart not in declared]
    if undeclared:
        raise ReportError(f"marts.yml declares no {', '.join(undeclared)}: pass --marts-yml")
    _, pairs = run(
        "SELECT table_name, column_name FROM information_schema.columns "  # noqa: S608 - a quoted literal
        "WHERE table_catalog = current_database() "
        f"AND table_schema = '{schema.replace(chr(39), chr(39) * 2)}'"
    )
    present = table_columns((name, column) for name, column in pairs)
    wanted = {mart: declared[mart] for mart in marts}
    missing = missing_columns(present, wanted)
    if missing:
        raise ReportError(
            f"{where}: schema {schema} has no {', '.join(missing)}: {build_hint(warehouse)}"
        )
    rows: dict[str, list[Row]] = {}
    for mart, columns in wanted.items():
        by = tenant if tenant is not None and "tenant_id" in columns else None
        names, values = run(mart_query(schema, mart, columns, by))
        rows[mart] = [dict(zip(names, row, strict=True)) for row in values]
    found = None
    if freshness:
        try:
            found = read_freshness(lambda query: run(query)[1], present, schema, warehouse, results)
        except FreshnessError as exc:
            raise ReportError(str(exc)) from None
    return Marts(where, schema, rows, found)


def missing_driver(warehouse: str) -> str:
    return f"{warehouse}: its driver is not installed: pip install 'spanning-reports[{warehouse}]'"


@contextmanager
def duckdb_run(path: Path) -> Iterator[Run]:
    """Queries on the DuckDB file, opened read-only."""
    try:
        import duckdb  # noqa: PLC0415 - the [duckdb] extra's driver, when DuckDB is read
    except ModuleNotFoundError:
        raise ReportError(missing_driver("duckdb")) from None
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
        yield run
    except duckdb.Error as exc:
        raise ReportError(f"{path}: reading the marts failed: {exc}") from None
    finally:
        connection.close()


def describe_postgres(url: str) -> str:
    """host:port/dbname of a connection string, without user or password."""
    try:
        import psycopg  # noqa: PLC0415 - the [postgres] extra's driver, when PostgreSQL is read
    except ModuleNotFoundError:
        raise ReportError(missing_driver("postgres")) from None
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "PostgreSQL"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"PostgreSQL {host}:{port}/{parts.get('dbname') or ''}"


@contextmanager
def postgres_run(url: str) -> Iterator[Run]:
    """Queries in one read-only transaction."""
    where = describe_postgres(url)  # a ReportError first when the driver is missing
    import psycopg  # noqa: PLC0415 - the [postgres] extra's driver

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
        yield run
    except psycopg.Error as exc:
        raise ReportError(f"{where}: reading the marts failed: {exc}") from None
    finally:
        connection.close()


def open_warehouse(source: Path | str) -> tuple[AbstractContextManager[Run], str, str]:
    """A DuckDB file (a path) or a PostgreSQL database (a URL): its queries, where it is (no
    password) and its adapter."""
    if isinstance(source, Path):
        # The same file named the same, however it was given.
        return duckdb_run(source), str(source.resolve()), "duckdb"
    return postgres_run(source), describe_postgres(source), "postgres"


def read_warehouse(
    source: Path | str,
    schema: str,
    marts: Sequence[str],
    declared: Mapping[str, list[str]],
    results: Path | None = None,
    *,
    freshness: bool = True,
    tenant: str | None = None,
) -> Marts:
    """The marts of a DuckDB file (a path) or a PostgreSQL database (a URL)."""
    opened, where, adapter = open_warehouse(source)
    with opened as run:
        return read_marts(
            run,
            where,
            schema,
            adapter,
            marts=marts,
            declared=declared,
            results=results,
            freshness=freshness,
            tenant=tenant,
        )
