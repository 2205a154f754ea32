#!/usr/bin/env bash
# perf/bench-runs.sh: the runs API under load, agentd against the JS peer (@langchain/langgraph-api,
# from /work/shared/peer), on the same machine in the same run, over loopback. Two scenarios:
#
#   wait    POST /threads/{id}/runs/wait {"assistant_id":"<echo>","input":{"messages":[{"role":"user",
#           "content":"hi"}]}} at each connection count C: a fresh server (agentd: TRUNCATE threads
#           CASCADE, CHECKPOINT, start; peer: run-peer.sh start, which wipes its store), POOL threads
#           created through its own POST /threads (node, 32 in flight), one checked wait, a wrk warm-up
#           and a measured wrk run (perf/runs.lua: each request takes the oldest free thread of the
#           wrk thread's share of the pool and gives it back when the answer names it, so no thread
#           ever has two runs at once and the default multitask strategy, reject, never refuses; the
#           runs spread evenly, so each thread's history grows by 2 messages per POOL runs). After the
#           run, the first thread's state is read back: its message count shows how far histories grew.
#   fanout  one `stress` run with {"configurable":{"tokens":K,"mode":"custom","delay_ms":D}},
#           stream_mode ["custom"], stream_resumable true, created in the background (POST
#           /threads/{id}/runs) with after_seconds A, so that N subscribers can join GET
#           /threads/{id}/runs/{run_id}/stream (with Last-Event-ID: -1, which the peer needs to give
#           every joiner the whole stream instead of sharing one queue among them) before it starts.
#           perf/fanout_sse.c (one epoll loop) reads them all: deliveries/s = custom frames received by
#           all subscribers / (last - first receive time), and the lag of each delivery = its receive
#           time - the first subscriber's receive time of the same event (the payload's index). For
#           each D in the delay list: a fresh server, one run.
#
# Every measured wait run records: wrk runs/s, p50/p99 (--latency), the status of every response
# (anything but 2xx is an error; so is a 2xx without "messages", and a thread leaving the pool),
# CPU per run of the server (agentd: its process; peer: every process of its process group) and of
# Postgres (postmaster + children, from /proc), wrk's CPU and the rest of the machine ("other"),
# Postgres commits, WAL bytes and WAL syncs per run, agentd's statements per pipeline group. Every
# fanout run records deliveries/s, lag p50/p90/p99/max, complete subscribers, server and Postgres CPU
# per delivery and the client's CPU. Medians of the rounds, ratios agentd/peer and the check against
# the targets (wait at 1 connection: p50 < 2 ms; wait: >= 3,000 runs/s; fanout: >= 1M deliveries/s)
# are printed as Markdown at the end.
#
# usage: perf/bench-runs.sh [-r ROUNDS] [-d SECONDS] [-w WARMUP] [-c "1 64"] [-T POOL] [-s SHARDS]
#                           [-C DB_CONNS] [-S "agentd peer"] [-x "wait fanout"] [-n SUBSCRIBERS]
#                           [-k TOKENS] [-D "0 1"] [-A AFTER_SECONDS] [-L SECONDS] [-P PEER_DIR]
#                           [-g "name=value ..."] [-q QUIET_WAIT] [-o OUTDIR]
#   -r rounds (3)    -d measured seconds per wait run (10)    -w warm-up seconds (2)
#   -c connection counts for wait ("1 64"; wrk -t1 for 1, -t2 otherwise, --timeout 30s)
#   -T threads in the wait pool, per server start (4000; at least C)    -s agentd shards (2)
#   -C agentd's database.connections_per_shard (through a --config file; default: agentd's own)
#   -S servers ("agentd peer")    -x scenarios ("wait fanout")
#   -n fanout subscribers (1000)    -k tokens of the stress run (1000)
#   -D delay_ms values of the stress run, one run each ("0 1": 0 = as fast as the server goes, 1 =
#      paced at most 1,000 events/s)    -A after_seconds of the stress run (3)
#   -L the fanout client gives up after this many seconds (120; the peer is slow)
#   -P where the peer is installed (default $PEER_DIR, else ~/.cache/agentd-peer; installed there
#      with /work/shared/peer/install.sh DIR v2 when missing, which needs npm and the registry)
#   -g extra Postgres settings for this run, applied with ALTER SYSTEM + reload (reloadable,
#      durable ones only: fsync, synchronous_commit and full_page_writes cannot be changed here)
#   -q seconds to wait (at most) for an idle machine before each measured point (8)
#   -o output directory (default a new /tmp/agentd-bench-runs.XXXXXX)
# environment: SKIP_BUILD=1 or AGENTD=binary and FANOUT=binary (no build), PG_BIN (default
#   /usr/lib/postgresql/15/bin), PEER_LOG_LEVEL (default warn, like agentd's --log-level warn),
#   PEER_SRC (default /work/shared/peer).
# Raw wrk and client output, server logs, wait.tsv, fanout.tsv and summary.md stay in the output
# directory. Every process and the cluster the script started are stopped on exit, Ctrl-C or failure.

