#include "protocol/agent/run.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "graph/engine.h"
#include "graph/registry.h"
#include "net/obuf.h"
#include "persist/pg.h"
#include "protocol/agent/run_modes.h"
#include "protocol/agent/tlog.h"
#include "protocol/agent/v2proj.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/owner.h"
#include "protocol/sweep.h"

#define OWNER "anonymous"
/* Ended runs kept in memory per shard for join and attach (with their events). */
#define RECENT_MAX 512
#define SSE_HEARTBEAT ": heartbeat\r\n\r\n"

enum rstate {
    R_CREATING,  /* RUN_CREATE in flight */
    R_QUEUED,    /* waiting for the thread (enqueue) or its start time */
    R_RUNNING,   /* the engine executes it */
    R_FINISHING, /* RUN_FINISH in flight */
    R_DONE,      /* ended and written; kept for join/attach until evicted */
};

enum sub_kind {
    SUB_STREAM, /* SSE of the run's events */
    SUB_WAIT,   /* the final output as a streamed JSON body (keep-alive newlines before it) */
    SUB_CANCEL, /* cancel?wait=1: 204 once ended */
    SUB_THREAD, /* GET /threads/{id}/stream: every run of the thread in turn (ids "<run id>:<n>") */
};

struct sub {
    struct sub *next;
    struct ag_run *run; /* SUB_THREAD: the run it follows now, or NULL while it waits on t */
    struct trt *t;      /* SUB_THREAD only */
    struct ag_req *r;
    enum sub_kind kind;
    bool cancel_on_gone;
};

/* A thread with runs on this shard. */
struct trt {
    char id[37];
    struct ag_run *active;
    struct ag_run *qhead, *qtail; /* R_QUEUED runs in admission order (run->qnext) */
    unsigned creating;            /* runs in R_CREATING */
    unsigned finishing;           /* runs in R_FINISHING (they still point here) */
    json_t *last_cp;              /* the latest root checkpoint (owned); valid when cp_known */
    bool cp_known;
    struct sub *waiting;          /* thread streams between runs (SUB_THREAD with run NULL) */
    unsigned nthread_subs;        /* thread streams, waiting or following a run */
};

struct ag_run {
    char run_id[37];
    struct trt *t;
    enum rstate state;
    struct ag_run_spec spec;
    enum ag_run_reply how;
    struct ag_req *creator;  /* until it is answered */
    ag_run_created_fn created_cb; /* instead of a creator: told the Run (ag_run_submit_cb) */
    void *created_ud;
    json_t *kwargs;          /* as stored: merged config and context */
    char *kwargs_text;       /* a direct run's kwargs as RUN_PREPARE read them (RUN_RECORD writes them) */
    json_t *fork_cp;         /* the checkpoint a fork starts from (owned) */
    json_t *prev_cp;         /* the thread's checkpoint when the run started (rollback restores it) */
    const struct ag_graph_def *graph;
    struct ag_graph_run *exec;
    struct ag_v2proj *v2;    /* its events in the thread's v2 log (NULL for a stateless run deleted after) */
    uint64_t v2_end;         /* the seq of its terminal v2 event, held until the outcome is stored */
    /* Events, each one SSE frame; ids ev_first .. ev_first + nev - 1. */
    struct ag_obuf **ev;
    uint32_t nev, evcap;
    uint64_t ev_first, next_id;
    json_t *output;  /* the last values payload (or interrupt), the answer of wait/join */
    struct ag_run_modes modes; /* its v1 stream modes' framing */
    json_t *md;      /* the run's metadata as nodes and checkpoints see it */
    /* Outcome. */
    const char *status;        /* terminal status (a literal) */
    char *error;               /* error text for error/timeout */
    const char *cancel_status; /* set by a cancel: interrupted / timeout / error */
    bool rollback;
    /* Written once, at its end (RUN_PREPARE read what it needs; RUN_RECORD writes the run, its
     * checkpoints and the thread together), unless it outlives the turn it started in: then it is
     * promoted, created like any run (RUN_CREATE), and its creator is answered from then on. */
    bool direct;
    bool orphan; /* its promotion failed: nothing of it is written, its creator was answered */
    json_t *final_values, *final_interrupts;
    /* Persistence. */
    json_t *cps; /* checkpoints not yet written */
    bool progress_inflight;
    struct ag_pg_query q;
    struct ag_dbq_strs strs;
    struct ag_task flush_task;
    struct ag_task end_task; /* a direct run that ends with nothing to write */
    struct ag_timer timer; /* timeout while running; start time while queued */
    struct sub *subs;
    struct ag_run *qnext;
    struct ag_run *rnext, *rprev; /* the recent list (R_DONE) */
};

struct run_shard {
    struct ag_shard *s;
    const struct ag_config *cfg;
    struct ag_strmap threads; /* id → struct trt */
    struct ag_strmap runs;    /* run id → struct ag_run (any state after R_CREATING) */
    struct ag_run *recent_head, *recent_tail;
    uint32_t nrecent;
    uint32_t live; /* runs not yet R_DONE */
};

static _Thread_local struct run_shard *rs;

/* This process's id as the claimant of its runs (runs.claimed_by), one per process. */
static char boot_id[37];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void make_boot_id(void)
{
    ag_uuid4(boot_id);
}

/* --- small helpers --- */

void ag_run_spec_clear(struct ag_run_spec *spec)
{
    json_decref(spec->input);
    json_decref(spec->command);
    json_decref(spec->config);
    json_decref(spec->context);
    json_decref(spec->metadata);
    json_decref(spec->checkpoint);
    json_decref(spec->interrupt_before);
    json_decref(spec->interrupt_after);
    json_decref(spec->stream_mode);
    json_decref(spec->feedback_keys);
    memset(spec, 0, sizeof *spec);
}

