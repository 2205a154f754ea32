#define _GNU_SOURCE
#include "protocol/dbq.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/jsontext.h"
#include "core/log.h"
#include "core/shard.h"
#include "protocol/http.h"

int ag_dbq_submit(struct ag_req *r, struct ag_pg_query *q)
{
    int rc = ag_pg_submit(r->shard, q);
    if (rc == 0)
        return AG_AGAIN;
    ag_dbq_refused(r, rc);
    return AG_OK;
}

void ag_dbq_refused(struct ag_req *r, int rc)
{
    ag_http_add_header(r, "retry-after", "1");
    if (rc == -EAGAIN)
        ag_http_error(r, 503, "database queue full, retry later");
    else
        ag_http_error(r, 503, "database unavailable");
}

bool ag_dbq_sqlstate(const struct ag_pg_query *q, const char *code)
{
    return q->status == AG_PG_SQL_ERROR && !strncmp(q->sqlstate, code, 5);
}

void ag_dbq_fail(struct ag_req *r, const struct ag_pg_query *q)
{
    switch (q->status) {
    case AG_PG_DOWN:
        ag_http_add_header(r, "retry-after", "1");
        ag_http_error(r, 503, "database unavailable");
        break;
    case AG_PG_UNKNOWN:
        ag_http_add_header(r, "retry-after", "1");
        ag_http_error(r, 503, "database connection lost; the change may or may not have been applied");
        break;
    default:
        if (!strncmp(q->sqlstate, "40", 2)) {
            /* A deadlock or serialization victim that persist/ already ran again alone, and lost
             * again (a writer outside agentd holds the lock): nothing happened, the client may retry. */
            ag_http_add_header(r, "retry-after", "1");
            ag_http_error(r, 503, "conflicting concurrent writes, retry");
            break;
        }
        ag_log(AG_LOG_ERROR, "msg=\"query failed\" req=%.*s stmt=%d sqlstate=%.5s error=\"%s\"", (int)r->id_len, r->id,
               (int)q->stmt, q->sqlstate, q->error ? q->error : "");
        ag_http_error(r, 500, "An unexpected error occurred");
        break;
    }
}

void ag_dbq_json(struct ag_req *r, PGresult *res, int status, const char *not_found_msg)
{
    if (!res || PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
        ag_http_error(r, 404, not_found_msg);
        return;
    }
    ag_http_json(r, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void *ag_dbreq_new(size_t size, struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb)
{
    AG_BUG_ON(size < sizeof(struct ag_dbreq));
    struct ag_dbreq *d = ag_calloc(1, size);
    d->r = r;
    d->q.stmt = stmt;
    d->q.kind = kind;
    d->q.cb = cb;
    d->q.ud = d;
    return d;
}

void ag_dbreq_free(struct ag_dbreq *d)
{
    ag_pg_args_reset(&d->strs);
    ag_free(d);
}

void ag_dbreq_param(struct ag_dbreq *d, const char *p)
{
    AG_BUG_ON(d->q.nparams >= AG_PG_MAX_PARAMS);
    d->q.params[d->q.nparams++] = p;
}

const char *ag_dbreq_str(struct ag_dbreq *d, const char *s, size_t len)
{
    return ag_pg_args_dup(&d->strs, s, len);
}

const char *ag_dbreq_json(struct ag_dbreq *d, const json_t *v)
{
    if (!v)
        return NULL;
    size_t n;
    const char *text = ag_json_scratch_text(v, JSON_COMPACT | JSON_ENCODE_ANY, &n);
    AG_BUG_ON(!text);
    return ag_dbreq_str(d, text, n);
}

int ag_dbreq_submit(struct ag_dbreq *d)
{
    int rc = ag_dbq_submit(d->r, &d->q);
    if (rc != AG_AGAIN)
        ag_dbreq_free(d);
    return rc;
}

void ag_dbreq_finish(struct ag_dbreq *d)
{
    ag_http_done(d->r);
    ag_dbreq_free(d);
}
