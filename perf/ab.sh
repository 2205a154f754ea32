#!/usr/bin/env bash
# A/B of two agentd binaries on runs.wait (echo) at 1 and 64 connections: alternating rounds against
# one private Postgres (a database each), medians of CPU per run for agentd and for Postgres.
#
#   perf/ab.sh [-r ROUNDS] [-d SECONDS] [-N] BIN_A BIN_B      (agentload from build/release)
#
# Prints a table, one row per binary and connection count: runs/s, p50, agentd and Postgres CPU-µs
# per run, under the command, the commit and the machine; unless -N, also written to
# perf/results/<UTC date>-<HHMM>-<commit>-ab.md.

set -euo pipefail
PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
ROUNDS=3
DURATION=8
WRITE_RESULTS=1
ARGV=("$@")
# usage, log, command_line, git_desc, machine_desc, result_path
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"
while getopts "r:d:Nh" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    N) WRITE_RESULTS=0 ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || usage 2
BINS=("$1" "$2")
LOAD=${AGENTLOAD:-$ROOT/build/release/agentload}
[ -x "$LOAD" ] || { echo "ab.sh: $LOAD missing (cmake --build --preset release --target agentload)" >&2; exit 2; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/agentd-ab.XXXXXX")
START_EPOCH=$(date +%s)
chmod 711 "$OUT"
PGD=$OUT/pg
PORT=$(bash "$ROOT/tools/pg.sh" free-port)
AG_PID=
cleanup() {
    [ -n "$AG_PID" ] && { kill -TERM "$AG_PID" 2>/dev/null || true; wait "$AG_PID" 2>/dev/null || true; }
    bash "$ROOT/tools/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash "$ROOT/tools/pg.sh" start "$PGD" "$PORT" >/dev/null
URL=$(bash "$ROOT/tools/pg.sh" url "$PGD" "$PORT")
psql -X -q "$URL" -c "CREATE DATABASE ab0" -c "CREATE DATABASE ab1"
PGPID=$(head -n 1 "$PGD/data/postmaster.pid")
for round in $(seq "$ROUNDS"); do
    for i in 0 1; do
        AP=$(bash "$ROOT/tools/pg.sh" free-port)
        DATABASE_URL=${URL%/postgres}/ab$i "${BINS[$i]}" --port "$AP" --shards 2 --log-level warn 2>"$OUT/agentd$i.err" &
        AG_PID=$!
        for _ in $(seq 200); do curl -sf "http://127.0.0.1:$AP/ready" >/dev/null && break; sleep 0.05; done
        for c in 1 64; do
            "$LOAD" -s runs.wait -u "http://127.0.0.1:$AP" -c "$c" -d "$DURATION" -w 2 -p "$AG_PID" \
                --aux-pid "$(pgrep -d, -P "$PGPID")" -q -j "$OUT/b$i-c$c-r$round.json" >/dev/null || true
        done
        kill -TERM "$AG_PID"
        wait "$AG_PID" || true
        AG_PID=
    done
done
{
    echo "# A/B of two agentd builds on runs.wait echo (perf/ab.sh)"
    echo
    echo '```'
    echo "date: $(date -u -d "@$START_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $(command_line AGENTLOAD "${ARGV[@]}")"
    echo "options: -r $ROUNDS -d $DURATION (2 s warm-up, 2 shards, the binaries alternate in each round)"
    echo "git: $(git_desc "$ROOT")"
    machine_desc
    echo "A: ${BINS[0]} ($("${BINS[0]}" --version 2>&1 | head -1))"
    echo "B: ${BINS[1]} ($("${BINS[1]}" --version 2>&1 | head -1))"
    echo "postgres: $(psql -X -At "$URL" -c 'SHOW server_version'), a database each;" \
        "its CPU is every backend of the cluster"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo '```'
    echo
    echo "| conns | binary | runs/s | p50 ms | agentd CPU-µs/run | Postgres CPU-µs/run | failed (rounds summed) |"
    echo "|---|---|---|---|---|---|---|"
    python3 - "$OUT" "$ROUNDS" "${BINS[@]}" <<'PY'
import json, statistics as st, sys
out, rounds, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for c in (1, 64):
    for i, b in enumerate(bins):
        rs = [json.load(open(f"{out}/b{i}-c{c}-r{r}.json")) for r in range(1, rounds + 1)]
        med = lambda f: st.median(f(r) for r in rs)
        print(f"| {c} | {'AB'[i]} | {med(lambda r: r['total']['ok_per_s']):.1f} "
              f"| {med(lambda r: r['total']['latency_ms']['p50']):.2f} | {med(lambda r: r['server']['cpu_us']):.0f} "
              f"| {med(lambda r: r['aux']['cpu_us']):.0f} | {sum(r['total']['failed'] for r in rs)} |")
PY
    echo
    echo "Medians of the rounds; A and B as above."
} >"$OUT/summary.md"
cat "$OUT/summary.md"
if [ "$WRITE_RESULTS" = 1 ]; then
    ARCHIVE=$(result_path "$ROOT" ab "$START_EPOCH")
    cp "$OUT/summary.md" "$ARCHIVE"
    log "written to perf/results/$(basename "$ARCHIVE")"
fi