static char *dumps(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The JSON text of v owned by st, or NULL for a NULL v. */
static const char *strs_json(struct ag_dbq_strs *st, const json_t *v)
{
    if (!v)
        return NULL;
    char *s = dumps(v);
    const char *p = ag_dbq_strs_dup(st, s, strlen(s));
    ag_free(s);
    return p;
}

static void answer_error(struct ag_req *r, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    ag_http_error(r, status, msg);
}

/* --- thread runtime entries --- */

static struct trt *trt_get(const char *id, bool create)
{
    struct trt *t = ag_strmap_get(&rs->threads, id, strlen(id));
    if (t || !create)
        return t;
    t = ag_calloc(1, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    ag_strmap_put(&rs->threads, t->id, strlen(t->id), t);
    return t;
}

/* Runs that will change the thread's state (admission counts these). */
static bool trt_busy(const struct trt *t)
{
    return t->active || t->qhead || t->creating;
}

/* A run may be written once, at its end, only when nothing else on the thread is being written. */
static bool direct_ok(const struct trt *t)
{
    return !trt_busy(t) && !t->finishing;
}

static bool trt_referenced(const struct trt *t)
{
    return trt_busy(t) || t->finishing || t->nthread_subs;
}

/* Frees t when nothing refers to it any more. Ended runs keep no pointer to it (run->t is cleared). */
static void trt_release(struct trt *t)
{
    if (trt_referenced(t))
        return;
    ag_strmap_del(&rs->threads, t->id, strlen(t->id));
    json_decref(t->last_cp);
    ag_free(t);
}

static void set_last_cp(struct trt *t, json_t *cp)
{
    json_incref(cp);
    json_decref(t->last_cp);
    t->last_cp = cp;
    t->cp_known = true;
}

/* --- events --- */

/* A run's frame as a thread stream sends it: its id "<n>" becomes "<run id>:<n>", so that a
 * Last-Event-ID names the run as well as the event. */
static struct ag_obuf *thread_frame(const struct ag_run *run, const struct ag_obuf *b)
{
    const char *p = b->data + AG_HTTP_PIECE_HEAD;
    size_t n = b->len - AG_HTTP_PIECE_HEAD - 2, cut = n;
    for (size_t i = n; i-- > 0;)
        if (!strncmp(p + i, "\nid: ", 5)) {
            cut = i;
            break;
        }
    const char *id = cut < n ? p + cut + 5 : "";
    size_t idlen = cut < n ? n - cut - 5 - 2 : 0; /* without the blank line */
    size_t rl = strlen(run->run_id);
    struct ag_obuf *t = ag_http_piece_new(cut + 5 + rl + 1 + idlen + 2);
    char *q = ag_http_piece_data(t);
    memcpy(q, p, cut);
    q += cut;
    memcpy(q, "\nid: ", 5);
    q += 5;
    memcpy(q, run->run_id, rl);
    q += rl;
    *q++ = ':';
    memcpy(q, id, idlen);
    q += idlen;
    memcpy(q, "\n\n", 2);
    return t;
}

/* Appends one SSE frame to the run's log and sends it to every stream subscriber. */
static void emit_raw(struct ag_run *run, const char *event, const char *data, size_t dlen)
{
    char head[96];
    uint64_t id = run->next_id++;
    int hl = snprintf(head, sizeof head, "event: %s\ndata: ", event);
    char tail[40];
    int tl = snprintf(tail, sizeof tail, "\nid: %" PRIu64 "\n\n", id);
    /* Framed once (SSE and chunk) for every subscriber. */
    struct ag_obuf *b = ag_http_piece_new((size_t)hl + dlen + (size_t)tl);
    char *p = ag_http_piece_data(b);
    memcpy(p, head, (size_t)hl);
    memcpy(p + hl, data, dlen);
    memcpy(p + hl + dlen, tail, (size_t)tl);
    if (run->nev == run->evcap) {
        uint32_t max = rs->cfg->runs.events_max;
        if (run->nev >= max) { /* bounded: the oldest event goes */
            ag_obuf_unref(run->ev[0]);
            memmove(run->ev, run->ev + 1, (run->nev - 1) * sizeof *run->ev);
            run->nev--;
            run->ev_first++;
        } else {
            run->evcap = run->evcap ? AG_MIN(run->evcap * 2, max) : 8;
            run->ev = ag_realloc(run->ev, run->evcap * sizeof *run->ev);
        }
    }
    run->ev[run->nev++] = b;
    ag_stat_add(&rs->s->stats, AG_STAT_RUN_EVENTS, 1);
    struct ag_obuf *tb = NULL;
    for (struct sub *x = run->subs; x; x = x->next) {
        if (x->r->gone)
            continue;
        if (x->kind == SUB_STREAM) {
            ag_http_stream_write_piece(x->r, b);
        } else if (x->kind == SUB_THREAD) {
            if (!tb)
                tb = thread_frame(run, b);
            ag_http_stream_write_piece(x->r, tb);
        }
    }
    if (tb)
        ag_obuf_unref(tb);
}

static void emit(struct ag_run *run, const char *event, const json_t *data)
{
    char *s = dumps(data);
    emit_raw(run, event, s, strlen(s));
    ag_free(s);
}

/* What protocol/agent/run_modes frames for the run's stream modes goes to its log. */
static void emit_modes(void *ud, const char *event, const json_t *data)
{
    emit(ud, event, data);
}

static void flush_task(struct ag_task *tk);

static void on_engine_event(void *ud, const struct ag_graph_event *ev)
{
    struct ag_run *run = ud;
    if (run->v2)
        ag_v2proj_event(run->v2, ev);
    switch (ev->kind) {
    case AG_GEV_CHECKPOINT: {
        /* A checkpoint comes again, same id, when its tasks end with an interrupt or an error: the
         * newer version replaces the one not yet written (or upserts the written one). */
        size_t n = json_array_size(run->cps);
        json_t *last = n ? json_array_get(run->cps, n - 1) : NULL;
        if (last && json_equal(json_object_get(last, "checkpoint_id"), json_object_get(ev->data, "checkpoint_id")))
            json_array_set(run->cps, n - 1, ev->data);
        else
            json_array_append(run->cps, ev->data);
        set_last_cp(run->t, ev->data);
        /* A long run writes its checkpoints as it goes (one statement for all of a turn's); a run
         * that ends in this turn writes them with its outcome. */
        run->flush_task.fn = flush_task;
        ag_shard_defer(rs->s, &run->flush_task);
        break;
    }
    case AG_GEV_VALUES:
        json_decref(run->output);
        run->output = json_incref(ev->data);
        break;
    case AG_GEV_UPDATES:
        if (json_object_get(ev->data, "__interrupt__")) { /* also what wait and join answer */
            json_decref(run->output);
            run->output = json_incref(ev->data);
        }
        break;
    default: break;
    }
    ag_run_modes_event(&run->modes, ev);
}

/* --- subscribers --- */

static void sub_add(struct ag_run *run, struct ag_req *r, enum sub_kind kind, bool cancel_on_gone);
static void run_cancel(struct ag_run *run, const char *status, bool rollback);

static void sub_unlink(struct sub *x)
{
    struct sub **pp = &x->run->subs;
    while (*pp != x)
        pp = &(*pp)->next;
    *pp = x->next;
}

static void trt_release(struct trt *t);

/* --- thread streams (SUB_THREAD) --- */

/* Follows run from its event from_id on: the ones buffered now, then live. */
static void thread_sub_attach(struct sub *x, struct ag_run *run, uint64_t from_id)
{
    x->run = run;
    x->next = run->subs;
    run->subs = x;
    for (uint64_t i = AG_MAX(from_id, run->ev_first); i < run->ev_first + run->nev; i++) {
        struct ag_obuf *b = thread_frame(run, run->ev[i - run->ev_first]);
        ag_http_stream_write_piece(x->r, b);
        ag_obuf_unref(b);
    }
}

/* x stops following its run: on to the thread's active run, or waiting for the next. */
static void thread_sub_next(struct sub *x)
{
    struct trt *t = x->t;
    x->run = NULL;
    if (t->active) {
        thread_sub_attach(x, t->active, 0);
        return;
    }
    x->next = t->waiting;
    t->waiting = x;
}

static void thread_sub_free(struct sub *x)
{
    struct trt *t = x->t;
    struct ag_req *r = x->r;
    r->on_gone = NULL;
    ag_stat_sub(&rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    ag_free(x);
    ag_http_stream_end(r);
    t->nthread_subs--;
    trt_release(t);
}

/* Ends every thread stream of t (the thread is deleted, or the shard stops). */
static void thread_subs_end(struct trt *t)
{
    while (t->waiting) {
        struct sub *x = t->waiting;
        t->waiting = x->next;
        thread_sub_free(x);
    }
    if (!t->active)
        return;
    for (struct sub **pp = &t->active->subs; *pp;) {
        struct sub *x = *pp;
        if (x->kind == SUB_THREAD) {
            *pp = x->next;
            thread_sub_free(x);
        } else {
            pp = &x->next;
        }
    }
}

static void on_sub_gone(struct ag_req *r)
{
    struct sub *x = r->stream_ud;
    struct ag_run *run = x->run;
    if (x->kind == SUB_THREAD) {
        struct sub **pp = run ? &run->subs : &x->t->waiting;
        while (*pp != x)
            pp = &(*pp)->next;
        *pp = x->next;
        thread_sub_free(x);
        return;
    }
    sub_unlink(x);
    ag_stat_sub(&rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    bool cancel = x->cancel_on_gone;
    ag_free(x);
    ag_http_stream_end(r);
    if (cancel && (run->state == R_RUNNING || run->state == R_QUEUED))
        run_cancel(run, "interrupted", false);
}

static void start_stream(struct ag_req *r, struct ag_run *run, bool wait)
{
    char loc[200];
    snprintf(loc, sizeof loc, "/threads/%s/runs/%s", run->spec.thread_id, run->run_id);
    ag_http_add_header(r, "content-location", loc);
    size_t n = strlen(loc);
    snprintf(loc + n, sizeof loc - n, wait ? "/join" : "/stream");
    ag_http_add_header(r, "location", loc);
    if (wait) {
        ag_http_stream_start(r, 200, "application/json", "\n", rs->cfg->runs.heartbeat_ms);
    } else {
        ag_http_add_header(r, "cache-control", "no-cache");
        ag_http_add_header(r, "x-accel-buffering", "no");
        ag_http_stream_start(r, 200, "text/event-stream", SSE_HEARTBEAT, rs->cfg->runs.heartbeat_ms);
    }
}

static void sub_add(struct ag_run *run, struct ag_req *r, enum sub_kind kind, bool cancel_on_gone)
{
    struct sub *x = ag_calloc(1, sizeof *x);
    x->run = run;
    x->r = r;
    x->kind = kind;
    x->cancel_on_gone = cancel_on_gone;
    x->next = run->subs;
    run->subs = x;
    ag_stat_add(&rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    r->stream_ud = x;
    r->on_gone = on_sub_gone;
}

/* A direct or promoted run's creator is answered from now on: the headers, then for a stream the
 * events so far and the live ones. */
static void attach_creator(struct ag_run *run)
{
    struct ag_req *r = run->creator;
    if (!r)
        return;
    run->creator = NULL;
    bool wait = run->how == AG_RUN_REPLY_WAIT;
    start_stream(r, run, wait);
    sub_add(run, r, wait ? SUB_WAIT : SUB_STREAM, run->spec.cancel_on_disconnect);
    if (!wait)
        for (uint32_t i = 0; i < run->nev; i++)
            ag_http_stream_write_piece(r, run->ev[i]);
}

/* The answer of wait and join: the last values (or the interrupt), {} when there is none, or the
 * error for a failed run. */
static char *outcome_json(struct ag_run *run)
{
    if (run->status && (!strcmp(run->status, "error") || !strcmp(run->status, "timeout"))) {
        json_t *e = json_pack("{s:{s:s,s:s}}", "__error__", "error",
                              !strcmp(run->status, "timeout") ? "TimeoutError" : "GraphError", "message",
                              run->error ? run->error : "execution failed");
        char *s = dumps(e);
        json_decref(e);
        return s;
    }
    return run->output ? dumps(run->output) : ag_strdup("{}");
}

static void sub_finish(struct sub *x)
{
    struct ag_run *run = x->run;
    struct ag_req *r = x->r;
    r->on_gone = NULL;
    ag_stat_sub(&rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    if (!r->gone) {
        if (x->kind == SUB_WAIT) {
            char *s = outcome_json(run);
            ag_http_stream_write(r, s, strlen(s));
            ag_free(s);
        } else if (x->kind == SUB_CANCEL) {
            ag_http_respond(r, 204, "application/json", "", 0);
        }
    }
    enum sub_kind kind = x->kind;
    ag_free(x);
    if (kind == SUB_CANCEL)
        ag_http_done(r);
    else
        ag_http_stream_end(r);
}

/* --- the recent list --- */

static void run_free(struct ag_run *run)
{
    ag_strmap_del(&rs->runs, run->run_id, strlen(run->run_id));
    for (uint32_t i = 0; i < run->nev; i++)
        ag_obuf_unref(run->ev[i]);
    ag_free(run->ev);
    if (run->exec)
        ag_graph_run_free(run->exec);
    ag_v2proj_free(run->v2);
    ag_timer_cancel(&rs->s->timers, &run->timer);
    ag_run_spec_clear(&run->spec);
    json_decref(run->kwargs);
    ag_free(run->kwargs_text);
    json_decref(run->fork_cp);
    json_decref(run->prev_cp);
    json_decref(run->output);
    ag_run_modes_clear(&run->modes);
    json_decref(run->md);
    json_decref(run->final_values);
    json_decref(run->final_interrupts);
    json_decref(run->cps);
    ag_free(run->error);
    ag_dbq_strs_free(&run->strs);
    AG_BUG_ON(run->flush_task.queued);
    ag_free(run);
}

static void recent_add(struct ag_run *run)
{
    run->rprev = rs->recent_tail;
    run->rnext = NULL;
    if (rs->recent_tail)
        rs->recent_tail->rnext = run;
    else
        rs->recent_head = run;
    rs->recent_tail = run;
    if (++rs->nrecent > RECENT_MAX) {
        struct ag_run *old = rs->recent_head;
        rs->recent_head = old->rnext;
        if (rs->recent_head)
            rs->recent_head->rprev = NULL;
        else
            rs->recent_tail = NULL;
        rs->nrecent--;
        run_free(old);
    }
}

/* --- persistence --- */

static struct ag_run *run_of(struct ag_pg_query *q)
{
    return q->ud;
}

static void start_next(struct trt *t);
static void run_ended(struct ag_run *run);
static void submit_finish(struct ag_run *run);

/* run->q becomes a new query of the run (its parameters still to fill). */
static void query_init(struct ag_run *run, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    memset(&run->q, 0, sizeof run->q);
    run->q.stmt = stmt;
    run->q.kind = kind;
    run->q.cb = cb;
    run->q.ud = run;
}

/* A statement that held the run's later writes back (a checkpoint write, a promotion) is done: the
 * outcome goes now if the run has ended meanwhile, else the checkpoints that came meanwhile. */
static void progress_done(struct ag_run *run)
{
    run->progress_inflight = false;
    ag_dbq_strs_free(&run->strs);
    if (run->state == R_FINISHING) {
        submit_finish(run);
        return;
    }
    if (json_array_size(run->cps)) {
        run->flush_task.fn = flush_task;
        ag_shard_defer(rs->s, &run->flush_task);
    }
}

static void on_progress(struct ag_pg_query *q, PGresult *res)
{
    (void)res;
    struct ag_run *run = run_of(q);
    if (q->status != AG_PG_OK)
        ag_log(AG_LOG_WARN, "run=%s checkpoints not written yet: %s", run->run_id, q->error ? q->error : "no database");
    progress_done(run);
}

static void flush_task(struct ag_task *tk)
{
    struct ag_run *run = AG_CONTAINER_OF(tk, struct ag_run, flush_task);
    if (run->state != R_RUNNING || run->progress_inflight || !json_array_size(run->cps))
        return;
    query_init(run, AG_SQL_RUN_PROGRESS, AG_PG_WRITE, on_progress);
    run->q.params[0] = run->run_id;
    run->q.params[1] = run->spec.thread_id;
    run->q.params[2] = strs_json(&run->strs, run->cps);
    run->q.nparams = 3;
    if (ag_pg_submit(rs->s, &run->q) == 0) {
        json_array_clear(run->cps);
        run->progress_inflight = true;
    } else {
        ag_dbq_strs_free(&run->strs); /* kept for the outcome's write (RUN_FINISH retries) */
    }
}

static void finish_retry(struct ag_timer *tm)
{
    submit_finish(AG_CONTAINER_OF(tm, struct ag_run, timer));
}

/* RUN_RECORD of a direct run ended: its creator hears of it now. */
static void direct_written(struct ag_run *run, const struct ag_pg_query *q, PGresult *res)
{
    if (q->status == AG_PG_OK) {
        if (!PQgetisnull(res, 0, 1))
            ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 1), NULL, 10));
        attach_creator(run);
    } else if (run->creator) {
        /* Nothing of the run is stored: its creator must not be told that it ran. */
        ag_dbq_fail(run->creator, q);
        ag_http_done(run->creator);
        run->creator = NULL;
    }
}

static void on_finish(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = run_of(q);
    ag_dbq_strs_free(&run->strs);
    if (q->status == AG_PG_OK || q->status == AG_PG_SQL_ERROR || rs->s->stopping) {
        if (q->status != AG_PG_OK)
            ag_log(AG_LOG_ERROR, "run=%s outcome not written: %s", run->run_id, q->error ? q->error : "stopping");
        if (run->direct)
            direct_written(run, q, res);
        run_ended(run);
        return;
    }
    /* No database right now: the outcome must not be lost, nor reported before it is stored. */
    run->timer.cb = finish_retry;
    ag_timer_arm(&rs->s->timers, &run->timer, rs->s->now_ns + 500000000ull);
}

static const char *thread_status_after(struct ag_run *run)
{
    if (run->t && (run->t->active || run->t->qhead || run->t->creating))
        return "busy";
    if (!strcmp(run->status, "success"))
        return "idle";
    if (!strcmp(run->status, "interrupted"))
        return run->cancel_status ? "idle" : "interrupted";
    return "error";
}

/* {task id: [interrupts]} of the last checkpoint's tasks, as Thread.interrupts. */
static json_t *thread_interrupts(struct ag_run *run)
{
    json_t *out = json_object();
    const json_t *cp = run->t ? run->t->last_cp : NULL;
    size_t i;
    json_t *task;
    json_array_foreach(json_object_get(cp, "tasks"), i, task) {
        json_t *ints = json_object_get(task, "interrupts");
        if (json_array_size(ints) && json_is_string(json_object_get(task, "id")))
            json_object_set(out, json_string_value(json_object_get(task, "id")), ints);
    }
    return out;
}

/* The outcome as RUN_FINISH ($3..$9) and RUN_RECORD ($9..$15) take it, in p[0..7): run status,
 * output, error, checkpoints not written yet, thread status, thread values, thread interrupts. */
static void outcome_params(struct ag_run *run, const char **p)
{
    struct ag_dbq_strs *st = &run->strs;
    p[0] = run->status;
    bool failed = !strcmp(run->status, "error") || !strcmp(run->status, "timeout");
    p[1] = failed ? NULL : strs_json(st, run->output);
    p[2] = run->error ? ag_dbq_strs_dup(st, run->error, strlen(run->error)) : NULL;
    /* A rollback deletes the run's checkpoints; the ones not written yet are simply dropped. */
    p[3] = run->rollback || !run->cps ? "[]" : strs_json(st, run->cps);
    p[4] = thread_status_after(run);
    p[5] = strs_json(st, run->t && run->t->cp_known ? json_object_get(run->t->last_cp, "values") : NULL);
    json_t *ints = thread_interrupts(run);
    p[6] = strs_json(st, ints);
    json_decref(ints);
}

/* The thread's event seq reservation as RUN_CREATE and RUN_RECORD take it (NULL: not known here). */
static const char *reservation_param(struct ag_run *run)
{
    char seq[24];
    const char *reserve = ag_tlog_reservation(run->spec.thread_id, seq);
    return reserve ? ag_dbq_strs_dup(&run->strs, reserve, strlen(reserve)) : NULL;
}

static const char *const mt_names[] = {"reject", "enqueue", "interrupt", "rollback"};

/* RUN_RECORD: a direct run, its checkpoints and the thread, written together. */
static void record_query(struct ag_run *run)
{
    struct ag_dbq_strs *st = &run->strs;
    const char **p = run->q.params;
    json_t *c = json_object_get(json_object_get(run->kwargs, "config"), "configurable");
    p[0] = run->run_id;
    p[1] = run->spec.thread_id;
    p[2] = OWNER;
    p[3] = json_string_value(json_object_get(c, "assistant_id"));
    p[4] = json_string_value(json_object_get(c, "graph_id"));
    p[5] = strs_json(st, run->spec.metadata);
    p[6] = run->kwargs_text;
    p[7] = mt_names[run->spec.mt];
    outcome_params(run, p + 8);
    p[15] = boot_id;
    p[16] = reservation_param(run);
    run->q.nparams = 17;
}

static void direct_end_task(struct ag_task *tk);

static void submit_finish(struct ag_run *run)
{
    if (run->progress_inflight)
        return; /* on_progress sends it: statements of one run stay in order */
    if (run->orphan || (run->direct && run->rollback)) {
        /* Nothing of it was written, and nothing is to be. */
        run->end_task.fn = direct_end_task;
        ag_shard_defer(rs->s, &run->end_task);
        return;
    }
    ag_dbq_strs_free(&run->strs);
    if (run->direct) {
        query_init(run, AG_SQL_RUN_RECORD, AG_PG_WRITE, on_finish);
        record_query(run);
    } else {
        query_init(run, AG_SQL_RUN_FINISH, AG_PG_WRITE, on_finish);
        const char **p = run->q.params;
        p[0] = run->run_id;
        p[1] = run->spec.thread_id;
        outcome_params(run, p + 2);
        p[9] = run->rollback ? "true" : "false";
        p[10] = run->spec.stateless && run->spec.delete_thread ? "true" : "false";
        run->q.nparams = 11;
    }
    if (ag_pg_submit(rs->s, &run->q) != 0) {
        ag_dbq_strs_free(&run->strs);
        run->timer.cb = finish_retry;
        ag_timer_arm(&rs->s->timers, &run->timer, rs->s->now_ns + 500000000ull);
    }
}

/* --- lifecycle --- */

static void queue_remove(struct trt *t, struct ag_run *run)
{
    struct ag_run **pp = &t->qhead, *prev = NULL;
    while (*pp && *pp != run) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp)
        return;
    *pp = run->qnext;
    if (t->qtail == run)
        t->qtail = prev;
    run->qnext = NULL;
}

/* The run reached its outcome (run->status set): write it, then answer its subscribers. */
static void run_finish(struct ag_run *run)
{
    struct trt *t = run->t;
    ag_timer_cancel(&rs->s->timers, &run->timer);
    if (t->active == run)
        t->active = NULL;
    else
        queue_remove(t, run);
    if (run->rollback && run->prev_cp)
        set_last_cp(t, json_is_null(run->prev_cp) ? NULL : run->prev_cp);
    if (run->rollback && run->prev_cp && json_is_null(run->prev_cp))
        t->cp_known = false;
    run->state = R_FINISHING;
    t->finishing++;
    ag_run_modes_end(&run->modes, run->status, run->error, run->output);
    if (run->v2) {
        /* In the log now, before a run started next; the streams get it once the outcome is stored. */
        run->v2_end = ag_v2proj_end(run->v2, run->status, run->error);
        ag_v2proj_free(run->v2);
        run->v2 = NULL;
        ag_tlog_run_end(run->spec.thread_id);
    }
    submit_finish(run);
    start_next(t);
}

static void run_ended(struct ag_run *run)
{
    struct trt *t = run->t;
    json_t *e = json_pack("{s:s}", "status", !strcmp(run->status, "timeout") ? "error" : run->status);
    emit(run, "end", e);
    json_decref(e);
    if (run->v2_end) /* the outcome is stored: a client told "interrupted" can answer at once */
        ag_tlog_release(run->spec.thread_id, run->v2_end);
    run->state = R_DONE;
    rs->live--;
    ag_stat_sub(&rs->s->stats, AG_STAT_RUNS_ACTIVE, 1);
    ag_stat_add(&rs->s->stats,
                !strcmp(run->status, "success")       ? AG_STAT_RUNS_SUCCESS
                : !strcmp(run->status, "interrupted") ? AG_STAT_RUNS_INTERRUPTED
                : !strcmp(run->status, "timeout")     ? AG_STAT_RUNS_TIMEOUT
                                                      : AG_STAT_RUNS_ERROR,
                1);
    while (run->subs) {
        struct sub *x = run->subs;
        run->subs = x->next;
        if (x->kind == SUB_THREAD)
            thread_sub_next(x);
        else
            sub_finish(x);
    }
    if (run->exec) {
        ag_graph_run_free(run->exec);
        run->exec = NULL;
    }
    json_decref(run->cps);
    run->cps = NULL;
    run->t = NULL;
    t->finishing--;
    trt_release(t);
    recent_add(run);
}

static void direct_end_task(struct ag_task *tk)
{
    struct ag_run *run = AG_CONTAINER_OF(tk, struct ag_run, end_task);
    attach_creator(run);
    run_ended(run);
}

static void on_engine_done(void *ud, enum ag_graph_outcome outcome, const json_t *values, const json_t *interrupts,
                           const char *error)
{
    struct ag_run *run = ud;
    (void)values;
    (void)interrupts;
    switch (outcome) {
    case AG_GRAPH_SUCCESS: run->status = "success"; break;
    case AG_GRAPH_INTERRUPTED: run->status = "interrupted"; break;
    case AG_GRAPH_ERROR:
        run->status = "error";
        run->error = ag_strdup(error ? error : "execution failed");
        break;
    case AG_GRAPH_CANCELLED:
        run->status = run->cancel_status ? run->cancel_status : "interrupted";
        if (!strcmp(run->status, "timeout"))
            run->error = ag_strdup("run exceeded its time limit");
        break;
    }
    run_finish(run);
}

static void on_timeout(struct ag_timer *tm)
{
    run_cancel(AG_CONTAINER_OF(tm, struct ag_run, timer), "timeout", false);
}

static json_t *checkpoint_metadata(struct ag_run *run)
{
    json_t *md = json_object();
    if (json_is_object(run->spec.metadata))
        json_object_update(md, run->spec.metadata);
    json_t *cfg = json_object_get(run->kwargs, "config");
    json_t *c = json_object_get(cfg, "configurable");
    json_object_set(md, "graph_id", json_object_get(c, "graph_id"));
    json_object_set(md, "assistant_id", json_object_get(c, "assistant_id"));
    json_object_set_new(md, "thread_id", json_string(run->spec.thread_id));
    json_object_set_new(md, "run_id", json_string(run->run_id));
    json_object_set_new(md, "run_attempt", json_integer(1));
    return md;
}

static uint64_t host_now(void *ud)
{
    (void)ud;
    return rs->s->now_ns;
}

static void run_start(struct ag_run *run)
{
    struct trt *t = run->t;
    run->state = R_RUNNING;
    t->active = run;
    while (t->waiting) {
        struct sub *x = t->waiting;
        t->waiting = x->next;
        thread_sub_attach(x, run, 0);
    }
    ag_stat_add(&rs->s->stats, AG_STAT_RUNS_STARTED, 1);
    queue_remove(t, run);
    run->prev_cp = t->cp_known && t->last_cp ? json_incref(t->last_cp) : json_null();
    run->timer.cb = on_timeout;
    ag_timer_arm(&rs->s->timers, &run->timer, rs->s->now_ns + (uint64_t)rs->cfg->runs.timeout_ms * 1000000ull);
    struct ag_graph_host host = {
        .ud = run,
        .timers = &rs->s->timers,
        .now_ns = host_now,
        .on_event = on_engine_event,
        .on_done = on_engine_done,
    };
    json_t *md = checkpoint_metadata(run);
    json_decref(run->md);
    run->md = json_incref(md);
    if (!(run->spec.stateless && run->spec.delete_thread)) {
        run->v2 = ag_v2proj_new(run->spec.thread_id, run->run_id, json_string_value(json_object_get(md, "graph_id")));
        ag_tlog_run_begin(run->spec.thread_id);
        ag_v2proj_start(run->v2);
    }
    run->modes.md = run->md;
    ag_run_modes_start(&run->modes, run->spec.input);
    json_t *cfg = json_object_get(run->kwargs, "config");
    struct ag_graph_run_params p = {
        .graph = run->graph,
        .thread_id = run->spec.thread_id,
        .run_id = run->run_id,
        .config = cfg,
        .context = json_object_get(run->kwargs, "context"),
        .metadata = md,
        .input = run->spec.input,
        .command = run->spec.command,
        .from = run->fork_cp ? run->fork_cp : (t->cp_known ? t->last_cp : NULL),
        .interrupt_before = run->spec.interrupt_before,
        .interrupt_after = run->spec.interrupt_after,
        .recursion_limit = (int)json_integer_value(json_object_get(cfg, "recursion_limit")),
    };
    char err[256] = "";
    struct ag_graph_run *exec = ag_graph_run_start(&host, &p, err, sizeof err);
    json_decref(md);
    if (run->state != R_RUNNING) {
        /* it ended inside the start call (a graph that never waits) */
        if (exec)
            ag_graph_run_free(exec);
        return;
    }
    if (!exec) {
        run->status = "error";
        run->error = ag_strdup(err[0] ? err : "the run could not start");
        run_finish(run);
        return;
    }
    run->exec = exec;
}

static void on_delay(struct ag_timer *tm)
{
    struct ag_run *run = AG_CONTAINER_OF(tm, struct ag_run, timer);
    run->spec.after_seconds = 0;
    start_next(run->t);
}

/* Starts the first queued run when the thread is free and its start time has come. */
static void start_next(struct trt *t)
{
    if (t->active || !t->qhead || t->qhead->spec.after_seconds > 0)
        return;
    run_start(t->qhead);
}

static void run_cancel(struct ag_run *run, const char *status, bool rollback)
{
    switch (run->state) {
    case R_QUEUED:
        run->status = status;
        run->rollback = rollback;
        run->cancel_status = status;
        run_finish(run);
        break;
    case R_RUNNING:
        run->cancel_status = status;
        run->rollback = rollback;
        ag_graph_run_cancel(run->exec); /* on_engine_done(CANCELLED) follows */
        break;
    default:
        break;
    }
}

/* --- creation --- */

static void refuse_early(struct ag_req *r, ag_run_created_fn cb, void *ud, int status, const char *msg);

/* A creation refused: answers the creating request, or tells the callback. */
static void refuse_create(struct ag_run *run, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    refuse_early(run->creator, run->created_cb, run->created_ud, status, msg);
}

/* A run whose creation was refused (its creator answered) goes away. */
static void drop_refused(struct ag_run *run)
{
    struct trt *t = run->t;
    if (run->creator)
        ag_http_done(run->creator);
    run->t = NULL;
    trt_release(t);
    ag_run_spec_clear(&run->spec);
    json_decref(run->kwargs);
    ag_free(run);
}

/* Takes the run in once its assistant, kwargs and start checkpoint are known (text of RUN_CREATE's
 * or RUN_PREPARE's row; cp NULL: none): it becomes R_QUEUED on its thread. */
static void admit(struct ag_run *run, const char *graph_id, const char *kwargs, const char *cp_text)
{
    struct trt *t = run->t;
    run->graph = ag_graph_def_find(graph_id);
    run->kwargs = json_loads(kwargs, 0, NULL);
    if (run->direct)
        run->kwargs_text = ag_strdup(kwargs);
    json_t *cp = cp_text ? json_loads(cp_text, 0, NULL) : NULL;
    if (run->spec.checkpoint_id[0])
        run->fork_cp = cp;
    else if (!t->cp_known) {
        set_last_cp(t, cp);
        json_decref(cp);
    } else {
        json_decref(cp);
    }
    ag_strmap_put(&rs->runs, run->run_id, strlen(run->run_id), run);
    rs->live++;
    ag_stat_add(&rs->s->stats, AG_STAT_RUNS_ACTIVE, 1);
    run->cps = json_array();

    /* Admission: interrupt and rollback stop what runs on the thread now; enqueue waits behind it. */
    if (run->spec.mt == AG_MT_INTERRUPT || run->spec.mt == AG_MT_ROLLBACK) {
        bool rb = run->spec.mt == AG_MT_ROLLBACK;
        while (t->qhead)
            run_cancel(t->qhead, "interrupted", rb);
        if (t->active)
            run_cancel(t->active, "interrupted", rb);
    }
    run->state = R_QUEUED;
    if (t->qtail)
        t->qtail->qnext = run;
    else
        t->qhead = run;
    t->qtail = run;
}

static void emit_metadata(struct ag_run *run)
{
    json_t *md = json_pack("{s:s,s:i}", "run_id", run->run_id, "attempt", 1);
    emit(run, "metadata", md);
    json_decref(md);
}

static void on_created(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = run_of(q);
    struct trt *t = run->t;
    struct ag_req *r = run->creator;
    t->creating--;
    ag_dbq_strs_free(&run->strs);
    if (q->status != AG_PG_OK) {
        if (r)
            ag_dbq_fail(r, q);
        else
            refuse_create(run, 503, "%s", "the database could not create the run; retry");
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        refuse_create(run, 404, "Assistant '%s' not found", run->spec.assistant_id);
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 2)) {
        if (!PQgetisnull(res, 0, 4) && PQgetvalue(res, 0, 4)[0] == 'f')
            refuse_create(run, 404, "Checkpoint '%s' not found", run->spec.checkpoint_id);
        else
            refuse_create(run, 404, "Thread '%s' not found", run->spec.thread_id);
        drop_refused(run);
        return;
    }
    if (!PQgetisnull(res, 0, 5))
        ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 5), NULL, 10));
    admit(run, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));

    if (!r) {
        run->created_cb(run->created_ud, 200, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
    } else if (run->how == AG_RUN_REPLY_RUN) {
        char loc[160];
        snprintf(loc, sizeof loc, "/threads/%s/runs/%s", run->spec.thread_id, run->run_id);
        ag_http_add_header(r, "content-location", loc);
        size_t n = (size_t)PQgetlength(res, 0, 2);
        ag_http_json(r, 200, PQgetvalue(res, 0, 2), n);
        ag_http_done(r);
    } else {
        bool wait = run->how == AG_RUN_REPLY_WAIT;
        start_stream(r, run, wait);
        sub_add(run, r, wait ? SUB_WAIT : SUB_STREAM, run->spec.cancel_on_disconnect);
    }
    run->creator = NULL;
    emit_metadata(run);
    if (run->spec.after_seconds > 0) {
        run->timer.cb = on_delay;
        ag_timer_arm(&rs->s->timers, &run->timer,
                     rs->s->now_ns + (uint64_t)(run->spec.after_seconds * 1e9));
    }
    start_next(t);
}

