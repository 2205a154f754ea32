#include "protocol/agent/v2.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/jsontext.h"
#include "protocol/agent/run_sinks.h"
#include "protocol/identity.h"
#include "runtime/run.h"
#include "protocol/agent/runs.h"
#include "protocol/agent/v2_stream.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/jsonw.h"
#include "protocol/validate.h"
#include "runtime/tlog.h"

/* --- POST /threads/{thread_id}/stream/events --- */

static const struct ag_vfield stream_fields[] = {
    {"channels", AG_V_ARRAY, AG_VF_REQUIRED, 0, 0, NULL},
    {"namespaces", AG_V_ARRAY, AG_VF_NULLABLE, 0, 0, NULL},
    {"depth", AG_V_INT, AG_VF_NULLABLE, 0, INT32_MAX, NULL},
    {"since", AG_V_INT, AG_VF_NULLABLE, 0, INT64_MAX, NULL},
};

/* Channels: 422 for wrong types (in e), else the bits in f; unknown or none: a 400 message in bad. */
static void parse_channels(const json_t *list, struct ag_tlog_filter *f, struct ag_vpath *p, struct ag_verr *e,
                           struct ag_buf *bad)
{
    size_t i;
    json_t *c;
    ag_vpath_push_key(p, "channels");
    json_array_foreach(list, i, c) {
        if (!json_is_string(c)) {
            ag_vpath_push_index(p, (int64_t)i);
            ag_verr_add(e, p, "string_type", "Input should be a valid string", c);
            ag_vpath_pop(p);
            continue;
        }
        const char *name = json_string_value(c);
        unsigned bit = ag_tlog_channel_bit(name);
        if (!bit) {
            ag_buf_printf(bad, "%s%s", bad->len ? ", " : "", name);
            continue;
        }
        if (!strncmp(name, "custom:", 7)) {
            if (!f->custom_names)
                f->custom_names = json_array();
            json_array_append_new(f->custom_names, json_string(name + 7));
        } else {
            f->channels |= bit;
        }
    }
    ag_vpath_pop(p);
    if (!json_array_size(list))
        ag_buf_puts(bad, "channels must be a non-empty array");
}

static void parse_namespaces(const json_t *list, struct ag_tlog_filter *f, struct ag_vpath *p, struct ag_verr *e)
{
    ag_vpath_push_key(p, "namespaces");
    size_t i, k;
    json_t *ns, *seg;
    json_array_foreach(list, i, ns) {
        ag_vpath_push_index(p, (int64_t)i);
        if (!json_is_array(ns)) {
            ag_verr_add(e, p, "list_type", "Input should be a valid list", ns);
        } else {
            json_array_foreach(ns, k, seg) {
                if (!json_is_string(seg)) {
                    ag_vpath_push_index(p, (int64_t)k);
                    ag_verr_add(e, p, "string_type", "Input should be a valid string", seg);
                    ag_vpath_pop(p);
                }
            }
        }
        ag_vpath_pop(p);
    }
    ag_vpath_pop(p);
    f->namespaces = json_incref((json_t *)list);
}

int ag_v2_stream_events(struct ag_req *r)
{
    char tid[37];
    if (!ag_req_uuid_param(r, "thread_id", tid))
        return AG_OK;
    struct ag_verr e = {0};
    json_t *body = ag_req_json(r, &e);
    struct ag_tlog_filter f = {.depth = -1};
    struct ag_buf bad = {0};
    uint64_t since = 0;
    if (body) {
        struct ag_vpath p = {.key = {"body"}, .n = 1};
        if (!ag_validate_object(body, stream_fields, AG_ARRAY_LEN(stream_fields), false, &p, &e)) {
            parse_channels(json_object_get(body, "channels"), &f, &p, &e, &bad);
            json_t *v = json_object_get(body, "namespaces");
            if (json_is_array(v))
                parse_namespaces(v, &f, &p, &e);
            if (json_is_integer((v = json_object_get(body, "depth"))))
                f.depth = (int)json_integer_value(v);
            if (json_is_integer((v = json_object_get(body, "since"))))
                since = (uint64_t)json_integer_value(v);
        }
    }
    json_decref(body);
    if (ag_http_validation_refuse(r, &e)) {
        ag_tlog_filter_clear(&f);
        ag_buf_free(&bad);
        return AG_OK;
    }
    if (bad.len) {
        char msg[600];
        snprintf(msg, sizeof msg, "Unsupported channels: %.*s", (int)AG_MIN(bad.len, 500), bad.base);
        ag_http_error(r, 400, msg);
        ag_tlog_filter_clear(&f);
        ag_buf_free(&bad);
        return AG_OK;
    }
    ag_buf_free(&bad);
    return ag_v2_stream_open(r, tid, ag_req_owner(r), &f, since);
}

