#include "protocol/agent/run_sinks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/shard.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "runtime/stats.h"

#define SSE_HEARTBEAT ": heartbeat\r\n\r\n"
/* The thread has an active run claimed by another agentd process (one %s: its id). No strategy can
 * act on it from here: enqueue cannot start after it, interrupt and rollback cannot stop it. */
#define FOREIGN_BUSY                                                                                                   \
    "Thread is already running a task: run %s is active on another agentd process (if that process "              \
    "stopped, the run ends as error when its lease expires). Wait for it to finish."
#define BUSY "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."

/* --- the codec --- */

static struct ag_obuf *sse_encode(const char *event, const char *data, size_t dlen, uint64_t id)
{
    char head[96], tail[40];
    int hl = snprintf(head, sizeof head, "event: %s\ndata: ", event);
    int tl = snprintf(tail, sizeof tail, "\nid: %" PRIu64 "\n\n", id);
    struct ag_obuf *b = ag_http_piece_new((size_t)hl + dlen + (size_t)tl);
    char *p = ag_http_piece_data(b);
    memcpy(p, head, (size_t)hl);
    memcpy(p + hl, data, dlen);
    memcpy(p + hl + dlen, tail, (size_t)tl);
    return b;
}

const struct ag_run_codec ag_run_sinks_codec = {.encode = sse_encode};

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
    const char *run_id = ag_run_id(run);
    size_t rl = strlen(run_id);
    struct ag_obuf *t = ag_http_piece_new(cut + 5 + rl + 1 + idlen + 2);
    char *q = ag_http_piece_data(t);
    memcpy(q, p, cut);
    q += cut;
    memcpy(q, "\nid: ", 5);
    q += 5;
    memcpy(q, run_id, rl);
    q += rl;
    *q++ = ':';
    memcpy(q, id, idlen);
    q += idlen;
    memcpy(q, "\n\n", 2);
    return t;
}

/* The last event reframed for thread streams on this shard: every thread sink of a run gets the same
 * event in a row, so it is reframed once and shared (src and out each hold a reference, which also keeps
 * src's address from being reused while it keys the entry). */
static _Thread_local struct {
    struct ag_obuf *src, *out;
} reframed;

static void reframed_clear(void)
{
    if (reframed.src) {
        ag_obuf_unref(reframed.src);
        ag_obuf_unref(reframed.out);
    }
    reframed.src = reframed.out = NULL;
}

static struct ag_obuf *thread_frame_shared(const struct ag_run *run, struct ag_obuf *b)
{
    if (reframed.src != b) {
        reframed_clear();
        reframed.src = ag_obuf_ref(b);
        reframed.out = thread_frame(run, b);
    }
    return reframed.out;
}

void ag_run_sinks_shard_exit(void)
{
    reframed_clear();
}

/* --- sinks --- */

enum sink_kind {
    K_STREAM, /* SSE of the run's events */
    K_WAIT,   /* the final output as a streamed JSON body (keep-alive newlines before it) */
    K_CANCEL, /* cancel?wait=1: 204 once ended */
    K_THREAD, /* GET /threads/{id}/stream: every run of the thread in turn (ids "<run id>:<n>") */
};

struct http_sink {
    struct ag_run_sink k; /* first: the runtime's view */
    struct ag_req *r;
    enum sink_kind kind;
    unsigned events; /* K_THREAD: AG_THREAD_EVENTS_* it sends */
};

/* The AG_THREAD_EVENTS_* class of an SSE frame (by its event name). */
static unsigned frame_class(const struct ag_obuf *b)
{
    const char *p = b->data + AG_HTTP_PIECE_HEAD;
    size_t n = b->len - AG_HTTP_PIECE_HEAD;
    static const struct {
        const char *head;
        unsigned cls;
    } known[] = {
        {"event: metadata\n", AG_THREAD_EVENTS_LIFECYCLE},
        {"event: error\n", AG_THREAD_EVENTS_LIFECYCLE},
        {"event: end\n", AG_THREAD_EVENTS_LIFECYCLE},
        {"event: values\n", AG_THREAD_EVENTS_STATE},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(known); i++) {
        size_t l = strlen(known[i].head);
        if (n >= l && !memcmp(p, known[i].head, l))
            return known[i].cls;
    }
    return 0;
}

