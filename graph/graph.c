#include "graph/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/uuid.h"
#include "graph/graph_internal.h"
#include "graph/messages.h"

#define MESSAGE_DEFS                                                                                                   \
    "\"definitions\":{\"Message\":{\"title\":\"Message\",\"description\":\"A chat message: LangChain's serialized "   \
    "form {type, content, ...} or the OpenAI form {role, content}.\",\"type\":\"object\",\"properties\":{"             \
    "\"type\":{\"type\":\"string\",\"enum\":[\"human\",\"ai\",\"system\",\"tool\",\"function\",\"chat\",\"remove\"]}," \
    "\"role\":{\"type\":\"string\"},"                                                                                  \
    "\"content\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":\"object\"}}]},"            \
    "\"id\":{\"type\":[\"string\",\"null\"]},"                                                                         \
    "\"name\":{\"type\":[\"string\",\"null\"]},"                                                                       \
    "\"additional_kwargs\":{\"type\":\"object\"},"                                                                     \
    "\"response_metadata\":{\"type\":\"object\"},"                                                                     \
    "\"tool_calls\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"                                             \
    "\"tool_call_id\":{\"type\":\"string\"}}}}"

const char ag_graph_messages_schema[] =
    "{\"title\":\"MessagesState\",\"type\":\"object\",\"properties\":{\"messages\":{\"title\":\"Messages\","
    "\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/Message\"}}}," MESSAGE_DEFS "}";

const char ag_graph_empty_config_schema[] = "{\"title\":\"Configurable\",\"type\":\"object\",\"properties\":{}}";

static bool reserved(const char *name)
{
    return !strcmp(name, AG_GRAPH_START) || !strcmp(name, AG_GRAPH_END);
}

struct ag_graph_def *ag_graph_def_new(const char *graph_id)
{
    struct ag_graph_def *g = ag_calloc(1, sizeof *g);
    g->graph_id = ag_strdup(graph_id);
    return g;
}

int ag_graph__rename(struct ag_graph_def *g, const char *graph_id)
{
    if (g->compiled)
        return -1;
    ag_free(g->graph_id);
    g->graph_id = ag_strdup(graph_id);
    return 0;
}

void ag_graph_def_free(struct ag_graph_def *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nchannels; i++) {
        ag_free(g->channels[i].name);
        json_decref(g->channels[i].dflt);
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        ag_free(g->nodes[i].name);
        ag_graph_def_free(g->nodes[i].sub);
    }
    for (size_t i = 0; i < g->nedges; i++) {
        ag_free(g->edges[i].source);
        ag_free(g->edges[i].target);
    }
    for (size_t i = 0; i < g->nbranches; i++) {
        ag_free(g->branches[i].source);
        for (char **p = g->branches[i].targets; p && *p; p++)
            ag_free(*p);
        ag_free(g->branches[i].targets);
    }
    for (size_t i = 0; i < g->njoins; i++) {
        for (char **p = g->joins[i].sources; *p; p++)
            ag_free(*p);
        ag_free(g->joins[i].sources);
        ag_free(g->joins[i].target);
        ag_free(g->joins[i].key);
    }
    ag_free(g->joins);
    for (size_t i = 0; i < AG_ARRAY_LEN(g->schemas); i++)
        ag_free(g->schemas[i]);
    ag_free(g->channels);
    ag_free(g->nodes);
    ag_free(g->edges);
    ag_free(g->branches);
    ag_free(g->info_nodes);
    ag_free(g->info_edges);
    ag_free(g->info_subgraphs);
    ag_free(g->default_state_schema);
    ag_free(g->graph_id);
    ag_free(g);
}

int ag_graph_def_channel(struct ag_graph_def *g, const char *name, enum ag_graph_reducer reducer, json_t *dflt)
{
    if (ag_graph__channel(g, name) || g->compiled) {
        json_decref(dflt);
        return -1;
    }
    if (!dflt && reducer != AG_GRAPH_REPLACE)
        dflt = json_array();
    g->channels = ag_realloc(g->channels, (g->nchannels + 1) * sizeof *g->channels);
    g->channels[g->nchannels++] = (struct ag_graph_channel){ag_strdup(name), reducer, dflt};
    return 0;
}