/* kwargs as LangGraph Platform shows them (config and context are merged in SQL). */
static json_t *base_kwargs(const struct ag_run_spec *sp)
{
    json_t *k = json_object();
    json_object_set(k, "input", sp->input ? sp->input : json_null());
    if (sp->command)
        json_object_set(k, "command", sp->command);
    json_object_set_new(k, "stream_mode", sp->stream_mode ? json_incref(sp->stream_mode) : json_pack("[s]", "values"));
    json_object_set_new(k, "interrupt_before", sp->interrupt_before ? json_incref(sp->interrupt_before) : json_null());
    json_object_set_new(k, "interrupt_after", sp->interrupt_after ? json_incref(sp->interrupt_after) : json_null());
    if (sp->checkpoint)
        json_object_set(k, "checkpoint", sp->checkpoint);
    if (sp->checkpoint_id[0])
        json_object_set_new(k, "checkpoint_id", json_string(sp->checkpoint_id));
    json_object_set_new(k, "temporary", json_boolean(sp->stateless && sp->delete_thread));
    json_object_set_new(k, "subgraphs", json_boolean(sp->subgraphs));
    json_object_set_new(k, "resumable", json_boolean(sp->resumable));
    json_object_set_new(k, "on_disconnect", json_string(sp->cancel_on_disconnect ? "cancel" : "continue"));
    if (sp->feedback_keys)
        json_object_set(k, "feedback_keys", sp->feedback_keys);
    if (sp->durability)
        json_object_set_new(k, "durability", json_string(sp->durability));
    if (sp->after_seconds > 0)
        json_object_set_new(k, "after_seconds", json_real(sp->after_seconds));
    return k;
}

