#!/usr/bin/env bash
# perf/suite.sh: the standard agentload matrix against agentd (with its private Postgres) and the
# JS peer (@langchain/langgraph-api, /work/shared/peer), alternating them, for several rounds, on
# the same machine in the same run over loopback. Medians, agentd/peer ratios and the targets, under
# the command, the commit and the machine, go to OUT/summary.md and, unless -N, become perf/RESULTS.md
# and perf/results/<UTC date>-<HHMM>-<commit>-suite.md (every run is kept there). nginx (`return 200`,
# as many workers as agentd has shards) joins the `ok` scenario as the CPU-per-request yardstick.
#
# Each round starts every server fresh (agentd: TRUNCATE threads CASCADE, CHECKPOINT; the peer:
# run-peer.sh start, which wipes its store) and runs the scenarios in order against it; the server
# order alternates between rounds. Scenarios (agentload -s ..., see perf/README.md):
#   ok            -c 64                      threads.create  -c 64        threads.search -c 64
#   wait.c1       runs.wait -c 1 (pool)      wait.c64        runs.wait -c 64 (pool)
#   wait.open     runs.wait open loop, 50 arrivals/s over up to 64 connections (latency from arrival)
#   stream        runs.stream -c 8 (pool, stream_mode values)
#   v2            v2.session -c 8 (skipped on a server that answers 404/405)
#   v2.fanout     1,000 v2 sessions at once, each its own thread running stress (100 tokens) with a
#                 stream on lifecycle, messages and custom: deliveries/s and lag from params.timestamp
#   v2.fanout.paced  the same with 20 tokens 200 ms apart (~12k deliveries/s offered): lag at a rate
#                 that agentd serves easily
#   v2.fanout.shared  1,000 v2 sessions (channels custom) on one thread, following one stress run of
#                 1,000 custom events, delay 0: the v2 twin of `fanout` (each event's frame shared)
#   v2.fanout.shared.paced  the same with 100 events 5 ms apart (lag at ~200k frames/s)
#   (the v2 fan-outs run last in a round: a server that falls behind keeps working through their
#   runs after agentload gives up, which would weigh on whatever came next)
#   mixed         mixed -c 64 (pool)
#   fanout        1,000 subscribers, one stress run of 1,000 custom events, delay 0 (capacity)
#   fanout.paced  1,000 subscribers, 100 events, delay_ms 5 (lag at ~200k deliveries/s)
# Then once per server, each on a fresh server: idle (10,000 keep-alive connections) and sse.idle
# (10,000 SSE subscribers joined to a pending run): server RSS per connection.
#
# usage: perf/suite.sh [-r ROUNDS] [-d SECONDS] [-w WARMUP] [-T POOL] [-s SHARDS] [-S "agentd peer nginx"]
#                      [-x "scenario ..."] [-m MEMCONNS] [-M] [-N] [-P PEER_DIR] [-q QUIET_WAIT] [-o OUTDIR]
#   -r rounds (3)   -d measured seconds per task scenario (5)   -w warm-up seconds (1)
#   -T threads in the runs pool (4000)   -s agentd shards and nginx workers (2)   -S servers
#      ("agentd peer nginx"; nginx only runs `ok`)   -x scenarios (all of the above)
#   -m connections for the memory scenarios (10000)   -M skip the memory scenarios
#   -N write neither perf/RESULTS.md nor perf/results/
#   -P where the peer is installed ($PEER_DIR, else ~/.cache/agentd-peer)
#   -q seconds to wait (at most) for an idle machine before each scenario (5)
#   -o output directory (default a new /tmp/agentd-suite.XXXXXX): every agentload JSON and table,
#      server logs, results.jsonl, summary.md
# environment: SKIP_BUILD=1 (use build/release as it is), AGENTD, AGENTLOAD, NGINX, PEER_SRC,
#   PEER_LOG_LEVEL (warn).
# Every process and the cluster the script started are stopped on exit, Ctrl-C or failure.

set -euo pipefail

ROUNDS=3
DURATION=5
WARMUP=1
POOL=4000
SHARDS=2
DB_CONNS=""
SERVERS="agentd peer nginx"
ALL_SCENARIOS="ok threads.create threads.search wait.c1 wait.c64 wait.open stream v2 mixed fanout fanout.paced v2.fanout.shared v2.fanout.shared.paced v2.fanout v2.fanout.paced"
SCENARIOS=$ALL_SCENARIOS
MEMCONNS=10000
MEMORY=1
WRITE_RESULTS=1
PEER_DIR=${PEER_DIR:-$HOME/.cache/agentd-peer}
PG_EXTRA=""
QUIET_WAIT=5
OUT=""

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
PEER_SRC=${PEER_SRC:-/work/shared/peer}
PEER_LOG_LEVEL=${PEER_LOG_LEVEL:-warn}
NGINX=${NGINX:-nginx}
CLK_TCK=$(getconf CLK_TCK)
# The environment that changes what the suite runs, recorded with the command.
ENV_VARS="PEER_DIR SKIP_BUILD AGENTD AGENTLOAD NGINX PEER_SRC PEER_LOG_LEVEL"
ARGV=("$@")

