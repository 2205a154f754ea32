/* The store from inside a node (graph/graph.h ag_graph_task_store_*): an operation checked here, carried
 * out by the host (struct ag_graph_host store_start), its result kept on the task and the node re-entered
 * at its continuation. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/engine.h"
#include "graph/engine_internal.h"

/* The store operation of t ended: its result (or error) kept, the node re-entered at its continuation. */
static void store_done(void *cookie, const json_t *result, const char *error)
{
    struct ag_graph_task *t = cookie;
    struct ag_graph_run *r = t->run;
    t->store_op = NULL;
    json_decref(t->store_result);
    ag_free(t->store_error);
    t->store_result = result ? json_incref((json_t *)result) : NULL;
    t->store_error = result ? NULL : ag_strdup(error ? error : "store operation failed");
    if (ag_graph__ended(r) || t->st != TS_PENDING) return;
    ag_graph__call_node(t, t->cont);
    if (r->phase == RP_STEP_DONE && !r->driving) ag_graph__drive(r);
}

/* A store operation that could not start: its error, the node re-entered in a later turn (as always). */
static void store_failed_now(struct ag_graph_task *t, const char *error, ag_graph_node_fn cont)
{
    json_decref(t->store_result);
    ag_free(t->store_error);
    t->store_result = NULL;
    t->store_error = ag_strdup(error);
    ag_graph_task_sleep(t, 0, cont);
}

/* Labels of a namespace: strings, non-empty, without '.'; at least min of them. */
static bool valid_labels(const json_t *ns, size_t min)
{
    if (!json_is_array(ns) || json_array_size(ns) < min) return false;
    size_t i;
    json_t *l;
    json_array_foreach((json_t *)ns, i, l)
    {
        if (!json_is_string(l) || !json_string_length(l) || strchr(json_string_value(l), '.')) return false;
    }
    return true;
}

static void store_start(struct ag_graph_task *t, const struct ag_graph_store_req *req, ag_graph_node_fn cont)
{
    struct ag_graph_run *r = t->run;
    if (!ag_graph__task_live(t) || t->store_op) return;
    bool item = req->kind != AG_GSTORE_SEARCH;
    if (!valid_labels(req->ns, item ? 1 : 0) || (item && (!req->key || !*req->key))) {
        store_failed_now(t,
                         item ? "invalid namespace or key: a namespace is a non-empty array of non-empty labels "
                                "without '.', a key a non-empty string"
                              : "invalid namespace prefix: labels are non-empty strings without '.'",
                         cont);
        return;
    }
    if (!r->h.store_start) {
        store_failed_now(t, "no store: this host runs graphs without one", cont);
        return;
    }
    char err[256] = "store unavailable";
    t->cont = cont;
    t->st = TS_PENDING;
    t->store_op = r->h.store_start(r->h.ud, req, store_done, t, err, sizeof err);
    if (!t->store_op) {
        t->st = TS_RUNNING;
        store_failed_now(t, err, cont);
    }
}

void ag_graph_task_store_get(struct ag_graph_task *t, const json_t *ns, const char *key, ag_graph_node_fn cont)
{
    store_start(t, &(struct ag_graph_store_req){.kind = AG_GSTORE_GET, .ns = ns, .key = key}, cont);
}

void ag_graph_task_store_put(struct ag_graph_task *t, const json_t *ns, const char *key, json_t *value,
                             ag_graph_node_fn cont)
{
    if (!json_is_object(value)) {
        json_decref(value);
        if (ag_graph__task_live(t)) store_failed_now(t, "a stored value must be an object", cont);
        return;
    }
    store_start(t, &(struct ag_graph_store_req){.kind = AG_GSTORE_PUT, .ns = ns, .key = key, .value = value}, cont);
    json_decref(value);
}

void ag_graph_task_store_delete(struct ag_graph_task *t, const json_t *ns, const char *key, ag_graph_node_fn cont)
{
    store_start(t, &(struct ag_graph_store_req){.kind = AG_GSTORE_DELETE, .ns = ns, .key = key}, cont);
}

void ag_graph_task_store_search(struct ag_graph_task *t, const json_t *ns, json_t *filter, int limit, int offset,
                                ag_graph_node_fn cont)
{
    if (filter && !json_is_object(filter)) {
        json_decref(filter);
        if (ag_graph__task_live(t)) store_failed_now(t, "a search filter must be an object", cont);
        return;
    }
    json_t *empty = ns ? NULL : json_array();
    store_start(t,
                &(struct ag_graph_store_req){.kind = AG_GSTORE_SEARCH,
                                             .ns = ns ? ns : empty,
                                             .filter = filter,
                                             .limit = limit <= 0     ? 10
                                                      : limit > 1000 ? 1000
                                                                     : limit,
                                             .offset = offset < 0 ? 0 : offset},
                cont);
    json_decref(empty);
    json_decref(filter);
}

const json_t *ag_graph_task_store_result(const struct ag_graph_task *t)
{
    return t->store_result;
}

const char *ag_graph_task_store_error(const struct ag_graph_task *t)
{
    return t->store_error;
}