int ag_graph_def_node(struct ag_graph_def *g, const char *name, ag_graph_node_fn fn, void *ud)
{
    if (!fn || !*name || reserved(name) || ag_graph__node(g, name) || g->compiled)
        return -1;
    g->nodes = ag_realloc(g->nodes, (g->nnodes + 1) * sizeof *g->nodes);
    g->nodes[g->nnodes++] = (struct ag_graph_node){.name = ag_strdup(name), .fn = fn, .ud = ud};
    return 0;
}

int ag_graph_def_subgraph(struct ag_graph_def *g, const char *name, struct ag_graph_def *sub)
{
    if (!sub || sub == g) return -1;
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].sub == sub) return -1;
    if (ag_graph_def_node(g, name, ag_graph__run_subgraph, NULL) < 0) return -1;
    g->nodes[g->nnodes - 1].sub = sub;
    return 0;
}

int ag_graph_def_node_retry(struct ag_graph_def *g, const char *node, const struct ag_graph_retry *policy)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (!strcmp(g->nodes[i].name, node) && policy && !g->compiled) {
            g->nodes[i].retry = *policy;
            return 0;
        }
    return -1;
}

int ag_graph_def_edge(struct ag_graph_def *g, const char *source, const char *target)
{
    if (!strcmp(target, AG_GRAPH_START) || !strcmp(source, AG_GRAPH_END) || g->compiled)
        return -1;
    g->edges = ag_realloc(g->edges, (g->nedges + 1) * sizeof *g->edges);
    g->edges[g->nedges++] = (struct ag_graph_edge){ag_strdup(source), ag_strdup(target)};
    return 0;
}

json_t *ag_graph_send(const char *node, json_t *arg)
{
    return json_pack("{s:s,s:o}", "node", node ? node : "", "arg", arg ? arg : json_null());
}

static int add_branch(struct ag_graph_def *g, const char *source, ag_graph_router_fn router, ag_graph_fanout_fn fanout,
                      void *ud, const char *const *targets)
{
    if ((!router && !fanout) || !strcmp(source, AG_GRAPH_END) || g->compiled) return -1;
    char **t = NULL;
    if (targets) {
        size_t n = 0;
        while (targets[n])
            n++;
        t = ag_calloc(n + 1, sizeof *t);
        for (size_t i = 0; i < n; i++)
            t[i] = ag_strdup(targets[i]);
    }
    g->branches = ag_realloc(g->branches, (g->nbranches + 1) * sizeof *g->branches);
    g->branches[g->nbranches++] = (struct ag_graph_branch){ag_strdup(source), router, fanout, ud, t};
    return 0;
}

int ag_graph_def_edge_join(struct ag_graph_def *g, const char *const *sources, const char *target)
{
    size_t n = 0;
    while (sources && sources[n])
        n++;
    if (!n || !target || !strcmp(target, AG_GRAPH_START) || g->compiled) return -1;
    struct ag_graph_join j = {ag_calloc(n + 1, sizeof *j.sources), ag_strdup(target), NULL};
    struct ag_buf key = {0};
    ag_buf_puts(&key, "join:");
    for (size_t i = 0; i < n; i++) {
        j.sources[i] = ag_strdup(sources[i]);
        ag_buf_printf(&key, "%s%s", i ? "+" : "", sources[i]);
    }
    ag_buf_printf(&key, ":%s", target);
    ag_buf_append(&key, "", 1);
    j.key = key.base;
    g->joins = ag_realloc(g->joins, (g->njoins + 1) * sizeof *g->joins);
    g->joins[g->njoins++] = j;
    return 0;
}

int ag_graph_def_conditional(struct ag_graph_def *g, const char *source, ag_graph_router_fn router, void *ud,
                             const char *const *targets)
{
    return router ? add_branch(g, source, router, NULL, ud, targets) : -1;
}

