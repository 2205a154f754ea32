#!/usr/bin/env bash
# perf/bench-threads.sh: POST /threads (create) and POST /threads/search (metadata filter over a
# seeded table) at 1 and 64 connections, agentd against the JS peer (@langchain/langgraph-api, from
# /work/shared/peer), on the same machine in the same run, over loopback.
#
# Steps: build the release preset; start a private Postgres with tools/pg.sh (its own directory and
# port, unix socket) and apply the schema with `agentd migrate`; then for each round, for each
# server (the order alternates between rounds):
#   create  for each connection count C: a fresh server (agentd: TRUNCATE threads, CHECKPOINT,
#           start; peer: run-peer.sh start, which wipes its store), wrk warm-up, measured wrk run of
#           POST /threads {"metadata":{"user":"u<i%1000>","kind":"k<i%7>"}} (perf/threads.lua).
#   search  a fresh server seeded with N threads of that same metadata through its own API
#           (POST /threads, 32 concurrent requests from node; agentd then gets VACUUM ANALYZE +
#           CHECKPOINT, the state autovacuum reaches within a minute), a check that the seed is
#           complete and that the search answers 10 threads of user u42, then for each C a wrk
#           warm-up and a measured run of POST /threads/search {"metadata":{"user":"u42"},"limit":10}.
# Every measured run records: wrk req/s, p50/p99 (--latency), the status of every response (counted
# by the wrk script; anything but 2xx is an error), CPU per request of the server (agentd: its
# process; peer: every process of its process group) and of Postgres (postmaster + children, from
# /proc: the honest total for agentd is the sum), wrk's CPU and the rest of the machine ("other"),
# Postgres commits (pg_stat_database.xact_commit), WAL bytes and WAL syncs (pg_stat_wal) per
# request, and agentd's /metrics (statements per pipeline group = rows per commit). Medians of the
# rounds, ratios agentd/peer and the check against the targets (create at 64 connections: agentd
# >= 10x the peer's req/s, agentd p99 < 10 ms) are printed as Markdown at the end.
#
# usage: perf/bench-threads.sh [-r ROUNDS] [-d SECONDS] [-w WARMUP] [-c "1 64"] [-n SEED_THREADS]
#                              [-s SHARDS] [-C DB_CONNS] [-S "agentd peer"] [-x "create search"]
#                              [-P PEER_DIR] [-g "name=value ..."] [-q QUIET_WAIT] [-o OUTDIR]
#   -r rounds (3)    -d measured seconds per run (10)    -w warm-up seconds (2)
#   -c connection counts ("1 64"; wrk -t1 for 1, -t2 otherwise, --timeout 30s)
#   -n threads seeded before the search runs (100000)    -s agentd shards (2)
#   -C agentd's database.connections_per_shard (through a --config file; default: agentd's own, 2)
#   -S servers ("agentd peer")    -x scenarios ("create search")
#   -P where the peer is installed (default $PEER_DIR, else ~/.cache/agentd-peer; installed there
#      with /work/shared/peer/install.sh DIR v2 when missing, which needs npm and the registry)
#   -g extra Postgres settings for this run, applied with ALTER SYSTEM + reload (reloadable,
#      durable ones only: fsync, synchronous_commit and full_page_writes cannot be changed here)
#   -q seconds to wait (at most) for an idle machine before each measured point (8)
#   -o output directory (default a new /tmp/agentd-bench-threads.XXXXXX)
# environment: SKIP_BUILD=1 or AGENTD=binary (no build), PG_BIN (default /usr/lib/postgresql/15/bin),
#   PEER_LOG_LEVEL (default warn, like agentd's --log-level warn: at info both log every request),
#   PEER_SRC (default /work/shared/peer).
# Raw wrk output, server logs, results.tsv and summary.md stay in the output directory. Every
# process and the cluster the script started are stopped on exit, Ctrl-C or failure.

set -euo pipefail

