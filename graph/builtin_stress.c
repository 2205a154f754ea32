#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/uuid.h"
#include "graph/builtin.h"
#include "graph/graph.h"

#define STRESS_CONFIGURABLE                                                                                            \
    "{\"title\":\"Configurable\",\"type\":\"object\",\"properties\":{"                                                \
    "\"tokens\":{\"title\":\"Tokens\",\"description\":\"Number of tokens to emit.\",\"type\":\"integer\","          \
    "\"minimum\":0,\"maximum\":" STRESS_STR(AG_GRAPH_STRESS_TOKENS_MAX) ",\"default\":10},"                                \
    "\"mode\":{\"title\":\"Mode\",\"description\":\"custom: stream_mode custom events; messages: message chunks; "   \
    "both.\",\"type\":\"string\",\"enum\":[\"custom\",\"messages\",\"both\"],\"default\":\"both\"},"                   \
    "\"delay_ms\":{\"title\":\"Delay Ms\",\"description\":\"Sleep between tokens, in milliseconds.\","                \
    "\"type\":\"integer\",\"minimum\":0,\"default\":0}}}"

#define STRESS_STR_(x) #x
#define STRESS_STR(x) STRESS_STR_(x)

enum phase { P_CUSTOM, P_MESSAGES, P_FINAL };

struct stress {
    int n, delay;
    bool custom, messages;
    enum phase phase;
    int i;
    char chunk_id[41]; /* "run-<uuid>": the fake model call's id, shared by its chunks and its message */
    char *acc;
    size_t len, cap;
};

static void stress_free(void *ud)
{
    struct stress *s = ud;
    ag_free(s->acc);
    ag_free(s);
}

/* JS `Math.max(0, Number(v ?? dflt) | 0)`, as a double (not yet bounded). */
static double js_number(const json_t *v, int dflt)
{
    double d;
    if (!v || json_is_null(v))
        d = dflt;
    else if (json_is_number(v))
        d = json_number_value(v);
    else if (json_is_boolean(v))
        d = json_is_true(v);
    else if (json_is_string(v)) {
        const char *p = json_string_value(v);
        char *end;
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        d = *p ? strtod(p, &end) : 0;
        if (*p && (end == p || strspn(end, " \t\n") != strlen(end)))
            d = 0;
    } else
        d = 0;
    if (!isfinite(d) || d < 0)
        return 0;
    return d;
}

static int js_count(const json_t *v, int dflt)
{
    double d = js_number(v, dflt);
    return d > 1e9 ? 1000000000 : (int)d;
}

/* tokens beyond AG_GRAPH_STRESS_TOKENS_MAX: a run that size is abuse, not a load test (the messages mode
 * alone streams O(tokens^2) bytes, each chunk repeating what came before). */
static int stress_check(const json_t *configurable, const char **key, char *msg, size_t msglen)
{
    double n = js_number(json_object_get(configurable, "tokens"), 10);
    if (n > AG_GRAPH_STRESS_TOKENS_MAX) {
        *key = "tokens";
        snprintf(msg, msglen, "Input should be less than or equal to %d", AG_GRAPH_STRESS_TOKENS_MAX);
        return -1;
    }
    return 0;
}

static void acc_add(struct stress *s, const char *piece)
{
    size_t n = strlen(piece);
    if (s->len + n + 1 > s->cap) {
        /* Geometric growth: the final message of a big run is built in O(tokens), not O(tokens^2). */
        s->cap = AG_MAX(s->cap * 2, s->len + n + 1);
        s->acc = ag_realloc(s->acc, s->cap);
    }
    memcpy(s->acc + s->len, piece, n + 1);
    s->len += n;
}

static json_t *chunk(const char *content, const char *id)
{
    return json_pack("{s:s,s:[],s:{},s:[],s:[],s:{},s:s,s:s}", "content", content, "tool_calls", "additional_kwargs",
                     "invalid_tool_calls", "tool_call_chunks", "response_metadata", "id", id, "type", "ai");
}

static void new_chunk_id(struct stress *s)
{
    char u[37];
    ag_uuid4(u);
    snprintf(s->chunk_id, sizeof s->chunk_id, "run-%s", u);
}

