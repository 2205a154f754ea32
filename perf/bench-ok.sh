#!/usr/bin/env bash
# perf/bench-ok.sh: GET /ok load matrix, agentd (1 and 2 shards) against nginx `return 200`
# (1 and 2 workers) on the same machine in the same run, over loopback.
#
# For each round, for each scenario (keep-alive, pipelined), for each server in turn
# (agentd-1, agentd-2, nginx-1w, nginx-2w): start the server on a free 127.0.0.1 port, check
# that GET /ok answers {"ok":true}, warm up with wrk, then measure one wrk run while sampling
# server CPU (utime+stime from /proc/PID/stat; for nginx master + workers), wrk's own CPU and
# system-wide CPU (/proc/stat), then stop the server. At the end print medians per scenario and
# server as Markdown, plus a check against the targets in perf/RESULTS.md.
#
# A run whose server dies (or whose server process vanishes) is logged, kept in the output
# directory as *.died.*, and repeated (at most 2 retries), because on a shared machine an
# outside `pkill agentd` can end a run; see perf/RESULTS.md.
#
# Every step is time-bounded (timeout on build, startup, wrk, shutdown) and every process the
# script started is stopped on exit, Ctrl-C or failure. Raw wrk output and server logs stay in
# the output directory (printed at start and end).
#
# usage: perf/bench-ok.sh [-r ROUNDS] [-d SECONDS] [-w WARMUP_SECONDS] [-c CONNS] [-t WRK_THREADS]
#                         [-p DEPTH] [-s "keepalive pipeline"] [-S "agentd-1 agentd-2 nginx-1w nginx-2w"]
#                         [-o OUTDIR]
# defaults: -r 3 -d 10 -w 2 -c 64 -t 2 -p 16, output in a new /tmp/agentd-bench-ok.XXXXXX
# environment: AGENTD=path (use this binary, skip the build), NGINX=nginx binary, WRK=wrk binary.

set -euo pipefail

ROUNDS=3
DURATION=10
WARMUP=2
CONNS=64
THREADS=2
DEPTH=16
SCENARIOS="keepalive pipeline"
SERVERS="agentd-1 agentd-2 nginx-1w nginx-2w"
OUT=""
RETRIES=2

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
NGINX=${NGINX:-nginx}
WRK=${WRK:-wrk}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

while getopts "r:d:w:c:t:p:s:S:o:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    p) DEPTH=$OPTARG ;;
    s) SCENARIOS=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage 2
for v in "$ROUNDS" "$DURATION" "$WARMUP" "$CONNS" "$THREADS" "$DEPTH"; do
    if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
        die "numeric options must be positive integers (got '$v')"
    fi
done
for s in $SCENARIOS; do
    case $s in keepalive | pipeline) ;; *) die "unknown scenario '$s'" ;; esac
done
for s in $SERVERS; do
    case $s in agentd-[1-9]* | nginx-[1-9]*w) ;; *) die "unknown server '$s'" ;; esac
done

for cmd in "$WRK" "$NGINX" curl ss timeout awk sed getconf pgrep; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found (apt-get install wrk nginx-light curl iproute2 procps)"
done

if [ -z "$OUT" ]; then
    OUT=$(mktemp -d /tmp/agentd-bench-ok.XXXXXX)
else
    mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.tsv

# --- processes this script owns; cleanup() stops exactly these PIDs -----------------------------

SRV_PID=""
SRV_NAME=""
SRV_PORT=""
SRV_LOG=""
SRV_EXIT=0
WRK_PID=""

# Stop the current server: SIGTERM, up to 5 s to exit, then SIGKILL to it (and, for nginx, to the
# workers that are still its children). The PID is our unreaped child, so it cannot be reused.
stop_server() {
    local pid=$SRV_PID rc=0 i kids
    [ -n "$pid" ] || return 0
    SRV_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "warning: $SRV_NAME (pid $pid) still alive 5 s after SIGTERM; sending SIGKILL"
        kids=$(pgrep -P "$pid" || true)
        kill -KILL "$pid" 2>/dev/null || true
        for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
    fi
    wait "$pid" 2>/dev/null || rc=$?
    SRV_EXIT=$rc
}

