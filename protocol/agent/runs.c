#include "protocol/agent/runs.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/shard.h"
#include "core/uuid.h"
#include "graph/registry.h"
#include "protocol/agent/run_sinks.h"
#include "protocol/dbq.h"
#include "protocol/identity.h"
#include "runtime/run.h"
#include "protocol/http.h"
#include "runtime/owner.h"
#include "protocol/query.h"
#include "protocol/urlenc.h"
#include "protocol/validate.h"
#include "runtime/run_spec.h"

/* --- the RunCreate body --- */

static const char *const mt_choices[] = {"reject", "enqueue", "interrupt", "rollback", NULL};
static const char *const on_disconnect_choices[] = {"cancel", "continue", NULL};
static const char *const on_completion_choices[] = {"delete", "keep", NULL};
static const char *const if_not_exists_choices[] = {"create", "reject", NULL};
static const char *const durability_choices[] = {"async", "exit", "sync", NULL};

static const struct ag_vfield run_fields[] = {
    {"assistant_id", AG_V_STRING, AG_VF_REQUIRED, 0, 0, NULL},
    {"input", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"command", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"config", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"context", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"metadata", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"stream_mode", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"stream_subgraphs", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"stream_resumable", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"feedback_keys", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
    {"interrupt_before", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"interrupt_after", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"checkpoint_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"webhook", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"strict_resume", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"multitask_strategy", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, mt_choices},
    {"on_completion", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, on_completion_choices},
    {"on_disconnect", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, on_disconnect_choices},
    {"after_seconds", AG_V_NUMBER, AG_VF_NULLABLE, 0, 0, NULL},
    {"if_not_exists", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, if_not_exists_choices},
    {"checkpoint_during", AG_V_BOOL, AG_VF_NULLABLE, 0, 0, NULL},
    {"durability", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, durability_choices},
    {"langsmith_tracer", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
};

/* config.configurable as the graph can run it (the stress graph's tokens bound, say). */
static void check_configurable(const char *assistant_id, const json_t *config, struct ag_vpath *p, struct ag_verr *e)
{
    const char *key;
    char msg[200];
    if (ag_run_spec_check_config(assistant_id, config, &key, msg, sizeof msg))
        return;
    const json_t *c = json_object_get(config, "configurable");
    ag_vpath_push_key(p, "config");
    ag_vpath_push_key(p, "configurable");
    ag_vpath_push_key(p, key);
    ag_verr_add(e, p, "value_error", msg, json_object_get(c, key));
    ag_vpath_pop(p);
    ag_vpath_pop(p);
    ag_vpath_pop(p);
}

static void check_node_list(const json_t *v, const char *key, struct ag_vpath *p, struct ag_verr *e)
{
    if (!v || (json_is_string(v) && !strcmp(json_string_value(v), "*")))
        return;
    bool ok = json_is_array(v);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) ok = ok && json_is_string(x);
    if (!ok) ag_verr_add_key(e, p, key, "value_error", "Value error, expected \"*\" or a list of node names", v);
}

static void check_stream_mode(const json_t *v, struct ag_vpath *p, struct ag_verr *e)
{
    if (!v)
        return;
    bool ok = json_is_string(v) || (json_is_array(v) && json_array_size(v) > 0);
    const json_t *one = json_is_string(v) ? v : NULL;
    size_t n = one ? 1 : json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = one ? one : json_array_get(v, i);
        if (json_is_string(x) && ag_run_spec_mode(json_string_value(x)))
            continue;
        ag_vpath_push_key(p, "stream_mode");
        if (json_is_array(v))
            ag_vpath_push_index(p, (int64_t)i);
        ag_verr_add(e, p, "literal_error",
                    "Input should be 'values', 'updates', 'messages', 'messages-tuple', 'custom', 'events', "
                    "'debug', 'tasks', 'checkpoints', 'tools' or 'lifecycle'",
                    x);
        if (json_is_array(v))
            ag_vpath_pop(p);
        ag_vpath_pop(p);
        ok = true; /* reported */
    }
    if (!ok)
        ag_verr_add_key(e, p, "stream_mode", "value_error",
                        "Value error, expected a stream mode or a non-empty list of them", v);
}

unsigned ag_runs_check_create(const json_t *body, bool stateless, struct ag_verr *e, const struct ag_vpath *base)
{
    unsigned before = e->count;
    struct ag_vpath p = *base;
    if (ag_validate_object(body, run_fields, AG_ARRAY_LEN(run_fields), false, &p, e))
        return e->count - before;
    const char *resolved = ag_graph_resolve_assistant(json_string_value(json_object_get(body, "assistant_id")));
    if (strlen(resolved) >= sizeof ((struct ag_run_spec *)0)->assistant_id) {
        ag_verr_add_key(e, &p, "assistant_id", "value_error", "Value error, assistant_id is too long",
                        json_object_get(body, "assistant_id"));
        resolved = "";
    }
    json_t *v;
    if ((v = ag_v_present(body, "command"))) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (strcmp(k, "resume") && strcmp(k, "update") && strcmp(k, "goto")) {
                ag_vpath_push_key(&p, "command");
                ag_vpath_push_key(&p, k);
                ag_verr_unknown(&p);
                ag_vpath_pop(&p);
                ag_vpath_pop(&p);
            }
        }
    }
    if ((v = ag_v_present(body, "config"))) {
        json_t *c = json_object_get(v, "configurable");
        if (c && !json_is_object(c) && !json_is_null(c)) {
            ag_vpath_push_key(&p, "config");
            ag_verr_add_key(e, &p, "configurable", "value_error", "Value error, configurable must be an object", c);
            ag_vpath_pop(&p);
        }
    }
    check_configurable(resolved, ag_v_present(body, "config"), &p, e);
    check_stream_mode(ag_v_present(body, "stream_mode"), &p, e);
    if ((v = ag_v_present(body, "feedback_keys")) && json_array_size(v))
        ag_verr_add_key(e, &p, "feedback_keys", "value_error",
                        "Value error, feedback keys need LangSmith, which this server does not use", v);
    check_node_list(ag_v_present(body, "interrupt_before"), "interrupt_before", &p, e);
    check_node_list(ag_v_present(body, "interrupt_after"), "interrupt_after", &p, e);
    const char *cpid = json_string_value(ag_v_present(body, "checkpoint_id"));
    if ((v = ag_v_present(body, "checkpoint"))) {
        json_t *id = json_object_get(v, "checkpoint_id");
        if (json_is_string(id))
            cpid = json_string_value(id);
        json_t *ns = json_object_get(v, "checkpoint_ns");
        if (ns && !json_is_null(ns) && !(json_is_string(ns) && !json_string_length(ns))) {
            ag_vpath_push_key(&p, "checkpoint");
            ag_verr_add_key(e, &p, "checkpoint_ns", "value_error",
                            "Value error, runs start from root checkpoints only (checkpoint_ns \"\")", ns);
            ag_vpath_pop(&p);
        }
    }
    if (cpid && strlen(cpid) >= sizeof ((struct ag_run_spec *)0)->checkpoint_id)
        ag_verr_add_key(e, &p, "checkpoint_id", "value_error", "Value error, checkpoint_id is too long",
                        ag_v_present(body, "checkpoint_id"));
    if ((v = ag_v_present(body, "webhook")))
        ag_verr_add_key(e, &p, "webhook", "value_error", "Value error, webhooks are not supported by this server yet",
                        v);
    if ((v = ag_v_present(body, "langsmith_tracer")))
        ag_verr_add_key(e, &p, "langsmith_tracer", "value_error",
                        "Value error, this server does not trace to LangSmith", v);
    if (ag_v_present(body, "on_completion") && !stateless)
        ag_verr_add_key(e, &p, "on_completion", "value_error",
                        "Value error, on_completion applies to stateless runs (POST /runs) only",
                        ag_v_present(body, "on_completion"));
    if (ag_v_present(body, "if_not_exists") && stateless)
        ag_verr_add_key(e, &p, "if_not_exists", "value_error",
                        "Value error, if_not_exists applies to runs on a thread only",
                        ag_v_present(body, "if_not_exists"));
    if ((v = ag_v_present(body, "after_seconds"))) {
        double s = json_number_value(v);
        if (s < 0 || s > 86400 * 365)
            ag_verr_add_key(e, &p, "after_seconds", "value_error",
                            "Value error, after_seconds must be between 0 and one year", v);
    }
    return e->count - before;
}

