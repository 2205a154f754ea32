#include "protocol/agent/threads_supersteps.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/engine.h"
#include "graph/registry.h"
#include "persist/cpstore.h"
#include "persist/pg.h"
#include "protocol/agent/state_apply.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/identity.h"
#include "protocol/validate.h"
#include "runtime/run.h"

/* --- checks --- */

static const struct ag_vfield superstep_fields[] = {
    {"updates", AG_V_ARRAY, AG_VF_REQUIRED, 0, 0, NULL},
};

static const struct ag_vfield update_fields[] = {
    {"values", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"command", AG_V_OBJECT, AG_VF_NULLABLE, 0, 0, NULL},
    {"as_node", AG_V_STRING, AG_VF_REQUIRED, 0, 0, NULL},
};

static const struct ag_vfield command_fields[] = {
    {"update", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"goto", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
    {"resume", AG_V_ANY, AG_VF_NULLABLE, 0, 0, NULL},
};

/* command.update: an object, or a list of [key, value] pairs (each its own write). */
static void check_command_update(const json_t *u, struct ag_vpath *p, struct ag_verr *e)
{
    if (json_is_object(u)) return;
    if (!json_is_array(u)) {
        ag_verr_add_key(e, p, "update", "dict_type",
                        "Input should be a valid dictionary or a list of [key, value] pairs", u);
        return;
    }
    ag_vpath_push_key(p, "update");
    size_t i;
    json_t *pair;
    json_array_foreach(u, i, pair)
    {
        if (json_is_array(pair) && json_array_size(pair) == 2 && json_is_string(json_array_get(pair, 0))) continue;
        ag_vpath_push_index(p, (int64_t)i);
        ag_verr_add(e, p, "tuple_type", "Input should be a [key, value] pair with a string key", pair);
        ag_vpath_pop(p);
    }
    ag_vpath_pop(p);
}

/* A command of an update (p at its "command"): its update is applied like values; goto and resume need a
 * run (a node to jump to, an interrupt to answer), which a state update does not start. */
static void check_command(const json_t *cmd, struct ag_vpath *p, struct ag_verr *e)
{
    ag_validate_object(cmd, command_fields, AG_ARRAY_LEN(command_fields), false, p, e);
    const json_t *v;
    if ((v = ag_v_present(cmd, "update"))) check_command_update(v, p, e);
    if ((v = ag_v_present(cmd, "goto")))
        ag_verr_add_key(
            e, p, "goto", "value_error",
            "Value error, command.goto cannot be honoured in a superstep update: the next nodes follow from "
            "as_node's edges",
            v);
    if ((v = ag_v_present(cmd, "resume")))
        ag_verr_add_key(
            e, p, "resume", "value_error",
            "Value error, command.resume cannot be honoured in a superstep update: it answers an interrupt of a "
            "run",
            v);
}

static void check_update(const json_t *u, struct ag_vpath *p, struct ag_verr *e)
{
    if (ag_validate_object(u, update_fields, AG_ARRAY_LEN(update_fields), false, p, e) && !json_is_object(u)) return;
    ag_state_apply_check_values(json_object_get(u, "values"), p, e);
    const json_t *cmd = ag_v_present(u, "command");
    if (json_is_object(cmd)) {
        ag_vpath_push_key(p, "command");
        check_command(cmd, p, e);
        ag_vpath_pop(p);
    }
}

/* metadata.graph_id must name a registered graph (p at ["body"]); a metadata that is not an object is
 * refused by the create body's own check. */
static void check_graph(const json_t *body, struct ag_vpath *p, struct ag_verr *e)
{
    const json_t *md = json_object_get(body, "metadata");
    if (md && !json_is_null(md) && !json_is_object(md)) return;
    const json_t *gid = ag_v_present(md, "graph_id");
    char msg[200];
    ag_vpath_push_key(p, "metadata");
    if (!gid)
        ag_verr_add_key(e, p, "graph_id", "missing",
                        "Field required: supersteps are applied to the graph metadata.graph_id names", md);
    else if (!json_is_string(gid))
        ag_verr_add_key(e, p, "graph_id", "string_type", "Input should be a valid string", gid);
    else if (!ag_graph_def_find(json_string_value(gid))) {
        snprintf(msg, sizeof msg, "Value error, graph '%.100s' is not a registered graph", json_string_value(gid));
        ag_verr_add_key(e, p, "graph_id", "value_error", msg, gid);
    }
    ag_vpath_pop(p);
}

unsigned ag_threads_supersteps_check(const json_t *body, struct ag_vpath *p, struct ag_verr *e)
{
    unsigned before = e->count;
    const json_t *steps = json_object_get(body, "supersteps");
    check_graph(body, p, e);
    ag_vpath_push_key(p, "supersteps");
    if (json_array_size(steps) > AG_THREADS_SUPERSTEPS_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "List should have at most %d items after validation, not %zu",
                 AG_THREADS_SUPERSTEPS_MAX, json_array_size(steps));
        ag_verr_add(e, p, "too_long", msg, NULL);
        ag_vpath_pop(p);
        return e->count - before;
    }
    size_t i, j;
    json_t *step, *u;
    json_array_foreach(steps, i, step)
    {
        ag_vpath_push_index(p, (int64_t)i);
        if (!ag_validate_object(step, superstep_fields, AG_ARRAY_LEN(superstep_fields), false, p, e)) {
            const json_t *ups = json_object_get(step, "updates");
            ag_vpath_push_key(p, "updates");
            if (!json_array_size(ups))
                ag_verr_add(e, p, "too_short", "List should have at least 1 item after validation, not 0", ups);
            json_array_foreach(ups, j, u)
            {
                ag_vpath_push_index(p, (int64_t)j);
                check_update(u, p, e);
                ag_vpath_pop(p);
            }
            ag_vpath_pop(p);
        }
        ag_vpath_pop(p);
    }
    ag_vpath_pop(p);
    return e->count - before;
}