int ag_graph_def_conditional_fanout(struct ag_graph_def *g, const char *source, ag_graph_fanout_fn fanout, void *ud,
                                    const char *const *targets)
{
    return fanout ? add_branch(g, source, NULL, fanout, ud, targets) : -1;
}

void ag_graph_def_schemas(struct ag_graph_def *g, const char *input, const char *output, const char *state,
                          const char *config, const char *context)
{
    const char *s[5] = {input, output, state, config, context};
    for (size_t i = 0; i < 5; i++) {
        if (!s[i])
            continue;
        ag_free(g->schemas[i]);
        g->schemas[i] = ag_strdup(s[i]);
    }
}

void ag_graph_def_config_check(struct ag_graph_def *g, ag_graph_config_check_fn fn)
{
    g->config_check = fn;
}

int ag_graph_def_check_config(const struct ag_graph_def *g, const json_t *configurable, const char **key, char *msg,
                              size_t msglen)
{
    if (!g->config_check)
        return 0;
    return g->config_check(json_is_object(configurable) ? configurable : NULL, key, msg, msglen);
}

static bool known_end(const struct ag_graph_def *g, const char *name, bool as_source)
{
    if (ag_graph__node(g, name))
        return true;
    return as_source ? !strcmp(name, AG_GRAPH_START) : !strcmp(name, AG_GRAPH_END);
}

/* A state schema from the channels when the author gave none: MessagesAnnotation's when the state is
 * exactly one messages channel, else an object naming each channel. */
