/* Glue between request handlers and persist/pg: submitting a query on behalf of a request and turning
 * its outcome into an HTTP answer. Resource handlers (protocol/agent/) build their response JSON in
 * SQL where they can (json_build_object, to_json: one text column), so answering is one copy. */
#ifndef AG_PROTOCOL_DBQ_H
#define AG_PROTOCOL_DBQ_H

#include <libpq-fe.h>

#include "persist/pg.h"

struct ag_req;

/* Submits q on r's shard (r->shard). Returns AG_AGAIN when it is queued (q->cb will answer and call
 * ag_http_done), or AG_OK after answering 503 itself: queue full (with Retry-After) or no database.
 * On AG_OK the caller frees what it allocated for q; the callback will not run. */
int ag_dbq_submit(struct ag_req *r, struct ag_pg_query *q);

/* Answers r for a query whose q->status is not AG_PG_OK: no database → 503 with Retry-After;
 * connection lost before the commit was confirmed → 503 saying the write may have happened; a SQL
 * error → 500 (the text is logged, not sent). Callers map the SQL errors they expect (unique
 * violation → 409, ...) before calling this. */
void ag_dbq_fail(struct ag_req *r, const struct ag_pg_query *q);

/* True when the query failed with SQLSTATE code (5 chars, e.g. "23505"). */
bool ag_dbq_sqlstate(const struct ag_pg_query *q, const char *code);

/* Answers r with `status` and the text of row 0, column 0 of res as the JSON body. When res has no
 * row (or that value is NULL), answers 404 {"error":"not_found","message":not_found_msg}. */
void ag_dbq_json(struct ag_req *r, PGresult *res, int status, const char *not_found_msg);

/* Small owned strings for query parameters: each call copies s (or formats) into storage freed by
 * ag_dbq_strs_free. Parameter pointers stay valid until then. */
struct ag_dbq_strs {
    char *p[AG_PG_MAX_PARAMS];
    int n;
};
const char *ag_dbq_strs_dup(struct ag_dbq_strs *st, const char *s, size_t len);
const char *ag_dbq_strs_printf(struct ag_dbq_strs *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ag_dbq_strs_free(struct ag_dbq_strs *st);

#endif