ROUNDS=3
DURATION=10
WARMUP=2
CONNS_LIST="1 64"
SEED=100000
SHARDS=2
DB_CONNS=""
SERVERS="agentd peer"
SCENARIOS="create search"
PEER_DIR=${PEER_DIR:-$HOME/.cache/agentd-peer}
PG_EXTRA=""
QUIET_WAIT=8
OUT=""
SEED_CONC=32

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_DIR/.." && pwd)
PEER_SRC=${PEER_SRC:-/work/shared/peer}
PEER_LOG_LEVEL=${PEER_LOG_LEVEL:-warn}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

# usage, log, die
# shellcheck source=perf/lib.sh
. "$PERF_DIR/lib.sh"
# shellcheck source=perf/side.sh
. "$PERF_DIR/side.sh"

while getopts "r:d:w:c:n:s:C:S:x:P:g:q:o:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    c) CONNS_LIST=$OPTARG ;;
    n) SEED=$OPTARG ;;
    s) SHARDS=$OPTARG ;;
    C) DB_CONNS=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    x) SCENARIOS=$OPTARG ;;
    P) PEER_DIR=$OPTARG ;;
    g) PG_EXTRA=$OPTARG ;;
    q) QUIET_WAIT=$OPTARG ;;
    o) OUT=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage 2
for v in "$ROUNDS" "$DURATION" "$SEED" "$SHARDS" $DB_CONNS $CONNS_LIST; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "numeric options must be positive integers (got '$v')"
done
[[ $WARMUP =~ ^[0-9]+$ && $QUIET_WAIT =~ ^[0-9]+$ ]] || die "-w and -q take whole numbers"
for s in $SERVERS; do case $s in agentd | peer) ;; *) die "unknown server '$s'" ;; esac; done
for s in $SCENARIOS; do case $s in create | search) ;; *) die "unknown scenario '$s'" ;; esac; done
for kv in $PG_EXTRA; do
    [[ $kv =~ ^[a-z_]+=[^=]+$ ]] || die "-g takes name=value pairs (got '$kv')"
    case ${kv%%=*} in
    fsync | synchronous_commit | full_page_writes) die "-g: ${kv%%=*} stays as tools/pg.sh sets it (durability)" ;;
    esac
done
for cmd in wrk psql node curl timeout awk sort getconf cmake setsid pgrep jq; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found (apt-get install wrk postgresql-client nodejs curl jq cmake procps)"
done

if [ -z "$OUT" ]; then
    OUT=$(mktemp -d /tmp/agentd-bench-threads.XXXXXX)
else
    mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.tsv
PGDIR=$OUT/pg
log "output in $OUT"

# --- processes this script owns; cleanup() stops exactly these ------------------------------------

AG_PID=""      # agentd (our child)
PEER_PORT=""   # the peer, started with run-peer.sh (its own process group, pid file in PEER_DIR)
WRK_PID=""     # the wrk wrapper subshell
SEED_PID=""    # the node seeding client
CLUSTER_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_wrk
    if [ -n "$SEED_PID" ]; then
        kill -TERM "$SEED_PID" 2>/dev/null || true
        wait "$SEED_PID" 2>/dev/null || true
    fi
    stop_agentd
    stop_peer
    stop_cluster
    [ "$rc" -eq 0 ] || log "aborted (status $rc); logs in $OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- build, peer install ---------------------------------------------------------------------------

if [ -n "${AGENTD:-}" ]; then
    :
elif [ "${SKIP_BUILD:-0}" = 1 ]; then
    AGENTD=$ROOT/build/release/agentd
else
    AGENTD=$ROOT/build/release/agentd
    log "building the release preset"
    (cd "$ROOT" && timeout 600 cmake --preset release >"$OUT/build.log" 2>&1 &&
        timeout 1800 cmake --build --preset release -j2 --target agentd >>"$OUT/build.log" 2>&1) || {
        tail -n 30 "$OUT/build.log" >&2
        die "build failed (log: $OUT/build.log)"
    }
