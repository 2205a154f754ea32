#include "protocol/agent/threads_batch.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "persist/pg.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "protocol/jsonw.h"

/* Past this many creates, or this many bytes of parameter, a batch is sealed early and the next
 * one starts. */
#define BATCH_MAX 512
#define BATCH_BYTES (1u << 20)

struct item {
    struct ag_req *r;
    char id[37];
};

struct batch {
    struct ag_pg_query q;
    struct ag_buf json; /* "[{...},{...}" while open; "]" and a NUL are added when sealed */
    struct item *items;
    size_t n, cap;
    bool sealed;
};

/* The batch this shard is filling (one per shard thread). */
static _Thread_local struct batch *open_batch;

static void seal(struct batch *b)
{
    if (b->sealed)
        return;
    b->sealed = true;
    if (open_batch == b)
        open_batch = NULL;
    ag_buf_append(&b->json, "]", 2); /* with the NUL */
    b->q.params[0] = b->json.base;
}

static void on_send(struct ag_pg_query *q)
{
    seal(AG_CONTAINER_OF(q, struct batch, q));
}

static void answer_taken(struct ag_req *r, const char *id)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Thread '%s' already exists", id);
    ag_http_error(r, 409, msg);
}

static void on_batch(struct ag_pg_query *q, PGresult *res)
{
    struct batch *b = AG_CONTAINER_OF(q, struct batch, q);
    if (open_batch == b)
        open_batch = NULL; /* failed before it was sent (no database): nothing more joins it */
    int rows = q->status == AG_PG_OK ? PQntuples(res) : 0;
    bool *used = rows ? ag_calloc((size_t)rows, sizeof *used) : NULL;
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = &b->items[i];
        if (q->status != AG_PG_OK) {
            ag_dbq_fail(it->r, q);
        } else {
            int row = -1;
            for (int k = 0; k < rows && row < 0; k++)
                if (!used[k] && !strcmp(PQgetvalue(res, k, 0), it->id))
                    row = k;
            if (row >= 0) {
                used[row] = true;
                ag_http_json(it->r, 200, PQgetvalue(res, row, 1), (size_t)PQgetlength(res, row, 1));
            } else {
                answer_taken(it->r, it->id); /* the id existed, or came twice in this batch */
            }
        }
        ag_http_done(it->r);
    }
    ag_free(used);
    ag_buf_free(&b->json);
    ag_free(b->items);
    ag_free(b);
}

int ag_threads_batch_create(struct ag_req *r, const char *id, const char *owner, double ttl_minutes,
                            const char *strategy)
{
    struct batch *b = open_batch;
    if (!b) {
        b = ag_calloc(1, sizeof *b);
        b->q.stmt = AG_SQL_THREAD_CREATE_BATCH;
        b->q.kind = AG_PG_WRITE;
        b->q.nparams = 1;
        b->q.cb = on_batch;
        b->q.on_send = on_send;
        ag_buf_append(&b->json, "[", 1);
        if (ag_dbq_submit(r, &b->q) != AG_AGAIN) {
            ag_buf_free(&b->json);
            ag_free(b);
            return AG_OK; /* answered 503 */
        }
        open_batch = b;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->items = ag_realloc(b->items, b->cap * sizeof *b->items);
    }
    struct item *it = &b->items[b->n++];
    it->r = r;
    snprintf(it->id, sizeof it->id, "%s", id);

    struct ag_jw w;
    ag_jw_init(&w, &b->json);
    if (b->n > 1)
        ag_buf_append(&b->json, ",", 1);
    ag_jw_obj(&w);
    ag_jw_key(&w, "i");
    ag_jw_str(&w, it->id);
    ag_jw_key(&w, "o");
    ag_jw_str(&w, owner);
    ag_jw_key(&w, "b");
    ag_jw_raw(&w, r->body.base, r->body.len); /* validated JSON object text */
    ag_jw_key(&w, "t");
    if (ttl_minutes > 0) {
        char num[32];
        int len = snprintf(num, sizeof num, "%.17g", ttl_minutes);
        ag_jw_raw(&w, num, (size_t)len);
    } else {
        ag_jw_null(&w);
    }
    ag_jw_key(&w, "s");
    if (ttl_minutes > 0 && strategy)
        ag_jw_str(&w, strategy);
    else
        ag_jw_null(&w);
    ag_jw_end(&w);
    if (b->n == BATCH_MAX || b->json.len >= BATCH_BYTES)
        seal(b);
    return AG_AGAIN;
}
