/* pg_insert_bench: inserts thread-sized rows through agentd's persistence layer (persist/pg.h) and
 * measures rows/s, latency from submit to callback, the coalescing factor and CPU per row.
 *
 * It runs the real shard runtime with S shards; each shard starts the persistence layer
 * (ag_pg_start) and keeps its share of C concurrent "requests" in flight. A request inserts one row
 * with AG_SQL_THREAD_INSERT (a unique UUID-shaped id, owner 'anonymous', a ~400 B metadata object)
 * and, when its callback runs, immediately submits the next one from that callback, on the shard,
 * as a request handler would. Every non-OK outcome is counted and printed (the first few).
 *
 * Timeline: start -> wait until every shard has a connection up -> warm-up W s -> measure D s ->
 * stop issuing, drain what is in flight (bounded) -> exit. The numbers cover the measured window
 * only. With --pg-pid (the postmaster's pid) it also reports the Postgres server's CPU per row
 * (postmaster + its children, including exited ones through cutime/cstime), and it always reports
 * the machine's busy CPU per row (/proc/stat), so it can be compared with pgbench run the same way
 * (perf/bench-pg.sh).
 *
 * A watchdog on the main thread reports a shard that has requests in flight but gets no callback for
 * 2 s ("STALLED", with the unread bytes of every socket of the process), and whether it recovers;
 * the drain at the end is bounded (5 s), after which the runtime is stopped. Both make the exit
 * status 1, as do errors.
 *
 * Row ids: "%08x-TTTT-4%03x-8000-%012x" of (n * 2654435761 mod 2^32, tag, slot, n), where slot is the
 * request's index (0..C-1) and n its 1-based sequence number. Unique by construction (slot, n), with
 * a scrambled prefix so inserts land all over the primary-key btree as random UUIDs would. The
 * pgbench script perf/pgbench-insert.sql builds exactly the same ids from (:client_id, :n).
 *
 * usage: pg_insert_bench [--shards S] [--concurrency C] [--conns N] [--warmup W] [--duration D]
 *                        [--queue-max Q] [--tag HHHH] [--pg-pid PID] [--no-pin] [--quiet]
 *        pg_insert_bench --print-metadata      (the metadata JSON every row carries)
 * --tag is the id's second group (default: random); --no-pin leaves the shards unpinned (by default
 * they are pinned one per CPU, as agentd does when it has a CPU per shard).
 * DATABASE_URL names the database (the schema is migrated first if needed).
 * The last line of output is machine-readable: "RESULT key=value ...". Exit status 0 when the run
 * finished without errors, 1 otherwise. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/shard.h"
#include "persist/migrate.h"
#include "persist/pg.h"
#include "persist/stats.h"

/* A thread's metadata as agentd writes it (client keys plus server-written owner, assistant_id,
 * graph_id, thread_name): 408 bytes. `pg_insert_bench --print-metadata` prints it, so perf/bench-pg.sh
 * gives pgbench the very same text. */
#define METADATA                                                                                                       \
    "{\"graph_id\":\"agent\",\"assistant_id\":\"fe096781-5601-53d2-b2f6-0d3403f7e9ca\",\"owner\":\"anonymous\","     \
    "\"thread_name\":\"Refund request for order 48213\",\"user_id\":\"user-7f3a9c21\",\"source\":\"web\","            \
    "\"tags\":[\"support\",\"billing\",\"priority:normal\"],\"locale\":\"en-US\",\"channel\":\"chat\","               \
    "\"client\":{\"sdk\":\"langgraph-sdk-py\",\"version\":\"0.1.66\"},\"session_id\":"                                 \
    "\"b1946ac9-2492-4d23-87c6-235b4d261118\",\"experiment\":\"ranker-v2\",\"priority\":2}"

#define MAX_PRINTED_ERRORS 20
#define START_TIMEOUT_S 30
#define DRAIN_TIMEOUT_S 5
#define STALL_NS 2000000000ull /* a shard with requests in flight and no callback for this long is stalled */
#define RETRY_NS 1000000u /* a refused submit is retried after 1 ms */

