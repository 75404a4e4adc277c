#!/usr/bin/env bash
# `make demo`: what an MSP sees. A fleet of 12 generated client tenants of uneven sizes (the
# emulator's realistic profile: from a handful of users to several hundred, a few percent
# shared mailboxes, 1-3% Global Admins, some archived and deleted users, a trial or an expired
# subscription), each with its backup history, is served on loopback and synced twice, a day
# apart: yesterday's sync into DuckDB, then today's, into JSONL files and, with the nightly job
# (`meltano run nightly-duckdb`: tap-spanning target-duckdb dbt-duckdb:build
# fleet-report:duckdb fleet-report:alerts-duckdb fleet-report:clients-duckdb), into DuckDB,
# where dbt builds the marts of transform/ and the fleet report (reports/: python -m
# spanning_reports) is written from them: one HTML file, whose path ends the demo. Then each
# client's report of this month (fleet-report:client-duckdb --all), under output/demo/clients.
#
# Everything it writes is under output/demo/ (its DuckDB file, JSONL, logs, dbt's files,
# Meltano's system database and run files, the report), through the `demo` environment of
# meltano.yml; it removes nothing outside that folder. A warehouse, `.env` or JSONL of a real
# run are never read or touched: every TAP_SPANNING_*, TARGET_*, DBT_*, FLEET_REPORT_*,
# MELTANO_* and SPANNING_* variable of the caller is dropped and the demo's own are set, and
# Meltano is told to read no .env (--env-file=/dev/null).
#
# Run from anywhere; `make demo` puts .venv/bin first on PATH (meltano, spanning-emulator,
# python) after `make meltano-install`. DEMO_TENANTS and DEMO_SEED change the fleet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TENANTS=${DEMO_TENANTS:-12}
SEED=${DEMO_SEED:-1}
DEMO=$PWD/output/demo
DUCKDB=$DEMO/spanning.duckdb
JSONL_DIR=$DEMO/jsonl
LOG_DIR=$DEMO/logs
REPORT=$DEMO/fleet_report.html
SYS_DIR=$DEMO/meltano # Meltano's system directory: its database (state, runs) and run files

for tool in meltano spanning-emulator python; do
    command -v "$tool" >/dev/null ||
        { echo "demo: $tool not found on PATH; run \`make demo\` (it installs what is needed)" >&2; exit 1; }
done

# Nothing of the caller's shell may point the demo at a real warehouse, tenant, key or Meltano
# state: drop every variable of the tap, the loaders, dbt, the report, Meltano and the emulator,
# then set the demo's own (the same paths as the `demo` environment, so neither can drift
# alone without the other still holding the demo to output/demo/).
while IFS= read -r name; do
    case $name in
    TAP_SPANNING_* | TARGET_* | DBT_* | FLEET_REPORT_* | MELTANO_* | SPANNING_*) unset "$name" ;;
    esac
done < <(compgen -e)
export TARGET_DUCKDB_PATH=$DUCKDB DBT_DUCKDB_PATH=$DUCKDB FLEET_REPORT_DUCKDB_PATH=$DUCKDB
export TARGET_JSONL_DESTINATION_PATH=$JSONL_DIR FLEET_REPORT_OUTPUT=$REPORT
export DBT_DUCKDB_TARGET_PATH=$DEMO/dbt/target DBT_DUCKDB_LOG_PATH=$DEMO/dbt/logs
export MELTANO_SYS_DIR_ROOT=$SYS_DIR MELTANO_DATABASE_URI=sqlite:///$SYS_DIR/meltano.db
# Every meltano command below is this one: the demo environment, and no .env.
meltano() { command meltano --environment=demo --env-file=/dev/null "$@"; }

# The demo's own files from its last run go: its history is the two days below. Only these
# names, all under output/demo/.
mkdir -p "$DEMO"
rm -f "$DUCKDB" "$DUCKDB.wal" "$REPORT" "$SYS_DIR/meltano.db"
rm -rf "$JSONL_DIR" "$LOG_DIR" "$SYS_DIR/run" "$SYS_DIR/logs"
mkdir -p "$LOG_DIR" "$SYS_DIR"
# The plugins installed in the project's .meltano/, seen from the demo's system directory.
for kind in extractors loaders utilities; do
    [ -L "$SYS_DIR/$kind" ] || ln -s "../../../.meltano/$kind" "$SYS_DIR/$kind"
done

workdir=$(mktemp -d "$DEMO/run.XXXXXX")
emulator_pid=""
stop_emulator() {
    if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    emulator_pid=""
}
cleanup() {
    stop_emulator
    rm -rf "$workdir"
}
trap cleanup EXIT

