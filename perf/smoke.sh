#!/usr/bin/env bash
# perf/smoke.sh AGENTD AGENTLOAD: the perf suite as a smoke check (ctest perf/agentload-smoke).
# Starts the real agentd (2 shards, port 0) against $DATABASE_URL and runs every agentload scenario
# for a fraction of a second each. It asserts only that each one completes without a failed request,
# never a figure: this is not a timed test. Every scenario must run, v2.session included (agentload
# exits 4 when the server lacks an endpoint: that fails here).
set -euo pipefail

AGENTD=${1:?usage: smoke.sh AGENTD AGENTLOAD}
LOAD=${2:?usage: smoke.sh AGENTD AGENTLOAD}
[ -n "${DATABASE_URL:-}" ] || { echo "smoke.sh: DATABASE_URL is not set (tools/test.sh starts a cluster)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentload-smoke.XXXXXX")
AG_PID=""
cleanup() {
    local rc=$?
    if [ -n "$AG_PID" ]; then
        kill -TERM "$AG_PID" 2>/dev/null || true
        wait "$AG_PID" 2>/dev/null || true
    fi
    [ "$rc" -eq 0 ] || { echo "--- agentd log"; tail -n 40 "$TMP/agentd.log"; } >&2
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

"$AGENTD" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; exit 1; }
"$AGENTD" --host 127.0.0.1 --port 0 --shards 2 --log-level warn >"$TMP/agentd.log" 2>&1 &
AG_PID=$!
PORT=""
for _ in $(seq 1 600); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/agentd.log")
    [ -n "$PORT" ] && break
    kill -0 "$AG_PID" 2>/dev/null || { echo "smoke.sh: agentd exited at start-up" >&2; exit 1; }
    sleep 0.05
done
[ -n "$PORT" ] || { echo "smoke.sh: agentd did not report its port" >&2; exit 1; }
URL=http://127.0.0.1:$PORT
echo "agentd pid $AG_PID on $URL"

failed=0
# run NAME ARGS...: one scenario; exit 0 passes, anything else fails.
run() {
    local name=$1 rc=0
    shift
    echo "=== $name: agentload $*"
    "$LOAD" -u "$URL" -p "$AG_PID" -T 20 -j "$TMP/$name.json" "$@" || rc=$?
    case $rc in
    0) echo "--- $name: ok" ;;
    *)
        echo "--- $name: FAILED (exit $rc)"
        failed=$((failed + 1))
        ;;
    esac
    kill -0 "$AG_PID" 2>/dev/null || { echo "smoke.sh: agentd died during $name" >&2; exit 1; }
}

short=(-d 0.5 -w 0.2)
run ok -s ok -c 4 "${short[@]}"
run threads.create -s threads.create -c 4 "${short[@]}"
run threads.search -s threads.search -c 2 "${short[@]}"
run runs.wait -s runs.wait -c 2 --pool 8 "${short[@]}"
run runs.wait.open -s runs.wait -c 4 -r 40 --pool 8 "${short[@]}"
run runs.stream -s runs.stream -c 2 --pool 8 "${short[@]}"
run mixed -s mixed -c 4 --pool 16 "${short[@]}"
run v2.session -s v2.session -c 1 -n 3 -w 0
run fanout -s fanout --subs 20 --tokens 50 --after 1 -L 60
run fanout.v2 -s fanout.v2 --subs 20 --tokens 50 --after 1 -L 60
run idle -s idle -c 50 --hold 0.2
run sse.idle -s sse.idle --subs 20 --hold 0.2

kill -TERM "$AG_PID"
rc=0
wait "$AG_PID" || rc=$?
AG_PID=""
[ "$rc" -eq 0 ] || { echo "smoke.sh: agentd exited $rc after SIGTERM" >&2; failed=$((failed + 1)); }
if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP/agentd.log"; then
    echo "smoke.sh: sanitizer report in agentd's log" >&2
    failed=$((failed + 1))
fi
[ "$failed" -eq 0 ] || { echo "smoke.sh: $failed scenario(s) failed" >&2; exit 1; }
echo "smoke.sh: every scenario completed without errors"