# usage, log, die
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"
# shellcheck source=perf/side.sh
. "$PERF_DIR/side.sh"

while getopts "r:d:w:T:s:S:x:m:MNP:q:o:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    T) POOL=$OPTARG ;;
    s) SHARDS=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    x) SCENARIOS=$OPTARG ;;
    m) MEMCONNS=$OPTARG ;;
    M) MEMORY=0 ;;
    N) WRITE_RESULTS=0 ;;
    P) PEER_DIR=$OPTARG ;;
    q) QUIET_WAIT=$OPTARG ;;
    o) OUT=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage 2
for v in "$ROUNDS" "$DURATION" "$POOL" "$SHARDS" "$MEMCONNS"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "numeric options must be positive integers (got '$v')"
done
[[ $WARMUP =~ ^[0-9]+$ && $QUIET_WAIT =~ ^[0-9]+$ ]] || die "-w and -q take whole numbers"
for s in $SERVERS; do case $s in agentd | peer | nginx) ;; *) die "unknown server '$s'" ;; esac; done
for s in $SCENARIOS; do [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario '$s'"; done
for cmd in psql node curl timeout awk jq cmake pgrep getconf; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found"
done
[[ " $SERVERS " != *" nginx "* ]] || command -v "$NGINX" >/dev/null || die "nginx not found (apt-get install nginx-light, or -S without nginx)"

if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/agentd-suite.XXXXXX); else mkdir -p "$OUT"; fi
OUT=$(cd "$OUT" && pwd)
PGDIR=$OUT/pg
log "output in $OUT"

# --- processes this script owns ---------------------------------------------------------------------

AG_PID=""
PEER_PORT=""
NGINX_PID=""
LOAD_PID=""
CLUSTER_STARTED=0

stop_nginx() {
    local pid=$NGINX_PID i
    [ -n "$pid" ] || return 0
    NGINX_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LOAD_PID" ]; then kill -TERM "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; fi
    stop_agentd
    stop_peer
    stop_nginx
    stop_cluster
    [ "$rc" -eq 0 ] || log "aborted (status $rc); logs in $OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- build ------------------------------------------------------------------------------------------

AGENTD=${AGENTD:-$ROOT/build/release/agentd}
AGENTLOAD=${AGENTLOAD:-$ROOT/build/release/agentload}
build_agentload
if [[ " $SERVERS " == *" peer "* ]] && [ ! -x "$PEER_DIR/node_modules/.bin/langgraphjs" ]; then
    die "the JS peer is not installed in $PEER_DIR ($PEER_SRC/install.sh $PEER_DIR v2)"
fi

# --- cluster and servers (perf/side.sh) -------------------------------------------------------------

start_cluster

start_nginx() {
    local tag=$1 dir i
    SRV=nginx
    SRV_PORT=$(free_port)
    dir=$OUT/$tag.nginx
    mkdir -p "$dir/tmp"
    sed -e "s|@WORKERS@|$SHARDS|g" -e "s|@PORT@|$SRV_PORT|g" -e "s|@DIR@|$dir|g" "$PERF_DIR/nginx-ok.conf.in" >"$dir/nginx.conf"
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" >"$OUT/$tag.nginx.log" 2>&1 &
    NGINX_PID=$!
    for ((i = 0; i < 100; i++)); do
        curl -s --max-time 1 "http://127.0.0.1:$SRV_PORT/ok" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "nginx did not answer on port $SRV_PORT (log: $OUT/$tag.nginx.log)"
}

# The server's processes as agentload's --pid list.
pid_list() {
    case $SRV in
    nginx) { echo "$NGINX_PID"; pgrep -P "$NGINX_PID" || true; } | paste -sd, ;;
    *) server_pids | paste -sd, ;;
    esac
}

suite_start() {
    case $1 in
    nginx) start_nginx "$2" ;;
    *) start_server "$1" "$2" ;;
    esac
}
suite_stop() {
    case $SRV in
    nginx) stop_nginx; SRV="" ;;
    *) stop_server "$1" ;;
    esac
}