/* What RUN_CREATE and RUN_PREPARE both take, in their order: thread id, assistant id, owner, run id
 * in p[0..4); kwargs without config and context, request config, request context in kw[0..3). */
static void request_params(struct ag_run *run, const char **p, const char **kw)
{
    struct ag_run_spec *sp = &run->spec;
    p[0] = sp->thread_id;
    p[1] = sp->assistant_id;
    p[2] = OWNER;
    p[3] = run->run_id;
    json_t *k = base_kwargs(sp);
    kw[0] = strs_json(&run->strs, k);
    json_decref(k);
    kw[1] = strs_json(&run->strs, sp->config);
    kw[2] = strs_json(&run->strs, sp->context);
}

/* run->q becomes its RUN_CREATE (answered by on_created). */
static void create_query(struct ag_run *run)
{
    struct ag_dbq_strs *st = &run->strs;
    struct ag_run_spec *sp = &run->spec;
    query_init(run, AG_SQL_RUN_CREATE, AG_PG_WRITE, on_created);
    const char **p = run->q.params;
    request_params(run, p, p + 5);
    p[4] = strs_json(st, sp->metadata);
    p[8] = sp->create_thread ? "true" : "false";
    p[9] = mt_names[sp->mt];
    p[10] = sp->after_seconds > 0 ? ag_dbq_strs_printf(st, "%.3f", sp->after_seconds) : NULL;
    p[11] = sp->checkpoint_id[0] ? sp->checkpoint_id : NULL;
    p[12] = sp->stateless && sp->delete_thread ? "ephemeral" : NULL;
    p[13] = boot_id;
    p[14] = ag_dbq_strs_printf(st, "%u", rs->cfg->runs.lease_ms);
    p[15] = reservation_param(run);
    p[16] = AG_TLOG_RESERVE_TEXT;
    run->q.nparams = 17;
}

