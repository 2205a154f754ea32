/* HTTP/1.1 on llhttp: the connection handler, the parser's callbacks and the limits they enforce, and a
 * request's life on its connection: dispatch through the router, holding it while its handler works
 * (H_WAIT), finishing it, and going on with the next (pipelined) one. See http_internal.h for the
 * other parts. */
#include "protocol/http.h"

#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/shard.h"
#include "net/net.h"
#include "protocol/http_internal.h"
#include "protocol/stats.h"
#include "protocol/urlenc.h"
#include "runtime/owner.h"

static llhttp_settings_t settings;

size_t ag_http_conn_size(void)
{
    return sizeof(struct http_conn);
}

/* --- per-shard state --- */

void ag_http_shard_init(struct ag_shard *s, const struct ag_http_limits *lim)
{
    struct http_shard *hs = ag_calloc(1, sizeof *hs);
    hs->lim = lim;
    if (getrandom(&hs->id_seed, sizeof hs->id_seed, 0) != sizeof hs->id_seed)
        hs->id_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    hs->id_seed ^= (uint64_t)s->id << 56;
    s->app = hs;
}

void ag_http_shard_exit(struct ag_shard *s)
{
    ag_http__fans_free(s);
    ag_free(s->app);
    s->app = NULL;
}

/* --- requests --- */

struct ag_iov ag_req_header(const struct ag_req *r, const char *name)
{
    const struct http_req *q = hr_of(r);
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < q->nhdrs; i++) {
        const struct ag_hdr *h = &q->hdrs[i];
        if (h->name_len == nl && !strncasecmp(q->base + h->name_off, name, nl))
            return (struct ag_iov){(char *)q->base + h->val_off, h->val_len};
    }
    return (struct ag_iov){NULL, 0};
}

struct ag_iov ag_req_param(const struct ag_req *r, const char *name)
{
    const struct http_req *q = hr_of(r);
    for (int i = 0; i < q->match.nparams; i++)
        if (!strcmp(q->match.param_names[i], name))
            return q->match.params[i];
    return (struct ag_iov){NULL, 0};
}

char *ag_req_param_str(const struct ag_req *r, const char *name)
{
    struct ag_iov v = ag_req_param(r, name);
    if (!v.base)
        return NULL;
    char *out = ag_malloc(v.len + 1);
    size_t n = ag_url_decode(out, v.base, v.len, false);
    if (n == (size_t)-1 || memchr(out, 0, n)) {
        ag_free(out);
        return NULL;
    }
    out[n] = 0;
    return out;
}

static bool iov_ieq(struct ag_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && !strncasecmp(v.base, s, n);
}