void ag_runs_parse_create(const json_t *body, bool stateless, struct ag_run_spec *sp, struct ag_verr *e,
                          const struct ag_vpath *base)
{
    if (ag_runs_check_create(body, stateless, e, base))
        return;
    char err[200], msg[300];
    if (ag_run_spec_from_payload(body, stateless, sp, err, sizeof err))
        return;
    /* Validation and mapping disagree (a bug): the client gets a 422 rather than a wrong run. */
    snprintf(msg, sizeof msg, "Value error, %s", err);
    ag_verr_add(e, base, "value_error", msg, body);
}

static void parse_run_create(json_t *body, bool stateless, struct ag_run_spec *sp, struct ag_verr *e)
{
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    ag_runs_parse_create(body, stateless, sp, e, &p);
}

static int create(struct ag_req *r, bool stateless, enum ag_run_reply how)
{
    struct ag_run_spec sp = {0};
    if (stateless) {
        ag_owner_mint_thread_id(r->shard, sp.thread_id);
    } else if (!ag_req_uuid_param(r, "thread_id", sp.thread_id)) {
        return AG_OK;
    }
    struct ag_verr e = {0};
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    if (body)
        parse_run_create(body, stateless, &sp, &e);
    json_decref(body);
    if (ag_http_validation_refuse(r, &e)) {
        ag_run_spec_clear(&sp);
        return AG_OK;
    }
    return ag_run_sinks_create(r, &sp, how);
}