static void on_prepared(struct ag_pg_query *q, PGresult *res);

/* run->q becomes its RUN_PREPARE (a direct run). */
static void prepare_query(struct ag_run *run)
{
    query_init(run, AG_SQL_RUN_PREPARE, AG_PG_READ, on_prepared);
    const char **p = run->q.params;
    request_params(run, p, p + 4);
    p[7] = run->spec.checkpoint_id[0] ? run->spec.checkpoint_id : NULL;
    run->q.nparams = 8;
}

/* The promotion of a direct run failed: its creator hears why, and nothing of it will be written. */
static void promotion_failed(struct ag_run *run, const struct ag_pg_query *q)
{
    ag_log(AG_LOG_WARN, "run=%s msg=\"run not created: %s\"", run->run_id,
           q && q->error ? q->error : "no database or the thread is gone");
    if (run->creator) {
        if (q && q->status != AG_PG_OK)
            ag_dbq_fail(run->creator, q);
        else if (q)
            answer_error(run->creator, 404, "Thread '%s' not found", run->spec.thread_id);
        else
            refuse_early(run->creator, NULL, NULL, 503, "the database queue is full or down; retry");
        ag_http_done(run->creator);
        run->creator = NULL;
    }
    run->orphan = true;
    run->direct = false;
    if (run->state == R_RUNNING) {
        run->error = ag_strdup("the run could not be stored");
        run_cancel(run, "error", false); /* its end writes nothing */
    }
}