static void make_request_id(struct ag_shard *s, struct ag_req *r, struct ag_iov given)
{
    bool ok = given.len > 0 && given.len < sizeof r->id;
    for (size_t i = 0; ok && i < given.len; i++) {
        char ch = given.base[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
             ch == '_' || ch == '.' || ch == ':';
    }
    if (ok) {
        memcpy(r->id, given.base, given.len);
        r->id_len = (uint32_t)given.len;
        return;
    }
    struct http_shard *hs = hs_of(s);
    int n = snprintf(r->id, sizeof r->id, "%016llx%016llx", (unsigned long long)hs->id_seed,
                     (unsigned long long)++hs->id_counter);
    r->id_len = (uint32_t)n;
}

/* --- request lifecycle --- */

static void on_timer(struct ag_timer *t);

static void arm_timer(struct http_conn *h, uint32_t ms)
{
    struct ag_shard *s = h->conn->shard;
    h->conn->timer.cb = on_timer;
    ag_timer_arm(&s->timers, &h->conn->timer, s->now_ns + ag_ms_to_ns(ms));
}

static void reset_request(struct http_conn *h)
{
    ag_buf_free(&h->body);
    ag_buf_free(&h->hold);
    ag_buf_free(&h->req.extra_headers);
    ag_buf_free(&h->req.xbody);
    struct ag_conn *c = h->conn;
    memset(&h->req, 0, sizeof h->req);
    h->req.conn = c;
    h->req.pub.shard = c->shard;
    h->req.fwd_to = -1;
    h->url_off = h->url_len = 0;
    h->hstate = HS_NONE;
    h->chunked = false;
    h->body_off = 0;
    h->body_len = 0;
    h->raw = 0;
    h->head_len = h->nchunks = 0;
    h->head_end = h->head_held = h->trailers = false;
    h->err_status = 0;
    h->err_msg = NULL;
}

static void log_request(struct http_req *q, const char *method, const char *path, size_t path_len)
{
    struct ag_shard *s = q->conn->shard;
    static const enum ag_protocol_stat cls[] = {AG_STAT_REQ_1XX, AG_STAT_REQ_2XX, AG_STAT_REQ_3XX, AG_STAT_REQ_4XX,
                                       AG_STAT_REQ_5XX};
    int k = q->status / 100 - 1;
    if (k >= 0 && k < 5)
        ag_stat_add(&s->stats, cls[k], 1);
    if (ag_log_enabled(AG_LOG_INFO))
        ag_log(AG_LOG_INFO, "req=%.*s method=%s path=\"%.*s\" status=%d bytes=%llu us=%llu", (int)q->pub.id_len,
               q->pub.id, method, (int)AG_MIN(path_len, 512), path, q->status, (unsigned long long)q->resp_bytes,
               (unsigned long long)((ag_clock_mono_ns() - q->start_ns) / 1000u));
}

/* Answers a request the parser could not finish (malformed, too large, timed out, rejected) and
 * closes the connection once the answer is out. */
static void respond_early(struct http_conn *h, int status, const char *msg, const char *retry_after)
{
    struct ag_conn *c = h->conn;
    struct http_req *q = &h->req;
    struct ag_req *r = &q->pub;
    ag_buf_free(&q->extra_headers);
    memset(q, 0, sizeof *q);
    q->conn = c;
    r->shard = c->shard;
    q->fwd_to = -1;
    q->start_ns = c->shard->now_ns;
    q->keep_alive = false;
    make_request_id(c->shard, r, (struct ag_iov){NULL, 0});
    if (retry_after)
        ag_http_add_header(r, "retry-after", retry_after);
    ag_http_error(r, status, msg);
    log_request(q, "-", "-", 1);
    ag_buf_free(&q->extra_headers);
    h->state = H_IDLE;
    ag_conn_close(c, AG_CLOSE_LINGER);
}

static void preflight(struct ag_req *r)
{
    struct http_req *q = hr_of(r);
    struct ag_iov want = ag_req_header(r, "access-control-request-headers");
    ag_http_add_header(r, "access-control-allow-methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
    if (want.len) {
        ag_buf_append(&q->extra_headers, "access-control-allow-headers: ", 30);
        ag_buf_append(&q->extra_headers, want.base, want.len);
        ag_buf_append(&q->extra_headers, "\r\n", 2);
    }
    ag_http_add_header(r, "access-control-max-age", "600");
    ag_http_add_header(r, "vary", "Origin");
    ag_http_respond(r, 200, "text/plain; charset=utf-8", "OK", 2);
}

/* Copies the request out of the connection's input so its spans survive while the handler waits. */
static void hold_request(struct http_conn *h, const char *win, size_t len)
{
    struct http_req *q = &h->req;
    struct ag_req *r = &q->pub;
    if (h->head_held)
        return; /* a chunked request: its spans point into hold already, its body into h->body */
    ag_buf_append(&h->hold, win, len);
    char *base = h->hold.base;
#define REBASE(p) ((p) = (p) ? base + ((const char *)(p)-win) : NULL)
    REBASE(q->base);
    REBASE(q->path.base);
    REBASE(r->query.base);
    if (!h->chunked)
        REBASE(r->body.base);
    for (int i = 0; i < q->match.nparams; i++)
        REBASE(q->match.params[i].base);
#undef REBASE
}

/* The request has its answer: log it, then keep the connection for the next one or close it. */
void ag_http__finish(struct http_conn *h)
{
    struct ag_conn *c = h->conn;
    struct http_req *q = &h->req;
    log_request(q, llhttp_method_name((llhttp_method_t)q->method), q->path.base, q->path.len);
    bool keep = q->keep_alive && !h->close_after && !c->shard->draining;
    bool was_waiting = h->state == H_WAIT;
    bool closed = c->flags & AG_CONN_F_CLOSED;
    reset_request(h);
    h->state = H_IDLE;
    if (was_waiting)
        ag_conn_unhold(c); /* may queue the release: touch nothing but flags after this */
    if (closed)
        return;
    /* Idle from now, or from the last byte sent if the answer is still going out (on_timer); this
     * also bounds a closing connection whose client does not read its answer. */
    arm_timer(h, hs_of(c->shard)->lim->idle_timeout_ms);
    if (!keep) {
        ag_conn_close(c, h->close_after ? AG_CLOSE_AFTER_SEND : AG_CLOSE_LINGER);
        return;
    }
    if (was_waiting)
        ag_conn_resume(c); /* offers pipelined input that arrived meanwhile */
}

/* The owner shard of a thread-scoped route's {thread_id}, or -1 when it is this shard (or the id
 * cannot be decoded: the handler answers that). */
static int thread_owner(struct ag_req *r)
{
    int n = r->shard->rt->nshards;
    if (n == 1)
        return -1;
    /* Decoded on the stack: this runs for every thread-scoped request. An id too long for it, or
     * badly encoded, is not a thread id: the handler answers 422 where the request was read. */
    struct ag_iov v = ag_req_param(r, "thread_id");
    char id[256];
    if (!v.base || v.len > sizeof id)
        return -1;
    size_t len = ag_url_decode(id, v.base, v.len, false);
    if (len == (size_t)-1 || memchr(id, 0, len))
        return -1;
    int owner = ag_owner_shard(id, len, n);
    return owner == r->shard->id ? -1 : owner;
}

static void dispatch(struct http_conn *h, const char *win, size_t msg_len)
{
    struct ag_conn *c = h->conn;
    struct ag_shard *s = c->shard;
    struct http_req *q = &h->req;
    struct ag_req *r = &q->pub;
    const char *base = h->head_held ? h->hold.base : win; /* what the head's offsets count from */
    q->base = base;
    r->shard = s;
    q->fwd_to = -1;
    q->method = llhttp_get_method(&h->parser);
    q->http10 = h->parser.http_major == 1 && h->parser.http_minor == 0;
    q->keep_alive = llhttp_should_keep_alive(&h->parser) && !s->draining;
    q->start_ns = s->now_ns;
    const char *url = base + h->url_off;
    const char *qm = memchr(url, '?', h->url_len);
    q->path = (struct ag_iov){(char *)url, qm ? (size_t)(qm - url) : h->url_len};
    r->query = qm ? (struct ag_iov){(char *)qm + 1, h->url_len - (size_t)(qm - url) - 1} : (struct ag_iov){NULL, 0};
    if (h->chunked)
        r->body = (struct ag_iov){h->body.base, h->body.len};
    else
        r->body = (struct ag_iov){(char *)win + h->body_off, h->body_len};
    q->cors = ag_req_header(r, "origin").len > 0;
    make_request_id(s, r, ag_req_header(r, "x-request-id"));
    ag_timer_cancel(&s->timers, &c->timer);

    if (q->method == HTTP_OPTIONS && q->cors && ag_req_header(r, "access-control-request-method").len) {
        preflight(r);
    } else {
        int m = ag_router_match(q->method, q->path.base, q->path.len, &q->match);
        if (m == 200) {
            int owner = q->match.route->thread_scoped ? thread_owner(r) : -1;
            int rc = owner >= 0 ? ag_http_forward(r, owner) : q->match.route->fn(r);
            if (rc == AG_AGAIN && (!q->status || q->streaming)) {
                hold_request(h, win, msg_len);
                h->state = H_WAIT;
                ag_conn_hold(c);
                ag_conn_pause(c);
                if (q->fwd_to >= 0)
                    ag_http__send_forward(h);
                return;
            }
            if (!q->status)
                ag_http_error(r, 500, "An unexpected error occurred");
        } else if (m == 405) {
            ag_http_add_header(r, "allow", q->match.allow);
            ag_http_detail(r, 405, "Method Not Allowed");
        } else {
            ag_http_detail(r, 404, "Not Found");
        }
    }
    ag_http__finish(h);
}

/* The connection of a request still in its handler closed. */
static void request_gone(struct http_conn *h)
{
    struct http_req *q = &h->req;
    ag_timer_cancel(&h->conn->shard->timers, &h->conn->timer);
    if (h->fwd != FWD_NONE) {
        ag_http__fwd_goodbye(h);
        return;
    }
    if (!q->pub.gone)
        ag_http__gone(q, h->conn->shard);
}

void ag_http_done(struct ag_req *r)
{
    struct http_req *q = hr_of(r);
    if (q->gone_task.queued) {
        q->end_deferred = true;
        return;
    }
    if (q->streaming) {
        ag_http_stream_end(r);
        return;
    }
    if (r->shard != q->conn->shard) {
        if (!q->status)
            ag_http_error(r, 500, "An unexpected error occurred");
        ag_http__send_back(q);
        return;
    }
    struct http_conn *h = hc_of(q->conn);
    AG_BUG_ON(h->state != H_WAIT || &h->req != q);
    if (!q->status)
        ag_http_error(r, 500, "An unexpected error occurred");
    ag_http__finish(h);
}

/* A head must arrive within header_timeout_ms; a body may take longer as long as no pause between
 * its reads reaches idle_timeout_ms. Between requests a connection is idle only when it also has
 * nothing left to write: it closes idle_timeout_ms after its last byte went out, or, while an answer
 * is still queued, once no byte could be sent for send_timeout_ms (a client that stopped reading).
 * The timer is moved lazily, here, rather than on every read and send. */
static void on_timer(struct ag_timer *t)
{
    struct ag_conn *c = AG_CONTAINER_OF(t, struct ag_conn, timer);
    struct http_conn *h = hc_of(c);
    struct ag_shard *s = c->shard;
    const struct ag_http_limits *l = hs_of(s)->lim;
    if (h->state == H_BODY) {
        uint64_t deadline = c->recv_ns + ag_ms_to_ns(l->idle_timeout_ms);
        if (deadline > s->now_ns) {
            ag_timer_arm(&s->timers, &c->timer, deadline);
            return;
        }
    }
    if (h->state != H_IDLE) {
        respond_early(h, 408, "request not received in time", NULL);
        return;
    }
    uint64_t deadline = c->sent_ns + ag_ms_to_ns(c->out_bytes ? l->send_timeout_ms : l->idle_timeout_ms);
    if (deadline > s->now_ns) {
        ag_timer_arm(&s->timers, &c->timer, deadline);
        return;
    }
    if (c->out_bytes)
        ag_log(AG_LOG_WARN, "msg=\"client not reading: closing\" unsent_bytes=%llu send_timeout_ms=%u",
               (unsigned long long)c->out_bytes, l->send_timeout_ms);
    ag_conn_close(c, AG_CLOSE_NOW);
}

/* --- llhttp callbacks --- */

static struct http_conn *hc_from(llhttp_t *p)
{
    return p->data;
}

static int stop_with(struct http_conn *h, int status, const char *msg)
{
    h->err_status = status;
    h->err_msg = msg;
    return -1;
}

static int check_head(struct http_conn *h, const char *at, size_t len)
{
    const struct ag_http_limits *l = hs_of(h->conn->shard)->lim;
    if ((size_t)(at + len - h->win) > l->max_header_bytes)
        return stop_with(h, 431, "request head too large");
    return 0;
}

static int cb_message_begin(llhttp_t *p)
{
    struct http_conn *h = hc_from(p);
    h->state = H_HEAD;
    arm_timer(h, hs_of(h->conn->shard)->lim->header_timeout_ms);
    return 0;
}

static int cb_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = hc_from(p);
    if (!h->url_len)
        h->url_off = (uint32_t)(at - h->win);
    h->url_len += (uint32_t)len;
    return check_head(h, at, len);
}

/* Trailers come through the header callbacks after the body. They are not kept (the head's spans
 * point into the held head; a trailer may not add to a request's headers anyway) and their bytes
 * count against the chunked framing limit (within_limits). */
static int cb_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = hc_from(p);
    struct http_req *q = &h->req;
    if (h->state == H_BODY)
        return 0;
    if (check_head(h, at, len))
        return -1;
    if (h->hstate != HS_FIELD) {
        if (q->nhdrs == AG_HTTP_MAX_HEADERS)
            return stop_with(h, 431, "too many request headers");
        struct ag_hdr *hd = &q->hdrs[q->nhdrs++];
        hd->name_off = (uint32_t)(at - h->win);
        hd->name_len = 0;
        hd->val_off = hd->val_len = 0;
        h->hstate = HS_FIELD;
    }
    q->hdrs[q->nhdrs - 1].name_len += (uint32_t)len;
    return 0;
}

