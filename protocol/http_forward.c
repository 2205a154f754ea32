/* Cross-shard forwarding: a request for a thread owned by another shard runs there, and its answer, whole
 * or piece by piece, comes back to the connection's shard, which writes it. The connection's side of a
 * forwarded request is http_conn.fwd (its states in http_internal.h); the executing side is in the
 * request: x_ended, the piece queue (xq_*) and the shard's xwait list. */
#include "protocol/http.h"

#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "net/conn.h"
#include "protocol/http_internal.h"
#include "protocol/stats.h"

/* Cross-shard message types of this module. */
enum {
    MSG_HTTP_RUN = 16,   /* ptr: request to run on the receiving (owner) shard */
    MSG_HTTP_DONE = 17,  /* ptr: request answered in full on the owner; write it */
    MSG_HTTP_PIECE = 18, /* ptr: struct xpiece of a streamed answer, for the connection's shard (data lane) */
    MSG_HTTP_GONE = 19,  /* ptr: request whose client left, for the owner */
    MSG_HTTP_FAN = 20,   /* ptr: struct ag_http_xfan, one piece for several streamed answers (data lane) */
};

/* --- whole answers ---
 * A request for a thread owned by another shard is held on its connection's shard (H_WAIT, the
 * connection paused and held) and its pointer sent to the owner, which runs the handler with
 * r->shard set to itself. The answer is kept in the request (ag_http_respond sees the foreign
 * connection) and the pointer sent back; the connection's shard writes it and finishes the request.
 * Between the two messages only the owner touches the request. */

int ag_http_forward(struct ag_req *r, int to)
{
    struct http_req *q = hr_of(r);
    AG_BUG_ON(to < 0 || to >= r->shard->rt->nshards || to == r->shard->id);
    AG_BUG_ON(r->shard != q->conn->shard); /* a forwarded request is not forwarded again */
    q->fwd_to = to;
    if (hc_of(q->conn)->state == H_WAIT) /* later, from a callback: the handler returned long ago */
        ag_http__send_forward(hc_of(q->conn));
    return AG_AGAIN;
}

void ag_http__send_forward(struct http_conn *h)
{
    struct http_req *q = &h->req;
    struct ag_req *r = &q->pub;
    struct ag_msg m = {.type = MSG_HTTP_RUN, .ptr = q};
    struct ag_shard *s = r->shard;
    int to = q->fwd_to;
    q->fwd_to = -1;
    h->fwd = FWD_AWAY;
    h->fwd_shard = to;
    if (ag_shard_send(s, to, &m) == 0) {
        /* r belongs to the owner now: not one more access until it comes back. */
        ag_stat_add(&s->stats, AG_STAT_REQ_FORWARDED, 1);
        return;
    }
    h->fwd = FWD_NONE;
    ag_http_add_header(r, "retry-after", "1");
    ag_http_error(r, 503, "server busy: the thread's shard has too many requests queued");
    ag_http_done(r);
}

static void send_back_task(struct ag_task *t);

void ag_http__send_back(struct http_req *q)
{
    struct ag_msg m = {.type = MSG_HTTP_DONE, .ptr = q};
    q->x_ended = true; /* read by on_msg_gone if the client's goodbye crosses this answer */
    if (ag_shard_send(q->pub.shard, q->conn->shard->id, &m) == 0)
        return;
    /* The way back is full: retry next turn (the answer exists, it must not be lost). */
    q->xtask.fn = send_back_task;
    ag_shard_defer(q->pub.shard, &q->xtask);
}

static void send_back_task(struct ag_task *t)
{
    ag_http__send_back(AG_CONTAINER_OF(t, struct http_req, xtask));
}

/* The forwarded request whose handler runs now on this (owner) shard: its pieces are queued, not sent,
 * until the handler returned, since the last of them (a stream ended within the handler) hands the
 * request back to the connection's shard, which may reuse it at once. */
static _Thread_local struct http_req *in_handler;

static void xq_flush(struct http_req *q);

