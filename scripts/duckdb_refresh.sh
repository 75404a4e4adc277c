#!/usr/bin/env bash
# A full refresh of the DuckDB warehouse that a failed run cannot damage: for when the raw
# tables themselves must hold only current rows (a tool that cannot use the staging views or
# the marts). The nightly path needs none of this: `meltano --environment=prod run
# nightly-duckdb` loads by upsert and dbt applies the current-rows rule per tenant (docs/many-tenants.md).
#
# target-duckdb 0.8.0 ignores ACTIVATE_VERSION, so removals only reach the raw tables if the
# load starts from empty ones. Emptying the live file first would leave it empty or partial
# when a run fails. Instead each run loads a fresh file of its own and builds in it the
# current-rows views (current_users, ...), the staging views and the marts, all from dbt
# (`meltano run tap-spanning target-duckdb dbt-duckdb:build`); the
# fresh file replaces the live one (an atomic rename) only when that succeeded and every
# tenant completed (failure_mode nightly exits 0 with failed tenants: their rows would be
# missing from the fresh file). Otherwise the live file is left whole. The histories
# (tenant_syncs, backup_summaries, user_backups) are carried over: the fresh file starts
# with the live file's.
#
# One refresh at a time: it holds a lock (flock) on <live>.lock, which names the run holding
# it; a second run refuses at once, naming that run. The fresh file is <live>.<UTC time>.<pid>.new/
# <live's name>: the same file name, because DuckDB names the catalog after the file and the
# views dbt builds name that catalog. It deletes nothing it did not create: only that
# directory of its own, and the lock file stays.
#
# Usage: bash scripts/duckdb_refresh.sh [extra `meltano run` arguments]
# The live file is the loader's `path` as Meltano resolves it (meltano.yml, the environment,
# TARGET_DUCKDB_PATH): the file `meltano run` and the reports (fleet-report) use. Needs flock
# (util-linux) and the project's python (duckdb) on PATH.
set -euo pipefail
say() { echo "duckdb_refresh: $*" >&2; }

live=$(meltano invoke --no-install --dump=config target-duckdb |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["path"])')
case $live in
*:*) say "$live is not a file (MotherDuck?): only a local DuckDB file can be refreshed"; exit 1 ;;
esac
command -v flock >/dev/null || { say "flock not found (util-linux): needed for the lock"; exit 1; }
mkdir -p "$(dirname "$live")"

# The lock: opened for append, so that a run that does not get it leaves the holder's line.
lock=$live.lock
exec 9>>"$lock"
if ! flock -n 9; then
    holder=$(cat "$lock" 2>/dev/null || true)
    say "another refresh of $live is running (${holder:-its pid not written yet}; lock $lock): not starting a second"
    exit 1
fi
: >"$lock"
echo "pid $$, started $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&9

# A WAL next to the live file: a writer has it open, or one crashed before checkpointing. The
# fresh file must not be paired with it, and it is not this script's to delete.
wal_check() {
    if [ -e "$live.wal" ]; then
        say "$live.wal exists (a writer has $live open, or one crashed): close it, or open the file once with DuckDB to fold the WAL in, and run again; $live is unchanged"
        exit 1
    fi
}
wal_check

fresh_dir=$live.$(date -u +%Y%m%dT%H%M%SZ).$$.new
mkdir "$fresh_dir" # not -p: a name that exists is not ours
trap 'rm -rf "$fresh_dir"' EXIT # made by this run, with all it holds
trap 'exit 130' INT
trap 'exit 143' TERM
# Absolute: the loader takes a relative path from its working directory, dbt from the project.
fresh_dir=$(cd "$fresh_dir" && pwd)
fresh=$fresh_dir/$(basename "$live")

# The histories keep what Spanning forgets: the fresh file starts with the live file's.
if [ -f "$live" ]; then
    python3 - "$live" "$fresh" <<'PY'
import sys

import duckdb

live, fresh = sys.argv[1:]
con = duckdb.connect(fresh)
quoted = live.replace("'", "''")  # ATTACH takes no parameter
con.execute(f"ATTACH '{quoted}' AS live (READ_ONLY)")
for table in ("tenant_syncs", "backup_summaries", "user_backups"):
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = 'live' AND table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchone()
    if found and found[0]:
        con.execute(f'CREATE TABLE main."{table}" AS SELECT * FROM live.main."{table}"')
con.close()
PY
fi

# The loader and dbt both on the fresh file, whatever TARGET_DUCKDB_PATH or DBT_DUCKDB_PATH
# said (dbt takes DBT_DUCKDB_PATH first). dbt's compiled files go with it: they describe this
# file, and two refreshes of two warehouses must not share one target folder.
status=0
TARGET_DUCKDB_PATH=$fresh DBT_DUCKDB_PATH=$fresh DBT_DUCKDB_TARGET_PATH=$fresh_dir/dbt-target \
    meltano run "$@" tap-spanning target-duckdb dbt-duckdb:build || status=$?
if [ "$status" -ne 0 ]; then
    say "the run failed (exit $status); $live is unchanged"
    exit "$status"
fi

# Every tenant of this run complete, or no swap; then a checkpoint, so that no WAL is left
# behind the fresh file when it moves.
failed=$(python3 - "$fresh" <<'PY'
import sys

import duckdb

con = duckdb.connect(sys.argv[1])
rows = con.execute(
    "SELECT tenant_id FROM main.tenant_syncs WHERE status <> 'complete' "
    "AND sync_version = (SELECT max(sync_version) FROM main.tenant_syncs) ORDER BY tenant_id"
).fetchall()
con.execute("CHECKPOINT")
con.close()
print(", ".join(str(tenant) for (tenant,) in rows))
PY
) || { say "could not read tenant_syncs in the fresh file; $live is unchanged"; exit 1; }
if [ -n "$failed" ]; then
    say "tenants failed in this run ($failed): their rows would be lost from the raw tables; $live is unchanged"
    exit 1
fi
wal_check
mv -f "$fresh" "$live"
say "$live replaced by the new sync"
