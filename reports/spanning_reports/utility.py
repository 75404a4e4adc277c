"""The reports as a Meltano utility: `meltano invoke fleet-report:duckdb` (or `:postgres`),
the last step of the nightly jobs (meltano.yml, `nightly-duckdb`, `nightly-postgres`), and
the role report, `meltano invoke fleet-report:roles-duckdb` (or `:roles-postgres`).

    python -m spanning_reports utility duckdb|postgres|roles-duckdb|roles-postgres [options]

Meltano hands a utility its own settings only (FLEET_REPORT_*), not the loader's or dbt's, and
starts it in the caller's directory. So the warehouse is found here as transform/profiles/ find
it, and the report follows dbt: each setting is the first of FLEET_REPORT_<SETTING>, the dbt
utility's DBT_<ADAPTER>_<SETTING>, the loader's TARGET_<ADAPTER>_<SETTING> and meltano.yml's
default; a relative path is taken from the project (MELTANO_PROJECT_ROOT), as the loader and
dbt take it. Then the report runs in this process (the password stays off every command
line); its exit code is this one's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from spanning_reports import fleet, roles

# meltano.yml's defaults for target-duckdb and target-postgres (the private cluster of
# scripts/postgres.sh); the password is its placeholder, ignored by a trust-auth cluster.
DUCKDB_DEFAULTS = {"PATH": "output/spanning.duckdb", "SCHEMA": "main"}
POSTGRES_DEFAULTS = {
    "HOST": "127.0.0.1",
    "PORT": "54329",
    "USER": "postgres",
    "PASSWORD": "trust",
    "DATABASE": "spanning",
    "SCHEMA": "spanning",
}
DEFAULT_OUTPUT = "output/fleet_report.html"
# The loader's own variable where its setting's name differs from the report's.
LOADER_NAMES = {"SCHEMA": "DEFAULT_TARGET_SCHEMA"}
COMMANDS = ("duckdb", "postgres", "roles-duckdb", "roles-postgres")


def setting(env: Mapping[str, str], adapter: str, name: str, default: str) -> str:
    """FLEET_REPORT_<NAME>, else DBT_<ADAPTER>_<NAME>, else TARGET_<ADAPTER>_<NAME>, else it."""
    own = "DUCKDB_PATH" if (adapter, name) == ("DUCKDB", "PATH") else name
    candidates = (
        f"FLEET_REPORT_{own}",
        f"DBT_{adapter}_{name}",
        f"TARGET_{adapter}_{LOADER_NAMES.get(name, name)}",
    )
    return next((env[c] for c in candidates if env.get(c)), default)


def in_project(env: Mapping[str, str], path: str) -> str:
    """A relative path from the Meltano project, as target-duckdb and the dbt profile take it."""
    if Path(path).is_absolute() or ":" in path:  # md:<db> and the like stay as they are
        return path
    return str(Path(env.get("MELTANO_PROJECT_ROOT") or ".") / path)


def source_args(warehouse: str, env: Mapping[str, str]) -> list[str]:
    """--duckdb PATH or --postgres CONNINFO, and --schema, from the environment."""
    if warehouse == "duckdb":
        path = setting(env, "DUCKDB", "PATH", DUCKDB_DEFAULTS["PATH"])
        schema = setting(env, "DUCKDB", "SCHEMA", DUCKDB_DEFAULTS["SCHEMA"])
        return ["--duckdb", in_project(env, path), "--schema", schema]
    values = {
        name: setting(env, "POSTGRES", name, default) for name, default in POSTGRES_DEFAULTS.items()
    }
    # The [postgres] extra's driver: imported for PostgreSQL alone, so [duckdb] needs no psycopg.
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    conninfo = make_conninfo(
        host=values["HOST"],
        port=values["PORT"],
        user=values["USER"],
        password=values["PASSWORD"],
        dbname=values["DATABASE"],
    )
    return ["--postgres", conninfo, "--schema", values["SCHEMA"]]


def report_args(warehouse: str, env: Mapping[str, str]) -> list[str]:
    """The fleet report's arguments for this warehouse, from the environment."""
    output = in_project(env, env.get("FLEET_REPORT_OUTPUT") or DEFAULT_OUTPUT)
    return [*source_args(warehouse, env), "-o", output]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(
            f"usage: python -m spanning_reports utility {{{'|'.join(COMMANDS)}}} [options]",
            file=sys.stderr,
        )
        return 2
    environ = os.environ if env is None else env
    command, rest = args[0], args[1:]
    if command.startswith("roles-"):
        return roles.main([*source_args(command.removeprefix("roles-"), environ), *rest])
    return fleet.main([*report_args(command, environ), *rest])
