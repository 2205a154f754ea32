#include "persist/pg.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "persist/migrate.h"
#include "persist/stats.h"

enum {
    AG_OP_PG_CONNECT = 16, /* one-shot poll while the connection handshake runs */
    AG_OP_PG_READ = 17,    /* one-shot POLLIN on a ready connection, re-armed after each read */
    AG_OP_PG_WRITE = 18,   /* one-shot POLLOUT while libpq has unsent output */
};

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SCHEMA_WAIT_MS 100
#define READ_RETRIES 3

static const char *const sql_text[AG_SQL__COUNT] = {
#define AG_SQL(id, text) [AG_SQL_##id] = text,
#include "persist/statements.def"
#undef AG_SQL
};
static const char *const sql_name[AG_SQL__COUNT] = {
#define AG_SQL(id, text) [AG_SQL_##id] = #id,
#include "persist/statements.def"
#undef AG_SQL
};

enum item_type { IT_QUERY, IT_SYNC, IT_PREPARE };

struct item {
    uint8_t type;
    bool got;    /* its result arrived; the NULL that ends it is next */
    bool writes; /* IT_SYNC: the group it ends holds writes */
    struct ag_pg_query *q;
};

struct qlist {
    struct ag_pg_query *head, *tail;
    uint32_t n;
};

enum conn_state { PC_DOWN, PC_CONNECTING, PC_READY };

struct pg_conn {
    struct pg_shard *ps;
    uint32_t idx, gen;
    PGconn *pg;
    int fd;
    enum conn_state state;
    bool read_armed, write_armed;
    struct item *items; /* ring of what was sent, in order */
    uint32_t head, count, cap;
    uint32_t queries; /* IT_QUERY items in flight */
    uint32_t syncs;   /* IT_SYNC items in flight: groups not yet answered */
    bool grp_aborted;
    struct qlist held;  /* writes of the current group, answered at its SYNC */
    struct ag_timer timer;
    uint32_t backoff_ms;
    bool was_up; /* connected before: a new connection is a reconnect */
};

struct pg_shard {
    struct ag_shard *s;
    const struct ag_pg_config *cfg;
    struct pg_conn *conns;
    uint32_t nconns;
    struct qlist reads, writes, solo; /* submitted, not yet sent */
    uint32_t queued, inflight, max_queue;
    uint32_t write_groups; /* groups with writes in flight, on any connection */
};

static struct pg_shard *ps_of(struct ag_shard *s)
{
    return s->pg;
}

