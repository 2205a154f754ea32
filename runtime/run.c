#include "runtime/run.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/jsontext.h"
#include "core/log.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "core/strmap.h"
#include "core/timer.h"
#include "core/uuid.h"
#include "persist/cpstore.h"
#include "runtime/run_internal.h"
#include "runtime/run_modes.h"
#include "runtime/stats.h"
#include "runtime/tlog.h"
#include "runtime/v2proj.h"

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

const char *const ag_run__mt_names[] = {"reject", "enqueue", "interrupt", "rollback"};

/* --- small helpers --- */

const char *ag_run_status_name(enum ag_run_status status)
{
    static const char *const names[] = {
        [AG_RUN_PENDING] = "pending", [AG_RUN_RUNNING] = "running",         [AG_RUN_SUCCESS] = "success",
        [AG_RUN_ERROR] = "error",     [AG_RUN_TIMEOUT] = "timeout",         [AG_RUN_INTERRUPTED] = "interrupted",
    };
    return names[status];
}

bool ag_run__failed(enum ag_run_status status)
{
    return status == AG_RUN_ERROR || status == AG_RUN_TIMEOUT;
}

char *ag_run__dumps(const json_t *v)
{
    return ag_json_text(v, JSON_COMPACT | JSON_ENCODE_ANY, NULL);
}

uint32_t ag_run_heartbeat_ms(void)
{
    return ag_run__rs->lim->heartbeat_ms;
}

/* --- thread runtime entries --- */