/* --- POST /threads/{thread_id}/commands --- */

static const struct ag_vfield command_fields[] = {
    {"id", AG_V_INT, AG_VF_REQUIRED, 0, INT64_MAX, NULL},
    {"method", AG_V_STRING, AG_VF_REQUIRED, 0, 200, NULL},
    {"params", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
};

/* One command in progress: its database work (d.r is the request) and what it was asked. */
struct cmd {
    struct ag_dbreq d; /* first member: ag_dbreq_new allocates the whole struct */
    char tid[37];
    int64_t id;
    char method[64];
    json_t *params;
    bool sub_ns;    /* state.get / state.listCheckpoints of a subgraph's namespace (not the root's) */
    const char *ns; /* its checkpoint_ns (in d.strs), or NULL: the root's */
};

static void cmd_free(struct cmd *c)
{
    json_decref(c->params);
    ag_dbreq_free(&c->d);
}

/* The response envelope's meta: the thread and the last seq of its event log. */
static json_t *meta(const char *tid)
{
    return json_pack("{s:s,s:I}", "thread_id", tid, "applied_through_seq", (json_int_t)ag_tlog_last_seq(tid));
}

static void send_json(struct ag_req *r, json_t *v)
{
    size_t n;
    const char *s = ag_json_scratch_text(v, JSON_COMPACT, &n); /* ag_http_json copies it */
    ag_http_json(r, 200, s, n);
    json_decref(v);
}

static void reply_ok(struct ag_req *r, int64_t id, const char *tid, json_t *result)
{
    send_json(r, json_pack("{s:s,s:I,s:o,s:o}", "type", "success", "id", (json_int_t)id, "result", result, "meta",
                           meta(tid)));
}

static void reply_err(struct ag_req *r, int64_t id, const char *code, const char *msg)
{
    send_json(r, json_pack("{s:s,s:I,s:s,s:s}", "type", "error", "id", (json_int_t)id, "error", code, "message", msg));
}

/* Ends an asynchronous command: answered, freed. */
static void cmd_done(struct cmd *c)
{
    json_decref(c->params);
    ag_dbreq_finish(&c->d);
}

/* A problem's string as a client reads it back from the 422 JSON (bytes that are not UTF-8 as U+FFFD),
 * NUL-terminated in b. */
static const char *as_read(struct ag_buf *b, const char *s)
{
    b->len = 0;
    ag_utf8_clean(b, s, strlen(s));
    ag_buf_append(b, "", 1);
    return b->base;
}

/* The first problem of a validation as one line ("loc: msg", loc without its first segment). */
static void first_problem(const struct ag_verr *e, char *out, size_t n)
{
    const struct ag_vproblem *pr = e->items[0];
    struct ag_buf b = {0};
    char where[200] = "";
    for (int i = 1; i < pr->nloc; i++) { /* loc[0] is "params" */
        size_t len = strlen(where);
        if (pr->loc[i].key)
            snprintf(where + len, sizeof where - len, "%s%s", len ? "." : "", as_read(&b, pr->loc[i].key));
        else
            snprintf(where + len, sizeof where - len, "[%" PRId64 "]", pr->loc[i].index);
    }
    snprintf(out, n, "%s%s%s", where, where[0] ? ": " : "", as_read(&b, pr->msg));
    ag_buf_free(&b);
}

/* Error code of an HTTP answer of run creation. */
static const char *code_of(int status)
{
    if (status == 404)
        return "no_such_run";
    if (status == 400 || status == 409 || status == 422)
        return "invalid_argument";
    return "unknown_error";
}

/* A run was created (or refused) for a run-starting command. */
static void on_run_created(void *ud, int status, const char *body, size_t len)
{
    struct cmd *c = ud;
    json_t *v = json_loadb(body, len, 0, NULL);
    if (status == 200) {
        json_t *result = !strcmp(c->method, "input.respond") ? json_object()
                         : !strcmp(c->method, "state.fork")
                             ? json_pack("{s:O,s:s}", "run_id", json_object_get(v, "run_id"), "thread_id", c->tid)
                             : json_pack("{s:O}", "run_id", json_object_get(v, "run_id"));
        reply_ok(c->d.r, c->id, c->tid, result);
    } else {
        const char *msg = json_string_value(json_object_get(v, "message"));
        reply_err(c->d.r, c->id, code_of(status), msg ? msg : "the run could not be created");
    }
    json_decref(v);
    cmd_done(c);
}

/* Builds a RunCreate body from the command's parameters, validates it like the run endpoints and
 * creates the run. body is taken. */
static void start_run(struct cmd *c, json_t *body, json_t *command_override)
{
    struct ag_run_spec sp = {0};
    struct ag_verr e = {0};
    json_object_set_new(body, "if_not_exists", json_string("create"));
    struct ag_vpath path = {.key = {"params"}, .n = 1};
    ag_runs_parse_create(body, false, &sp, &e, &path);
    json_decref(body);
    if (e.count) {
        char msg[400];
        first_problem(&e, msg, sizeof msg);
        ag_verr_free(&e);
        ag_run_spec_clear(&sp);
        reply_err(c->d.r, c->id, "invalid_argument", msg);
        cmd_done(c);
        return;
    }
    if (command_override) {
        json_decref(sp.input);
        sp.input = NULL;
        json_decref(sp.command);
        sp.command = command_override;
    }
    snprintf(sp.thread_id, sizeof sp.thread_id, "%s", c->tid);
    snprintf(sp.owner, sizeof sp.owner, "%s", ag_req_owner(c->d.r));
    ag_run_sinks_create_cb(&sp, on_run_created, c);
}

/* Copies key from params into body when present (also under alias). */
static void take(json_t *body, const json_t *params, const char *key, const char *alias)
{
    json_t *v = json_object_get(params, key);
    if (!v && alias)
        v = json_object_get(params, alias);
    if (v)
        json_object_set(body, key, v);
}

/* Refuses parameters the method does not read: accepting and ignoring them would mislead. */
static bool only_keys(struct cmd *c, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(c->params, k, v) {
        bool known = false;
        for (const char *const *x = keys; *x && !known; x++)
            known = !strcmp(*x, k);
        if (!known) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s does not take the parameter '%.64s'.", c->method, k);
            reply_err(c->d.r, c->id, "invalid_argument", msg);
            return false;
        }
    }
    return true;
}

