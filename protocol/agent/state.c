#include "protocol/agent/state.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "graph/engine.h"
#include "graph/registry.h"
#include "persist/cpstore.h"
#include "persist/pg.h"
#include "protocol/agent/state_apply.h"
#include "runtime/run.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "protocol/query.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"

#define HISTORY_LIMIT_DEFAULT 10
#define HISTORY_LIMIT_MAX 1000
#define RUNS_LIMIT_DEFAULT 10

/* One request's database work: freed by ag_dbreq_finish after the answer. */
struct sq {
    struct ag_dbreq d;
    char id[37];         /* the thread named by the request */
    const char *what;    /* what a NULL answer did not find: "Checkpoint", "Run" */
    const char *what_id; /* its id (a parameter string owned by d) */
};

/* No row: the thread is missing (404). A NULL value: x->what is missing (404). Else 200 with it. */
static void on_answer(struct ag_pg_query *q, PGresult *res)
{
    struct sq *x = q->ud;
    char msg[192];
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(x->d.r, q);
    } else if (PQntuples(res) < 1) {
        snprintf(msg, sizeof msg, "Thread '%s' not found", x->id);
        ag_http_error(x->d.r, 404, msg);
    } else if (PQgetisnull(res, 0, 0)) {
        snprintf(msg, sizeof msg, "%s '%.120s' not found", x->what, x->what_id);
        ag_http_error(x->d.r, 404, msg);
    } else {
        ag_http_json(x->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    }
    ag_dbreq_finish(&x->d);
}

/* A statement stmt of kind on thread id, answered by cb; $1 is the id, $2 the owner. */
static struct sq *sq_new_as(struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb, const char id[37])
{
    struct sq *x = ag_dbreq_new(sizeof(struct sq), r, stmt, kind, cb);
    memcpy(x->id, id, sizeof x->id);
    ag_dbreq_param(&x->d, x->id);
    ag_dbreq_param(&x->d, ag_req_owner(x->d.r));
    return x;
}

/* A read of stmt on thread id, answered by on_answer. */
static struct sq *sq_new(struct ag_req *r, enum ag_sql stmt, const char id[37])
{
    return sq_new_as(r, stmt, AG_PG_READ, on_answer, id);
}

static int submit(struct sq *x)
{
    return ag_dbreq_submit(&x->d);
}

/* --- input checks --- */

/* Postgres refuses text that is not UTF-8; a query or path string must be valid before it is sent. */
static bool utf8_ok(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* Query parameter `name` = *value of a route; a handler takes *value (setting it NULL) when it keeps
 * it. Returns false when the route has no such parameter. */
typedef bool (*query_fn)(void *ctx, struct ag_verr *e, const char *name, char **value);

/* Hands every query parameter of r to fn; unknown names and bad encodings are problems in e. */
static void scan_query(struct ag_req *r, struct ag_verr *e, query_fn fn, void *ctx)
{
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name), *v = ag_query_str(value);
        if (!n || !v)
            ag_query_error(e, n ? n : "", "value_error", "Value error, badly encoded query parameter", NULL);
        else if (!fn(ctx, e, n, &v))
            ag_query_unknown(n);
        ag_free(n);
        ag_free(v);
    }
}

/* Routes that take a body take no query parameter. */
static bool no_query(void *ctx, struct ag_verr *e, const char *name, char **value)
{
    (void)ctx, (void)e, (void)name, (void)value;
    return false;
}

/* Keeps string parameter *value in *slot (replacing an earlier one) when it is valid UTF-8. */
static void take_str(struct ag_verr *e, const char *name, char **value, char **slot)
{
    if (!utf8_ok(*value)) {
        ag_query_error(e, name, "string_unicode",
                       "Input should be a valid string, unable to parse raw data as a unicode string", NULL);
        return;
    }
    ag_free(*slot);
    *slot = *value;
    *value = NULL;
}

/* The query of the state routes: subgraphs, checkpoint_ns. */
struct state_query {
    bool subgraphs;
    char *ns;
};

static bool state_param(void *ctx, struct ag_verr *e, const char *name, char **value)
{
    struct state_query *sq = ctx;
    if (!strcmp(name, "subgraphs"))
        ag_query_bool(e, name, *value, &sq->subgraphs);
    else if (!strcmp(name, "checkpoint_ns"))
        take_str(e, name, value, &sq->ns);
    else
        return false;
    return true;
}