static void ql_push(struct qlist *l, struct ag_pg_query *q)
{
    q->next = NULL;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

static struct ag_pg_query *ql_pop(struct qlist *l)
{
    struct ag_pg_query *q = l->head;
    if (q) {
        l->head = q->next;
        if (!l->head)
            l->tail = NULL;
        l->n--;
        q->next = NULL;
    }
    return q;
}

static void deliver(struct pg_shard *ps, struct ag_pg_query *q, enum ag_pg_status st, PGresult *res, const char *err)
{
    ps->inflight--;
    ag_stat_add(&ps->s->stats, AG_STAT_DB_QUERIES, 1);
    ag_stat_sub(&ps->s->stats, AG_STAT_DB_QUEUE, 1);
    if (st != AG_PG_OK)
        ag_stat_add(&ps->s->stats, AG_STAT_DB_ERRORS, 1);
    q->status = st;
    q->error = err;
    if (st == AG_PG_SQL_ERROR && res) {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(q->sqlstate, sizeof q->sqlstate, "%s", code ? code : "");
    } else {
        q->sqlstate[0] = 0;
    }
    q->cb(q, st == AG_PG_OK ? res : NULL);
}

/* --- item ring --- */

static struct item *push_item(struct pg_conn *c, enum item_type t, struct ag_pg_query *q)
{
    if (c->count == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 256;
        struct item *n = ag_malloc(cap * sizeof *n);
        for (uint32_t i = 0; i < c->count; i++)
            n[i] = c->items[(c->head + i) % c->cap];
        ag_free(c->items);
        c->items = n;
        c->cap = cap;
        c->head = 0;
    }
    struct item *it = &c->items[(c->head + c->count++) % c->cap];
    it->type = (uint8_t)t;
    it->got = false;
    it->writes = false;
    it->q = q;
    if (t == IT_QUERY)
        c->queries++;
    else if (t == IT_SYNC)
        c->syncs++;
    return it;
}

static void pop_item(struct pg_conn *c)
{
    if (c->items[c->head].type == IT_QUERY)
        c->queries--;
    else if (c->items[c->head].type == IT_SYNC) {
        c->syncs--;
        if (c->items[c->head].writes)
            c->ps->write_groups--;
    }
    c->head = (c->head + 1) % c->cap;
    c->count--;
}

/* --- connection lifecycle --- */

static void conn_schedule(struct pg_conn *c, uint32_t ms);
static void conn_flush(struct pg_conn *c);

static void arm_poll(struct pg_conn *c, unsigned kind, short events)
{
    struct io_uring_sqe *sqe = ag_shard_sqe(c->ps->s);
    io_uring_prep_poll_add(sqe, c->fd, (unsigned)events);
    io_uring_sqe_set_data64(sqe, ag_ud(kind, c->gen, c->idx));
}

static void remove_poll(struct pg_conn *c, unsigned kind)
{
    struct io_uring_sqe *sqe = ag_shard_sqe(c->ps->s);
    io_uring_prep_poll_remove(sqe, ag_ud(kind, c->gen, c->idx));
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_NONE, 0, 0));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void on_notice(void *arg, const char *msg)
{
    char line[512];
    ag_log(AG_LOG_DEBUG, "msg=\"postgres notice\" text=\"%s\"", ag_log_clean(line, sizeof line, msg));
}