static void on_promoted(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = run_of(q);
    if (q->status == AG_PG_OK && !PQgetisnull(res, 0, 2)) {
        run->direct = false;
        if (!PQgetisnull(res, 0, 5))
            ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 5), NULL, 10));
        attach_creator(run);
    } else {
        promotion_failed(run, q);
    }
    progress_done(run);
}

/* A direct run that did not end in the turn it started in is created like any run (RUN_CREATE, in
 * place of its first checkpoint write) and its creator answered once that is stored. */
static void promote(struct ag_run *run)
{
    create_query(run);
    run->q.cb = on_promoted;
    run->progress_inflight = true;
    if (ag_pg_submit(rs->s, &run->q) == 0)
        return;
    run->progress_inflight = false;
    ag_dbq_strs_free(&run->strs);
    promotion_failed(run, NULL);
}

static void on_prepared(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = run_of(q);
    struct trt *t = run->t;
    struct ag_req *r = run->creator;
    t->creating--;
    ag_dbq_strs_free(&run->strs);
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        refuse_create(run, 404, "Assistant '%s' not found", run->spec.assistant_id);
        drop_refused(run);
        return;
    }
    if (PQgetvalue(res, 0, 4)[0] == 'f') {
        refuse_create(run, 404, "Checkpoint '%s' not found", run->spec.checkpoint_id);
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 2) || !direct_ok(t)) {
        /* A thread to create, or runs admitted meanwhile: created like any run. */
        run->direct = false;
        create_query(run);
        t->creating++;
        if (ag_dbq_submit(r, &run->q) == AG_AGAIN)
            return;
        t->creating--;
        ag_dbq_strs_free(&run->strs);
        drop_refused(run);
        return;
    }
    ag_tlog_stored(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 2), NULL, 10));
    admit(run, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
    emit_metadata(run);
    start_next(t);
    if (run->state == R_RUNNING)
        promote(run);
}