int ag_runs_create(struct ag_req *r)
{
    return create(r, false, AG_RUN_REPLY_RUN);
}
int ag_runs_wait(struct ag_req *r)
{
    return create(r, false, AG_RUN_REPLY_WAIT);
}
int ag_runs_stream(struct ag_req *r)
{
    return create(r, false, AG_RUN_REPLY_STREAM);
}
int ag_runs_stateless_create(struct ag_req *r)
{
    return create(r, true, AG_RUN_REPLY_RUN);
}
int ag_runs_stateless_wait(struct ag_req *r)
{
    return create(r, true, AG_RUN_REPLY_WAIT);
}
int ag_runs_stateless_stream(struct ag_req *r)
{
    return create(r, true, AG_RUN_REPLY_STREAM);
}

/* --- POST /runs/batch --- */

#define BATCH_MAX 100

struct batch {
    struct ag_req *r;
    size_t pending; /* runs not yet created, plus one for the handler (released from a task) */
    int status;     /* 200, or the first failure's */
    char *fail;     /* that failure's body */
    json_t *runs;
    struct ag_task task;
};

static void batch_release(struct batch *b)
{
    if (--b->pending)
        return;
    struct ag_req *r = b->r;
    if (b->status == 200) {
        char *s = json_dumps(b->runs, JSON_COMPACT);
        ag_http_json(r, 200, s, strlen(s));
        ag_free(s);
    } else {
        ag_http_json(r, b->status, b->fail, strlen(b->fail));
    }
    json_decref(b->runs);
    ag_free(b->fail);
    ag_free(b);
    ag_http_done(r);
}