static void on_msg_run(struct ag_shard *s, const struct ag_msg *m)
{
    struct http_req *q = m->ptr;
    struct ag_req *r = &q->pub;
    r->shard = s;
    in_handler = q;
    int rc = q->match.route->fn(r);
    in_handler = NULL;
    AG_BUG_ON(q->fwd_to >= 0);
    if (rc == AG_AGAIN && (!q->status || q->streaming)) {
        /* ag_http_done (or the stream's end) sends it back. Last access to q: what the handler
         * streamed goes now, its end perhaps among it. */
        if (q->xq_head)
            xq_flush(q);
        return;
    }
    if (!q->status)
        ag_http_error(r, 500, "An unexpected error occurred");
    ag_http__send_back(q);
}

static void write_done(struct ag_shard *s, struct http_req *q);

static void on_msg_done(struct ag_shard *s, const struct ag_msg *m)
{
    struct http_req *q = m->ptr;
    struct http_conn *h = hc_of(q->conn);
    if (h->fwd == FWD_GONE) {
        h->fwd = FWD_GONE_END; /* the owner still owes the ack of our goodbye */
        return;
    }
    write_done(s, q);
}

static void write_done(struct ag_shard *s, struct http_req *q)
{
    struct ag_req *r = &q->pub;
    hc_of(q->conn)->fwd = FWD_NONE;
    int status = q->status;
    q->status = 0;
    r->shard = s;
    ag_http_respond(r, status, q->xctype, q->xbody.base, q->xbody.len);
    ag_http_done(r);
}

/* --- streamed answers ---
 * On the connection's shard a piece is written straight to the connection. From an owner shard each
 * piece (the head, body pieces, the end) is copied into an xpiece and queued on the request; the
 * queue is sent in order on the data lane, and whatever that lane cannot take now waits, on the
 * shard's xwait list, until the connection's shard says it took from the lane (ag_http_data_room).
 * A request is on that list exactly while it has pieces queued: xq_flush runs only on a request off
 * the list (its queue empty, or just taken from the list) and puts it there when the lane refuses a
 * piece. So that a client that does not read costs its owner no more than it would cost its own
 * shard, the owner counts the body bytes it holds for the request (xq_bytes) and those sent but not
 * yet taken by the connection's shard (x_unread, which that shard decrements); once they exceed the
 * backlog the owner cuts the client off as ag_http__conn_piece does: it drops the body pieces it
 * holds, stops producing for it (r->gone, on_gone), and sends XP_CUT, on which the connection's shard
 * closes the connection. The client resumes with Last-Event-ID.
 *
 * A client that leaves a forwarded request: the connection's shard sends MSG_HTTP_GONE and keeps the
 * request (and the held connection) until the owner acknowledges with an XP_GONE_ACK piece, so the
 * owner can read the request's flags however the end and the goodbye cross. */

enum xkind { XP_HEAD, XP_DATA, XP_END, XP_GONE_ACK, XP_CUT };

struct ag_http_xpiece {
    struct ag_http_xpiece *next;
    struct http_req *q;
    enum xkind kind;
    uint32_t len;
    char data[];
};

static void fan_send(struct ag_shard *s, int to);

/* Sends queued pieces in order; q is not on the xwait list, and goes there if the lane refuses one.
 * After the last send the request may be finished by the connection's shard: nothing of q is touched
 * once its final piece left. */
static void xq_flush(struct http_req *q)
{
    struct ag_shard *s = q->pub.shard;
    int to = q->conn->shard->id;
    fan_send(s, to); /* a piece it carries for q goes first */
    while (q->xq_head) {
        struct ag_http_xpiece *x = q->xq_head;
        struct ag_http_xpiece *next = x->next;
        bool last = !next && (x->kind == XP_END || x->kind == XP_GONE_ACK);
        q->xq_head = next;
        if (!next)
            q->xq_tail = NULL;
        struct ag_msg m = {.type = MSG_HTTP_PIECE, .ptr = x};
        uint32_t body = x->kind == XP_DATA ? x->len : 0;
        /* Moved before the send: the connection's shard may take it (and subtract) at once, and q is
         * not to be touched after the last piece left. */
        q->xq_bytes -= body;
        atomic_fetch_add_explicit(&q->x_unread, body, memory_order_relaxed);
        if (ag_shard_send_data(s, to, &m) != 0) {
            atomic_fetch_sub_explicit(&q->x_unread, body, memory_order_relaxed);
            q->xq_bytes += body;
            x->next = q->xq_head;
            q->xq_head = x;
            if (!q->xq_tail)
                q->xq_tail = x;
            /* The connection's shard says when it took from the lane (ag_http_data_room): waiting for
             * that, not retrying every turn, leaves this shard free meanwhile. Pieces that come
             * meanwhile queue behind these. */
            struct http_shard *hs = hs_of(s);
            q->xwait_next = hs->xwait;
            hs->xwait = q;
            return;
        }
        if (last)
            return;
    }
}

