# perf/side.sh: agentd and the JS peer side by side, the part suite.sh and soak.sh share: the private
# Postgres cluster, starting and stopping either server, whether the server is idle. Sourced, not run.
# The caller sources perf/lib.sh (log, die) and sets ROOT, PERF_DIR, OUT, PGDIR, PG_EXTRA, AGENTD,
# SHARDS, DB_CONNS, PEER_DIR, PEER_SRC, PEER_LOG_LEVEL, CLK_TCK (for wait_server_idle) and the pid
# variables its cleanup reads (AG_PID, PEER_PORT: see start_agentd / start_peer and the stop_*
# functions). Only functions: source it before the cleanup trap is set.

# --- cluster ---------------------------------------------------------------------------------------

# start_cluster: a private cluster under $PGDIR on a free port (tools/pg.sh), the -g settings
# ($PG_EXTRA), the schema (agentd migrate) and a record of the settings in $OUT/settings.txt. Sets
# DATABASE_URL (exported), PG_PORT, PMPID, TRANSPORT and CLUSTER_STARTED.
psql_q() { timeout 600 psql -X -q -At -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }

start_cluster() {
    local kv pend
    PG_PORT=$(bash "$ROOT/tools/pg.sh" free-port)
    CLUSTER_STARTED=1
    timeout 180 bash "$ROOT/tools/pg.sh" start "$PGDIR" "$PG_PORT" >/dev/null || die "cannot start the cluster"
    if [ -S "$PGDIR/run/.s.PGSQL.$PG_PORT" ]; then
        export DATABASE_URL="postgresql:///postgres?host=$PGDIR/run&port=$PG_PORT&user=postgres"
        TRANSPORT="unix socket"
    else
        export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
        TRANSPORT="TCP 127.0.0.1"
    fi
    PMPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
    log "PostgreSQL on port $PG_PORT ($TRANSPORT), postmaster pid $PMPID"

    for kv in $PG_EXTRA; do
        psql_q -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" >/dev/null || die "cannot set ${kv}"
    done
    if [ -n "$PG_EXTRA" ]; then
        psql_q -c "SELECT pg_reload_conf()" >/dev/null
        sleep 0.5
        pend=$(psql_q -c "SELECT string_agg(name, ' ') FROM pg_settings WHERE pending_restart")
        [ -z "$pend" ] || die "-g: $pend needs a restart, not supported here"
    fi

    timeout 60 "$AGENTD" migrate >"$OUT/migrate.log" 2>&1 || {
        cat "$OUT/migrate.log" >&2
        die "agentd migrate failed"
    }

    {
        echo "server_version=$(psql_q -c 'SHOW server_version')"
        psql_q -c "SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN
            ('shared_buffers', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'wal_sync_method',
             'wal_buffers', 'max_wal_size', 'checkpoint_timeout', 'commit_delay', 'commit_siblings',
             'wal_writer_delay', 'max_connections', 'data_checksums', 'wal_compression', 'autovacuum') ORDER BY name"
        echo "extra settings (-g): ${PG_EXTRA:-none}"
    } >"$OUT/settings.txt"
    log "Postgres: $(grep -E '^(synchronous_commit|fsync|commit_delay|shared_buffers)=' "$OUT/settings.txt" | tr '\n' ' ')"
}

# --- stopping what the caller started (its cleanup calls these; each is a no-op when not running) ---

# stop_agentd: SIGTERM to $AG_PID, SIGKILL after 5 s; clears AG_PID.
# stop_peer: run-peer.sh stop for $PEER_PORT and its run directory; clears PEER_PORT.
# Stops the cluster start_cluster started (if it did) and removes its data.
stop_cluster() {
    if [ "${CLUSTER_STARTED:-0}" = 1 ]; then
        bash "$ROOT/tools/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || log "warning: could not stop the cluster in $PGDIR"
        rm -rf "$PGDIR/data"
    fi
}

stop_agentd() {
    local pid=$AG_PID i
    [ -n "$pid" ] || return 0
    AG_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "warning: agentd (pid $pid) still alive 5 s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_peer() {
    local port=$PEER_PORT
    [ -n "$port" ] || return 0
    PEER_PORT=""
    timeout 30 "$PEER_SRC/run-peer.sh" stop "$port" "$PEER_DIR" >/dev/null 2>&1 || true
    rm -rf "${PEER_DIR:?}/run-$port" # its copy of the graphs and the store it wrote
}

# --- measurement helpers ---------------------------------------------------------------------------