/* --- computing the checkpoints --- */

/* The writes of a checked update: command.update (an object, or [key, value] pairs as one object each),
 * else values as POST /threads/{id}/state takes them. A new reference, or NULL: none. */
static json_t *update_writes(const json_t *u)
{
    const json_t *cmd = ag_v_present(u, "command");
    if (!cmd) return ag_state_apply_values(json_object_get(u, "values"));
    const json_t *cu = ag_v_present(cmd, "update");
    if (!json_is_array(cu)) return cu ? json_incref((json_t *)cu) : NULL;
    json_t *w = json_array();
    size_t i;
    json_t *pair;
    json_array_foreach(cu, i, pair)
    {
        json_array_append_new(w,
                              json_pack("{s:O}", json_string_value(json_array_get(pair, 0)), json_array_get(pair, 1)));
    }
    return w;
}

/* Adds the 422 problem of superstep i that the engine refused (fault, err) to e. */
static void refused(const json_t *step, size_t i, const struct ag_graph_fault *fault, const char *err,
                    struct ag_verr *e)
{
    struct ag_vpath p = {.key = {"body", "supersteps"}, .n = 2};
    char msg[300];
    snprintf(msg, sizeof msg, "Value error, %s", err);
    ag_vpath_push_index(&p, (int64_t)i);
    if (fault->update < 0) {
        ag_verr_add(e, &p, "value_error", msg, NULL);
        return;
    }
    const json_t *u = json_array_get(json_object_get(step, "updates"), (size_t)fault->update);
    ag_vpath_push_key(&p, "updates");
    ag_vpath_push_index(&p, fault->update);
    if (fault->as_node) {
        ag_vpath_push_key(&p, "as_node");
        ag_verr_add(e, &p, "value_error", msg, json_object_get(u, "as_node"));
    } else if (ag_v_present(u, "command")) {
        ag_vpath_push_key(&p, "command");
        ag_vpath_push_key(&p, "update");
        ag_verr_add(e, &p, "value_error", msg, json_object_get(ag_v_present(u, "command"), "update"));
    } else {
        ag_vpath_push_key(&p, "values");
        ag_verr_add(e, &p, "value_error", msg, json_object_get(u, "values"));
    }
}

/* The metadata of the new checkpoints, as the update path gives them: graph_id and assistant_id of the
 * thread's metadata, and thread_id. */
static json_t *checkpoint_metadata(const json_t *body, const char id[37])
{
    const json_t *md = json_object_get(body, "metadata");
    json_t *m = json_object();
    const json_t *v;
    if ((v = ag_v_present(md, "graph_id"))) json_object_set(m, "graph_id", (json_t *)v);
    if ((v = ag_v_present(md, "assistant_id"))) json_object_set(m, "assistant_id", (json_t *)v);
    json_object_set_new(m, "thread_id", json_string(id));
    return m;
}

/* Adds the refusal of supersteps whose checkpoints pass AG_THREADS_SUPERSTEPS_STATE_MAX to e. */
static void too_big(size_t step, struct ag_verr *e)
{
    struct ag_vpath p = {.key = {"body", "supersteps"}, .n = 2};
    char msg[200];
    snprintf(msg, sizeof msg,
             "Value error, the supersteps up to %zu build more than %u bytes of checkpoints (each holds the whole "
             "state)",
             step, AG_THREADS_SUPERSTEPS_STATE_MAX);
    ag_verr_add(e, &p, "value_error", msg, NULL);
}

/* The checkpoints of checked body's supersteps for thread id, oldest first (a new array), or NULL after
 * adding the engine's refusal, or that they are too big, to e. Their size is counted as they are built,
 * so that a body of many supersteps over a large state stops before it takes the memory. */