/* Latency histogram in microseconds: exact below 64 µs, then 32 sub-buckets per power of two
 * (about 3% resolution), up to 2^40 µs. */
#define H_SUB 32
#define H_LINEAR 64
#define H_BUCKETS (H_LINEAR + (40 - 6) * H_SUB)

static unsigned h_bucket(uint64_t us)
{
    if (us < H_LINEAR)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 6 */
    if (e >= 40)
        return H_BUCKETS - 1;
    unsigned sub = (unsigned)(us >> (e - 5)) & (H_SUB - 1);
    return H_LINEAR + (e - 6) * H_SUB + sub;
}

/* The middle of bucket b, in microseconds. */
static double h_value(unsigned b)
{
    if (b < H_LINEAR)
        return b + 0.5;
    unsigned e = (b - H_LINEAR) / H_SUB + 6, sub = (b - H_LINEAR) % H_SUB;
    double lo = (double)((uint64_t)(H_SUB + sub) << (e - 5));
    return lo + (double)(1ull << (e - 5)) / 2;
}

struct bshard;

struct req {
    struct ag_pg_query q;
    struct bshard *bs;
    uint32_t slot; /* 0..C-1 over all shards */
    uint64_t n;    /* rows this slot has issued */
    uint64_t t0;   /* submit time, CLOCK_MONOTONIC ns */
    char id[40];
    struct req *next_idle;
};

struct bshard {
    struct req *reqs;
    uint32_t nreqs;
    struct ag_timer timer;
    bool started;
    struct req *idle; /* refused by ag_pg_submit, to retry */
    /* Written by the shard, read by main at the window edges. */
    _Atomic uint64_t ok, errors, refused;
    /* Read by main only after the shard threads ended. */
    uint64_t hist[H_BUCKETS];
    uint64_t lat_sum_us, lat_n, lat_max_us;
    unsigned printed;
};

enum { PH_WARMUP = 0, PH_MEASURE = 1, PH_STOP = 2 };

static struct ag_pg_config cfg = AG_PG_CONFIG_DEFAULT;
static struct bshard *bshards;
static int nshards = 2;
static _Atomic int phase = PH_WARMUP;
static _Atomic int shards_started;
static char tag[8];
static bool quiet;

static void issue(struct req *r);

static void record_error(struct bshard *bs, const char *what, const char *detail, const char *sqlstate)
{
    atomic_fetch_add_explicit(&bs->errors, 1, memory_order_relaxed);
    if (bs->printed++ < MAX_PRINTED_ERRORS) {
        char line[512];
        fprintf(stderr, "pg_insert_bench: shard %d: %s%s%s: %s\n", ag_shard_self() ? ag_shard_self()->id : -1, what,
                sqlstate && *sqlstate ? " sqlstate=" : "", sqlstate ? sqlstate : "",
                ag_log_clean(line, sizeof line, detail ? detail : "(no message)"));
    }
}

static const char *status_name(enum ag_pg_status st)
{
    switch (st) {
    case AG_PG_OK: return "OK";
    case AG_PG_SQL_ERROR: return "AG_PG_SQL_ERROR";
    case AG_PG_UNKNOWN: return "AG_PG_UNKNOWN";
    case AG_PG_DOWN: return "AG_PG_DOWN";
    }
    return "unknown status";
}

static void on_done(struct ag_pg_query *q, PGresult *res)
{
    struct req *r = AG_CONTAINER_OF(q, struct req, q);
    struct bshard *bs = r->bs;
    uint64_t us = (ag_clock_mono_ns() - r->t0) / 1000u;
    if (q->status != AG_PG_OK) {
        record_error(bs, status_name(q->status), q->error, q->sqlstate);
    } else if (!res || PQntuples(res) != 1) {
        record_error(bs, "bad result", "THREAD_INSERT did not return one row", NULL);
    } else {
        atomic_store_explicit(&bs->ok, atomic_load_explicit(&bs->ok, memory_order_relaxed) + 1, memory_order_relaxed);
        if (atomic_load_explicit(&phase, memory_order_relaxed) == PH_MEASURE) {
            bs->hist[h_bucket(us)]++;
            bs->lat_sum_us += us;
            bs->lat_n++;
            if (us > bs->lat_max_us)
                bs->lat_max_us = us;
        }
    }
    issue(r); /* the next row of this request, from the callback, on the shard */
}

