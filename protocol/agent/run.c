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
#include "protocol/agent/run_internal.h"
#include "protocol/agent/run_modes.h"
#include "protocol/agent/tlog.h"
#include "protocol/agent/v2proj.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "runtime/owner.h"
#include "runtime/sweep.h"

#define OWNER "anonymous"
/* Ended runs kept in memory per shard for join and attach (with their events), at most; and they
 * hold at most runs.recent_bytes. */
#define RECENT_MAX 512
/* Ended runs whose runs.recent_ms is up leave memory at most this many per loop turn. */
#define RECENT_EXPIRE_BATCH 256

_Thread_local struct run_shard *ag_run__rs;

/* This process's id as the claimant of its runs (runs.claimed_by), one per process. */
char ag_run__boot_id[37];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void make_boot_id(void)
{
    ag_uuid4(ag_run__boot_id);
}

void ag_run__boot_id_init(void)
{
    pthread_once(&boot_once, make_boot_id);
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

char *ag_run__dumps(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void ag_run__answer_error(struct ag_req *r, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    ag_http_error(r, status, msg);
}

/* --- thread runtime entries --- */

struct trt *ag_run__trt_get(const char *id, bool create)
{
    struct trt *t = ag_strmap_get(&ag_run__rs->threads, id, strlen(id));
    if (t || !create)
        return t;
    t = ag_calloc(1, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    ag_strmap_put(&ag_run__rs->threads, t->id, strlen(t->id), t);
    return t;
}

/* Runs that will change the thread's state (admission counts these). */
bool ag_run__trt_busy(const struct trt *t)
{
    return t->active || t->qhead || t->creating;
}

bool ag_run__direct_ok(const struct trt *t, const struct ag_run *self)
{
    if (!self)
        return !ag_run__trt_busy(t) && !t->finishing;
    return !t->active && t->qhead == self && !self->qnext && !t->creating && !t->finishing;
}

void ag_run__queue_append(struct trt *t, struct ag_run *run)
{
    run->qnext = NULL;
    if (t->qtail)
        t->qtail->qnext = run;
    else
        t->qhead = run;
    t->qtail = run;
}

struct ag_run *ag_run__first_queued(const struct trt *t)
{
    for (struct ag_run *x = t->qhead; x; x = x->qnext)
        if (x->state == R_QUEUED)
            return x;
    return NULL;
}

static bool trt_referenced(const struct trt *t)
{
    return ag_run__trt_busy(t) || t->finishing || t->nthread_subs;
}

/* Frees t when nothing refers to it any more. Ended runs keep no pointer to it (run->t is cleared). */
void ag_run__trt_release(struct trt *t)
{
    if (trt_referenced(t))
        return;
    ag_strmap_del(&ag_run__rs->threads, t->id, strlen(t->id));
    json_decref(t->last_cp);
    ag_free(t);
}

void ag_run__set_last_cp(struct trt *t, json_t *cp)
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

/* Stream output that counts as one unit of the shard's run work budget (runs.work_per_turn) besides the
 * unit the engine spends per event: framing, logging and sending bytes is the run's work too, and a turn
 * bounded only in events could queue megabytes for one client (messages mode repeats the whole message
 * in every chunk) before the first of them leaves. */
#define WORK_UNIT_BYTES 1024

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
        uint32_t max = ag_run__rs->cfg->runs.events_max;
        if (run->nev >= max) { /* bounded: the oldest event goes */
            run->ev_bytes -= sizeof *run->ev[0] + run->ev[0]->cap;
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
    run->ev_bytes += sizeof *b + b->cap;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_RUN_EVENTS, 1);
    ag_shard_spend(ag_run__rs->s, (uint32_t)AG_MIN(dlen / WORK_UNIT_BYTES, UINT32_MAX));
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

void ag_run__emit(struct ag_run *run, const char *event, const json_t *data)
{
    char *s = ag_run__dumps(data);
    emit_raw(run, event, s, strlen(s));
    ag_free(s);
}

void ag_run__emit_modes(void *ud, const char *event, const json_t *data)
{
    ag_run__emit(ud, event, data);
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
        ag_run__set_last_cp(run->t, ev->data);
        /* A long run writes its checkpoints as it goes (one statement for all of a turn's); a run
         * that ends in this turn writes them with its outcome. */
        run->flush_task.fn = flush_task;
        ag_shard_defer(ag_run__rs->s, &run->flush_task);
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


static void sub_unlink(struct sub *x)
{
    struct sub **pp = &x->run->subs;
    while (*pp != x)
        pp = &(*pp)->next;
    *pp = x->next;
}


/* --- thread streams (SUB_THREAD) --- */

/* Follows run from its event from_id on: the ones buffered now, then live. */
void ag_run__thread_sub_attach(struct sub *x, struct ag_run *run, uint64_t from_id)
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
void ag_run__thread_sub_next(struct sub *x)
{
    struct trt *t = x->t;
    x->run = NULL;
    if (t->active) {
        ag_run__thread_sub_attach(x, t->active, 0);
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
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    ag_free(x);
    ag_http_stream_end(r);
    t->nthread_subs--;
    ag_run__trt_release(t);
}

/* Ends every thread stream of t (the thread is deleted, or the shard stops). */
void ag_run__thread_subs_end(struct trt *t)
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

void ag_run__on_sub_gone(struct ag_req *r)
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
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    bool cancel = x->cancel_on_gone;
    ag_free(x);
    ag_http_stream_end(r);
    if (cancel && (run->state == R_RUNNING || run->state == R_QUEUED))
        ag_run__run_cancel(run, "interrupted", false);
}

void ag_run__start_stream(struct ag_req *r, struct ag_run *run, bool wait)
{
    char loc[200];
    snprintf(loc, sizeof loc, "/threads/%s/runs/%s", run->spec.thread_id, run->run_id);
    ag_http_add_header(r, "content-location", loc);
    size_t n = strlen(loc);
    snprintf(loc + n, sizeof loc - n, wait ? "/join" : "/stream");
    ag_http_add_header(r, "location", loc);
    if (wait) {
        ag_http_stream_start(r, 200, "application/json", "\n", ag_run__rs->cfg->runs.heartbeat_ms);
    } else {
        ag_http_add_header(r, "cache-control", "no-cache");
        ag_http_add_header(r, "x-accel-buffering", "no");
        ag_http_stream_start(r, 200, "text/event-stream", AG_RUN__SSE_HEARTBEAT, ag_run__rs->cfg->runs.heartbeat_ms);
    }
}

void ag_run__sub_add(struct ag_run *run, struct ag_req *r, enum sub_kind kind, bool cancel_on_gone)
{
    struct sub *x = ag_calloc(1, sizeof *x);
    x->run = run;
    x->r = r;
    x->kind = kind;
    x->cancel_on_gone = cancel_on_gone;
    x->next = run->subs;
    run->subs = x;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    r->stream_ud = x;
    r->on_gone = ag_run__on_sub_gone;
}

/* A direct or promoted run's creator is answered from now on: the headers, then for a stream the
 * events so far and the live ones. */
void ag_run__attach_creator(struct ag_run *run)
{
    struct ag_req *r = run->creator;
    if (!r)
        return;
    run->creator = NULL;
    bool wait = run->how == AG_RUN_REPLY_WAIT;
    ag_run__start_stream(r, run, wait);
    ag_run__sub_add(run, r, wait ? SUB_WAIT : SUB_STREAM, run->spec.cancel_on_disconnect);
    if (!wait)
        for (uint32_t i = 0; i < run->nev; i++)
            ag_http_stream_write_piece(r, run->ev[i]);
}

/* The answer of wait and join: the last values (or the interrupt), {} when there is none, or the
 * error for a failed run. */
char *ag_run__outcome_json(struct ag_run *run)
{
    if (run->status && (!strcmp(run->status, "error") || !strcmp(run->status, "timeout"))) {
        json_t *e = json_pack("{s:{s:s,s:s}}", "__error__", "error",
                              !strcmp(run->status, "timeout") ? "TimeoutError" : "GraphError", "message",
                              run->error ? run->error : "execution failed");
        char *s = ag_run__dumps(e);
        json_decref(e);
        return s;
    }
    return run->output ? ag_run__dumps(run->output) : ag_strdup("{}");
}

static void sub_finish(struct sub *x)
{
    struct ag_run *run = x->run;
    struct ag_req *r = x->r;
    r->on_gone = NULL;
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    if (!r->gone) {
        if (x->kind == SUB_WAIT) {
            char *s = ag_run__outcome_json(run);
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
    ag_strmap_del(&ag_run__rs->runs, run->run_id, strlen(run->run_id));
    for (uint32_t i = 0; i < run->nev; i++)
        ag_obuf_unref(run->ev[i]);
    ag_free(run->ev);
    if (run->exec)
        ag_graph_run_free(run->exec);
    ag_v2proj_free(run->v2);
    ag_timer_cancel(&ag_run__rs->s->timers, &run->timer);
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
    ag_pg_args_reset(&run->strs);
    AG_BUG_ON(run->flush_task.queued);
    ag_free(run);
}

/* What an ended run holds in memory: itself, its events and its output (as text: an estimate). */
static size_t run_bytes(const struct ag_run *run)
{
    size_t out = run->output ? json_dumpb(run->output, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    return sizeof *run + (size_t)run->evcap * sizeof *run->ev + run->ev_bytes + out +
           (run->error ? strlen(run->error) + 1 : 0);
}

static void recent_unlink(struct ag_run *run)
{
    ag_run__rs->recent_bytes -= run->recent_bytes;
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_ENDED_RUN_BYTES, run->recent_bytes);
    ag_run__rs->nrecent--;
}

/* An ended run leaves the recent list and memory. */
void ag_run__forget(struct ag_run *run)
{
    if (run->rprev)
        run->rprev->rnext = run->rnext;
    else
        ag_run__rs->recent_head = run->rnext;
    if (run->rnext)
        run->rnext->rprev = run->rprev;
    else
        ag_run__rs->recent_tail = run->rprev;
    recent_unlink(run);
    run_free(run);
}

/* An ended run keeps what join and attach answer from (status, output, error, events); the rest
 * goes now rather than when it leaves the recent list (its checkpoint alone can be the thread's whole
 * history). */
static void run_shed(struct ag_run *run)
{
    struct ag_run_spec *sp = &run->spec;
    json_t **owned[] = {&sp->input,  &sp->command,          &sp->config,          &sp->context,
                        &sp->metadata, &sp->checkpoint,     &sp->interrupt_before, &sp->interrupt_after,
                        &sp->stream_mode, &sp->feedback_keys, &run->kwargs,         &run->fork_cp,
                        &run->prev_cp, &run->md,             &run->final_values,    &run->final_interrupts};
    for (size_t i = 0; i < AG_ARRAY_LEN(owned); i++) {
        json_decref(*owned[i]);
        *owned[i] = NULL;
    }
    ag_free(run->kwargs_text);
    run->kwargs_text = NULL;
    ag_run_modes_clear(&run->modes);
    run->modes.md = NULL;
    if (run->evcap > run->nev) { /* the array doubled as it grew */
        run->ev = ag_realloc(run->ev, AG_MAX(run->nev, 1u) * sizeof *run->ev);
        run->evcap = AG_MAX(run->nev, 1u);
    }
}

/* run keeps only its last event (its end), as attach answers a run read back from Postgres. */
static void keep_end_only(struct ag_run *run)
{
    for (uint32_t i = 0; i + 1 < run->nev; i++) {
        run->ev_bytes -= sizeof *run->ev[i] + run->ev[i]->cap;
        ag_obuf_unref(run->ev[i]);
    }
    run->ev[0] = run->ev[run->nev - 1];
    run->ev_first += run->nev - 1;
    run->nev = run->evcap = 1;
    run->ev = ag_realloc(run->ev, sizeof *run->ev);
}

/* The oldest ended runs whose runs.recent_ms is up leave memory (join and attach answer from
 * Postgres after that), so that a quiet server holds none. */
static void on_recent_expire(struct ag_timer *tm)
{
    (void)tm;
    uint64_t now = ag_run__rs->s->now_ns, keep = (uint64_t)ag_run__rs->cfg->runs.recent_ms * 1000000ull;
    for (unsigned n = 0; ag_run__rs->recent_head && ag_run__rs->recent_head->ended_ns + keep <= now; n++) {
        if (n == RECENT_EXPIRE_BATCH) {
            ag_timer_arm(&ag_run__rs->s->timers, &ag_run__rs->recent_expire, now + 1); /* the rest next turn */
            return;
        }
        ag_run__forget(ag_run__rs->recent_head);
    }
    if (ag_run__rs->recent_head)
        ag_timer_arm(&ag_run__rs->s->timers, &ag_run__rs->recent_expire, ag_run__rs->recent_head->ended_ns + keep);
}

static void recent_add(struct ag_run *run)
{
    uint64_t budget = ag_run__rs->cfg->runs.recent_bytes;
    run_shed(run);
    run->recent_bytes = run_bytes(run);
    if (run->recent_bytes > budget && run->nev > 1) {
        keep_end_only(run);
        run->recent_bytes = run_bytes(run);
    }
    run->rprev = ag_run__rs->recent_tail;
    run->rnext = NULL;
    if (ag_run__rs->recent_tail)
        ag_run__rs->recent_tail->rnext = run;
    else
        ag_run__rs->recent_head = run;
    ag_run__rs->recent_tail = run;
    ag_run__rs->nrecent++;
    run->ended_ns = ag_run__rs->s->now_ns;
    if (!ag_timer_armed(&ag_run__rs->recent_expire))
        ag_timer_arm(&ag_run__rs->s->timers, &ag_run__rs->recent_expire,
                     run->ended_ns + (uint64_t)ag_run__rs->cfg->runs.recent_ms * 1000000ull);
    ag_run__rs->recent_bytes += run->recent_bytes;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_ENDED_RUN_BYTES, run->recent_bytes);
    /* The oldest go first; run itself stays (this may be its own statement's callback). */
    while ((ag_run__rs->nrecent > RECENT_MAX || ag_run__rs->recent_bytes > budget) && ag_run__rs->recent_head != run) {
        struct ag_run *old = ag_run__rs->recent_head;
        ag_run__rs->recent_head = old->rnext;
        if (ag_run__rs->recent_head)
            ag_run__rs->recent_head->rprev = NULL;
        else
            ag_run__rs->recent_tail = NULL;
        recent_unlink(old);
        run_free(old);
    }
}

/* --- persistence --- */

struct ag_run *ag_run__run_of(struct ag_pg_query *q)
{
    return q->ud;
}

static void run_ended(struct ag_run *run);
static void submit_finish(struct ag_run *run);

/* run->q becomes a new query of the run (its parameters still to fill). */
void ag_run__query_init(struct ag_run *run, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    memset(&run->q, 0, sizeof run->q);
    run->q.stmt = stmt;
    run->q.kind = kind;
    run->q.cb = cb;
    run->q.ud = run;
}

/* A statement that held the run's later writes back (a checkpoint write, a promotion) is done: the
 * outcome goes now if the run has ended meanwhile, else the checkpoints that came meanwhile. */
void ag_run__progress_done(struct ag_run *run)
{
    run->progress_inflight = false;
    ag_pg_args_reset(&run->strs);
    if (run->state == R_FINISHING) {
        submit_finish(run);
        return;
    }
    if (json_array_size(run->cps)) {
        run->flush_task.fn = flush_task;
        ag_shard_defer(ag_run__rs->s, &run->flush_task);
    }
}

/* A wall-clock time of the run as the statements take it (NULL for 0: not yet). */
static const char *us_param(struct ag_pg_args *st, uint64_t us)
{
    return us ? ag_pg_args_printf(st, "%" PRIu64, us) : NULL;
}

static void on_progress(struct ag_pg_query *q, PGresult *res)
{
    (void)res;
    struct ag_run *run = ag_run__run_of(q);
    if (q->status != AG_PG_OK)
        ag_log(AG_LOG_WARN, "run=%s checkpoints not written yet: %s", run->run_id, q->error ? q->error : "no database");
    ag_run__progress_done(run);
}

static void flush_task(struct ag_task *tk)
{
    struct ag_run *run = AG_CONTAINER_OF(tk, struct ag_run, flush_task);
    if (run->state != R_RUNNING || run->progress_inflight || !json_array_size(run->cps))
        return;
    ag_run__query_init(run, AG_SQL_RUN_PROGRESS, AG_PG_WRITE, on_progress);
    run->q.params[0] = run->run_id;
    run->q.params[1] = run->spec.thread_id;
    run->q.params[2] = ag_pg_args_json(&run->strs, run->cps);
    run->q.params[3] = us_param(&run->strs, run->started_us);
    run->q.nparams = 4;
    if (ag_pg_submit(ag_run__rs->s, &run->q) == 0) {
        json_array_clear(run->cps);
        run->progress_inflight = true;
    } else {
        ag_pg_args_reset(&run->strs); /* kept for the outcome's write (RUN_FINISH retries) */
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
        ag_run__attach_creator(run);
    } else if (run->creator) {
        /* Nothing of the run is stored: its creator must not be told that it ran. */
        ag_dbq_fail(run->creator, q);
        ag_http_done(run->creator);
        run->creator = NULL;
    }
}

static void on_finish(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    ag_pg_args_reset(&run->strs);
    if (q->status == AG_PG_OK || q->status == AG_PG_SQL_ERROR || ag_run__rs->s->stopping) {
        if (q->status != AG_PG_OK)
            ag_log(AG_LOG_ERROR, "run=%s outcome not written: %s", run->run_id, q->error ? q->error : "stopping");
        if (run->direct)
            direct_written(run, q, res);
        run_ended(run);
        return;
    }
    /* No database right now: the outcome must not be lost, nor reported before it is stored. */
    run->timer.cb = finish_retry;
    ag_timer_arm(&ag_run__rs->s->timers, &run->timer, ag_run__rs->s->now_ns + 500000000ull);
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
    struct ag_pg_args *st = &run->strs;
    p[0] = run->status;
    bool failed = !strcmp(run->status, "error") || !strcmp(run->status, "timeout");
    p[1] = failed ? NULL : ag_pg_args_json(st, run->output);
    p[2] = run->error ? ag_pg_args_dup(st, run->error, strlen(run->error)) : NULL;
    /* A rollback deletes the run's checkpoints; the ones not written yet are simply dropped. */
    p[3] = run->rollback || !run->cps ? "[]" : ag_pg_args_json(st, run->cps);
    p[4] = thread_status_after(run);
    p[5] = ag_pg_args_json(st, run->t && run->t->cp_known ? json_object_get(run->t->last_cp, "values") : NULL);
    json_t *ints = thread_interrupts(run);
    p[6] = ag_pg_args_json(st, ints);
    json_decref(ints);
}

/* The thread's event seq reservation as RUN_CREATE and RUN_RECORD take it (NULL: not known here). */
const char *ag_run__reservation_param(struct ag_run *run)
{
    char seq[24];
    const char *reserve = ag_tlog_reservation(run->spec.thread_id, seq);
    return reserve ? ag_pg_args_dup(&run->strs, reserve, strlen(reserve)) : NULL;
}

const char *const ag_run__mt_names[] = {"reject", "enqueue", "interrupt", "rollback"};

/* RUN_RECORD: a direct run, its checkpoints and the thread, written together. */
static void record_query(struct ag_run *run)
{
    struct ag_pg_args *st = &run->strs;
    const char **p = run->q.params;
    json_t *c = json_object_get(json_object_get(run->kwargs, "config"), "configurable");
    p[0] = run->run_id;
    p[1] = run->spec.thread_id;
    p[2] = OWNER;
    p[3] = json_string_value(json_object_get(c, "assistant_id"));
    p[4] = json_string_value(json_object_get(c, "graph_id"));
    p[5] = ag_pg_args_json(st, run->spec.metadata);
    p[6] = run->kwargs_text;
    p[7] = ag_run__mt_names[run->spec.mt];
    outcome_params(run, p + 8);
    p[15] = ag_run__boot_id;
    p[16] = ag_run__reservation_param(run);
    p[17] = us_param(st, run->accepted_us);
    p[18] = us_param(st, run->started_us);
    p[19] = us_param(st, run->ended_us);
    run->q.nparams = 20;
}

static void direct_end_task(struct ag_task *tk);

static void submit_finish(struct ag_run *run)
{
    if (run->progress_inflight)
        return; /* on_progress sends it: statements of one run stay in order */
    if (run->orphan || (run->direct && run->rollback)) {
        /* Nothing of it was written, and nothing is to be. */
        run->end_task.fn = direct_end_task;
        ag_shard_defer(ag_run__rs->s, &run->end_task);
        return;
    }
    ag_pg_args_reset(&run->strs);
    if (run->direct) {
        ag_run__query_init(run, AG_SQL_RUN_RECORD, AG_PG_WRITE, on_finish);
        record_query(run);
    } else {
        ag_run__query_init(run, AG_SQL_RUN_FINISH, AG_PG_WRITE, on_finish);
        const char **p = run->q.params;
        p[0] = run->run_id;
        p[1] = run->spec.thread_id;
        outcome_params(run, p + 2);
        p[9] = run->rollback ? "true" : "false";
        p[10] = run->spec.stateless && run->spec.delete_thread ? "true" : "false";
        p[11] = us_param(&run->strs, run->started_us);
        p[12] = us_param(&run->strs, run->ended_us);
        run->q.nparams = 13;
    }
    if (ag_pg_submit(ag_run__rs->s, &run->q) != 0) {
        ag_pg_args_reset(&run->strs);
        run->timer.cb = finish_retry;
        ag_timer_arm(&ag_run__rs->s->timers, &run->timer, ag_run__rs->s->now_ns + 500000000ull);
    }
}

/* --- lifecycle --- */

void ag_run__queue_remove(struct trt *t, struct ag_run *run)
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
    ag_timer_cancel(&ag_run__rs->s->timers, &run->timer);
    if (t->active == run)
        t->active = NULL;
    else
        ag_run__queue_remove(t, run);
    if (run->rollback && run->prev_cp)
        ag_run__set_last_cp(t, json_is_null(run->prev_cp) ? NULL : run->prev_cp);
    if (run->rollback && run->prev_cp && json_is_null(run->prev_cp))
        t->cp_known = false;
    run->state = R_FINISHING;
    run->ended_us = ag_clock_real_us();
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
    ag_run__start_next(t);
}

static void run_ended(struct ag_run *run)
{
    struct trt *t = run->t;
    json_t *e = json_pack("{s:s}", "status", !strcmp(run->status, "timeout") ? "error" : run->status);
    ag_run__emit(run, "end", e);
    json_decref(e);
    if (run->v2_end) /* the outcome is stored: a client told "interrupted" can answer at once */
        ag_tlog_release(run->spec.thread_id, run->v2_end);
    run->state = R_DONE;
    ag_run__rs->live--;
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_RUNS_ACTIVE, 1);
    ag_stat_add(&ag_run__rs->s->stats,
                !strcmp(run->status, "success")       ? AG_STAT_RUNS_SUCCESS
                : !strcmp(run->status, "interrupted") ? AG_STAT_RUNS_INTERRUPTED
                : !strcmp(run->status, "timeout")     ? AG_STAT_RUNS_TIMEOUT
                                                      : AG_STAT_RUNS_ERROR,
                1);
    while (run->subs) {
        struct sub *x = run->subs;
        run->subs = x->next;
        if (x->kind == SUB_THREAD)
            ag_run__thread_sub_next(x);
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
    ag_run__trt_release(t);
    recent_add(run);
}

static void direct_end_task(struct ag_task *tk)
{
    struct ag_run *run = AG_CONTAINER_OF(tk, struct ag_run, end_task);
    ag_run__attach_creator(run);
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
    ag_run__run_cancel(AG_CONTAINER_OF(tm, struct ag_run, timer), "timeout", false);
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
    return ag_run__rs->s->now_ns;
}

/* A stream reader of the run on this shard is behind but reading: the run's nodes pause for it. */
static bool host_behind(void *ud)
{
    struct ag_run *run = ud;
    for (struct sub *x = run->subs; x; x = x->next)
        if ((x->kind == SUB_STREAM || x->kind == SUB_THREAD) && ag_http_stream_behind(x->r))
            return true;
    return false;
}

static void run_start(struct ag_run *run)
{
    struct trt *t = run->t;
    run->state = R_RUNNING;
    run->started_us = ag_clock_real_us();
    t->active = run;
    while (t->waiting) {
        struct sub *x = t->waiting;
        t->waiting = x->next;
        ag_run__thread_sub_attach(x, run, 0);
    }
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_RUNS_STARTED, 1);
    ag_run__queue_remove(t, run);
    run->prev_cp = t->cp_known && t->last_cp ? json_incref(t->last_cp) : json_null();
    run->timer.cb = on_timeout;
    uint64_t limit_ns = (uint64_t)ag_run__rs->cfg->runs.timeout_ms * 1000000ull;
    ag_timer_arm(&ag_run__rs->s->timers, &run->timer, ag_run__rs->s->now_ns + limit_ns);
    struct ag_graph_host host = {
        .ud = run,
        .timers = &ag_run__rs->s->timers,
        .now_ns = host_now,
        .on_event = on_engine_event,
        .on_done = on_engine_done,
        .shard = ag_run__rs->s,
        .behind = host_behind,
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

void ag_run__on_delay(struct ag_timer *tm)
{
    struct ag_run *run = AG_CONTAINER_OF(tm, struct ag_run, timer);
    run->spec.after_seconds = 0;
    ag_run__start_next(run->t);
}

/* Starts the first queued run when the thread is free and its start time has come. */
void ag_run__start_next(struct trt *t)
{
    if (t->active || !t->qhead || t->qhead->state != R_QUEUED || t->qhead->spec.after_seconds > 0)
        return;
    run_start(t->qhead);
}

void ag_run__run_cancel(struct ag_run *run, const char *status, bool rollback)
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

/* --- shard set-up --- */

/* --- leases (runtime/sweep.h: shard 0 only) --- */

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
    ag_run__boot_id_init();
    ag_run__rs = ag_calloc(1, sizeof *ag_run__rs);
    ag_run__rs->s = s;
    ag_run__rs->cfg = cfg;
    ag_timer_init(&ag_run__rs->recent_expire, on_recent_expire);
    snprintf(lease_text, sizeof lease_text, "%u", cfg->runs.lease_ms);
    lease_def = (struct ag_sweep_def){
        .stmt = AG_SQL_RUN_LEASE,
        .batch = ag_run__boot_id,
        .arg2 = lease_text,
        .interval_ns = (uint64_t)cfg->runs.lease_ms * 1000000ull / 3,
        .first_ns = 1, /* at once: runs a crashed process left behind end now, not a lease later */
        .done = leased,
    };
    ag_sweep_start(&lease_sweep, s, &lease_def);
}

static void cancel_all(void)
{
    struct ag_strmap *m = &ag_run__rs->threads;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct trt *t = m->slots[i].key ? m->slots[i].val : NULL;
        if (!t)
            continue;
        /* Runs still creating are cancelled on a later call, once created. */
        for (struct ag_run *x; (x = ag_run__first_queued(t));) {
            x->error = ag_strdup("agentd shut down before the run started");
            ag_run__run_cancel(x, "error", false);
        }
        if (t->active && !t->active->cancel_status && t->active->exec) {
            t->active->error = ag_strdup("agentd shut down while the run was active");
            ag_run__run_cancel(t->active, "error", false);
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
        ag_run__thread_subs_end(with[i]);
        with[i]->nthread_subs--;
        ag_run__trt_release(with[i]);
    }
    ag_free(with);
}

bool ag_run_shard_idle(struct ag_shard *s)
{
    (void)s;
    if (!ag_run__rs)
        return true;
    if (ag_run__rs->live)
        cancel_all();
    return ag_run__rs->live == 0 && ag_run__rs->threads.len == 0;
}

void ag_run_shard_exit(struct ag_shard *s)
{
    ag_sweep_stop(&lease_sweep, s);
    if (!ag_run__rs)
        return;
    ag_timer_cancel(&ag_run__rs->s->timers, &ag_run__rs->recent_expire);
    while (ag_run__rs->recent_head) {
        struct ag_run *run = ag_run__rs->recent_head;
        ag_run__rs->recent_head = run->rnext;
        run_free(run);
    }
    ag_strmap_free(&ag_run__rs->runs);
    ag_strmap_free(&ag_run__rs->threads);
    ag_free(ag_run__rs);
    ag_run__rs = NULL;
}