static int cb_header_field_complete(llhttp_t *p)
{
    struct http_conn *h = hc_from(p);
    if (h->state == H_BODY)
        return 0;
    if (h->hstate != HS_FIELD || h->req.hdrs[h->req.nhdrs - 1].name_len == 0)
        return stop_with(h, 400, "empty header name");
    h->hstate = HS_FIELD_DONE;
    return 0;
}

static int cb_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = hc_from(p);
    if (h->state == H_BODY)
        return 0;
    if (check_head(h, at, len))
        return -1;
    if (h->hstate == HS_FIELD_DONE) {
        h->req.hdrs[h->req.nhdrs - 1].val_off = (uint32_t)(at - h->win);
        h->hstate = HS_VALUE;
    } else if (h->hstate != HS_VALUE) {
        return stop_with(h, 400, "empty header name"); /* a value with no name before it */
    }
    h->req.hdrs[h->req.nhdrs - 1].val_len += (uint32_t)len;
    return 0;
}

static int cb_header_value_complete(llhttp_t *p)
{
    struct http_conn *h = hc_from(p);
    if (h->state == H_BODY)
        return 0;
    if (h->hstate != HS_VALUE && h->hstate != HS_FIELD_DONE)
        return stop_with(h, 400, "empty header name");
    h->hstate = HS_VALUE_DONE;
    return 0;
}