static json_t *checkpoints(const json_t *body, const char id[37], struct ag_verr *e)
{
    const struct ag_graph_def *def =
        ag_graph_def_find(json_string_value(json_object_get(json_object_get(body, "metadata"), "graph_id")));
    json_t *meta = checkpoint_metadata(body, id), *config = json_object(), *out = json_array();
    const json_t *latest = NULL;
    size_t i, size = 0;
    json_t *step;
    json_array_foreach(json_object_get(body, "supersteps"), i, step)
    {
        const json_t *list = json_object_get(step, "updates");
        size_t n = json_array_size(list);
        struct ag_graph_update *ups = ag_calloc(n, sizeof *ups);
        json_t **writes = ag_calloc(n, sizeof *writes);
        for (size_t j = 0; j < n; j++) {
            const json_t *u = json_array_get(list, j);
            writes[j] = update_writes(u);
            ups[j] = (struct ag_graph_update){.values = writes[j],
                                              .as_node = json_string_value(json_object_get(u, "as_node"))};
        }
        struct ag_graph_fault fault;
        char err[256] = "";
        /* as_node is required here, so prev (which only guides choosing one) is not needed. */
        json_t *ck = ag_graph_state_step(def, latest, NULL, ups, n, config, meta, &fault, err, sizeof err);
        for (size_t j = 0; j < n; j++)
            json_decref(writes[j]);
        ag_free(writes);
        ag_free(ups);
        if (!ck) {
            refused(step, i, &fault, err[0] ? err : "invalid update", e);
            json_decref(out);
            out = NULL;
            break;
        }
        /* Stamped as stored: each superstep stores what it changed (the messages it appended). */
        json_t *stamped = ag_cpstore_stamp(latest, ck);
        json_decref(ck);
        ck = stamped;
        json_array_append_new(out, ck);
        latest = ck;
        size += json_dumpb(ck, NULL, 0, JSON_COMPACT);
        if (size > AG_THREADS_SUPERSTEPS_STATE_MAX) {
            too_big(i, e);
            json_decref(out);
            out = NULL;
            break;
        }
    }
    json_decref(config);
    json_decref(meta);
    return out;
}

/* --- the write --- */

struct stq {
    struct ag_dbreq d;
    char id[37];
};

static void on_created(struct ag_pg_query *q, PGresult *res)
{
    struct stq *x = q->ud;
    if (q->status != AG_PG_OK) {
        ag_dbq_fail(x->d.r, q);
    } else if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
        char msg[96];
        snprintf(msg, sizeof msg, "Thread '%s' already exists", x->id);
        ag_http_error(x->d.r, 409, msg);
    } else {
        ag_http_json(x->d.r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    }
    ag_dbreq_finish(&x->d);
}

int ag_threads_supersteps_create(struct ag_req *r, const char id[37], const json_t *body, double ttl_minutes,
                                 const char *strategy, bool do_nothing)
{
    struct ag_verr e = {0};
    json_t *cks = checkpoints(body, id, &e);
    if (ag_http_validation_refuse(r, &e)) {
        json_decref(cks);
        return AG_OK;
    }
    const char *status;
    json_t *ints = ag_state_apply_interrupts(json_array_get(cks, json_array_size(cks) - 1), &status);
    struct stq *x = ag_dbreq_new(sizeof *x, r, AG_SQL_STATE_THREAD_CREATE, AG_PG_WRITE, on_created);
    struct ag_dbreq *d = &x->d;
    memcpy(x->id, id, sizeof x->id);
    ag_dbreq_param(d, x->id);
    ag_dbreq_param(d, ag_req_owner(r));
    ag_dbreq_param(d, ag_dbreq_str(d, r->body.base, r->body.len));
    if (ttl_minutes > 0) {
        ag_dbreq_param(d, ag_pg_args_printf(&d->strs, "%.17g", ttl_minutes));
        ag_dbreq_param(d, ag_dbreq_str(d, strategy, strlen(strategy)));
    } else {
        ag_dbreq_param(d, NULL);
        ag_dbreq_param(d, NULL);
    }
    ag_dbreq_param(d, ag_cpstore_param(&d->strs, cks));
    ag_dbreq_param(d, ag_dbreq_json(d, ints));
    ag_dbreq_param(d, status);
    ag_dbreq_param(d, do_nothing ? "true" : "false");
    ag_dbreq_param(d, ag_dbreq_json(d, json_object_get(json_array_get(cks, json_array_size(cks) - 1), "values")));
    json_decref(ints);
    json_decref(cks);
    /* A thread entry this shard still keeps for the id (a thread deleted and made again) must not hold on
     * to an older checkpoint. */
    ag_run_thread_state_changed(r->shard, x->id);
    return ag_dbreq_submit(d);
}
