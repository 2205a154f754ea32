#!/usr/bin/env bash
# perf/soak.sh: agentd's memory under a mixed soak and after it (issue 23, item 4). Builds the release
# preset, starts a private Postgres cluster and agentd, samples agentd's RSS (VmRSS) every few
# seconds while two agentload processes run side by side for -d seconds:
#   mixed        -c CONNS on a pool of threads: ok, threads.create, threads.search, runs.wait (echo),
#                runs.stream (echo) and v2.session (echo, a new thread each: every run has v2 events)
#   stress       runs.stream of the stress graph, TOKENS custom events per run, -C connections
# then lets it idle for -i seconds and compares the RSS at the end of the idle time with the RSS
# before the load. Exits 1 when it is more than -m MiB above the start (or the load failed to run),
# 0 otherwise. Prints a summary (also OUT/summary.md and, unless -N, perf/results/<UTC date>-<HHMM>-
# <commit>-soak.md, under the command, the commit and the machine) with the samples in OUT/rss.tsv and
# the bytes agentd reports holding for idle threads and ended runs (agentd_event_log_bytes,
# agentd_ended_run_bytes) at the end.
#
# usage: perf/soak.sh [-d SECONDS] [-i IDLE_SECONDS] [-m MARGIN_MIB] [-s SHARDS] [-c CONNS] [-C STRESS_CONNS]
#                     [-t TOKENS] [-T POOL] [-e INTERVAL] [-N] [-o OUTDIR]
#   -d load seconds (300)   -i idle seconds after the load (60)   -m allowed RSS growth, MiB (48)
#   -s agentd shards (2)   -c mixed connections (32)   -C stress connections (2)   -t stress tokens (3000)
#   -T threads in the mixed pool (2000)   -e RSS sampling interval, seconds (5)
#   -N do not write perf/results/   -o output directory (default a new /tmp/agentd-soak.XXXXXX)
# environment: SKIP_BUILD=1 (use build/release as it is), AGENTD, AGENTLOAD, AGENTD_CONFIG (a JSON
#   config file passed to agentd).
# Every process and the cluster the script started are stopped on exit, Ctrl-C or failure.

set -euo pipefail

DURATION=300
IDLE_SECS=60
MARGIN=48
SHARDS=2
CONNS=32
SCONNS=2
TOKENS=3000
POOL=2000
INTERVAL=5
OUT=""
WRITE_RESULTS=1
DB_CONNS=""
PG_EXTRA=""

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
ARGV=("$@")

# usage, log, die
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"
# shellcheck source=perf/side.sh
. "$PERF_DIR/side.sh"

while getopts "d:i:m:s:c:C:t:T:e:No:h" opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    i) IDLE_SECS=$OPTARG ;;
    m) MARGIN=$OPTARG ;;
    s) SHARDS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    C) SCONNS=$OPTARG ;;
    t) TOKENS=$OPTARG ;;
    T) POOL=$OPTARG ;;
    e) INTERVAL=$OPTARG ;;
    N) WRITE_RESULTS=0 ;;
    o) OUT=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage 2
for v in "$DURATION" "$IDLE_SECS" "$MARGIN" "$SHARDS" "$CONNS" "$SCONNS" "$TOKENS" "$POOL" "$INTERVAL"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "numeric options must be positive integers (got '$v')"
done
for cmd in psql curl timeout awk cmake; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found"
done

if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/agentd-soak.XXXXXX); else mkdir -p "$OUT"; fi
OUT=$(cd "$OUT" && pwd)
PGDIR=$OUT/pg
log "output in $OUT"
START_EPOCH=$(date +%s)

# --- processes this script owns ---------------------------------------------------------------------

AG_PID=""
CLUSTER_STARTED=0
LOAD_PIDS=()
SAMPLER_PID=""

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$SAMPLER_PID" ]; then kill -TERM "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
    stop_agentd
    stop_cluster
    [ "$rc" -eq 0 ] || log "status $rc; logs in $OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- build ------------------------------------------------------------------------------------------

AGENTD=${AGENTD:-$ROOT/build/release/agentd}
AGENTLOAD=${AGENTLOAD:-$ROOT/build/release/agentload}
build_agentload

# --- cluster, agentd ----------------------------------------------------------------------------------

start_cluster
SRV=agentd
SRV_PORT=$(free_port)
declare -a conf=()
[ -z "${AGENTD_CONFIG:-}" ] || conf=(--config "$AGENTD_CONFIG")
"$AGENTD" "${conf[@]}" --host 127.0.0.1 --port "$SRV_PORT" --shards "$SHARDS" --log-level warn >"$OUT/agentd.log" 2>&1 &
AG_PID=$!
up=0
for ((i = 0; i < 200; i++)); do
    kill -0 "$AG_PID" 2>/dev/null || break
    up=$(curl -s --max-time 1 "http://127.0.0.1:$SRV_PORT/metrics" 2>/dev/null |
        awk '/^agentd_db_connections_up/ { n += $NF } END { print n + 0 }') || up=0
    [ "$up" -ge "$SHARDS" ] && break
    sleep 0.05
done
[ "$up" -ge "$SHARDS" ] || { cat "$OUT/agentd.log" >&2; die "agentd did not come up (log: $OUT/agentd.log)"; }

