#!/usr/bin/env bash
# History growth: what a run costs as its thread's conversation grows. One thread, TURNS turns of
# runs.wait echo one after the other (each turn adds two messages to the state); at each measured turn
# the BLOCK turns ending there are timed: WAL bytes and checkpoint-table bytes written per turn, agentd
# and Postgres CPU-µs per turn, agentd allocations per turn.
#
#   perf/history.sh [-t TURNS,...] [-b BLOCK] [-N] [AGENTD]     (default build/release/agentd; agentload from
#                                                               build/release)
#
# -t the measured turns (10,100,1000), -b turns per measured block (10). Prints a table under the
# command, the commit and the machine; unless -N, also written to perf/results/<UTC date>-<HHMM>-<commit>-
# history.md. The JS peer keeps history in memory: it is not measured here.

set -euo pipefail
PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
TURNS=10,100,1000
BLOCK=10
WRITE_RESULTS=1
ARGV=("$@")
# usage, log, command_line, git_desc, machine_desc, result_path
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"
while getopts "t:b:Nh" opt; do
    case $opt in
    t) TURNS=$OPTARG ;;
    b) BLOCK=$OPTARG ;;
    N) WRITE_RESULTS=0 ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage 2
BIN=${1:-$ROOT/build/release/agentd}
LOAD=${AGENTLOAD:-$ROOT/build/release/agentload}
[ -x "$BIN" ] || die "$BIN missing (cmake --build --preset release)"
[ -x "$LOAD" ] || die "$LOAD missing (cmake --build --preset release --target agentload)"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/agentd-history.XXXXXX")
chmod 711 "$OUT"
START_EPOCH=$(date +%s)
PGD=$OUT/pg
PORT=$(bash "$ROOT/tools/pg.sh" free-port)
AG_PID=
cleanup() {
    [ -n "$AG_PID" ] && { kill -TERM "$AG_PID" 2>/dev/null || true; wait "$AG_PID" 2>/dev/null || true; }
    bash "$ROOT/tools/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT
bash "$ROOT/tools/pg.sh" start "$PGD" "$PORT" >/dev/null
URL=$(bash "$ROOT/tools/pg.sh" url "$PGD" "$PORT")
PGPID=$(head -n 1 "$PGD/data/postmaster.pid")
AP=$(bash "$ROOT/tools/pg.sh" free-port)
DATABASE_URL=$URL "$BIN" --port "$AP" --shards 2 --log-level warn 2>"$OUT/agentd.err" &
AG_PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$AP/ready" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$AP/ready" >/dev/null || die "agentd did not become ready: $(cat "$OUT/agentd.err")"
TID=$(curl -sf -X POST "http://127.0.0.1:$AP/threads" -H 'content-type: application/json' -d '{}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["thread_id"])')
sql() { psql -X -At "$URL" -c "$1"; }
wal() { sql "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }
cpbytes() { sql "SELECT pg_total_relation_size('checkpoints')"; }
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
    w0=$(wal)
    c0=$(cpbytes)
    turns "$BLOCK" -p "$AG_PID" --aux-pid "$(pgrep -d, -P "$PGPID")" -j "$OUT/turn-$t.json"
    w1=$(wal)
    c1=$(cpbytes)
    echo "$t $(((w1 - w0) / BLOCK)) $(((c1 - c0) / BLOCK))" >>"$OUT/bytes.txt"
    done_turns=$t
done
STATE=$(curl -sf "http://127.0.0.1:$AP/threads/$TID/state" | wc -c)
{
    echo "# History growth: runs.wait echo on one thread (perf/history.sh)"
    echo
    echo '```'
    echo "date: $(date -u -d "@$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $(command_line AGENTLOAD "${ARGV[@]}")"
    echo "options: measured turns $TURNS, $BLOCK turns per measured block, 2 shards, one connection"
    echo "git: $(git_desc "$ROOT")"
    machine_desc
    echo "agentd: $BIN ($("$BIN" --version 2>&1 | head -1))"
    echo "postgres: $(sql 'SHOW server_version') (fsync=$(sql 'SHOW fsync'), synchronous_commit=$(sql 'SHOW synchronous_commit'))"
    echo "state after the last turn: $STATE bytes (GET /threads/{id}/state)"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo '```'
    echo
    echo "| turn | WAL bytes/turn | checkpoints table bytes/turn | p50 ms | agentd CPU-µs/turn | Postgres CPU-µs/turn | agentd allocations/turn | failed |"
    echo "|---|---|---|---|---|---|---|---|"
    python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for line in open(f"{out}/bytes.txt"):
    t, wal, cp = line.split()
    r = json.load(open(f"{out}/turn-{t}.json"))
    allocs = r.get("allocations", {}).get("per_op")
    print(f"| {t} | {int(wal):,} | {int(cp):,} | {r['total']['latency_ms']['p50']:.2f} | {r['server']['cpu_us']:.0f} "
          f"| {r['aux']['cpu_us']:.0f} | {'' if allocs is None else f'{allocs:,.0f}'} | {r['total']['failed']} |")
PY
    echo
    echo "Each row: the $BLOCK turns ending at that turn. WAL: pg_current_wal_lsn() before and after the block"
    echo "(everything the cluster wrote meanwhile); checkpoints table: pg_total_relation_size growth."
} >"$OUT/summary.md"
cat "$OUT/summary.md"
if [ "$WRITE_RESULTS" = 1 ]; then
    ARCHIVE=$(result_path "$ROOT" history "$START_EPOCH")
    cp "$OUT/summary.md" "$ARCHIVE"
    log "written to perf/results/$(basename "$ARCHIVE")"
fi