static void on_batch_run(void *ud, int status, const char *body, size_t len)
{
    struct batch *b = ud;
    if (status == 200) {
        json_t *run = json_loadb(body, len, 0, NULL);
        if (run)
            json_array_append_new(b->runs, run);
    } else if (b->status == 200) {
        b->status = status;
        b->fail = ag_strndup(body, len);
    }
    batch_release(b);
}

/* The handler's own reference goes from the loop, so the answer never comes inside the handler. */
static void batch_task(struct ag_task *t)
{
    batch_release(AG_CONTAINER_OF(t, struct batch, task));
}

/* Background stateless runs, each on its own new thread; answers the list of Runs once every one
 * was created (or the first failure). */
int ag_runs_stateless_batch(struct ag_req *r)
{
    struct ag_verr e = {0};
    json_t *body = ag_req_json(r, &e);
    ag_query_ignore_all(&r->query);
    size_t n = json_array_size(body);
    if (body && (!json_is_array(body) || n == 0 || n > BATCH_MAX)) {
        struct ag_vpath p = {.key = {"body"}, .n = 1};
        ag_verr_add(&e, &p, json_is_array(body) ? "too_long" : "list_type",
                    json_is_array(body) ? "List should have between 1 and 100 runs" : "Input should be a valid list", body);
    }
    struct ag_run_spec *specs = ag_calloc(n ? n : 1, sizeof *specs);
    if (!e.count) {
        for (size_t i = 0; i < n; i++) {
            struct ag_vpath p = {.key = {"body"}, .n = 1};
            ag_vpath_push_index(&p, (int64_t)i);
            ag_owner_mint_thread_id(r->shard, specs[i].thread_id);
            ag_runs_parse_create(json_array_get(body, i), true, &specs[i], &e, &p);
        }
    }
    json_decref(body);
    if (ag_http_validation_refuse(r, &e)) {
        for (size_t i = 0; i < n; i++)
            ag_run_spec_clear(&specs[i]);
        ag_free(specs);
        return AG_OK;
    }
    struct batch *b = ag_calloc(1, sizeof *b);
    b->r = r;
    b->pending = n + 1;
    b->status = 200;
    b->runs = json_array();
    for (size_t i = 0; i < n; i++)
    {
        snprintf(specs[i].owner, sizeof specs[i].owner, "%s", ag_req_owner(r));
        ag_run_sinks_create_cb(&specs[i], on_batch_run, b);
    }
    ag_free(specs);
    b->task.fn = batch_task;
    ag_shard_defer(r->shard, &b->task);
    return AG_AGAIN;
}

/* --- one run --- */

struct qflag {
    const char *name;
    bool *out;
};

/* A query parameter with a fixed set of values; *out stays as it is when the parameter is absent. */
struct qenum {
    const char *name;
    const char *const *choices;
    const char *msg; /* the literal_error message */
    const char **out;
};

/* Reads the boolean query flags named in flags and the enums (unknown parameters are ignored); answers
 * and returns false on a problem. */
static bool run_query(struct ag_req *r, const struct qflag *flags, size_t nflags, const struct qenum *enums,
                      size_t nenums)
{
    struct ag_verr e = {0};
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name), *v = ag_query_str(value);
        bool known = false;
        for (size_t i = 0; n && v && i < nflags; i++)
            if (!strcmp(n, flags[i].name)) {
                known = true;
                ag_query_bool(&e, n, v, flags[i].out);
            }
        for (size_t i = 0; n && v && i < nenums; i++) {
            if (strcmp(n, enums[i].name))
                continue;
            known = true;
            const char *hit = NULL;
            for (size_t j = 0; enums[i].choices[j]; j++)
                if (!strcmp(v, enums[i].choices[j]))
                    hit = enums[i].choices[j];
            if (!hit)
                ag_query_error(&e, n, "literal_error", enums[i].msg, v);
            *enums[i].out = hit;
        }
        if (!known)
            ag_query_unknown(n);
        ag_free(n);
        ag_free(v);
    }
    return !ag_http_validation_refuse(r, &e);
}