void ag_http_data_room(struct ag_shard *s, int to)
{
    struct http_shard *hs = hs_of(s);
    struct http_req *list = hs->xwait;
    hs->xwait = NULL;
    while (list) {
        struct http_req *q = list;
        list = q->xwait_next; /* read first: q may be finished by its connection's shard once sent */
        if (q->conn->shard->id == to) {
            xq_flush(q);
        } else {
            q->xwait_next = hs->xwait;
            hs->xwait = q;
        }
    }
}

/* Appends x to the request's queue and sends what the lane takes. */
static void xq_append(struct http_req *q, struct ag_http_xpiece *x)
{
    /* A fan that holds a piece for q goes first (a refused one queues its pieces before x). */
    fan_send(q->pub.shard, q->conn->shard->id);
    x->next = NULL;
    x->q = q;
    if (x->kind == XP_DATA)
        q->xq_bytes += x->len;
    /* Nothing queued (so not waiting for room): send now. Otherwise it goes behind the rest. */
    bool idle = !q->xq_head;
    if (q->xq_tail)
        q->xq_tail->next = x;
    else
        q->xq_head = x;
    q->xq_tail = x;
    if (idle && q != in_handler)
        xq_flush(q);
}

static void xq_push(struct http_req *q, enum xkind kind, const char *p, size_t n)
{
    struct ag_http_xpiece *x = ag_malloc(sizeof *x + n);
    x->kind = kind;
    x->len = (uint32_t)n;
    if (n)
        memcpy(x->data, p, n);
    xq_append(q, x);
}

void ag_http__x_head(struct http_req *q, const char *content_type)
{
    struct ag_http_xpiece *x = ag_malloc(sizeof *x + ag_http__head_max(q, content_type));
    char *e = ag_http__write_head(q, hs_of(q->pub.shard), x->data, content_type, -1);
    x->kind = XP_HEAD;
    x->len = (uint32_t)(e - x->data);
    xq_append(q, x);
}

static void x_cut(struct http_req *q, uint64_t unread);

/* The owner's side of the backlog: a client that already holds more than the backlog here and in flight
 * is cut off, and the piece is not copied (it will not get it). As on the connection's shard, a piece
 * larger than the backlog by itself does not cut off a client that reads. True when the client of q may
 * be given more. */
static bool x_room(struct http_req *q)
{
    uint64_t unread = q->xq_bytes + atomic_load_explicit(&q->x_unread, memory_order_relaxed);
    if (unread <= hs_of(q->pub.shard)->lim->stream_backlog_bytes) return true;
    x_cut(q, unread);
    return false;
}

void ag_http__x_data(struct http_req *q, const char *p, size_t n)
{
    if (x_room(q)) xq_push(q, XP_DATA, p, n);
}

/* --- fans ---
 * An event fanned out to many streams (v1 joins and thread streams, v2 sessions) is one obuf written to
 * each. For the streams whose connections are on another shard, the pieces of one obuf are gathered per
 * connection's shard into a fan and sent in one message with one copy of the bytes, instead of a
 * message and a copy per stream. The copy is a new obuf handed over whole (obufs are shard-local: the
 * sender never touches it again), which the receiver writes to each connection by reference. A fan is
 * sent when a piece of another obuf comes for the same shard, before any other piece of a request goes
 * to the data lane (so each request's pieces keep their order: the lane's), and at the end of the loop
 * turn (ag_http_flush). A fan the lane refuses becomes a copied piece queued on each of its requests. */

struct ag_http_xfan {
    struct ag_obuf *b; /* handed over to the receiver */
    uint32_t body;     /* body bytes of the piece, for x_unread */
    uint32_t n;
    struct http_req *qs[];
};

/* What gathers on this shard for shard `to`. */
struct xfan_pend {
    struct ag_obuf *src; /* the piece (one reference), NULL: none gathers */
    struct ag_http_xfan *f;
    uint32_t cap;
};