static char *default_state_schema(const struct ag_graph_def *g)
{
    if (g->nchannels == 1 && g->channels[0].reducer == AG_GRAPH_MESSAGES && !strcmp(g->channels[0].name, "messages"))
        return ag_strdup(ag_graph_messages_schema);
    json_t *props = json_object();
    for (size_t i = 0; i < g->nchannels; i++)
        json_object_set_new(props, g->channels[i].name,
                            g->channels[i].reducer == AG_GRAPH_REPLACE ? json_object()
                                                                       : json_pack("{s:s}", "type", "array"));
    json_t *doc = json_pack("{s:s,s:s,s:o}", "title", "State", "type", "object", "properties", props);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

int ag_graph_def_compile(struct ag_graph_def *g, char *err, size_t errlen)
{
    if (g->compiled)
        return 0;
    for (size_t i = 0; i < g->nnodes; i++) {
        char why[256];
        if (g->nodes[i].sub && ag_graph_def_compile(g->nodes[i].sub, why, sizeof why) < 0) {
            snprintf(err, errlen, "graph %s: subgraph %s: %s", g->graph_id, g->nodes[i].name, why);
            return -1;
        }
    }
    bool from_start = false;
    for (size_t i = 0; i < g->nedges; i++) {
        const struct ag_graph_edge *e = &g->edges[i];
        if (!known_end(g, e->source, true) || !known_end(g, e->target, false)) {
            snprintf(err, errlen, "graph %s: edge %s -> %s names an unknown node", g->graph_id, e->source, e->target);
            return -1;
        }
        from_start |= !strcmp(e->source, AG_GRAPH_START);
    }
    for (size_t i = 0; i < g->nbranches; i++) {
        const struct ag_graph_branch *b = &g->branches[i];
        if (!known_end(g, b->source, true)) {
            snprintf(err, errlen, "graph %s: conditional edge out of unknown node %s", g->graph_id, b->source);
            return -1;
        }
        for (char **p = b->targets; p && *p; p++)
            if (!known_end(g, *p, false)) {
                snprintf(err, errlen, "graph %s: conditional edge %s -> unknown node %s", g->graph_id, b->source, *p);
                return -1;
            }
        from_start |= !strcmp(b->source, AG_GRAPH_START);
    }
    for (size_t i = 0; i < g->njoins; i++) {
        const struct ag_graph_join *j = &g->joins[i];
        for (char **p = j->sources; *p; p++)
            if (!ag_graph__node(g, *p)) {
                snprintf(err, errlen, "graph %s: edge from %s to %s names an unknown node", g->graph_id, j->key + 5,
                         j->target);
                return -1;
            }
        if (!known_end(g, j->target, false)) {
            snprintf(err, errlen, "graph %s: edge %s names an unknown node", g->graph_id, j->key);
            return -1;
        }
    }
    if (!from_start) {
        snprintf(err, errlen, "graph %s: no edge out of %s", g->graph_id, AG_GRAPH_START);
        return -1;
    }
    if (ag_uuid5(AG_GRAPH_ASSISTANT_NS, g->graph_id, strlen(g->graph_id), g->assistant_id) < 0) {
        snprintf(err, errlen, "graph %s: cannot derive the assistant id", g->graph_id);
        return -1;
    }
    /* The drawing: START, the nodes in definition order, END; fixed edges, then conditional ones. */
    g->info_nodes = ag_calloc(g->nnodes + 2, sizeof *g->info_nodes);
    g->info_nodes[0].id = AG_GRAPH_START;
    for (size_t i = 0; i < g->nnodes; i++)
        g->info_nodes[i + 1].id = g->nodes[i].name;
    g->info_nodes[g->nnodes + 1].id = AG_GRAPH_END;
    size_t ne = g->nedges;
    for (size_t i = 0; i < g->njoins; i++)
        for (char **p = g->joins[i].sources; *p; p++)
            ne++;
    for (size_t i = 0; i < g->nbranches; i++) {
        size_t n = 0;
        for (char **p = g->branches[i].targets; p && *p; p++)
            n++;
        ne += g->branches[i].targets ? n : g->nnodes + 1;
    }
    g->info_edges = ag_calloc(ne ? ne : 1, sizeof *g->info_edges);
    size_t k = 0;
    for (size_t i = 0; i < g->nedges; i++)
        g->info_edges[k++] = (struct ag_graph_edge_info){g->edges[i].source, g->edges[i].target, false};
    for (size_t i = 0; i < g->njoins; i++)
        for (char **p = g->joins[i].sources; *p; p++)
            g->info_edges[k++] = (struct ag_graph_edge_info){*p, g->joins[i].target, false};
    for (size_t i = 0; i < g->nbranches; i++) {
        const struct ag_graph_branch *b = &g->branches[i];
        if (b->targets) {
            for (char **p = b->targets; *p; p++)
                g->info_edges[k++] = (struct ag_graph_edge_info){b->source, *p, true};
        } else {
            for (size_t j = 0; j < g->nnodes; j++)
                g->info_edges[k++] = (struct ag_graph_edge_info){b->source, g->nodes[j].name, true};
            g->info_edges[k++] = (struct ag_graph_edge_info){b->source, AG_GRAPH_END, true};
        }
    }
    size_t nsub = 0;
    g->info_subgraphs = ag_calloc(g->nnodes + 1, sizeof *g->info_subgraphs);
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].sub)
            g->info_subgraphs[nsub++] = (struct ag_graph_subgraph_info){g->nodes[i].name, &g->nodes[i].sub->info};
    g->default_state_schema = default_state_schema(g);
    const char *state = g->schemas[2] ? g->schemas[2] : g->default_state_schema;
    g->info = (struct ag_graph_info){
        .graph_id = g->graph_id,
        .assistant_id = g->assistant_id,
        .input_schema = g->schemas[0] ? g->schemas[0] : state,
        .output_schema = g->schemas[1] ? g->schemas[1] : state,
        .state_schema = state,
        .config_schema = g->schemas[3] ? g->schemas[3] : ag_graph_empty_config_schema,
        .context_schema = g->schemas[4] ? g->schemas[4] : ag_graph_empty_config_schema,
        .nodes = g->info_nodes,
        .nnodes = g->nnodes + 2,
        .edges = g->info_edges,
        .nedges = k,
        .def = g,
        .subgraphs = g->info_subgraphs,
        .nsubgraphs = nsub,
    };
    g->compiled = true;
    return 0;
}

