/* Asynchronous Postgres for a shard: a few non-blocking libpq connections per shard in pipeline
 * mode, their sockets polled through the shard's io_uring. Nothing here blocks.
 *
 * Queries are named prepared statements (persist/statements.def) with text parameters. In the flush
 * phase, everything queued leaves as one pipeline group on a connection that has no group in flight:
 *     <reads>; <writes>; SYNC
 * (while every connection waits for its group, new queries gather and leave together as the next
 * group: the batch grows with the load, and an idle server sends at once)
 * which Postgres runs as one implicit transaction, so concurrent writes share one durable commit (the
 * reads go first so they see only committed data). A write's callback runs only
 * after its COMMIT succeeded. If a statement fails, its own callback gets the error and every other
 * query of the group (rolled back, so nothing happened) is retried on its own. If a connection is
 * lost, reads are retried after reconnecting and writes whose commit was not confirmed fail with
 * AG_PG_UNKNOWN. Connections reconnect with backoff; the per-shard queue is bounded. */
#ifndef AG_PERSIST_PG_H
#define AG_PERSIST_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/shard.h"

/* The database a server uses (read-only while the shards run; the strings are the caller's). */
struct ag_pg_config {
    char *url;                      /* a libpq connection string; NULL or "": no database */
    uint32_t connections_per_shard; /* Postgres connections each shard keeps */
    uint32_t queue_max;             /* queries queued or in flight per shard; beyond: -EAGAIN (503) */
};
#define AG_PG_CONFIG_DEFAULT {.url = NULL, .connections_per_shard = 2, .queue_max = 4096}

enum ag_sql {
#define AG_SQL(id, text) AG_SQL_##id,
#include "persist/statements.def"
#undef AG_SQL
    AG_SQL__COUNT
};

#define AG_PG_MAX_PARAMS 28

enum ag_pg_kind { AG_PG_READ = 0, AG_PG_WRITE = 1 };

/* Outcomes passed to the callback in q->status. */
enum ag_pg_status {
    AG_PG_OK = 0,
    AG_PG_SQL_ERROR = 1, /* the statement failed; q->error says why (q->sqlstate has the code) */
    AG_PG_UNKNOWN = 2,   /* the connection died before the commit was confirmed: it may or may not have happened */
    AG_PG_DOWN = 3,      /* no database connection; nothing happened */
};

struct ag_pg_query;
/* Runs on the submitting shard. On AG_PG_OK, res is the statement's result (freed after the call). */
typedef void (*ag_pg_cb)(struct ag_pg_query *q, PGresult *res);

struct ag_pg_query {
    /* Filled by the caller; the parameter strings must live until the callback. */
    enum ag_sql stmt;
    enum ag_pg_kind kind;
    int nparams;
    const char *params[AG_PG_MAX_PARAMS]; /* text format; NULL is SQL NULL */
    ag_pg_cb cb;
    void *ud;
    /* Optional: called right before the query is sent (again before each resend of a retry), so
     * the submitter can keep adding to it while it waits in the queue (one multi-row statement for
     * everything that arrived meanwhile) and seal it here. Must leave nparams/params valid. */
    void (*on_send)(struct ag_pg_query *q);
    /* Filled by the layer. */
    enum ag_pg_status status;
    const char *error;    /* valid during the callback */
    char sqlstate[6];
    PGresult *res;        /* held until the group commits */
    uint8_t retries;
    struct ag_pg_query *next;
};

/* Main thread, before the runtime starts: the op handlers. */
void ag_pg_register(void);
/* Shard thread (on_start): opens cfg->connections_per_shard connections once the schema is ready
 * (ag_migrate_ready). Without a url, persistence stays off and ag_pg_submit answers -ENOTCONN. cfg must
 * outlive the shard. */
void ag_pg_start(struct ag_shard *s, const struct ag_pg_config *cfg);
/* True when s was started with a database (whether or not a connection is up now). */
bool ag_pg_configured(const struct ag_shard *s);
/* Loop phase 5: sends what was submitted this turn. */
void ag_pg_flush(struct ag_shard *s);
/* Queues q. Returns 0 (the callback will run, possibly with an error status), -EAGAIN when the
 * shard's queue is full, or -ENOTCONN when no connection is up (nothing queued either way). */
int ag_pg_submit(struct ag_shard *s, struct ag_pg_query *q);
/* Sets q's parameters $1..$n from p[0..n) (n <= AG_PG_MAX_PARAMS). */
void ag_pg_set_params(struct ag_pg_query *q, const char *const *p, size_t n);
/* Sets q's parameters from a struct whose members are all `const char *`, declared in $1.. order, so that
 * each parameter is named where it is filled: AG_PG_PARAMS(&q, ((struct {const char *id, *owner;}){...})). */
#define AG_PG_PARAMS(q, s)                                                                                             \
    ag_pg_set_params((q), (const char *const *)&(s), sizeof(s) / sizeof(const char *))
/* True when at least one connection of this shard is ready. */
bool ag_pg_up(struct ag_shard *s);
/* Queries queued or in flight on this shard. */
uint32_t ag_pg_pending(struct ag_shard *s);
/* Shard thread (on_exit, after the drain): closes the connections. Queries still pending get no
 * callback: the process is ending and their requesters are being freed too. */
void ag_pg_exit(struct ag_shard *s);

#endif
