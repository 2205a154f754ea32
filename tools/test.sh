#!/usr/bin/env bash
# Runs every test tier, the way CI does (.ci/run calls this and nothing else):
#
#   1. installs missing Debian packages (tools/deps.sh)
#   2. builds the tsan and debug (ASan+UBSan) presets with clang, then the gcc preset (-O2): both
#      compilers with -Werror; each build also runs the layering check (cmake/check_layers.sh) and
#      compiles every layer header on its own (cmake/checks.cmake)
#   3. installs the Node test dependencies from their lockfiles (npm ci), one directory per SDK line
#   4. starts a throwaway PostgreSQL cluster on a free port and exports DATABASE_URL
#   5. runs `ctest --preset tsan -L tsan`, `ctest --preset gcc -L unit` (the unit tests as gcc
#      compiled them), then `ctest --preset debug` (unit, integration, e2e, fuzz)
#
# The debug run comes last so that CTest's summary is the final output. Exits non-zero on the first
# failing step; the cluster and its directory are removed on every exit.
#
# Environment: JOBS (build parallelism, default nproc), CTEST_PARALLEL_LEVEL (default nproc),
# ASAN_OPTIONS / UBSAN_OPTIONS / TSAN_OPTIONS (defaults below), KEEP_TMP=1 keeps the temp directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

step() {
    printf '\n==> %s\n' "$*" >&2
}

JOBS=${JOBS:-$(nproc)}
export CTEST_PARALLEL_LEVEL=${CTEST_PARALLEL_LEVEL:-$(nproc)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentd-test.XXXXXX")
# Traversable (not listable) by others: the cluster runs as the postgres user when we are root.
chmod 711 "$TMP"
PGDIR=$TMP/pg
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    bash "$ROOT/tools/pg.sh" stop "$PGDIR" || true
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "test.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Debian packages"
bash "$ROOT/tools/deps.sh"

for preset in tsan debug gcc; do
    step "build: $preset"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" -j "$JOBS"
done

# Every directory with a lockfile: the integration tier's, and one per LangGraph SDK line the e2e
# tier runs against (tests/e2e/sdk-<line>/).
for lock in tests/integration/package-lock.json tests/e2e/sdk-*/package-lock.json; do
    [[ -f $lock ]] || continue
    dir=$(dirname "$lock")
    step "npm ci: $dir"
    # The registry can be slow: long timeouts and several retries before giving up.
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=warn \
        --fetch-timeout=600000 --fetch-retries=5 \
        --fetch-retry-mintimeout=10000 --fetch-retry-maxtimeout=120000)
done

# clang 14's TSan (and on some kernels ASan) cannot cope with the 32-bit mmap ASLR entropy of
# newer kernels ("unexpected memory mapping"). Probe with a tiny program; when only a run without
# address randomisation works, run that tier under `setarch -R`.
sanitizer_wrapper() {
    local san=$1 src=$TMP/probe.c exe=$TMP/probe-$1
    printf '#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; pthread_create(&t, 0, f, 0); return pthread_join(t, 0); }\n' >"$src"
    if ! clang -fsanitize="$san" -pthread -o "$exe" "$src" 2>"$TMP/probe.log"; then
        echo "test.sh: cannot build a -fsanitize=$san probe:" >&2
        cat "$TMP/probe.log" >&2
        return 0
    fi
    if "$exe" >/dev/null 2>"$TMP/probe.log"; then
        return 0
    fi
    if setarch "$(uname -m)" -R "$exe" >/dev/null 2>&1; then
        echo "test.sh: -fsanitize=$san needs ASLR off here ($(head -n 1 "$TMP/probe.log")); using setarch -R" >&2
        echo setarch "$(uname -m)" -R
        return 0
    fi
    echo "test.sh: a -fsanitize=$san probe fails even without ASLR:" >&2
    cat "$TMP/probe.log" >&2
}

step "PostgreSQL (throwaway cluster)"
started=0
for _ in 1 2 3; do
    # A port can be taken between free-port and start; try another one.
    PGPORT=$(bash "$ROOT/tools/pg.sh" free-port)
    if bash "$ROOT/tools/pg.sh" start "$PGDIR" "$PGPORT"; then
        started=1
        break
    fi
done
((started)) || { echo "test.sh: cannot start PostgreSQL" >&2; exit 1; }
DATABASE_URL=$(bash "$ROOT/tools/pg.sh" url "$PGDIR" "$PGPORT")
export DATABASE_URL
echo "DATABASE_URL=$DATABASE_URL" >&2

read -r -a tsan_wrap <<<"$(sanitizer_wrapper thread)"
read -r -a asan_wrap <<<"$(sanitizer_wrapper address)"

step "ctest --preset tsan -L tsan"
"${tsan_wrap[@]}" ctest --preset tsan -L tsan

step "ctest --preset gcc -L unit"
ctest --preset gcc -L unit --no-tests=error

step "ctest --preset debug"
"${asan_wrap[@]}" ctest --preset debug --no-tests=error
