#include "conn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (256 * 1024)
#define MAX_EVENTS 512

static int ep = -1;
static struct sockaddr_in server;
static struct al_conn *queue_head, *queue_tail;
static unsigned connecting, queued;
static struct al_conn_totals totals;
static char rbuf[READ_BUF];

int al_conn_loop_init(const struct sockaddr_in *addr)
{
    server = *addr;
    ep = epoll_create1(EPOLL_CLOEXEC);
    return ep < 0 ? -errno : 0;
}

void al_conn_init(struct al_conn *c, const struct al_conn_ops *ops, void *owner)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->ops = ops;
    c->owner = owner;
}

const struct al_conn_totals *al_conn_totals(void)
{
    return &totals;
}

unsigned al_conn_pending_connects(void)
{
    return connecting + queued;
}

static void set_events(struct al_conn *c, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, op, c->fd, &e);
}

static void start_next_queued(void);

/* Closes the socket; the caller decides whether the owner hears of it. */
static void drop(struct al_conn *c)
{
    if (c->state == AL_CONN_CONNECTING) {
        connecting--;
    }
    if (c->state == AL_CONN_QUEUED) {
        /* unlink from the connect queue */
        struct al_conn **pp = &queue_head, *prev = NULL;
        while (*pp && *pp != c)
            prev = *pp, pp = &(*pp)->next_queued;
        if (*pp) {
            *pp = c->next_queued;
            if (queue_tail == c) queue_tail = prev;
            queued--;
        }
    }
    if (c->fd >= 0) close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->state = AL_CONN_CLOSED;
    c->awaiting = false;
    c->wlen = c->woff = 0;
    c->next_queued = NULL;
}

void al_conn_close(struct al_conn *c)
{
    bool was_connecting = c->state == AL_CONN_CONNECTING;
    drop(c);
    free(c->wbuf);
    c->wbuf = NULL;
    c->wcap = 0;
    if (was_connecting) start_next_queued();
}

static void fail(struct al_conn *c, const char *what)
{
    bool was_connecting = c->state == AL_CONN_CONNECTING;
    drop(c);
    if (was_connecting) {
        totals.connect_failed++;
        start_next_queued();
    }
    if (c->ops->on_error) c->ops->on_error(c, what);
}

static void connect_now(struct al_conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->state = AL_CONN_CLOSED;
        totals.connect_failed++;
        if (c->ops->on_error)
            c->ops->on_error(c, errno == EMFILE || errno == ENFILE ? "socket: too many open files" : "socket");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = AL_CONN_CONNECTING;
    connecting++;
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        fail(c, errno == ECONNREFUSED ? "connect refused" : "connect");
        return;
    }
    set_events(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void start_next_queued(void)
{
    while (queue_head && connecting < AL_CONN_CONNECT_WINDOW) {
        struct al_conn *c = queue_head;
        queue_head = c->next_queued;
        if (!queue_head) queue_tail = NULL;
        c->next_queued = NULL;
        queued--;
        connect_now(c);
    }
}

void al_conn_open(struct al_conn *c)
{
    if (c->state != AL_CONN_CLOSED) return;
    if (connecting >= AL_CONN_CONNECT_WINDOW) {
        c->state = AL_CONN_QUEUED;
        c->next_queued = NULL;
        if (queue_tail)
            queue_tail->next_queued = c;
        else
            queue_head = c;
        queue_tail = c;
        queued++;
        return;
    }
    connect_now(c);
}

/* Writes what is queued; arms EPOLLOUT while some is left. Returns -1 when the connection failed. */
static int flush(struct al_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t k = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                set_events(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
                return 0;
            }
            fail(c, "send");
            return -1;
        }
        totals.bytes_out += (uint64_t)k;
        c->woff += (size_t)k;
    }
    c->wlen = c->woff = 0;
    return 0;
}

void al_conn_request(struct al_conn *c, const char *req, size_t len)
{
    bool blocked = c->wlen > 0; /* earlier bytes wait for EPOLLOUT: append behind them */
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 1024;
        while (cap < c->wlen + len)
            cap *= 2;
        c->wbuf = realloc(c->wbuf, cap);
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, req, len);
    c->wlen += len;
    al_resp_init(&c->resp);
    c->awaiting = true;
    if (c->state == AL_CONN_OPEN && !blocked) flush(c);
}

static void cb_head(void *ud, struct al_resp *r)
{
    struct al_conn *c = ud;
    if (c->ops->on_head) c->ops->on_head(c, r);
}

static void cb_body(void *ud, const char *p, size_t n)
{
    struct al_conn *c = ud;
    if (c->ops->on_body) c->ops->on_body(c, p, n);
}

static void cb_done(void *ud, struct al_resp *r)
{
    struct al_conn *c = ud;
    c->awaiting = false;
    c->responses++;
    if (c->ops->on_done) c->ops->on_done(c, r);
}

static const struct al_resp_cb resp_cb = {cb_head, cb_body, cb_done};

/* The response ended: a server that said it would close, closes; we close first. */
static bool closing_after(struct al_conn *c, struct al_resp *r)
{
    return r->state == AL_RESP_DONE && r->close;
}

static void on_readable(struct al_conn *c)
{
    for (int rounds = 0; rounds < 4 && c->state == AL_CONN_OPEN; rounds++) {
        ssize_t k = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) fail(c, errno == ECONNRESET ? "connection reset" : "recv");
            return;
        }
        totals.reads++;
        if (k == 0) {
            bool was_awaiting = c->awaiting;
            if (was_awaiting && al_resp_eof(&c->resp, &resp_cb, c) == 0) {
                if (c->state == AL_CONN_OPEN) /* on_done did not reopen it */
                    al_conn_close(c);
                return;
            }
            fail(c, was_awaiting ? (c->resp.hlen ? "truncated response" : "closed before responding")
                                 : "closed by server");
            return;
        }
        totals.bytes_in += (uint64_t)k;
        if (!c->awaiting) {
            fail(c, "unsolicited bytes");
            return;
        }
        struct al_resp *r = &c->resp;
        long used = al_resp_feed(r, rbuf, (size_t)k, &resp_cb, c);
        /* on_done may have sent the next request (r re-armed) or closed c. */
        if (c->state != AL_CONN_OPEN) return;
        if (used < 0) {
            fail(c, "malformed response");
            return;
        }
        if ((size_t)used < (size_t)k) {
            fail(c, "bytes after the response");
            return;
        }
        if (!c->awaiting && closing_after(c, r)) {
            al_conn_close(c);
            if (c->ops->on_error) c->ops->on_error(c, "server closes (Connection: close)");
            return;
        }
        if ((size_t)k < sizeof rbuf) return;
    }
}

static void on_event(struct al_conn *c, uint32_t ev)
{
    if (c->state == AL_CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            fail(c, err == ECONNREFUSED ? "connect refused" : "connect");
            return;
        }
        if (!(ev & EPOLLOUT)) return;
        connecting--;
        c->state = AL_CONN_OPEN;
        c->responses = 0;
        totals.opened++;
        set_events(c, EPOLLIN, EPOLL_CTL_MOD);
        start_next_queued();
        if (c->wlen && flush(c) < 0) return;
        if (c->ops->on_open) c->ops->on_open(c);
        return;
    }
    if (c->state != AL_CONN_OPEN) return;
    if (ev & EPOLLOUT) {
        if (flush(c) < 0) return;
        if (c->wlen == 0) set_events(c, EPOLLIN, EPOLL_CTL_MOD);
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
}

int al_conn_loop_poll(int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(ep, evs, MAX_EVENTS, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events);
    return n;
}