static int submit(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how, ag_run_created_fn cb, void *ud);

int ag_run_submit(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how)
{
    return submit(r, spec, how, NULL, NULL);
}

void ag_run_submit_cb(struct ag_run_spec *spec, ag_run_created_fn cb, void *ud)
{
    (void)submit(NULL, spec, AG_RUN_REPLY_RUN, cb, ud);
}

/* A creation refused: answers r, or tells cb (without a request). */
static void refuse_early(struct ag_req *r, ag_run_created_fn cb, void *ud, int status, const char *msg)
{
    if (r) {
        if (status == 503)
            ag_http_add_header(r, "retry-after", "1");
        ag_http_error(r, status, msg);
        return;
    }
    json_t *e = json_pack("{s:s,s:s,s:n}", "error", ag_http_error_code(status), "message", msg, "details");
    char *body = dumps(e);
    json_decref(e);
    cb(ud, status, body, strlen(body));
    ag_free(body);
}

static int submit(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how, ag_run_created_fn cb, void *ud)
{
    struct trt *t = trt_get(spec->thread_id, true);
    if (trt_busy(t) && spec->mt == AG_MT_REJECT) {
        refuse_early(r, cb, ud, 409,
                     "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.");
        ag_run_spec_clear(spec);
        trt_release(t);
        return r ? AG_OK : AG_AGAIN;
    }
    if (t->qhead && spec->mt == AG_MT_ENQUEUE) {
        unsigned n = 0;
        for (struct ag_run *x = t->qhead; x; x = x->qnext)
            n++;
        if (n >= rs->cfg->runs.queue_max) {
            refuse_early(r, cb, ud, 503, "too many runs queued on this thread");
            ag_run_spec_clear(spec);
            return r ? AG_OK : AG_AGAIN;
        }
    }
    struct ag_run *run = ag_calloc(1, sizeof *run);
    run->spec = *spec;
    memset(spec, 0, sizeof *spec);
    run->how = how;
    run->creator = r;
    run->created_cb = cb;
    run->created_ud = ud;
    run->t = t;
    run->state = R_CREATING;
    ag_uuid7(run->run_id);
    run->modes = (struct ag_run_modes){.modes = run->spec.modes, .thread_id = run->spec.thread_id,
                                       .run_id = run->run_id, .emit = emit_modes, .ud = run};
    /* Answered only with its outcome or its stream, on an idle thread that exists: written once, at
     * its end, when it ends within the turn it starts in (RUN_PREPARE, then RUN_RECORD). */
    run->direct = r && how != AG_RUN_REPLY_RUN && !run->spec.stateless && run->spec.after_seconds <= 0 && direct_ok(t);
    t->creating++;
    if (run->direct)
        prepare_query(run);
    else
        create_query(run);
    int rc = r ? ag_dbq_submit(r, &run->q) : (ag_pg_submit(rs->s, &run->q) == 0 ? AG_AGAIN : AG_OK);
    if (rc != AG_AGAIN) {
        if (!r)
            refuse_early(NULL, cb, ud, 503, "the database queue is full or down; retry");
        t->creating--;
        ag_dbq_strs_free(&run->strs);
        ag_run_spec_clear(&run->spec);
        ag_free(run);
        trt_release(t);
        return AG_OK;
    }
    return AG_AGAIN;
}

/* --- existing runs --- */

static struct ag_run *find_run(const char *thread_id, const char *run_id)
{
    struct ag_run *run = ag_strmap_get(&rs->runs, run_id, strlen(run_id));
    if (!run || strcmp(run->spec.thread_id, thread_id) || run->state == R_CREATING)
        return NULL;
    return run;
}

struct outcome_req {
    struct ag_dbreq d;
    enum { O_JOIN, O_ATTACH, O_CANCEL, O_DELETE } what;
    char run_id[37], thread_id[37];
};

static void on_outcome(struct ag_pg_query *q, PGresult *res)
{
    struct outcome_req *o = q->ud;
    struct ag_req *r = o->d.r;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
    } else if (PQntuples(res) == 0) {
        answer_error(r, 404, "Run '%s' not found", o->run_id);
    } else if (o->what == O_DELETE) {
        ag_http_respond(r, 204, "application/json", "", 0);
    } else {
        const char *status = PQgetvalue(res, 0, 0);
        bool active = !strcmp(status, "pending") || !strcmp(status, "running");
        if (o->what == O_JOIN) {
            const char *out = PQgetisnull(res, 0, 1) ? "{}" : PQgetvalue(res, 0, 1);
            ag_http_json(r, 200, out, strlen(out));
        } else if (o->what == O_CANCEL) {
            if (active)
                ag_http_error(r, 409, "the run is active on another agentd process");
            else
                ag_http_respond(r, 204, "application/json", "", 0);
        } else {
            /* Attach to a run that is not in memory any more: its end, as stored. */
            char buf[128];
            int n = snprintf(buf, sizeof buf, "event: end\ndata: {\"status\":\"%s\"}\n\n",
                             !strcmp(status, "timeout") ? "error" : status);
            ag_http_stream_start(r, 200, "text/event-stream", NULL, 0);
            ag_http_stream_write(r, buf, (size_t)n);
        }
    }
    ag_dbreq_finish(&o->d);
}

static int load_outcome(struct ag_req *r, const char *thread_id, const char *run_id, int what, enum ag_sql stmt)
{
    struct outcome_req *o = ag_dbreq_new(sizeof *o, r, stmt, stmt == AG_SQL_RUN_DELETE ? AG_PG_WRITE : AG_PG_READ,
                                         on_outcome);
    o->what = what;
    snprintf(o->run_id, sizeof o->run_id, "%s", run_id);
    snprintf(o->thread_id, sizeof o->thread_id, "%s", thread_id);
    ag_dbreq_param(&o->d, o->run_id);
    ag_dbreq_param(&o->d, o->thread_id);
    ag_dbreq_param(&o->d, OWNER);
    return ag_dbreq_submit(&o->d);
}

int ag_run_join(struct ag_req *r, const char *thread_id, const char *run_id)
{
    struct ag_run *run = find_run(thread_id, run_id);
    if (!run)
        return load_outcome(r, thread_id, run_id, O_JOIN, AG_SQL_RUN_OUTCOME);
    if (run->state == R_DONE) {
        char *s = outcome_json(run);
        ag_http_json(r, 200, s, strlen(s));
        ag_free(s);
        return AG_OK;
    }
    start_stream(r, run, true);
    sub_add(run, r, SUB_WAIT, false);
    return AG_AGAIN;
}

int ag_run_attach(struct ag_req *r, const char *thread_id, const char *run_id, const char *last_event_id)
{
    struct ag_run *run = find_run(thread_id, run_id);
    if (!run)
        return load_outcome(r, thread_id, run_id, O_ATTACH, AG_SQL_RUN_OUTCOME);
    uint64_t from = run->ev_first;
    if (last_event_id) {
        char *end;
        long long v = strtoll(last_event_id, &end, 10);
        if (*end == 0 && v >= 0 && (uint64_t)v + 1 > from)
            from = (uint64_t)v + 1;
    } else if (run->state == R_DONE) {
        from = run->ev_first + run->nev - 1; /* just the end */
    }
    char loc[160];
    snprintf(loc, sizeof loc, "/threads/%s/runs/%s", thread_id, run_id);
    ag_http_add_header(r, "content-location", loc);
    ag_http_add_header(r, "cache-control", "no-cache");
    ag_http_stream_start(r, 200, "text/event-stream", run->state == R_DONE ? NULL : SSE_HEARTBEAT,
                         rs->cfg->runs.heartbeat_ms);
    for (uint64_t i = from; i < run->ev_first + run->nev; i++) {
        ag_http_stream_write_piece(r, run->ev[i - run->ev_first]);
    }
    if (run->state == R_DONE) {
        ag_http_stream_end(r);
        return AG_AGAIN;
    }
    sub_add(run, r, SUB_STREAM, false);
    return AG_AGAIN;
}

