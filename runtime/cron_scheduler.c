#include "runtime/cron_scheduler.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/timer.h"
#include "core/tz.h"
#include "persist/pg.h"
#include "runtime/cronexpr.h"
#include "runtime/owner.h"
#include "runtime/run.h"
#include "runtime/run_spec.h"

#define BATCH 100
#define BATCH_TEXT "100"

enum {
    MSG_CRON_FIRE = 24, /* ptr: struct firing, for the shard that creates its run */
    MSG_CRON_DONE = 25, /* ptr: struct firing whose run was created or refused, back to shard 0 */
};

/* One claimed cron on its way: built on shard 0, sent to the run's shard, back to shard 0. Only the
 * shard it is on touches it, and it carries no JSON values (jansson's refcounts are not atomic). */
struct firing {
    char cron_id[37];
    char assistant_id[257];
    char thread_id[37];
    char owner[AG_IDENTITY_OWNER_MAX]; /* the cron's owner: its runs are theirs */
    char claim[64];   /* claimed_until text, the token of our claim */
    char orc[8];      /* on_run_completed */
    char next[24];    /* the next occurrence, Unix seconds text */
    bool stateless;
    char *payload;    /* JSON text */
    char *schedule, *timezone;
    int64_t slot;     /* the occurrence fired (next_run_date), Unix seconds */
    int target;       /* shard creating the run */
    int status;       /* the run creation's HTTP status */
    struct ag_pg_query q;
    struct ag_task task;
};

/* Shard 0's scheduler. Thread-local and never freed: the database layer may still hold its query
 * after the exit hook (see runtime/sweep.h). */
struct sched {
    struct ag_shard *s; /* NULL when not running */
    const struct ag_cron_config *cfg;
    struct ag_timer timer;
    struct ag_pg_query q;
    bool busy;          /* q submitted */
    unsigned inflight;  /* firings not yet advanced */
    unsigned rr;        /* next shard for a stateless cron */
    char claim_ms[16];
};

static _Thread_local struct sched sched;

static void firing_free(struct firing *f)
{
    ag_free(f->payload);
    ag_free(f->schedule);
    ag_free(f->timezone);
    ag_free(f);
}

/* --- on the run's shard --- */

static void go_home(struct ag_shard *s, struct firing *f);

static void go_home_task(struct ag_task *t)
{
    go_home(ag_shard_self(), AG_CONTAINER_OF(t, struct firing, task));
}

static void advance(struct firing *f);

static void go_home(struct ag_shard *s, struct firing *f)
{
    if (s->id == 0) {
        advance(f);
        return;
    }
    struct ag_msg m = {.type = MSG_CRON_DONE, .ptr = f};
    if (ag_shard_send(s, 0, &m) != 0) { /* shard 0's inbox is full: next turn */
        f->task.fn = go_home_task;
        ag_shard_defer(s, &f->task);
    }
}

/* Set once on the main thread before the shards start (ag_cron_scheduler_set_create), then only read. */
static ag_cron_create_fn create_run;

void ag_cron_scheduler_set_create(ag_cron_create_fn create)
{
    create_run = create;
}

static void on_run_created(void *ud, int status, const char *body, size_t len)
{
    struct firing *f = ud;
    f->status = status;
    if (status == 200)
        ag_log(AG_LOG_DEBUG, "msg=\"cron fired\" cron_id=%s thread_id=%s", f->cron_id, f->thread_id);
    else
        ag_log(AG_LOG_WARN, "msg=\"cron firing refused\" cron_id=%s thread_id=%s status=%d answer=%.*s", f->cron_id,
               f->thread_id, status, (int)(len > 300 ? 300 : len), body);
    go_home(ag_shard_self(), f);
}

static void fire_here(struct ag_shard *s, struct firing *f)
{
    if (s->draining || s->stopping) {
        f->status = 503; /* released: the next process to tick fires it */
        go_home(s, f);
        return;
    }
    json_t *payload = json_loads(f->payload, 0, NULL);
    struct ag_run_spec spec;
    char err[512];
    bool ok = ag_run_spec_for_cron(f->cron_id, f->assistant_id, f->stateless, payload, f->orc[0] ? f->orc : NULL,
                                   &spec, err, sizeof err);
    json_decref(payload);
    if (!ok) {
        ag_log(AG_LOG_WARN, "msg=\"cron payload no longer makes a valid run\" cron_id=%s reason=\"%s\"", f->cron_id,
               err);
        f->status = 422;
        go_home(s, f);
        return;
    }
    snprintf(spec.thread_id, sizeof spec.thread_id, "%s", f->thread_id);
    snprintf(spec.owner, sizeof spec.owner, "%s", f->owner);
    create_run(&spec, on_run_created, f);
}