static struct xfan_pend *fan_pend(struct ag_shard *s, int to)
{
    struct http_shard *hs = hs_of(s);
    if (!hs->fans) hs->fans = ag_calloc((size_t)s->rt->nshards, sizeof *hs->fans);
    return &hs->fans[to];
}

static void fan_send(struct ag_shard *s, int to)
{
    struct http_shard *hs = hs_of(s);
    if (!hs->fans || !hs->fans[to].src) return;
    struct xfan_pend *p = &hs->fans[to];
    struct ag_http_xfan *f = p->f;
    struct ag_obuf *src = p->src;
    p->src = NULL;
    p->f = NULL;
    p->cap = 0;
    f->b = ag_obuf_new(src->len);
    memcpy(f->b->data, src->data, src->len);
    f->b->len = src->len;
    struct ag_msg m = {.type = MSG_HTTP_FAN, .ptr = f};
    if (ag_shard_send_data(s, to, &m) != 0) {
        /* The lane is full: each request queues its own copy, sent as the lane takes them. */
        const char *body = src->data + AG_HTTP_PIECE_HEAD;
        for (uint32_t i = 0; i < f->n; i++) {
            atomic_fetch_sub_explicit(&f->qs[i]->x_unread, f->body, memory_order_relaxed);
            xq_push(f->qs[i], XP_DATA, body, f->body);
        }
        ag_obuf_unref(f->b);
        ag_free(f);
    }
    ag_obuf_unref(src);
}

void ag_http__x_obuf(struct http_req *q, struct ag_obuf *b)
{
    uint32_t n = b->len - AG_HTTP_PIECE_HEAD - 2;
    if (!x_room(q)) return;
    if (q->xq_head || q == in_handler) {
        xq_push(q, XP_DATA, b->data + AG_HTTP_PIECE_HEAD, n); /* behind what waits, or held */
        return;
    }
    struct ag_shard *s = q->pub.shard;
    int to = q->conn->shard->id;
    struct xfan_pend *p = fan_pend(s, to);
    if (p->src != b) {
        fan_send(s, to);
        p->src = ag_obuf_ref(b);
    }
    uint32_t k = p->f ? p->f->n : 0;
    if (k == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->f = ag_realloc(p->f, sizeof *p->f + p->cap * sizeof *p->f->qs);
        p->f->n = k;
    }
    p->f->body = n;
    p->f->qs[p->f->n++] = q;
    atomic_fetch_add_explicit(&q->x_unread, n, memory_order_relaxed);
}

void ag_http_flush(struct ag_shard *s)
{
    struct http_shard *hs = hs_of(s);
    if (!hs->fans) return;
    for (int to = 0; to < s->rt->nshards; to++)
        fan_send(s, to);
}

void ag_http__fans_free(struct ag_shard *s)
{
    struct http_shard *hs = hs_of(s);
    if (!hs->fans) return;
    for (int to = 0; to < s->rt->nshards; to++) {
        if (hs->fans[to].src) ag_obuf_unref(hs->fans[to].src);
        ag_free(hs->fans[to].f);
    }
    ag_free(hs->fans);
    hs->fans = NULL;
}

static void on_msg_fan(struct ag_shard *s, const struct ag_msg *m)
{
    struct ag_http_xfan *f = m->ptr;
    for (uint32_t i = 0; i < f->n; i++) {
        struct http_req *q = f->qs[i];
        AG_BUG_ON(q->conn->shard != s || hc_of(q->conn)->state != H_WAIT);
        atomic_fetch_sub_explicit(&q->x_unread, f->body, memory_order_relaxed);
        ag_http__conn_obuf(hc_of(q->conn), f->b);
    }
    ag_obuf_unref(f->b);
    ag_free(f);
}