set -euo pipefail

ROUNDS=3
DURATION=10
WARMUP=2
CONNS_LIST="1 64"
POOL=4000
SHARDS=2
DB_CONNS=""
SERVERS="agentd peer"
SCENARIOS="wait fanout"
SUBS=1000
TOKENS=1000
DELAYS="0 1"
AFTER=3
FAN_LIMIT=120
PEER_DIR=${PEER_DIR:-$HOME/.cache/agentd-peer}
PG_EXTRA=""
QUIET_WAIT=8
OUT=""
SEED_CONC=32
ECHO_ID=046b5dc7-2108-582c-9c6c-31d556d138f0
STRESS_ID=a2613945-cc44-5b9d-b20b-aa8f8497bb3b

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

while getopts "r:d:w:c:T:s:C:S:x:n:k:D:A:L:P:g:q:o:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    c) CONNS_LIST=$OPTARG ;;
    T) POOL=$OPTARG ;;
    s) SHARDS=$OPTARG ;;
    C) DB_CONNS=$OPTARG ;;
    S) SERVERS=$OPTARG ;;
    x) SCENARIOS=$OPTARG ;;
    n) SUBS=$OPTARG ;;
    k) TOKENS=$OPTARG ;;
    D) DELAYS=$OPTARG ;;
    A) AFTER=$OPTARG ;;
    L) FAN_LIMIT=$OPTARG ;;
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
for v in "$ROUNDS" "$DURATION" "$POOL" "$SHARDS" "$SUBS" "$TOKENS" "$AFTER" "$FAN_LIMIT" $DB_CONNS $CONNS_LIST; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "numeric options must be positive integers (got '$v')"
done
for v in $DELAYS; do [[ $v =~ ^[0-9]+$ ]] || die "-D takes whole numbers (got '$v')"; done
[[ $WARMUP =~ ^[0-9]+$ && $QUIET_WAIT =~ ^[0-9]+$ ]] || die "-w and -q take whole numbers"
for c in $CONNS_LIST; do [ "$POOL" -ge $((c + 2)) ] || die "-T $POOL: the pool needs a thread per connection plus one per wrk thread ($((c + 2)))"; done
for s in $SERVERS; do case $s in agentd | peer) ;; *) die "unknown server '$s'" ;; esac; done
for s in $SCENARIOS; do case $s in wait | fanout) ;; *) die "unknown scenario '$s'" ;; esac; done
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
    OUT=$(mktemp -d /tmp/agentd-bench-runs.XXXXXX)
else
    mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
PGDIR=$OUT/pg
log "output in $OUT"

# --- processes this script owns; cleanup() stops exactly these ------------------------------------

AG_PID=""      # agentd (our child)
PEER_PORT=""   # the peer, started with run-peer.sh (its own process group, pid file in PEER_DIR)
WRK_PID=""     # the wrk wrapper subshell
SEED_PID=""    # the node seeding client
FAN_PID=""     # the fanout client
CLUSTER_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_wrk
    local pid
    for pid in "$SEED_PID" "$FAN_PID"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    stop_agentd
    stop_peer
    stop_cluster
    [ "$rc" -eq 0 ] || log "aborted (status $rc); logs in $OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM


# --- build, peer install ---------------------------------------------------------------------------

if [ -n "${AGENTD:-}" ] || [ "${SKIP_BUILD:-0}" = 1 ]; then
    AGENTD=${AGENTD:-$ROOT/build/release/agentd}
    FANOUT=${FANOUT:-$ROOT/build/release/fanout_sse}