const char *ag_graph_def_id(const struct ag_graph_def *g)
{
    return g->graph_id;
}

const struct ag_graph_info *ag_graph_def_info(const struct ag_graph_def *g)
{
    return g->compiled ? &g->info : NULL;
}

/* --- state helpers --- */

const struct ag_graph_node *ag_graph__node(const struct ag_graph_def *g, const char *name)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (!strcmp(g->nodes[i].name, name))
            return &g->nodes[i];
    return NULL;
}

const struct ag_graph_channel *ag_graph__channel(const struct ag_graph_def *g, const char *name)
{
    for (size_t i = 0; i < g->nchannels; i++)
        if (!strcmp(g->channels[i].name, name))
            return &g->channels[i];
    return NULL;
}

json_t *ag_graph__defaults(const struct ag_graph_def *g)
{
    json_t *v = json_object();
    for (size_t i = 0; i < g->nchannels; i++)
        if (g->channels[i].dflt) /* a copy: the definition is shared by every shard, its refcounts must not move */
            json_object_set_new(v, g->channels[i].name, json_deep_copy(g->channels[i].dflt));
    return v;
}

json_t *ag_graph__normalize(const struct ag_graph_def *g, const json_t *update, char *err, size_t errlen)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)update, k, v)
    {
        const struct ag_graph_channel *c = ag_graph__channel(g, k);
        if (c && c->reducer == AG_GRAPH_MESSAGES) {
            json_t *msgs = ag_msg_coerce_list(v, err, errlen);
            if (!msgs) {
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, k, msgs);
        } else {
            json_object_set(out, k, v);
        }
    }
    return out;
}

json_t *ag_graph__apply(const struct ag_graph_def *g, const json_t *state, json_t *const *updates, size_t n,
                        char *err, size_t errlen)
{
    json_t *out = json_copy((json_t *)state);
    bool *written = ag_calloc(g->nchannels + 1, sizeof *written);
    for (size_t u = 0; u < n; u++) {
        const char *k;
        json_t *v;
        json_object_foreach(updates[u], k, v)
        {
            const struct ag_graph_channel *c = ag_graph__channel(g, k);
            if (!c)
                continue;
            size_t ci = (size_t)(c - g->channels);
            json_t *cur = json_object_get(out, k), *nv = NULL;
            switch (c->reducer) {
            case AG_GRAPH_REPLACE:
                if (written[ci]) {
                    snprintf(err, errlen,
                             "Invalid update for channel \"%s\": LastValue can only receive one value per step.", k);
                    goto fail;
                }
                nv = json_incref(v);
                break;
            case AG_GRAPH_APPEND:
                nv = json_is_array(cur) ? json_copy(cur) : json_array();
                if (json_is_array(v))
                    json_array_extend(nv, v);
                else
                    json_array_append(nv, v);
                break;
            case AG_GRAPH_MESSAGES:
                nv = ag_msg_merge(json_is_array(cur) ? cur : NULL, v, err, errlen);
                if (!nv)
                    goto fail;
                break;
            }
            written[ci] = true;
            json_object_set_new(out, k, nv);
        }
    }
    ag_free(written);
    return out;
fail:
    ag_free(written);
    json_decref(out);
    return NULL;
}

