"""How fresh the fleet report is: said at the top of the page, in red, when the marts are not.

Two things make a report wrong without a single wrong number in it: marts built before the
newest sync landed (a night whose dbt build did not run, or ran before the load finished), and
a dbt build that failed (the marts are then what an earlier build left). So the report reads:

- `marts_build` (one row, built by transform/ with the marts): `built_at`, when the build ran
  (UTC), and `newest_sync_at`, the greatest tenant_syncs.finished_at that build saw;
- the greatest `finished_at` of the tap's own `tenant_syncs` table, as loaded now;
- dbt's run_results.json of the warehouse read (transform/target/duckdb or
  transform/target/postgres, or $DBT_DUCKDB_TARGET_PATH / $DBT_POSTGRES_TARGET_PATH, the
  utilities' target_path setting; --dbt-results names another): a result with status
  `error` or `fail` means the build failed.

The marts are stale when a sync finished after they were built, or after the newest sync
their build saw. A warehouse without `marts_build` (built by an older transform/) is said to be
of unknown freshness. Times are shown in UTC; a timestamp without a zone is taken as UTC (the
tap writes UTC, and the loaders store it without its zone).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanning_reports.project import project_root

RESULTS_FILE = "run_results.json"
FAILED_STATUSES = frozenset({"error", "fail"})
FAILED_SHOWN = 3  # failed dbt nodes named on the page; the rest are counted

Query = Callable[[str], Sequence[Sequence[Any]]]


class FreshnessError(Exception):
    """dbt's run results named on the command line cannot be read."""


def default_results(adapter: str, env: Mapping[str, str] | None = None) -> Path:
    """dbt's run_results.json for the warehouse read: the utility's target_path (Meltano's
    DBT_<ADAPTER>_TARGET_PATH), else the project's transform/target/<adapter>."""
    environ = os.environ if env is None else env
    root = project_root(environ)
    target = environ.get(f"DBT_{adapter.upper()}_TARGET_PATH")
    folder = Path(target) if target else root / "transform" / "target" / adapter
    return (folder if folder.is_absolute() else root / folder) / RESULTS_FILE


def utc(value: Any) -> dt.datetime | None:
    """A warehouse or JSON timestamp as an aware UTC datetime; None when there is none."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def shown(moment: dt.datetime | None) -> str:
    return "an unknown time" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class BuildRun:
    """The last dbt command of the project's target folder (run_results.json)."""

    path: Path
    command: str  # build, run, test...
    finished_at: dt.datetime | None  # metadata.generated_at: when dbt wrote the results
    failed: tuple[str, ...]  # unique_id of every result that errored or failed


def read_build(path: Path) -> BuildRun:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FreshnessError(f"{path}: cannot read dbt's run results ({exc})") from None
    if not isinstance(data, dict):
        raise FreshnessError(f"{path}: not dbt's run results (no JSON object)")
    results = data.get("results")
    metadata = data.get("metadata")
    args = data.get("args")
    failed = tuple(
        str(result.get("unique_id") or "a node")
        for result in (results if isinstance(results, list) else [])
        if isinstance(result, dict) and str(result.get("status")).lower() in FAILED_STATUSES
    )
    return BuildRun(
        path,
        str(args.get("which") or "build") if isinstance(args, dict) else "build",
        utc(metadata.get("generated_at")) if isinstance(metadata, dict) else None,
        failed,
    )


