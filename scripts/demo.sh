#!/usr/bin/env bash
# `make demo`: a generated 3000-user tenant that looks like a real company (the emulator's
# realistic profile: mostly users, a few percent shared mailboxes, 1-3% Global Admins, some
# archived and deleted users), served on loopback, goes through Meltano into JSONL files and
# into DuckDB, and the warehouse answers "who holds which role" and "how many licenses".
#
# Run from anywhere; `make demo` puts .venv/bin first on PATH (meltano, spanning-emulator,
# python) after `make meltano-install`. DEMO_USERS, DEMO_SEED and DEMO_PROFILE (realistic or
# torture) change the tenant. The DuckDB file is the one meltano.yml configures
# (output/spanning.duckdb), or $TARGET_DUCKDB_PATH: Meltano, duckdb_refresh.sh and the report
# all honour it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

USERS=${DEMO_USERS:-3000}
SEED=${DEMO_SEED:-1}
PROFILE=${DEMO_PROFILE:-realistic}
OUTPUT=output
JSONL_DIR=$OUTPUT/jsonl # target-jsonl's destination_path in meltano.yml
LOG_DIR=$OUTPUT/logs

for tool in meltano spanning-emulator python; do
    command -v "$tool" >/dev/null ||
        { echo "demo: $tool not found on PATH; run \`make demo\` (it installs what is needed)" >&2; exit 1; }
done

workdir=$(mktemp -d)
emulator_pid=""
cleanup() {
    if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

# The emulator's demo credentials; the key goes through the environment, never the command line.
TAP_SPANNING_ADMIN_EMAIL=$(python -c 'from spanning_emulator import DEFAULT_ADMIN_EMAIL as e; print(e)')
TAP_SPANNING_API_KEY=$(python -c 'from spanning_emulator import DEFAULT_API_KEY as k; print(k)')
export TAP_SPANNING_ADMIN_EMAIL TAP_SPANNING_API_KEY

echo "== Starting the Spanning emulator: $USERS users, profile $PROFILE (seed $SEED)"
SPANNING_EMULATOR_API_KEY=$TAP_SPANNING_API_KEY spanning-emulator \
    --users "$USERS" --seed "$SEED" --profile "$PROFILE" --port 0 --ready-file "$workdir/ready" \
    >"$workdir/emulator.log" 2>&1 &
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
TAP_SPANNING_BASE_URL=$(head -n 1 "$workdir/ready")
export TAP_SPANNING_BASE_URL
echo "   serving at $TAP_SPANNING_BASE_URL"

mkdir -p "$OUTPUT" "$LOG_DIR"

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

echo
echo "== Credentials first: meltano config test tap-spanning"
run_step config-test meltano config test tap-spanning

echo
echo "== JSONL: meltano run tap-spanning target-jsonl"
rm -rf "$JSONL_DIR" # target-jsonl appends to its files: start from none
run_step jsonl meltano run tap-spanning target-jsonl
echo "   records per stream:"
for file in "$JSONL_DIR"/*.jsonl; do
    printf '     %-44s %7d records\n' "$file" "$(wc -l <"$file")"
done

echo
echo "== DuckDB: bash scripts/duckdb_refresh.sh (meltano run tap-spanning target-duckdb, fresh file)"
# target-duckdb ignores ACTIVATE_VERSION: the refresh loads a new file and swaps it in only when
# the sync succeeded, so users removed since the last demo do not linger (README.md).
run_step duckdb bash scripts/duckdb_refresh.sh

echo
# The report asks Meltano where target-duckdb loaded (path and schema), and reads the license
# counters from the landed tenants table: no request of its own.
python scripts/role_report.py