else
    AGENTD=$ROOT/build/release/agentd
    FANOUT=$ROOT/build/release/fanout_sse
    log "building the release preset (agentd, fanout_sse)"
    (cd "$ROOT" && timeout 600 cmake --preset release >"$OUT/build.log" 2>&1 &&
        timeout 1800 cmake --build --preset release -j2 --target agentd fanout_sse >>"$OUT/build.log" 2>&1) || {
        tail -n 30 "$OUT/build.log" >&2
        die "build failed (log: $OUT/build.log)"
    }
fi
[ -x "$AGENTD" ] || die "agentd binary '$AGENTD' not found"
[[ " $SCENARIOS " != *" fanout "* ]] || [ -x "$FANOUT" ] || die "fanout client '$FANOUT' not found (cmake --build --preset release --target fanout_sse)"

if [[ " $SERVERS " == *" peer "* ]] && [ ! -x "$PEER_DIR/node_modules/.bin/langgraphjs" ]; then
    log "installing the JS peer into $PEER_DIR ($PEER_SRC/install.sh DIR v2; needs the npm registry)"
    timeout 900 "$PEER_SRC/install.sh" "$PEER_DIR" v2 >"$OUT/peer-install.log" 2>&1 || {
        tail -n 20 "$OUT/peer-install.log" >&2
        die "peer install failed (log: $OUT/peer-install.log)"
    }
fi

# --- cluster and servers (perf/side.sh) ------------------------------------------------------------

start_cluster

# run_wrk OUTFILE SECONDS CONNS: wrk under timeout in a background subshell (so signals reach our trap
# at once); the subshell writes wrk's CPU ticks (its cutime+cstime) to OUTFILE.cpu.
run_wrk() {
    local out=$1 secs=$2 c=$3 t rc=0
    t=$((c < 2 ? 1 : 2))
    local -a args=(-t"$t" -c"$c" -d"${secs}s" --timeout 30s --latency -s "$PERF_DIR/runs.lua"
        "http://127.0.0.1:$SRV_PORT" -- "$OUT/pool.ids" "$t" "$ECHO_ID")
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

# Parses a wrk output file: "requests rps p50_ms p99_ms socket_errors statuses_2xx statuses_other
# lost starved badbody".
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
        $1 == "COUNT" { cnt[$2] = $3 }
        END { printf "%d %.2f %.3f %.3f %d %d %d %d %d %d\n", req, rps, p50, p99, err, ok, bad,
              cnt["lost"], cnt["starved"], cnt["badbody"] }
    ' "$1"
}