# Stop the wrk wrapper (a subshell) and the timeout+wrk under it (timeout runs in its own
# process group, so a Ctrl-C on the terminal does not reach it).
stop_wrk() {
    local pid=$WRK_PID kids i k left
    [ -n "$pid" ] || return 0
    WRK_PID=""
    kids=$(pgrep -P "$pid" || true)
    for i in $kids; do kill -TERM "$i" 2>/dev/null || true; done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # timeout passes the signal on to wrk and exits once wrk has; give them 3 s.
    for ((i = 0; i < 60; i++)); do
        left=0
        for k in $kids; do kill -0 "$k" 2>/dev/null && left=1; done
        [ "$left" -eq 1 ] || break
        sleep 0.05
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_wrk
    stop_server
    [ "$rc" -eq 0 ] || log "aborted (status $rc); logs in $OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- helpers --------------------------------------------------------------------------------------

# A port below the ephemeral range (so wrk's client sockets never hold it) with no socket at all.
free_port() {
    local p i lo
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$lo" -gt 12000 ] || lo=32768
    for ((i = 0; i < 100; i++)); do
        p=$((10000 + RANDOM % (lo - 10000)))
        if [ -z "$(ss -Htan "sport = :$p")" ]; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# Sum of utime+stime (clock ticks) of the given PIDs; the per-process line already covers all
# threads. Fields 14 and 15, counted after the ")" that closes the command name.
cpu_ticks() {
    local p sum=0 t
    for p in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || return 1
        [ -n "$t" ] || return 1
        sum=$((sum + t))
    done
    echo "$sum"
}

# "busy total" ticks over all CPUs; iowait counts as idle (io_uring waits show up as iowait).
sys_ticks() {
    awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat
}

now() { date +%s.%N; }

# Poll GET /ok until it answers {"ok":true} (bounded), so runs start only on a ready server.
wait_ok() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SRV_PID" 2>/dev/null || return 1
        if [ "$(curl -s --max-time 1 "http://127.0.0.1:$port/ok" 2>/dev/null)" = '{"ok":true}' ]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

start_server() {
    local name=$1 tag=$2 port n dir log
    port=$(free_port)
    SRV_NAME=$name
    SRV_PORT=$port
    log=$OUT/$tag.server.log
    SRV_LOG=$log
    case $name in
    agentd-*)
        n=${name#agentd-}
        "$AGENTD" --host 127.0.0.1 --port "$port" --shards "$n" --log-level warn 2>"$log" >&2 &
        SRV_PID=$!
        ;;
    nginx-*)
        n=${name#nginx-}
        n=${n%w}
        dir=$OUT/$tag.nginx
        mkdir -p "$dir/tmp"
        sed -e "s|@WORKERS@|$n|g" -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" \
            "$PERF_DIR/nginx-ok.conf.in" >"$dir/nginx.conf"
        "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" >"$log" 2>&1 &
        SRV_PID=$!
        ;;
    esac
    if ! wait_ok "$port"; then
        log "$name did not answer GET /ok on port $port; its log ($log):"
        cat "$log" >&2 || true
        die "server start failed"
    fi
    if [ ! -s "$OUT/$name.response.txt" ]; then
        curl -si --max-time 2 "http://127.0.0.1:$port/ok" >"$OUT/$name.response.txt" 2>&1 || true
    fi
}

# agentd's own counters, summed over shards: "loop_turns kernel_entries sqes 2xx non2xx".
agentd_metrics() {
    curl -s --max-time 2 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
        /^agentd_loop_iterations_total/ { l += $NF }
        /^agentd_submit_calls_total/ { e += $NF }
        /^agentd_submitted_sqes_total/ { q += $NF }
        /^agentd_requests_total.*class="2xx"/ { ok += $NF; next }
        /^agentd_requests_total/ { bad += $NF }
        END { printf "%d %d %d %d %d\n", l, e, q, ok, bad }'
}

# PIDs whose CPU counts as server CPU: agentd's process, or nginx master + workers.
server_pids() {
    echo "$SRV_PID"
    case $SRV_NAME in nginx-*) pgrep -P "$SRV_PID" || true ;; esac
}

# run_wrk OUTFILE SECONDS SCENARIO: wrk under timeout, in a background subshell so that signals
# reach our trap at once. The subshell writes wrk's CPU ticks (its cutime+cstime, fields 16-17,
# which hold the reaped timeout and wrk) to OUTFILE.cpu.
run_wrk() {
    local out=$1 secs=$2 scen=$3 rc=0
    local -a args=(-t"$THREADS" -c"$CONNS" -d"${secs}s" --latency)
    [ "$scen" = pipeline ] && args+=(-s "$PERF_DIR/pipeline.lua")
    args+=("http://127.0.0.1:$SRV_PORT/ok")
    [ "$scen" = pipeline ] && args+=(-- "$DEPTH")
    echo "# $WRK ${args[*]}" >"$out"
    (
        r=0
        me=$BASHPID # expanded here: inside the pipeline below it would name the sed process
        timeout -k 5 $((secs + 30)) "$WRK" "${args[@]}" >>"$out" 2>&1 || r=$?
        sed 's/^.*) //' "/proc/$me/stat" | awk '{print $14 + $15}' >"$out.cpu"
        exit "$r"
    ) &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    return "$rc"
}

# Parse a wrk output file into: requests rps p50_ms p99_ms socket_errors non2xx
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return -1
        }
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        END { printf "%d %.2f %.3f %.3f %d %d\n", req, rps, p50, p99, err, non2xx }
    ' "$1"
}

