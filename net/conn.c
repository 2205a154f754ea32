#include "net/conn.h"

#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/net_internal.h"
#include "net/stats.h"


static const struct ag_conn_handler *handler_of(struct ag_conn *c)
{
    return net_of(c->shard)->cfg.handler;
}

static void maybe_release(struct ag_conn *c)
{
    if ((c->flags & AG_CONN_F_CLOSED) && c->inflight == 0 && !c->task.queued)
        ag_net__release(c);
}

void ag_conn__arm_recv(struct ag_conn *c)
{
    struct io_uring_sqe *sqe = ag_shard_sqe(c->shard);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = NET_BGID;
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_RECV, c->gen, c->idx));
    c->flags |= AG_CONN_F_RECV_ARMED;
    c->inflight++;
}

static void do_close(struct ag_conn *c)
{
    if (c->flags & AG_CONN_F_CLOSED)
        return;
    struct ag_shard *s = c->shard;
    c->flags |= AG_CONN_F_CLOSED;
    c->flags &= ~(AG_CONN_F_CLOSE_AFTER | AG_CONN_F_LINGER);
    ag_timer_cancel(&s->timers, &c->timer);
    struct io_uring_sqe *sqe;
    if (c->flags & AG_CONN_F_RECV_ARMED) {
        sqe = ag_shard_sqe(s);
        io_uring_prep_cancel64(sqe, ag_ud(AG_OP_RECV, c->gen, c->idx), 0);
        io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_NONE, 0, 0));
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    sqe = ag_shard_sqe(s);
    io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_CLOSE, c->gen, c->idx));
    c->inflight++;
    c->fd = -1;
    if (handler_of(c)->on_hangup)
        handler_of(c)->on_hangup(c);
}

static void on_linger_timeout(struct ag_timer *t)
{
    do_close(AG_CONTAINER_OF(t, struct ag_conn, timer));
}

/* The output queue is empty and a close was asked for. */
static void finish_close(struct ag_conn *c)
{
    if (!(c->flags & AG_CONN_F_LINGER) || (c->flags & AG_CONN_F_EOF)) {
        do_close(c);
        return;
    }
    /* Shut the write side so the client sees the response and EOF, then discard its input until it
     * closes too, so unread request bytes cannot turn our close into a reset that loses the answer. */
    struct ag_shard *s = c->shard;
    struct io_uring_sqe *sqe = ag_shard_sqe(s);
    io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_NONE, 0, 0));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    c->flags &= ~AG_CONN_F_CLOSE_AFTER;
    ag_buf_free(&c->in);
    ag_timer_cancel(&s->timers, &c->timer);
    c->timer.cb = on_linger_timeout;
    ag_timer_arm(&s->timers, &c->timer, s->now_ns + ag_ms_to_ns(net_of(s)->cfg.linger_ms));
    if (!(c->flags & AG_CONN_F_RECV_ARMED))
        ag_conn__arm_recv(c);
}

void ag_conn_close(struct ag_conn *c, enum ag_close_how how)
{
    if (c->flags & AG_CONN_F_CLOSED)
        return;
    if (how == AG_CLOSE_NOW) {
        do_close(c);
        maybe_release(c);
        return;
    }
    if (c->flags & AG_CONN_F_LINGER)
        return;
    c->flags |= AG_CONN_F_CLOSE_AFTER;
    if (how == AG_CLOSE_LINGER)
        c->flags |= AG_CONN_F_LINGER;
    if (!c->seg_count && !(c->flags & AG_CONN_F_SENDING))
        finish_close(c);
}

/* --- output --- */

void ag_conn__free_buffers(struct ag_conn *c)
{
    ag_buf_free(&c->in);
    while (c->seg_count) {
        ag_obuf_unref(c->segs[c->seg_head].buf);
        c->seg_head = (c->seg_head + 1) % c->seg_cap;
        c->seg_count--;
    }
    ag_free(c->segs);
    c->segs = NULL;
    c->seg_cap = c->seg_head = 0;
}

static struct ag_oseg *push_seg(struct ag_conn *c)
{
    if (c->seg_count == c->seg_cap) {
        uint32_t cap = c->seg_cap ? c->seg_cap * 2 : 4;
        struct ag_oseg *segs = ag_malloc(cap * sizeof *segs);
        for (uint32_t i = 0; i < c->seg_count; i++)
            segs[i] = c->segs[(c->seg_head + i) % c->seg_cap];
        ag_free(c->segs);
        c->segs = segs;
        c->seg_cap = cap;
        c->seg_head = 0;
    }
    struct ag_oseg *sg = &c->segs[(c->seg_head + c->seg_count) % c->seg_cap];
    c->seg_count++;
    return sg;
}

