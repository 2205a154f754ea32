#!/usr/bin/env bash
# History growth: what a run costs as its thread's conversation grows. One thread, TURNS turns of
# runs.wait echo one after the other (each turn adds two messages to the state); at each measured turn
# the BLOCK turns ending there are timed. Against agentd: WAL bytes and checkpoint-table bytes written
# per turn, agentd and Postgres CPU-µs per turn, agentd allocations per turn. Against the JS peer (-P;
# its in-memory dev server keeps history in memory): its resident memory and state-file bytes per turn
# and its CPU-µs per turn.
#
#   perf/history.sh [-t TURNS,...] [-b BLOCK] [-N] [-P PEER_DIR] [AGENTD]
#                   (default build/release/agentd; agentload from build/release)
#
# -t the measured turns (10,100,1000), -b turns per measured block (10), -P measure the peer installed
# in PEER_DIR by ../shared/peer/install.sh (PEER_SH names its run-peer.sh). Prints a table under the
# command, the commit and the machine; unless -N, also written to perf/results/<UTC date>-<HHMM>-
# <commit>-history.md (history-peer.md for the peer).

set -euo pipefail
PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
TURNS=10,100,1000
BLOCK=10
WRITE_RESULTS=1
PEER_DIR=
ARGV=("$@")
# usage, log, command_line, git_desc, machine_desc, result_path
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"
while getopts "t:b:NP:h" opt; do
    case $opt in
    t) TURNS=$OPTARG ;;
    b) BLOCK=$OPTARG ;;
    N) WRITE_RESULTS=0 ;;
    P) PEER_DIR=$(cd "$OPTARG" && pwd) ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage 2
BIN=${1:-$ROOT/build/release/agentd}
LOAD=${AGENTLOAD:-$ROOT/build/release/agentload}
PEER_SH=${PEER_SH:-$ROOT/../shared/peer/run-peer.sh}
[ -x "$LOAD" ] || die "$LOAD missing (cmake --build --preset release --target agentload)"
if [ -n "$PEER_DIR" ]; then
    [ -x "$PEER_SH" ] || die "$PEER_SH missing (set PEER_SH to the peer's run-peer.sh)"
else
    [ -x "$BIN" ] || die "$BIN missing (cmake --build --preset release)"