# measure ROUND SCENARIO SERVER TAG: one warmed-up, measured run; appends a row to results.tsv.
# Returns 1 (row not written) if the server died or one of its processes vanished.
measure() {
    local round=$1 scen=$2 srv=$3 tag=$4
    local -a pids
    local c0 c1 s0 s1 t0 t1 w0 w1 wrc=0 alive=yes req rps p50 p99 serr non2xx
    local cpu_us=nan srv_cores=nan wrk_cores=nan sys_cores other_cores=nan wt extra
    local m0="" m1="" req_enter=nan srv_2xx="" srv_bad=0 f

    start_server "$srv" "$tag"
    run_wrk "$OUT/$tag.warmup.txt" "$WARMUP" "$scen" || log "warning: warm-up wrk exited non-zero for $tag"

    case $srv in agentd-*) m0=$(agentd_metrics || true) ;; esac
    mapfile -t pids < <(server_pids)
    c0=$(cpu_ticks "${pids[@]}") || c0=""
    read -r s0 t0 < <(sys_ticks)
    w0=$(now)
    run_wrk "$OUT/$tag.wrk.txt" "$DURATION" "$scen" || wrc=$?
    w1=$(now)
    read -r s1 t1 < <(sys_ticks)
    c1=$(cpu_ticks "${pids[@]}") || c1=""
    kill -0 "$SRV_PID" 2>/dev/null || alive=no
    [ -z "$m0" ] || m1=$(agentd_metrics || true)
    stop_server

    [ "$wrc" -eq 0 ] || log "warning: wrk exited with $wrc for $tag (see $OUT/$tag.wrk.txt)"
    extra=$(grep -v -e 'listening on http' "$SRV_LOG" 2>/dev/null | head -5 || true)
    [ -z "$extra" ] || log "note: $srv wrote to stderr during $tag: $(tr '\n' '|' <<<"$extra")"
    if [ "$alive" = no ] || [ -z "$c0" ] || [ -z "$c1" ]; then
        log "warning: $srv died during $tag (exit status $SRV_EXIT; pids ${pids[*]}); wrk: $(grep -h -e 'requests in' -e 'Socket errors' "$OUT/$tag.wrk.txt" | tr -s ' \n' ' ')"
        for f in "$OUT/$tag".*; do mv "$f" "${f/$tag./$tag.died.}"; done
        return 1
    fi

    read -r req rps p50 p99 serr non2xx < <(parse_wrk "$OUT/$tag.wrk.txt")
    # wrk 4.1 sometimes prints a 99th percentile of 0.00us with pipelining; do not count it.
    if awk -v a="$p50" -v b="$p99" 'BEGIN {exit !(b < a)}'; then
        log "note: $tag: wrk reported p99 $p99 ms < p50 $p50 ms (wrk histogram artefact); p99 left out"
        p99=nan
    fi
    wt=$(cat "$OUT/$tag.wrk.txt.cpu" 2>/dev/null || echo "")
    if [ "$req" -gt 0 ]; then
        cpu_us=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
    fi
    srv_cores=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN {printf "%.2f", d / hz / (b - a)}')
    sys_cores=$(awk -v b=$((s1 - s0)) -v t=$((t1 - t0)) -v n="$NCPU" 'BEGIN {printf "%.2f", t ? b / t * n : 0}')
    if [ -n "$wt" ]; then
        wrk_cores=$(awk -v d="$wt" -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN {printf "%.2f", d / hz / (b - a)}')
        other_cores=$(awk -v s="$sys_cores" -v a="$srv_cores" -v w="$wrk_cores" 'BEGIN {o = s - a - w; printf "%.2f", o < 0 ? 0 : o}')
    fi

    # Requests answered per kernel entry (io_uring_enter) tells how well agentd batched.
    if [ -n "$m0" ] && [ -n "$m1" ]; then
        read -r req_enter srv_2xx srv_bad < <(awk -v a="$m0" -v b="$m1" 'BEGIN {
            split(a, x, " "); split(b, y, " "); e = y[2] - x[2]
            printf "%s %d %d\n", (e > 0 ? sprintf("%.2f", (y[4] - x[4]) / e) : "nan"), y[4] - x[4], y[5] - x[5] }')
        echo "metrics before: $m0 / after: $m1 (loop turns, kernel entries, SQEs, 2xx, non-2xx)" >"$OUT/$tag.metrics.txt"
        [ "$srv_bad" -eq 0 ] || log "note: $tag: agentd counted $srv_bad non-2xx responses"
    fi
    if [ -n "$srv_2xx" ] && [ "$srv_2xx" -lt "$req" ]; then
        log "note: $tag: agentd counted $srv_2xx 2xx responses but wrk completed $req requests"
    fi

    [ "$serr" -eq 0 ] || log "note: $tag: $serr socket errors (see $OUT/$tag.wrk.txt)"
    [ "$non2xx" -eq 0 ] || log "note: $tag: $non2xx non-2xx/3xx responses"
    [ "$SRV_EXIT" = 0 ] || log "note: $srv exited with status $SRV_EXIT after SIGTERM"

    printf '%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$srv" "$round" "$req" "$rps" \
        "$p50" "$p99" "$serr" "$((non2xx + srv_bad))" "$cpu_us" "$srv_cores" "$wrk_cores" "$other_cores" "$sys_cores" \
        "$req_enter" "$SRV_EXIT" >>"$RESULTS"
    log "$tag: $(printf '%.0f' "$rps") req/s, p50 $p50 ms, p99 $p99 ms, $cpu_us CPU-µs/req, $req_enter req/enter; cores busy: server $srv_cores, wrk $wrk_cores, other $other_cores (all $sys_cores of $NCPU)"
}

