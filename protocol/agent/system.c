#include "protocol/agent/system.h"

#include <string.h>

#include "core/buf.h"
#include "core/shard.h"
#include "core/stats.h"
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

int ag_sys_ready(struct ag_req *r)
{
    struct ag_shard *s = r->conn->shard;
    if (s->draining || atomic_load(&s->rt->drain_requested))
        ag_http_error(r, 503, "Service not ready - shutting down");
    else
        ag_http_json(r, 200, AG_STRLIT("{\"status\":\"ready\"}"));
    return AG_OK;
}

int ag_sys_info(struct ag_req *r)
{
    struct ag_shard *s = r->conn->shard;
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
    ag_jw_bool(&w, false);
    ag_jw_key(&w, "crons");
    ag_jw_bool(&w, false);
    ag_jw_key(&w, "langsmith");
    ag_jw_bool(&w, false);
    ag_jw_end(&w);
    ag_jw_end(&w);
    ag_http_json(r, 200, b.base, b.len);
    ag_buf_free(&b);
    return AG_OK;
}

int ag_sys_metrics(struct ag_req *r)
{
    struct ag_runtime *rt = r->conn->shard->rt;
    struct ag_buf b = {0};
    const char *family = NULL;
    for (int i = 0; i < AG_STAT__COUNT; i++) {
        const struct ag_stat_desc *d = &ag_stat_descs[i];
        if (!family || strcmp(family, d->name)) {
            family = d->name;
            ag_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name, d->type);
        }
        for (int k = 0; k < rt->nshards; k++)
            ag_buf_printf(&b, "%s{shard=\"%d\"%s%s} %llu\n", d->name, k, *d->labels ? "," : "", d->labels,
                          (unsigned long long)ag_stat_get(&rt->shards[k]->stats, (enum ag_stat)i));
    }
    ag_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.base, b.len);
    ag_buf_free(&b);
    return AG_OK;
}
