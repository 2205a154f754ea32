#!/usr/bin/env bash
# History growth of the JS peer (LangChain's in-memory dev server, ../shared/peer): the scenario of
# history.sh on one thread, TURNS turns of runs.wait echo one after the other. The peer keeps a
# thread's history in memory (and in its .langgraph_api files): at each measured turn, the BLOCK turns
# ending there are timed for the peer's resident memory (its process group) and its files' bytes per
# turn, and its CPU per turn.
#
#   perf/history-peer.sh [-t TURNS,...] [-b BLOCK] [-N] PEER_DIR      (agentload from build/release)
#
# PEER_DIR: where ../shared/peer/install.sh put the peer. -t the measured turns (10,100,1000), -b turns
# per measured block (10). Prints a table under the command, the commit and the machine; unless -N,
# also written to perf/results/<UTC date>-<HHMM>-<commit>-history-peer.md.

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
[ $# -eq 1 ] || usage 2
PEER_DIR=$(cd "$1" && pwd)
PEER_SH=${PEER_SH:-$ROOT/../shared/peer/run-peer.sh}
LOAD=${AGENTLOAD:-$ROOT/build/release/agentload}
[ -x "$PEER_SH" ] || die "$PEER_SH missing (set PEER_SH to the peer's run-peer.sh)"
[ -x "$LOAD" ] || die "$LOAD missing (cmake --build --preset release --target agentload)"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/agentd-history-peer.XXXXXX")
START_EPOCH=$(date +%s)
PORT=$(bash "$ROOT/tools/pg.sh" free-port)
cleanup() {
    "$PEER_SH" stop "$PORT" "$PEER_DIR" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT
"$PEER_SH" start "$PORT" "$PEER_DIR" >"$OUT/start.log" 2>&1 || die "the peer did not start: $(cat "$OUT/start.log")"
PGID=$(cat "$PEER_DIR/run-$PORT/peer.pid")
STATE_DIR=$PEER_DIR/run-$PORT
rss_kb() { ps -o rss= -g "$PGID" | awk '{ s += $1 } END { print s + 0 }'; }
cpu_ticks() { # utime + stime of every process of the group
    local t=0 line st p
    for p in $(ps -o pid= -g "$PGID"); do
        { read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
        read -r -a st <<<"${line##*") "}"
        t=$((t + st[11] + st[12]))
    done
    echo "$t"
}
files_bytes() { du -sb "$STATE_DIR" 2>/dev/null | awk '{ print $1 }'; }
TID=$(curl -sf -X POST "http://127.0.0.1:$PORT/threads" -H 'content-type: application/json' -d '{}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["thread_id"])')
turns() { # turns N [agentload options...]: N more turns on the thread
    local n=$1
    shift
    "$LOAD" -s runs.wait -u "http://127.0.0.1:$PORT" -c 1 -n "$n" -w 0 --thread "$TID" -q "$@" >/dev/null
}
HZ=$(getconf CLK_TCK)
done_turns=0
IFS=, read -r -a MEASURED <<<"$TURNS"
for t in "${MEASURED[@]}"; do
    pre=$((t - BLOCK))
    [ "$pre" -ge "$done_turns" ] || die "measured turns must be at least $BLOCK apart: $TURNS"
    [ "$pre" -gt "$done_turns" ] && turns $((pre - done_turns))
    log "turns $((pre + 1))..$t"
    r0=$(rss_kb) c0=$(cpu_ticks) f0=$(files_bytes)
    turns "$BLOCK" -j "$OUT/turn-$t.json"
    r1=$(rss_kb) c1=$(cpu_ticks) f1=$(files_bytes)
    echo "$t $r1 $(((r1 - r0) * 1024 / BLOCK)) $(((f1 - f0) / BLOCK)) $(((c1 - c0) * 1000000 / HZ / BLOCK))" >>"$OUT/rows.txt"
    done_turns=$t
done
STATE=$(curl -sf "http://127.0.0.1:$PORT/threads/$TID/state" | wc -c)
{
    echo "# History growth of the JS peer: runs.wait echo on one thread (perf/history-peer.sh)"
    echo
    echo '```'
    echo "date: $(date -u -d "@$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $(command_line AGENTLOAD "${ARGV[@]}")"
    echo "options: measured turns $TURNS, $BLOCK turns per measured block, one connection"
    echo "git: $(git_desc "$ROOT")"
    machine_desc
    echo "peer: $(head -c 300 "$OUT/start.log" | tr '\n' ' ')"
    echo "state after the last turn: $STATE bytes (GET /threads/{id}/state)"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo '```'
    echo
    echo "| turn | resident memory kB | memory bytes/turn | .langgraph_api bytes/turn | p50 ms | peer CPU-µs/turn | failed |"
    echo "|---|---|---|---|---|---|---|"
    python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for line in open(f"{out}/rows.txt"):
    t, rss, mem, files, cpu = line.split()
    r = json.load(open(f"{out}/turn-{t}.json"))
    print(f"| {t} | {int(rss):,} | {int(mem):,} | {int(files):,} | {r['total']['latency_ms']['p50']:.2f} | {int(cpu):,} "
          f"| {r['total']['failed']} |")
PY
    echo
    echo "Each row: the $BLOCK turns ending at that turn. Memory: the resident set of the peer's process group"
    echo "(node and its workers) before and after the block, divided by its turns (a garbage collector decides"
    echo "when it shrinks, so single blocks are noisy); files: du of the peer's state directory."
} >"$OUT/summary.md"
cat "$OUT/summary.md"
if [ "$WRITE_RESULTS" = 1 ]; then
    ARCHIVE=$(result_path "$ROOT" history-peer "$START_EPOCH")
    cp "$OUT/summary.md" "$ARCHIVE"
    log "written to perf/results/$(basename "$ARCHIVE")"
fi
