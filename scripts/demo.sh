#!/usr/bin/env bash
# `make demo`: what an MSP sees. A fleet of 12 generated client tenants of uneven sizes (the
# emulator's realistic profile: from a handful of users to several hundred, a few percent
# shared mailboxes, 1-3% Global Admins, some archived and deleted users, a trial or an expired
# subscription), each with its backup history, is served on loopback and synced twice, a day
# apart: yesterday's sync into DuckDB, then today's, into JSONL files and into DuckDB, where dbt
# builds the marts of transform/ (`meltano run tap-spanning target-duckdb dbt-duckdb:build`).
# It ends with the fleet report (scripts/fleet_report.py), one HTML file, and its path.
#
# Run from anywhere; `make demo` puts .venv/bin first on PATH (meltano, spanning-emulator,
# python) after `make meltano-install`. DEMO_TENANTS and DEMO_SEED change the fleet. The
# DuckDB file is the one meltano.yml configures (output/spanning.duckdb), or
# $TARGET_DUCKDB_PATH: Meltano, dbt and the report all honour it. The demo starts it afresh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TENANTS=${DEMO_TENANTS:-12}
SEED=${DEMO_SEED:-1}
OUTPUT=output
JSONL_DIR=$OUTPUT/jsonl # target-jsonl's destination_path in meltano.yml
LOG_DIR=$OUTPUT/logs
REPORT=$OUTPUT/fleet_report.html

for tool in meltano spanning-emulator python; do
    command -v "$tool" >/dev/null ||
        { echo "demo: $tool not found on PATH; run \`make demo\` (it installs what is needed)" >&2; exit 1; }
done

workdir=$(mktemp -d)
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

mkdir -p "$OUTPUT" "$LOG_DIR"

# "Today" and "yesterday" in UTC, the emulator's days; a free loopback port for the fleet.
TODAY=$(python -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date())')
YESTERDAY=$(python -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() - d.timedelta(days=1))')
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The fleet's tap config (tenant ids, admin emails, base URLs) and its keys, as an MSP keeps
# them: the tenants in the config, the keys in the environment (README, "Many tenants"), never
# on a command line. meltano.yml's one-tenant demo settings are blanked for a fleet.
spanning-emulator --tenants "$TENANTS" --seed "$SEED" --port "$PORT" --write-fleet "$workdir/fleet" >/dev/null
TAP_SPANNING_TENANTS=$(python -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["tenants"]))' \
    "$workdir/fleet/tap-config.json")
set -a
. "$workdir/fleet/tenant-keys.env" # TAP_SPANNING_TENANT_API_KEYS
set +a
export TAP_SPANNING_TENANTS TAP_SPANNING_BASE_URL="" TAP_SPANNING_ADMIN_EMAIL=""
unset TAP_SPANNING_API_KEY

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
        $((elapsed_ms % 1000 / 100)) "$log"
}

# The warehouse file as Meltano resolves it, started afresh: the fleet's history is the two
# days below, not what an earlier demo left.
DUCKDB=$(meltano invoke --no-install --dump=config target-duckdb 2>"$LOG_DIR/duckdb-path.log" |
    python -c 'import json, sys; print(json.load(sys.stdin)["path"])') || {
    tail -n 20 "$LOG_DIR/duckdb-path.log" >&2
    echo "demo: Meltano did not say where target-duckdb loads (log: $LOG_DIR/duckdb-path.log)" >&2
    exit 1
}
mkdir -p "$(dirname "$DUCKDB")"
rm -f "$DUCKDB" "$DUCKDB.wal"

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
rm -rf "$JSONL_DIR" # target-jsonl appends to its files: start from none
run_step jsonl meltano run tap-spanning target-jsonl
echo "   records per stream:"
for file in "$JSONL_DIR"/*.jsonl; do
    printf '     %-44s %7d records\n' "$file" "$(wc -l <"$file")"
done
echo
echo "== DuckDB and the marts: meltano run tap-spanning target-duckdb dbt-duckdb:build"
run_step duckdb-today meltano run tap-spanning target-duckdb dbt-duckdb:build
stop_emulator

echo
echo "== The fleet report: python scripts/fleet_report.py --duckdb $DUCKDB -o $REPORT"
run_step fleet-report python scripts/fleet_report.py --duckdb "$DUCKDB" -o "$REPORT"
echo
echo "Open it in a browser (it loads nothing from the network):"
python -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve())' "$REPORT"