fi
[ -x "$AGENTD" ] || die "agentd binary '$AGENTD' not found"

if [[ " $SERVERS " == *" peer "* ]] && [ ! -x "$PEER_DIR/node_modules/.bin/langgraphjs" ]; then
    log "installing the JS peer into $PEER_DIR ($PEER_SRC/install.sh DIR v2; needs the npm registry)"
    timeout 900 "$PEER_SRC/install.sh" "$PEER_DIR" v2 >"$OUT/peer-install.log" 2>&1 || {
        tail -n 20 "$OUT/peer-install.log" >&2
        die "peer install failed (log: $OUT/peer-install.log)"
    }
fi

# --- cluster and servers (perf/side.sh) ------------------------------------------------------------

start_cluster

# run_wrk OUTFILE SECONDS SCENARIO CONNS: wrk under timeout in a background subshell (so signals
# reach our trap at once); the subshell writes wrk's CPU ticks (its cutime+cstime) to OUTFILE.cpu.
run_wrk() {
    local out=$1 secs=$2 scen=$3 c=$4 t rc=0
    t=$((c < 2 ? 1 : 2))
    local -a args=(-t"$t" -c"$c" -d"${secs}s" --timeout 30s --latency -s "$PERF_DIR/threads.lua"
        "http://127.0.0.1:$SRV_PORT" -- "$scen" "$t")
    echo "# wrk ${args[*]}" >"$out"
    (
        r=0
        me=$BASHPID
        timeout -k 5 $((secs + 60)) wrk "${args[@]}" >>"$out" 2>"$out.stderr" || r=$?
        sed 's/^.*) //' "/proc/$me/stat" | awk '{print $14 + $15}' >"$out.cpu"
        exit "$r"
    ) &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    return "$rc"
}

# Parses a wrk output file: "requests rps p50_ms p99_ms socket_errors statuses_2xx statuses_other".
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
        $1 == "STATUS" { if ($2 >= 200 && $2 < 300) ok += $3; else bad += $3 }
        END { printf "%d %.2f %.3f %.3f %d %d %d\n", req, rps, p50, p99, err, ok, bad }
    ' "$1"
}

printf 'server\tround\tscenario\tconns\trequests\trps\tp50_ms\tp99_ms\tsock_err\tnon2xx\tsrv_cpu_us\tpg_cpu_us\ttotal_cpu_us\tsrv_cores\tpg_cores\twrk_cores\tother_cores\treq_per_commit\twal_bytes_req\treq_per_walsync\tstmts_per_group\tdb_errors\n' >"$RESULTS"