static void on_msg_fire(struct ag_shard *s, const struct ag_msg *m)
{
    fire_here(s, m->ptr);
}

/* --- on shard 0 --- */

static void on_advanced(struct ag_pg_query *q, PGresult *res)
{
    struct firing *f = AG_CONTAINER_OF(q, struct firing, q);
    (void)res;
    if (q->status != AG_PG_OK)
        ag_log(AG_LOG_WARN, "msg=\"cron advance failed: its claim expires and it fires again\" cron_id=%s error=\"%s\"",
               f->cron_id, q->error ? q->error : "no database");
    sched.inflight--;
    firing_free(f);
}

/* Moves the cron past the fired occurrence (or releases it for a retry after a transient failure). */
static void advance(struct firing *f)
{
    bool retry = f->status >= 500;
    memset(&f->q, 0, sizeof f->q);
    f->q.kind = AG_PG_WRITE;
    f->q.cb = on_advanced;
    f->q.ud = f;
    f->q.params[0] = f->cron_id;
    f->q.params[1] = f->claim;
    if (retry) {
        f->q.stmt = AG_SQL_CRON_RELEASE;
        f->q.nparams = 2;
    } else {
        struct ag_cronexpr e;
        char err[200];
        const struct ag_tz *z = ag_tz_find(f->timezone);
        int64_t now = (int64_t)ag_us_to_sec(ag_clock_real_us());
        int64_t next = z && ag_cronexpr_parse(f->schedule, strlen(f->schedule), &e, err, sizeof err)
                           ? ag_cronexpr_next(&e, z, now > f->slot ? now : f->slot)
                           : -1;
        if (next >= 0)
            snprintf(f->next, sizeof f->next, "%" PRId64, next);
        f->q.stmt = AG_SQL_CRON_ADVANCE;
        f->q.params[2] = next >= 0 ? f->next : NULL;
        f->q.nparams = 3;
    }
    if (!sched.s || ag_pg_submit(sched.s, &f->q) != 0) {
        ag_log(AG_LOG_WARN, "msg=\"cron advance not sent: its claim expires and it fires again\" cron_id=%s",
               f->cron_id);
        sched.inflight--;
        firing_free(f);
    }
}

static void on_msg_done(struct ag_shard *s, const struct ag_msg *m)
{
    (void)s;
    advance(m->ptr);
}

static void dispatch(struct ag_shard *s, struct firing *f);

static void dispatch_task(struct ag_task *t)
{
    dispatch(ag_shard_self(), AG_CONTAINER_OF(t, struct firing, task));
}

static void dispatch(struct ag_shard *s, struct firing *f)
{
    if (f->target == s->id) {
        fire_here(s, f);
        return;
    }
    struct ag_msg m = {.type = MSG_CRON_FIRE, .ptr = f};
    if (ag_shard_send(s, f->target, &m) != 0) { /* that shard's inbox is full: next turn */
        f->task.fn = dispatch_task;
        ag_shard_defer(s, &f->task);
    }
}

static char *dup_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return ag_strdup(v ? v : "");
}

static void copy_str(char *dst, size_t n, const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    snprintf(dst, n, "%s", v ? v : "");
}

