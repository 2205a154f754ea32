#!/usr/bin/env bash
# A private PostgreSQL 15 cluster in a directory of its own, for development and tests.
#
#   pg.sh start DIR PORT   create the cluster on first use (trust auth, user postgres, UTF8), then
#                          start it on 127.0.0.1:PORT and a unix socket in DIR/run; returns once
#                          the server accepts connections
#   pg.sh stop DIR         stop it (fast shutdown); nothing to do when it is not running
#   pg.sh url DIR [PORT]   print a libpq URL for it (PORT defaults to the one it was started on)
#   pg.sh status DIR       exit 0 when it is running
#   pg.sh free-port        print a TCP port that is free on 127.0.0.1 right now
#
# Layout: DIR/data (PGDATA), DIR/run (socket), DIR/postgres.log, DIR/port.
# Postgres refuses to run as root: when run as root, DIR is handed to the `postgres` user and the
# server runs as that user, and every parent of DIR is made traversable (o+x) for it.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=postgres

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# Runs a command as the user that owns the cluster: postgres when we are root, ourselves otherwise.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

check_port() {
    if [[ ! $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65535)); then
        die "not a TCP port: $1"
    fi
}

abspath() {
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

# Gives the postgres user its own cluster directory and a way to reach it.
hand_to_postgres() {
    local dir=$1
    id -u "$PG_USER" >/dev/null 2>&1 || die "running as root, but there is no '$PG_USER' user (apt-get install postgresql)"
    chown -R "$PG_USER:" "$dir"
    chmod 700 "$dir"
    # From / down, so that each directory is tested with its parents already reachable.
    local parents=() p=$dir
    while [[ $p != / ]]; do
        p=$(dirname "$p")
        parents=("$p" "${parents[@]}")
    done
    for p in "${parents[@]}"; do
        if ! runuser -u "$PG_USER" -- test -x "$p"; then
            echo "pg.sh: chmod o+x $p so that the $PG_USER user can reach $dir" >&2
            chmod o+x "$p"
        fi
    done
    runuser -u "$PG_USER" -- test -w "$dir" || die "the $PG_USER user cannot write $dir"
}

running_port() {
    # Line 4 of postmaster.pid is the port of a running postmaster.
    sed -n 4p "$1/data/postmaster.pid" 2>/dev/null
}

is_running() {
    [[ -f $1/data/PG_VERSION ]] && as_owner "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

cmd_start() {
    (($# == 2)) || usage
    local dir port sockdir
    check_port "$2"
    port=$2
    [[ -x $PG_BIN/pg_ctl ]] || die "PostgreSQL 15 is not installed ($PG_BIN/pg_ctl missing; run tools/deps.sh)"
    dir=$(abspath "$1")
    if [[ $EUID -eq 0 ]]; then
        hand_to_postgres "$dir"
    fi

    if is_running "$dir"; then
        [[ $(running_port "$dir") == "$port" ]] ||
            die "the cluster in $dir already runs on port $(running_port "$dir"), not $port"
        echo "pg.sh: already running in $dir on port $port" >&2
        return 0
    fi

    if [[ ! -f $dir/data/PG_VERSION ]]; then
        rm -rf "$dir/data"
        as_owner mkdir -p "$dir/data" "$dir/run"
        as_owner "$PG_BIN/initdb" -D "$dir/data" --auth=trust -U "$PG_USER" -E UTF8 --locale=C \
            --no-instructions >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            die "initdb failed in $dir/data"
        }
        # A unix socket path is limited to 107 bytes; a deep checkout falls back to TCP only.
        sockdir=$dir/run
        if ((${#sockdir} + 20 > 107)); then
            echo "pg.sh: $sockdir is too long for a unix socket; TCP only" >&2
            sockdir=
        fi
        as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# agentd private cluster (tools/pg.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
fsync = on
max_connections = 200
logging_collector = off
log_min_messages = warning
EOF
    fi

    # -w waits until the server accepts connections (or reports failure), so no polling with sleep.
    if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "-p $port" -w -t 120 start >/dev/null; then
        tail -n 30 "$dir/postgres.log" >&2 || true
        die "cannot start PostgreSQL in $dir on port $port (log: $dir/postgres.log)"
    fi
    as_owner "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$PG_USER" ||
        die "PostgreSQL in $dir started but does not answer on 127.0.0.1:$port"
    echo "$port" | as_owner tee "$dir/port" >/dev/null
}

cmd_stop() {
    (($# == 1)) || usage
    local dir=$1
    [[ -d $dir ]] || return 0
    dir=$(abspath "$dir")
    is_running "$dir" || return 0
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 120 stop >/dev/null
}

cmd_url() {
    (($# == 1 || $# == 2)) || usage
    local port=${2:-}
    if [[ -z $port ]]; then
        port=$(running_port "$1")
        [[ -n $port ]] || port=$(cat "$1/port" 2>/dev/null) || die "no port given and none recorded in $1"
    fi
    check_port "$port"
    echo "postgresql://$PG_USER@127.0.0.1:$port/postgres"
}

cmd_status() {
    (($# == 1)) || usage
    [[ -d $1 ]] && is_running "$(abspath "$1")"
}

# Picks from 20000-32767, below Linux's ephemeral range, so the port does not collide with ports
# the kernel hands out for `--port 0` listeners and outgoing connections while it is unused.
cmd_free_port() {
    (($# == 0)) || usage
    local i port
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 12768))
        if perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(Listen => 1, Proto => "tcp",
                LocalAddr => "127.0.0.1", LocalPort => $ARGV[0]) ? 0 : 1)' "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
url) cmd_url "$@" ;;
status) cmd_status "$@" ;;
free-port) cmd_free_port "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
