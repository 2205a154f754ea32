/* Streamed answers (ag_http_stream_*): the head, body pieces as chunks (raw for HTTP/1.0) and the end,
 * heartbeats, the cut-off of a client whose backlog grew past limits.stream_backlog_bytes, and the
 * on_gone task. On the connection's shard pieces go straight to the connection; from the thread's owner
 * they go through http_forward.c (ag_http__x_*), which hands them to ag_http__conn_* on the other side. */
#include "protocol/http.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "net/conn.h"
#include "protocol/http_internal.h"

static void on_heartbeat(struct ag_timer *t);
static void conn_wrote(struct http_conn *h, size_t n);

static void arm_heartbeat(struct http_conn *h)
{
    struct ag_shard *s = h->conn->shard;
    h->conn->timer.cb = on_heartbeat;
    ag_timer_arm(&s->timers, &h->conn->timer, s->now_ns + ag_ms_to_ns(h->hb_ms));
}

/* A client whose backlog grew past the limit is cut off: it reconnects and resumes from its last event
 * id. */
void ag_http__conn_piece(struct http_conn *h, const char *p, size_t n)
{
    struct ag_conn *c = h->conn;
    if (!n || (c->flags & AG_CONN_F_CLOSED) || ag_conn_closing(c))
        return;
    bool chunked = !h->req.http10;
    if (chunked) {
        char hdr[20];
        int k = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        ag_conn_write(c, hdr, (size_t)k);
    }
    ag_conn_write(c, p, n);
    if (chunked)
        ag_conn_write(c, "\r\n", 2);
    conn_wrote(h, n);
}

/* Accounts a body piece written to the connection, and cuts off a client that stopped reading: one that
 * had more than the backlog unread before this piece. A piece larger than the backlog by itself does not
 * cut off a client that reads (a /wait output or a values event may be). */
static void conn_wrote(struct http_conn *h, size_t n)
{
    struct ag_conn *c = h->conn;
    h->req.resp_bytes += n;
    uint64_t before = c->out_bytes > n ? c->out_bytes - n : 0;
    if (before > hs_of(c->shard)->lim->stream_backlog_bytes) {
        ag_log(AG_LOG_WARN, "req=%.*s streaming client cut off: %llu bytes unread", (int)h->req.pub.id_len,
               h->req.pub.id, (unsigned long long)c->out_bytes);
        ag_conn_close(c, AG_CLOSE_NOW);
    }
}

static void on_heartbeat(struct ag_timer *t)
{
    struct ag_conn *c = AG_CONTAINER_OF(t, struct ag_conn, timer);
    struct http_conn *h = hc_of(c);
    if (h->state != H_WAIT || !h->hb)
        return;
    ag_http__conn_piece(h, h->hb, strlen(h->hb));
    if (!ag_conn_closing(c))
        arm_heartbeat(h);
}

void ag_http__conn_head(struct http_conn *h, const char *head, size_t n)
{
    struct ag_conn *c = h->conn;
    if (c->flags & AG_CONN_F_CLOSED)
        return;
    ag_conn_write(c, head, n);
    h->req.resp_bytes += n;
    h->streaming = true;
    if (h->hb && h->hb_ms)
        arm_heartbeat(h);
}

void ag_http__conn_end(struct http_conn *h)
{
    struct ag_conn *c = h->conn;
    if (!(c->flags & AG_CONN_F_CLOSED) && !ag_conn_closing(c) && !h->req.http10)
        ag_conn_write(c, "0\r\n\r\n", 5);
    ag_timer_cancel(&c->shard->timers, &c->timer);
    h->hb = NULL;
    h->streaming = false;
    h->fwd = FWD_NONE;
    ag_http__finish(h);
}

void ag_http_stream_start(struct ag_req *r, int status, const char *content_type, const char *heartbeat,
                          uint32_t heartbeat_ms)
{
    struct http_req *q = hr_of(r);
    AG_BUG_ON(q->status != 0);
    q->status = status;
    q->streaming = true;
    q->hb = heartbeat;
    q->hb_ms = heartbeat_ms;
    if (q->http10)
        q->keep_alive = false; /* the body ends when the connection does */
    if (r->shard->draining)
        q->keep_alive = false;
    if (r->shard != q->conn->shard) {
        ag_http__x_head(q, content_type);
        return;
    }
    struct http_conn *h = hc_of(q->conn);
    h->hb = heartbeat;
    h->hb_ms = heartbeat_ms;
    char *tmp = ag_malloc(ag_http__head_max(q, content_type));
    char *e = ag_http__write_head(q, hs_of(r->shard), tmp, content_type, -1);
    ag_http__conn_head(h, tmp, (size_t)(e - tmp));
    ag_free(tmp);
}