/* The connection failed or broke: answer or requeue everything it carried, then reconnect later. */
static void conn_lost(struct pg_conn *c, const char *why)
{
    struct pg_shard *ps = c->ps;
    char line[512];
    ag_log_clean(line, sizeof line, why);
    if (c->state == PC_READY)
        ag_log(AG_LOG_WARN, "msg=\"database connection lost\" conn=%u error=\"%s\"", c->idx, line);
    else
        ag_log(AG_LOG_DEBUG, "msg=\"database connection failed\" conn=%u error=\"%s\"", c->idx, line);
    if (c->read_armed)
        remove_poll(c, c->state == PC_READY ? AG_OP_PG_READ : AG_OP_PG_CONNECT);
    if (c->write_armed)
        remove_poll(c, AG_OP_PG_WRITE);
    c->read_armed = c->write_armed = false;
    /* Writes held for a SYNC that never came may or may not have committed. */
    struct ag_pg_query *q;
    while ((q = ql_pop(&c->held))) {
        PQclear(q->res);
        q->res = NULL;
        deliver(ps, q, AG_PG_UNKNOWN, NULL, "the database connection was lost before the commit was confirmed");
    }
    while (c->count) {
        struct item *it = &c->items[c->head];
        if (it->type == IT_QUERY && !it->got) {
            q = it->q;
            if (q->kind == AG_PG_READ && q->retries < READ_RETRIES) {
                q->retries++;
                ps->inflight--;
                ps->queued++;
                ql_push(&ps->solo, q);
            } else {
                deliver(ps, q, q->kind == AG_PG_READ ? AG_PG_DOWN : AG_PG_UNKNOWN, NULL,
                        "the database connection was lost");
            }
        }
        pop_item(c);
    }
    c->grp_aborted = false;
    if (c->state == PC_READY)
        ag_stat_sub(&ps->s->stats, AG_STAT_DB_CONNECTIONS_UP, 1);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    c->state = PC_DOWN;
    c->gen++;
    c->backoff_ms = c->backoff_ms ? AG_MIN(c->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
    conn_schedule(c, c->backoff_ms);
}

static void conn_ready(struct pg_conn *c)
{
    struct pg_shard *ps = c->ps;
    if (!PQenterPipelineMode(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    c->state = PC_READY;
    c->gen++;
    c->fd = PQsocket(c->pg);
    ag_stat_add(&ps->s->stats, AG_STAT_DB_CONNECTIONS_UP, 1);
    for (int i = 0; i < AG_SQL__COUNT; i++) {
        if (!PQsendPrepare(c->pg, sql_name[i], sql_text[i], 0, NULL)) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
        push_item(c, IT_PREPARE, NULL);
    }
    if (!PQpipelineSync(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    push_item(c, IT_SYNC, NULL);
    arm_poll(c, AG_OP_PG_READ, POLLIN);
    c->read_armed = true;
    c->backoff_ms = 0;
    ag_log(AG_LOG_INFO, "msg=\"database %s\" conn=%u", c->was_up ? "reconnected" : "connected", c->idx);
    c->was_up = true;
    conn_flush(c);
}

static void connect_wait(struct pg_conn *c, PostgresPollingStatusType st)
{
    c->fd = PQsocket(c->pg);
    arm_poll(c, AG_OP_PG_CONNECT, st == PGRES_POLLING_READING ? POLLIN : POLLOUT);
    c->read_armed = true;
}

static void conn_start(struct pg_conn *c)
{
    /* Every session renders timestamps as ISO 8601 in UTC ("...+00:00"), as LangGraph Platform does;
     * to_json() output goes to clients as is. */
    static const char *const keys[] = {"dbname", "options", "application_name", NULL};
    const char *vals[] = {c->ps->cfg->url, "-c TimeZone=UTC -c DateStyle=ISO", "agentd", NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (!c->pg) {
        conn_lost(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetnonblocking(c->pg, 1);
    c->state = PC_CONNECTING;
    c->gen++;
    connect_wait(c, PGRES_POLLING_WRITING);
}

static void on_timer(struct ag_timer *t)
{
    struct pg_conn *c = AG_CONTAINER_OF(t, struct pg_conn, timer);
    if (!ag_migrate_ready()) {
        conn_schedule(c, SCHEMA_WAIT_MS);
        return;
    }
    conn_start(c);
}

static void conn_schedule(struct pg_conn *c, uint32_t ms)
{
    struct ag_shard *s = c->ps->s;
    c->timer.cb = on_timer;
    ag_timer_arm(&s->timers, &c->timer, s->now_ns + ag_ms_to_ns(ms));
}

/* --- sending --- */

static void conn_flush(struct pg_conn *c)
{
    if (c->state != PC_READY || c->write_armed)
        return;
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_lost(c, PQerrorMessage(c->pg));
    } else if (r > 0) {
        arm_poll(c, AG_OP_PG_WRITE, POLLOUT);
        c->write_armed = true;
    }
}

static bool send_query(struct pg_conn *c, struct ag_pg_query *q)
{
    if (q->on_send)
        q->on_send(q);
    if (!PQsendQueryPrepared(c->pg, sql_name[q->stmt], q->nparams, q->params, NULL, NULL, 0))
        return false;
    push_item(c, IT_QUERY, q);
    return true;
}

/* A ready connection, preferring the least loaded; NULL when none is up. */
static struct pg_conn *pick_conn(struct pg_shard *ps)
{
    struct pg_conn *best = NULL;
    for (uint32_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        if (c->state == PC_READY && (!best || c->queries < best->queries))
            best = c;
    }
    return best;
}

/* A ready connection with no group in flight, or NULL. */
static struct pg_conn *pick_idle_conn(struct pg_shard *ps)
{
    for (uint32_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        if (c->state == PC_READY && c->syncs == 0)
            return c;
    }
    return NULL;
}

/* Ends the group just sent on c with a SYNC; with_writes when it carries writes. */
static bool send_sync(struct pg_conn *c, bool with_writes)
{
    if (!PQpipelineSync(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return false;
    }
    push_item(c, IT_SYNC, NULL)->writes = with_writes;
    if (with_writes)
        c->ps->write_groups++;
    ag_stat_add(&c->ps->s->stats, AG_STAT_DB_GROUPS, 1);
    return true;
}

/* Moves every query of list l into flight on c. On a send failure the connection is lost: what was
 * already sent is in c's ring (conn_lost requeues or answers it), the rest stays in l. */
static bool send_list(struct pg_shard *ps, struct pg_conn *c, struct qlist *l, bool sync_each)
{
    struct ag_pg_query *q;
    while ((q = ql_pop(l))) {
        ps->queued--;
        ps->inflight++;
        if (!send_query(c, q)) {
            ps->inflight--;
            ps->queued++;
            q->next = l->head;
            l->head = q;
            if (!l->tail)
                l->tail = q;
            l->n++;
            conn_lost(c, PQerrorMessage(c->pg));
            return false;
        }
        if (sync_each && !send_sync(c, q->kind == AG_PG_WRITE))
            return false;
    }
    return true;
}

static void fail_all_pending(struct pg_shard *ps, const char *why)
{
    struct qlist *lists[] = {&ps->solo, &ps->reads, &ps->writes};
    for (size_t i = 0; i < AG_ARRAY_LEN(lists); i++) {
        struct ag_pg_query *q;
        while ((q = ql_pop(lists[i]))) {
            ps->queued--;
            ps->inflight++;
            deliver(ps, q, AG_PG_DOWN, NULL, why);
        }
    }
}

void ag_pg_flush(struct ag_shard *s)
{
    struct pg_shard *ps = ps_of(s);
    if (!ps || !ps->queued)
        return;
    for (int attempt = 0; attempt < 4 && ps->queued; attempt++) {
        /* A group goes only to a connection with nothing in flight, and writes only while no other
         * group of writes is in flight on this shard. While a commit runs, new writes gather here
         * and leave together when it is done: under load each commit carries many writes (a commit
         * costs ~0.25-0.5 ms whatever it holds), and an idle server still sends at once. Reads are
         * not held behind a commit when another connection is free. */
        struct pg_conn *c = pick_idle_conn(ps);
        if (!c)
            break;
        bool writes_now = ps->write_groups == 0;
        /* Retries go alone, each in its own implicit transaction. */
        if (writes_now && !send_list(ps, c, &ps->solo, true))
            continue;
        bool with_writes = writes_now && ps->writes.n;
        if (ps->reads.n || with_writes) {
            /* One group: reads first (so they see only committed data), then the writes; the SYNC
             * ends the implicit transaction, so all the writes share one commit. */
            if (!send_list(ps, c, &ps->reads, false) || (with_writes && !send_list(ps, c, &ps->writes, false)))
                continue;
            if (!send_sync(c, with_writes))
                continue;
        }
        conn_flush(c);
        if (!writes_now)
            break; /* what is left waits for the write group in flight */
    }
    if (ps->queued && !pick_conn(ps))
        fail_all_pending(ps, "no database connection");
}

void ag_pg_set_params(struct ag_pg_query *q, const char *const *p, size_t n)
{
    AG_BUG_ON(n > AG_PG_MAX_PARAMS);
    memcpy(q->params, p, n * sizeof *p);
    q->nparams = (int)n;
}

int ag_pg_submit(struct ag_shard *s, struct ag_pg_query *q)
{
    struct pg_shard *ps = ps_of(s);
    if (!ps || !pick_conn(ps))
        return -ENOTCONN;
    if (ps->queued + ps->inflight >= ps->max_queue) {
        ag_stat_add(&s->stats, AG_STAT_DB_REJECTED, 1);
        return -EAGAIN;
    }
    q->status = AG_PG_OK;
    q->error = NULL;
    q->res = NULL;
    q->retries = 0;
    ql_push(q->kind == AG_PG_WRITE ? &ps->writes : &ps->reads, q);
    ps->queued++;
    ag_stat_add(&s->stats, AG_STAT_DB_QUEUE, 1);
    return 0;
}

/* --- receiving --- */

static void end_group(struct pg_conn *c)
{
    struct pg_shard *ps = c->ps;
    struct ag_pg_query *q;
    bool aborted = c->grp_aborted;
    c->grp_aborted = false;
    while ((q = ql_pop(&c->held))) {
        if (!aborted) {
            PGresult *res = q->res;
            q->res = NULL;
            deliver(ps, q, AG_PG_OK, res, NULL);
            PQclear(res);
        } else {
            /* Rolled back with the group: nothing happened, so it is safe to run it again alone. */
            PQclear(q->res);
            q->res = NULL;
            q->retries++;
            ps->inflight--;
            ps->queued++;
            ql_push(&ps->solo, q);
        }
    }
}

static void on_result(struct pg_conn *c, struct item *it, PGresult *r)
{
    struct pg_shard *ps = c->ps;
    ExecStatusType st = PQresultStatus(r);
    if (it->type == IT_PREPARE) {
        if (st != PGRES_COMMAND_OK) {
            char line[512];
            ag_log(AG_LOG_ERROR, "msg=\"cannot prepare a statement\" error=\"%s\"",
                   ag_log_clean(line, sizeof line, PQresultErrorMessage(r)));
            c->grp_aborted = true;
        }
        PQclear(r);
        return;
    }
    struct ag_pg_query *q = it->q;
    if (it->type != IT_QUERY) {
        /* An error where the group's sync was awaited: the server ended the session (a FATAL when its
         * backend is terminated) after the group's statements answered. Nothing to deliver here: the
         * group counts as aborted, and the lost connection fails or retries what is still in flight. */
        c->grp_aborted = true;
        PQclear(r);
        return;
    }
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        if (q->kind == AG_PG_WRITE) {
            q->res = r;
            ql_push(&c->held, q);
            return;
        }
        deliver(ps, q, AG_PG_OK, r, NULL);
        PQclear(r);
        return;
    }
    c->grp_aborted = true;
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* Class 57 (shutdown, terminated backend) and 08 (connection) say nothing about the statement. */
    bool conn_gone = code && (!strncmp(code, "57", 2) || !strncmp(code, "08", 2));
    /* A deadlock or serialization victim was rolled back with its group: nothing happened, and it
     * may well succeed alone (coalesced groups on different connections can lock rows in opposite
     * orders). */
    bool victim = code && (!strcmp(code, "40P01") || !strcmp(code, "40001"));
    static _Thread_local char msg[512];
    if ((st == PGRES_PIPELINE_ABORTED || victim || (conn_gone && q->kind == AG_PG_READ)) &&
        q->retries < READ_RETRIES) {
        q->retries++;
        ps->inflight--;
        ps->queued++;
        ql_push(&ps->solo, q);
    } else if (conn_gone) {
        deliver(ps, q, q->kind == AG_PG_READ ? AG_PG_DOWN : AG_PG_UNKNOWN, NULL,
                ag_log_clean(msg, sizeof msg, PQresultErrorMessage(r)));
    } else {
        deliver(ps, q, AG_PG_SQL_ERROR, r, ag_log_clean(msg, sizeof msg, PQresultErrorMessage(r)));
    }
    PQclear(r);
}

static void read_results(struct pg_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    while (c->count && c->state == PC_READY) {
        if (PQisBusy(c->pg))
            break;
        PGresult *r = PQgetResult(c->pg);
        struct item *it = &c->items[c->head];
        if (!r) {
            if (!it->got)
                break;
            pop_item(c);
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            AG_BUG_ON(it->type != IT_SYNC);
            pop_item(c);
            end_group(c);
            continue;
        }
        it->got = true;
        on_result(c, it, r);
    }
    if (c->state == PC_READY && PQstatus(c->pg) == CONNECTION_BAD)
        conn_lost(c, PQerrorMessage(c->pg));
}

static struct pg_conn *conn_from(struct ag_shard *s, uint64_t ud)
{
    struct pg_shard *ps = ps_of(s);
    if (!ps || ag_ud_idx(ud) >= ps->nconns)
        return NULL;
    struct pg_conn *c = &ps->conns[ag_ud_idx(ud)];
    return (c->gen & 0xffffffu) == ag_ud_gen(ud) ? c : NULL;
}

static void on_connect_cqe(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct pg_conn *c = conn_from(s, cqe->user_data);
    if (!c || c->state != PC_CONNECTING)
        return;
    c->read_armed = false;
    if (cqe->res < 0 && cqe->res != -ECANCELED) {
        conn_lost(c, strerror(-cqe->res));
        return;
    }
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    if (st == PGRES_POLLING_OK)
        conn_ready(c);
    else if (st == PGRES_POLLING_FAILED)
        conn_lost(c, PQerrorMessage(c->pg));
    else
        connect_wait(c, st);
}

static void on_read_cqe(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct pg_conn *c = conn_from(s, cqe->user_data);
    if (!c || c->state != PC_READY)
        return;
    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->read_armed = false;
    if (cqe->res < 0 && cqe->res != -ECANCELED) {
        conn_lost(c, strerror(-cqe->res));
        return;
    }
    read_results(c);
    /* One-shot and re-armed: the poll checks readiness when armed, so bytes libpq left in the socket
     * wake us again at once (a multishot poll only fires on new arrivals and could stall). */
    if (c->state == PC_READY && !c->read_armed) {
        arm_poll(c, AG_OP_PG_READ, POLLIN);
        c->read_armed = true;
    }
}

static void on_write_cqe(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct pg_conn *c = conn_from(s, cqe->user_data);
    if (!c || c->state != PC_READY)
        return;
    c->write_armed = false;
    conn_flush(c);
}

void ag_pg_register(void)
{
    ag_shard_register_op(AG_OP_PG_CONNECT, on_connect_cqe);
    ag_shard_register_op(AG_OP_PG_READ, on_read_cqe);
    ag_shard_register_op(AG_OP_PG_WRITE, on_write_cqe);
}

void ag_pg_start(struct ag_shard *s, const struct ag_pg_config *cfg)
{
    if (!cfg->url || !*cfg->url)
        return;
    struct pg_shard *ps = ag_calloc(1, sizeof *ps);
    ps->s = s;
    ps->cfg = cfg;
    ps->nconns = cfg->connections_per_shard;
    ps->max_queue = cfg->queue_max;
    ps->conns = ag_calloc(ps->nconns, sizeof *ps->conns);
    for (uint32_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        c->ps = ps;
        c->idx = i;
        c->fd = -1;
        ag_timer_init(&c->timer, on_timer);
        conn_schedule(c, 0);
    }
    s->pg = ps;
}

bool ag_pg_configured(const struct ag_shard *s)
{
    return s->pg != NULL;
}

bool ag_pg_up(struct ag_shard *s)
{
    struct pg_shard *ps = ps_of(s);
    return ps && pick_conn(ps) != NULL;
}

uint32_t ag_pg_pending(struct ag_shard *s)
{
    struct pg_shard *ps = ps_of(s);
    return ps ? ps->queued + ps->inflight : 0;
}

void ag_pg_exit(struct ag_shard *s)
{
    struct pg_shard *ps = ps_of(s);
    if (!ps)
        return;
    for (uint32_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        ag_timer_cancel(&s->timers, &c->timer);
        struct ag_pg_query *q;
        while ((q = ql_pop(&c->held)))
            PQclear(q->res);
        if (c->pg)
            PQfinish(c->pg);
        ag_free(c->items);
    }
    ag_free(ps->conns);
    ag_free(ps);
    s->pg = NULL;
}