/* run.start, after the thread read: an interrupted thread takes a non-null input as the resume. */
static void run_start_cmd(struct cmd *c, PGresult *res)
{
    static const char *const keys[] = {"assistant_id", "input", "config", "context", "metadata", "interrupt_before",
                                       "interrupt_after", "multitask_strategy", "multitaskStrategy", NULL};
    if (!only_keys(c, keys)) {
        cmd_done(c);
        return;
    }
    json_t *body = json_object();
    take(body, c->params, "assistant_id", NULL);
    take(body, c->params, "input", NULL);
    take(body, c->params, "config", NULL);
    take(body, c->params, "context", NULL);
    take(body, c->params, "metadata", NULL);
    take(body, c->params, "interrupt_before", NULL);
    take(body, c->params, "interrupt_after", NULL);
    take(body, c->params, "multitask_strategy", "multitaskStrategy");
    json_t *input = json_object_get(c->params, "input");
    json_t *resume = NULL;
    if (PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "interrupted") && input && !json_is_null(input))
        resume = json_pack("{s:O}", "resume", input);
    start_run(c, body, resume);
}

static bool is_interrupt_id(const char *s)
{
    if (!s || strlen(s) != 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Whether id is pending in the thread's interrupts ({task id: [{"id","value"}]}); counts them all. */
static bool pending(const json_t *ints, const char *id, size_t *count)
{
    bool found = false;
    const char *k;
    json_t *list;
    *count = 0;
    json_object_foreach((json_t *)ints, k, list) {
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) {
            (*count)++;
            const char *xid = json_string_value(json_object_get(x, "id"));
            if (id && xid && !strcmp(xid, id))
                found = true;
        }
    }
    return found;
}

/* The assistant to run: the parameter, else the one of the thread's last run. */
static const char *assistant_for(struct cmd *c, PGresult *res)
{
    const char *aid = json_string_value(json_object_get(c->params, "assistant_id"));
    if (aid)
        return aid;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 2))
        return PQgetvalue(res, 0, 2);
    return NULL;
}

