/* Glue between request handlers and persist/pg: submitting a query on behalf of a request and turning
 * its outcome into an HTTP answer. Resource handlers (protocol/agent/) build their response JSON in
 * SQL where they can (json_build_object, to_json: one text column), so answering is one copy. */
#ifndef AG_PROTOCOL_DBQ_H
#define AG_PROTOCOL_DBQ_H

#include <jansson.h>
#include <libpq-fe.h>

#include "persist/pg.h"
#include "persist/pgargs.h"

struct ag_req;

/* Submits q on r's shard (r->shard). Returns AG_AGAIN when it is queued (q->cb will answer and call
 * ag_http_done), or AG_OK after answering 503 itself: queue full (with Retry-After) or no database.
 * On AG_OK the caller frees what it allocated for q; the callback will not run. */
int ag_dbq_submit(struct ag_req *r, struct ag_pg_query *q);

/* Answers r for a query that could not be queued: rc is what ag_pg_submit returned (-EAGAIN: the
 * queue is full; -ENOTCONN: no database), the answer 503 with Retry-After. */
void ag_dbq_refused(struct ag_req *r, int rc);

/* Answers r for a query whose q->status is not AG_PG_OK: no database → 503 with Retry-After;
 * connection lost before the commit was confirmed → 503 saying the write may have happened; a
 * deadlock or serialization failure (class 40, persist/ retries those itself first) → 503 with
 * Retry-After; any other SQL error → 500 (the text is logged, not sent). Callers map the SQL errors they expect (unique
 * violation → 409, ...) before calling this. */
void ag_dbq_fail(struct ag_req *r, const struct ag_pg_query *q);

/* True when the query failed with SQLSTATE code (5 chars, e.g. "23505"). */
bool ag_dbq_sqlstate(const struct ag_pg_query *q, const char *code);

/* Answers r with `status` and the text of row 0, column 0 of res as the JSON body. When res has no
 * row (or that value is NULL), answers 404 {"error":"not_found","message":not_found_msg}. */
void ag_dbq_json(struct ag_req *r, PGresult *res, int status, const char *not_found_msg);

/* One request's database work: the query, the request it answers and the parameter strings it owns.
 * A handler that needs more state embeds it as the first member of its own struct (allocated by
 * ag_dbreq_new with that struct's size), so callbacks get back to it with AG_CONTAINER_OF or q->ud.
 * Life: new → param... → submit; the callback answers and calls ag_dbreq_finish. */
struct ag_dbreq {
    struct ag_pg_query q;
    struct ag_req *r;
    struct ag_pg_args strs;
};

/* A zeroed block of size bytes (>= sizeof(struct ag_dbreq)) that starts with a struct ag_dbreq for
 * r running stmt of kind with callback cb; q.ud points at the block. */
void *ag_dbreq_new(size_t size, struct ag_req *r, enum ag_sql stmt, enum ag_pg_kind kind, ag_pg_cb cb);

/* Frees d's strings and d (the whole block from ag_dbreq_new), without answering. */
void ag_dbreq_free(struct ag_dbreq *d);

/* Appends parameter p: a literal, a string owned by d (ag_dbreq_str/json, d->strs), or NULL for SQL NULL. */
void ag_dbreq_param(struct ag_dbreq *d, const char *p);

/* s[0..len) copied into d's strings (lives until d is freed). */
const char *ag_dbreq_str(struct ag_dbreq *d, const char *s, size_t len);

/* v as compact JSON text owned by d; NULL for a NULL v. */
const char *ag_dbreq_json(struct ag_dbreq *d, const json_t *v);

/* Submits d's query (ag_dbq_submit): AG_AGAIN when queued, or AG_OK after answering 503, with d freed. */
int ag_dbreq_submit(struct ag_dbreq *d);

/* Finishes the request after the callback answered (ag_http_done) and frees d. */
void ag_dbreq_finish(struct ag_dbreq *d);

#endif