/* The {thread_id} and {run_id} path parameters, then run_query. */
static bool run_path(struct ag_req *r, char tid[37], char rid[37], const struct qflag *flags, size_t nflags,
                     const struct qenum *enums, size_t nenums)
{
    return ag_req_uuid_param(r, "thread_id", tid) && ag_req_uuid_param(r, "run_id", rid) &&
           run_query(r, flags, nflags, enums, nenums);
}

/* Last-Event-ID of r into last (NULL when absent or too long to be one of ours). */
static const char *last_event_id(struct ag_req *r, char *last, size_t n)
{
    struct ag_iov h = ag_req_header(r, "last-event-id");
    if (!h.len || h.len >= n)
        return NULL;
    memcpy(last, h.base, h.len);
    last[h.len] = 0;
    return last;
}

int ag_runs_join(struct ag_req *r)
{
    char tid[37], rid[37];
    bool cancel = false;
    const struct qflag f[] = {{"cancel_on_disconnect", &cancel}};
    if (!run_path(r, tid, rid, f, 1, NULL, 0))
        return AG_OK;
    return ag_run_sinks_join(r, tid, rid, cancel);
}

int ag_runs_attach(struct ag_req *r)
{
    char tid[37], rid[37];
    bool cancel = false;
    const struct qflag f[] = {{"cancel_on_disconnect", &cancel}};
    /* _stream_mode / stream_mode narrow nothing here: the run's modes were fixed at its start. */
    if (!run_path(r, tid, rid, f, 1, NULL, 0))
        return AG_OK;
    char last[80];
    return ag_run_sinks_attach(r, tid, rid, last_event_id(r, last, sizeof last), cancel);
}

/* GET /runs/{run_id}/stream: the run's thread from Postgres, then as the thread's route. */
struct by_run {
    struct ag_dbreq d;
    char rid[37];
    bool cancel;
};

static void on_run_thread(struct ag_pg_query *q, PGresult *res)
{
    struct by_run *b = q->ud;
    struct ag_req *r = b->d.r;
    if (q->status != AG_PG_OK || PQntuples(res) != 1 || r->gone) {
        if (q->status != AG_PG_OK)
            ag_dbq_fail(r, q);
        else
            ag_http_error(r, 404, "Run not found"); /* (or the client left: nobody reads it) */
        ag_dbreq_finish(&b->d);
        return;
    }
    char tid[37];
    snprintf(tid, sizeof tid, "%s", PQgetvalue(res, 0, 0));
    char rid[37];
    memcpy(rid, b->rid, sizeof rid);
    bool cancel = b->cancel;
    ag_dbreq_free(&b->d);
    int owner = ag_owner_shard(tid, strlen(tid), r->shard->rt->nshards);
    if (owner != r->shard->id) {
        ag_http_forward(r, owner); /* asked again there, where the run lives */
        return;
    }
    char last[80];
    if (ag_run_sinks_attach(r, tid, rid, last_event_id(r, last, sizeof last), cancel) == AG_OK)
        ag_http_done(r);
}

int ag_runs_attach_by_id(struct ag_req *r)
{
    char rid[37];
    bool cancel = false;
    const struct qflag f[] = {{"cancel_on_disconnect", &cancel}};
    if (!ag_req_uuid_param(r, "run_id", rid) || !run_query(r, f, 1, NULL, 0))
        return AG_OK;
    struct by_run *b = ag_dbreq_new(sizeof *b, r, AG_SQL_RUN_THREAD, AG_PG_READ, on_run_thread);
    memcpy(b->rid, rid, sizeof rid);
    b->cancel = cancel;
    ag_dbreq_param(&b->d, b->rid);
    ag_dbreq_param(&b->d, ag_dbreq_str(&b->d, ag_req_owner(r), strlen(ag_req_owner(r))));
    return ag_dbreq_submit(&b->d);
}

