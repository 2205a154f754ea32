/* The graph engine test's recording host (graph_harness.h). */
#include "graph_harness.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

static const char *const kind_names[] = {"checkpoint", "values",     "updates",    "custom",
                                         "message",    "task_start", "task_result"};

static uint64_t fake_now(void *ud)
{
    return ((struct rec *)ud)->now;
}

static void on_event(void *ud, const struct ag_graph_event *ev)
{
    struct rec *r = ud;
    json_t *e = json_pack("{s:s,s:i,s:O}", "kind", kind_names[ev->kind], "step", ev->step, "data", ev->data);
    if (ev->node) json_object_set_new(e, "node", json_string(ev->node));
    if (ev->meta) json_object_set(e, "meta", ev->meta);
    json_array_append_new(r->events, e);
    if (ev->kind == AG_GEV_CUSTOM && r->cancel_on_custom && r->run) {
        r->cancel_on_custom = false;
        ag_graph_run_cancel(r->run);
    }
}

static void on_done(void *ud, enum ag_graph_outcome o, const json_t *values, const json_t *interrupts,
                    const char *error)
{
    struct rec *r = ud;
    r->done++;
    r->outcome = o;
    json_decref(r->values);
    json_decref(r->interrupts);
    r->values = json_incref((json_t *)values);
    r->interrupts = json_incref((json_t *)interrupts);
    ag_free(r->error);
    r->error = error ? ag_strdup(error) : NULL;
}

static bool hold(void *ud)
{
    struct rec *r = ud;
    r->holds_asked++;
    return r->hold;
}

struct ag_graph_host host_of(struct rec *r)
{
    return (struct ag_graph_host){r, &r->heap, fake_now, on_event, on_done, r->shard, NULL, hold};
}

void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    r->events = json_array();
}

void rec_reset(struct rec *r)
{
    ag_graph_run_free(r->run);
    r->run = NULL;
    json_array_clear(r->events);
    json_decref(r->values);
    json_decref(r->interrupts);
    ag_free(r->error);
    r->values = r->interrupts = NULL;
    r->error = NULL;
    r->done = 0;
}

void rec_free(struct rec *r)
{
    rec_reset(r);
    json_decref(r->events);
    ag_timer_heap_free(&r->heap);
}

/* Fires timers at their deadlines until the run ended or nothing is armed. */
void run_timers(struct rec *r)
{
    while (!r->done && r->heap.len) {
        r->now = ag_timer_next(&r->heap);
        size_t before = json_array_size(r->events);
        if (r->shard) r->shard->work_left = r->turn_work;
        ag_timer_run(&r->heap, r->now, 64, r->shard ? &r->shard->work_left : NULL);
        size_t n = json_array_size(r->events) - before;
        if (n > r->max_turn_events) r->max_turn_events = (uint32_t)n;
        r->turns++;
    }
}

json_t *parse(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    if (!v) fprintf(stderr, "bad test JSON: %s: %s\n", s, e.text);
    return v;
}

struct ag_graph_run *start(struct rec *r, const struct ag_graph_def *g, struct start_opts o, char *err, size_t errlen)
{
    struct ag_graph_host h = host_of(r);
    json_t *input = o.input ? parse(o.input) : NULL, *command = o.command ? parse(o.command) : NULL;
    json_t *config = o.config ? parse(o.config) : NULL;
    json_t *ib = o.ibefore ? parse(o.ibefore) : NULL, *ia = o.iafter ? parse(o.iafter) : NULL;
    json_t *meta = json_pack("{s:s,s:s}", "graph_id", ag_graph_def_id(g), "run_id", "run-1");
    struct ag_graph_run_params p = {
        .graph = g,
        .thread_id = "thread-1",
        .run_id = "run-1",
        .config = config,
        .metadata = meta,
        .input = input,
        .command = command,
        .from = o.from,
        .interrupt_before = ib,
        .interrupt_after = ia,
        .recursion_limit = o.limit,
    };
    struct ag_graph_run *run = ag_graph_run_start(&h, &p, err, errlen);
    r->run = run;
    json_decref(input);
    json_decref(command);
    json_decref(config);
    json_decref(ib);
    json_decref(ia);
    json_decref(meta);
    return run;
}

/* The kinds of the recorded events, space-separated. */
const char *kinds(const struct rec *r, char *out, size_t n)
{
    out[0] = 0;
    size_t i;
    json_t *e;
    json_array_foreach(r->events, i, e)
    {
        if (out[0]) strncat(out, " ", n - strlen(out) - 1);
        strncat(out, json_string_value(json_object_get(e, "kind")), n - strlen(out) - 1);
    }
    return out;
}

/* The i-th event of kind (0-based), or NULL. */
json_t *nth(const struct rec *r, const char *kind, int i)
{
    size_t k;
    json_t *e;
    json_array_foreach(r->events, k, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "kind")), kind) && i-- == 0) return json_object_get(e, "data");
    }
    return NULL;
}

int count(const struct rec *r, const char *kind)
{
    int n = 0;
    while (nth(r, kind, n))
        n++;
    return n;
}

/* The last checkpoint emitted (a new reference, for continuing the thread). */
json_t *latest(const struct rec *r)
{
    json_t *last = NULL;
    for (int i = 0; nth(r, "checkpoint", i); i++)
        last = nth(r, "checkpoint", i);
    return json_incref(last);
}

const char *s_of(const json_t *v, const char *key)
{
    return json_string_value(json_object_get(v, key));
}

json_t *last_message(const json_t *values)
{
    const json_t *m = json_object_get(values, "messages");
    return json_array_get(m, json_array_size(m) - 1);
}

bool is_hex32(const char *s)
{
    if (!s || strlen(s) != 32) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}