/* One claimed cron (an object of CRON_CLAIM's array) → a firing on its way to its shard. */
static void start_firing(struct ag_shard *s, const json_t *c)
{
    struct firing *f = ag_calloc(1, sizeof *f);
    copy_str(f->cron_id, sizeof f->cron_id, c, "cron_id");
    copy_str(f->assistant_id, sizeof f->assistant_id, c, "assistant_id");
    copy_str(f->owner, sizeof f->owner, c, "owner");
    copy_str(f->claim, sizeof f->claim, c, "claim");
    copy_str(f->orc, sizeof f->orc, c, "on_run_completed");
    f->schedule = dup_str(c, "schedule");
    f->timezone = dup_str(c, "timezone");
    f->payload = json_dumps(json_object_get(c, "payload"), JSON_COMPACT);
    if (!f->payload)
        f->payload = ag_strdup("{}");
    f->slot = (int64_t)floor(json_number_value(json_object_get(c, "slot")));
    int n = s->rt->nshards;
    const char *tid = json_string_value(json_object_get(c, "thread_id"));
    if (tid) {
        snprintf(f->thread_id, sizeof f->thread_id, "%s", tid);
        f->target = ag_owner_shard(f->thread_id, strlen(f->thread_id), n);
    } else {
        f->stateless = true;
        f->target = (int)(sched.rr++ % (unsigned)n);
        ag_owner_mint_thread_id(s->rt->shards[f->target], f->thread_id); /* reads only its id */
    }
    sched.inflight++;
    if (s->draining || s->stopping) {
        f->status = 503;
        advance(f);
        return;
    }
    dispatch(s, f);
}

static void arm(uint64_t delay_ns)
{
    struct ag_shard *s = sched.s;
    if (s && !s->draining && !s->stopping)
        ag_timer_arm(&s->timers, &sched.timer, s->now_ns + delay_ns);
}

static void on_claimed(struct ag_pg_query *q, PGresult *res)
{
    struct ag_shard *s = sched.s;
    uint64_t poll_ns = s ? ag_ms_to_ns(sched.cfg->poll_ms) : AG_NS_PER_SEC;
    sched.busy = false;
    if (q->status != AG_PG_OK || PQntuples(res) != 1) {
        if (q->status == AG_PG_SQL_ERROR)
            ag_log(AG_LOG_WARN, "msg=\"cron tick failed\" error=\"%s\"", q->error ? q->error : "");
        arm(poll_ns);
        return;
    }
    json_t *list = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    size_t n = json_array_size(list);
    for (size_t i = 0; i < n && s; i++)
        start_firing(s, json_array_get(list, i));
    json_decref(list);
    uint64_t delay = poll_ns;
    if (n >= BATCH) {
        delay = 0;
    } else if (!PQgetisnull(res, 0, 1)) {
        double due = ag_sec_to_ns_f(strtod(PQgetvalue(res, 0, 1), NULL));
        if (due < (double)delay)
            delay = due > 0 ? (uint64_t)due : 0;
    }
    arm(delay);
}

static void on_tick(struct ag_timer *t)
{
    (void)t;
    struct ag_shard *s = sched.s;
    if (!s || sched.busy || s->draining || s->stopping)
        return;
    memset(&sched.q, 0, sizeof sched.q);
    sched.q.stmt = AG_SQL_CRON_CLAIM;
    sched.q.kind = AG_PG_WRITE;
    sched.q.nparams = 2;
    sched.q.params[0] = BATCH_TEXT;
    sched.q.params[1] = sched.claim_ms;
    sched.q.cb = on_claimed;
    if (ag_pg_submit(s, &sched.q) == 0)
        sched.busy = true;
    else
        arm(ag_ms_to_ns(sched.cfg->poll_ms)); /* no connection yet, or the queue is full */
}

void ag_cron_scheduler_register(void)
{
    ag_shard_register_msg(MSG_CRON_FIRE, on_msg_fire);
    ag_shard_register_msg(MSG_CRON_DONE, on_msg_done);
}

void ag_cron_scheduler_start(struct ag_shard *s, const struct ag_cron_config *cfg)
{
    if (s->id != 0 || !ag_pg_configured(s))
        return;
    memset(&sched, 0, sizeof sched);
    sched.s = s;
    sched.cfg = cfg;
    snprintf(sched.claim_ms, sizeof sched.claim_ms, "%u", cfg->claim_ms);
    ag_timer_init(&sched.timer, on_tick);
    arm(1); /* at once: what fell due while no agentd ran fires now */
}

bool ag_cron_scheduler_idle(struct ag_shard *s)
{
    return s->id != 0 || sched.s != s || (!sched.busy && sched.inflight == 0);
}

void ag_cron_scheduler_stop(struct ag_shard *s)
{
    if (s->id != 0 || sched.s != s)
        return;
    ag_timer_cancel(&s->timers, &sched.timer);
    sched.s = NULL;
}
