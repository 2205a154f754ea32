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
    if (ev->ns) json_object_set_new(e, "ns", json_string(ev->ns));
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

/* A store operation of the fake store: answered from a timer, so never from inside store_start. */
struct fake_op {
    struct ag_timer tm;
    struct rec *r;
    json_t *result; /* what it answers */
    ag_graph_store_done_fn done;
    void *cookie;
};

static void fake_op_fire(struct ag_timer *tm)
{
    struct fake_op *op = AG_CONTAINER_OF(tm, struct fake_op, tm);
    op->done(op->cookie, op->result, NULL);
    json_decref(op->result);
    ag_free(op);
}

static char *store_key(const json_t *ns, const char *key)
{
    char buf[512] = "";
    size_t n = 0, i;
    json_t *l;
    json_array_foreach((json_t *)ns, i, l)
    {
        n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, "%s%s", i ? "." : "", json_string_value(l));
    }
    snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, "/%s", key ? key : "");
    return ag_strdup(buf);
}

static void *fake_store_start(void *ud, const struct ag_graph_store_req *req, ag_graph_store_done_fn done, void *cookie,
                              char *err, size_t errlen)
{
    struct rec *r = ud;
    if (r->store_down) {
        snprintf(err, errlen, "fake store down");
        return NULL;
    }
    r->store_ops++;
    if (!r->store) r->store = json_object();
    struct fake_op *op = ag_calloc(1, sizeof *op);
    op->r = r;
    op->done = done;
    op->cookie = cookie;
    char *k = store_key(req->ns, req->key);
    switch (req->kind) {
    case AG_GSTORE_GET: {
        json_t *item = json_object_get(r->store, k);
        op->result = item ? json_incref(item) : json_null();
        break;
    }
    case AG_GSTORE_PUT:
        json_object_set_new(r->store, k,
                            json_pack("{s:O,s:s,s:O}", "namespace", req->ns, "key", req->key, "value", req->value));
        op->result = json_null();
        break;
    case AG_GSTORE_DELETE:
        json_object_del(r->store, k);
        op->result = json_null();
        break;
    case AG_GSTORE_SEARCH: {
        /* prefix match on the joined labels; no filter */
        char *prefix = store_key(req->ns, NULL);
        size_t plen = strlen(prefix) - 1; /* without the '/' */
        op->result = json_array();
        const char *key;
        json_t *item;
        json_object_foreach(r->store, key, item)
        {
            if (!strncmp(key, prefix, plen)) json_array_append(op->result, item);
        }
        ag_free(prefix);
        break;
    }
    }
    ag_free(k);
    ag_timer_init(&op->tm, fake_op_fire);
    ag_timer_arm(&r->heap, &op->tm, r->now);
    return op;
}

static void fake_store_cancel(void *ud, void *handle)
{
    struct rec *r = ud;
    struct fake_op *op = handle;
    ag_timer_cancel(&r->heap, &op->tm);
    json_decref(op->result);
    ag_free(op);
}

struct ag_graph_host host_of(struct rec *r)
{
    return (struct ag_graph_host){.ud = r,
                                  .timers = &r->heap,
                                  .now_ns = fake_now,
                                  .on_event = on_event,
                                  .on_done = on_done,
                                  .shard = r->shard,
                                  .hold = hold,
                                  .store_start = fake_store_start,
                                  .store_cancel = fake_store_cancel};
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
    json_decref(r->store);
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
