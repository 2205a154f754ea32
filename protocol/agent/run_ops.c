/* Endpoints on existing runs and on a thread's runs: join, attach, cancel, delete, the thread stream,
 * and what other modules tell the run engine about a thread. Part of the run engine
 * (protocol/agent/run_internal.h). */
#include "protocol/agent/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "protocol/agent/run_internal.h"
#include "protocol/agent/tlog.h"
#include "protocol/http.h"

#define OWNER "anonymous"

/* --- existing runs --- */

static struct ag_run *find_run(const char *thread_id, const char *run_id)
{
    struct ag_run *run = ag_strmap_get(&ag_run__rs->runs, run_id, strlen(run_id));
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
        ag_run__answer_error(r, 404, "Run '%s' not found", o->run_id);
    } else if (o->what == O_DELETE) {
        ag_http_respond(r, 204, "application/json", "", 0);
    } else {
        const char *status = PQgetvalue(res, 0, 0);
        bool active = !strcmp(status, "pending") || !strcmp(status, "running");
        bool timeout = !strcmp(status, "timeout");
        if (o->what == O_JOIN && (timeout || !strcmp(status, "error"))) {
            /* As for a run still in memory (ag_run__outcome_json): the stored error says what happened. */
            json_t *e = json_pack("{s:{s:s,s:s}}", "__error__", "error", timeout ? "TimeoutError" : "GraphError",
                                  "message", PQgetisnull(res, 0, 2) ? "execution failed" : PQgetvalue(res, 0, 2));
            char *s = ag_run__dumps(e);
            json_decref(e);
            ag_http_json(r, 200, s, strlen(s));
            ag_free(s);
        } else if (o->what == O_JOIN) {
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
        char *s = ag_run__outcome_json(run);
        ag_http_json(r, 200, s, strlen(s));
        ag_free(s);
        return AG_OK;
    }
    ag_run__start_stream(r, run, true);
    ag_run__sub_add(run, r, SUB_WAIT, false);
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
    ag_http_stream_start(r, 200, "text/event-stream", run->state == R_DONE ? NULL : AG_RUN__SSE_HEARTBEAT,
                         ag_run__rs->cfg->runs.heartbeat_ms);
    for (uint64_t i = from; i < run->ev_first + run->nev; i++) {
        ag_http_stream_write_piece(r, run->ev[i - run->ev_first]);
    }
    if (run->state == R_DONE) {
        ag_http_stream_end(r);
        return AG_AGAIN;
    }
    ag_run__sub_add(run, r, SUB_STREAM, false);
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
    ag_run__run_cancel(run, "interrupted", rollback);
    if (!wait && run->state != R_DONE) {
        ag_http_respond(r, 204, "application/json", "", 0);
        return AG_OK;
    }
    if (run->state == R_DONE) {
        ag_http_respond(r, 204, "application/json", "", 0);
        return AG_OK;
    }
    ag_run__sub_add(run, r, SUB_CANCEL, false);
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
        ag_run__run_cancel(run, "interrupted", true); /* rollback deletes the run row with its checkpoints */
        if (run->state == R_DONE) {
            ag_http_respond(r, 204, "application/json", "", 0);
            return AG_OK;
        }
        ag_run__sub_add(run, r, SUB_CANCEL, false); /* 204 once the delete is written */
        return AG_AGAIN;
    }
    if (run)
        ag_run__forget(run); /* deleted rows must not come back from memory */
    return load_outcome(r, thread_id, run_id, O_DELETE, AG_SQL_RUN_DELETE);
}

int ag_run_thread_stream(struct ag_req *r, const char *thread_id, const char *last_event_id)
{
    struct trt *t = ag_run__trt_get(thread_id, true);
    ag_http_add_header(r, "cache-control", "no-cache");
    ag_http_add_header(r, "x-accel-buffering", "no");
    ag_http_stream_start(r, 200, "text/event-stream", AG_RUN__SSE_HEARTBEAT, ag_run__rs->cfg->runs.heartbeat_ms);
    struct sub *x = ag_calloc(1, sizeof *x);
    x->kind = SUB_THREAD;
    x->t = t;
    x->r = r;
    t->nthread_subs++;
    ag_stat_add(&ag_run__rs->s->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    r->stream_ud = x;
    r->on_gone = ag_run__on_sub_gone;
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
            ag_run__thread_sub_attach(x, run, (uint64_t)n + 1);
            return AG_AGAIN;
        }
    }
    ag_run__thread_sub_next(x);
    return AG_AGAIN;
}

void ag_run_thread_deleted(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    ag_tlog_thread_deleted(thread_id);
    struct trt *t = ag_run__trt_get(thread_id, false);
    if (!t)
        return;
    t->nthread_subs++; /* holds t while its streams end and its runs are cancelled */
    ag_run__thread_subs_end(t);
    /* Runs still creating fail to be created: their thread is gone. */
    for (struct ag_run *x; (x = ag_run__first_queued(t));)
        ag_run__run_cancel(x, "interrupted", false);
    if (t->active)
        ag_run__run_cancel(t->active, "interrupted", false);
    t->nthread_subs--;
    ag_run__trt_release(t);
}

void ag_run_thread_state_changed(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = ag_run__trt_get(thread_id, false);
    if (t) {
        json_decref(t->last_cp);
        t->last_cp = NULL;
        t->cp_known = false;
    }
}

bool ag_run_thread_busy(struct ag_shard *s, const char *thread_id)
{
    (void)s;
    struct trt *t = ag_run__trt_get(thread_id, false);
    return t && ag_run__trt_busy(t);
}

