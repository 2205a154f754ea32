#include "protocol/agent/system.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/shard.h"
#include "core/stats.h"
#include "persist/migrate.h"
#include "persist/pg.h"
#include "protocol/http.h"
#include "protocol/jsonw.h"

int ag_sys_ok(struct ag_req *r)
{
    ag_http_json(r, 200, AG_STRLIT("{\"ok\":true}"));
    return AG_OK;
}

int ag_sys_live(struct ag_req *r)
{
    ag_http_json(r, 200, AG_STRLIT("{\"status\":\"alive\"}"));
    return AG_OK;
}

/* Why the database cannot be used now, or NULL when it can. */
static const char *db_problem(struct ag_shard *s)
{
    if (!ag_pg_configured(s))
        return "database not configured (set DATABASE_URL)";
    if (!ag_migrate_ready())
        return "database not reachable or schema not migrated yet";
    if (!ag_pg_up(s))
        return "no database connection";
    return NULL;
}

int ag_sys_ready(struct ag_req *r)
{
    struct ag_shard *s = r->shard;
    const char *why = db_problem(s);
    if (s->draining || atomic_load(&s->rt->drain_requested)) {
        ag_http_error(r, 503, "Service not ready - shutting down");
    } else if (why) {
        char msg[160];
        snprintf(msg, sizeof msg, "Service not ready - %s", why);
        ag_http_add_header(r, "retry-after", "1");
        ag_http_error(r, 503, msg);
    } else {
        ag_http_json(r, 200, AG_STRLIT("{\"status\":\"ready\"}"));
    }
    return AG_OK;
}

struct health {
    struct ag_pg_query q;
    struct ag_req *r;
};

static void health_unhealthy(struct ag_req *r, const char *why)
{
    struct ag_buf b = {0};
    struct ag_jw w;
    ag_jw_init(&w, &b);
    ag_jw_obj(&w);
    ag_jw_key(&w, "error");
    ag_jw_str(&w, "service_unavailable");
    ag_jw_key(&w, "message");
    ag_jw_str(&w, "Service unhealthy");
    ag_jw_key(&w, "details");
    ag_jw_obj(&w);
    ag_jw_key(&w, "database");
    ag_jw_str(&w, why);
    ag_jw_end(&w);
    ag_jw_end(&w);
    ag_http_add_header(r, "retry-after", "1");
    ag_http_json(r, 503, b.base, b.len);
    ag_buf_free(&b);
}

static void on_health(struct ag_pg_query *q, PGresult *res)
{
    struct health *h = AG_CONTAINER_OF(q, struct health, q);
    if (q->status == AG_PG_OK)
        ag_http_json(h->r, 200, AG_STRLIT("{\"status\":\"healthy\",\"database\":\"connected\"}"));
    else
        health_unhealthy(h->r, q->error ? q->error : "query failed");
    ag_http_done(h->r);
    ag_free(h);
}

int ag_sys_health(struct ag_req *r)
{
    struct ag_shard *s = r->shard;
    const char *why = db_problem(s);
    if (why) {
        health_unhealthy(r, why);
        return AG_OK;
    }
    struct health *h = ag_calloc(1, sizeof *h);
    h->r = r;
    h->q.stmt = AG_SQL_PING;
    h->q.kind = AG_PG_READ;
    h->q.cb = on_health;
    int rc = ag_pg_submit(s, &h->q);
    if (rc == 0)
        return AG_AGAIN;
    ag_free(h);
    health_unhealthy(r, rc == -EAGAIN ? "database queue full" : "no database connection");
    return AG_OK;
}

int ag_sys_info(struct ag_req *r)
{
    struct ag_shard *s = r->shard;
    struct ag_buf b = {0};
    struct ag_jw w;
    ag_jw_init(&w, &b);
    ag_jw_obj(&w);
    ag_jw_key(&w, "name");
    ag_jw_str(&w, "agentd");
    ag_jw_key(&w, "version");
    ag_jw_str(&w, AG_VERSION);
    ag_jw_key(&w, "context");
    ag_jw_str(&w, "c");
    ag_jw_key(&w, "shards");
    ag_jw_int(&w, s->rt->nshards);
    ag_jw_key(&w, "flags");
    ag_jw_obj(&w);
    ag_jw_key(&w, "assistants");
    ag_jw_bool(&w, true);
    ag_jw_key(&w, "crons");
    ag_jw_bool(&w, true);
    ag_jw_key(&w, "langsmith");
    ag_jw_bool(&w, false);
    ag_jw_key(&w, "strict_resume"); /* every resume is strict (runtime/run_spec.h) */
    ag_jw_bool(&w, true);
    ag_jw_end(&w);
    ag_jw_end(&w);
    ag_http_json(r, 200, b.base, b.len);
    ag_buf_free(&b);
    return AG_OK;
}

int ag_sys_metrics(struct ag_req *r)
{
    struct ag_runtime *rt = r->shard->rt;
    struct ag_buf b = {0};
    const char *family = NULL;
    for (unsigned i = 0; i < AG_STATS_MAX; i++) {
        const struct ag_stat_desc *d = &ag_stat_descs[i];
        if (!d->name)
            continue;
        if (!family || strcmp(family, d->name)) {
            family = d->name;
            ag_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name, d->type);
        }
        for (int k = 0; k < rt->nshards; k++)
            ag_buf_printf(&b, "%s{shard=\"%d\"%s%s} %llu\n", d->name, k, *d->labels ? "," : "", d->labels,
                          (unsigned long long)ag_stat_get(&rt->shards[k]->stats, i));
    }
    ag_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.base, b.len);
    ag_buf_free(&b);
    return AG_OK;
}