fi
OUT=$(mktemp -d "${TMPDIR:-/tmp}/agentd-history.XXXXXX")
chmod 711 "$OUT"
START_EPOCH=$(date +%s)
PGD=$OUT/pg
AG_PID=
AP=$(bash "$ROOT/tools/pg.sh" free-port)
cleanup() {
    [ -n "$AG_PID" ] && { kill -TERM "$AG_PID" 2>/dev/null || true; wait "$AG_PID" 2>/dev/null || true; }
    [ -n "$PEER_DIR" ] && { "$PEER_SH" stop "$AP" "$PEER_DIR" >/dev/null 2>&1 || true; }
    bash "$ROOT/tools/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT

# What the target measures: before_block / after_block around each block (after_block echoes the row's
# figures a, b[, c, d]), the table's header, separator and footer, and ROW, the row's str.format template.
if [ -n "$PEER_DIR" ]; then
    "$PEER_SH" start "$AP" "$PEER_DIR" >"$OUT/start.log" 2>&1 || die "the peer did not start: $(cat "$OUT/start.log")"
    PGID=$(cat "$PEER_DIR/run-$AP/peer.pid")
    HZ=$(getconf CLK_TCK)
    rss_kb() { ps -o rss= -g "$PGID" | awk '{ s += $1 } END { print s + 0 }'; }
    cpu_ticks() { # utime + stime of every process of the peer's group
        local t=0 line st p
        for p in $(ps -o pid= -g "$PGID"); do
            { read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
            read -r -a st <<<"${line##*") "}"
            t=$((t + st[11] + st[12]))
        done
        echo "$t"
    }
    files_bytes() { du -sb "$PEER_DIR/run-$AP" 2>/dev/null | awk '{ print $1 }'; }
    LOAD_OPTS=()
    before_block() { r0=$(rss_kb) c0=$(cpu_ticks) f0=$(files_bytes); }
    after_block() {
        local r1 c1 f1
        r1=$(rss_kb) c1=$(cpu_ticks) f1=$(files_bytes)
        echo "$r1 $(((r1 - r0) * 1024 / BLOCK)) $(((f1 - f0) / BLOCK)) $(((c1 - c0) * 1000000 / HZ / BLOCK))"
    }
    TARGET_DESC="peer: $(head -c 300 "$OUT/start.log" | tr '\n' ' ')"
    HEADER="| turn | resident memory kB | memory bytes/turn | state-file bytes/turn | p50 ms | peer CPU-µs/turn | failed |"
    SEP="|---|---|---|---|---|---|---|"
    FOOTER="Memory: the resident set of the peer's process group (node and its workers) before and after the
block, divided by its turns (a garbage collector decides when it shrinks, so single blocks are noisy);
state files: du of the peer's state directory."
    ROW='| {t} | {a:,} | {b:,} | {c:,} | {p50:.2f} | {d:,} | {failed} |'
    KIND=history-peer
else
    bash "$ROOT/tools/pg.sh" start "$PGD" "$(bash "$ROOT/tools/pg.sh" free-port)" >/dev/null
    URL=$(bash "$ROOT/tools/pg.sh" url "$PGD")
    PGPID=$(head -n 1 "$PGD/data/postmaster.pid")
    DATABASE_URL=$URL "$BIN" --port "$AP" --shards 2 --log-level warn 2>"$OUT/agentd.err" &
    AG_PID=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$AP/ready" >/dev/null && break; sleep 0.05; done
    curl -sf "http://127.0.0.1:$AP/ready" >/dev/null || die "agentd did not become ready: $(cat "$OUT/agentd.err")"
    sql() { psql -X -At "$URL" -c "$1"; }
    wal() { sql "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }
    cpbytes() { sql "SELECT pg_total_relation_size('checkpoints') + pg_total_relation_size('checkpoint_blobs')"; }
    LOAD_OPTS=(-p "$AG_PID" --aux-pid "$(pgrep -d, -P "$PGPID")")
    before_block() { w0=$(wal) c0=$(cpbytes); }
    after_block() { echo "$((($(wal) - w0) / BLOCK)) $((($(cpbytes) - c0) / BLOCK))"; }
    TARGET_DESC="agentd: $BIN ($("$BIN" --version 2>&1 | head -1))
postgres: $(sql 'SHOW server_version') (fsync=$(sql 'SHOW fsync'), synchronous_commit=$(sql 'SHOW synchronous_commit'))"
    HEADER="| turn | WAL bytes/turn | checkpoint bytes/turn | p50 ms | agentd CPU-µs/turn | Postgres CPU-µs/turn | agentd allocations/turn | failed |"
    SEP="|---|---|---|---|---|---|---|---|"
    FOOTER="WAL: pg_current_wal_lsn() before and after the block (everything the cluster wrote meanwhile);
checkpoint bytes: the growth of pg_total_relation_size of checkpoints and checkpoint_blobs."
    ROW='| {t} | {a:,} | {b:,} | {p50:.2f} | {server:.0f} | {aux:.0f} | {allocs} | {failed} |'
    KIND=history
fi

TID=$(curl -sf -X POST "http://127.0.0.1:$AP/threads" -H 'content-type: application/json' -d '{}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["thread_id"])')
turns() { # turns N [agentload options...]: N more turns on the thread
    local n=$1
    shift
    "$LOAD" -s runs.wait -u "http://127.0.0.1:$AP" -c 1 -n "$n" -w 0 --thread "$TID" -q "$@" >/dev/null
}
done_turns=0
IFS=, read -r -a MEASURED <<<"$TURNS"
for t in "${MEASURED[@]}"; do
    pre=$((t - BLOCK))
    [ "$pre" -ge "$done_turns" ] || die "measured turns must be at least $BLOCK apart: $TURNS"
    [ "$pre" -gt "$done_turns" ] && turns $((pre - done_turns))
    log "turns $((pre + 1))..$t"
    before_block
    turns "$BLOCK" "${LOAD_OPTS[@]}" -j "$OUT/turn-$t.json"
    echo "$t $(after_block)" >>"$OUT/rows.txt"
    done_turns=$t
done
STATE=$(curl -sf "http://127.0.0.1:$AP/threads/$TID/state" | wc -c)
{
    echo "# History growth: runs.wait echo on one thread (perf/history.sh${PEER_DIR:+ -P, the JS peer})"
    echo
    echo '```'
    echo "date: $(date -u -d "@$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $(command_line AGENTLOAD "${ARGV[@]}")"
    echo "options: measured turns $TURNS, $BLOCK turns per measured block, one connection"
    echo "git: $(git_desc "$ROOT")"
    machine_desc
    echo "$TARGET_DESC"
    echo "state after the last turn: $STATE bytes (GET /threads/{id}/state)"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo '```'
    echo
    echo "$HEADER"
    echo "$SEP"
    python3 - "$OUT" "$ROW" <<'PY'
import json, sys
out, row = sys.argv[1], sys.argv[2]
for line in open(f"{out}/rows.txt"):
    t, *f = line.split()
    a, b, c, d = (int(x) for x in (f + ["0"] * 4)[:4])
    r = json.load(open(f"{out}/turn-{t}.json"))
    allocs = r.get("allocations", {}).get("per_op")
    print(row.format(t=t, a=a, b=b, c=c, d=d, p50=r["total"]["latency_ms"]["p50"], failed=r["total"]["failed"],
                     server=r.get("server", {}).get("cpu_us", 0), aux=r.get("aux", {}).get("cpu_us", 0),
                     allocs="" if allocs is None else f"{allocs:,.0f}"))
PY
    echo
    echo "Each row: the $BLOCK turns ending at that turn. $FOOTER"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
if [ "$WRITE_RESULTS" = 1 ]; then
    ARCHIVE=$(result_path "$ROOT" "$KIND" "$START_EPOCH")
    cp "$OUT/summary.md" "$ARCHIVE"
    log "written to perf/results/$(basename "$ARCHIVE")"
fi