static int cb_headers_complete(llhttp_t *p)
{
    struct http_conn *h = hc_from(p);
    struct ag_conn *c = h->conn;
    const struct ag_http_limits *l = hs_of(c->shard)->lim;
    if (p->http_major != 1)
        return stop_with(h, 400, "unsupported HTTP version");
    h->state = H_BODY;
    h->chunked = (p->flags & F_CHUNKED) != 0;
    bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > l->max_body_bytes)
        return stop_with(h, 413, "request body too large");
    h->req.base = h->win;
    struct ag_iov expect = ag_req_header(&h->req.pub, "expect");
    if (expect.len && (h->chunked || (has_length && p->content_length > 0))) {
        if (!iov_ieq(expect, "100-continue"))
            return stop_with(h, 400, "unsupported Expect header"); /* 417 in spirit; clients only send 100-continue */
        if (p->http_major == 1 && p->http_minor >= 1)
            ag_conn_write(c, AG_STRLIT("HTTP/1.1 100 Continue\r\n\r\n"));
    }
    /* The head is in; the body may trickle, bounded by the idle timeout between reads. */
    arm_timer(h, l->idle_timeout_ms);
    /* Pause so on_data learns where the head ends (its exact size, and what a chunked request
     * keeps of its raw input). */
    h->head_end = true;
    return HPE_PAUSED;
}

