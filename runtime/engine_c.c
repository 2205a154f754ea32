/* The C engine behind the runtime's engine table (graph/engine.h, whose runs live on the shard), and the
 * list of engines graphs are looked up in. */
#include "runtime/engine.h"

#include <stdio.h>

#include "core/alloc.h"
#include "core/common.h"
#include "core/shard.h"
#include "graph/registry.h"
#include "runtime/graph_store.h"

/* The engine's run and the host it reports to (graph/engine.h wants its own host shape). */
struct c_run {
    struct ag_graph_run *exec;
    struct ag_engine_host host;
    char *owner; /* the run's owner: its nodes' store */
};

static uint64_t host_now(void *ud)
{
    struct c_run *c = ud;
    return c->host.shard->now_ns;
}

static void host_event(void *ud, const struct ag_graph_event *ev)
{
    struct c_run *c = ud;
    c->host.on_event(c->host.ud, ev);
}

static void host_done(void *ud, enum ag_graph_outcome outcome, const json_t *values, const json_t *interrupts,
                      const char *error)
{
    struct c_run *c = ud;
    (void)values;
    (void)interrupts;
    c->host.on_done(c->host.ud, outcome, error);
}

static bool host_behind(void *ud)
{
    struct c_run *c = ud;
    return c->host.behind && c->host.behind(c->host.ud);
}

static bool host_hold(void *ud)
{
    struct c_run *c = ud;
    return c->host.hold && c->host.hold(c->host.ud);
}

static void *host_store_start(void *ud, const struct ag_graph_store_req *req, ag_graph_store_done_fn done, void *cookie,
                              char *err, size_t errlen)
{
    struct c_run *c = ud;
    if (!c->owner) {
        snprintf(err, errlen, "no store: the run has no owner");
        return NULL;
    }
    return ag_graph_store_start(c->host.shard, c->owner, req, done, cookie, err, errlen);
}

static void host_store_cancel(void *ud, void *op)
{
    (void)ud;
    ag_graph_store_cancel(op);
}

static struct ag_engine_run *c_start(const struct ag_engine_graph *g, const struct ag_engine_host *h,
                                     const struct ag_engine_params *p, char *err, size_t errlen)
{
    struct c_run *c = ag_calloc(1, sizeof *c);
    c->host = *h;
    c->owner = p->owner ? ag_strdup(p->owner) : NULL;
    struct ag_graph_host gh = {
        .ud = c,
        .timers = &h->shard->timers,
        .now_ns = host_now,
        .on_event = host_event,
        .on_done = host_done,
        .shard = h->shard,
        .behind = host_behind,
        .hold = host_hold,
        .store_start = host_store_start,
        .store_cancel = host_store_cancel,
    };
    struct ag_graph_run_params gp = {
        .graph = g->impl,
        .thread_id = p->thread_id,
        .run_id = p->run_id,
        .config = p->config,
        .context = p->context,
        .metadata = p->metadata,
        .input = p->input,
        .command = p->command,
        .from = p->from,
        .interrupt_before = p->interrupt_before,
        .interrupt_after = p->interrupt_after,
        .recursion_limit = p->recursion_limit,
    };
    /* A run that never waits ends inside this call (on_done included): c stays valid, its owner frees it. */
    c->exec = ag_graph_run_start(&gh, &gp, err, errlen);
    if (!c->exec) {
        ag_free(c->owner);
        ag_free(c);
        return NULL;
    }
    return (struct ag_engine_run *)c;
}

static void c_cancel(struct ag_engine_run *r)
{
    ag_graph_run_cancel(((struct c_run *)r)->exec);
}

static void c_proceed(struct ag_engine_run *r)
{
    ag_graph_run_proceed(((struct c_run *)r)->exec);
}

static void c_free(struct ag_engine_run *r)
{
    struct c_run *c = (struct c_run *)r;
    ag_graph_run_free(c->exec);
    ag_free(c->owner);
    ag_free(c);
}

static bool c_find(const struct ag_engine *self, const char *graph_id, struct ag_engine_graph *out)
{
    const struct ag_graph_def *def = ag_graph_def_find(graph_id);
    if (!def)
        return false;
    *out = (struct ag_engine_graph){.engine = self, .impl = def};
    return true;
}

const struct ag_engine ag_engine_c = {
    .name = "c", .find = c_find, .start = c_start, .cancel = c_cancel, .proceed = c_proceed, .free = c_free};

/* Engines added besides the C engine; written before the shards start, then only read. */
static const struct ag_engine *engines[AG_ENGINE_MAX];
static unsigned nengines;

void ag_engine_add(const struct ag_engine *e)
{
    AG_BUG_ON(nengines == AG_ENGINE_MAX);
    engines[nengines++] = e;
}

bool ag_engine_graph_find(const char *graph_id, struct ag_engine_graph *out)
{
    for (unsigned i = nengines; i-- > 0;)
        if (engines[i]->find(engines[i], graph_id, out))
            return true;
    return ag_engine_c.find(&ag_engine_c, graph_id, out);
}