# measure ROUND SCENARIO CONNS TAG: warm-up, then one measured run on the running server; appends a
# row to results.tsv.
measure() {
    local round=$1 scen=$2 c=$3 tag=$4
    local -a pids
    local c0 c1 p0 p1 s0 t0 s1 t1 w0 w1 g0 g1 m0="" m1="" wrc=0 wt
    local req rps p50 p99 serr ok bad
    if [ "$WARMUP" -gt 0 ]; then
        run_wrk "$OUT/$tag.warmup.txt" "$WARMUP" "$scen" "$c" || log "  warning: warm-up wrk exited non-zero ($tag)"
    fi
    wait_server_idle
    wait_quiet # >= 2 s, unless -q is 0 or 1
    [ "$QUIET_WAIT" -ge 2 ] || sleep 1.5 # let the backends flush their statistics (see pg_counters)
    g0=$(pg_counters)
    [ "$SRV" != agentd ] || m0=$(agentd_metrics) || m0=""
    mapfile -t pids < <(server_pids)
    c0=$(cpu_ticks "${pids[@]}")
    p0=$(pg_ticks)
    read -r s0 t0 < <(sys_ticks)
    w0=$(now)
    run_wrk "$OUT/$tag.wrk.txt" "$DURATION" "$scen" "$c" || wrc=$?
    w1=$(now)
    read -r s1 t1 < <(sys_ticks)
    p1=$(pg_ticks)
    c1=$(cpu_ticks "${pids[@]}")
    [ "$SRV" != agentd ] || m1=$(agentd_metrics) || m1=""
    sleep 1.5
    g1=$(pg_counters)
    server_alive || die "$SRV died during $tag (log in $OUT)"
    [ "$wrc" -eq 0 ] || log "  warning: wrk exited with $wrc ($tag; see $OUT/$tag.wrk.txt)"
    [ ! -s "$OUT/$tag.wrk.txt.stderr" ] || log "  wrk stderr ($tag): $(head -c 300 "$OUT/$tag.wrk.txt.stderr" | tr '\n' '|')"

    read -r req rps p50 p99 serr ok bad < <(parse_wrk "$OUT/$tag.wrk.txt")
    wt=$(cat "$OUT/$tag.wrk.txt.cpu" 2>/dev/null || echo 0)
    [ "$((ok + bad))" -ge "$req" ] || log "  warning: $tag: the wrk script saw $((ok + bad)) responses, wrk counted $req"
    echo "pg before: $g0 / after: $g1 (xact_commit wal_bytes wal_sync); agentd before: $m0 / after: $m1 (2xx non2xx db_queries db_groups db_errors db_rejected)" >"$OUT/$tag.counters.txt"
    local row
    row=$(awk -v req="$req" -v dc=$((c1 - c0)) -v dp=$((p1 - p0)) -v ds=$((s1 - s0)) -v dt=$((t1 - t0)) \
        -v wt="$wt" -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" -v n="$NCPU" -v g0="$g0" -v g1="$g1" \
        -v m0="$m0" -v m1="$m1" -v srv="$SRV" 'BEGIN {
        secs = b - a; tick = 1e6 / hz
        split(g0, x, " "); split(g1, y, " ")
        commits = y[1] - x[1]; wal = y[2] - x[2]; syncs = y[3] - x[3]
        su = req ? dc * tick / req : 0; pu = req ? dp * tick / req : 0
        sys = dt ? ds / dt * n : 0
        sc = dc / hz / secs; pc = dp / hz / secs; wc = wt / hz / secs
        oc = sys - sc - pc - wc; if (oc < 0) oc = 0
        spg = "-"; dberr = "-"
        if (srv == "agentd" && m0 != "" && m1 != "") {
            split(m0, p, " "); split(m1, q, " ")
            spg = (q[4] > p[4]) ? sprintf("%.2f", (q[3] - p[3]) / (q[4] - p[4])) : "-"
            dberr = (q[5] - p[5]) + (q[6] - p[6])
        }
        printf "%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\n", su, (srv == "agentd" ? pu : 0),
            su + (srv == "agentd" ? pu : 0), sc, pc, wc, oc,
            (srv == "agentd" && commits > 0) ? sprintf("%.2f", req / commits) : "-",
            (srv == "agentd" && req) ? sprintf("%.0f", wal / req) : "-",
            (srv == "agentd" && syncs > 0) ? sprintf("%.2f", req / syncs) : "-", spg, dberr }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SRV" "$round" "$scen" "$c" "$req" "$rps" "$p50" "$p99" \
        "$serr" "$bad" "$row" >>"$RESULTS"
    local f
    IFS=$'\t' read -r -a f <<<"$row"
    log "  $tag: $(printf '%.0f' "$rps") req/s, p50 $p50 ms, p99 $p99 ms, non-2xx $bad, socket errors $serr; CPU µs/req server ${f[0]} + Postgres ${f[1]}; cores server ${f[3]} pg ${f[4]} wrk ${f[5]} other ${f[6]}; req/commit ${f[7]}, stmts/group ${f[10]}"
}