static const char *const action_choices[] = {"interrupt", "rollback", NULL};
static const char *const reason_choices[] = {"taken", NULL};

int ag_runs_cancel(struct ag_req *r)
{
    char tid[37], rid[37];
    bool wait = false;
    const char *action = "interrupt", *reason = NULL;
    const struct qflag f[] = {{"wait", &wait}};
    const struct qenum en[] = {
        {"action", action_choices, "Input should be 'interrupt' or 'rollback'", &action},
        {"reason", reason_choices, "Input should be 'taken'", &reason},
    };
    if (!run_path(r, tid, rid, f, 1, en, AG_ARRAY_LEN(en)))
        return AG_OK;
    bool rollback = action && !strcmp(action, "rollback");
    if (reason && rollback) {
        struct ag_verr e = {0};
        ag_query_error(&e, "reason", "value_error", "Value error, reason applies to action 'interrupt' only",
                       reason);
        ag_http_validation_refuse(r, &e);
        return AG_OK;
    }
    /* taken: the run's input was absorbed for steering; the reason names who took it. */
    char why[sizeof AG_RUN_CANCEL_REASON_TAKEN + AG_IDENTITY_OWNER_MAX];
    snprintf(why, sizeof why, "%s%s", reason ? AG_RUN_CANCEL_REASON_TAKEN : AG_RUN_CANCEL_REASON_USER,
             reason ? ag_req_owner(r) : "");
    return ag_run_sinks_cancel(r, tid, rid, rollback, wait, why);
}

static const char *const cancel_status_choices[] = {"pending", "running", "all", NULL};

static const struct ag_vfield cancel_many_fields[] = {
    {"thread_id", AG_V_STRING, AG_VF_NULLABLE, 0, 0, NULL},
    {"run_ids", AG_V_STRING_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
    {"status", AG_V_ENUM, AG_VF_NULLABLE, 0, 0, cancel_status_choices},
};

int ag_runs_cancel_many(struct ag_req *r)
{
    struct ag_verr e = {0};
    struct ag_vpath p = {.key = {"body"}, .n = 1};
    json_t *body = ag_req_json(r, &e);
    const char *action = "interrupt";
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name), *v = ag_query_str(value);
        if (n && !strcmp(n, "action")) {
            if (v && !strcmp(v, "rollback"))
                action = "rollback";
            else if (!v || strcmp(v, "interrupt"))
                ag_query_error(&e, n, "literal_error", "Input should be 'interrupt' or 'rollback'", v);
        } else {
            ag_query_unknown(n);
        }
        ag_free(n);
        ag_free(v);
    }
    char tid[37] = "";
    const json_t *ids = NULL, *status = NULL;
    if (body && !ag_validate_object(body, cancel_many_fields, AG_ARRAY_LEN(cancel_many_fields), false, &p, &e)) {
        const json_t *t = json_object_get(body, "thread_id");
        ids = json_object_get(body, "run_ids");
        status = json_object_get(body, "status");
        ids = json_is_array(ids) ? ids : NULL;
        status = json_is_string(status) ? status : NULL;
        ag_vpath_push_key(&p, "thread_id");
        if (json_is_string(t) && !ag_uuid_canon(json_string_value(t), json_string_length(t), tid))
            ag_verr_add(&e, &p, "uuid_parsing", "Input should be a valid UUID", t);
        else if (!tid[0] && ids)
            ag_verr_add(&e, &p, "value_error", "Value error, run_ids are the ids of runs of thread_id: give thread_id",
                        t ? t : json_null());
        ag_vpath_pop(&p);
        if (!ids && !status) {
            ag_vpath_push_key(&p, "run_ids");
            ag_verr_add(&e, &p, "value_error", "Value error, give run_ids (with thread_id) or status", NULL);
            ag_vpath_pop(&p);
        }
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    const char *st = status ? json_string_value(status) : "all";
    unsigned which = !strcmp(st, "pending")   ? AG_RUN_CANCEL_PENDING
                     : !strcmp(st, "running") ? AG_RUN_CANCEL_RUNNING
                                              : AG_RUN_CANCEL_PENDING | AG_RUN_CANCEL_RUNNING;
    bool rollback = !strcmp(action, "rollback");
    if (!tid[0]) { /* status alone: the caller's runs on every thread, on every shard */
        int rc = ag_run_cancel_owner_everywhere(r->shard, ag_req_owner(r), which, rollback);
        json_decref(body);
        if (rc < 0) {
            ag_http_add_header(r, "retry-after", "1");
            ag_http_error(r, 503, "some shards could not be asked to cancel (their queues are full); retry");
        } else {
            ag_http_respond(r, 204, "application/json", NULL, 0);
        }
        return AG_OK;
    }
    int owner = ag_owner_shard(tid, 36, r->shard->rt->nshards);
    if (owner != r->shard->id) {
        json_decref(body);
        return ag_http_forward(r, owner); /* parsed again there */
    }
    size_t n = json_array_size(ids);
    const char **run_ids = ag_malloc((n ? n : 1) * sizeof *run_ids);
    for (size_t i = 0; i < n; i++)
        run_ids[i] = json_string_value(json_array_get(ids, i));
    ag_run_cancel_many(tid, ag_req_owner(r), run_ids, n, which, rollback);
    ag_free(run_ids);
    json_decref(body);
    ag_http_respond(r, 204, "application/json", NULL, 0);
    return AG_OK;
}