# load TAG ROUND SCENARIO ARGS...: one agentload run against the running server; its JSON (with the
# server, round and scenario added) is appended to results.jsonl.
load() {
    local tag=$1 round=$2 scen=$3 rc=0 pids
    shift 3
    wait_quiet
    pids=$(pid_list)
    local -a aux=()
    # agentd's Postgres (the postmaster and its children: agentd's backends among them) is part of
    # what a request costs; the peer keeps everything in its own memory.
    [ "$SRV" != agentd ] || aux=(--aux-pid "$({ echo "$PMPID"; pgrep -P "$PMPID" || true; } | paste -sd,)")
    echo "agentload -u http://127.0.0.1:\$PORT -p \$SERVER_PIDS ${aux:+--aux-pid \$POSTGRES_PIDS }$*" >"$OUT/$tag.cmd"
    "$AGENTLOAD" -u "http://127.0.0.1:$SRV_PORT" -p "$pids" "${aux[@]}" -q -j "$OUT/$tag.json" "$@" >"$OUT/$tag.txt" 2>"$OUT/$tag.stderr" &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    case $rc in
    0 | 1 | 4) ;;
    *) log "  warning: agentload exited $rc ($tag): $(head -c 300 "$OUT/$tag.stderr" | tr '\n' '|')" ;;
    esac
    [ -s "$OUT/$tag.json" ] || { log "  $tag: no result"; return 0; }
    jq -c --arg srv "$SRV" --arg round "$round" --arg scen "$scen" --arg rc "$rc" --arg idle "${IDLE:-}" \
        '. + {srv: $srv, round: ($round | tonumber), key: $scen, exit: ($rc | tonumber), machine_busy_before: $idle}' \
        "$OUT/$tag.json" >>"$OUT/results.jsonl"
    log "  $tag: $(jq -r '"\(.total.ok_per_s | floor) ok/s, p50 \(.total.latency_ms.p50) ms, p99 \(.total.latency_ms.p99) ms, server \(.server.cpu_us // 0 | . * 100 | round / 100) CPU-us per \(.server.cpu_us_per // "-"), failed \(.total.failed)" + (if .extra.deliveries_per_s then ", deliveries/s \(.extra.deliveries_per_s)" else "" end) + (if .unsupported then ", SKIPPED: \(.unsupported)" else "" end)' "$OUT/$tag.json")"
    server_alive || [ "$SRV" = nginx ] || die "$SRV died during $tag"
}

# scenario ROUND KEY: the agentload arguments of each scenario.
scenario() {
    local round=$1 key=$2 tag=$SRV-r$1-$2
    local -a t=(-d "$DURATION" -w "$WARMUP")
    case $key in
    ok) load "$tag" "$round" "$key" -s ok -c 64 "${t[@]}" ;;
    threads.create) load "$tag" "$round" "$key" -s threads.create -c 64 "${t[@]}" ;;
    threads.search) load "$tag" "$round" "$key" -s threads.search -c 64 "${t[@]}" ;;
    wait.c1) load "$tag" "$round" "$key" -s runs.wait -c 1 --pool "$POOL" "${t[@]}" ;;
    wait.c64) load "$tag" "$round" "$key" -s runs.wait -c 64 --pool "$POOL" -T 60 "${t[@]}" ;;
    wait.open) load "$tag" "$round" "$key" -s runs.wait -c 64 -r 50 --pool "$POOL" -T 60 "${t[@]}" ;;
    stream) load "$tag" "$round" "$key" -s runs.stream -c 8 --pool "$POOL" -T 60 "${t[@]}" ;;
    v2) load "$tag" "$round" "$key" -s v2.session -c 8 -T 60 "${t[@]}" ;;
    v2.fanout) load "$tag" "$round" "$key" -s v2.session -a stress -c 1000 -n 1000 -w 0 -T 150 -L 180 \
        --config '{"configurable":{"tokens":100}}' --channels '["lifecycle","messages","custom"]' ;;
    v2.fanout.paced) load "$tag" "$round" "$key" -s v2.session -a stress -c 1000 -n 1000 -w 0 -T 150 -L 180 \
        --config '{"configurable":{"tokens":20,"delay_ms":200}}' --channels '["lifecycle","messages","custom"]' ;;
    mixed) load "$tag" "$round" "$key" -s mixed -c 64 --pool "$POOL" -T 60 "${t[@]}" ;;
    fanout) load "$tag" "$round" "$key" -s fanout --subs 1000 --tokens 1000 --delay-ms 0 --after 3 -L 60 ;;
    fanout.paced) load "$tag" "$round" "$key" -s fanout --subs 1000 --tokens 100 --delay-ms 5 --after 3 -L 40 ;;
    v2.fanout.shared) load "$tag" "$round" "$key" -s fanout.v2 --subs 1000 --tokens 1000 --delay-ms 0 --after 3 -L 60 ;;
    v2.fanout.shared.paced) load "$tag" "$round" "$key" -s fanout.v2 --subs 1000 --tokens 100 --delay-ms 5 --after 3 -L 40 ;;
    esac
}