static void sink_event(struct ag_run_sink *k, const struct ag_run *run, uint64_t id, struct ag_obuf *frame)
{
    struct http_sink *x = (struct http_sink *)k;
    (void)id;
    if (x->r->gone)
        return;
    if (x->kind == K_STREAM) {
        ag_http_stream_write_piece(x->r, frame);
    } else if (x->kind == K_THREAD && (x->events == AG_THREAD_EVENTS_ALL || (frame_class(frame) & x->events))) {
        ag_http_stream_write_piece(x->r, thread_frame_shared(run, frame));
    }
}

static void sink_end(struct ag_run_sink *k, struct ag_run *run)
{
    struct http_sink *x = (struct http_sink *)k;
    struct ag_req *r = x->r;
    r->on_gone = NULL;
    ag_stat_sub(&r->shard->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    enum sink_kind kind = x->kind;
    if (!r->gone) {
        if (kind == K_WAIT) {
            char *s = ag_run_outcome_json(run);
            ag_http_stream_write(r, s, strlen(s));
            ag_free(s);
        } else if (kind == K_CANCEL) {
            ag_http_respond(r, 204, "application/json", "", 0);
        }
    }
    ag_free(x);
    if (kind == K_CANCEL)
        ag_http_done(r);
    else
        ag_http_stream_end(r);
}

static bool sink_behind(const struct ag_run_sink *k)
{
    return ag_http_stream_behind(((const struct http_sink *)k)->r);
}

static const struct ag_run_sink_ops stream_ops = {.on_event = sink_event, .on_end = sink_end, .behind = sink_behind};
static const struct ag_run_sink_ops quiet_ops = {.on_event = sink_event, .on_end = sink_end};

/* The client of a sink's request left. */
static void on_sink_gone(struct ag_req *r)
{
    struct http_sink *x = r->stream_ud;
    ag_run_unwatch(&x->k); /* may cancel the run (cancel_on_disconnect): x hears nothing more */
    r->on_gone = NULL;
    ag_stat_sub(&r->shard->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    ag_free(x);
    ag_http_stream_end(r);
}

static struct http_sink *sink_new(struct ag_req *r, enum sink_kind kind)
{
    struct http_sink *x = ag_calloc(1, sizeof *x);
    x->k.ops = kind == K_STREAM || kind == K_THREAD ? &stream_ops : &quiet_ops;
    x->r = r;
    x->kind = kind;
    ag_stat_add(&r->shard->stats, AG_STAT_SSE_SUBSCRIBERS, 1);
    r->stream_ud = x;
    r->on_gone = on_sink_gone;
    return x;
}

/* Starts r's streamed answer for run: Content-Location and Location, then JSON (wait) or SSE. */
static void start_stream(struct ag_req *r, const struct ag_run *run, bool wait)
{
    char loc[200];
    snprintf(loc, sizeof loc, "/threads/%s/runs/%s", ag_run_thread_id(run), ag_run_id(run));
    ag_http_add_header(r, "content-location", loc);
    size_t n = strlen(loc);
    snprintf(loc + n, sizeof loc - n, wait ? "/join" : "/stream");
    ag_http_add_header(r, "location", loc);
    if (wait) {
        ag_http_stream_start(r, 200, "application/json", "\n", ag_run_heartbeat_ms());
    } else {
        ag_http_add_header(r, "cache-control", "no-cache");
        ag_http_add_header(r, "x-accel-buffering", "no");
        ag_http_stream_start(r, 200, "text/event-stream", SSE_HEARTBEAT, ag_run_heartbeat_ms());
    }
}

/* --- creation --- */

static void answer_error(struct ag_req *r, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    if (status == 503)
        ag_http_add_header(r, "retry-after", "1");
    ag_http_error(r, status, msg);
}

/* Answers r for a creation that did not admit the run. */
static void answer_refused(struct ag_req *r, const struct ag_run_created *res)
{
    switch (res->result) {
    case AG_RUN_ADMITTED: AG_BUG_ON(1); break;
    case AG_RUN_REJECTED_BUSY: answer_error(r, 409, "%s", BUSY); break;
    case AG_RUN_QUEUE_FULL: answer_error(r, 503, "%s", "too many runs queued on this thread"); break;
    case AG_RUN_NOT_SUBMITTED:
        ag_http_add_header(r, "retry-after", "1");
        ag_http_error(r, 503, res->submit_rc == -EAGAIN ? "database queue full, retry later" : "database unavailable");
        break;
    case AG_RUN_NOT_STORED: answer_error(r, 503, "%s", "the database queue is full or down; retry"); break;
    case AG_RUN_DB_FAILED: ag_dbq_fail(r, res->q); break;
    case AG_RUN_NO_ASSISTANT: answer_error(r, 404, "Assistant '%s' not found", res->detail); break;
    case AG_RUN_NO_THREAD: answer_error(r, 404, "Thread '%s' not found", res->detail); break;
    case AG_RUN_NO_CHECKPOINT: answer_error(r, 404, "Checkpoint '%s' not found", res->detail); break;
    case AG_RUN_FOREIGN_BUSY: answer_error(r, 409, FOREIGN_BUSY, res->detail); break;
    }
}

/* The request whose ag_run_create call is under way on this shard, and whether it was told its outcome
 * inside that call: then the handler returns AG_OK; told later, the answer also completes the request. */
static _Thread_local struct ag_req *creating_now;
static _Thread_local bool told_now;

static void created(struct ag_req *r, const struct ag_run_created *res, enum ag_run_reply how)
{
    bool later = r != creating_now;
    if (!later)
        told_now = true;
    if (res->result != AG_RUN_ADMITTED) {
        answer_refused(r, res);
        if (later)
            ag_http_done(r);
        return;
    }
    if (how == AG_RUN_REPLY_RUN) {
        char loc[160];
        snprintf(loc, sizeof loc, "/threads/%s/runs/%s", ag_run_thread_id(res->run), ag_run_id(res->run));
        ag_http_add_header(r, "content-location", loc);
        ag_http_json(r, 200, res->run_json, res->run_json_len);
        ag_http_done(r);
        return;
    }
    bool wait = how == AG_RUN_REPLY_WAIT;
    start_stream(r, res->run, wait);
    struct http_sink *x = sink_new(r, wait ? K_WAIT : K_STREAM);
    /* A run written once at its end may have produced all its events already. */
    if (!wait)
        ag_run_replay(res->run, &x->k, ag_run_first_event(res->run));
    ag_run_watch(res->run, &x->k, ag_run_cancels_on_disconnect(res->run));
}

static void created_run(void *ud, const struct ag_run_created *res)
{
    created(ud, res, AG_RUN_REPLY_RUN);
}

static void created_wait(void *ud, const struct ag_run_created *res)
{
    created(ud, res, AG_RUN_REPLY_WAIT);
}

static void created_stream(void *ud, const struct ag_run_created *res)
{
    created(ud, res, AG_RUN_REPLY_STREAM);
}

int ag_run_sinks_create(struct ag_req *r, struct ag_run_spec *spec, enum ag_run_reply how)
{
    static const ag_run_created_fn fns[] = {
        [AG_RUN_REPLY_RUN] = created_run, [AG_RUN_REPLY_WAIT] = created_wait, [AG_RUN_REPLY_STREAM] = created_stream};
    snprintf(spec->owner, sizeof spec->owner, "%s", ag_req_owner(r));
    creating_now = r;
    told_now = false;
    ag_run_create(spec, how, fns[how], r);
    creating_now = NULL;
    return told_now ? AG_OK : AG_AGAIN;
}

/* A creation told to a callback instead of a request. */
struct answer_cb {
    ag_run_answer_fn fn;
    void *ud;
};

static void answer_cb_error(struct answer_cb *a, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    json_t *e = json_pack("{s:s,s:s,s:n}", "error", ag_http_error_code(status), "message", msg, "details");
    char *body = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    a->fn(a->ud, status, body, strlen(body));
    ag_free(body);
}

static void created_cb(void *ud, const struct ag_run_created *res)
{
    struct answer_cb a = *(struct answer_cb *)ud;
    ag_free(ud);
    switch (res->result) {
    case AG_RUN_ADMITTED: a.fn(a.ud, 200, res->run_json, res->run_json_len); break;
    case AG_RUN_REJECTED_BUSY: answer_cb_error(&a, 409, "%s", BUSY); break;
    case AG_RUN_QUEUE_FULL: answer_cb_error(&a, 503, "%s", "too many runs queued on this thread"); break;
    case AG_RUN_NOT_SUBMITTED:
    case AG_RUN_NOT_STORED: answer_cb_error(&a, 503, "%s", "the database queue is full or down; retry"); break;
    case AG_RUN_DB_FAILED: answer_cb_error(&a, 503, "%s", "the database could not create the run; retry"); break;
    case AG_RUN_NO_ASSISTANT: answer_cb_error(&a, 404, "Assistant '%s' not found", res->detail); break;
    case AG_RUN_NO_THREAD: answer_cb_error(&a, 404, "Thread '%s' not found", res->detail); break;
    case AG_RUN_NO_CHECKPOINT: answer_cb_error(&a, 404, "Checkpoint '%s' not found", res->detail); break;
    case AG_RUN_FOREIGN_BUSY: answer_cb_error(&a, 409, FOREIGN_BUSY, res->detail); break;
    }
}

void ag_run_sinks_create_cb(struct ag_run_spec *spec, ag_run_answer_fn cb, void *ud)
{
    struct answer_cb *a = ag_malloc(sizeof *a);
    *a = (struct answer_cb){.fn = cb, .ud = ud};
    ag_run_create(spec, AG_RUN_REPLY_RUN, created_cb, a);
}

/* --- existing runs --- */

/* A run that is not in memory: its stored outcome answers. */
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
        bool timeout = !strcmp(status, "timeout");
        if (o->what == O_JOIN && (timeout || !strcmp(status, "error"))) {
            /* As for a run still in memory (ag_run_outcome_json): the stored error says what happened. */
            json_t *e = json_pack("{s:{s:s,s:s}}", "__error__", "error", timeout ? "TimeoutError" : "GraphError",
                                  "message", PQgetisnull(res, 0, 2) ? "execution failed" : PQgetvalue(res, 0, 2));
            char *s = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
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
    ag_dbreq_param(&o->d, ag_req_owner(r));
    return ag_dbreq_submit(&o->d);
}

int ag_run_sinks_join(struct ag_req *r, const char *thread_id, const char *run_id, bool cancel_on_disconnect)
{
    struct ag_run *run = ag_run_find(thread_id, run_id);
    if (!run)
        return load_outcome(r, thread_id, run_id, O_JOIN, AG_SQL_RUN_OUTCOME);
    if (ag_run_done(run)) {
        char *s = ag_run_outcome_json(run);
        ag_http_json(r, 200, s, strlen(s));
        ag_free(s);
        return AG_OK;
    }
    start_stream(r, run, true);
    ag_run_watch(run, &sink_new(r, K_WAIT)->k, cancel_on_disconnect);
    return AG_AGAIN;
}

int ag_run_sinks_attach(struct ag_req *r, const char *thread_id, const char *run_id, const char *last_event_id,
                        bool cancel_on_disconnect)
{
    struct ag_run *run = ag_run_find(thread_id, run_id);
    if (!run)
        return load_outcome(r, thread_id, run_id, O_ATTACH, AG_SQL_RUN_OUTCOME);
    uint64_t from = ag_run_first_event(run);
    bool done = ag_run_done(run);
    if (last_event_id) {
        char *end;
        long long v = strtoll(last_event_id, &end, 10);
        if (*end == 0 && v >= 0 && (uint64_t)v + 1 > from)
            from = (uint64_t)v + 1;
    } else if (done) {
        from = ag_run_end_event(run) - 1; /* just the end */
    }
    char loc[160];
    snprintf(loc, sizeof loc, "/threads/%s/runs/%s", thread_id, run_id);
    ag_http_add_header(r, "content-location", loc);
    ag_http_add_header(r, "cache-control", "no-cache");
    ag_http_stream_start(r, 200, "text/event-stream", done ? NULL : SSE_HEARTBEAT, ag_run_heartbeat_ms());
    if (done) { /* what it holds, then the end of the answer */
        struct http_sink once = {.k.ops = &stream_ops, .r = r, .kind = K_STREAM};
        ag_run_replay(run, &once.k, from);
        ag_http_stream_end(r);
        return AG_AGAIN;
    }
    struct http_sink *x = sink_new(r, K_STREAM);
    ag_run_replay(run, &x->k, from);
    ag_run_watch(run, &x->k, cancel_on_disconnect);
    return AG_AGAIN;
}

int ag_run_sinks_cancel(struct ag_req *r, const char *thread_id, const char *run_id, bool rollback, bool wait,
                        const char *reason)
{
    struct ag_run *run = ag_run_find(thread_id, run_id);
    if (!run)
        return load_outcome(r, thread_id, run_id, O_CANCEL, AG_SQL_RUN_OUTCOME);
    if (!ag_run_done(run))
        ag_run_cancel(run, rollback, reason);
    if (!wait || ag_run_done(run)) {
        ag_http_respond(r, 204, "application/json", "", 0);
        return AG_OK;
    }
    ag_run_watch(run, &sink_new(r, K_CANCEL)->k, false);
    return AG_AGAIN;
}

int ag_run_sinks_delete(struct ag_req *r, const char *thread_id, const char *run_id, bool force)
{
    struct ag_run *run = ag_run_find(thread_id, run_id);
    if (run && !ag_run_done(run)) {
        if (!force) {
            ag_http_error(r, 409, "Run is active. Retry with force=1 to cancel and delete.");
            return AG_OK;
        }
        ag_run_cancel(run, true, AG_RUN_CANCEL_REASON_USER); /* rollback deletes the run row with its checkpoints */
        if (ag_run_done(run)) {
            ag_http_respond(r, 204, "application/json", "", 0);
            return AG_OK;
        }
        ag_run_watch(run, &sink_new(r, K_CANCEL)->k, false); /* 204 once the delete is written */
        return AG_AGAIN;
    }
    if (run)
        ag_run_forget(run); /* deleted rows must not come back from memory */
    return load_outcome(r, thread_id, run_id, O_DELETE, AG_SQL_RUN_DELETE);
}

int ag_run_sinks_thread_stream(struct ag_req *r, const char *thread_id, const char *last_event_id, unsigned events)
{
    ag_http_add_header(r, "cache-control", "no-cache");
    ag_http_add_header(r, "x-accel-buffering", "no");
    ag_http_stream_start(r, 200, "text/event-stream", SSE_HEARTBEAT, ag_run_heartbeat_ms());
    struct http_sink *x = sink_new(r, K_THREAD);
    x->events = events;
    /* "<run id>:<n>": on from after that event when the run is still active. */
    const char *colon = last_event_id ? strchr(last_event_id, ':') : NULL;
    char rid[37];
    uint64_t after = 0;
    bool named = false;
    if (colon && colon - last_event_id == 36) {
        memcpy(rid, last_event_id, 36);
        rid[36] = 0;
        char *end;
        after = strtoull(colon + 1, &end, 10);
        named = *end == 0;
    }
    ag_run_thread_watch(thread_id, &x->k, named ? rid : NULL, after);
    return AG_AGAIN;
}
