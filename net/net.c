#define _GNU_SOURCE
#include "net/net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/net_internal.h"
#include "net/stats.h"

#define BUF_COUNT 256
#define BUF_SIZE 16384

int ag_net_listen(const char *host, int port, int *bound_port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int r = getaddrinfo(host, portstr, &hints, &res);
    if (r != 0) {
        ag_log(AG_LOG_ERROR, "msg=\"cannot resolve listen address\" host=%s error=\"%s\"", host, gai_strerror(r));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* inherited by accepted sockets */
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        r = -errno;
        close(fd);
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    r = fd;
out:
    freeaddrinfo(res);
    return r;
}

struct ag_conn *ag_net__conn_from_ud(struct ag_shard *s, uint64_t ud)
{
    struct net_shard *n = net_of(s);
    uint32_t idx = ag_ud_idx(ud);
    if (idx >= n->nslots)
        return NULL;
    struct ag_conn *c = n->slots[idx];
    if ((c->gen & 0xffffffu) != ag_ud_gen(ud))
        return NULL;
    return c;
}

void ag_net__recycle_buf(struct net_shard *n, unsigned bid)
{
    io_uring_buf_ring_add(n->br, n->bufs + (size_t)bid * n->bufsz, n->bufsz, (unsigned short)bid, n->br_mask,
                          (int)n->br_recycled);
    n->br_recycled++;
}

void ag_net__mark_dirty(struct ag_conn *c)
{
    if (c->flags & AG_CONN_F_DIRTY)
        return;
    struct net_shard *n = net_of(c->shard);
    c->flags |= AG_CONN_F_DIRTY;
    c->dirty_next = n->dirty;
    n->dirty = c;
}

static void free_task(struct ag_task *t)
{
    struct ag_conn *c = AG_CONTAINER_OF(t, struct ag_conn, task);
    struct ag_shard *s = c->shard;
    struct net_shard *n = net_of(s);
    if (n->cfg.handler->on_close)
        n->cfg.handler->on_close(c);
    ag_conn__free_buffers(c);
    c->gen++;
    c->flags = 0;
    n->free_idx[n->nfree++] = c->idx;
    n->nopen--;
    ag_stat_sub(&s->stats, AG_STAT_CONN_OPEN, 1);
}

void ag_net__release(struct ag_conn *c)
{
    c->task.fn = free_task;
    ag_shard_defer(c->shard, &c->task);
}

static struct ag_conn *conn_get(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    struct ag_conn *c;
    if (n->nfree) {
        c = n->slots[n->free_idx[--n->nfree]];
    } else {
        if (n->nslots == n->cap_slots) {
            n->cap_slots = n->cap_slots ? n->cap_slots * 2 : 256;
            n->slots = ag_realloc(n->slots, n->cap_slots * sizeof *n->slots);
            n->free_idx = ag_realloc(n->free_idx, n->cap_slots * sizeof *n->free_idx);
        }
        c = ag_calloc(1, sizeof *c + n->cfg.priv_size);
        c->idx = n->nslots;
        n->slots[n->nslots++] = c;
    }
    uint32_t idx = c->idx, gen = c->gen;
    memset(c, 0, sizeof *c + n->cfg.priv_size);
    c->idx = idx;
    c->gen = gen;
    c->fd = -1;
    c->shard = s;
    n->nopen++;
    return c;
}

static void arm_accept(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    struct io_uring_sqe *sqe = ag_shard_sqe(s);
    io_uring_prep_multishot_accept(sqe, n->cfg.listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_ACCEPT, 0, 0));
    n->accept_armed = true;
}

static void on_accept_backoff(struct ag_timer *t)
{
    struct net_shard *n = AG_CONTAINER_OF(t, struct net_shard, accept_timer);
    n->accept_paused = false;
    if (n->accepting && !n->accept_armed)
        arm_accept(n->shard);
}

/* Ends the multishot accept (its last completion comes without IORING_CQE_F_MORE). */
static void cancel_accept(struct ag_shard *s)
{
    struct io_uring_sqe *sqe = ag_shard_sqe(s);
    io_uring_prep_cancel64(sqe, ag_ud(AG_OP_ACCEPT, 0, 0), 0);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_NONE, 0, 0));
}

/* Out of descriptors (or memory): stop accepting for a while, until connections have closed. */
static void pause_accept(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    if (n->accept_paused)
        return;
    n->accept_paused = true;
    if (n->accept_armed)
        cancel_accept(s);
    ag_timer_arm(&s->timers, &n->accept_timer, s->now_ns + ag_ms_to_ns(NET_ACCEPT_BACKOFF_MS));
}

