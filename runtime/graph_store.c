#include "runtime/graph_store.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/shard.h"
#include "core/timer.h"
#include "persist/pg.h"
#include "persist/pgargs.h"

#define BUSY_PAUSE_NS AG_NS_PER_MS
#define BUSY_MAX_NS (10 * AG_NS_PER_SEC)

struct store_op {
    struct ag_pg_query q;
    struct ag_pg_args args;
    struct ag_shard *s;
    enum ag_graph_store_kind kind;
    ag_graph_store_done_fn done;
    void *cookie;
    bool in_flight; /* q is queued or running: its callback frees a cancelled op */
    bool cancelled;
    unsigned busy;
    uint64_t busy_since;
    struct ag_timer wait; /* the pause before running a busy write again */
};

static void op_free(struct store_op *op)
{
    ag_pg_args_reset(&op->args);
    ag_free(op);
}

static void finish(struct store_op *op, const json_t *result, const char *error)
{
    op->done(op->cookie, result, error);
    op_free(op);
}

static int submit(struct store_op *op)
{
    int rc = ag_pg_submit(op->s, &op->q);
    op->in_flight = rc == 0;
    return rc;
}

static void on_wait(struct ag_timer *tm)
{
    struct store_op *op = AG_CONTAINER_OF(tm, struct store_op, wait);
    if (submit(op) < 0) finish(op, NULL, "the database is unavailable or its queue is full");
}

static void on_result(struct ag_pg_query *q, PGresult *res)
{
    struct store_op *op = AG_CONTAINER_OF(q, struct store_op, q);
    op->in_flight = false;
    if (op->cancelled) {
        op_free(op);
        return;
    }
    if (q->status != AG_PG_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "store %s failed: %s",
                 op->kind == AG_GSTORE_GET      ? "get"
                 : op->kind == AG_GSTORE_PUT    ? "put"
                 : op->kind == AG_GSTORE_DELETE ? "delete"
                                                : "search",
                 q->status == AG_PG_SQL_ERROR && q->error ? q->error : "database unavailable");
        finish(op, NULL, msg);
        return;
    }
    if (op->kind == AG_GSTORE_PUT || op->kind == AG_GSTORE_DELETE) {
        bool go = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
        if (go) {
            finish(op, json_null(), NULL);
            return;
        }
        /* Another transaction writes the item: again after a pause (persist/sql_store.def). */
        if (!op->busy++) op->busy_since = op->s->now_ns;
        if (op->s->now_ns - op->busy_since > BUSY_MAX_NS) {
            finish(op, NULL, "the item is being written by others; gave up after 10 s");
            return;
        }
        ag_timer_arm(&op->s->timers, &op->wait, op->s->now_ns + (BUSY_PAUSE_NS << (op->busy < 5 ? op->busy - 1 : 4)));
        return;
    }
    json_t *v = NULL;
    if (PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0)) {
        json_error_t je;
        v = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), JSON_DECODE_ANY, &je);
    }
    if (op->kind == AG_GSTORE_GET) {
        finish(op, v ? v : json_null(), NULL);
    } else {
        const json_t *items = json_object_get(v, "items");
        json_t *empty = items ? NULL : json_array();
        finish(op, items ? items : empty, NULL);
        json_decref(empty);
    }
    json_decref(v);
}

void *ag_graph_store_start(struct ag_shard *s, const char *owner, const struct ag_graph_store_req *req,
                           ag_graph_store_done_fn done, void *cookie, char *err, size_t errlen)
{
    struct store_op *op = ag_calloc(1, sizeof *op);
    op->s = s;
    op->kind = req->kind;
    op->done = done;
    op->cookie = cookie;
    ag_timer_init(&op->wait, on_wait);
    struct ag_pg_args *a = &op->args;
    const char *o = ag_pg_args_dup(a, owner, strlen(owner));
    size_t n = json_array_size(req->ns);
    const char *ns = ag_pg_args_text_array(a, req->ns, n, false);
    const char *key = req->key ? ag_pg_args_dup(a, req->key, strlen(req->key)) : NULL;
    op->q = (struct ag_pg_query){.cb = on_result, .ud = op};
    switch (req->kind) {
    case AG_GSTORE_GET:
        op->q.stmt = AG_SQL_STORE_GET;
        op->q.kind = AG_PG_READ;
        AG_PG_PARAMS(&op->q, ((struct { const char *owner, *ns, *key, *refresh; }){o, ns, key, "false"}));
        break;
    case AG_GSTORE_PUT: {
        json_t *body = json_pack("{s:O}", "value", req->value);
        op->q.stmt = AG_SQL_STORE_PUT;
        op->q.kind = AG_PG_WRITE;
        AG_PG_PARAMS(&op->q, ((struct { const char *owner, *ns, *key, *body, *ttl; }){o, ns, key,
                                                                                      ag_pg_args_json(a, body), NULL}));
        json_decref(body);
        break;
    }
    case AG_GSTORE_DELETE:
        op->q.stmt = AG_SQL_STORE_DELETE;
        op->q.kind = AG_PG_WRITE;
        AG_PG_PARAMS(&op->q, ((struct { const char *owner, *ns, *key; }){o, ns, key}));
        break;
    case AG_GSTORE_SEARCH: {
        json_t *body = req->filter ? json_pack("{s:O}", "filter", req->filter) : json_object();
        op->q.stmt = AG_SQL_STORE_SEARCH;
        op->q.kind = AG_PG_READ;
        AG_PG_PARAMS(
            &op->q, ((struct {
                const char *owner, *lo, *hi, *body, *limit, *offset, *refresh;
            }){o, n ? ns : NULL, n ? ag_pg_args_text_array(a, req->ns, n, true) : NULL, ag_pg_args_json(a, body),
                    ag_pg_args_printf(a, "%d", req->limit), ag_pg_args_printf(a, "%d", req->offset), "false"}));
        json_decref(body);
        break;
    }
    }
    if (submit(op) < 0) {
        snprintf(err, errlen, "%s", ag_pg_configured(s) ? "the database queue is full" : "no database: no store");
        op_free(op);
        return NULL;
    }
    return op;
}

void ag_graph_store_cancel(void *handle)
{
    struct store_op *op = handle;
    if (op->in_flight) {
        op->cancelled = true; /* its callback frees it */
        return;
    }
    ag_timer_cancel(&op->s->timers, &op->wait);
    op_free(op);
}