# --- run --------------------------------------------------------------------------------------------

START_EPOCH=$(date +%s)
# The options in effect, defaults included; the matrix is partial when a scenario, a server or the
# memory scenarios were left out.
OPTIONS="-r $ROUNDS -d $DURATION -w $WARMUP -T $POOL -s $SHARDS -m $MEMCONNS -q $QUIET_WAIT"
[ "$MEMORY" = 1 ] || OPTIONS+=" -M"
OPTIONS+=" $(quote_args -S "$SERVERS")"
[ "$SCENARIOS" = "$ALL_SCENARIOS" ] || OPTIONS+=" $(quote_args -x "$SCENARIOS")"
MISSING=""
for s in $ALL_SCENARIOS; do [[ " $SCENARIOS " == *" $s "* ]] || MISSING+=" $s"; done
[ "$MEMORY" = 1 ] || MISSING+=" idle sse.idle"
[ -z "$MISSING" ] || MISSING="scenarios${MISSING}"
for s in agentd peer nginx; do [[ " $SERVERS " == *" $s "* ]] || MISSING+="${MISSING:+; }server $s"; done
{
    echo "date: $(date -u -d "@$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $(command_line "$ENV_VARS" "${ARGV[@]}")"
    echo "options: $OPTIONS"
    [ -z "$MISSING" ] || echo "partial: the matrix without $MISSING"
    echo "git: $(git_desc "$ROOT")"
    machine_desc
    echo "agentd: $("$AGENTD" --version 2>&1 | head -1), --shards $SHARDS --log-level warn"
    echo "postgres: $(pg_desc "$OUT/settings.txt" "$TRANSPORT")"
    if [[ " $SERVERS " == *" peer "* ]]; then
        echo "peer: $(node -e 'for (const p of ["@langchain/langgraph-api","@langchain/langgraph-cli"]) process.stdout.write(p + " " + require(process.argv[1] + "/node_modules/" + p + "/package.json").version + "; ")' "$PEER_DIR")node $(node --version), LOG_LEVEL=$PEER_LOG_LEVEL (in-memory dev server)"
    fi
    [[ " $SERVERS " != *" nginx "* ]] || echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $SHARDS workers, return 200 (ok scenario only)"
    echo "client: agentload (one epoll thread) on the same $(nproc) vCPUs; loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt" >&3
: >"$OUT/results.jsonl"

T0=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
    order=$SERVERS
    if ((round % 2 == 0)); then order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' '); fi
    for srv in $order; do
        if [ "$srv" = nginx ]; then
            [[ " $SCENARIOS " == *" ok "* ]] || continue
            log "round $round: nginx"
            suite_start nginx "nginx-r$round"
            scenario "$round" ok
            suite_stop "nginx-r$round"
            continue
        fi
        log "round $round: $srv"
        suite_start "$srv" "$srv-r$round"
        for key in $SCENARIOS; do
            scenario "$round" "$key"
            [ "$SRV" != agentd ] || wait_server_idle
        done
        suite_stop "$srv-r$round"
    done
done

if [ "$MEMORY" = 1 ]; then
    for srv in $SERVERS; do
        [ "$srv" != nginx ] || continue
        for key in idle sse.idle; do
            log "memory: $srv, $key with $MEMCONNS connections"
            suite_start "$srv" "$srv-mem-$key"
            sleep 1
            if [ "$key" = idle ]; then
                load "$srv-mem-$key" 1 "$key" -s idle -c "$MEMCONNS" --hold 3 -L 120
            else
                load "$srv-mem-$key" 1 "$key" -s sse.idle --subs "$MEMCONNS" --hold 3 -L 120
            fi
            suite_stop "$srv-mem-$key"
        done
    done
fi
log "measurements took $((SECONDS - T0)) s"
echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ) ($((SECONDS - T0)) s of measurements)" >>"$OUT/env.txt"

# --- summary ----------------------------------------------------------------------------------------

bash "$PERF_DIR/suite-summary.sh" "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md" >&3
if [ "$WRITE_RESULTS" = 1 ]; then
    ARCHIVE=$(result_path "$ROOT" suite "$START_EPOCH")
    cp "$OUT/summary.md" "$ARCHIVE"
    cp "$OUT/summary.md" "$PERF_DIR/RESULTS.md"
    log "perf/RESULTS.md written; this run is also perf/results/$(basename "$ARCHIVE")"
fi