void ag_http_stream_write(struct ag_req *r, const char *p, size_t n)
{
    struct http_req *q = hr_of(r);
    AG_BUG_ON(!q->streaming || q->x_ended);
    if (r->gone || !n)
        return;
    if (r->shard == q->conn->shard)
        ag_http__conn_piece(hc_of(q->conn), p, n);
    else
        ag_http__x_data(q, p, n);
}

struct ag_obuf *ag_http_piece_new(size_t n)
{
    struct ag_obuf *b = ag_obuf_new((uint32_t)(n + AG_HTTP_PIECE_HEAD + 2));
    char hdr[AG_HTTP_PIECE_HEAD + 1];
    snprintf(hdr, sizeof hdr, "%08zx\r\n", n); /* leading zeros are fine in a chunk size (RFC 9112 §7.1) */
    memcpy(b->data, hdr, AG_HTTP_PIECE_HEAD);
    memcpy(b->data + AG_HTTP_PIECE_HEAD + n, "\r\n", 2);
    b->len = (uint32_t)(n + AG_HTTP_PIECE_HEAD + 2);
    return b;
}

void ag_http_stream_write_piece(struct ag_req *r, struct ag_obuf *b)
{
    struct http_req *q = hr_of(r);
    AG_BUG_ON(!q->streaming || q->x_ended);
    uint32_t n = b->len - AG_HTTP_PIECE_HEAD - 2;
    if (r->gone || !n)
        return;
    if (r->shard != q->conn->shard)
        ag_http__x_obuf(q, b);
    else
        ag_http__conn_obuf(hc_of(q->conn), b);
}

void ag_http__conn_obuf(struct http_conn *h, struct ag_obuf *b)
{
    struct ag_conn *c = h->conn;
    uint32_t n = b->len - AG_HTTP_PIECE_HEAD - 2;
    if ((c->flags & AG_CONN_F_CLOSED) || ag_conn_closing(c))
        return;
    if (h->req.http10)
        ag_conn_write_obuf(c, b, AG_HTTP_PIECE_HEAD, n);
    else
        ag_conn_write_obuf(c, b, 0, b->len);
    conn_wrote(h, n);
}

bool ag_http_stream_started(const struct ag_req *r)
{
    return hr_of(r)->streaming;
}

bool ag_http_stream_behind(const struct ag_req *r)
{
    const struct http_req *q = hr_of(r);
    if (r->gone || !q->streaming || r->shard != q->conn->shard)
        return false;
    const struct ag_conn *c = q->conn;
    if ((c->flags & AG_CONN_F_CLOSED) || ag_conn_closing(c))
        return false;
    const struct ag_http_limits *l = hs_of(c->shard)->lim;
    return c->out_bytes > l->stream_backlog_bytes / 2 && c->sent_ns &&
           c->shard->now_ns - c->sent_ns < ag_ms_to_ns(AG_HTTP_READER_GRACE_MS);
}

static void stream_end_task(struct ag_task *t)
{
    ag_http_stream_end(&AG_CONTAINER_OF(t, struct http_req, xtask)->pub);
}

void ag_http_stream_end(struct ag_req *r)
{
    struct http_req *q = hr_of(r);
    if (!q->streaming || q->gone_task.queued) {
        ag_http_done(r);
        return;
    }
    AG_BUG_ON(q->x_ended);
    if (r->shard == q->conn->shard) {
        struct http_conn *h = hc_of(q->conn);
        if (h->state != H_WAIT) {
            /* Ended inside its handler, before dispatch made it a waiting request: end it from the
             * loop, once it is one. */
            q->xtask.fn = stream_end_task;
            ag_shard_defer(r->shard, &q->xtask);
            return;
        }
        ag_http__conn_end(h);
        return;
    }
    ag_http__x_end(q);
}

/* Runs on_gone from the loop, never inside the write or close that noticed the client left. A
 * request ended meanwhile is ended here, after the task left the shard's list (the request may be
 * reused as soon as it ends). */
static void gone_task(struct ag_task *t)
{
    struct http_req *q = AG_CONTAINER_OF(t, struct http_req, gone_task);
    struct ag_req *r = &q->pub;
    if (q->end_deferred) {
        q->end_deferred = false;
        ag_http_done(r);
        return;
    }
    if (r->on_gone)
        r->on_gone(r);
}

void ag_http__gone(struct http_req *q, struct ag_shard *s)
{
    q->pub.gone = true;
    q->gone_task.fn = gone_task;
    ag_shard_defer(s, &q->gone_task);
}