static struct ag_oseg *last_seg(struct ag_conn *c)
{
    return c->seg_count ? &c->segs[(c->seg_head + c->seg_count - 1) % c->seg_cap] : NULL;
}

char *ag_conn_wbuf(struct ag_conn *c, size_t n)
{
    struct ag_oseg *sg = last_seg(c);
    if (sg) {
        struct ag_obuf *b = sg->buf;
        if (b->refs == 1 && sg->off + sg->len == b->len && b->cap - b->len >= n)
            return b->data + b->len;
    }
    sg = push_seg(c);
    sg->buf = ag_obuf_new((uint32_t)AG_MAX(n, AG_OBUF_STD));
    sg->off = sg->len = 0;
    return sg->buf->data;
}

void ag_conn_commit(struct ag_conn *c, size_t n)
{
    struct ag_oseg *sg = last_seg(c);
    sg->len += (uint32_t)n;
    sg->buf->len += (uint32_t)n;
    if (!c->out_bytes)
        c->sent_ns = c->shard->now_ns;
    c->out_bytes += n;
    if (!(c->flags & AG_CONN_F_CLOSED))
        ag_net__mark_dirty(c);
}

void ag_conn_write(struct ag_conn *c, const void *p, size_t n)
{
    if (!n)
        return;
    memcpy(ag_conn_wbuf(c, n), p, n);
    ag_conn_commit(c, n);
}

void ag_conn_write_obuf(struct ag_conn *c, struct ag_obuf *b, uint32_t off, uint32_t len)
{
    if (!len)
        return;
    struct ag_oseg *sg = push_seg(c);
    sg->buf = ag_obuf_ref(b);
    sg->off = off;
    sg->len = len;
    if (!c->out_bytes)
        c->sent_ns = c->shard->now_ns;
    c->out_bytes += len;
    if (!(c->flags & AG_CONN_F_CLOSED))
        ag_net__mark_dirty(c);
}

void ag_conn__flush(struct ag_conn *c)
{
    if ((c->flags & (AG_CONN_F_SENDING | AG_CONN_F_CLOSED)) || !c->seg_count)
        return;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->seg_count && n < AG_CONN_IOV; i++) {
        struct ag_oseg *sg = &c->segs[(c->seg_head + i) % c->seg_cap];
        if (!sg->len)
            continue;
        c->iov[n].iov_base = sg->buf->data + sg->off;
        c->iov[n].iov_len = sg->len;
        n++;
    }
    if (!n)
        return;
    memset(&c->msg, 0, sizeof c->msg);
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = n;
    struct io_uring_sqe *sqe = ag_shard_sqe(c->shard);
    io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_SEND, c->gen, c->idx));
    c->flags |= AG_CONN_F_SENDING;
    c->inflight++;
}

static void advance_output(struct ag_conn *c, size_t n)
{
    c->out_bytes -= n;
    while (c->seg_count) {
        struct ag_oseg *sg = &c->segs[c->seg_head];
        size_t take = AG_MIN((size_t)sg->len, n);
        sg->off += (uint32_t)take;
        sg->len -= (uint32_t)take;
        n -= take;
        if (sg->len)
            break;
        ag_obuf_unref(sg->buf);
        c->seg_head = (c->seg_head + 1) % c->seg_cap;
        c->seg_count--;
    }
}

void ag_conn__on_send(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct ag_conn *c = ag_net__conn_from_ud(s, cqe->user_data);
    AG_BUG_ON(!c);
    c->inflight--;
    c->flags &= ~AG_CONN_F_SENDING;
    if (cqe->res < 0) {
        if (!(c->flags & AG_CONN_F_CLOSED))
            do_close(c);
        maybe_release(c);
        return;
    }
    ag_stat_add(&s->stats, AG_STAT_BYTES_SENT, (uint64_t)cqe->res);
    if (cqe->res > 0)
        c->sent_ns = s->now_ns;
    advance_output(c, (size_t)cqe->res);
    if (!(c->flags & AG_CONN_F_CLOSED)) {
        if (c->seg_count) {
            ag_net__mark_dirty(c);
        } else if (c->flags & AG_CONN_F_CLOSE_AFTER) {
            finish_close(c);
        } else if (handler_of(c)->on_drained) {
            handler_of(c)->on_drained(c);
        }
    }
    maybe_release(c);
}

void ag_conn__on_close_done(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct ag_conn *c = ag_net__conn_from_ud(s, cqe->user_data);
    AG_BUG_ON(!c);
    c->inflight--;
    maybe_release(c);
}

/* --- input --- */