static void issue(struct req *r)
{
    if (atomic_load_explicit(&phase, memory_order_relaxed) == PH_STOP)
        return;
    struct ag_shard *s = ag_shard_self();
    struct bshard *bs = r->bs;
    r->n++;
    uint32_t h = (uint32_t)(r->n * 2654435761u);
    snprintf(r->id, sizeof r->id, "%08x-%s-4%03x-8000-%012" PRIx64, h, tag, r->slot, r->n);
    memset(&r->q, 0, sizeof r->q);
    r->q.stmt = AG_SQL_THREAD_INSERT;
    r->q.kind = AG_PG_WRITE;
    r->q.nparams = 3;
    r->q.params[0] = r->id;
    r->q.params[1] = "anonymous";
    r->q.params[2] = METADATA;
    r->q.cb = on_done;
    r->t0 = ag_clock_mono_ns();
    int rc = ag_pg_submit(s, &r->q);
    if (rc != 0) {
        /* Nothing was queued: the id is unused, so take it back and retry shortly. */
        r->n--;
        atomic_fetch_add_explicit(&bs->refused, 1, memory_order_relaxed);
        if (bs->printed++ < MAX_PRINTED_ERRORS)
            fprintf(stderr, "pg_insert_bench: shard %d: ag_pg_submit refused: %s\n", s->id, strerror(-rc));
        r->next_idle = bs->idle;
        bs->idle = r;
        if (!ag_timer_armed(&bs->timer))
            ag_timer_arm(&s->timers, &bs->timer, s->now_ns + RETRY_NS);
    }
}

static void on_timer(struct ag_timer *t)
{
    struct bshard *bs = AG_CONTAINER_OF(t, struct bshard, timer);
    struct ag_shard *s = ag_shard_self();
    if (atomic_load(&phase) == PH_STOP)
        return;
    if (!bs->started) {
        if (!ag_pg_up(s)) {
            ag_timer_arm(&s->timers, &bs->timer, s->now_ns + 5000000u);
            return;
        }
        bs->started = true;
        atomic_fetch_add(&shards_started, 1);
        for (uint32_t i = 0; i < bs->nreqs; i++)
            issue(&bs->reqs[i]);
        return;
    }
    struct req *list = bs->idle;
    bs->idle = NULL;
    while (list) {
        struct req *r = list;
        list = r->next_idle;
        issue(r);
    }
}

static int on_start(struct ag_shard *s)
{
    struct bshard *bs = &bshards[s->id];
    ag_pg_start(s, &cfg);
    ag_timer_init(&bs->timer, on_timer);
    ag_timer_arm(&s->timers, &bs->timer, s->now_ns);
    return 0;
}

static bool is_idle(struct ag_shard *s)
{
    return atomic_load(&phase) == PH_STOP && ag_pg_pending(s) == 0;
}

static void on_exit_hook(struct ag_shard *s)
{
    ag_pg_exit(s);
}

/* --- CPU accounting ------------------------------------------------------------------------------ */

static uint64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

/* Busy (not idle, not iowait) and total jiffies of the whole machine. */
static void machine_ticks(uint64_t *busy, uint64_t *total)
{
    *busy = *total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    unsigned long long v[10] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 8; i++) /* guest time is already inside user */
            *total += v[i];
        *busy = *total - v[3] - v[4];
    }
    fclose(f);
}

/* utime+stime (+cutime+cstime when with_children) of pid and its parent's pid, from /proc/pid/stat. */
static bool proc_ticks(int pid, bool with_children, uint64_t *ticks, int *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    /* After ") ": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17). */
    char st;
    int pp;
    unsigned long long skip, ut, stt;
    long long cut, cst;
    if (sscanf(p + 2, "%c %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %lld %lld", &st, &pp, &skip, &skip,
               &skip, &skip, &skip, &skip, &skip, &skip, &skip, &ut, &stt, &cut, &cst) != 15)
        return false;
    *ticks = ut + stt + (with_children ? (uint64_t)(cut + cst) : 0);
    *ppid = pp;
    return true;
}