# "Today" and "yesterday" in UTC, the emulator's days; a free loopback port for the fleet.
TODAY=$(python -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date())')
YESTERDAY=$(python -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() - d.timedelta(days=1))')
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The fleet's tap config (tenant ids, admin emails, base URLs) and its keys, as an MSP keeps
# them: the tenants in the config, the keys in the environment (docs/many-tenants.md), never
# on a command line. meltano.yml's one-tenant settings (a bare emulator's) are blanked.
spanning-emulator --tenants "$TENANTS" --seed "$SEED" --port "$PORT" --write-fleet "$workdir/fleet" >/dev/null
TAP_SPANNING_TENANTS=$(python -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["tenants"]))' \
    "$workdir/fleet/tap-config.json")
set -a
. "$workdir/fleet/tenant-keys.env" # TAP_SPANNING_TENANT_API_KEYS
set +a
export TAP_SPANNING_TENANTS TAP_SPANNING_BASE_URL="" TAP_SPANNING_ADMIN_EMAIL=""

# Serve the fleet as it is on day $1 (its backup history ends that day).
start_emulator() {
    local day=$1
    rm -f "$workdir/ready"
    spanning-emulator --tenants "$TENANTS" --seed "$SEED" --port "$PORT" --today "$day" \
        --ready-file "$workdir/ready" >"$workdir/emulator.log" 2>&1 &
    emulator_pid=$!
    for _ in $(seq 1 300); do
        [ -s "$workdir/ready" ] && break
        if ! kill -0 "$emulator_pid" 2>/dev/null; then
            cat "$workdir/emulator.log" >&2
            echo "demo: the emulator exited before it was ready" >&2
            exit 1
        fi
        sleep 0.1
    done
    [ -s "$workdir/ready" ] || { echo "demo: the emulator was not ready within 30 s" >&2; exit 1; }
    echo "   $(head -n 1 "$workdir/emulator.log"), its today $day"
}

# A step's output goes to a log file; on failure its last lines are shown.
run_step() {
    local name=$1 started log elapsed_ms
    shift
    log=$LOG_DIR/$name.log
    started=$(date +%s%N)
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "demo: $* failed; the whole log is in $log" >&2
        exit 1
    fi
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    printf '   %s: ok in %d.%d s (log: %s)\n' "$*" $((elapsed_ms / 1000)) \
        $((elapsed_ms % 1000 / 100)) "${log#"$PWD/"}"
}

echo "Everything below is written to output/demo/; each meltano command runs as"
echo "\`meltano --environment=demo --env-file=/dev/null ...\` (meltano.yml's demo environment, no .env)."
echo
echo "== Yesterday ($YESTERDAY): a fleet of $TENANTS tenants (seed $SEED)"
start_emulator "$YESTERDAY"
echo
echo "== Credentials first, every tenant's: meltano config test tap-spanning"
run_step config-test meltano config test tap-spanning
echo
echo "== The night's sync into DuckDB: meltano run tap-spanning target-duckdb"
run_step duckdb-yesterday meltano run tap-spanning target-duckdb
stop_emulator

echo
echo "== Today ($TODAY): the same fleet, a day later"
start_emulator "$TODAY"
echo
echo "== JSONL: meltano run tap-spanning target-jsonl"
run_step jsonl meltano run tap-spanning target-jsonl
echo "   records per stream:"
for file in "$JSONL_DIR"/*.jsonl; do
    printf '     %-44s %7d records\n' "${file#"$PWD/"}" "$(wc -l <"$file")"
done
echo
echo "== The nightly job: meltano run nightly-duckdb"
echo "   (tap-spanning target-duckdb dbt-duckdb:build fleet-report:duckdb fleet-report:alerts-duckdb"
echo "    fleet-report:clients-duckdb: load, the marts, the report, the alerts, the clients' reports)"
run_step nightly-duckdb meltano run nightly-duckdb
stop_emulator
[ -s "$REPORT" ] || { echo "demo: the nightly job wrote no $REPORT" >&2; exit 1; }

echo
echo "== Each client's report of this month: meltano invoke fleet-report:client-duckdb --all"
run_step clients meltano invoke fleet-report:client-duckdb --all --day "$TODAY"
ls "$DEMO/clients"/*.html >/dev/null || { echo "demo: no client report in $DEMO/clients" >&2; exit 1; }

echo
echo "The fleet report; open it in a browser (it loads nothing from the network):"
echo "$REPORT"
