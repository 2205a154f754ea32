/* Run creation and admission: validation against the assistant and the thread (RUN_CREATE, or
 * RUN_PREPARE for a run written once at its end), multitask admission, and the first answer to the
 * creating request. Part of the run engine (protocol/agent/run_internal.h). */
#include "protocol/agent/run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "graph/registry.h"
#include "protocol/agent/run_internal.h"
#include "protocol/agent/tlog.h"
#include "protocol/http.h"
#include "runtime/owner.h"

#define OWNER "anonymous"
/* The thread has an active run claimed by another agentd process (one %s: its id). No strategy can
 * act on it from here: enqueue cannot start after it, interrupt and rollback cannot stop it. */
#define FOREIGN_BUSY                                                                                                   \
    "Thread is already running a task: run %s is active on another agentd process (if that process "              \
    "stopped, the run ends as error when its lease expires). Wait for it to finish."

/* --- creation --- */

static void refuse_early(struct ag_req *r, ag_run_created_fn cb, void *ud, int status, const char *msg);

/* A creation refused: answers the creating request, or tells the callback. */
static void refuse_create(struct ag_run *run, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    refuse_early(run->creator, run->created_cb, run->created_ud, status, msg);
}

/* A run whose creation was refused (its creator answered) goes away, and gives its place in the
 * queue to the runs behind it. */
static void drop_refused(struct ag_run *run)
{
    struct trt *t = run->t;
    if (run->creator)
        ag_http_done(run->creator);
    ag_run__queue_remove(t, run);
    run->t = NULL;
    ag_run__start_next(t);
    ag_run__trt_release(t);
    ag_run_spec_clear(&run->spec);
    json_decref(run->kwargs);
    ag_free(run);
}

/* The first R_QUEUED run ahead of run in its thread's queue (NULL: none). */
static struct ag_run *queued_ahead(const struct trt *t, const struct ag_run *run)
{
    for (struct ag_run *x = t->qhead; x && x != run; x = x->qnext)
        if (x->state == R_QUEUED)
            return x;
    return NULL;
}

/* Takes the run in once its assistant, kwargs and start checkpoint are known (text of RUN_CREATE's
 * or RUN_PREPARE's row; cp NULL: none): it becomes R_QUEUED at the place it took when accepted. */
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
        ag_run__set_last_cp(t, cp);
        json_decref(cp);
    } else {
        json_decref(cp);
    }
    ag_strmap_put(&ag_run__rs->runs, run->run_id, strlen(run->run_id), run);
    ag_run__rs->live++;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_RUNS_ACTIVE, 1);
    run->cps = json_array();

    /* Admission: interrupt and rollback stop what was accepted before them (the active run, the
     * queued ones now, the ones still creating once created); enqueue waits behind it. Runs accepted
     * after this one stay queued behind it. */
    if (run->spec.mt == AG_MT_INTERRUPT || run->spec.mt == AG_MT_ROLLBACK) {
        bool rb = run->spec.mt == AG_MT_ROLLBACK;
        for (struct ag_run *x; (x = queued_ahead(t, run));)
            ag_run__run_cancel(x, "interrupted", rb);
        for (struct ag_run *x = t->qhead; x && x != run; x = x->qnext) {
            x->preempted = true;
            x->preempted_rollback = rb;
        }
        if (t->active)
            ag_run__run_cancel(t->active, "interrupted", rb);
    }
    run->state = R_QUEUED;
}

/* The run's creator has its first answer: a run preempted while it was creating stops now, a delayed
 * one waits for its time, and the thread's first run starts when it may. */
static void admitted(struct ag_run *run)
{
    struct trt *t = run->t;
    if (run->preempted) {
        ag_run__run_cancel(run, "interrupted", run->preempted_rollback);
    } else if (run->spec.after_seconds > 0) {
        run->timer.cb = ag_run__on_delay;
        ag_timer_arm(&ag_run__rs->s->timers, &run->timer,
                     ag_run__rs->s->now_ns + (uint64_t)(run->spec.after_seconds * 1e9));
    }
    ag_run__start_next(t);
}

static void emit_metadata(struct ag_run *run)
{
    json_t *md = json_pack("{s:s,s:i}", "run_id", run->run_id, "attempt", 1);
    ag_run__emit(run, "metadata", md);
    json_decref(md);
}