/* One goto target: a node name (END: nothing) or a Send packet. */
static int add_goto_one(const struct ag_graph_def *g, const json_t *v, const char *what, json_t *set, json_t *sends,
                        char *err, size_t errlen)
{
    if (json_is_string(v)) {
        const char *to = json_string_value(v);
        if (!strcmp(to, AG_GRAPH_END)) return 0;
        if (!ag_graph__node(g, to)) {
            snprintf(err, errlen, "%s returned unknown node '%.100s'", what, to);
            return -1;
        }
        json_object_set_new(set, to, json_true());
        return 0;
    }
    const char *node = json_string_value(json_object_get(v, "node"));
    if (!json_is_object(v) || !node || !json_object_get(v, "arg")) {
        snprintf(err, errlen, "%s returned something that is neither a node name nor a Send packet", what);
        return -1;
    }
    if (!ag_graph__node(g, node)) {
        snprintf(err, errlen, "%s sent to unknown node '%.100s'", what, node);
        return -1;
    }
    if (!sends) {
        snprintf(err, errlen, "%s returned a Send packet where none can go", what);
        return -1;
    }
    json_array_append_new(sends, json_pack("{s:s,s:O}", "node", node, "arg", json_object_get(v, "arg")));
    return 0;
}

int ag_graph__add_goto(const struct ag_graph_def *g, const json_t *go, const char *what, json_t *set, json_t *sends,
                       char *err, size_t errlen)
{
    if (!go || json_is_null(go)) return 0;
    if (!json_is_array(go)) return add_goto_one(g, go, what, set, sends, err, errlen);
    size_t i;
    json_t *v;
    json_array_foreach(go, i, v)
    {
        if (add_goto_one(g, v, what, set, sends, err, errlen) < 0) return -1;
    }
    return 0;
}

int ag_graph__successors(const struct ag_graph_def *g, const char *source, const json_t *state, const json_t *config,
                         json_t *set, json_t *sends, char *err, size_t errlen)
{
    for (size_t i = 0; i < g->nedges; i++)
        if (!strcmp(g->edges[i].source, source) && strcmp(g->edges[i].target, AG_GRAPH_END))
            json_object_set_new(set, g->edges[i].target, json_true());
    for (size_t i = 0; i < g->nbranches; i++) {
        const struct ag_graph_branch *b = &g->branches[i];
        if (strcmp(b->source, source))
            continue;
        if (b->fanout) {
            json_t *go = b->fanout(state, config, b->ud);
            char what[160];
            snprintf(what, sizeof what, "Branch condition of node '%.100s'", source);
            int rc = ag_graph__add_goto(g, go, what, set, sends, err, errlen);
            json_decref(go);
            if (rc < 0) return -1;
            continue;
        }
        const char *to = b->fn(state, config, b->ud);
        if (!to || !strcmp(to, AG_GRAPH_END))
            continue;
        if (!ag_graph__node(g, to)) {
            snprintf(err, errlen, "Branch condition of node '%s' returned unknown node '%.100s'", source, to);
            return -1;
        }
        json_object_set_new(set, to, json_true());
    }
    return 0;
}

static bool in_names(const json_t *names, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)names, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), name)) return true;
    }
    return false;
}

json_t *ag_graph__barriers_step(const struct ag_graph_def *g, const json_t *barriers, const json_t *ran, json_t *set)
{
    if (!g->njoins) return NULL;
    json_t *out = json_is_object(barriers) ? json_deep_copy(barriers) : json_object();
    for (size_t i = 0; i < g->njoins; i++) {
        const struct ag_graph_join *j = &g->joins[i];
        json_t *seen = json_object_get(out, j->key);
        bool all = true;
        for (char **p = j->sources; *p; p++) {
            bool had = in_names(seen, *p);
            if (!had && in_names(ran, *p)) {
                if (!seen) json_object_set_new(out, j->key, seen = json_array());
                json_array_append_new(seen, json_string(*p));
                had = true;
            }
            all &= had;
        }
        if (all) {
            if (strcmp(j->target, AG_GRAPH_END)) json_object_set_new(set, j->target, json_true());
            json_object_del(out, j->key);
        }
    }
    if (!json_object_size(out)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *ag_graph__sorted_names(const json_t *set)
{
    size_t n = json_object_size(set), i = 0;
    const char **names = ag_calloc(n + 1, sizeof *names);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)set, k, v)
    {
        names[i++] = k;
    }
    qsort(names, n, sizeof *names, cmp_str);
    json_t *out = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(out, json_string(names[i]));
    ag_free(names);
    return out;
}