int ag_runs_delete(struct ag_req *r)
{
    char tid[37], rid[37];
    bool force = false;
    const struct qflag f[] = {{"force", &force}};
    if (!run_path(r, tid, rid, f, 1, NULL, 0))
        return AG_OK;
    return ag_run_sinks_delete(r, tid, rid, force);
}

int ag_runs_thread_stream(struct ag_req *r)
{
    char tid[37];
    if (!ag_req_uuid_param(r, "thread_id", tid))
        return AG_OK;
    /* stream_mode (repeatable): run_modes (each run in the modes it was created with), lifecycle (each
     * run's start and end), state_update (the thread's state as runs change it); several: their union. */
    static const struct {
        const char *name;
        unsigned events;
    } modes[] = {
        {"run_modes", AG_THREAD_EVENTS_ALL},
        {"lifecycle", AG_THREAD_EVENTS_LIFECYCLE},
        {"state_update", AG_THREAD_EVENTS_STATE},
    };
    unsigned events = 0;
    struct ag_verr e = {0};
    struct ag_iov q = r->query, name, value;
    while (ag_query_next(&q, &name, &value)) {
        char *n = ag_query_str(name), *v = ag_query_str(value);
        if (!n || strcmp(n, "stream_mode")) {
            ag_query_unknown(n);
        } else {
            struct ag_query_list l;
            if (!v || !ag_query_list_init(&l, v)) {
                ag_query_error(&e, n, "list_type", "Input should be a stream mode or a list of them", v);
                l = (struct ag_query_list){0};
            }
            for (const char *m; (m = ag_query_list_next(&l));) {
                bool hit = false;
                for (size_t i = 0; i < AG_ARRAY_LEN(modes); i++)
                    if (!strcmp(m, modes[i].name)) {
                        events |= modes[i].events;
                        hit = true;
                    }
                if (!hit)
                    ag_query_error(&e, n, "literal_error",
                                   "Input should be 'run_modes', 'lifecycle' or 'state_update'", m);
            }
            ag_query_list_free(&l);
        }
        ag_free(n);
        ag_free(v);
    }
    if (ag_http_validation_refuse(r, &e))
        return AG_OK;
    char last[80];
    return ag_run_sinks_thread_stream(r, tid, last_event_id(r, last, sizeof last),
                                      events ? events : AG_THREAD_EVENTS_ALL);
}