# Seeds N threads through the running server's POST /threads (node, SEED_CONC requests in flight);
# metadata {"user":"u<i%1000>","kind":"k<i%7>"} for i = 0..N-1.
seed() {
    local tag=$1 rc=0
    cat >"$OUT/seed.mjs" <<'EOF'
import http from 'node:http';
const [port, nStr, concStr] = process.argv.slice(2);
const n = +nStr, conc = +concStr;
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const statuses = {};
let next = 0, bad = 0;
function one(i) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ metadata: { user: 'u' + (i % 1000), kind: 'k' + (i % 7) } });
    const req = http.request({ host: '127.0.0.1', port, path: '/threads', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (res.statusCode !== 200) text += d; });
      res.on('end', () => {
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        if (res.statusCode !== 200 && bad++ < 3) console.error('seed: HTTP', res.statusCode, text.slice(0, 200));
        resolve();
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
async function worker() { while (next < n) await one(next++); }
const t0 = Date.now();
await Promise.all(Array.from({ length: conc }, worker));
agent.destroy();
const s = (Date.now() - t0) / 1000;
console.log(JSON.stringify({ n, statuses, seconds: s, per_second: Math.round(n / s) }));
process.exit(bad ? 1 : 0);
EOF
    timeout 900 node "$OUT/seed.mjs" "$SRV_PORT" "$SEED" "$SEED_CONC" >"$OUT/$tag.seed.txt" 2>&1 &
    SEED_PID=$!
    wait "$SEED_PID" || rc=$?
    SEED_PID=""
    [ "$rc" -eq 0 ] || {
        cat "$OUT/$tag.seed.txt" >&2
        die "seeding $SRV failed"
    }
    log "  seeded: $(cat "$OUT/$tag.seed.txt")"
}

# Checks the seeded server: N threads, N/1000 of them for user u42, and a search answer of 10 (or
# all, if fewer) threads of user u42, newest first.
check_seed() {
    local tag=$1 total u42 ans want=$(((SEED + 999 - 42) / 1000))
    if [ "$SRV" = agentd ]; then
        psql_q -c "VACUUM ANALYZE threads" -c "CHECKPOINT" >/dev/null
        total=$(psql_q -c "SELECT count(*) FROM threads")
        u42=$(psql_q -c "SELECT count(*) FROM threads WHERE metadata @> '{\"user\":\"u42\"}'")
    else
        total=$(curl -s --max-time 30 -XPOST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$SRV_PORT/threads/count")
        u42=$(curl -s --max-time 30 -XPOST -H 'content-type: application/json' -d '{"metadata":{"user":"u42"}}' "http://127.0.0.1:$SRV_PORT/threads/count")
    fi
    if [ "$total" != "$SEED" ] || [ "$u42" != "$want" ]; then
        die "$SRV after seeding: $total threads ($SEED expected), $u42 of user u42 ($want expected)"
    fi
    ans=$(curl -s --max-time 30 -XPOST -H 'content-type: application/json' -d '{"metadata":{"user":"u42"},"limit":10}' \
        "http://127.0.0.1:$SRV_PORT/threads/search" | tee "$OUT/$tag.search-answer.json" |
        jq -r 'if type == "array" then "\(length) \([.[] | select(.metadata.user == "u42")] | length) \((map(.created_at) | . == (sort | reverse)))" else "not-an-array" end' 2>&1) || true
    local n=$((want < 10 ? want : 10))
    [ "$ans" = "$n $n true" ] || die "$SRV search answer is not $n threads of u42, newest first (got '$ans'; see $OUT/$tag.search-answer.json)"
}

# --- run -------------------------------------------------------------------------------------------

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    # shellcheck disable=SC2016 # the single quotes are literal text around the expanded value
    echo "command: $0 -r $ROUNDS -d $DURATION -w $WARMUP -c '$CONNS_LIST' -n $SEED -s $SHARDS${DB_CONNS:+ -C $DB_CONNS} -S '$SERVERS' -x '$SCENARIOS'${PG_EXTRA:+ -g '$PG_EXTRA'}"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- core net protocol persist 2>/dev/null || echo ' (+ local changes in core/net/protocol/persist)')"
    echo "nproc: $NCPU; kernel: $(uname -r); cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); mem: $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "agentd: $AGENTD ($("$AGENTD" --version 2>&1 | head -1)), --shards $SHARDS --log-level warn, database.connections_per_shard ${DB_CONNS:-default (2)}; Postgres over $TRANSPORT"
    if [[ " $SERVERS " == *" peer "* ]]; then
        echo "peer: $(node -e 'for (const p of ["@langchain/langgraph-api","@langchain/langgraph-cli","@langchain/langgraph"]) process.stdout.write(p + " " + require(process.argv[1] + "/node_modules/" + p + "/package.json").version + "; ")' "$PEER_DIR")node $(node --version), LOG_LEVEL=$PEER_LOG_LEVEL"
    fi
    echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}'); $(grep '^server_version' "$OUT/settings.txt")"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt" >&3