summary() {
    echo "## GET /ok, $ROUNDS rounds, wrk -t$THREADS -c$CONNS -d${DURATION}s (warm-up ${WARMUP}s), pipelined depth $DEPTH"
    echo
    printf 'Response size with headers:'
    for s in $SERVERS; do printf ' %s %s B;' "$s" "$(wc -c <"$OUT/$s.response.txt" 2>/dev/null || echo '?')"; done
    echo " agentd runs with --log-level warn."
    echo
    echo "Medians over the rounds; runs are listed in round order. CPU-µs/req = server utime+stime (all threads;"
    echo "nginx master + workers) over the measured run / requests wrk completed. Cores busy: server, wrk (its"
    echo "own utime+stime) and everything else on the machine (other processes, kernel threads), out of $NCPU."
    echo "Req per kernel entry: agentd's 2xx responses / io_uring_enter calls (from its /metrics) during the run."
    echo "Pipelined p50/p99 are per batch of $DEPTH (wrk records one latency per completed batch)."
    echo
    awk -F'\t' -v servers="$SERVERS" -v scens="$SCENARIOS" -v threads="$THREADS" -v conns="$CONNS" \
        -v dur="$DURATION" -v depth="$DEPTH" '
        function isort(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        }
        function median(key, c,   a, n, i, v) {
            n = 0
            for (i = 1; i <= cnt[key]; i++) { v = val[key, i, c]; if (v != "nan") a[++n] = v + 0 }
            if (n == 0) return "nan"
            isort(a, n)
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function f(v) { return v == "nan" ? "n/a" : sprintf("%.2f", v) }
        function k(v) { return v == "nan" ? "n/a" : (v >= 1e6 ? sprintf("%.2fM", v / 1e6) : sprintf("%.1fk", v / 1e3)) }
        function verdict(ok) { return ok ? "MET" : "NOT MET" }
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            key = $1 SUBSEP $2; n = ++cnt[key]
            for (c in col) val[key, n, c] = $(col[c])
            errs[key] += $(col["sock_err"]) + $(col["non2xx"])
            if ($(col["exit"]) != "0") bad[key] = bad[key] " " $(col["exit"])
        }
        END {
            ns = split(scens, S, " "); nv = split(servers, V, " ")
            for (i = 1; i <= ns; i++) {
                s = S[i]
                wargs = "-t" threads " -c" conns " -d" dur "s --latency" (s == "pipeline" ? " -s pipeline.lua -- " depth : "")
                printf "### %s (wrk %s)\n\n", (s == "pipeline" ? "pipelined x" depth : "keep-alive"), wargs
                print "| server | req/s median | runs (req/s) | p50 ms | p99 ms | server CPU-µs/req | cores busy: server / wrk / other | req per kernel entry | errors |"
                print "|---|---|---|---|---|---|---|---|---|"
                for (j = 1; j <= nv; j++) {
                    key = s SUBSEP V[j]
                    if (!cnt[key]) continue
                    runs = ""
                    for (r = 1; r <= cnt[key]; r++) runs = runs (r > 1 ? ", " : "") k(val[key, r, "rps"])
                    m[s, V[j]] = median(key, "cpu_us_req"); rp[s, V[j]] = median(key, "rps")
                    printf "| %s | **%s** | %s | %s | %s | **%s** | %s / %s / %s | %s | %s |\n", V[j], k(rp[s, V[j]]), runs,
                        f(median(key, "p50_ms")), f(median(key, "p99_ms")), f(m[s, V[j]]), f(median(key, "srv_cores")),
                        f(median(key, "wrk_cores")), f(median(key, "other_cores")), f(median(key, "req_per_enter")),
                        (errs[key] ? errs[key] : 0) (bad[key] ? ", exit status:" bad[key] : "")
                }
                print ""
            }
            print "### Targets"
            print ""
            for (i = 1; i <= ns; i++) {
                s = S[i]
                for (n = 1; n <= 2; n++) {
                    a = "agentd-" n; g = "nginx-" n "w"
                    if (!((s, a) in m) || !((s, g) in m)) continue
                    if (m[s, a] == "nan" || m[s, g] == "nan" || m[s, g] == 0) continue
                    printf "- %s, %s vs %s: CPU-µs/req %.2f vs %.2f (ratio %.2f): %s\n", s, a, g, m[s, a], m[s, g],
                        m[s, a] / m[s, g], verdict(m[s, a] <= m[s, g])
                }
            }
            if ((("pipeline", "agentd-2") in rp) && rp["pipeline", "agentd-2"] != "nan")
                printf "- pipelined, agentd-2: %s req/s vs the 500k target (ratio %.2f): %s\n", k(rp["pipeline", "agentd-2"]),
                    rp["pipeline", "agentd-2"] / 500000, verdict(rp["pipeline", "agentd-2"] >= 500000)
        }
    ' "$RESULTS"
}