static void input_respond_cmd(struct cmd *c, PGresult *res)
{
    static const char *const keys[] = {"response", "interrupt_id", "responses", "namespace", "assistant_id", "config",
                                       "metadata", "update", "goto", "strict_resume", NULL};
    if (!only_keys(c, keys)) {
        cmd_done(c);
        return;
    }
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "interrupted")) {
        reply_err(c->d.r, c->id, "invalid_argument", "input.respond can only be used while the run is interrupted.");
        cmd_done(c);
        return;
    }
    json_t *ints = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    json_t *responses = json_object_get(c->params, "responses");
    json_t *resume = NULL;
    const char *code = NULL;
    char msg[300] = "";
    size_t npending = 0;
    if (responses) {
        if (!json_is_array(responses) || !json_array_size(responses)) {
            code = "invalid_argument";
            snprintf(msg, sizeof msg, "input.respond responses must be a non-empty list.");
        } else {
            resume = json_object();
            size_t i;
            json_t *x;
            json_array_foreach(responses, i, x) {
                const char *id = json_string_value(json_object_get(x, "interrupt_id"));
                if (!json_is_object(x) || !json_object_get(x, "response")) {
                    code = "invalid_argument";
                    snprintf(msg, sizeof msg, "input.respond responses[%zu] needs interrupt_id and response.", i);
                    break;
                }
                if (!is_interrupt_id(id) || !pending(ints, id, &npending)) {
                    code = "no_such_interrupt";
                    snprintf(msg, sizeof msg, "Interrupt '%.64s' is not pending on this thread.", id ? id : "");
                    break;
                }
                json_object_set(resume, id, json_object_get(x, "response"));
            }
        }
    } else if (!json_object_get(c->params, "response")) {
        code = "invalid_argument";
        snprintf(msg, sizeof msg, "input.respond requires a response.");
    } else {
        json_t *idv = json_object_get(c->params, "interrupt_id");
        const char *id = json_string_value(idv);
        if (idv && !json_is_null(idv)) {
            if (!is_interrupt_id(id) || !pending(ints, id, &npending)) {
                code = "no_such_interrupt";
                snprintf(msg, sizeof msg, "Interrupt '%.64s' is not pending on this thread.", id ? id : "");
            } else {
                resume = json_pack("{s:O}", id, json_object_get(c->params, "response"));
            }
        } else {
            pending(ints, NULL, &npending);
            if (npending != 1) {
                code = "invalid_argument";
                snprintf(msg, sizeof msg, "input.respond needs an interrupt_id: %zu interrupts are pending.", npending);
            } else {
                resume = json_incref(json_object_get(c->params, "response"));
            }
        }
    }
    json_decref(ints);
    const char *aid = assistant_for(c, res);
    if (!code && !aid) {
        code = "no_such_run";
        snprintf(msg, sizeof msg, "No run on this thread to resume.");
    }
    if (code) {
        json_decref(resume);
        reply_err(c->d.r, c->id, code, msg);
        cmd_done(c);
        return;
    }
    json_t *command = json_pack("{s:o}", "resume", resume);
    take(command, c->params, "update", NULL);
    take(command, c->params, "goto", NULL);
    json_t *body = json_pack("{s:s}", "assistant_id", aid);
    take(body, c->params, "config", NULL);
    take(body, c->params, "metadata", NULL);
    start_run(c, body, command);
}