# RSS and peak RSS of agentd in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$AG_PID/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$AG_PID/status"; }
# A metric summed over shards ("n/a" when this agentd does not report it).
gauge() {
    curl -s --max-time 2 "http://127.0.0.1:$SRV_PORT/metrics" |
        awk -v n="$1" '$1 ~ "^" n "({|$)" { s += $NF; f = 1 } END { if (f) print s + 0; else print "n/a" }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

T0=$(date +%s)
START=$(rss_kib)
log "agentd pid $AG_PID on port $SRV_PORT ($SHARDS shards): RSS $(mib "$START") MiB before the load"

# The sampler: "seconds phase rss_kib" every INTERVAL seconds until agentd exits or it is stopped.
PHASE_FILE=$OUT/phase
echo load >"$PHASE_FILE"
printf 'seconds\tphase\trss_kib\n' >"$OUT/rss.tsv"
(
    while kill -0 "$AG_PID" 2>/dev/null; do
        printf '%s\t%s\t%s\n' "$(($(date +%s) - T0))" "$(cat "$PHASE_FILE")" "$(rss_kib)" >>"$OUT/rss.tsv"
        sleep "$INTERVAL"
    done
) &
SAMPLER_PID=$!

# --- load ---------------------------------------------------------------------------------------------

MIX="ok:1,threads.create:2,threads.search:2,runs.wait:4,runs.stream:1,v2.session:1"
log "load: mixed ($MIX) -c $CONNS on $POOL threads + stress runs.stream ($TOKENS tokens) -c $SCONNS, ${DURATION}s"
"$AGENTLOAD" -u "http://127.0.0.1:$SRV_PORT" -s mixed -c "$CONNS" --pool "$POOL" --mix "$MIX" -d "$DURATION" -w 0 -T 60 \
    -p "$AG_PID" -q -j "$OUT/mixed.json" >"$OUT/mixed.txt" 2>"$OUT/mixed.stderr" &
LOAD_PIDS+=($!)
"$AGENTLOAD" -u "http://127.0.0.1:$SRV_PORT" -s runs.stream -a stress --stream-mode '["custom"]' \
    --config "{\"configurable\":{\"tokens\":$TOKENS}}" -c "$SCONNS" --pool 64 -d "$DURATION" -w 0 -T 120 \
    -q -j "$OUT/stress.json" >"$OUT/stress.txt" 2>"$OUT/stress.stderr" &
LOAD_PIDS+=($!)
load_rc=0
for p in "${LOAD_PIDS[@]}"; do
    rc=0
    wait "$p" || rc=$?
    [ "$rc" -le 1 ] || load_rc=$rc
done
LOAD_PIDS=()
kill -0 "$AG_PID" 2>/dev/null || die "agentd died during the load (log: $OUT/agentd.log)"
LOADED=$(rss_kib)
PEAK=$(hwm_kib)
# The summary line of an agentload table: "total" for a mix, else the operation's own line.
ok_of() { awk -v op="$2" '$1 == op { print; exit }' "$1" 2>/dev/null || true; }
log "load done: RSS $(mib "$LOADED") MiB, peak $(mib "$PEAK") MiB"
log "  mixed:  $(ok_of "$OUT/mixed.txt" total)"
log "  stress: $(ok_of "$OUT/stress.txt" runs.stream)"

# --- idle ---------------------------------------------------------------------------------------------

echo idle >"$PHASE_FILE"
log "idle for ${IDLE_SECS}s"
sleep "$IDLE_SECS"
END=$(rss_kib)
TLOG=$(gauge agentd_event_log_bytes)
RECENT=$(gauge agentd_ended_run_bytes)
ACTIVE=$(gauge agentd_runs_active)
REJECTED=$(gauge agentd_db_rejected_total)
kill -TERM "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

GROWTH=$((END - START))
LIMIT=$((MARGIN * 1024))
verdict=PASS
[ "$GROWTH" -le "$LIMIT" ] || verdict=FAIL
[ "$load_rc" -eq 0 ] || verdict="FAIL (agentload exited $load_rc)"
CONF_NOTE=${AGENTD_CONFIG:+ --config $AGENTD_CONFIG}
{
    echo "# soak: agentd's memory under a mixed load, then idle (perf/soak.sh)"
    echo
    echo '```'
    echo "date: $(date -u -d "@$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $(command_line "SKIP_BUILD AGENTD AGENTLOAD AGENTD_CONFIG" "${ARGV[@]}")"
    echo "options: -d $DURATION -i $IDLE_SECS -m $MARGIN -s $SHARDS -c $CONNS -C $SCONNS -t $TOKENS" \
        "-T $POOL -e $INTERVAL"
    echo "git: $(git_desc "$ROOT")"
    machine_desc
    echo "agentd: $("$AGENTD" --version 2>&1 | head -1), --shards $SHARDS --log-level warn$CONF_NOTE"
    echo "postgres: $(pg_desc "$OUT/settings.txt" "$TRANSPORT")"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo '```'
    echo
    echo "| RSS before load | peak | end of load | after ${IDLE_SECS}s idle | growth (allowed ${MARGIN} MiB) |"
    echo "|---|---|---|---|---|"
    echo "| $(mib "$START") MiB | $(mib "$PEAK") MiB | $(mib "$LOADED") MiB | $(mib "$END") MiB | $(mib "$GROWTH") MiB: $verdict |"
    echo
    echo "idle: agentd_event_log_bytes $TLOG, agentd_ended_run_bytes $RECENT, agentd_runs_active $ACTIVE, agentd_db_rejected_total $REJECTED"
    echo
    echo "mixed:  \`$(ok_of "$OUT/mixed.txt" total)\`"
    echo
    echo "stress: \`$(ok_of "$OUT/stress.txt" runs.stream)\`"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
if [ "$WRITE_RESULTS" = 1 ]; then
    ARCHIVE=$(result_path "$ROOT" soak "$START_EPOCH")
    cp "$OUT/summary.md" "$ARCHIVE"
    log "written to perf/results/$(basename "$ARCHIVE")"
fi
[ "$verdict" = PASS ] || exit 1