# --- build ----------------------------------------------------------------------------------------

if [ -z "${AGENTD:-}" ]; then
    AGENTD=$ROOT/build/release/agentd
    log "building release (incremental) in $ROOT/build/release"
    if [ ! -f "$ROOT/build/release/CMakeCache.txt" ]; then
        (cd "$ROOT" && timeout 300 cmake --preset release) >"$OUT/build.log" 2>&1 ||
            die "cmake --preset release failed; see $OUT/build.log"
    fi
    (cd "$ROOT" && timeout 900 cmake --build --preset release -j2) >>"$OUT/build.log" 2>&1 ||
        die "cmake --build --preset release failed; see $OUT/build.log"
fi
[ -x "$AGENTD" ] || die "agentd binary '$AGENTD' not found"

# --- run ------------------------------------------------------------------------------------------

nscen=$(wc -w <<<"$SCENARIOS")
nsrv=$(wc -w <<<"$SERVERS")
total_runs=$((ROUNDS * nscen * nsrv))
est=$((total_runs * (WARMUP + DURATION + 2)))
others=$(ps -eo pid=,comm=,args= | awk '$2 ~ /^(agentd|nginx|wrk)$/' || true)

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 -r $ROUNDS -d $DURATION -w $WARMUP -c $CONNS -t $THREADS -p $DEPTH -s '$SCENARIOS' -S '$SERVERS'"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- core net protocol tools 2>/dev/null || echo ' (+ local changes in core/net/protocol/tools)')"
    echo "nproc: $NCPU; kernel: $(uname -r); cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "agentd: $AGENTD ($("$AGENTD" --version 2>&1 | head -1))"
    echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'); wrk: $("$WRK" -v 2>&1 | head -1 | awk '{print $2}')"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "$others" ] || printf 'other agentd/nginx/wrk processes at start (not ours):\n%s\n' "$others"
} | tee "$OUT/env.txt" >&2