static void state_fork_cmd(struct cmd *c, PGresult *res)
{
    static const char *const keys[] = {"checkpoint_id", "input", "config", "assistant_id", NULL};
    if (!only_keys(c, keys)) {
        cmd_done(c);
        return;
    }
    const char *cp = json_string_value(json_object_get(c->params, "checkpoint_id"));
    const char *aid = assistant_for(c, res);
    if (!cp || !aid) {
        reply_err(c->d.r, c->id, cp ? "no_such_run" : "invalid_argument",
                  cp ? "No run on this thread to fork from." : "state.fork requires a string checkpoint_id.");
        cmd_done(c);
        return;
    }
    json_t *body = json_pack("{s:s,s:s}", "assistant_id", aid, "checkpoint_id", cp);
    take(body, c->params, "input", NULL);
    take(body, c->params, "config", NULL);
    start_run(c, body, NULL);
}

/* input.inject: the message as the input of a run queued behind the active one (LangGraph's
 * double-texting with enqueue), or started at once on an idle thread; the built-in graphs read their
 * input between supersteps, never inside one. */
static void input_inject_cmd(struct cmd *c, PGresult *res)
{
    static const char *const keys[] = {"namespace", "message", "assistant_id", NULL};
    if (!only_keys(c, keys)) {
        cmd_done(c);
        return;
    }
    json_t *msg = json_object_get(c->params, "message");
    const char *role = json_string_value(json_object_get(msg, "role"));
    const char *aid = assistant_for(c, res);
    const char *code = NULL, *text = NULL;
    if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "content")) || !role ||
        (strcmp(role, "user") && strcmp(role, "system"))) {
        code = "invalid_argument";
        text = "input.inject requires a message {role: user|system, content: string}.";
    } else if (!aid) {
        code = "no_such_run";
        text = "No run on this thread to inject into.";
    }
    if (code) {
        reply_err(c->d.r, c->id, code, text);
        cmd_done(c);
        return;
    }
    json_t *body = json_pack("{s:s,s:{s:[O]},s:s}", "assistant_id", aid, "input", "messages", msg,
                             "multitask_strategy", "enqueue");
    start_run(c, body, NULL);
}

static const char *tree_status(const char *thread_status)
{
    if (!strcmp(thread_status, "busy"))
        return "running";
    if (!strcmp(thread_status, "interrupted"))
        return "interrupted";
    if (!strcmp(thread_status, "error"))
        return "failed";
    return "completed";
}

static void get_tree_cmd(struct cmd *c, PGresult *res)
{
    static const char *const keys[] = {"run_id", NULL};
    if (!only_keys(c, keys)) {
        cmd_done(c);
        return;
    }
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 4)) {
        reply_err(c->d.r, c->id, "no_such_run", "No run on this thread.");
        cmd_done(c);
        return;
    }
    /* The root graph only: the tree of a graph with subgraphs does not list them yet (README). */
    json_t *tree = json_pack("{s:[],s:s,s:s}", "namespace", "status", tree_status(PQgetvalue(res, 0, 0)), "graph_name",
                             PQgetvalue(res, 0, 4));
    reply_ok(c->d.r, c->id, c->tid, json_pack("{s:o}", "tree", tree));
    cmd_done(c);
}

static void on_thread(struct ag_pg_query *q, PGresult *res)
{
    struct cmd *c = q->ud;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(c->d.r, q);
        cmd_done(c);
        return;
    }
    if (!strcmp(c->method, "run.start"))
        run_start_cmd(c, res);
    else if (!strcmp(c->method, "input.respond"))
        input_respond_cmd(c, res);
    else if (!strcmp(c->method, "state.fork"))
        state_fork_cmd(c, res);
    else if (!strcmp(c->method, "input.inject"))
        input_inject_cmd(c, res);
    else
        get_tree_cmd(c, res);
}