START=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
    order=$SERVERS
    if ((round % 2 == 0)); then order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' '); fi
    for srv in $order; do
        for scen in $SCENARIOS; do
            case $scen in
            create)
                for c in $CONNS_LIST; do
                    tag=$srv-r$round-create-c$c
                    log "round $round: $srv, POST /threads, $c connection(s)"
                    start_server "$srv" "$tag"
                    measure "$round" create "$c" "$tag"
                    stop_server "$tag"
                done
                ;;
            search)
                tag=$srv-r$round-search
                log "round $round: $srv, seeding $SEED threads"
                start_server "$srv" "$tag"
                seed "$tag"
                check_seed "$tag"
                for c in $CONNS_LIST; do
                    log "round $round: $srv, POST /threads/search over $SEED threads, $c connection(s)"
                    measure "$round" search "$c" "$tag-c$c"
                done
                stop_server "$tag"
                ;;
            esac
        done
    done
done
log "measurements took $((SECONDS - START)) s"

# --- summary ---------------------------------------------------------------------------------------

summary() {
    awk -F'\t' -v servers="$SERVERS" -v scens="$SCENARIOS" -v conns="$CONNS_LIST" -v seed="$SEED" '
        function isort(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        }
        function median(key, c,   a, n, i, v) {
            n = 0
            for (i = 1; i <= cnt[key]; i++) { v = val[key, i, c]; if (v != "-" && v != "nan") a[++n] = v + 0 }
            if (n == 0) return "-"
            isort(a, n)
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function f(v, p) { return v == "-" ? "-" : sprintf("%." p "f", v) }
        function k(v) { return v == "-" ? "-" : (v >= 1e4 ? sprintf("%.1fk", v / 1e3) : sprintf("%.0f", v)) }
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            key = $(col["scenario"]) SUBSEP $(col["conns"]) SUBSEP $(col["server"]); n = ++cnt[key]
            for (c in col) val[key, n, c] = $(col[c])
            errs[key] += $(col["sock_err"]) + $(col["non2xx"])
        }
        END {
            ns = split(scens, S, " "); nv = split(servers, V, " "); nc = split(conns, C, " ")
            print "| scenario | conns | server | req/s median | runs (req/s) | p50 ms | p99 ms | server CPU-µs/req | Postgres CPU-µs/req | total CPU-µs/req | cores: server / Postgres / wrk / other | req per commit | req per WAL sync | WAL B/req | errors |"
            print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            for (i = 1; i <= ns; i++) for (j = 1; j <= nc; j++) for (l = 1; l <= nv; l++) {
                key = S[i] SUBSEP C[j] SUBSEP V[l]
                if (!cnt[key]) continue
                runs = ""
                for (r = 1; r <= cnt[key]; r++) runs = runs (r > 1 ? ", " : "") k(val[key, r, "rps"])
                rps[key] = median(key, "rps"); p99[key] = median(key, "p99_ms")
                printf "| %s | %s | %s | **%s** | %s | %s | %s | %s | %s | **%s** | %s / %s / %s / %s | %s | %s | %s | %d |\n",
                    (S[i] == "create" ? "POST /threads" : "POST /threads/search (" seed ")"), C[j], V[l], k(rps[key]), runs,
                    f(median(key, "p50_ms"), 2), f(p99[key], 2), f(median(key, "srv_cpu_us"), 0),
                    (V[l] == "agentd" ? f(median(key, "pg_cpu_us"), 0) : "-"), f(median(key, "total_cpu_us"), 0),
                    f(median(key, "srv_cores"), 2), (V[l] == "agentd" ? f(median(key, "pg_cores"), 2) : "-"),
                    f(median(key, "wrk_cores"), 2), f(median(key, "other_cores"), 2),
                    f(median(key, "req_per_commit"), 1), f(median(key, "req_per_walsync"), 1), f(median(key, "wal_bytes_req"), 0),
                    errs[key]
            }
            print ""
            print "Ratios agentd / peer (medians):"
            print ""
            print "| scenario | conns | req/s ratio | total CPU-µs/req peer / agentd (incl. Postgres) |"
            print "|---|---|---|---|"
            for (i = 1; i <= ns; i++) for (j = 1; j <= nc; j++) {
                a = S[i] SUBSEP C[j] SUBSEP "agentd"; p = S[i] SUBSEP C[j] SUBSEP "peer"
                if (!cnt[a] || !cnt[p] || rps[p] == "-" || rps[p] == 0) continue
                ca = median(a, "total_cpu_us"); cp = median(p, "total_cpu_us")
                printf "| %s | %s | **%.1f×** | %s |\n", (S[i] == "create" ? "POST /threads" : "POST /threads/search"), C[j],
                    rps[a] / rps[p], (ca != "-" && ca > 0 && cp != "-") ? sprintf("%.1f×", cp / ca) : "-"
            }
            print ""
            print "Targets (create at 64 connections):"
            print ""
            a = "create" SUBSEP "64" SUBSEP "agentd"; p = "create" SUBSEP "64" SUBSEP "peer"
            if (cnt[a] && cnt[p] && rps[p] != "-" && rps[p] > 0)
                printf "- req/s: agentd %s vs peer %s = %.1f× (target ≥ 10×): **%s**\n", k(rps[a]), k(rps[p]), rps[a] / rps[p],
                    (rps[a] >= 10 * rps[p] ? "MET" : "NOT MET")
            if (cnt[a] && p99[a] != "-")
                printf "- p99: agentd %.2f ms (target < 10 ms): **%s**\n", p99[a], (p99[a] < 10 ? "MET" : "NOT MET")
        }' "$RESULTS"
}

# Every run, in the order they ran.
runs_table() {
    echo "| server | round | scenario | conns | req/s | p50 ms | p99 ms | server / Postgres CPU-µs/req | cores: server / Postgres / wrk / other | req per commit | stmts per group | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %.0f | %.2f | %.2f | %.0f / %s | %s / %s / %s / %s | %s | %s | %d |\n",
        $1, $2, $3, $4, $6, $7, $8, $11, ($1 == "agentd" ? sprintf("%.0f", $12) : "-"), $14, ($1 == "agentd" ? $15 : "-"),
        $16, $17, $18, $21, $9 + $10 }' "$RESULTS"
}

{
    summary
    echo
    echo "Runs:"
    echo
    runs_table
} | tee "$OUT/summary.md"
log "raw results: $RESULTS; summary: $OUT/summary.md; environment: $OUT/env.txt; settings: $OUT/settings.txt"
bad=$(awk -F'\t' 'NR > 1 && $9 + $10 > 0 { n++ } END { print n + 0 }' "$RESULTS")
[ "$bad" -eq 0 ] || die "$bad run(s) had socket errors or non-2xx responses (see the errors column and $OUT/*.wrk.txt*)"
