# perf/lib.sh: what the benchmark scripts share (suite.sh, soak.sh, bench-pg.sh and side.sh): usage,
# log and die, and the measurement helpers of runs next to a Postgres cluster. Sourced, not run (once:
# sourcing it again does nothing). The measurement helpers need PMPID (the postmaster's pid) and
# QUIET_WAIT (seconds).
[ -z "${AG_PERF_LIB:-}" ] || return 0
AG_PERF_LIB=1

# The calling script's header comment (its lines from 2 to the first blank one), then exit $1.
usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit "${1:-0}"
}
# fd 3 is the script's stderr, so that messages from a trap still reach the terminal while a
# command's output is redirected.
exec 3>&2
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&3; }
die() {
    log "error: $*"
    exit 1
}

# "busy total" CPU ticks of the whole machine (iowait counts as idle).
sys_ticks() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat; }

# CPU ticks of the cluster: the postmaster with its reaped children plus its live children.
pg_ticks() {
    local total=0 f line st
    for f in /proc/[0-9]*/stat; do
        # read, not cat: no process per sample, so sampling adds next to no CPU of its own
        { read -r line <"$f"; } 2>/dev/null || continue
        # After "pid (comm) ": st[0] is field 3 (state), st[1] the ppid, st[11..14] utime, stime,
        # cutime, cstime (fields 14-17).
        read -r -a st <<<"${line##*") "}"
        if [ "${f#/proc/}" = "$PMPID/stat" ]; then
            total=$((total + st[11] + st[12] + st[13] + st[14]))
        elif [ "${st[1]}" = "$PMPID" ]; then
            total=$((total + st[11] + st[12]))
        fi
    done
    echo "$total"
}

# Waits until the machine is idle (< 20% busy in each of 3 consecutive one-second samples: another
# benchmark's short pauses between its runs do not count), at most QUIET_WAIT seconds. Sets IDLE to
# the busy fraction of the last sample ("" with QUIET_WAIT 0: no wait). (No subshell, so a signal
# reaches cleanup within a second.)
IDLE=""
wait_quiet() {
    local start=$SECONDS b0 t0 b1 t1 busy calm=0 said=0
    IDLE=""
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    read -r b0 t0 < <(sys_ticks)
    while :; do
        sleep 1
        read -r b1 t1 < <(sys_ticks)
        busy=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", (t > 0) ? b / t : 0 }')
        b0=$b1 t0=$t1
        if awk -v x="$busy" 'BEGIN { exit !(x < 0.20) }'; then
            calm=$((calm + 1))
        else
            calm=0
        fi
        if ((calm >= 3 || SECONDS - start >= QUIET_WAIT)); then
            ((calm >= 3)) || log "  machine still busy ($busy) after ${QUIET_WAIT}s; running anyway"
            IDLE=$busy
            return
        fi
        if ((said == 0 && SECONDS - start >= 5)); then
            log "  machine busy ($busy): waiting for 3 idle seconds (at most ${QUIET_WAIT}s)"
            said=1
        fi
    done
}

# --- what a result file records about its run ------------------------------------------------------

# quote_args ARG...: the arguments as they can be typed again in bash (single quotes where needed).
quote_args() {
    local a out=""
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            out+=" $a"
        else
            out+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    echo "${out# }"
}

# command_line "VAR ..." ARG...: the command that started the calling script, as it can be typed
# again from the repository root: those of the named environment variables that were exported to it,
# then perf/SCRIPT and ARG... (pass the script's own "$@").
command_line() {
    local vars=$1 v val out=""
    shift
    for v in $vars; do
        val=$(printenv "$v") && out+="$(quote_args "$v=$val") "
    done
    echo "${out}perf/$(basename "$0")${1+ $(quote_args "$@")}"
}

# git_desc ROOT: the commit checked out in ROOT, in full, with " (+ local changes)" when the build's
# sources differ from it; "?" outside a git work tree.
git_desc() {
    local h
    h=$(git -C "$1" rev-parse HEAD 2>/dev/null) || { echo '?'; return 0; }
    git -C "$1" diff --quiet HEAD -- core net runtime protocol persist graph server tools perf/agentload 2>/dev/null ||
        h+=" (+ local changes)"
    echo "$h"
}

# machine_desc: the machine, one "key: value" line each (cpu, memory, kernel).
machine_desc() {
    echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) vCPU"
    echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME"), RLIMIT_NOFILE $(ulimit -Hn)"
}

# pg_desc SETTINGS TRANSPORT: the Postgres of a run from the settings.txt that side.sh's start_cluster
# (or bench-pg.sh) wrote: its version, the transport and the durability settings.
pg_desc() {
    echo "$(sed -n 's/^server_version=//p' "$1") over $2" \
        "($(grep -E '^(synchronous_commit|fsync|shared_buffers)=' "$1" | paste -sd' '))"
}

# result_path ROOT NAME [EPOCH]: where a run's result file goes, perf/results/<UTC date>-<HHMM>-<short
# commit>-NAME.md, for a run started at EPOCH seconds (default now). The directory is created.
result_path() {
    local stamp
    stamp=$(date -u -d "@${3:-$(date +%s)}" +%Y-%m-%d-%H%M)
    mkdir -p "$1/perf/results"
    echo "$1/perf/results/$stamp-$(git -C "$1" rev-parse --short HEAD 2>/dev/null || echo nogit)-$2.md"
}