# Builds agentd and agentload (release preset) unless SKIP_BUILD=1, logging to $OUT/build.log, and
# checks both exist at $AGENTD and $AGENTLOAD.
build_agentload() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "building the release preset (agentd, agentload)"
        (cd "$ROOT" && timeout 600 cmake --preset release >"$OUT/build.log" 2>&1 &&
            timeout 1800 cmake --build --preset release -j2 --target agentd agentload >>"$OUT/build.log" 2>&1) || {
            tail -n 30 "$OUT/build.log" >&2
            die "build failed (log: $OUT/build.log)"
        }
    fi
    [ -x "$AGENTD" ] && [ -x "$AGENTLOAD" ] || die "agentd or agentload missing (cmake --build --preset release)"
}

# A port below the ephemeral range with nothing on it.
free_port() { bash "$ROOT/tools/pg.sh" free-port; }

# utime+stime (clock ticks) of the given PIDs (all threads).
cpu_ticks() {
    local p sum=0 line st
    for p in "$@"; do
        { read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
        read -r -a st <<<"${line##*") "}"
        sum=$((sum + st[11] + st[12]))
    done
    echo "$sum"
}

# sys_ticks, pg_ticks, wait_quiet
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"

# Waits (at most 60 s) until the server has used < 10% of a core for 0.5 s: a server still working
# off requests that the warm-up's client abandoned (the peer answers a wait in ~1 s, a search in
# ~150 ms; 64 of them queue up) would otherwise spend the measured window on them.
wait_server_idle() {
    local -a pids
    local i a b
    mapfile -t pids < <(server_pids)
    a=$(cpu_ticks "${pids[@]}")
    for ((i = 0; i < 120; i++)); do
        sleep 0.5
        b=$(cpu_ticks "${pids[@]}")
        (((b - a) * 20 >= CLK_TCK)) || return 0
        a=$b
    done
    log "  warning: $SRV still busy 60 s after the warm-up"
}

SRV=""      # agentd | peer: the server running now
SRV_PORT=""

# PIDs whose CPU is the server's: agentd's process, or every process of the peer's group.
server_pids() {
    case $SRV in
    agentd) echo "$AG_PID" ;;
    peer) pgrep -g "$(cat "$PEER_DIR/run-$PEER_PORT/peer.pid")" || true ;;
    esac
}

# Starts agentd on an empty threads table and waits until it answers /ok and has its database
# connections up.
start_agentd() {
    local tag=$1 i up
    psql_q -c "SET client_min_messages = warning" -c "TRUNCATE threads CASCADE" -c "CHECKPOINT" >/dev/null
    SRV=agentd
    SRV_PORT=$(free_port)
    local -a conf=()
    if [ -n "$DB_CONNS" ]; then
        echo "{\"database\": {\"connections_per_shard\": $DB_CONNS}}" >"$OUT/agentd.json"
        conf=(--config "$OUT/agentd.json")
    fi
    "$AGENTD" "${conf[@]}" --host 127.0.0.1 --port "$SRV_PORT" --shards "$SHARDS" --log-level warn \
        >"$OUT/$tag.agentd.log" 2>&1 &
    AG_PID=$!
    for ((i = 0; i < 200; i++)); do
        kill -0 "$AG_PID" 2>/dev/null || break
        up=$(curl -s --max-time 1 "http://127.0.0.1:$SRV_PORT/metrics" 2>/dev/null |
            awk '/^agentd_db_connections_up/ { n += $NF } END { print n + 0 }') || up=0
        [ "$up" -ge "$SHARDS" ] && return 0
        sleep 0.05
    done
    cat "$OUT/$tag.agentd.log" >&2
    die "agentd did not come up with its database connections (log: $OUT/$tag.agentd.log)"
}

# Starts the peer on a fresh port with an empty store (run-peer.sh wipes it on start).
start_peer() {
    local tag=$1
    SRV=peer
    SRV_PORT=$(free_port)
    PEER_PORT=$SRV_PORT
    PEER_LOG_LEVEL=$PEER_LOG_LEVEL timeout 120 "$PEER_SRC/run-peer.sh" start "$SRV_PORT" "$PEER_DIR" \
        >"$OUT/$tag.peer-start.log" 2>&1 || {
        cat "$OUT/$tag.peer-start.log" >&2
        die "the peer did not start (log: $OUT/$tag.peer-start.log)"
    }
}

start_server() { "start_$1" "$2"; }

stop_server() {
    case $SRV in
    agentd) stop_agentd ;;
    peer)
        cp "$PEER_DIR/run-$PEER_PORT/peer.log" "$OUT/$1.peer.log" 2>/dev/null || true
        stop_peer
        ;;
    esac
    SRV=""
}

server_alive() {
    case $SRV in
    agentd) kill -0 "$AG_PID" 2>/dev/null ;;
    peer) kill -0 "$(cat "$PEER_DIR/run-$PEER_PORT/peer.pid" 2>/dev/null)" 2>/dev/null ;;
    esac
}