/* CPU jiffies of a Postgres cluster: the postmaster with its reaped children, plus its live children. */
static uint64_t pg_ticks(int postmaster)
{
    uint64_t total = 0, t;
    int pp;
    if (postmaster <= 0 || !proc_ticks(postmaster, true, &total, &pp))
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return total;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        int pid = atoi(e->d_name);
        if (pid != postmaster && proc_ticks(pid, false, &t, &pp) && pp == postmaster)
            total += t;
    }
    closedir(d);
    return total;
}

/* Unread bytes in every socket of this process (FIONREAD): where a stalled connection's answers sit. */
static void print_socket_backlog(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    fprintf(stderr, "pg_insert_bench:   unread bytes in the kernel receive queue of each socket:");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        int fd = atoi(e->d_name);
        struct stat st;
        int n = 0;
        if (fd != dirfd(d) && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && ioctl(fd, FIONREAD, &n) == 0)
            fprintf(stderr, " fd %d: %d", fd, n);
    }
    closedir(d);
    fprintf(stderr, "\n");
}

/* Watches every shard's progress while requests are being issued. */
struct watch {
    uint64_t last_count[64], last_change_ns[64];
    bool stalled[64];
    int stalls, recovered;
};

static void watch_check(struct ag_runtime *rt, struct watch *w, uint64_t now)
{
    for (int i = 0; i < nshards && i < 64; i++) {
        struct bshard *bs = &bshards[i];
        uint64_t cnt = atomic_load(&bs->ok) + atomic_load(&bs->errors) + atomic_load(&bs->refused);
        if (cnt != w->last_count[i] || !w->last_change_ns[i]) {
            if (w->stalled[i] && w->last_change_ns[i]) {
                w->recovered++;
                fprintf(stderr, "pg_insert_bench: shard %d: progressing again after %.1f s\n", i,
                        (double)(now - w->last_change_ns[i]) / 1e9);
            }
            w->last_count[i] = cnt;
            w->last_change_ns[i] = now;
            w->stalled[i] = false;
            continue;
        }
        if (!w->stalled[i] && bs->nreqs && now - w->last_change_ns[i] >= STALL_NS) {
            w->stalled[i] = true;
            w->stalls++;
            fprintf(stderr,
                    "pg_insert_bench: shard %d: STALLED: no callback for %.1f s with %" PRIu64
                    " statements queued or in flight (%" PRIu64 " callbacks so far)\n",
                    i, (double)(now - w->last_change_ns[i]) / 1e9,
                    ag_stat_get(&rt->shards[i]->stats, AG_STAT_DB_QUEUE), cnt);
            print_socket_backlog();
        }
    }
}

/* Sleeps s seconds in 50 ms steps, watching for stalls. */
static void watch_sleep(struct ag_runtime *rt, struct watch *w, double s)
{
    uint64_t until = ag_clock_mono_ns() + (uint64_t)(s * 1e9);
    for (;;) {
        uint64_t now = ag_clock_mono_ns();
        watch_check(rt, w, now);
        if (now >= until)
            return;
        struct timespec ts = {0, (long)AG_MIN(until - now, 50000000ull)};
        nanosleep(&ts, NULL);
    }
}

struct snap {
    uint64_t ns, ok, errors, refused, queries, groups, self_us, busy, total, pg;
};

