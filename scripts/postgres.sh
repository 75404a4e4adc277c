#!/usr/bin/env bash
# A private PostgreSQL cluster for the warehouse tests and demos, on a fresh machine too.
#
#   bash scripts/postgres.sh start    install the server if missing (root: apt-get), initialise
#                                     .pg/ on first use, start it, wait until it accepts
#                                     connections, print its URL (last line of output)
#   bash scripts/postgres.sh stop     stop it (fast shutdown); the data stays in .pg/
#   bash scripts/postgres.sh status   say whether it runs, and its URL
#   bash scripts/postgres.sh url      print the URL only
#
# The cluster listens on 127.0.0.1 only (no Unix socket, no other address), at a fixed port
# (54329 unless TAP_SPANNING_PG_PORT says otherwise), and trusts every loopback connection:
# it is a throwaway test server, so it also runs with fsync off. Tests find it through
# TAP_SPANNING_TEST_PG_URL, which defaults to the URL printed here. As root, the server runs
# as the `postgres` OS user (initdb refuses root). Running `start` twice is harmless.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
PORT=${TAP_SPANNING_PG_PORT:-54329}
SUPERUSER=postgres
DEFAULT_DB=spanning # the database meltano.yml's target-postgres loads into
URL="postgresql://${SUPERUSER}@${HOST}:${PORT}/postgres"
START_TIMEOUT=60

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# The directory holding initdb, pg_ctl and postgres: $PG_BINDIR, else the newest Debian
# /usr/lib/postgresql/<version>/bin, else wherever initdb is on PATH.
find_bindir() {
    local dir
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR holds no initdb"
        printf '%s\n' "$PG_BINDIR"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dir=$(dirname "$(readlink -f "$(command -v initdb)")")
        [ -x "$dir/postgres" ] && {
            printf '%s\n' "$dir"
            return 0
        }
    fi
    return 1
}

install_server() {
    if ! is_root; then
        die "no PostgreSQL server found (initdb, pg_ctl, postgres). Install it as root, e.g." \
            "'sudo apt-get install -y postgresql', or set PG_BINDIR to its bin directory," \
            "then run this again."
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "no PostgreSQL server found and no apt-get to install one: install PostgreSQL" \
            "(server binaries initdb, pg_ctl, postgres) and set PG_BINDIR."
    say "no PostgreSQL server found: installing it with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q postgresql
}

# As root, every server command runs as the `postgres` OS user.
as_owner() {
    if is_root; then
        runuser -u "$SUPERUSER" -- "$@"
    else
        "$@"
    fi
}

ensure_os_user() {
    is_root || return 0
    id -u "$SUPERUSER" >/dev/null 2>&1 && return 0
    say "creating the '$SUPERUSER' OS user to own the cluster"
    useradd --system --user-group --no-create-home --shell /bin/sh "$SUPERUSER"
}

# The data lives in .pg/ under the project. As root, the `postgres` user must be able to
# reach it; when a parent directory forbids that (a clone under /root, say), a directory
# named after the project's path under /var/tmp is used instead, and said so.
choose_pgdir() {
    PGDIR=${TAP_SPANNING_PG_DIR:-$ROOT/.pg}
    if is_root && [ -z "${TAP_SPANNING_PG_DIR:-}" ] && ! runuser -u "$SUPERUSER" -- test -x "$ROOT"; then
        local tag
        tag=$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
        PGDIR=/var/tmp/tap-spanning-pg-$tag
        say "user '$SUPERUSER' cannot enter $ROOT; keeping the cluster in $PGDIR instead"
    fi
    DATA=$PGDIR/data
    LOG=$PGDIR/postgres.log
}

write_config() {
    # Rewritten on every start, so a change of port takes effect.
    as_owner tee "$DATA/tap_spanning.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh: loopback only, no Unix socket, a throwaway test cluster.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
EOF
    as_owner tee "$DATA/pg_hba.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh: trust every connection from 127.0.0.1, nothing else.
# TYPE  DATABASE  USER  ADDRESS        METHOD
host    all       all   127.0.0.1/32   trust
EOF
}

init_cluster() {
    [ -f "$DATA/PG_VERSION" ] && return 0
    say "initialising a new cluster in $DATA"
    mkdir -p "$PGDIR"
    if is_root; then
        chown "$SUPERUSER:" "$PGDIR"
    fi
    as_owner "$BIN/initdb" --pgdata="$DATA" --username="$SUPERUSER" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 ||
        as_owner "$BIN/initdb" --pgdata="$DATA" --username="$SUPERUSER" --auth=trust \
            --encoding=UTF8 --no-locale >"$PGDIR/initdb.log" 2>&1 ||
        die "initdb failed; see $PGDIR/initdb.log"
    printf "\ninclude_if_exists = 'tap_spanning.conf'\n" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
}

is_running() {
    [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" status --pgdata="$DATA" >/dev/null 2>&1
}

is_ready() {
    "$BIN/pg_isready" --host="$HOST" --port="$PORT" --username="$SUPERUSER" --dbname=postgres \
        --timeout=2 >/dev/null 2>&1
}

wait_ready() {
    local waited=0
    until is_ready; do
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            tail -n 20 "$LOG" >&2 || true
            die "the server did not accept connections on $HOST:$PORT within ${START_TIMEOUT}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

ensure_default_db() {
    local found
    found=$("$BIN/psql" "$URL" -XtAq -c "SELECT 1 FROM pg_database WHERE datname = '$DEFAULT_DB'")
    if [ "$found" != "1" ]; then
        "$BIN/psql" "$URL" -Xq -c "CREATE DATABASE $DEFAULT_DB" >/dev/null
        say "created database $DEFAULT_DB"
    fi
}

start() {
    BIN=$(find_bindir) || {
        install_server
        BIN=$(find_bindir) || die "PostgreSQL was installed but no initdb/pg_ctl/postgres found"
    }
    ensure_os_user
    choose_pgdir
    if is_running; then
        say "already running (data in $DATA)"
    elif is_ready; then
        # Another server (a cluster of another checkout, say) already answers on the port.
        say "WARNING: a server that is not $DATA already listens on $HOST:$PORT; using it"
    else
        init_cluster
        write_config
        say "starting PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on $HOST:$PORT (log: $LOG)"
        as_owner "$BIN/pg_ctl" start --pgdata="$DATA" --log="$LOG" --wait \
            --timeout="$START_TIMEOUT" >/dev/null || {
            tail -n 20 "$LOG" >&2 || true
            die "pg_ctl start failed; see $LOG"
        }
    fi
    wait_ready
    ensure_default_db
    say "ready; tests read TAP_SPANNING_TEST_PG_URL (default: this URL)"
    printf '%s\n' "$URL"
}

stop() {
    BIN=$(find_bindir) || {
        say "no PostgreSQL server installed: nothing to stop"
        return 0
    }
    choose_pgdir
    if is_running; then
        as_owner "$BIN/pg_ctl" stop --pgdata="$DATA" --mode=fast --wait >/dev/null
        say "stopped (data kept in $DATA)"
    else
        say "not running"
    fi
}

status() {
    BIN=$(find_bindir) || die "no PostgreSQL server installed"
    choose_pgdir
    if is_running && is_ready; then
        say "running, data in $DATA"
        printf '%s\n' "$URL"
    else
        say "not running"
        return 3
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
url) printf '%s\n' "$URL" ;;
*)
    printf 'usage: %s start|stop|status|url\n' "$0" >&2
    exit 2
    ;;
esac