static void deliver(struct ag_conn *c, char *data, size_t len)
{
    struct net_shard *n = net_of(c->shard);
    if ((c->flags & AG_CONN_F_PAUSED) || c->in.len) {
        ag_buf_append(&c->in, data, len);
        if (c->flags & AG_CONN_F_PAUSED) {
            if (c->in.len > n->cfg.max_input && (c->flags & AG_CONN_F_RECV_ARMED)) {
                /* Stop reading until the handler resumes; the cancel ends the multishot recv. */
                struct io_uring_sqe *sqe = ag_shard_sqe(c->shard);
                io_uring_prep_cancel64(sqe, ag_ud(AG_OP_RECV, c->gen, c->idx), 0);
                io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_NONE, 0, 0));
                sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
            }
            return;
        }
        data = c->in.base;
        len = c->in.len;
    }
    size_t used = n->cfg.handler->on_data(c, data, len);
    if (c->flags & AG_CONN_F_CLOSED) {
        ag_buf_free(&c->in);
        return;
    }
    if (data == c->in.base) {
        ag_buf_consume(&c->in, used);
    } else if (used < len) {
        ag_buf_append(&c->in, data + used, len - used);
    }
    if (!c->in.len) {
        ag_buf_free(&c->in);
    } else if (c->in.len > n->cfg.max_input && !(c->flags & AG_CONN_F_PAUSED)) {
        /* The handler answers oversized input long before this; keeping more would let one client
         * grow a buffer without bound. (While paused, reading stops instead: see above.) */
        ag_log(AG_LOG_WARN, "msg=\"connection input over the limit: closing\" bytes=%zu max_input=%zu", c->in.len,
               n->cfg.max_input);
        ag_conn_close(c, AG_CLOSE_NOW);
    }
}

void ag_conn__on_recv(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct net_shard *n = net_of(s);
    struct ag_conn *c = ag_net__conn_from_ud(s, cqe->user_data);
    bool more = cqe->flags & IORING_CQE_F_MORE;
    int res = cqe->res;
    if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (c && !(c->flags & (AG_CONN_F_CLOSED | AG_CONN_F_LINGER | AG_CONN_F_EOF))) {
            ag_stat_add(&s->stats, AG_STAT_BYTES_RECEIVED, (uint64_t)res);
            c->recv_ns = s->now_ns;
            deliver(c, n->bufs + (size_t)bid * n->bufsz, (size_t)res);
        }
        ag_net__recycle_buf(n, bid);
    }
    AG_BUG_ON(!c);
    if (!more) {
        c->flags &= ~AG_CONN_F_RECV_ARMED;
        c->inflight--;
    }
    if (res == 0) {
        c->flags |= AG_CONN_F_EOF;
        if (c->flags & AG_CONN_F_LINGER)
            do_close(c);
        else if (!(c->flags & AG_CONN_F_CLOSED) && handler_of(c)->on_eof)
            handler_of(c)->on_eof(c);
        else
            do_close(c);
    } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {
        do_close(c);
    }
    if (!(c->flags & (AG_CONN_F_RECV_ARMED | AG_CONN_F_CLOSED | AG_CONN_F_EOF)) && (res > 0 || res == -ENOBUFS)) {
        if (!(c->in.len > n->cfg.max_input && (c->flags & AG_CONN_F_PAUSED))) /* else resume re-arms */
            ag_conn__arm_recv(c);
    }
    maybe_release(c);
}

static void resume_task(struct ag_task *t)
{
    struct ag_conn *c = AG_CONTAINER_OF(t, struct ag_conn, task);
    if (c->flags & AG_CONN_F_CLOSED) {
        maybe_release(c); /* the release waited for this task */
        return;
    }
    if (c->flags & AG_CONN_F_PAUSED)
        return;
    if (c->in.len)
        deliver(c, c->in.base, 0);
    if (!(c->flags & (AG_CONN_F_RECV_ARMED | AG_CONN_F_CLOSED | AG_CONN_F_EOF | AG_CONN_F_LINGER)))
        ag_conn__arm_recv(c);
}

void ag_conn_pause(struct ag_conn *c)
{
    c->flags |= AG_CONN_F_PAUSED;
}

void ag_conn_resume(struct ag_conn *c)
{
    if (!(c->flags & AG_CONN_F_PAUSED))
        return;
    c->flags &= ~AG_CONN_F_PAUSED;
    if (c->flags & AG_CONN_F_CLOSED)
        return;
    c->task.fn = resume_task;
    ag_shard_defer(c->shard, &c->task);
}

void ag_conn_hold(struct ag_conn *c)
{
    c->inflight++;
}

void ag_conn_unhold(struct ag_conn *c)
{
    AG_BUG_ON(c->inflight == 0);
    c->inflight--;
    maybe_release(c);
}