int ag_run_cancel(struct ag_req *r, const char *thread_id, const char *run_id, bool rollback, bool wait)
{
    struct ag_run *run = find_run(thread_id, run_id);
    if (!run)
        return load_outcome(r, thread_id, run_id, O_CANCEL, AG_SQL_RUN_OUTCOME);
    if (run->state == R_DONE) {
        ag_http_respond(r, 204, "application/json", "", 0);
        return AG_OK;
    }
    run_cancel(run, "interrupted", rollback);
    if (!wait && run->state != R_DONE) {
        ag_http_respond(r, 204, "application/json", "", 0);
        return AG_OK;
    }
    if (run->state == R_DONE) {
        ag_http_respond(r, 204, "application/json", "", 0);
        return AG_OK;
    }
    sub_add(run, r, SUB_CANCEL, false);
    return AG_AGAIN;
}

int ag_run_delete(struct ag_req *r, const char *thread_id, const char *run_id, bool force)
{
    struct ag_run *run = find_run(thread_id, run_id);
    if (run && run->state != R_DONE) {
        if (!force) {
            ag_http_error(r, 409, "Run is active. Retry with force=1 to cancel and delete.");
            return AG_OK;
        }
        run_cancel(run, "interrupted", true); /* rollback deletes the run row with its checkpoints */
        if (run->state == R_DONE) {
            ag_http_respond(r, 204, "application/json", "", 0);
            return AG_OK;
        }
        sub_add(run, r, SUB_CANCEL, false); /* 204 once the delete is written */
        return AG_AGAIN;
    }
    if (run) {
        /* Deleted rows must not come back from memory. */
        if (run->rprev)
            run->rprev->rnext = run->rnext;
        else
            rs->recent_head = run->rnext;
        if (run->rnext)
            run->rnext->rprev = run->rprev;
        else
            rs->recent_tail = run->rprev;
        rs->nrecent--;
        run_free(run);
    }
    return load_outcome(r, thread_id, run_id, O_DELETE, AG_SQL_RUN_DELETE);
}

int ag_run_thread_stream(struct ag_req *r, const char *thread_id, const char *last_event_id)
{
    struct trt *t = trt_get(thread_id, true);
    ag_http_add_header(r, "cache-control", "no-cache");
    ag_http_add_header(r, "x-accel-buffering", "no");
    ag_http_stream_start(r, 200, "text/event-stream", SSE_HEARTBEAT, rs->cfg->runs.heartbeat_ms);
    struct sub *x = ag_calloc(1, sizeof *x);
    x->kind = SUB_THREAD;
    x->t = t;
    x->r = r;
    t->nthread_subs++;
    ag_stat_add(&rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    r->stream_ud = x;
    r->on_gone = on_sub_gone;
    /* "<run id>:<n>": on from after that event when the run is still active; a run that has ended
     * was seen to its end, so the next one is followed from its start. */
    const char *colon = last_event_id ? strchr(last_event_id, ':') : NULL;
    if (colon && colon - last_event_id == 36) {
        char rid[37];
        memcpy(rid, last_event_id, 36);
        rid[36] = 0;
        char *end;
        unsigned long long n = strtoull(colon + 1, &end, 10);
        struct ag_run *run = find_run(thread_id, rid);
        if (run && *end == 0 && run->state != R_DONE && run->t == t && run == t->active) {
            thread_sub_attach(x, run, (uint64_t)n + 1);
            return AG_AGAIN;
        }
    }
    thread_sub_next(x);
    return AG_AGAIN;
}

void ag_run_thread_deleted(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    ag_tlog_thread_deleted(thread_id);
    struct trt *t = trt_get(thread_id, false);
    if (!t)
        return;
    t->nthread_subs++; /* holds t while its streams end and its runs are cancelled */
    thread_subs_end(t);
    while (t->qhead)
        run_cancel(t->qhead, "interrupted", false);
    if (t->active)
        run_cancel(t->active, "interrupted", false);
    t->nthread_subs--;
    trt_release(t);
}

void ag_run_thread_state_changed(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = trt_get(thread_id, false);
    if (t) {
        json_decref(t->last_cp);
        t->last_cp = NULL;
        t->cp_known = false;
    }
}

bool ag_run_thread_busy(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = trt_get(thread_id, false);
    return t && trt_busy(t);
}

/* --- shard set-up --- */

/* --- leases (protocol/sweep.h: shard 0 only) --- */

static bool leased(const struct ag_pg_query *q, PGresult *res)
{
    if (q->status == AG_PG_OK && PQntuples(res) == 1) {
        long dead = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        if (dead)
            ag_log(AG_LOG_WARN, "msg=\"runs of a stopped process ended as error\" runs=%ld", dead);
    } else if (q->status != AG_PG_OK) {
        ag_log(AG_LOG_WARN, "msg=\"run lease renewal failed\" error=\"%s\"", q->error ? q->error : "no database");
    }
    return false;
}

static _Thread_local struct ag_sweep lease_sweep;
static _Thread_local struct ag_sweep_def lease_def;
static _Thread_local char lease_text[16];

void ag_run_shard_init(struct ag_shard *s, const struct ag_config *cfg)
{
    pthread_once(&boot_once, make_boot_id);
    rs = ag_calloc(1, sizeof *rs);
    rs->s = s;
    rs->cfg = cfg;
    snprintf(lease_text, sizeof lease_text, "%u", cfg->runs.lease_ms);
    lease_def = (struct ag_sweep_def){
        .stmt = AG_SQL_RUN_LEASE,
        .batch = boot_id,
        .arg2 = lease_text,
        .interval_ns = (uint64_t)cfg->runs.lease_ms * 1000000ull / 3,
        .first_ns = 1, /* at once: runs a crashed process left behind end now, not a lease later */
        .done = leased,
    };
    ag_sweep_start(&lease_sweep, s, &lease_def);
}

static void cancel_all(void)
{
    struct ag_strmap *m = &rs->threads;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct trt *t = m->slots[i].key ? m->slots[i].val : NULL;
        if (!t)
            continue;
        while (t->qhead) {
            t->qhead->error = ag_strdup("agentd shut down before the run started");
            run_cancel(t->qhead, "error", false);
        }
        if (t->active && !t->active->cancel_status && t->active->exec) {
            t->active->error = ag_strdup("agentd shut down while the run was active");
            run_cancel(t->active, "error", false);
        }
    }
    /* Thread streams end (collected first: ending the last one frees its entry, moving slots). */
    struct trt **with = NULL;
    size_t n = 0;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct trt *t = m->slots[i].key ? m->slots[i].val : NULL;
        if (t && t->nthread_subs) {
            with = ag_realloc(with, (n + 1) * sizeof *with);
            with[n++] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        with[i]->nthread_subs++;
        thread_subs_end(with[i]);
        with[i]->nthread_subs--;
        trt_release(with[i]);
    }
    ag_free(with);
}

bool ag_run_shard_idle(struct ag_shard *s)
{
    (void)s;
    if (!rs)
        return true;
    if (rs->live)
        cancel_all();
    return rs->live == 0 && rs->threads.len == 0;
}

void ag_run_shard_exit(struct ag_shard *s)
{
    ag_sweep_stop(&lease_sweep, s);
    if (!rs)
        return;
    while (rs->recent_head) {
        struct ag_run *run = rs->recent_head;
        rs->recent_head = run->rnext;
        run_free(run);
    }
    ag_strmap_free(&rs->runs);
    ag_strmap_free(&rs->threads);
    ag_free(rs);
    rs = NULL;
}
