#!/usr/bin/env bash
# A full refresh of the DuckDB warehouse that a failed sync cannot damage.
#
# target-duckdb 0.8.0 ignores ACTIVATE_VERSION, so removals only land if the load starts
# from empty tables. Loading into the live file after dropping its tables would leave it
# empty or partial when a sync fails (a tenant refused, the API down). Instead the sync
# loads a fresh file next to it, and the fresh file replaces the live one (an atomic
# rename) only when `meltano run` succeeded: a failed run leaves the previous warehouse whole.
# The histories are carried over: the fresh file starts with the live file's.
#
# Usage: bash scripts/duckdb_refresh.sh [extra `meltano run` arguments]
# The live file is the loader's `path` as Meltano resolves it (meltano.yml, the environment,
# TARGET_DUCKDB_PATH): the file `meltano run` and scripts/role_report.py use.
set -euo pipefail
live=$(meltano invoke --no-install --dump=config target-duckdb |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["path"])')
# target-duckdb names the catalog after the file: keep the fresh name a plain identifier.
stem="$(basename "$live" .duckdb)"
fresh="$(dirname "$live")/${stem}_loading.duckdb"
mkdir -p "$(dirname "$live")"
rm -f "$fresh" "$fresh.wal"
# The histories (tenant_syncs, the backup days) keep what Spanning forgets: the fresh file
# starts with the live file's, and the sync adds to them.
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
if TARGET_DUCKDB_PATH="$fresh" meltano run "$@" tap-spanning target-duckdb; then
  mv -f "$fresh" "$live"
  rm -f "$live.wal"
  echo "duckdb_refresh: $live replaced by the new sync" >&2
else
  status=$?
  rm -f "$fresh" "$fresh.wal"
  echo "duckdb_refresh: the sync failed (exit $status); $live is unchanged" >&2
  exit "$status"
fi
