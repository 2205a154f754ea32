#!/usr/bin/env bash
# Builds agentd (release preset) and serves it on http://127.0.0.1:2024 in the foreground, backed
# by a private PostgreSQL cluster in var/pg (port 5433, or $PGPORT). Ctrl-C or SIGTERM stops agentd
# cleanly, then the cluster. Arguments are passed to agentd, e.g. `tools/run.sh --port 8123 --shards 2`
# (agentd's own defaults give 127.0.0.1:2024; its HOST and PORT variables work here too).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

PGDIR=$ROOT/var/pg
PGPORT=${PGPORT:-5433}

bash "$ROOT/tools/deps.sh"
cmake --preset release >/dev/null
cmake --build --preset release -j "${JOBS:-$(nproc)}"

agentd_pid=
# shellcheck disable=SC2317 # called from the EXIT trap
stop_all() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $agentd_pid ]] && kill -0 "$agentd_pid" 2>/dev/null; then
        kill -TERM "$agentd_pid" 2>/dev/null || true
        wait "$agentd_pid" || rc=$?
    fi
    bash "$ROOT/tools/pg.sh" stop "$PGDIR" || true
    exit "$rc"
}
trap stop_all EXIT
# agentd runs in a process group of its own (set -m), so Ctrl-C reaches only this script, which
# passes the signal on exactly once; agentd then drains and exits, and the cluster stops after it.
# Before agentd runs, a signal simply ends the script (and the EXIT trap stops the cluster).
trap 'if [[ -n $agentd_pid ]]; then kill -INT "$agentd_pid" 2>/dev/null || true; else exit 130; fi' INT
trap 'if [[ -n $agentd_pid ]]; then kill -TERM "$agentd_pid" 2>/dev/null || true; else exit 143; fi' TERM

bash "$ROOT/tools/pg.sh" start "$PGDIR" "$PGPORT"

DATABASE_URL=$(bash "$ROOT/tools/pg.sh" url "$PGDIR" "$PGPORT")
export DATABASE_URL
echo "run.sh: DATABASE_URL=$DATABASE_URL" >&2

set -m
"$ROOT/build/release/agentd" "$@" &
agentd_pid=$!
set +m
# `wait` returns early when a trapped signal arrives; keep waiting until agentd has exited.
status=0
while kill -0 "$agentd_pid" 2>/dev/null; do
    if wait "$agentd_pid"; then status=0; else status=$?; fi
done
agentd_pid=
echo "run.sh: agentd exited with status $status" >&2
exit "$status"