static void step(struct ag_graph_task *t)
{
    struct stress *s = ag_graph_task_ud(t);
    char tok[24];
    for (;;) {
        if (s->phase == P_CUSTOM) {
            if (s->i >= s->n) {
                s->phase = s->messages ? P_MESSAGES : P_FINAL;
                s->i = 0;
                if (s->phase == P_MESSAGES && !s->delay)
                    new_chunk_id(s);
                continue;
            }
            snprintf(tok, sizeof tok, "t%d", s->i);
            ag_graph_task_custom(t, json_pack("{s:s,s:i}", "token", tok, "index", s->i));
            s->i++;
        } else if (s->phase == P_MESSAGES) {
            if (s->i >= s->n) {
                /* One model call (no delay): its message carries the chunks' id. One call per token (delay):
                 * a new AI message with what they said. */
                json_t *m = json_pack("{s:s,s:s}", "type", "ai", "content", s->acc ? s->acc : "");
                if (!s->delay) {
                    json_object_set_new(m, "id", json_string(s->chunk_id));
                    json_object_set_new(m, "tool_call_chunks", json_array());
                }
                ag_graph_task_finish(t, json_pack("{s:[o]}", "messages", m));
                return;
            }
            snprintf(tok, sizeof tok, s->i ? " t%d" : "t%d", s->i);
            if (s->delay)
                new_chunk_id(s);
            ag_graph_task_message_chunk(t, chunk(tok, s->chunk_id));
            acc_add(s, tok);
            s->i++;
        } else {
            for (int i = 0; i < s->n; i++) {
                snprintf(tok, sizeof tok, i ? " t%d" : "t%d", i);
                acc_add(s, tok);
            }
            ag_graph_task_finish(t, json_pack("{s:[{s:s,s:s}]}", "messages", "type", "ai", "content",
                                              s->acc ? s->acc : ""));
            return;
        }
        if (s->delay) {
            ag_graph_task_sleep(t, (uint64_t)s->delay, step);
            return;
        }
        /* Without a delay: let the loop go on once this turn's run work is spent or a reader is behind. */
        if (ag_graph_task_should_yield(t)) {
            ag_graph_task_yield(t, step);
            return;
        }
    }
}

static void emit(struct ag_graph_task *t)
{
    /* The API checks the request's config; an assistant's own config reaches only the node. */
    const char *key = NULL;
    char msg[128];
    if (stress_check(json_object_get(ag_graph_task_config(t), "configurable"), &key, msg, sizeof msg) < 0) {
        ag_graph_task_fail(t, "config.configurable.%s: %s", key, msg);
        return;
    }
    struct stress *s = ag_calloc(1, sizeof *s);
    s->n = js_count(ag_graph_task_configurable(t, "tokens"), 10);
    s->delay = js_count(ag_graph_task_configurable(t, "delay_ms"), 0);
    const json_t *mode = ag_graph_task_configurable(t, "mode");
    const char *m = !mode || json_is_null(mode) ? "both" : json_is_string(mode) ? json_string_value(mode) : "";
    s->custom = !strcmp(m, "custom") || !strcmp(m, "both");
    s->messages = !strcmp(m, "messages") || !strcmp(m, "both");
    s->phase = P_CUSTOM;
    ag_graph_task_set_ud(t, s, stress_free);
    if (!s->custom)
        s->i = s->n;
    step(t);
}

struct ag_graph_def *ag_graph_builtin_stress(void)
{
    struct ag_graph_def *g = ag_graph_def_new("stress");
    ag_graph_def_channel(g, "messages", AG_GRAPH_MESSAGES, NULL);
    ag_graph_def_node(g, "emit", emit, NULL);
    ag_graph_def_edge(g, AG_GRAPH_START, "emit");
    ag_graph_def_edge(g, "emit", AG_GRAPH_END);
    ag_graph_def_schemas(g, ag_graph_messages_schema, ag_graph_messages_schema, ag_graph_messages_schema,
                         STRESS_CONFIGURABLE, STRESS_CONFIGURABLE);
    ag_graph_def_config_check(g, stress_check);
    return g;
}