static void on_created(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    struct trt *t = run->t;
    struct ag_req *r = run->creator;
    t->creating--;
    ag_pg_args_reset(&run->strs);
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
    if (!PQgetisnull(res, 0, 6)) {
        refuse_create(run, 409, FOREIGN_BUSY, PQgetvalue(res, 0, 6));
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
        ag_run__start_stream(r, run, wait);
        ag_run__sub_add(run, r, wait ? SUB_WAIT : SUB_STREAM, run->spec.cancel_on_disconnect);
    }
    run->creator = NULL;
    emit_metadata(run);
    admitted(run);
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
    kw[0] = ag_pg_args_json(&run->strs, k);
    json_decref(k);
    kw[1] = ag_pg_args_json(&run->strs, sp->config);
    kw[2] = ag_pg_args_json(&run->strs, sp->context);
}

/* run->q becomes its RUN_CREATE (answered by on_created). */
static void create_query(struct ag_run *run)
{
    struct ag_pg_args *st = &run->strs;
    struct ag_run_spec *sp = &run->spec;
    ag_run__query_init(run, AG_SQL_RUN_CREATE, AG_PG_WRITE, on_created);
    const char **p = run->q.params;
    request_params(run, p, p + 5);
    p[4] = ag_pg_args_json(st, sp->metadata);
    p[8] = sp->create_thread ? "true" : "false";
    p[9] = ag_run__mt_names[sp->mt];
    p[10] = sp->after_seconds > 0 ? ag_pg_args_printf(st, "%.3f", sp->after_seconds) : NULL;
    p[11] = sp->checkpoint_id[0] ? sp->checkpoint_id : NULL;
    p[12] = sp->stateless && sp->delete_thread ? "ephemeral" : NULL;
    p[13] = ag_run__boot_id;
    p[14] = ag_pg_args_printf(st, "%u", ag_run__rs->cfg->runs.lease_ms);
    p[15] = ag_run__reservation_param(run);
    p[16] = AG_TLOG_RESERVE_TEXT;
    p[17] = ag_pg_args_printf(st, "%" PRIu64, run->accepted_us);
    run->q.nparams = 18;
}

static void on_prepared(struct ag_pg_query *q, PGresult *res);

/* run->q becomes its RUN_PREPARE (a direct run). */
static void prepare_query(struct ag_run *run)
{
    ag_run__query_init(run, AG_SQL_RUN_PREPARE, AG_PG_READ, on_prepared);
    const char **p = run->q.params;
    request_params(run, p, p + 4);
    p[7] = run->spec.checkpoint_id[0] ? run->spec.checkpoint_id : NULL;
    p[8] = ag_run__boot_id;
    run->q.nparams = 9;
}

/* The promotion of a direct run failed: its creator hears why, and nothing of it will be written. */
/* foreign: the id of another process's active run that refused it (NULL: none). */
static void promotion_failed(struct ag_run *run, const struct ag_pg_query *q, const char *foreign)
{
    ag_log(AG_LOG_WARN, "run=%s msg=\"run not created: %s\"", run->run_id,
           q && q->error ? q->error : "no database or the thread is gone");
    if (run->creator) {
        if (q && q->status != AG_PG_OK)
            ag_dbq_fail(run->creator, q);
        else if (foreign)
            ag_run__answer_error(run->creator, 409, FOREIGN_BUSY, foreign);
        else if (q)
            ag_run__answer_error(run->creator, 404, "Thread '%s' not found", run->spec.thread_id);
        else
            refuse_early(run->creator, NULL, NULL, 503, "the database queue is full or down; retry");
        ag_http_done(run->creator);
        run->creator = NULL;
    }
    run->orphan = true;
    run->direct = false;
    if (run->state == R_RUNNING) {
        run->error = ag_strdup("the run could not be stored");
        ag_run__run_cancel(run, "error", false); /* its end writes nothing */
    }
}