/* The owner gives up on the client of q, which holds `unread` bytes here and in flight. */
static void x_cut(struct http_req *q, uint64_t unread)
{
    ag_log(AG_LOG_WARN, "req=%.*s streaming client on shard %d cut off: %llu bytes unread", (int)q->pub.id_len,
           q->pub.id, q->conn->shard->id, (unsigned long long)unread);
    /* XP_CUT is queued first, then the body pieces held here are dropped: dropping them may empty a
     * queue that waits for room, and xq_push must see it waiting. What else is queued (the head) still
     * goes, in order, before XP_CUT. q stays valid once XP_CUT left: the connection's shard finishes it
     * only on its end, which comes later. */
    xq_push(q, XP_CUT, NULL, 0);
    struct ag_http_xpiece **pp = &q->xq_head, *tail = NULL;
    while (*pp) {
        struct ag_http_xpiece *x = *pp;
        if (x->kind == XP_DATA) {
            *pp = x->next;
            ag_free(x);
        } else {
            tail = x;
            pp = &x->next;
        }
    }
    q->xq_tail = tail;
    q->xq_bytes = 0;
    ag_http__gone(q, q->pub.shard);
}

void ag_http__x_end(struct http_req *q)
{
    q->x_ended = true;
    xq_push(q, XP_END, NULL, 0);
}

static void on_msg_piece(struct ag_shard *s, const struct ag_msg *m)
{
    struct ag_http_xpiece *x = m->ptr;
    struct http_req *q = x->q;
    struct ag_req *r = &q->pub;
    struct http_conn *h = hc_of(q->conn);
    AG_BUG_ON(q->conn->shard != s || h->state != H_WAIT);
    switch (x->kind) {
    case XP_HEAD:
        h->hb = q->hb;
        h->hb_ms = q->hb_ms;
        ag_http__conn_head(h, x->data, x->len);
        break;
    case XP_DATA:
        atomic_fetch_sub_explicit(&q->x_unread, x->len, memory_order_relaxed);
        ag_http__conn_piece(h, x->data, x->len);
        break;
    case XP_CUT:
        /* The owner gave up on a client that did not read: close, so it resumes elsewhere. The close
         * reports the goodbye to the owner like any other (request_gone). */
        ag_conn_close(q->conn, AG_CLOSE_NOW);
        break;
    case XP_END:
        if (h->fwd == FWD_GONE) {
            h->fwd = FWD_GONE_END; /* the owner still owes the ack of our goodbye */
            break;
        }
        r->shard = s;
        ag_http__conn_end(h);
        break;
    case XP_GONE_ACK:
        if (h->fwd == FWD_GONE) {
            h->fwd = FWD_AWAY;
        } else if (h->fwd == FWD_GONE_END) {
            h->fwd = FWD_AWAY; /* the held end, written now, makes it FWD_NONE */
            if (q->streaming) {
                r->shard = s;
                ag_http__conn_end(h);
            } else {
                write_done(s, q);
            }
        }
        break;
    }
    ag_free(x);
}

/* The owner learns that the client of q left. */
static void on_msg_gone(struct ag_shard *s, const struct ag_msg *m)
{
    struct http_req *q = m->ptr;
    AG_BUG_ON(q->pub.shard != s);
    if (!q->x_ended && !q->pub.gone)
        ag_http__gone(q, s);
    xq_push(q, XP_GONE_ACK, NULL, 0);
}

static void send_gone(struct http_conn *h);

static void send_gone_task(struct ag_task *t)
{
    send_gone(AG_CONTAINER_OF(t, struct http_conn, gone_retry));
}

static void send_gone(struct http_conn *h)
{
    struct ag_msg m = {.type = MSG_HTTP_GONE, .ptr = &h->req};
    if (ag_shard_send(h->conn->shard, h->fwd_shard, &m) != 0) {
        h->gone_retry.fn = send_gone_task;
        ag_shard_defer(h->conn->shard, &h->gone_retry);
    }
}

void ag_http__fwd_goodbye(struct http_conn *h)
{
    if (h->fwd != FWD_AWAY)
        return; /* a goodbye is out already: its ack is awaited */
    h->fwd = FWD_GONE;
    send_gone(h);
}

void ag_http_register(void)
{
    ag_shard_register_msg(MSG_HTTP_RUN, on_msg_run);
    ag_shard_register_msg(MSG_HTTP_DONE, on_msg_done);
    ag_shard_register_msg(MSG_HTTP_PIECE, on_msg_piece);
    ag_shard_register_msg(MSG_HTTP_GONE, on_msg_gone);
    ag_shard_register_msg(MSG_HTTP_FAN, on_msg_fan);
}