static void take_snap(struct ag_runtime *rt, int pg_pid, struct snap *sn)
{
    memset(sn, 0, sizeof *sn);
    sn->ns = ag_clock_mono_ns();
    for (int i = 0; i < nshards; i++) {
        sn->ok += atomic_load(&bshards[i].ok);
        sn->errors += atomic_load(&bshards[i].errors);
        sn->refused += atomic_load(&bshards[i].refused);
        sn->queries += ag_stat_get(&rt->shards[i]->stats, AG_STAT_DB_QUERIES);
        sn->groups += ag_stat_get(&rt->shards[i]->stats, AG_STAT_DB_GROUPS);
    }
    sn->self_us = self_cpu_us();
    machine_ticks(&sn->busy, &sn->total);
    sn->pg = pg_ticks(pg_pid);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double percentile(const uint64_t *hist, uint64_t n, double p)
{
    if (!n)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)n);
    if (rank >= n)
        rank = n - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < H_BUCKETS; b++) {
        seen += hist[b];
        if (seen > rank)
            return h_value(b);
    }
    return h_value(H_BUCKETS - 1);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: pg_insert_bench [--shards S] [--concurrency C] [--conns N] [--warmup W] [--duration D]\n"
               "                       [--queue-max Q] [--tag HHHH] [--pg-pid PID] [--no-pin] [--quiet]\n"
               "       pg_insert_bench --print-metadata\n"
               "defaults: --shards 2 --concurrency 64 --conns 2 --warmup 2 --duration 10 --queue-max max(1024, 2C)\n"
               "DATABASE_URL names the database.\n");
}