static int cb_chunk_header(llhttp_t *p)
{
    struct http_conn *h = hc_from(p);
    const struct ag_http_limits *l = hs_of(h->conn->shard)->lim;
    if (p->content_length > l->max_body_bytes - h->body_len)
        return stop_with(h, 413, "request body too large");
    h->nchunks++;
    if (p->content_length == 0)
        h->trailers = true;
    return 0;
}

static int cb_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = hc_from(p);
    const struct ag_http_limits *l = hs_of(h->conn->shard)->lim;
    if (h->body_len + len > l->max_body_bytes)
        return stop_with(h, 413, "request body too large");
    if (h->chunked) {
        ag_buf_append(&h->body, at, len);
    } else if (!h->body_len) {
        h->body_off = (uint32_t)(at - h->win);
    }
    h->body_len += len;
    return 0;
}

static int cb_message_complete(llhttp_t *p)
{
    return HPE_PAUSED;
}

__attribute__((constructor)) static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = cb_message_begin;
    settings.on_url = cb_url;
    settings.on_header_field = cb_header_field;
    settings.on_header_value = cb_header_value;
    settings.on_header_field_complete = cb_header_field_complete;
    settings.on_header_value_complete = cb_header_value_complete;
    settings.on_headers_complete = cb_headers_complete;
    settings.on_body = cb_body;
    settings.on_chunk_header = cb_chunk_header;
    settings.on_message_complete = cb_message_complete;
}

