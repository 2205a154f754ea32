/* The persistence layer against a real Postgres (DATABASE_URL): write coalescing into one pipeline
 * group, isolation of a failing statement inside a group, reads, and the bounded queue. Runs one
 * shard of the real runtime; the test logic runs as a task on that shard. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/check.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "persist/migrate.h"
#include "persist/pg.h"
#include "persist/stats.h"

#define NWRITES 64

struct op {
    struct ag_pg_query q;
    char id[64];
    bool done;
    long count;
};

static struct ag_pg_config cfg = AG_PG_CONFIG_DEFAULT;
static char prefix[40];
static struct op writes[NWRITES], dup_batch[10], cap_ops[100], count_op;
static char id_list[8192];
static int phase;
static bool finished;
static struct ag_timer step_timer;
static uint64_t groups_before;
static _Atomic int failures;

#define EXPECT(cond)                                                                                                   \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "test_pg.c:%d: expected %s (phase %d)\n", __LINE__, #cond, phase);                        \
            atomic_fetch_add(&failures, 1);                                                                            \
        }                                                                                                              \
    } while (0)

static void on_done(struct ag_pg_query *q, PGresult *res)
{
    struct op *o = AG_CONTAINER_OF(q, struct op, q);
    o->done = true;
    if (q->status == AG_PG_OK && res && PQntuples(res) == 1 && PQnfields(res) == 1)
        o->count = atol(PQgetvalue(res, 0, 0));
}

/* A thread-sized metadata document (~500 bytes), so a group's results outgrow libpq's first read. */
static char big_meta[600];

static void insert(struct ag_shard *s, struct op *o, const char *id)
{
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "%s", id);
    o->q.stmt = AG_SQL_THREAD_INSERT;
    o->q.kind = AG_PG_WRITE;
    o->q.nparams = 3;
    o->q.params[0] = o->id;
    o->q.params[1] = "anonymous";
    o->q.params[2] = "{\"test\":\"pg\"}";
    o->q.cb = on_done;
    EXPECT(ag_pg_submit(s, &o->q) == 0);
}

static bool all_done(struct op *ops, int n)
{
    for (int i = 0; i < n; i++)
        if (!ops[i].done)
            return false;
    return true;
}

#define CHAINS 64
#define CHAIN_TOTAL 3000
static struct op chains[CHAINS];
static int chain_rows, chain_sent, chain_errors;

static void chain_next(struct ag_shard *s, int i);

static void on_chain(struct ag_pg_query *q, PGresult *res)
{
    struct op *o = AG_CONTAINER_OF(q, struct op, q);
    if (q->status != AG_PG_OK)
        chain_errors++;
    chain_rows++;
    if (chain_sent < CHAIN_TOTAL)
        chain_next(ag_shard_self(), (int)(o - chains));
}

static void chain_next(struct ag_shard *s, int i)
{
    char id[64];
    snprintf(id, sizeof id, "%s-c%d", prefix, chain_sent++);
    insert(s, &chains[i], id);
    chains[i].q.params[2] = big_meta;
    chains[i].q.cb = on_chain;
}