/* Checks the checkpoint object cp of a body (at p, under key "checkpoint"): its known keys are typed,
 * others are let through (LangGraph takes a dict); checkpoint_id is required when need_id. */
static void check_checkpoint(const json_t *cp, bool need_id, struct ag_vpath *p, struct ag_verr *e)
{
    const struct ag_vfield fields[] = {
        {"thread_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"checkpoint_id", AG_V_STRING, need_id ? AG_VF_REQUIRED : AG_VF_NULLABLE, 0, 0, NULL},
        {"checkpoint_ns", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
        {"checkpoint_map", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    };
    ag_vpath_push_key(p, "checkpoint");
    ag_validate_object(cp, fields, AG_ARRAY_LEN(fields), true, p, e);
    ag_vpath_pop(p);
}

/* The string member key of object o, or NULL. */
static const char *str_member(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Submits the state of thread id: the latest checkpoint of namespace ns (NULL: "") or checkpoint cid. */
static int submit_state(struct ag_req *r, const char id[37], const char *ns, const char *cid, bool subgraphs)
{
    struct sq *x = sq_new(r, AG_SQL_STATE_GET, id);
    ag_dbreq_param(&x->d, ns ? ag_dbreq_str(&x->d, ns, strlen(ns)) : "");
    if (cid) {
        x->what = "Checkpoint";
        x->what_id = ag_dbreq_str(&x->d, cid, strlen(cid));
    }
    ag_dbreq_param(&x->d, x->what_id);
    ag_dbreq_param(&x->d, subgraphs ? "true" : "false");
    return submit(x);
}

/* --- state --- */

int ag_state_get(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct state_query sq = {0};
    scan_query(r, &e, state_param, &sq);
    int rc = AG_OK;
    if (!ag_http_validation_refuse(r, &e))
        rc = submit_state(r, id, sq.ns, NULL, sq.subgraphs);
    ag_free(sq.ns);
    return rc;
}

int ag_state_get_at(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct state_query sq = {0};
    char *cid = ag_req_param_str(r, "checkpoint_id");
    if (!cid || !utf8_ok(cid)) {
        struct ag_vpath p = {.key = {"path", "checkpoint_id"}, .n = 2};
        ag_verr_add(&e, &p, "string_type", "Input should be a valid string", NULL);
    }
    scan_query(r, &e, state_param, &sq);
    int rc = AG_OK;
    if (!ag_http_validation_refuse(r, &e))
        rc = submit_state(r, id, sq.ns, cid, sq.subgraphs);
    ag_free(sq.ns);
    ag_free(cid);
    return rc;
}

static const struct ag_vfield checkpoint_fields[] = {
    {"checkpoint", AG_V_OBJECT, AG_VF_REQUIRED, 0, 0, NULL},
    {"subgraphs", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
};

/* The body of a route that may name a checkpoint in it (no query parameters): checked against the n
 * fields, and its "checkpoint" object (which must carry checkpoint_id when need_id) into *cp. Reads the
 * path's thread id into id. Returns the body (the caller decrefs it), or NULL after answering. */
static json_t *checkpoint_body(struct ag_req *r, const struct ag_vfield *fields, size_t n, bool need_id, char id[37],
                               const json_t **cp)
{
    *cp = NULL;
    if (!ag_req_uuid_param(r, "thread_id", id))
        return NULL;
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    json_t *body = ag_req_json(r, &e);
    scan_query(r, &e, no_query, NULL);
    if (body) {
        ag_validate_object(body, fields, n, false, &p, &e);
        *cp = json_object_get(body, "checkpoint");
        if (json_is_object(*cp))
            check_checkpoint(*cp, need_id, &p, &e);
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int ag_state_get_checkpoint(struct ag_req *r)
{
    char id[37];
    const json_t *cp;
    json_t *body = checkpoint_body(r, checkpoint_fields, AG_ARRAY_LEN(checkpoint_fields), true, id, &cp);
    if (!body)
        return AG_OK;
    int rc = submit_state(r, id, str_member(cp, "checkpoint_ns"), str_member(cp, "checkpoint_id"),
                          json_is_true(json_object_get(body, "subgraphs")));
    json_decref(body);
    return rc;
}

/* --- patch --- */

static const struct ag_vfield patch_fields[] = {
    {"metadata", AG_V_OBJECT, AG_VF_REQUIRED, 0, 0, NULL},
    {"checkpoint_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
};

static void on_patched(struct ag_pg_query *q, PGresult *res)
{
    struct sq *x = q->ud;
    char msg[192];
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(x->d.r, q);
    } else if (PQntuples(res) < 1 || strcmp(PQgetvalue(res, 0, 0), "t")) {
        snprintf(msg, sizeof msg, "Thread '%s' not found", x->id);
        ag_http_error(x->d.r, 404, msg);
    } else if (PQgetisnull(res, 0, 1)) {
        if (x->what_id)
            snprintf(msg, sizeof msg, "Checkpoint '%.120s' not found", x->what_id);
        else
            snprintf(msg, sizeof msg, "Thread '%s' has no checkpoint to patch", x->id);
        ag_http_error(x->d.r, 404, msg);
    } else {
        ag_http_respond(x->d.r, 204, "application/json", NULL, 0);
    }
    ag_dbreq_finish(&x->d);
}

int ag_state_patch(struct ag_req *r)
{
    char id[37];
    const json_t *cp;
    json_t *body = checkpoint_body(r, patch_fields, AG_ARRAY_LEN(patch_fields), false, id, &cp);
    if (!body)
        return AG_OK;
    const char *cid = str_member(body, "checkpoint_id"), *ns = str_member(cp, "checkpoint_ns");
    if (!cid)
        cid = str_member(cp, "checkpoint_id");
    struct sq *x = sq_new_as(r, AG_SQL_STATE_PATCH, AG_PG_WRITE, on_patched, id);
    ag_dbreq_param(&x->d, ag_dbreq_json(&x->d, json_object_get(body, "metadata")));
    ag_dbreq_param(&x->d, ns ? ag_dbreq_str(&x->d, ns, strlen(ns)) : "");
    x->what_id = cid ? ag_dbreq_str(&x->d, cid, strlen(cid)) : NULL;
    ag_dbreq_param(&x->d, x->what_id);
    json_decref(body);
    return submit(x);
}

/* --- update --- */

static const struct ag_vfield update_fields[] = {
    {"values", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},           {"as_node", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL}, {"checkpoint", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint_ns", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL}, {"subgraphs", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
};

/* True when body member key is present and not null. */
static bool has(const json_t *body, const char *key)
{
    const json_t *v = json_object_get(body, key);
    return v && !json_is_null(v);
}

int ag_state_post(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    json_t *body = ag_req_json(r, &e);
    scan_query(r, &e, no_query, NULL);
    if (body) {
        ag_validate_object(body, update_fields, AG_ARRAY_LEN(update_fields), false, &p, &e);
        ag_state_apply_check_values(json_object_get(body, "values"), &p, &e);
        const json_t *cp = json_object_get(body, "checkpoint");
        if (json_is_object(cp))
            check_checkpoint(cp, false, &p, &e);
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    int rc;
    if (has(body, "values") || has(body, "as_node") || has(body, "checkpoint_id") || has(body, "checkpoint"))
        rc = ag_state_update(r, body);
    else
        rc = submit_state(r, id, str_member(body, "checkpoint_ns"), NULL,
                          json_is_true(json_object_get(body, "subgraphs")));
    json_decref(body);
    return rc;
}

/* --- state updates --- */

/* An update through its two statements (the read, then the write). */
struct upd {
    struct ag_dbreq d;
    char id[37];     /* the thread */
    json_t *values;  /* owned: the update (arrays merged into one object), or NULL */
    char *as_node;   /* owned, or NULL */
    const char *cid; /* the checkpoint to update from (a parameter string of d), or NULL: the latest */
    char new_id[37]; /* the write: the id of the checkpoint written */
};

static void upd_free(struct upd *u)
{
    json_decref(u->values);
    ag_free(u->as_node);
    ag_dbreq_free(&u->d);
}

/* Column c of row 0 as JSON (a new reference), or NULL when it is NULL. */
static json_t *col_json(PGresult *res, int c)
{
    if (PQgetisnull(res, 0, c))
        return NULL;
    return json_loadb(PQgetvalue(res, 0, c), (size_t)PQgetlength(res, 0, c), JSON_DECODE_ANY, NULL);
}

static void busy(struct ag_req *r)
{
    ag_http_error(r, 409, "Thread is busy: a run is active or queued");
}

/* The write went through: answer the new checkpoint as LangGraph does. */
static void on_update_written(struct ag_pg_query *q, PGresult *res)
{
    struct upd *u = q->ud;
    struct ag_req *r = u->d.r;
    char msg[192];
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
    } else if (PQntuples(res) < 1 || strcmp(PQgetvalue(res, 0, 0), "t")) {
        if (PQntuples(res) > 0 && !strcmp(PQgetvalue(res, 0, 1), "t")) {
            busy(r);
        } else {
            snprintf(msg, sizeof msg, "Thread '%s' not found", u->id);
            ag_http_error(r, 404, msg);
        }
    } else {
        ag_run_thread_state_changed(r->shard, u->id);
        char body[256];
        int n = snprintf(body, sizeof body,
                         "{\"checkpoint\":{\"thread_id\":\"%s\",\"checkpoint_ns\":\"\",\"checkpoint_id\":\"%s\","
                         "\"checkpoint_map\":null}}",
                         u->id, u->new_id);
        ag_http_json(r, 200, body, (size_t)n);
    }
    ag_http_done(r);
    upd_free(u);
}

/* Submits the write of checkpoint ck (stolen), made from base (borrowed, as read: stamped with its
 * channel versions; NULL: none), for the update u read. Answers r itself on failure. */
static void submit_update_write(struct upd *u, const json_t *base, json_t *ck)
{
    struct ag_req *r = u->d.r;
    struct upd *w = ag_dbreq_new(sizeof(struct upd), r, AG_SQL_STATE_UPDATE_WRITE, AG_PG_WRITE, on_update_written);
    memcpy(w->id, u->id, sizeof w->id);
    snprintf(w->new_id, sizeof w->new_id, "%s", json_string_value(json_object_get(ck, "checkpoint_id")));
    const char *status;
    json_t *ints = ag_state_apply_interrupts(ck, &status);
    ag_dbreq_param(&w->d, w->id);
    ag_dbreq_param(&w->d, ag_req_owner(w->d.r));
    json_t *stored = json_pack("[o]", ag_cpstore_stamp(base, ck));
    ag_dbreq_param(&w->d, ag_cpstore_param(&w->d.strs, stored));
    ag_dbreq_param(&w->d, ag_dbreq_json(&w->d, ints));
    json_decref(stored);
    ag_dbreq_param(&w->d, status);
    json_decref(ints);
    json_decref(ck);
    /* A run created while the write is in flight must read the thread's checkpoint from Postgres. */
    ag_run_thread_state_changed(r->shard, u->id);
    if (ag_dbq_submit(r, &w->d.q) != AG_AGAIN) {
        ag_http_done(r);
        upd_free(w);
    }
}

/* The read: the thread, its graph, the checkpoint to update and its parent. Computes the new checkpoint
 * and writes it, or answers why not. */
static void on_update_read(struct ag_pg_query *q, PGresult *res)
{
    struct upd *u = q->ud;
    struct ag_req *r = u->d.r;
    char msg[300];
    json_t *cp = NULL, *prev = NULL, *config = NULL, *meta = NULL;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(r, q);
        goto answered;
    }
    if (PQntuples(res) < 1) {
        snprintf(msg, sizeof msg, "Thread '%s' not found", u->id);
        ag_http_error(r, 404, msg);
        goto answered;
    }
    if (PQgetisnull(res, 0, 0)) {
        snprintf(msg, sizeof msg, "Thread %s has no graph ID", u->id);
        ag_http_error(r, 400, msg);
        goto answered;
    }
    const char *graph_id = PQgetvalue(res, 0, 0);
    if (!strcmp(PQgetvalue(res, 0, 1), "busy") || ag_run_thread_busy(r->shard, u->id)) {
        busy(r);
        goto answered;
    }
    if (u->cid && PQgetisnull(res, 0, 3)) {
        snprintf(msg, sizeof msg, "Checkpoint '%.120s' not found", u->cid);
        ag_http_error(r, 404, msg);
        goto answered;
    }
    const struct ag_graph_def *def = ag_graph_def_find(graph_id);
    if (!def) {
        snprintf(msg, sizeof msg, "Thread %s has graph ID '%.100s', which is not a registered graph", u->id, graph_id);
        ag_http_error(r, 400, msg);
        goto answered;
    }
    config = col_json(res, 2);
    cp = col_json(res, 3);
    prev = col_json(res, 4);
    meta = col_json(res, 5);
    char err[256] = "";
    json_t *ck = ag_graph_state_update(def, cp, prev, u->values, u->as_node, config, meta, err, sizeof err);
    json_decref(config);
    json_decref(prev);
    json_decref(meta);
    if (!ck) {
        ag_http_error(r, 400, err[0] ? err : "invalid update");
        goto answered;
    }
    submit_update_write(u, cp, ck);
    json_decref(cp);
    upd_free(u);
    return;
answered:
    json_decref(cp);
    ag_http_done(r);
    upd_free(u);
}

/* Only the root namespace can be updated: a 422 at p[key] for any other. */
static void check_root_ns(const json_t *o, struct ag_vpath *p, struct ag_verr *e)
{
    const char *ns = str_member(o, "checkpoint_ns");
    if (!ns || !ns[0])
        return;
    ag_vpath_push_key(p, "checkpoint_ns");
    ag_verr_add(e, p, "value_error", "Value error, only the root namespace (\"\") of a thread can be updated",
                json_object_get(o, "checkpoint_ns"));
    ag_vpath_pop(p);
}

int ag_state_update(struct ag_req *r, json_t *body)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    const json_t *cp = json_object_get(body, "checkpoint");
    check_root_ns(body, &p, &e);
    if (json_is_object(cp)) {
        ag_vpath_push_key(&p, "checkpoint");
        check_root_ns(cp, &p, &e);
        ag_vpath_pop(&p);
    }
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    if (ag_run_thread_busy(r->shard, id)) {
        busy(r);
        return AG_OK;
    }
    const char *cid = str_member(body, "checkpoint_id");
    if (!cid)
        cid = str_member(cp, "checkpoint_id");
    const char *as_node = str_member(body, "as_node");
    struct upd *u = ag_dbreq_new(sizeof(struct upd), r, AG_SQL_STATE_UPDATE_READ, AG_PG_READ, on_update_read);
    memcpy(u->id, id, sizeof u->id);
    u->values = ag_state_apply_values(json_object_get(body, "values"));
    u->as_node = as_node ? ag_strdup(as_node) : NULL;
    u->cid = cid ? ag_dbreq_str(&u->d, cid, strlen(cid)) : NULL;
    ag_dbreq_param(&u->d, u->id);
    ag_dbreq_param(&u->d, ag_req_owner(u->d.r));
    ag_dbreq_param(&u->d, u->cid);
    if (ag_dbq_submit(r, &u->d.q) != AG_AGAIN) {
        upd_free(u);
        return AG_OK;
    }
    return AG_AGAIN;
}

/* --- history --- */

/* A history request once parsed; strings are owned (ag_free) or point into body. */
struct history {
    int64_t limit;
    bool subgraphs;
    char *ns_q, *before_q; /* from the query string */
    json_t *meta;          /* owned */
    const char *ns, *before, *cid;
};

static bool history_param(void *ctx, struct ag_verr *e, const char *name, char **value)
{
    struct history *h = ctx;
    if (!strcmp(name, "limit")) {
        ag_query_int(e, name, *value, 1, HISTORY_LIMIT_MAX, &h->limit);
    } else if (!strcmp(name, "subgraphs")) {
        ag_query_bool(e, name, *value, &h->subgraphs);
    } else if (!strcmp(name, "checkpoint_ns")) {
        take_str(e, name, value, &h->ns_q);
    } else if (!strcmp(name, "before")) {
        take_str(e, name, value, &h->before_q);
    } else if (!strcmp(name, "metadata")) {
        json_error_t je;
        json_t *m = json_loads(*value, JSON_DECODE_ANY, &je);
        if (!m) {
            char msg[200];
            snprintf(msg, sizeof msg, "Invalid JSON: %s", je.text);
            ag_query_error(e, name, "json_invalid", msg, *value);
        } else if (!json_is_object(m)) {
            ag_query_error(e, name, "dict_type", "Input should be a JSON-encoded object", *value);
            json_decref(m);
        } else {
            json_decref(h->meta);
            h->meta = m;
        }
    } else {
        return false;
    }
    return true;
}

static int submit_history(struct ag_req *r, const char id[37], const struct history *h)
{
    struct sq *x = sq_new(r, AG_SQL_STATE_HISTORY, id);
    ag_dbreq_param(&x->d, h->ns ? ag_dbreq_str(&x->d, h->ns, strlen(h->ns)) : "");
    ag_dbreq_param(&x->d, h->before ? ag_dbreq_str(&x->d, h->before, strlen(h->before)) : NULL);
    ag_dbreq_param(&x->d, h->meta ? ag_dbreq_json(&x->d, h->meta) : NULL);
    ag_dbreq_param(&x->d, ag_pg_args_printf(&x->d.strs, "%" PRId64, h->limit));
    ag_dbreq_param(&x->d, h->cid ? ag_dbreq_str(&x->d, h->cid, strlen(h->cid)) : NULL);
    ag_dbreq_param(&x->d, h->subgraphs ? "true" : "false");
    return submit(x);
}

int ag_state_history_get(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct history h = {.limit = HISTORY_LIMIT_DEFAULT};
    scan_query(r, &e, history_param, &h);
    int rc = AG_OK;
    if (!ag_http_validation_refuse(r, &e)) {
        h.ns = h.ns_q;
        h.before = h.before_q;
        rc = submit_history(r, id, &h);
    }
    ag_free(h.ns_q);
    ag_free(h.before_q);
    json_decref(h.meta);
    return rc;
}

static const struct ag_vfield history_fields[] = {
    {"limit", AG_V_INT, AG_VF_NULLABLE, 1, HISTORY_LIMIT_MAX, NULL},
    {"before", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint_ns", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"subgraphs", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
};

/* The checkpoint id of a history body's before: a string, {"checkpoint_id"} or {"configurable":
 * {"checkpoint_id"}} (a RunnableConfig); NULL when absent or null. A problem at p.before otherwise. */
static const char *before_id(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    const char *s = NULL;
    if (json_is_object(v)) {
        s = str_member(v, "checkpoint_id");
        if (!s)
            s = str_member(json_object_get(v, "configurable"), "checkpoint_id");
    }
    if (!s) {
        ag_vpath_push_key(p, "before");
        ag_verr_add(e, p, "value_error",
                    "Value error, before is a checkpoint id, {\"checkpoint_id\": id} or {\"configurable\": "
                    "{\"checkpoint_id\": id}}",
                    v);
        ag_vpath_pop(p);
    }
    return s;
}

int ag_state_history_post(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    struct history h = {.limit = HISTORY_LIMIT_DEFAULT};
    json_t *body = ag_req_json(r, &e);
    scan_query(r, &e, no_query, NULL);
    if (body) {
        ag_validate_object(body, history_fields, AG_ARRAY_LEN(history_fields), false, &p, &e);
        const json_t *cp = json_object_get(body, "checkpoint");
        if (json_is_object(cp)) {
            check_checkpoint(cp, false, &p, &e);
            h.ns = str_member(cp, "checkpoint_ns");
            h.cid = str_member(cp, "checkpoint_id");
        }
        if (!h.ns)
            h.ns = str_member(body, "checkpoint_ns");
        h.before = before_id(json_object_get(body, "before"), &p, &e);
        const json_t *v = json_object_get(body, "limit");
        if (json_is_integer(v))
            h.limit = json_integer_value(v);
        h.subgraphs = json_is_true(json_object_get(body, "subgraphs"));
        v = json_object_get(body, "metadata");
        if (json_is_object(v))
            h.meta = json_incref((json_t *)v);
    }
    int rc = AG_OK;
    if (!ag_http_validation_refuse(r, &e))
        rc = submit_history(r, id, &h);
    json_decref(h.meta);
    json_decref(body);
    return rc;
}

/* --- runs --- */

static const char *const run_statuses[] = {"pending", "running", "error", "success", "timeout", "interrupted", NULL};
/* LangGraph's RunSelectField. */
static const char *const run_fields[] = {"run_id", "thread_id", "assistant_id",       "created_at", "updated_at",
                                         "status", "metadata",  "multitask_strategy", "kwargs",     "cancel_reason",
                                         NULL};

static bool is_choice(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i]; i++)
        if (!strcmp(choices[i], s))
            return true;
    return false;
}

struct runs_query {
    int64_t limit, offset;
    char *status;
    struct ag_buf select; /* "{f,f" (a text[] literal once closed), empty: no select */
};

static bool runs_param(void *ctx, struct ag_verr *e, const char *name, char **value)
{
    struct runs_query *rq = ctx;
    if (!strcmp(name, "limit")) {
        ag_query_int(e, name, *value, 1, INT64_MAX, &rq->limit);
    } else if (!strcmp(name, "offset")) {
        ag_query_int(e, name, *value, 0, INT64_MAX, &rq->offset);
    } else if (!strcmp(name, "status")) {
        if (is_choice(run_statuses, *value)) {
            ag_free(rq->status);
            rq->status = *value;
            *value = NULL;
        } else {
            ag_query_error(e, name, "literal_error",
                           "Input should be 'pending', 'running', 'error', 'success', 'timeout' or 'interrupted'",
                           *value);
        }
    } else if (!strcmp(name, "select")) {
        struct ag_query_list l;
        if (!ag_query_list_init(&l, *value))
            ag_query_error(e, name, "list_type", "Input should be a valid list of field names", *value);
        for (const char *f; (f = ag_query_list_next(&l));) {
            if (!is_choice(run_fields, f)) {
                ag_query_error(e, name, "literal_error",
                               "Input should be 'run_id', 'thread_id', 'assistant_id', 'created_at', 'updated_at', "
                               "'status', 'metadata', 'multitask_strategy', 'kwargs' or 'cancel_reason'",
                               f);
                continue;
            }
            ag_buf_puts(&rq->select, rq->select.len ? "," : "{");
            ag_buf_puts(&rq->select, f); /* a known field name: no quoting needed */
        }
        ag_query_list_free(&l);
    } else {
        return false;
    }
    return true;
}

int ag_state_runs_list(struct ag_req *r)
{
    char id[37];
    if (!ag_req_uuid_param(r, "thread_id", id))
        return AG_OK;
    struct ag_verr e = {0};
    struct runs_query rq = {.limit = RUNS_LIMIT_DEFAULT};
    scan_query(r, &e, runs_param, &rq);
    int rc = AG_OK;
    if (!ag_http_validation_refuse(r, &e)) {
        struct sq *x = sq_new(r, AG_SQL_STATE_RUNS_LIST, id);
        ag_dbreq_param(&x->d, ag_pg_args_printf(&x->d.strs, "%" PRId64, rq.limit));
        ag_dbreq_param(&x->d, ag_pg_args_printf(&x->d.strs, "%" PRId64, rq.offset));
        ag_dbreq_param(&x->d, rq.status ? ag_dbreq_str(&x->d, rq.status, strlen(rq.status)) : NULL);
        if (rq.select.len) {
            ag_buf_puts(&rq.select, "}");
            ag_dbreq_param(&x->d, ag_dbreq_str(&x->d, rq.select.base, rq.select.len));
        } else {
            ag_dbreq_param(&x->d, NULL);
        }
        rc = submit(x);
    }
    ag_free(rq.status);
    ag_buf_free(&rq.select);
    return rc;
}

int ag_state_run_get(struct ag_req *r)
{
    char id[37], run_id[37];
    if (!ag_req_uuid_param(r, "thread_id", id) || !ag_req_uuid_param(r, "run_id", run_id))
        return AG_OK;
    struct ag_verr e = {0};
    scan_query(r, &e, no_query, NULL);
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    struct sq *x = sq_new(r, AG_SQL_STATE_RUN_GET, id);
    x->what = "Run";
    x->what_id = ag_dbreq_str(&x->d, run_id, 36);
    ag_dbreq_param(&x->d, x->what_id);
    return submit(x);
}