struct trt *ag_run__trt_get(const char *id, bool create)
{
    struct trt *t = ag_strmap_get(&ag_run__rs->threads, id, strlen(id));
    if (t || !create)
        return t;
    t = ag_calloc(1, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    t->idle_cp = ag_run__idle_take(t->id);
    ag_strmap_put(&ag_run__rs->threads, t->id, strlen(t->id), t);
    return t;
}

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

struct ag_run *ag_run__first_queued(const struct trt *t)
{
    for (struct ag_run *x = t->qhead; x; x = x->qnext)
        if (x->state == R_QUEUED)
            return x;
    return NULL;
}

static bool trt_referenced(const struct trt *t)
{
    return ag_run__trt_busy(t) || t->finishing || t->nthread_sinks;
}

void ag_run__trt_release(struct trt *t)
{
    if (trt_referenced(t))
        return;
    ag_strmap_del(&ag_run__rs->threads, t->id, strlen(t->id));
    /* Kept a while: the thread's next run need not have it built and sent again. */
    if (t->cp_known ? t->last_cp != NULL : t->idle_cp != NULL)
        ag_run__idle_put(t->id, t->cp_known ? t->last_cp : t->idle_cp);
    json_decref(t->last_cp);
    json_decref(t->idle_cp);
    ag_free(t);
}

void ag_run__set_last_cp(struct trt *t, json_t *cp)
{
    json_incref(cp);
    json_decref(t->last_cp);
    t->last_cp = cp;
    t->cp_known = true;
}

/* --- runs as others see them --- */

const char *ag_run_id(const struct ag_run *run)
{
    return run->run_id;
}

const char *ag_run_thread_id(const struct ag_run *run)
{
    return run->spec.thread_id;
}

bool ag_run_done(const struct ag_run *run)
{
    return run->state == R_DONE;
}

bool ag_run_cancels_on_disconnect(const struct ag_run *run)
{
    return run->spec.cancel_on_disconnect;
}

uint64_t ag_run_first_event(const struct ag_run *run)
{
    return run->ev_first;
}

uint64_t ag_run_end_event(const struct ag_run *run)
{
    return run->ev_first + run->nev;
}

struct ag_run *ag_run_find(const char *thread_id, const char *run_id)
{
    struct ag_run *run = ag_strmap_get(&ag_run__rs->runs, run_id, strlen(run_id));
    if (!run || strcmp(run->spec.thread_id, thread_id) || run->state == R_CREATING)
        return NULL;
    return run;
}

char *ag_run_outcome_json(struct ag_run *run)
{
    if (ag_run__failed(run->status)) {
        json_t *e = json_pack("{s:{s:s,s:s}}", "__error__", "error",
                              run->status == AG_RUN_TIMEOUT ? "TimeoutError" : "GraphError", "message",
                              run->error ? run->error : "execution failed");
        char *s = ag_run__dumps(e);
        json_decref(e);
        return s;
    }
    if (!run->output_text && run->output) {
        run->output_text = ag_run__dumps(run->output);
        run->output_bytes = strlen(run->output_text);
    }
    return ag_strdup(run->output_text ? run->output_text : "{}");
}

void ag_run__tell_creator(struct ag_run *run, struct ag_run_created *res)
{
    ag_run_created_fn cb = run->created_cb;
    if (!cb)
        return;
    run->created_cb = NULL;
    cb(run->created_ud, res);
}

/* --- events --- */

/* Stream output that counts as one unit of the shard's run work budget (runs.work_per_turn) besides the
 * unit the engine spends per event: encoding, logging and sending bytes is the run's work too, and a turn
 * bounded only in events could queue megabytes for one client (messages mode repeats the whole message
 * in every chunk) before the first of them leaves. */
#define WORK_UNIT_BYTES 1024

/* Appends one encoded event to the run's log and sends it to every sink. */
static void emit_raw(struct ag_run *run, const char *event, const char *data, size_t dlen)
{
    uint64_t id = run->next_id++;
    struct ag_obuf *b = ag_run__rs->codec->encode(event, data, dlen, id); /* once, for every sink */
    if (run->nev == run->evcap) {
        uint32_t max = ag_run__rs->lim->events_max;
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
    for (struct ag_run_sink *k = run->sinks; k; k = k->next)
        k->ops->on_event(k, run, id, b);
}

void ag_run__emit(struct ag_run *run, const char *event, const json_t *data)
{
    char *s = ag_run__dumps(data);
    size_t n = strlen(s);
    emit_raw(run, event, s, n);
    if (data && data == run->output && !run->output_text) {
        run->output_text = s; /* encoded once: also the answer of wait and join */
        run->output_bytes = n;
        return;
    }
    ag_free(s);
}

void ag_run__emit_modes(void *ud, const char *event, const json_t *data)
{
    ag_run__emit(ud, event, data);
}

/* --- sinks --- */

void ag_run_replay(const struct ag_run *run, struct ag_run_sink *k, uint64_t from_id)
{
    for (uint64_t i = AG_MAX(from_id, run->ev_first); i < run->ev_first + run->nev; i++)
        k->ops->on_event(k, run, i, run->ev[i - run->ev_first]);
}

static void sink_link(struct ag_run *run, struct ag_run_sink *k)
{
    k->run = run;
    k->next = run->sinks;
    run->sinks = k;
}

static void sink_unlink(struct ag_run_sink **head, struct ag_run_sink *k)
{
    struct ag_run_sink **pp = head;
    while (*pp != k)
        pp = &(*pp)->next;
    *pp = k->next;
    k->next = NULL;
}

void ag_run_watch(struct ag_run *run, struct ag_run_sink *k, bool cancel_on_leave)
{
    AG_BUG_ON(run->state == R_DONE);
    k->t = NULL;
    k->cancel_on_leave = cancel_on_leave;
    sink_link(run, k);
}

void ag_run__thread_sink_attach(struct ag_run_sink *k, struct ag_run *run, uint64_t from_id)
{
    sink_link(run, k);
    ag_run_replay(run, k, from_id);
}

void ag_run__thread_sink_next(struct ag_run_sink *k)
{
    struct trt *t = k->t;
    k->run = NULL;
    if (t->active) {
        ag_run__thread_sink_attach(k, t->active, 0);
        return;
    }
    k->next = t->waiting;
    t->waiting = k;
}

void ag_run_thread_watch(const char *thread_id, struct ag_run_sink *k, const char *after_run_id, uint64_t after_id)
{
    struct trt *t = ag_run__trt_get(thread_id, true);
    k->t = t;
    k->run = NULL;
    k->cancel_on_leave = false;
    t->nthread_sinks++;
    /* After an event of the active run: on from the next one. A run that has ended was seen to its end,
     * so the next one is followed from its start. */
    struct ag_run *run = after_run_id ? ag_run_find(thread_id, after_run_id) : NULL;
    if (run && run->state != R_DONE && run->t == t && run == t->active) {
        ag_run__thread_sink_attach(k, run, after_id + 1);
        return;
    }
    ag_run__thread_sink_next(k);
}

/* A thread sink is done (left, or its thread's stream is over). */
static void thread_sink_drop(struct ag_run_sink *k, bool tell)
{
    struct trt *t = k->t;
    sink_unlink(k->run ? &k->run->sinks : &t->waiting, k);
    k->run = NULL;
    if (tell)
        k->ops->on_end(k, NULL);
    t->nthread_sinks--;
    ag_run__trt_release(t);
}

void ag_run__thread_sinks_end(struct trt *t)
{
    while (t->waiting)
        thread_sink_drop(t->waiting, true);
    if (!t->active)
        return;
    for (struct ag_run_sink *k = t->active->sinks, *next; k; k = next) {
        next = k->next;
        if (k->t)
            thread_sink_drop(k, true);
    }
}

void ag_run_unwatch(struct ag_run_sink *k)
{
    if (k->t) {
        thread_sink_drop(k, false);
        return;
    }
    struct ag_run *run = k->run;
    sink_unlink(&run->sinks, k);
    k->run = NULL;
    if (k->cancel_on_leave && (run->state == R_RUNNING || run->state == R_QUEUED))
        ag_run__run_cancel(run, AG_RUN_INTERRUPTED, false, AG_RUN_CANCEL_REASON_DISCONNECT);
}

/* --- execution --- */

/* Durability "exit": only the run's last checkpoint is written, with its outcome. Its parent becomes
 * the one the run's first checkpoint had (the thread's checkpoint before the run), so that the history
 * stays a chain of checkpoints that exist. */
static void keep_last_checkpoint(struct ag_run *run, json_t *cp)
{
    json_t *first = json_array_get(run->cps, 0);
    json_t *parent = json_object_get(first ? first : cp, "parent_checkpoint_id");
    /* Stamped against the run's start: the versions of the checkpoints dropped are never stored. */
    json_t *kept = ag_cpstore_stamp(run->start_cp, cp);
    json_object_set(kept, "parent_checkpoint_id", parent ? parent : json_null());
    json_array_clear(run->cps);
    ag_run__set_last_cp(run->t, kept);
    json_array_append_new(run->cps, kept);
}

/* Keeps cp (stamped) to be written, in place of a version of it not written yet (the same checkpoint
 * emitted again, with its tasks' ends: not always the last kept, as a subgraph's come in between). */
static void keep_checkpoint(struct ag_run *run, json_t *cp)
{
    const json_t *id = json_object_get(cp, "checkpoint_id"), *ns = json_object_get(cp, "checkpoint_ns");
    for (size_t i = json_array_size(run->cps); i-- > 0;) {
        const json_t *o = json_array_get(run->cps, i);
        if (json_equal(json_object_get(o, "checkpoint_id"), id) &&
            (ns ? json_equal(json_object_get(o, "checkpoint_ns"), ns) : !json_object_get(o, "checkpoint_ns"))) {
            json_array_set(run->cps, i, cp);
            return;
        }
    }
    json_array_append(run->cps, cp);
}

/* A checkpoint of the run, stamped as it is stored (persist/cpstore.h): kept to be written. */
static void on_checkpoint(struct ag_run *run, const json_t *data)
{
    /* A checkpoint comes again, same id, when its tasks end with an interrupt or an error: the
     * newer version replaces the one not yet written (or upserts the written one). */
    if (run->spec.durability == AG_DURABILITY_EXIT) {
        keep_last_checkpoint(run, (json_t *)data);
        return;
    }
    json_t *cp = ag_cpstore_stamp(run->stamp_prev, data);
    json_decref(run->stamp_prev);
    run->stamp_prev = json_incref(cp);
    keep_checkpoint(run, cp);
    ag_run__set_last_cp(run->t, cp);
    if (run->v2) ag_v2proj_checkpoint(run->v2, cp);
    json_decref(cp);
    /* A long run writes its checkpoints as it goes (one statement for all of a turn's); a run
     * that ends in this turn writes them with its outcome. */
    ag_run__schedule_progress(run);
}

/* A checkpoint of one of the run's subgraphs (ev->ns): stored under its namespace with the run's, stamped
 * against the previous one of that namespace; it is not the thread's latest state. */
static void on_sub_checkpoint(struct ag_run *run, const struct ag_graph_event *ev)
{
    if (run->spec.durability == AG_DURABILITY_EXIT) return; /* only the run's last checkpoint is kept */
    if (!run->sub_stamps) run->sub_stamps = json_object();
    json_t *cp = ag_cpstore_stamp(json_object_get(run->sub_stamps, ev->ns), ev->data);
    json_object_set_new(cp, "checkpoint_ns", json_string(ev->ns));
    json_object_set(run->sub_stamps, ev->ns, cp);
    keep_checkpoint(run, cp);
    json_decref(cp);
    ag_run__schedule_progress(run);
}

/* The run's answer so far becomes v (its encoding, if any, was the older one's). */
static void set_output(struct ag_run *run, json_t *v)
{
    json_decref(run->output);
    run->output = json_incref(v);
    ag_free(run->output_text);
    run->output_text = NULL;
    run->output_bytes = 0;
}

static void on_engine_event(void *ud, const struct ag_graph_event *ev)
{
    struct ag_run *run = ud;
    if (ev->ns) {
        /* A subgraph's: its checkpoints stored, its events in the v2 log under its namespace and
         * streamed to v1 clients that asked for subgraphs. */
        if (ev->kind == AG_GEV_CHECKPOINT) on_sub_checkpoint(run, ev);
        if (run->v2) ag_v2proj_event(run->v2, ev);
        ag_run_modes_event(&run->modes, ev);
        return;
    }
    if (ev->kind == AG_GEV_CHECKPOINT) on_checkpoint(run, ev->data);
    if (run->v2) ag_v2proj_event(run->v2, ev);
    switch (ev->kind) {
    case AG_GEV_VALUES:
        set_output(run, ev->data);
        break;
    case AG_GEV_UPDATES:
        if (json_object_get(ev->data, "__interrupt__")) /* also what wait and join answer */
            set_output(run, ev->data);
        break;
    default: break;
    }
    ag_run_modes_event(&run->modes, ev);
}

void ag_run__release_events(struct ag_run *run)
{
    if (!run->holds_events) return;
    run->holds_events = false;
    ag_tlog_release_writes(run->spec.thread_id);
}

/* The run reached its outcome (run->status set): write it, then tell its sinks. */
static void run_finish(struct ag_run *run)
{
    struct trt *t = run->t;
    ag_timer_cancel(&ag_run__rs->s->timers, &run->timer);
    ag_timer_cancel(&ag_run__rs->s->timers, &run->promote_timer);
    ag_run__release_events(run); /* its RUN_RECORD below takes them */
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
    ag_run_modes_end(&run->modes, ag_run_status_name(run->status), run->error, run->output);
    if (run->v2) {
        /* In the log now, before a run started next; the streams get it once the outcome is stored. */
        run->v2_end = ag_v2proj_end(run->v2, ag_run_status_name(run->status), run->error);
        ag_v2proj_free(run->v2);
        run->v2 = NULL;
        ag_tlog_run_end(run->spec.thread_id);
    }
    ag_run__submit_finish(run);
    ag_run__start_next(t);
}

void ag_run__ended(struct ag_run *run)
{
    struct trt *t = run->t;
    json_t *e = json_pack("{s:s}", "status", ag_run_status_name(run->status == AG_RUN_TIMEOUT ? AG_RUN_ERROR : run->status));
    ag_run__emit(run, "end", e);
    json_decref(e);
    if (run->v2_end) /* the outcome is stored: a client told "interrupted" can answer at once */
        ag_tlog_release(run->spec.thread_id, run->v2_end);
    run->state = R_DONE;
    ag_run__rs->live--;
    ag_stat_sub(&ag_run__rs->s->stats, AG_STAT_RUNS_ACTIVE, 1);
    ag_stat_add(&ag_run__rs->s->stats,
                run->status == AG_RUN_SUCCESS       ? AG_STAT_RUNS_SUCCESS
                : run->status == AG_RUN_INTERRUPTED ? AG_STAT_RUNS_INTERRUPTED
                : run->status == AG_RUN_TIMEOUT     ? AG_STAT_RUNS_TIMEOUT
                                                    : AG_STAT_RUNS_ERROR,
                1);
    while (run->sinks) {
        struct ag_run_sink *k = run->sinks;
        run->sinks = k->next;
        k->next = NULL;
        if (k->t) {
            ag_run__thread_sink_next(k);
        } else {
            k->run = NULL;
            k->ops->on_end(k, run);
        }
    }
    if (run->exec) {
        run->graph.engine->free(run->exec);
        run->exec = NULL;
    }
    json_decref(run->cps);
    run->cps = NULL;
    json_decref(run->sub_stamps);
    run->sub_stamps = NULL;
    run->t = NULL;
    t->finishing--;
    ag_run__trt_release(t);
    ag_run__recent_add(run);
}

static void end_unwritten_task(struct ag_task *tk)
{
    struct ag_run *run = AG_CONTAINER_OF(tk, struct ag_run, end_task);
    ag_run__tell_creator(run, &(struct ag_run_created){.result = AG_RUN_ADMITTED, .run = run});
    ag_run__ended(run);
}

void ag_run__end_unwritten(struct ag_run *run)
{
    run->end_task.fn = end_unwritten_task;
    ag_shard_defer(ag_run__rs->s, &run->end_task);
}

static void on_engine_done(void *ud, enum ag_graph_outcome outcome, const char *error)
{
    struct ag_run *run = ud;
    switch (outcome) {
    case AG_GRAPH_SUCCESS: run->status = AG_RUN_SUCCESS; break;
    case AG_GRAPH_INTERRUPTED: run->status = AG_RUN_INTERRUPTED; break;
    case AG_GRAPH_ERROR:
        run->status = AG_RUN_ERROR;
        run->error = ag_strdup(error ? error : "execution failed");
        break;
    case AG_GRAPH_CANCELLED:
        run->status = run->cancel_status != AG_RUN_PENDING ? run->cancel_status : AG_RUN_INTERRUPTED;
        if (run->status == AG_RUN_TIMEOUT)
            run->error = ag_strdup("run exceeded its time limit");
        break;
    }
    run_finish(run);
}

static void on_timeout(struct ag_timer *tm)
{
    ag_run__run_cancel(AG_CONTAINER_OF(tm, struct ag_run, timer), AG_RUN_TIMEOUT, false, NULL);
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

/* Durability "sync": the next superstep waits while a checkpoint is not written yet
 * (ag_run__progress_done lets it go on). */
static bool host_hold(void *ud)
{
    struct ag_run *run = ud;
    return json_array_size(run->cps) || ag_run__writing(run);
}

/* A sink of the run on this shard is behind but reading: the run's nodes pause for it. */
static bool host_behind(void *ud)
{
    struct ag_run *run = ud;
    for (struct ag_run_sink *k = run->sinks; k; k = k->next)
        if (k->ops->behind && k->ops->behind(k))
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
        struct ag_run_sink *k = t->waiting;
        t->waiting = k->next;
        ag_run__thread_sink_attach(k, run, 0);
    }
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_RUNS_STARTED, 1);
    ag_run__queue_remove(t, run);
    run->prev_cp = t->cp_known && t->last_cp ? json_incref(t->last_cp) : json_null();
    run->start_cp = json_incref(run->fork_cp ? run->fork_cp : (t->cp_known ? t->last_cp : NULL));
    run->stamp_prev = json_incref(run->start_cp);
    run->timer.cb = on_timeout;
    uint64_t limit_ns = ag_ms_to_ns(ag_run__rs->lim->timeout_ms);
    ag_timer_arm(&ag_run__rs->s->timers, &run->timer, ag_run__rs->s->now_ns + limit_ns);
    struct ag_engine_host host = {
        .ud = run,
        .shard = ag_run__rs->s,
        .on_event = on_engine_event,
        .on_done = on_engine_done,
        .behind = host_behind,
    };
    const struct ag_engine *engine = run->graph.engine;
    if (run->spec.durability == AG_DURABILITY_SYNC && engine && engine->proceed)
        host.hold = host_hold;
    json_t *md = checkpoint_metadata(run);
    json_decref(run->md);
    run->md = json_incref(md);
    if (!(run->spec.stateless && run->spec.delete_thread)) {
        run->v2 = ag_v2proj_new(run->spec.thread_id, run->run_id, json_string_value(json_object_get(md, "graph_id")));
        ag_tlog_run_begin(run->spec.thread_id);
        ag_v2proj_start(run->v2);
        if (run->spec.durability != AG_DURABILITY_EXIT && run->start_cp) ag_v2proj_checkpoint(run->v2, run->start_cp);
    }
    run->modes.md = run->md;
    ag_run_modes_start(&run->modes, run->spec.input);
    json_t *cfg = json_object_get(run->kwargs, "config");
    struct ag_engine_params p = {
        .thread_id = run->spec.thread_id,
        .run_id = run->run_id,
        .owner = run->spec.owner,
        .config = cfg,
        .context = json_object_get(run->kwargs, "context"),
        .metadata = md,
        .input = run->spec.input,
        .command = run->spec.command,
        .from = run->start_cp,
        .interrupt_before = run->spec.interrupt_before,
        .interrupt_after = run->spec.interrupt_after,
        .recursion_limit = (int)json_integer_value(json_object_get(cfg, "recursion_limit")),
    };
    char err[256] = "";
    struct ag_engine_run *exec = engine ? engine->start(&run->graph, &host, &p, err, sizeof err) : NULL;
    json_decref(md);
    if (run->state != R_RUNNING) {
        /* it ended inside the start call (a graph that never waits) */
        if (exec)
            engine->free(exec);
        return;
    }
    if (!exec) {
        run->refused_resume = run->spec.strict_resume && run->spec.command &&
                              json_object_get(run->spec.command, "resume");
        run->status = AG_RUN_ERROR;
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

void ag_run__start_next(struct trt *t)
{
    if (t->active || !t->qhead || t->qhead->state != R_QUEUED || t->qhead->spec.after_seconds > 0)
        return;
    run_start(t->qhead);
}

void ag_run__run_cancel(struct ag_run *run, enum ag_run_status status, bool rollback, const char *reason)
{
    if (reason && !run->cancel_reason && (run->state == R_QUEUED || run->state == R_RUNNING))
        run->cancel_reason = ag_strdup(reason);
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
        run->graph.engine->cancel(run->exec); /* on_engine_done(CANCELLED) follows */
        break;
    default:
        break;
    }
}

/* --- shard set-up --- */

void ag_run_shard_init(struct ag_shard *s, const struct ag_run_limits *lim, const struct ag_run_codec *codec)
{
    ag_run__boot_id_init();
    ag_run__rs = ag_calloc(1, sizeof *ag_run__rs);
    ag_run__rs->s = s;
    ag_run__rs->lim = lim;
    ag_run__rs->codec = codec;
    ag_run__recent_init();
    ag_run__idle_init();
    ag_run__leases_start(s, lim);
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
            ag_run__run_cancel(x, AG_RUN_ERROR, false, NULL);
        }
        if (t->active && t->active->cancel_status == AG_RUN_PENDING && t->active->exec) {
            t->active->error = ag_strdup("agentd shut down while the run was active");
            ag_run__run_cancel(t->active, AG_RUN_ERROR, false, NULL);
        }
    }
    /* Thread sinks end (collected first: ending the last one frees its entry, moving slots). */
    struct trt **with = NULL;
    size_t n = 0;
    for (uint32_t i = 0; i < m->cap; i++) {
        struct trt *t = m->slots[i].key ? m->slots[i].val : NULL;
        if (t && t->nthread_sinks) {
            with = ag_realloc(with, (n + 1) * sizeof *with);
            with[n++] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        with[i]->nthread_sinks++;
        ag_run__thread_sinks_end(with[i]);
        with[i]->nthread_sinks--;
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
    ag_run__leases_stop(s);
    if (!ag_run__rs)
        return;
    ag_run__recent_free_all();
    ag_strmap_free(&ag_run__rs->runs);
    ag_strmap_free(&ag_run__rs->threads);
    ag_run__idle_free_all();
    ag_free(ag_run__rs);
    ag_run__rs = NULL;
}