static void step(struct ag_timer *t)
{
    struct ag_shard *s = ag_shard_self();
    char id[64];
    switch (phase) {
    case 0: /* wait for the connections */
        if (!ag_pg_up(s))
            break;
        /* 1: many writes in one turn share one pipeline group (one transaction, one commit). */
        groups_before = ag_stat_get(&s->stats, AG_STAT_DB_GROUPS);
        for (int i = 0; i < NWRITES; i++) {
            snprintf(id, sizeof id, "%s-w%d", prefix, i);
            insert(s, &writes[i], id);
        }
        phase = 1;
        break;
    case 1:
        if (!all_done(writes, NWRITES))
            break;
        for (int i = 0; i < NWRITES; i++)
            EXPECT(writes[i].q.status == AG_PG_OK);
        EXPECT(ag_stat_get(&s->stats, AG_STAT_DB_GROUPS) - groups_before == 1);
        /* 2: a duplicate key in a group fails alone; the rest of the group still commits. */
        for (int i = 0; i < 10; i++) {
            if (i == 4)
                snprintf(id, sizeof id, "%s-w0", prefix); /* exists already */
            else
                snprintf(id, sizeof id, "%s-d%d", prefix, i);
            insert(s, &dup_batch[i], id);
        }
        phase = 2;
        break;
    case 2:
        if (!all_done(dup_batch, 10))
            break;
        for (int i = 0; i < 10; i++) {
            if (i == 4) {
                EXPECT(dup_batch[i].q.status == AG_PG_SQL_ERROR);
                EXPECT(!strcmp(dup_batch[i].q.sqlstate, "23505"));
            } else {
                EXPECT(dup_batch[i].q.status == AG_PG_OK);
            }
        }
        /* 3: read back what committed: 64 + 9 rows. */
        {
            size_t n = 0;
            n += (size_t)snprintf(id_list + n, sizeof id_list - n, "{");
            for (int i = 0; i < NWRITES; i++)
                n += (size_t)snprintf(id_list + n, sizeof id_list - n, "%s\"%s\"", i ? "," : "", writes[i].id);
            for (int i = 0; i < 10; i++)
                if (i != 4)
                    n += (size_t)snprintf(id_list + n, sizeof id_list - n, ",\"%s\"", dup_batch[i].id);
            snprintf(id_list + n, sizeof id_list - n, "}");
            memset(&count_op, 0, sizeof count_op);
            count_op.q.stmt = AG_SQL_THREAD_EXISTS;
            count_op.q.kind = AG_PG_READ;
            count_op.q.nparams = 2;
            count_op.q.params[0] = id_list;
            count_op.q.params[1] = "anonymous";
            count_op.q.cb = on_done;
            EXPECT(ag_pg_submit(s, &count_op.q) == 0);
        }
        phase = 3;
        break;
    case 3:
        if (!count_op.done)
            break;
        EXPECT(count_op.q.status == AG_PG_OK);
        EXPECT(count_op.count == NWRITES + 9);
        /* 4: the queue is bounded: the submission past queue_max is refused, nothing queued. */
        {
            int accepted = 0, refused = 0;
            for (int i = 0; i < 100; i++) {
                memset(&cap_ops[i], 0, sizeof cap_ops[i]);
                cap_ops[i].q.stmt = AG_SQL_PING;
                cap_ops[i].q.kind = AG_PG_READ;
                cap_ops[i].q.cb = on_done;
                int rc = ag_pg_submit(s, &cap_ops[i].q);
                if (rc == 0)
                    accepted++;
                else if (rc == -EAGAIN) {
                    refused++;
                    cap_ops[i].done = true;
                }
            }
            EXPECT(accepted == (int)cfg.queue_max);
            EXPECT(refused == 100 - (int)cfg.queue_max);
        }
        phase = 4;
        break;
    case 4:
        if (!all_done(cap_ops, 100))
            break;
        for (int i = 0; i < (int)cfg.queue_max; i++)
            EXPECT(cap_ops[i].q.status == AG_PG_OK);
        EXPECT(ag_pg_pending(s) == 0);
        /* 5: sustained load: 64 chains, each inserting its next row from the previous callback, so
         * results keep arriving while more is sent (a read stall here once hung the layer). */
        for (int i = 0; i < CHAINS; i++)
            chain_next(s, i);
        phase = 5;
        break;
    case 5:
        if (chain_rows < CHAIN_TOTAL)
            break;
        EXPECT(chain_errors == 0);
        EXPECT(ag_pg_pending(s) == 0);
        finished = true;
        return;
    }
    ag_timer_arm(&s->timers, &step_timer, s->now_ns + 5000000u);
}

static int on_start(struct ag_shard *s)
{
    ag_pg_start(s, &cfg);
    ag_timer_init(&step_timer, step);
    ag_timer_arm(&s->timers, &step_timer, s->now_ns);
    return 0;
}

static bool is_idle(struct ag_shard *s)
{
    return finished;
}

int main(void)
{
    const char *url = getenv("DATABASE_URL");
    if (!url || !*url) {
        fprintf(stderr, "test_pg: DATABASE_URL is not set (tools/test.sh starts a cluster)\n");
        return 1;
    }
    ag_log_level = AG_LOG_WARN;
    cfg.url = (char *)url;
    cfg.connections_per_shard = 2;
    cfg.queue_max = 80; /* >= CHAINS: the sustained phase never hits the bound */
    snprintf(prefix, sizeof prefix, "test-pg-%llx", (unsigned long long)ag_clock_real_us());
    size_t n = (size_t)snprintf(big_meta, sizeof big_meta, "{\"user_id\":\"%s\",\"notes\":\"", prefix);
    while (n < 500)
        big_meta[n++] = 'x';
    snprintf(big_meta + n, sizeof big_meta - n, "\"}");
    ag_pg_register();
    ag_migrate_start(url);
    int cpus[1] = {0};
    struct ag_shard_hooks hooks = {.on_start = on_start, .on_flush = ag_pg_flush, .is_idle = is_idle,
                                   .on_exit = ag_pg_exit};
    struct ag_runtime rt;
    CHECK(ag_runtime_start(&rt, &(struct ag_loop_config){0}, 1, cpus, 0, &hooks, NULL) == 0);
    ag_runtime_drain(&rt); /* exits once the steps finished */
    /* A bounded wait: if the database never comes up, stop rather than hang. */
    uint64_t deadline = ag_clock_mono_ns() + 60ull * 1000000000u;
    while (ag_runtime_running(&rt) && ag_clock_mono_ns() < deadline) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    if (ag_runtime_running(&rt)) {
        fprintf(stderr, "test_pg: timed out in phase %d\n", phase);
        ag_runtime_stop(&rt);
        CHECK(!"timed out");
    }
    ag_runtime_join(&rt);
    ag_migrate_stop();
    CHECK(finished);
    CHECK(atomic_load(&failures) == 0);
    return CHECK_DONE();
}