/* --- connection handler --- */

static void on_open(struct ag_conn *c)
{
    struct http_conn *h = hc_of(c);
    llhttp_init(&h->parser, HTTP_REQUEST, &settings);
    h->parser.data = h;
    h->conn = c;
    h->state = H_IDLE;
    h->req.conn = c;
    h->req.pub.shard = c->shard;
    h->req.fwd_to = -1;
    if (c->flags & AG_CONN_F_REJECTED) {
        respond_early(h, 503, "too many connections", "1");
        return;
    }
    arm_timer(h, hs_of(c->shard)->lim->idle_timeout_ms);
}

/* Every byte of a request counts against a limit, checked as the parser reads them (h->raw): the
 * head, with any blank lines before it, against max_header_bytes (431); a body's data against
 * max_body_bytes (413, in the callbacks); a chunked body's other bytes (size lines, extensions,
 * CRLFs, trailers) against what the head left of max_header_bytes plus AG_HTTP_CHUNK_OVERHEAD per
 * chunk (400, or 431 in the trailers). Returns false after answering. */
static bool within_limits(struct http_conn *h)
{
    const struct ag_http_limits *l = hs_of(h->conn->shard)->lim;
    if (h->state == H_IDLE || h->state == H_HEAD) {
        if (h->raw <= l->max_header_bytes)
            return true;
        respond_early(h, 431, "request head too large", NULL);
        return false;
    }
    if (h->state != H_BODY || !h->chunked || h->head_end)
        return true;
    uint64_t framing = h->raw - h->head_len - h->body_len;
    uint64_t allowed = (uint64_t)(l->max_header_bytes - h->head_len) + AG_HTTP_CHUNK_OVERHEAD * ((uint64_t)h->nchunks + 1);
    if (framing <= allowed)
        return true;
    if (h->trailers)
        respond_early(h, 431, "request trailers too large", NULL);
    else
        respond_early(h, 400, "chunk size line or extensions too long", NULL);
    return false;
}

/* The head of a chunked request is complete at win[0..len): copy it out so that the body's raw
 * input need not be kept whole (the data is copied to h->body as it is parsed). */
static void hold_head(struct http_conn *h, const char *win, size_t len)
{
    ag_buf_append(&h->hold, win, len);
    h->head_held = true;
}

static void on_eof(struct ag_conn *c);