static long parse_num(const char *opt, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "pg_insert_bench: --%s must be an integer in [%ld, %ld] (got '%s')\n", opt, lo, hi, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    long conc = 64, conns = 2, queue_max = 0, pg_pid = 0;
    double warmup = 2, duration = 10;
    bool pin = true;
    static const struct option opts[] = {
        {"shards", required_argument, NULL, 's'},   {"concurrency", required_argument, NULL, 'c'},
        {"conns", required_argument, NULL, 'n'},    {"warmup", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'}, {"queue-max", required_argument, NULL, 'q'},
        {"tag", required_argument, NULL, 't'},      {"pg-pid", required_argument, NULL, 'p'},
        {"no-pin", no_argument, NULL, 'P'},         {"quiet", no_argument, NULL, 'Q'},
        {"print-metadata", no_argument, NULL, 'M'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "s:c:n:w:d:q:t:p:PQMh", opts, NULL)) != -1) {
        switch (o) {
        case 's': nshards = (int)parse_num("shards", optarg, 1, 64); break;
        case 'c': conc = parse_num("concurrency", optarg, 1, 4095); break;
        case 'n': conns = parse_num("conns", optarg, 1, 64); break;
        case 'w': warmup = (double)parse_num("warmup", optarg, 0, 3600); break;
        case 'd': duration = (double)parse_num("duration", optarg, 1, 3600); break;
        case 'q': queue_max = parse_num("queue-max", optarg, 1, 1 << 24); break;
        case 'p': pg_pid = parse_num("pg-pid", optarg, 1, 1 << 30); break;
        case 't':
            if (strlen(optarg) != 4 || strspn(optarg, "0123456789abcdef") != 4) {
                fprintf(stderr, "pg_insert_bench: --tag must be 4 lowercase hex digits\n");
                return 2;
            }
            snprintf(tag, sizeof tag, "%s", optarg);
            break;
        case 'P': pin = false; break;
        case 'Q': quiet = true; break;
        case 'M': printf("%s\n", METADATA); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    const char *url = getenv("DATABASE_URL");
    if (!url || !*url) {
        fprintf(stderr, "pg_insert_bench: DATABASE_URL is not set\n");
        return 2;
    }
    if (!tag[0])
        snprintf(tag, sizeof tag, "%04x", (unsigned)((ag_clock_real_us() ^ (uint64_t)getpid() * 40503u) & 0xffffu));
    if (!queue_max)
        queue_max = AG_MAX(1024, 2 * conc);
    ag_log_level = AG_LOG_WARN;
    signal(SIGPIPE, SIG_IGN);

    /* The schema first, in the foreground, so a bad URL fails here with its reason. ag_migrate_run
     * alone does not make ag_migrate_ready() true (only the bootstrap thread sets it), and the layer
     * opens no connection before that, so the bootstrap thread runs too (a no-op migration). */
    char err[1024];
    if (ag_migrate_run(url, err, sizeof err) != 0) {
        fprintf(stderr, "pg_insert_bench: migration failed: %s\n", err);
        return 1;
    }
    ag_migrate_start(url);

    cfg.url = (char *)url;
    cfg.connections_per_shard = (uint32_t)conns;
    cfg.queue_max = (uint32_t)queue_max;

    bshards = ag_calloc((size_t)nshards, sizeof *bshards);
    uint32_t slot = 0;
    for (int i = 0; i < nshards; i++) {
        struct bshard *bs = &bshards[i];
        bs->nreqs = (uint32_t)(conc / nshards + (i < conc % nshards));
        bs->reqs = ag_calloc(AG_MAX(bs->nreqs, 1u), sizeof *bs->reqs);
        for (uint32_t k = 0; k < bs->nreqs; k++) {
            bs->reqs[k].bs = bs;
            bs->reqs[k].slot = slot++;
        }
    }

    int cpus[1024];
    int ncpus = pin ? ag_cpu_affinity(cpus, 1024) : 0;
    ag_pg_register();
    struct ag_shard_hooks hooks = {
        .on_start = on_start, .on_flush = ag_pg_flush, .is_idle = is_idle, .on_exit = on_exit_hook};
    struct ag_runtime rt;
    if (ag_runtime_start(&rt, &(struct ag_loop_config){0}, nshards, cpus, ncpus, &hooks, NULL) != 0) {
        fprintf(stderr, "pg_insert_bench: the runtime did not start\n");
        ag_migrate_stop();
        return 1;
    }
    int rc = 0;
    int want = 0;
    for (int i = 0; i < nshards; i++)
        want += bshards[i].nreqs > 0;
    uint64_t deadline = ag_clock_mono_ns() + START_TIMEOUT_S * 1000000000ull;
    while (atomic_load(&shards_started) < want && ag_clock_mono_ns() < deadline)
        sleep_s(0.005);
    struct snap a = {0}, b = {0};
    bool measured = false;
    static struct watch watch;
    int warm_stalls = 0;
    if (atomic_load(&shards_started) < want) {
        fprintf(stderr, "pg_insert_bench: only %d of %d shards got a database connection within %d s\n",
                atomic_load(&shards_started), want, START_TIMEOUT_S);
        rc = 1;
    } else {
        if (!quiet)
            fprintf(stderr, "pg_insert_bench: %d shards, %ld concurrent requests, %ld connections per shard; warm-up %.0f s, measuring %.0f s\n",
                    nshards, conc, conns, warmup, duration);
        watch_sleep(&rt, &watch, warmup);
        warm_stalls = watch.stalls;
        atomic_store(&phase, PH_MEASURE);
        take_snap(&rt, (int)pg_pid, &a);
        watch_sleep(&rt, &watch, duration);
        take_snap(&rt, (int)pg_pid, &b);
        measured = true;
    }
    atomic_store(&phase, PH_STOP);
    ag_runtime_drain(&rt);
    deadline = ag_clock_mono_ns() + DRAIN_TIMEOUT_S * 1000000000ull;
    while (ag_runtime_running(&rt) && ag_clock_mono_ns() < deadline)
        sleep_s(0.005);
    bool drain_timeout = ag_runtime_running(&rt) > 0;
    if (drain_timeout) {
        fprintf(stderr, "pg_insert_bench: drain did not finish within %d s (statements still queued or in flight per shard:",
                DRAIN_TIMEOUT_S);
        for (int i = 0; i < nshards; i++)
            fprintf(stderr, " %" PRIu64, ag_stat_get(&rt.shards[i]->stats, AG_STAT_DB_QUEUE));
        fprintf(stderr, "); stopping\n");
        print_socket_backlog();
        ag_runtime_stop(&rt);
        rc = 1;
    }
    /* Totals over the whole run, incl. warm-up and drain, for a row-count check against the table. */
    struct snap end;
    take_snap(&rt, 0, &end);
    ag_runtime_join(&rt);
    ag_migrate_stop();

    uint64_t hist[H_BUCKETS] = {0}, lat_n = 0, lat_sum = 0, lat_max = 0;
    for (int i = 0; i < nshards; i++) {
        for (unsigned k = 0; k < H_BUCKETS; k++)
            hist[k] += bshards[i].hist[k];
        lat_n += bshards[i].lat_n;
        lat_sum += bshards[i].lat_sum_us;
        lat_max = AG_MAX(lat_max, bshards[i].lat_max_us);
    }
    if (end.errors || watch.stalls > watch.recovered)
        rc = 1;
    if (measured) {
        double secs = (double)(b.ns - a.ns) / 1e9;
        uint64_t rows = b.ok - a.ok;
        double rps = (double)rows / secs;
        double groups = (double)(b.groups - a.groups);
        double coalesce = groups > 0 ? (double)(b.queries - a.queries) / groups : 0;
        long hz = sysconf(_SC_CLK_TCK);
        double tick_us = 1e6 / (double)hz;
        double cpu_row = rows ? (double)(b.self_us - a.self_us) / (double)rows : 0;
        double pg_row = rows && pg_pid ? (double)(b.pg - a.pg) * tick_us / (double)rows : 0;
        double mach_row = rows ? (double)(b.busy - a.busy) * tick_us / (double)rows : 0;
        double mach_util = b.total > a.total ? (double)(b.busy - a.busy) / (double)(b.total - a.total) : 0;
        double p50 = percentile(hist, lat_n, 0.50), p99 = percentile(hist, lat_n, 0.99);
        double mean = lat_n ? (double)lat_sum / (double)lat_n : 0;
        if (!quiet) {
            printf("rows/s            %.0f  (%" PRIu64 " rows in %.2f s)\n", rps, rows, secs);
            printf("latency           p50 %.0f us, p99 %.0f us, mean %.0f us, max %" PRIu64 " us (submit to callback)\n",
                   p50, p99, mean, lat_max);
            printf("coalescing        %.2f statements per pipeline group (%" PRIu64 " / %.0f)\n", coalesce,
                   b.queries - a.queries, groups);
            printf("CPU per row       %.1f us this process", cpu_row);
            if (pg_pid)
                printf(", %.1f us Postgres", pg_row);
            printf(", %.1f us whole machine (%.0f%% busy)\n", mach_row, mach_util * 100);
            printf("errors            %" PRIu64 " (whole run), %" PRIu64 " refused submits\n", end.errors,
                   end.refused);
            printf("stalls            %d shard stalls of >= %.0f s (%d during warm-up, %d recovered)%s\n", watch.stalls,
                   STALL_NS / 1e9, warm_stalls, watch.recovered, drain_timeout ? ", drain timed out" : "");
        }
        printf("RESULT shards=%d conns=%ld concurrency=%ld secs=%.3f rows=%" PRIu64 " rows_per_s=%.1f p50_us=%.0f "
               "p99_us=%.0f mean_us=%.0f max_us=%" PRIu64 " coalesce=%.2f cpu_us_per_row=%.2f pg_cpu_us_per_row=%.2f "
               "machine_cpu_us_per_row=%.2f machine_busy=%.3f errors=%" PRIu64 " refused=%" PRIu64
               " total_ok=%" PRIu64 " stalls=%d warmup_stalls=%d recovered=%d drain_timeout=%d\n",
               nshards, conns, conc, secs, rows, rps, p50, p99, mean, lat_max, coalesce, cpu_row, pg_row, mach_row,
               mach_util, end.errors, end.refused, end.ok, watch.stalls, warm_stalls, watch.recovered, drain_timeout);
    } else {
        printf("RESULT shards=%d conns=%ld concurrency=%ld rows=0 rows_per_s=0 errors=%" PRIu64 " total_ok=%" PRIu64
               " failed=1\n",
               nshards, conns, conc, end.errors, end.ok);
    }
    for (int i = 0; i < nshards; i++)
        ag_free(bshards[i].reqs);
    ag_free(bshards);
    return rc;
}