/* state.get: the latest checkpoint's values and id. */
static void on_state(struct ag_pg_query *q, PGresult *res)
{
    struct cmd *c = q->ud;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(c->d.r, q);
        cmd_done(c);
        return;
    }
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        reply_err(c->d.r, c->id, "no_such_run", "Thread not found.");
        cmd_done(c);
        return;
    }
    json_t *st = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (c->sub_ns && !json_is_string(json_object_get(json_object_get(st, "checkpoint"), "checkpoint_id"))) {
        json_decref(st);
        reply_err(c->d.r, c->id, "no_such_namespace", "No checkpoint of the thread is in this namespace.");
        cmd_done(c);
        return;
    }
    json_t *values = json_object_get(st, "values");
    json_t *keys = json_object_get(c->params, "keys");
    json_t *out;
    if (json_is_array(keys)) {
        out = json_object();
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k) {
            json_t *v = json_is_string(k) ? json_object_get(values, json_string_value(k)) : NULL;
            if (v)
                json_object_set(out, json_string_value(k), v);
        }
    } else {
        out = json_incref(values ? values : json_object());
    }
    json_t *result = json_pack("{s:o}", "values", out);
    json_t *cpid = json_object_get(json_object_get(st, "checkpoint"), "checkpoint_id");
    if (json_is_string(cpid))
        json_object_set_new(result, "checkpoint", json_pack("{s:O,s:s}", "id", cpid, "ns", c->ns ? c->ns : ""));
    json_decref(st);
    reply_ok(c->d.r, c->id, c->tid, result);
    cmd_done(c);
}

/* state.listCheckpoints: summaries, newest first. */
static void on_history(struct ag_pg_query *q, PGresult *res)
{
    struct cmd *c = q->ud;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(c->d.r, q);
        cmd_done(c);
        return;
    }
    if (PQntuples(res) == 0) {
        reply_err(c->d.r, c->id, "no_such_run", "Thread not found.");
        cmd_done(c);
        return;
    }
    json_t *list = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (c->sub_ns && !json_array_size(list) && !json_object_get(c->params, "before")) {
        json_decref(list);
        reply_err(c->d.r, c->id, "no_such_namespace", "No checkpoint of the thread is in this namespace.");
        cmd_done(c);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *st;
    json_array_foreach(list, i, st) {
        json_t *md = json_object_get(st, "metadata");
        json_t *s = json_pack("{s:O,s:O,s:O,s:O}", "id", json_object_get(json_object_get(st, "checkpoint"), "checkpoint_id"),
                              "timestamp", json_object_get(st, "created_at"), "step", json_object_get(md, "step"),
                              "metadata", md ? md : json_object());
        json_array_append_new(out, s);
    }
    json_decref(list);
    reply_ok(c->d.r, c->id, c->tid, json_pack("{s:o}", "checkpoints", out));
    cmd_done(c);
}

/* The checkpoint_ns of params.namespace (in c's strings): "" for the root ([], null or absent), else a
 * subgraph's segments joined with '|' (c->sub_ns set). NULL after answering invalid_argument. */
static const char *namespace_param(struct cmd *c)
{
    json_t *ns = json_object_get(c->params, "namespace");
    if (!ns || json_is_null(ns) || (json_is_array(ns) && !json_array_size(ns))) return "";
    struct ag_buf b = {0};
    bool ok = json_is_array(ns);
    size_t i;
    json_t *seg;
    json_array_foreach(ns, i, seg)
    {
        const char *t = json_string_value(seg);
        if (!t || !*t || strchr(t, '|')) {
            ok = false;
            break;
        }
        ag_buf_printf(&b, "%s%s", i ? "|" : "", t);
    }
    if (!ok) {
        ag_buf_free(&b);
        reply_err(c->d.r, c->id, "invalid_argument", "namespace must be an array of \"<node>:<task id>\" segments.");
        return NULL;
    }
    const char *out = ag_pg_args_dup(&c->d.strs, b.base, b.len);
    ag_buf_free(&b);
    c->sub_ns = true;
    c->ns = out;
    return out;
}

static bool root_namespace(struct cmd *c)
{
    json_t *ns = json_object_get(c->params, "namespace");
    if (!ns || json_is_null(ns) || (json_is_array(ns) && !json_array_size(ns)))
        return true;
    reply_err(c->d.r, c->id, "no_such_namespace", "input.inject serves the root namespace ([]) only.");
    return false;
}

static int submit_read(struct cmd *c, enum ag_sql stmt, ag_pg_cb cb)
{
    c->d.q.stmt = stmt;
    c->d.q.cb = cb;
    json_t *params = c->params;
    int rc = ag_dbreq_submit(&c->d); /* frees c when it answered at once (503) */
    if (rc != AG_AGAIN)
        json_decref(params);
    return rc;
}

static void param(struct cmd *c, const char *v)
{
    ag_dbreq_param(&c->d, v);
}