static size_t on_data(struct ag_conn *c, char *data, size_t len)
{
    struct http_conn *h = hc_of(c);
    size_t consumed = 0;
    bool head_done = false; /* the parser paused at a head's end: resume it even with no byte left */
    while (!ag_conn_closing(c)) {
        char *win = data + consumed;
        size_t wlen = len - consumed;
        if (h->fed >= wlen && !head_done)
            break;
        if (h->state == H_IDLE && !h->fed && c->out_bytes >= AG_HTTP_PIPELINE_OUT_MAX) {
            /* Between two requests, with answers piling up unread: the next one waits for on_drained. */
            h->out_paused = true;
            ag_conn_pause(c);
            break;
        }
        head_done = false;
        h->win = win;
        const char *from = win + h->fed;
        llhttp_errno_t e = llhttp_execute(&h->parser, from, wlen - h->fed);
        if (e == HPE_OK) {
            h->raw += wlen - h->fed;
            h->fed = wlen;
            if (!within_limits(h))
                break;
            if (h->state == H_IDLE || h->head_held) {
                /* Blank lines before a request, or a chunked body whose head is held: nothing here
                 * is pointed to, so the input is not kept. */
                consumed = len;
                h->fed = 0;
            }
            break;
        }
        if (e == HPE_PAUSED) {
            const char *pos = llhttp_get_error_pos(&h->parser);
            llhttp_resume(&h->parser);
            h->raw += (size_t)(pos - from);
            if (h->head_end) {
                h->fed = (size_t)(pos - win);
                h->head_len = (uint32_t)AG_MIN(h->raw, UINT32_MAX);
                if (h->head_len > hs_of(c->shard)->lim->max_header_bytes) {
                    respond_early(h, 431, "request head too large", NULL);
                    break;
                }
                h->head_end = false;
                if (h->chunked)
                    hold_head(h, win, h->fed);
                head_done = true;
                continue;
            }
            size_t msg_len = (size_t)(pos - win);
            h->fed = 0;
            dispatch(h, win, msg_len);
            consumed += msg_len;
            if (h->state == H_WAIT)
                break;
            continue;
        }
        if (h->err_status)
            respond_early(h, h->err_status, h->err_msg, NULL);
        else
            respond_early(h, 400, llhttp_get_error_reason(&h->parser), NULL);
        break;
    }
    if (h->eof_pending && !h->out_paused && !ag_conn_closing(c)) {
        h->eof_pending = false;
        on_eof(c);
    }
    return ag_conn_closing(c) ? len : consumed;
}

static void on_eof(struct ag_conn *c)
{
    struct http_conn *h = hc_of(c);
    if (h->out_paused) {
        h->eof_pending = true; /* the requests it sent before are still answered */
        return;
    }
    if (h->state == H_WAIT) {
        h->close_after = true; /* answer first: a half-closed client still reads */
        if (h->streaming)
            request_gone(h); /* but nobody half-closes to read a stream: it left */
        return;
    }
    ag_conn_close(c, AG_CLOSE_AFTER_SEND);
}

/* Every queued answer went out: pipelined requests held back by AG_HTTP_PIPELINE_OUT_MAX go on. */
static void on_drained(struct ag_conn *c)
{
    struct http_conn *h = hc_of(c);
    if (!h->out_paused)
        return;
    h->out_paused = false;
    ag_conn_resume(c);
}

/* A held connection whose socket closed: the handler of its pending request learns the client left. */
static void on_hangup(struct ag_conn *c)
{
    struct http_conn *h = hc_of(c);
    if (h->conn == c && h->state == H_WAIT)
        request_gone(h);
}

static void on_close(struct ag_conn *c)
{
    struct http_conn *h = hc_of(c);
    if (h->state == H_WAIT) {
        request_gone(h);
        return; /* a handler (maybe on another shard) still reads the request; ag_http__finish frees it */
    }
    ag_buf_free(&h->body);
    ag_buf_free(&h->hold);
    ag_buf_free(&h->req.extra_headers);
}

static void on_exit_conn(struct ag_conn *c)
{
    struct http_conn *h = hc_of(c);
    if (h->conn != c)
        return; /* never opened */
    ag_buf_free(&h->body);
    ag_buf_free(&h->hold);
    ag_buf_free(&h->req.extra_headers);
    ag_buf_free(&h->req.xbody);
}

const struct ag_conn_handler ag_http_conn_handler = {
    .on_open = on_open,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_drained = on_drained,
    .on_hangup = on_hangup,
    .on_close = on_close,
    .on_exit = on_exit_conn,
};

static void drain_one(struct ag_conn *c, void *arg)
{
    struct http_conn *h = hc_of(c);
    if (h->state == H_IDLE && !c->in.len)
        ag_conn_close(c, AG_CLOSE_AFTER_SEND);
}

void ag_http_drain(struct ag_shard *s)
{
    ag_net_foreach(s, drain_one, NULL);
}

static void stop_one(struct ag_conn *c, void *arg)
{
    ag_conn_close(c, AG_CLOSE_NOW);
}

void ag_http_stop(struct ag_shard *s)
{
    ag_net_foreach(s, stop_one, NULL);
}