static void accept_failed(struct ag_shard *s, int err)
{
    struct net_shard *n = net_of(s);
    n->accept_failures++;
    if (s->now_ns >= n->accept_log_ns) {
        ag_log(AG_LOG_WARN, "msg=\"accept failed\" error=\"%s\" failures=%llu", strerror(err),
               (unsigned long long)n->accept_failures);
        n->accept_failures = 0;
        n->accept_log_ns = s->now_ns + ag_ms_to_ns(NET_ACCEPT_LOG_MS);
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
        pause_accept(s);
}

static void on_accept(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    struct net_shard *n = net_of(s);
    if (!(cqe->flags & IORING_CQE_F_MORE))
        n->accept_armed = false;
    if (cqe->res >= 0) {
        int fd = cqe->res;
        bool reject = n->nopen >= n->cfg.max_conns;
        if (reject && n->nopen >= n->cfg.max_conns + AG_NET_REJECT_RESERVE) {
            close(fd); /* far over the limit: no room even to say why */
            ag_stat_add(&s->stats, AG_STAT_CONN_REJECTED, 1);
        } else {
            struct ag_conn *c = conn_get(s);
            c->fd = fd;
            if (reject) {
                c->flags |= AG_CONN_F_REJECTED;
                ag_stat_add(&s->stats, AG_STAT_CONN_REJECTED, 1);
            }
            ag_stat_add(&s->stats, AG_STAT_CONN_ACCEPTED, 1);
            ag_stat_add(&s->stats, AG_STAT_CONN_OPEN, 1);
            ag_conn__arm_recv(c);
            n->cfg.handler->on_open(c);
        }
    } else if (cqe->res != -ECANCELED) {
        accept_failed(s, -cqe->res);
    }
    if (!n->accept_armed && n->accepting && !n->accept_paused)
        arm_accept(s);
}

static void on_recv(struct ag_shard *s, struct io_uring_cqe *cqe)
{
    ag_conn__on_recv(s, cqe);
}

void ag_net_register(void)
{
    ag_shard_register_op(AG_OP_ACCEPT, on_accept);
    ag_shard_register_op(AG_OP_RECV, on_recv);
    ag_shard_register_op(AG_OP_SEND, ag_conn__on_send);
    ag_shard_register_op(AG_OP_CLOSE, ag_conn__on_close_done);
}

int ag_net_start(struct ag_shard *s, const struct ag_net_config *cfg)
{
    struct net_shard *n = ag_calloc(1, sizeof *n);
    s->net = n;
    n->cfg = *cfg;
    n->shard = s;
    ag_timer_init(&n->accept_timer, on_accept_backoff);
    n->nbufs = BUF_COUNT;
    n->bufsz = BUF_SIZE;
    n->br_mask = io_uring_buf_ring_mask(n->nbufs);
    size_t ring_bytes = n->nbufs * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    n->br = mem;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = n->nbufs, .bgid = NET_BGID};
    int r = io_uring_register_buf_ring(&s->ring, &reg, 0);
    if (r < 0) {
        ag_log(AG_LOG_ERROR, "msg=\"cannot register the buffer ring\" error=\"%s\"", strerror(-r));
        return r;
    }
    io_uring_buf_ring_init(n->br);
    n->bufs = ag_malloc((size_t)n->nbufs * n->bufsz);
    for (unsigned i = 0; i < n->nbufs; i++)
        ag_net__recycle_buf(n, i);
    io_uring_buf_ring_advance(n->br, (int)n->br_recycled);
    n->br_recycled = 0;
    n->accepting = true;
    arm_accept(s);
    return 0;
}

void ag_net_stop_accepting(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    if (!n->accepting)
        return;
    n->accepting = false;
    n->accept_paused = false;
    ag_timer_cancel(&s->timers, &n->accept_timer);
    cancel_accept(s);
    struct io_uring_sqe *sqe = ag_shard_sqe(s);
    io_uring_prep_close(sqe, n->cfg.listen_fd);
    io_uring_sqe_set_data64(sqe, ag_ud(AG_OP_NONE, 0, 0));
    n->cfg.listen_fd = -1;
}

void ag_net_flush(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    if (!n)
        return;
    if (n->br_recycled) {
        io_uring_buf_ring_advance(n->br, (int)n->br_recycled);
        n->br_recycled = 0;
    }
    while (n->dirty) {
        struct ag_conn *c = n->dirty;
        n->dirty = c->dirty_next;
        c->dirty_next = NULL;
        c->flags &= ~AG_CONN_F_DIRTY;
        ag_conn__flush(c);
    }
}

void ag_net_foreach(struct ag_shard *s, void (*fn)(struct ag_conn *c, void *arg), void *arg)
{
    struct net_shard *n = net_of(s);
    for (uint32_t i = 0; i < n->nslots; i++) {
        struct ag_conn *c = n->slots[i];
        if (c->shard && c->fd >= 0 && !(c->flags & AG_CONN_F_CLOSED) && !c->task.queued)
            fn(c, arg);
    }
}

bool ag_net_idle(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    return !n || (n->nopen == 0 && !n->accept_armed);
}

void ag_net_exit(struct ag_shard *s)
{
    struct net_shard *n = net_of(s);
    if (!n)
        return;
    if (n->cfg.listen_fd >= 0)
        close(n->cfg.listen_fd);
    ag_timer_cancel(&s->timers, &n->accept_timer);
    for (uint32_t i = 0; i < n->nslots; i++) {
        struct ag_conn *c = n->slots[i];
        if (c->fd >= 0)
            close(c->fd);
        if (c->gen && n->cfg.handler->on_exit)
            n->cfg.handler->on_exit(c);
        ag_conn__free_buffers(c);
        ag_free(c);
    }
    ag_free(n->slots);
    ag_free(n->free_idx);
    ag_obuf_pool_free();
    io_uring_unregister_buf_ring(&s->ring, NET_BGID);
    munmap(n->br, n->nbufs * sizeof(struct io_uring_buf));
    ag_free(n->bufs);
    ag_free(n);
    s->net = NULL;
}