log "output: $OUT"
log "$total_runs runs of ${WARMUP}+${DURATION} s; about $((est / 60)) min $((est % 60)) s"
printf 'scenario\tserver\tround\trequests\trps\tp50_ms\tp99_ms\tsock_err\tnon2xx\tcpu_us_req\tsrv_cores\twrk_cores\tother_cores\tsys_cores\treq_per_enter\texit\n' >"$RESULTS"

run_no=0
died=0
for ((round = 1; round <= ROUNDS; round++)); do
    for scen in $SCENARIOS; do
        for srv in $SERVERS; do
            run_no=$((run_no + 1))
            log "[$run_no/$total_runs] round $round, $scen, $srv"
            for ((try = 0; try <= RETRIES; try++)); do
                tag=r$round.$scen.$srv
                [ "$try" -eq 0 ] || tag=$tag.retry$try
                if measure "$round" "$scen" "$srv" "$tag"; then
                    break
                fi
                died=$((died + 1))
                [ "$try" -lt "$RETRIES" ] || die "$srv died $((RETRIES + 1)) times in a row; stopping"
            done
        done
    done
done

summary | tee "$OUT/summary.md"
[ "$died" -eq 0 ] || log "note: $died run(s) were repeated because the server died; see $OUT/*.died.*"
log "done; raw wrk output, server logs and results.tsv in $OUT"