@dataclass(frozen=True)
class Freshness:
    """What the report knows of how current its marts are."""

    adapter: str  # duckdb or postgres: names the command that rebuilds them
    has_marts_build: bool
    built_at: dt.datetime | None = None
    built_from_sync_at: dt.datetime | None = None  # the newest sync the build saw
    newest_sync_at: dt.datetime | None = None  # the newest sync loaded now
    build: BuildRun | None = None
    results_problem: str | None = None  # the default run_results.json was unreadable

    @property
    def stale(self) -> bool:
        newest = self.newest_sync_at
        if newest is None or self.built_at is None:
            return False
        seen = self.built_from_sync_at
        return newest > self.built_at or (seen is not None and newest > seen)

    @property
    def build_failed(self) -> bool:
        """The last dbt command failed, and no build of the marts came after it (a failure
        older than built_at belongs to a run another build has since replaced)."""
        build = self.build
        if build is None or not build.failed:
            return False
        return (
            build.finished_at is None or self.built_at is None or build.finished_at >= self.built_at
        )

    @property
    def unknown(self) -> bool:
        return not self.has_marts_build or self.built_at is None or self.results_problem is not None

    @property
    def state(self) -> str:
        """Space-separated: current, stale, build-failed, unknown (data-freshness)."""
        states = [
            name
            for name, holds in (
                ("stale", self.stale),
                ("build-failed", self.build_failed),
                ("unknown", self.unknown),
            )
            if holds
        ]
        return " ".join(states) or "current"

    def rebuild(self) -> str:
        return f"build them again: `meltano invoke dbt-{self.adapter}:build`"

    def warnings(self) -> list[str]:
        """What the top of the page says, one sentence each; none when the marts are current."""
        said = []
        if self.stale:
            seen = self.built_from_sync_at
            saw = f" (from syncs up to {shown(seen)})" if seen is not None else ""
            said.append(
                f"The marts are older than the newest sync: marts built at {shown(self.built_at)}"
                f"{saw}; newest sync at {shown(self.newest_sync_at)}. Every figure below is as "
                f"of that build; {self.rebuild()}."
            )
        if self.build_failed and self.build is not None:
            build = self.build
            names = ", ".join(build.failed[:FAILED_SHOWN])
            more = len(build.failed) - FAILED_SHOWN
            names += f" and {more:,} more" if more > 0 else ""
            said.append(
                f"The last dbt {build.command} failed at {shown(build.finished_at)} "
                f"({names}); marts built at {shown(self.built_at)}: they hold what the last "
                f"good build left. dbt's results: {build.path}."
            )
        if not self.has_marts_build:
            said.append(
                "The marts' freshness is unknown: the warehouse has no marts_build table (the "
                f"marts were built by an older transform/); {self.rebuild()}."
            )
        elif self.built_at is None:
            said.append(f"The marts' freshness is unknown: marts_build is empty; {self.rebuild()}.")
        if self.results_problem is not None:
            said.append(f"Whether the last dbt build failed is unknown: {self.results_problem}.")
        return said

    def summary(self) -> str:
        """The header's line on freshness, always shown."""
        if not self.has_marts_build or self.built_at is None:
            return "marts built at an unknown time"
        newest = self.newest_sync_at
        return f"marts built at {shown(self.built_at)}" + (
            f", newest sync at {shown(newest)}" if newest is not None else ""
        )


def read_freshness(
    query: Query,
    columns: Mapping[str, set[str]],
    schema: str,
    adapter: str,
    results: Path | None,
) -> Freshness:
    """Freshness from the warehouse (`columns`: each table of the schema -> its columns, lower
    case) and from dbt's run results: `results` when given (it must be readable), else the
    default path, when it exists."""
    built_at = built_from = newest = None
    has_build = "marts_build" in columns
    if has_build:
        wanted = [c for c in ("built_at", "newest_sync_at") if c in columns["marts_build"]]
        if "built_at" in wanted:
            rows = query(f"SELECT {', '.join(wanted)} FROM {table(schema, 'marts_build')}")  # noqa: S608 - quoted identifiers of a fixed list
            if rows:
                built_at = utc(rows[0][0])
                built_from = utc(rows[0][1]) if len(wanted) > 1 else None
    if "finished_at" in columns.get("tenant_syncs", set()):
        rows = query(f"SELECT max(finished_at) FROM {table(schema, 'tenant_syncs')}")  # noqa: S608 - quoted identifiers
        newest = utc(rows[0][0]) if rows else None
    build, problem = None, None
    if results is not None:
        build = read_build(results)
    else:
        path = default_results(adapter)
        if path.is_file():
            try:
                build = read_build(path)
            except FreshnessError as exc:
                problem = str(exc)
    return Freshness(adapter, has_build, built_at, built_from, newest, build, problem)


def table(schema: str, name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))