int ag_v2_commands(struct ag_req *r)
{
    char tid[37];
    if (!ag_req_uuid_param(r, "thread_id", tid))
        return AG_OK;
    struct ag_verr e = {0};
    json_t *body = ag_req_json(r, &e);
    if (body) {
        struct ag_vpath p = {.key = {"body"}, .n = 1};
        ag_validate_object(body, command_fields, AG_ARRAY_LEN(command_fields), false, &p, &e);
    }
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(body);
        return AG_OK;
    }
    /* The statement and callback are set by submit_read, for the methods that read. */
    struct cmd *c = ag_dbreq_new(sizeof *c, r, AG_SQL_TEV_THREAD, AG_PG_READ, NULL);
    snprintf(c->tid, sizeof c->tid, "%s", tid);
    c->id = json_integer_value(json_object_get(body, "id"));
    snprintf(c->method, sizeof c->method, "%s", json_string_value(json_object_get(body, "method")));
    json_t *params = json_object_get(body, "params");
    c->params = json_is_object(params) ? json_incref(params) : json_object();
    json_decref(body);

    const char *m = c->method;
    if (!strcmp(m, "run.start")) {
        if (!json_is_string(json_object_get(c->params, "assistant_id"))) {
            reply_err(r, c->id, "invalid_argument", "run.start requires a string assistant_id.");
            cmd_free(c);
            return AG_OK;
        }
    } else if (!strcmp(m, "state.get")) {
        static const char *const keys[] = {"namespace", "keys", NULL};
        const char *ns = only_keys(c, keys) ? namespace_param(c) : NULL;
        if (!ns) {
            cmd_free(c);
            return AG_OK;
        }
        param(c, c->tid);
        param(c, ag_req_owner(c->d.r));
        param(c, ns);
        param(c, NULL);
        param(c, "false");
        return submit_read(c, AG_SQL_STATE_GET, on_state);
    } else if (!strcmp(m, "state.listCheckpoints")) {
        static const char *const keys[] = {"namespace", "limit", "before", NULL};
        const char *ns = only_keys(c, keys) ? namespace_param(c) : NULL;
        if (!ns) {
            cmd_free(c);
            return AG_OK;
        }
        json_t *limit = json_object_get(c->params, "limit"), *before = json_object_get(c->params, "before");
        if ((limit && !(json_is_integer(limit) && json_integer_value(limit) >= 1 && json_integer_value(limit) <= 1000)) ||
            (before && !json_is_string(before) && !json_is_null(before))) {
            reply_err(r, c->id, "invalid_argument",
                      "state.listCheckpoints takes limit (an integer 1..1000) and before (a checkpoint id).");
            cmd_free(c);
            return AG_OK;
        }
        param(c, c->tid);
        param(c, ag_req_owner(c->d.r));
        param(c, ns);
        param(c, json_is_string(before) ? ag_pg_args_dup(&c->d.strs, json_string_value(before), json_string_length(before))
                                        : NULL);
        param(c, NULL);
        param(c, ag_pg_args_printf(&c->d.strs, "%" JSON_INTEGER_FORMAT, limit ? json_integer_value(limit) : 10));
        param(c, NULL);
        param(c, "false");
        return submit_read(c, AG_SQL_STATE_HISTORY, on_history);
    } else if (!strcmp(m, "input.inject")) {
        if (!root_namespace(c)) {
            cmd_free(c);
            return AG_OK;
        }
    } else if (!strncmp(m, "subscription.", 13)) {
        reply_err(r, c->id, "not_supported",
                  "Subscriptions are commands of the WebSocket transport; over HTTP open POST "
                  "/threads/{thread_id}/stream/events with the channels instead.");
        cmd_free(c);
        return AG_OK;
    } else if (strcmp(m, "input.respond") && strcmp(m, "state.fork") && strcmp(m, "agent.getTree")) {
        char msg[120];
        snprintf(msg, sizeof msg, "Unknown command '%.64s'.", m);
        reply_err(r, c->id, "unknown_command", msg);
        cmd_free(c);
        return AG_OK;
    }
    /* run.start, input.respond, input.inject, state.fork, agent.getTree: the thread first. */
    param(c, c->tid);
    param(c, ag_req_owner(c->d.r));
    return submit_read(c, AG_SQL_TEV_THREAD, on_thread);
}