static void on_promoted(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    if (q->status == AG_PG_OK && !PQgetisnull(res, 0, 2)) {
        run->direct = false;
        if (!PQgetisnull(res, 0, 5))
            ag_tlog_reserved(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 5), NULL, 10));
        ag_run__attach_creator(run);
    } else {
        promotion_failed(run, q, q->status == AG_PG_OK && !PQgetisnull(res, 0, 6) ? PQgetvalue(res, 0, 6) : NULL);
    }
    ag_run__progress_done(run);
}

/* A direct run that did not end in the turn it started in is created like any run (RUN_CREATE, in
 * place of its first checkpoint write) and its creator answered once that is stored. */
static void promote(struct ag_run *run)
{
    create_query(run);
    run->q.cb = on_promoted;
    run->progress_inflight = true;
    if (ag_pg_submit(ag_run__rs->s, &run->q) == 0)
        return;
    run->progress_inflight = false;
    ag_pg_args_reset(&run->strs);
    promotion_failed(run, NULL, NULL);
}

static void on_prepared(struct ag_pg_query *q, PGresult *res)
{
    struct ag_run *run = ag_run__run_of(q);
    struct trt *t = run->t;
    struct ag_req *r = run->creator;
    t->creating--;
    ag_pg_args_reset(&run->strs);
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
    if (!PQgetisnull(res, 0, 5)) {
        refuse_create(run, 409, FOREIGN_BUSY, PQgetvalue(res, 0, 5));
        drop_refused(run);
        return;
    }
    if (PQgetisnull(res, 0, 2) || !ag_run__direct_ok(t, run)) {
        /* A thread to create, or runs admitted meanwhile: created like any run. */
        run->direct = false;
        create_query(run);
        t->creating++;
        if (ag_dbq_submit(r, &run->q) == AG_AGAIN)
            return;
        t->creating--;
        ag_pg_args_reset(&run->strs);
        drop_refused(run);
        return;
    }
    ag_tlog_stored(run->spec.thread_id, strtoull(PQgetvalue(res, 0, 2), NULL, 10));
    admit(run, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
    emit_metadata(run);
    admitted(run);
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
    char *body = ag_run__dumps(e);
    json_decref(e);
    cb(ud, status, body, strlen(body));
    ag_free(body);
}

static int submit(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how, ag_run_created_fn cb, void *ud)
{
    struct trt *t = ag_run__trt_get(spec->thread_id, true);
    if (ag_run__trt_busy(t) && spec->mt == AG_MT_REJECT) {
        refuse_early(r, cb, ud, 409,
                     "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.");
        ag_run_spec_clear(spec);
        ag_run__trt_release(t);
        return r ? AG_OK : AG_AGAIN;
    }
    if (t->qhead && spec->mt == AG_MT_ENQUEUE) { /* runs still creating hold their place: they count */
        unsigned n = 0;
        for (struct ag_run *x = t->qhead; x; x = x->qnext)
            n++;
        if (n >= ag_run__rs->cfg->runs.queue_max) {
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
    run->accepted_us = ag_clock_real_us();
    ag_uuid7(run->run_id);
    run->modes = (struct ag_run_modes){.modes = run->spec.modes, .thread_id = run->spec.thread_id,
                                       .run_id = run->run_id, .emit = ag_run__emit_modes, .ud = run};
    /* Answered only with its outcome or its stream, on an idle thread that exists: written once, at
     * its end, when it ends within the turn it starts in (RUN_PREPARE, then RUN_RECORD). */
    run->direct = r && how != AG_RUN_REPLY_RUN && !run->spec.stateless && run->spec.after_seconds <= 0 &&
                  ag_run__direct_ok(t, NULL);
    t->creating++;
    ag_run__queue_append(t, run);
    if (run->direct)
        prepare_query(run);
    else
        create_query(run);
    int rc = r ? ag_dbq_submit(r, &run->q) : (ag_pg_submit(ag_run__rs->s, &run->q) == 0 ? AG_AGAIN : AG_OK);
    if (rc != AG_AGAIN) {
        if (!r)
            refuse_early(NULL, cb, ud, 503, "the database queue is full or down; retry");
        t->creating--;
        ag_run__queue_remove(t, run);
        ag_pg_args_reset(&run->strs);
        ag_run_spec_clear(&run->spec);
        ag_free(run);
        ag_run__start_next(t);
        ag_run__trt_release(t);
        return AG_OK;
    }
    return AG_AGAIN;
}