# Creates POOL threads through the running server's POST /threads (node, SEED_CONC requests in
# flight) and writes their ids to $OUT/pool.ids.
make_pool() {
    local tag=$1 rc=0
    cat >"$OUT/pool.mjs" <<'JS'
import http from 'node:http';
import fs from 'node:fs';
const [port, nStr, concStr, file] = process.argv.slice(2);
const n = +nStr, conc = +concStr;
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const ids = [];
let next = 0, bad = 0;
function one() {
  return new Promise((resolve, reject) => {
    const body = '{}';
    const req = http.request({ host: '127.0.0.1', port, path: '/threads', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        if (res.statusCode === 200) ids.push(JSON.parse(text).thread_id);
        else if (bad++ < 3) console.error('pool: HTTP', res.statusCode, text.slice(0, 200));
        resolve();
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
async function worker() { while (next < n) { next++; await one(); } }
const t0 = Date.now();
await Promise.all(Array.from({ length: conc }, worker));
agent.destroy();
fs.writeFileSync(file, ids.join('\n') + '\n');
console.log(JSON.stringify({ n, created: ids.length, seconds: (Date.now() - t0) / 1000 }));
process.exit(bad || ids.length !== n ? 1 : 0);
JS
    timeout 600 node "$OUT/pool.mjs" "$SRV_PORT" "$POOL" "$SEED_CONC" "$OUT/pool.ids" >"$OUT/$tag.pool.txt" 2>&1 &
    SEED_PID=$!
    wait "$SEED_PID" || rc=$?
    SEED_PID=""
    [ "$rc" -eq 0 ] || {
        cat "$OUT/$tag.pool.txt" >&2
        die "creating the thread pool on $SRV failed"
    }
    log "  pool: $(cat "$OUT/$tag.pool.txt")"
}

# One wait on a thread outside the pool, by hand: the answer must be 200 with the human and the AI
# message (echo answers "hi" with "hi").
check_wait() {
    local tag=$1 tid ans
    tid=$(curl -s --max-time 30 -XPOST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$SRV_PORT/threads" | jq -r .thread_id)
    ans=$(curl -s --max-time 60 -o "$OUT/$tag.wait-answer.json" -w '%{http_code}' -XPOST -H 'content-type: application/json' \
        -d "{\"assistant_id\":\"$ECHO_ID\",\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}" \
        "http://127.0.0.1:$SRV_PORT/threads/$tid/runs/wait") || true
    local got
    got=$(jq -r '[.messages[] | .type + ":" + (.content | tostring)] | join(" ")' "$OUT/$tag.wait-answer.json" 2>/dev/null) || got="?"
    if [ "$ans" != 200 ] || [ "$got" != "human:hi ai:hi" ]; then
        die "$SRV: runs/wait answered $ans '$got' (want 200 'human:hi ai:hi'; see $OUT/$tag.wait-answer.json)"
    fi
}

# Messages in the first pool thread's state (2 per run on it).
first_thread_messages() {
    local tid
    tid=$(head -n 1 "$OUT/pool.ids")
    curl -s --max-time 30 "http://127.0.0.1:$SRV_PORT/threads/$tid/state" | jq -r '.values.messages | length' 2>/dev/null || echo "?"
}

printf 'server\tround\tconns\trequests\trps\tp50_ms\tp99_ms\tsock_err\tnon2xx\tlost\tstarved\tbadbody\tsrv_cpu_us\tpg_cpu_us\ttotal_cpu_us\tsrv_cores\tpg_cores\twrk_cores\tother_cores\treq_per_commit\twal_bytes_req\treq_per_walsync\tstmts_per_group\tdb_errors\truns_per_thread\tmsgs_first_thread\n' >"$OUT/wait.tsv"

# measure_wait ROUND CONNS TAG: warm-up, then one measured run on the running server; appends a row
# to wait.tsv.
measure_wait() {
    local round=$1 c=$2 tag=$3
    local -a pids
    local c0 c1 p0 p1 s0 t0 s1 t1 w0 w1 g0 g1 m0="" m1="" wrc=0 wt msgs
    local req rps p50 p99 serr ok bad lost starved badbody
    if [ "$WARMUP" -gt 0 ]; then
        run_wrk "$OUT/$tag.warmup.txt" "$WARMUP" "$c" || log "  warning: warm-up wrk exited non-zero ($tag)"
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
    run_wrk "$OUT/$tag.wrk.txt" "$DURATION" "$c" || wrc=$?
    w1=$(now)
    read -r s1 t1 < <(sys_ticks)
    p1=$(pg_ticks)
    c1=$(cpu_ticks "${pids[@]}")
    [ "$SRV" != agentd ] || m1=$(agentd_metrics) || m1=""
    sleep 1.5
    g1=$(pg_counters)
    server_alive || die "$SRV died during $tag (log in $OUT)"
    msgs=$(first_thread_messages)
    [ "$wrc" -eq 0 ] || log "  warning: wrk exited with $wrc ($tag; see $OUT/$tag.wrk.txt)"
    [ ! -s "$OUT/$tag.wrk.txt.stderr" ] || log "  wrk stderr ($tag): $(head -c 300 "$OUT/$tag.wrk.txt.stderr" | tr '\n' '|')"

    read -r req rps p50 p99 serr ok bad lost starved badbody < <(parse_wrk "$OUT/$tag.wrk.txt")
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
    local rpt
    rpt=$(awk -v a="$req" -v p="$POOL" 'BEGIN { printf "%.1f", a / p }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SRV" "$round" "$c" "$req" "$rps" "$p50" "$p99" \
        "$serr" "$bad" "$lost" "$starved" "$badbody" "$row" "$rpt" "$msgs" >>"$OUT/wait.tsv"
    local f
    IFS=$'\t' read -r -a f <<<"$row"
    log "  $tag: $(printf '%.0f' "$rps") runs/s, p50 $p50 ms, p99 $p99 ms, non-2xx $bad, socket errors $serr, lost $lost, starved $starved, bad bodies $badbody; CPU µs/run server ${f[0]} + Postgres ${f[1]}; cores server ${f[3]} pg ${f[4]} wrk ${f[5]} other ${f[6]}; runs/commit ${f[7]}, runs/WAL sync ${f[9]}, stmts/group ${f[10]}; first thread has $msgs messages"
}

printf 'server\tround\tdelay_ms\tsubs\tok_200\tcomplete\tdeliveries\tdeliv_per_s\tspan_s\tfirst_event_s\tsubscribed_s\tlate\tlag_p50_ms\tlag_p90_ms\tlag_p99_ms\tlag_max_ms\tdeliv_per_read\tsrv_cpu_s\tpg_cpu_s\tclient_cpu_s\tsrv_cpu_us_per_deliv\tsrv_peak_rss_mb\ttimed_out\n' >"$OUT/fanout.tsv"

# Peak resident memory of the server (MB): agentd's VmHWM, or the largest VmHWM in the peer's group.
server_hwm_mb() {
    local p m max=0
    for p in $(server_pids); do
        m=$(awk '/^VmHWM/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        [ -n "$m" ] && [ "$m" -gt "$max" ] && max=$m
    done
    echo $((max / 1024))
}

# measure_fanout ROUND DELAY TAG: on the running (fresh) server, one stress run watched by SUBS
# subscribers; appends a row to fanout.tsv.
measure_fanout() {
    local round=$1 delay=$2 tag=$3
    local -a pids
    local tid run rid c0 c1 p0 p1 rc=0
    wait_quiet
    tid=$(curl -s --max-time 30 -XPOST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$SRV_PORT/threads" | jq -r .thread_id)
    [[ $tid =~ ^[0-9a-f-]{36}$ ]] || die "$SRV: cannot create a thread for the fanout run"
    mapfile -t pids < <(server_pids)
    c0=$(cpu_ticks "${pids[@]}")
    p0=$(pg_ticks)
    run=$(curl -s --max-time 30 -XPOST -H 'content-type: application/json' -d "{\"assistant_id\":\"$STRESS_ID\",
        \"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]},
        \"config\":{\"configurable\":{\"tokens\":$TOKENS,\"mode\":\"custom\",\"delay_ms\":$delay}},
        \"stream_mode\":[\"custom\"],\"stream_resumable\":true,\"after_seconds\":$AFTER}" \
        "http://127.0.0.1:$SRV_PORT/threads/$tid/runs")
    echo "$run" >"$OUT/$tag.run.json"
    rid=$(jq -r '.run_id // empty' <<<"$run" 2>/dev/null) || rid=""
    [ -n "$rid" ] || die "$SRV: the background stress run was not created: $(head -c 300 <<<"$run")"
    "$FANOUT" -p "$SRV_PORT" -u "/threads/$tid/runs/$rid/stream" -n "$SUBS" -e "$TOKENS" -H "Last-Event-ID: -1" \
        -t "$FAN_LIMIT" -i 15 >"$OUT/$tag.fanout.json" 2>"$OUT/$tag.fanout.stderr" &
    FAN_PID=$!
    wait "$FAN_PID" || rc=$?
    FAN_PID=""
    p1=$(pg_ticks)
    c1=$(cpu_ticks "${pids[@]}")
    server_alive || die "$SRV died during $tag (log in $OUT)"
    [ "$rc" -eq 0 ] || log "  warning: fanout client exited with $rc ($tag): $(head -c 300 "$OUT/$tag.fanout.stderr" | tr '\n' '|')"
    local hwm row
    hwm=$(server_hwm_mb)
    row=$(jq -r --argjson dc $((c1 - c0)) --argjson dp $((p1 - p0)) --argjson hz "$CLK_TCK" --arg srv "$SRV" \
        --arg round "$round" --arg delay "$delay" --arg hwm "$hwm" '
        [$srv, $round, $delay, .subscribers, .ok_200, .complete_subscribers, .deliveries, .deliveries_per_s, .span_s,
         .first_event_s, .subscribed_s, .events_before_all_subscribed, .lag_ms.p50, .lag_ms.p90, .lag_ms.p99,
         .lag_ms.max, .deliveries_per_read, ($dc / $hz), (if $srv == "agentd" then $dp / $hz else 0 end),
         .client_cpu_s, (if .deliveries > 0 then $dc / $hz * 1e6 / .deliveries else 0 end), $hwm, .timed_out]
        | map(tostring) | join("\t")' "$OUT/$tag.fanout.json") || die "$SRV: no result from the fanout client ($tag; see $OUT/$tag.fanout.stderr)"
    echo "$row" >>"$OUT/fanout.tsv"
    local f
    IFS=$'\t' read -r -a f <<<"$row"
    log "  $tag: ${f[7]} deliveries/s over ${f[8]} s, ${f[6]} deliveries, ${f[5]}/${f[3]} subscribers complete; lag p50 ${f[12]} ms p99 ${f[14]} ms max ${f[15]} ms; first event at ${f[9]} s (subscribed at ${f[10]} s, late ${f[11]}); CPU s server ${f[17]} Postgres ${f[18]} client ${f[19]}; server peak RSS ${f[21]} MB"
    [ "${f[11]}" != true ] || log "  warning: $tag: events arrived before every subscriber had joined (raise -A)"
}

# --- run -------------------------------------------------------------------------------------------

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    # shellcheck disable=SC2016 # the single quotes are literal text around the expanded value
    echo "command: $0 -r $ROUNDS -d $DURATION -w $WARMUP -c '$CONNS_LIST' -T $POOL -s $SHARDS${DB_CONNS:+ -C $DB_CONNS} -S '$SERVERS' -x '$SCENARIOS' -n $SUBS -k $TOKENS -D '$DELAYS' -A $AFTER -L $FAN_LIMIT${PG_EXTRA:+ -g '$PG_EXTRA'}"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- core net protocol persist graph 2>/dev/null || echo ' (+ local changes in core/net/protocol/persist/graph)')"
    echo "nproc: $NCPU; kernel: $(uname -r); cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); mem: $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "agentd: $AGENTD ($("$AGENTD" --version 2>&1 | head -1)), --shards $SHARDS --log-level warn, database.connections_per_shard ${DB_CONNS:-default}; Postgres over $TRANSPORT"
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
            wait)
                for c in $CONNS_LIST; do
                    tag=$srv-r$round-wait-c$c
                    log "round $round: $srv, POST /threads/{id}/runs/wait (echo), $c connection(s), pool of $POOL threads"
                    start_server "$srv" "$tag"
                    make_pool "$tag"
                    check_wait "$tag"
                    measure_wait "$round" "$c" "$tag"
                    stop_server "$tag"
                done
                ;;
            fanout)
                for d in $DELAYS; do
                    tag=$srv-r$round-fanout-d$d
                    log "round $round: $srv, stress run ($TOKENS tokens, delay_ms $d) watched by $SUBS subscribers"
                    start_server "$srv" "$tag"
                    measure_fanout "$round" "$d" "$tag"
                    stop_server "$tag"
                done
                ;;
            esac
        done
    done
done
log "measurements took $((SECONDS - START)) s"

# --- summary ---------------------------------------------------------------------------------------

# Shared awk: median over the rounds of a column, formatting.
AWK_LIB='
function isort(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
}
function median(key, c,   a, n, i, v) {
    n = 0
    for (i = 1; i <= cnt[key]; i++) { v = val[key, i, c]; if (v != "-" && v != "nan" && v != "?" && v != "null") a[++n] = v + 0 }
    if (n == 0) return "-"
    isort(a, n)
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function f(v, p) { return v == "-" ? "-" : sprintf("%." p "f", v) }
function k(v) { return v == "-" ? "-" : (v >= 1e6 ? sprintf("%.2fM", v / 1e6) : (v >= 1e4 ? sprintf("%.1fk", v / 1e3) : sprintf("%.0f", v))) }
'

summary_wait() {
    awk -F'\t' -v servers="$SERVERS" -v conns="$CONNS_LIST" -v shards="$SHARDS" "$AWK_LIB"'
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            key = $(col["conns"]) SUBSEP $(col["server"]); n = ++cnt[key]
            for (c in col) val[key, n, c] = $(col[c])
            errs[key] += $(col["sock_err"]) + $(col["non2xx"]) + $(col["badbody"])
            ls[key] = ls[key] (n > 1 ? ", " : "") $(col["lost"]) "/" $(col["starved"])
        }
        END {
            nv = split(servers, V, " "); nc = split(conns, C, " ")
            print "| conns | server | runs/s median | rounds (runs/s) | p50 ms | p99 ms | server CPU-µs/run | Postgres CPU-µs/run | total CPU-µs/run | cores: server / Postgres / wrk / other | runs per commit | runs per WAL sync | WAL B/run | runs per pool thread | messages on a pool thread after | errors | lost / starved |"
            print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            for (j = 1; j <= nc; j++) for (l = 1; l <= nv; l++) {
                key = C[j] SUBSEP V[l]
                if (!cnt[key]) continue
                runs = ""
                for (r = 1; r <= cnt[key]; r++) runs = runs (r > 1 ? ", " : "") k(val[key, r, "rps"])
                rps[key] = median(key, "rps"); p50[key] = median(key, "p50_ms"); p99[key] = median(key, "p99_ms")
                tot[key] = median(key, "total_cpu_us")
                ag = V[l] == "agentd"
                printf "| %s | %s | **%s** | %s | %s | %s | %s | %s | **%s** | %s / %s / %s / %s | %s | %s | %s | %s | %s | %d | %s |\n",
                    C[j], V[l], k(rps[key]), runs, f(p50[key], 2), f(p99[key], 2), f(median(key, "srv_cpu_us"), 0),
                    (ag ? f(median(key, "pg_cpu_us"), 0) : "-"), f(tot[key], 0),
                    f(median(key, "srv_cores"), 2), (ag ? f(median(key, "pg_cores"), 2) : "-"),
                    f(median(key, "wrk_cores"), 2), f(median(key, "other_cores"), 2),
                    f(median(key, "req_per_commit"), 2), f(median(key, "req_per_walsync"), 2), f(median(key, "wal_bytes_req"), 0),
                    f(median(key, "runs_per_thread"), 1), f(median(key, "msgs_first_thread"), 0), errs[key], ls[key]
            }
            print ""
            print "| conns | runs/s agentd / peer | p50 peer / agentd | CPU per run, peer / agentd (agentd incl. Postgres) |"
            print "|---|---|---|---|"
            for (j = 1; j <= nc; j++) {
                a = C[j] SUBSEP "agentd"; p = C[j] SUBSEP "peer"
                if (!cnt[a] || !cnt[p] || rps[p] == "-" || rps[p] == 0) continue
                printf "| %s | **%.1f×** | %s | %s |\n", C[j], rps[a] / rps[p],
                    (p50[a] != "-" && p50[a] > 0 && p50[p] != "-") ? sprintf("%.0f×", p50[p] / p50[a]) : "-",
                    (tot[a] != "-" && tot[a] > 0 && tot[p] != "-") ? sprintf("%.1f×", tot[p] / tot[a]) : "-"
            }
            print ""
            a1 = "1" SUBSEP "agentd"
            if (cnt[a1] && p50[a1] != "-")
                printf "- target p50 < 2 ms at 1 connection: agentd %.2f ms: **%s**\n", p50[a1], (p50[a1] < 2 ? "MET" : "NOT MET")
            best = 0
            for (j = 1; j <= nc; j++) { a = C[j] SUBSEP "agentd"; if (cnt[a] && rps[a] != "-" && rps[a] > best) { best = rps[a]; bc = C[j] } }
            if (best > 0)
                printf "- target >= 3,000 durable runs/s on %s shard(s): agentd %s runs/s (at %s connections): **%s**\n", shards,
                    k(best), bc, (best >= 3000 ? "MET" : "NOT MET")
        }' "$OUT/wait.tsv"
}

summary_fanout() {
    awk -F'\t' -v servers="$SERVERS" -v delays="$DELAYS" -v subs="$SUBS" -v tokens="$TOKENS" "$AWK_LIB"'
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            key = $(col["delay_ms"]) SUBSEP $(col["server"]); n = ++cnt[key]
            for (c in col) val[key, n, c] = $(col[c])
            comp[key] = comp[key] (n > 1 ? ", " : "") $(col["complete"])
            if ($(col["late"]) == "true") late[key]++
            if ($(col["timed_out"]) == "true") tout[key]++
        }
        END {
            nv = split(servers, V, " "); nd = split(delays, D, " ")
            print "| delay_ms | server | deliveries/s median | rounds (deliveries/s) | span s | lag p50 ms | lag p90 ms | lag p99 ms | lag max ms | first event after client start, s | server CPU-µs/delivery | CPU s: server / Postgres / client | deliveries per client read | server peak RSS MB | complete subscribers (of " subs ") | late joins / timed out |"
            print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            for (j = 1; j <= nd; j++) for (l = 1; l <= nv; l++) {
                key = D[j] SUBSEP V[l]
                if (!cnt[key]) continue
                runs = ""
                for (r = 1; r <= cnt[key]; r++) runs = runs (r > 1 ? ", " : "") k(val[key, r, "deliv_per_s"])
                dps[key] = median(key, "deliv_per_s"); l99[key] = median(key, "lag_p99_ms")
                printf "| %s | %s | **%s** | %s | %s | %s | %s | **%s** | %s | %s | %s | %s / %s / %s | %s | %s | %s | %d / %d |\n",
                    D[j], V[l], k(dps[key]), runs, f(median(key, "span_s"), 2), f(median(key, "lag_p50_ms"), 1),
                    f(median(key, "lag_p90_ms"), 1), f(l99[key], 1), f(median(key, "lag_max_ms"), 1),
                    f(median(key, "first_event_s"), 2), f(median(key, "srv_cpu_us_per_deliv"), 2),
                    f(median(key, "srv_cpu_s"), 2), (V[l] == "agentd" ? f(median(key, "pg_cpu_s"), 2) : "-"),
                    f(median(key, "client_cpu_s"), 2), f(median(key, "deliv_per_read"), 1), f(median(key, "srv_peak_rss_mb"), 0),
                    comp[key], late[key], tout[key]
            }
            print ""
            print "| delay_ms | deliveries/s agentd / peer | lag p99 peer / agentd |"
            print "|---|---|---|"
            for (j = 1; j <= nd; j++) {
                a = D[j] SUBSEP "agentd"; p = D[j] SUBSEP "peer"
                if (!cnt[a] || !cnt[p] || dps[p] == "-" || dps[p] == 0) continue
                printf "| %s | **%.1f×** | %s |\n", D[j], dps[a] / dps[p],
                    (l99[a] != "-" && l99[a] > 0 && l99[p] != "-") ? sprintf("%.1f×", l99[p] / l99[a]) : "-"
            }
            print ""
            best = 0
            for (j = 1; j <= nd; j++) { a = D[j] SUBSEP "agentd"; if (cnt[a] && dps[a] != "-" && dps[a] > best) { best = dps[a]; bd = D[j] } }
            if (best > 0)
                printf "- target >= 1M SSE deliveries/s: agentd %s deliveries/s (delay_ms %s): **%s**\n", k(best), bd, (best >= 1e6 ? "MET" : "NOT MET")
        }' "$OUT/fanout.tsv"
}

{
    if [[ " $SCENARIOS " == *" wait "* ]]; then
        echo "### wait: POST /threads/{id}/runs/wait (echo), pool of $POOL threads, wrk ${DURATION}s"
        echo
        summary_wait
        echo
    fi
    if [[ " $SCENARIOS " == *" fanout "* ]]; then
        echo "### fanout: one stress run ($TOKENS custom events) watched by $SUBS SSE subscribers"
        echo
        summary_fanout
        echo
    fi
} | tee "$OUT/summary.md"
log "raw results: $OUT/wait.tsv, $OUT/fanout.tsv; summary: $OUT/summary.md; environment: $OUT/env.txt"
bad=$(awk -F'\t' 'NR > 1 && $8 + $9 + $10 + $12 > 0 { n++ } END { print n + 0 }' "$OUT/wait.tsv")
# A run stopped by -L (timed_out) is incomplete by design; it is reported, not failed.
capped=$(awk -F'\t' 'NR > 1 && $23 == "true" { n++ } END { print n + 0 }' "$OUT/fanout.tsv")
[ "$capped" -eq 0 ] || log "note: $capped fanout run(s) stopped at the -L cap of ${FAN_LIMIT} s before every event arrived (deliveries/s is over what arrived)"
badf=$(awk -F'\t' -v s="$SUBS" 'NR > 1 && ($5 != s || ($6 != s && $23 != "true")) { n++ } END { print n + 0 }' "$OUT/fanout.tsv")
[ "$bad" -eq 0 ] || log "warning: $bad wait run(s) had socket errors, non-2xx answers, bad bodies or lost threads (see $OUT/*.wrk.txt*)"
[ "$badf" -eq 0 ] || log "warning: $badf fanout run(s) had subscribers refused or incomplete (see $OUT/*.fanout.*)"
[ "$bad" -eq 0 ] && [ "$badf" -eq 0 ] || exit 1
