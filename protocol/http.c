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
#include "protocol/jsonw.h"
#include "runtime/owner.h"
#include "protocol/urlenc.h"

/* Cross-shard message types of this module. */
enum {
    MSG_HTTP_RUN = 16,      /* ptr: request to run on the receiving (owner) shard */
    MSG_HTTP_DONE = 17,     /* ptr: request answered in full on the owner; write it */
    MSG_HTTP_PIECE = 18,    /* ptr: struct xpiece of a streamed answer, for the connection's shard (data lane) */
    MSG_HTTP_GONE = 19,     /* ptr: request whose client left, for the owner */
};

enum hstate {
    H_IDLE, /* between requests */
    H_HEAD, /* reading a request head */
    H_BODY, /* reading its body */
    H_WAIT, /* its handler answers later (AG_AGAIN); the connection is paused */
};

struct http_shard {
    const struct ag_config *cfg;
    uint64_t id_seed, id_counter;
    int64_t date_sec;
    char date[30];
    struct ag_req *xwait; /* requests run here whose pieces a full data lane refused (ag_req.xwait_next) */
};

struct http_conn {
    llhttp_t parser;
    struct ag_conn *conn;
    enum hstate state;
    size_t fed;      /* bytes of the current window already given to the parser */
    const char *win; /* the start of the current window (the request's first byte until its head is
                      * held), while the parser runs */
    uint64_t raw;    /* bytes of the current request (and blank lines before it) given to the parser */
    uint32_t head_len;  /* bytes of its head, once complete */
    uint32_t nchunks;   /* chunk-size lines of a chunked body read so far */
    bool head_end;      /* cb_headers_complete paused the parser to learn head_len */
    bool head_held;     /* a chunked request's head is copied to hold: parsed input is consumed */
    bool trailers;      /* the last chunk was read: trailers follow */
    uint32_t url_off, url_len;
    enum { HS_NONE, HS_FIELD, HS_FIELD_DONE, HS_VALUE, HS_VALUE_DONE } hstate; /* header callbacks so far */
    bool chunked;
    uint32_t body_off;
    uint64_t body_len;
    struct ag_buf body; /* chunked bodies are copied here, without the chunk framing */
    struct ag_buf hold; /* the raw request, copied when its handler goes asynchronous (a chunked
                         * request: its head, copied when complete) */
    bool close_after;   /* the peer shut its side while a handler was pending */
    bool out_paused;    /* paused between requests until the answers queued so far are sent */
    bool eof_pending;   /* the peer shut its side while out_paused: answer what it sent first */
    bool forwarded;     /* the request is on another shard (between MSG_HTTP_RUN and its end) */
    int fwd_shard;
    bool gone_sent;     /* MSG_HTTP_GONE went to the owner; wait for its ack before finishing */
    bool end_pending;   /* the end arrived before that ack */
    bool streaming;     /* the head of a streamed answer went out on this connection */
    const char *hb;     /* heartbeat of a streamed answer, every hb_ms */
    uint32_t hb_ms;
    struct ag_task gone_retry;
    int err_status;     /* set by a callback that stopped the parser */
    const char *err_msg;
    struct ag_req req;
};

static llhttp_settings_t settings;

static struct http_shard *hs_of(struct ag_shard *s)
{
    return s->app;
}

static struct http_conn *hc_of(struct ag_conn *c)
{
    return ag_conn_priv(c);
}

size_t ag_http_conn_size(void)
{
    return sizeof(struct http_conn);
}

/* --- status tables --- */

const char *ag_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

const char *ag_http_error_code(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 422: return "validation_error";
    case 431: return "headers_too_large";
    case 500: return "internal_error";
    case 501: return "not_implemented";
    case 503: return "service_unavailable";
    default: return "unknown_error";
    }
}

/* --- per-shard state --- */

void ag_http_shard_init(struct ag_shard *s, const struct ag_config *cfg)
{
    struct http_shard *hs = ag_calloc(1, sizeof *hs);
    hs->cfg = cfg;
    if (getrandom(&hs->id_seed, sizeof hs->id_seed, 0) != sizeof hs->id_seed)
        hs->id_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    hs->id_seed ^= (uint64_t)s->id << 56;
    s->app = hs;
}

void ag_http_shard_exit(struct ag_shard *s)
{
    ag_free(s->app);
    s->app = NULL;
}

static const char *http_date(struct http_shard *hs)
{
    int64_t now = (int64_t)time(NULL);
    if (now != hs->date_sec) {
        hs->date_sec = now;
        ag_clock_http_date(now, hs->date);
    }
    return hs->date;
}

/* --- requests --- */

struct ag_iov ag_req_header(const struct ag_req *r, const char *name)
{
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const struct ag_hdr *h = &r->hdrs[i];
        if (h->name_len == nl && !strncasecmp(r->base + h->name_off, name, nl))
            return (struct ag_iov){(char *)r->base + h->val_off, h->val_len};
    }
    return (struct ag_iov){NULL, 0};
}

struct ag_iov ag_req_param(const struct ag_req *r, const char *name)
{
    for (int i = 0; i < r->match.nparams; i++)
        if (!strcmp(r->match.param_names[i], name))
            return r->match.params[i];
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

void ag_http_add_header(struct ag_req *r, const char *name, const char *value)
{
    ag_buf_puts(&r->extra_headers, name);
    ag_buf_append(&r->extra_headers, ": ", 2);
    ag_buf_puts(&r->extra_headers, value);
    ag_buf_append(&r->extra_headers, "\r\n", 2);
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

static char *put_uint(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes the status line and headers at p; len < 0 means a streamed body (chunked, or raw until
 * close for HTTP/1.0). Returns the end. Needs at most head_max(r, content_type) bytes. */
static size_t head_max(const struct ag_req *r, const char *content_type)
{
    return 440 + strlen(content_type) + strlen(ag_http_reason(r->status)) + r->id_len + r->extra_headers.len;
}

static char *write_head(struct ag_req *r, struct http_shard *hs, char *p, const char *content_type, int64_t len)
{
    int status = r->status;
    const char *reason = ag_http_reason(status);
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_uint(p, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    if (status == 204 || status == 304) {
        /* no body, and no Content-Length either (RFC 9110 §8.6) */
    } else {
        p = PUT_LIT(p, "\r\ncontent-type: ");
        p = put(p, content_type, strlen(content_type));
        if (len >= 0) {
            p = PUT_LIT(p, "\r\ncontent-length: ");
            p = put_uint(p, (uint64_t)len);
        } else if (!r->http10) {
            p = PUT_LIT(p, "\r\ntransfer-encoding: chunked");
        }
    }
    p = PUT_LIT(p, "\r\ndate: ");
    p = put(p, http_date(hs), 29);
    p = PUT_LIT(p, "\r\nx-request-id: ");
    p = put(p, r->id, r->id_len);
    p = PUT_LIT(p, "\r\n");
    if (r->cors)
        p = PUT_LIT(p, "access-control-allow-origin: *\r\n"
                       "access-control-expose-headers: Content-Location, Location, X-Pagination-Total, X-Pagination-Next\r\n");
    if (!r->keep_alive)
        p = PUT_LIT(p, "connection: close\r\n");
    else if (r->http10)
        p = PUT_LIT(p, "connection: keep-alive\r\n");
    if (r->extra_headers.len)
        p = put(p, r->extra_headers.base, r->extra_headers.len);
    return PUT_LIT(p, "\r\n");
}

void ag_http_respond(struct ag_req *r, int status, const char *content_type, const char *body, size_t len)
{
    struct ag_conn *c = r->conn;
    AG_BUG_ON(r->status != 0);
    r->status = status;
    if (r->shard && r->shard != c->shard) {
        /* Running on the thread's owner: the connection belongs to another shard. Keep the answer. */
        r->xctype = content_type;
        ag_buf_append(&r->xbody, body, len);
        return;
    }
    if (c->shard->draining)
        r->keep_alive = false; /* a drain began while an asynchronous handler worked */
    if (c->flags & AG_CONN_F_CLOSED)
        return; /* the client left while the answer was being prepared */
    if (status == 204 || status == 304)
        len = 0;
    char *start = ag_conn_wbuf(c, head_max(r, content_type) + len), *p = start;
    p = write_head(r, hs_of(c->shard), p, content_type, (int64_t)len);
    if (len)
        p = put(p, body, len);
    r->resp_bytes = (uint64_t)(p - start);
    ag_conn_commit(c, (size_t)(p - start));
}

void ag_http_error(struct ag_req *r, int status, const char *msg)
{
    struct ag_buf b = {0};
    struct ag_jw w;
    ag_jw_init(&w, &b);
    ag_jw_obj(&w);
    ag_jw_key(&w, "error");
    ag_jw_str(&w, ag_http_error_code(status));
    ag_jw_key(&w, "message");
    ag_jw_str(&w, msg);
    ag_jw_key(&w, "details");
    ag_jw_null(&w);
    ag_jw_end(&w);
    ag_http_json(r, status, b.base, b.len);
    ag_buf_free(&b);
}

void ag_http_detail(struct ag_req *r, int status, const char *detail)
{
    struct ag_buf b = {0};
    struct ag_jw w;
    ag_jw_init(&w, &b);
    ag_jw_obj(&w);
    ag_jw_key(&w, "detail");
    ag_jw_str(&w, detail);
    ag_jw_end(&w);
    ag_http_json(r, status, b.base, b.len);
    ag_buf_free(&b);
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
    h->req.shard = c->shard;
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

static void log_request(struct ag_req *r, const char *method, const char *path, size_t path_len)
{
    struct ag_shard *s = r->conn->shard;
    static const enum ag_stat cls[] = {AG_STAT_REQ_1XX, AG_STAT_REQ_2XX, AG_STAT_REQ_3XX, AG_STAT_REQ_4XX,
                                       AG_STAT_REQ_5XX};
    int k = r->status / 100 - 1;
    if (k >= 0 && k < 5)
        ag_stat_add(&s->stats, cls[k], 1);
    if (ag_log_enabled(AG_LOG_INFO))
        ag_log(AG_LOG_INFO, "req=%.*s method=%s path=\"%.*s\" status=%d bytes=%llu us=%llu", (int)r->id_len, r->id,
               method, (int)AG_MIN(path_len, 512), path, r->status, (unsigned long long)r->resp_bytes,
               (unsigned long long)ag_ns_to_us(ag_clock_mono_ns() - r->start_ns));
}

/* Answers a request the parser could not finish (malformed, too large, timed out, rejected) and
 * closes the connection once the answer is out. */
static void respond_early(struct http_conn *h, int status, const char *msg, const char *retry_after)
{
    struct ag_conn *c = h->conn;
    struct ag_req *r = &h->req;
    ag_buf_free(&r->extra_headers);
    memset(r, 0, sizeof *r);
    r->conn = c;
    r->shard = c->shard;
    r->fwd_to = -1;
    r->start_ns = c->shard->now_ns;
    r->keep_alive = false;
    make_request_id(c->shard, r, (struct ag_iov){NULL, 0});
    if (retry_after)
        ag_http_add_header(r, "retry-after", retry_after);
    ag_http_error(r, status, msg);
    log_request(r, "-", "-", 1);
    ag_buf_free(&r->extra_headers);
    h->state = H_IDLE;
    ag_conn_close(c, AG_CLOSE_LINGER);
}

static void preflight(struct ag_req *r)
{
    struct ag_iov want = ag_req_header(r, "access-control-request-headers");
    ag_http_add_header(r, "access-control-allow-methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
    if (want.len) {
        ag_buf_append(&r->extra_headers, "access-control-allow-headers: ", 30);
        ag_buf_append(&r->extra_headers, want.base, want.len);
        ag_buf_append(&r->extra_headers, "\r\n", 2);
    }
    ag_http_add_header(r, "access-control-max-age", "600");
    ag_http_add_header(r, "vary", "Origin");
    ag_http_respond(r, 200, "text/plain; charset=utf-8", "OK", 2);
}

/* Copies the request out of the connection's input so its spans survive while the handler waits. */
static void hold_request(struct http_conn *h, const char *win, size_t len)
{
    struct ag_req *r = &h->req;
    if (h->head_held)
        return; /* a chunked request: its spans point into hold already, its body into h->body */
    ag_buf_append(&h->hold, win, len);
    char *base = h->hold.base;
#define REBASE(p) ((p) = (p) ? base + ((const char *)(p)-win) : NULL)
    REBASE(r->base);
    REBASE(r->path.base);
    REBASE(r->query.base);
    if (!h->chunked)
        REBASE(r->body.base);
    for (int i = 0; i < r->match.nparams; i++)
        REBASE(r->match.params[i].base);
#undef REBASE
}

/* The request has its answer: log it, then keep the connection for the next one or close it. */
static void finish(struct http_conn *h)
{
    struct ag_conn *c = h->conn;
    struct ag_req *r = &h->req;
    log_request(r, llhttp_method_name((llhttp_method_t)r->method), r->path.base, r->path.len);
    bool keep = r->keep_alive && !h->close_after && !c->shard->draining;
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
    arm_timer(h, hs_of(c->shard)->cfg->limits.idle_timeout_ms);
    if (!keep) {
        ag_conn_close(c, h->close_after ? AG_CLOSE_AFTER_SEND : AG_CLOSE_LINGER);
        return;
    }
    if (was_waiting)
        ag_conn_resume(c); /* offers pipelined input that arrived meanwhile */
}

static void send_forward(struct http_conn *h);

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
    struct ag_req *r = &h->req;
    const char *base = h->head_held ? h->hold.base : win; /* what the head's offsets count from */
    r->base = base;
    r->shard = s;
    r->fwd_to = -1;
    r->method = llhttp_get_method(&h->parser);
    r->http10 = h->parser.http_major == 1 && h->parser.http_minor == 0;
    r->keep_alive = llhttp_should_keep_alive(&h->parser) && !s->draining;
    r->start_ns = s->now_ns;
    const char *url = base + h->url_off;
    const char *q = memchr(url, '?', h->url_len);
    r->path = (struct ag_iov){(char *)url, q ? (size_t)(q - url) : h->url_len};
    r->query = q ? (struct ag_iov){(char *)q + 1, h->url_len - (size_t)(q - url) - 1} : (struct ag_iov){NULL, 0};
    if (h->chunked)
        r->body = (struct ag_iov){h->body.base, h->body.len};
    else
        r->body = (struct ag_iov){(char *)win + h->body_off, h->body_len};
    r->cors = ag_req_header(r, "origin").len > 0;
    make_request_id(s, r, ag_req_header(r, "x-request-id"));
    ag_timer_cancel(&s->timers, &c->timer);

    if (r->method == HTTP_OPTIONS && r->cors && ag_req_header(r, "access-control-request-method").len) {
        preflight(r);
    } else {
        int m = ag_router_match(r->method, r->path.base, r->path.len, &r->match);
        if (m == 200) {
            int owner = r->match.route->thread_scoped ? thread_owner(r) : -1;
            int rc = owner >= 0 ? ag_http_forward(r, owner) : r->match.route->fn(r);
            if (rc == AG_AGAIN && (!r->status || r->streaming)) {
                hold_request(h, win, msg_len);
                h->state = H_WAIT;
                ag_conn_hold(c);
                ag_conn_pause(c);
                if (r->fwd_to >= 0)
                    send_forward(h);
                return;
            }
            if (!r->status)
                ag_http_error(r, 500, "An unexpected error occurred");
        } else if (m == 405) {
            ag_http_add_header(r, "allow", r->match.allow);
            ag_http_detail(r, 405, "Method Not Allowed");
        } else {
            ag_http_detail(r, 404, "Not Found");
        }
    }
    finish(h);
}

/* --- cross-shard execution ---
 * A request for a thread owned by another shard is held on its connection's shard (H_WAIT, the
 * connection paused and held) and its pointer sent to the owner, which runs the handler with
 * r->shard set to itself. The answer is kept in the request (ag_http_respond sees the foreign
 * connection) and the pointer sent back; the connection's shard writes it and finishes the request.
 * Between the two messages only the owner touches the request. */

int ag_http_forward(struct ag_req *r, int to)
{
    AG_BUG_ON(to < 0 || to >= r->shard->rt->nshards || to == r->shard->id);
    AG_BUG_ON(r->shard != r->conn->shard); /* a forwarded request is not forwarded again */
    r->fwd_to = to;
    return AG_AGAIN;
}

static void send_forward(struct http_conn *h)
{
    struct ag_req *r = &h->req;
    struct ag_msg m = {.type = MSG_HTTP_RUN, .ptr = r};
    struct ag_shard *s = r->shard;
    int to = r->fwd_to;
    r->fwd_to = -1;
    h->forwarded = true;
    h->fwd_shard = to;
    if (ag_shard_send(s, to, &m) == 0) {
        /* r belongs to the owner now: not one more access until it comes back. */
        ag_stat_add(&s->stats, AG_STAT_REQ_FORWARDED, 1);
        return;
    }
    h->forwarded = false;
    ag_http_add_header(r, "retry-after", "1");
    ag_http_error(r, 503, "server busy: the thread's shard has too many requests queued");
    ag_http_done(r);
}

static void send_back_task(struct ag_task *t);

static void send_back(struct ag_req *r)
{
    struct ag_msg m = {.type = MSG_HTTP_DONE, .ptr = r};
    r->x_ended = true; /* read by on_msg_gone if the client's goodbye crosses this answer */
    if (ag_shard_send(r->shard, r->conn->shard->id, &m) == 0)
        return;
    /* The way back is full: retry next turn (the answer exists, it must not be lost). */
    r->xtask.fn = send_back_task;
    ag_shard_defer(r->shard, &r->xtask);
}

static void send_back_task(struct ag_task *t)
{
    send_back(AG_CONTAINER_OF(t, struct ag_req, xtask));
}

static void on_msg_run(struct ag_shard *s, const struct ag_msg *m)
{
    struct ag_req *r = m->ptr;
    r->shard = s;
    int rc = r->match.route->fn(r);
    AG_BUG_ON(r->fwd_to >= 0);
    if (rc == AG_AGAIN && (!r->status || r->streaming))
        return; /* ag_http_done (or the stream's end) sends it back */
    if (!r->status)
        ag_http_error(r, 500, "An unexpected error occurred");
    send_back(r);
}

static void write_done(struct ag_shard *s, struct ag_req *r);

static void on_msg_done(struct ag_shard *s, const struct ag_msg *m)
{
    struct ag_req *r = m->ptr;
    struct http_conn *h = hc_of(r->conn);
    if (h->gone_sent) {
        h->end_pending = true; /* the owner still owes the ack of our goodbye */
        return;
    }
    write_done(s, r);
}

static void write_done(struct ag_shard *s, struct ag_req *r)
{
    hc_of(r->conn)->forwarded = false;
    int status = r->status;
    r->status = 0;
    r->shard = s;
    ag_http_respond(r, status, r->xctype, r->xbody.base, r->xbody.len);
    ag_http_done(r);
}

/* --- streamed answers ---
 * On the connection's shard a piece is written straight to the connection. From an owner shard each
 * piece (the head, body pieces, the end) is copied into an xpiece and queued on the request; the
 * queue is sent in order on the data lane, and whatever that lane cannot take now waits, on the
 * shard's xwait list, until the connection's shard says it took from the lane (ag_http_data_room).
 * So that a client that does not read costs its owner no more than it would cost its own
 * shard, the owner counts the body bytes it holds for the request (xq_bytes) and those sent but not
 * yet taken by the connection's shard (x_unread, which that shard decrements); once they exceed the
 * backlog the owner cuts the client off as conn_wrote does: it drops the body pieces it holds, stops
 * producing for it (r->gone, on_gone), and sends XP_CUT, on which the connection's shard closes the
 * connection. The client resumes with Last-Event-ID.
 *
 * A client that leaves a forwarded request: the connection's shard sends MSG_HTTP_GONE and keeps the
 * request (and the held connection) until the owner acknowledges with an XP_GONE_ACK piece, so the
 * owner can read the request's flags however the end and the goodbye cross. */

enum xkind { XP_HEAD, XP_DATA, XP_END, XP_GONE_ACK, XP_CUT };

struct ag_http_xpiece {
    struct ag_http_xpiece *next;
    struct ag_req *r;
    enum xkind kind;
    uint32_t len;
    char data[];
};

static void xq_flush(struct ag_req *r);

/* Sends queued pieces in order. After the last send the request may be finished by the connection's
 * shard: nothing of r is touched once its final piece left. */
static void xq_flush(struct ag_req *r)
{
    struct ag_shard *s = r->shard;
    int to = r->conn->shard->id;
    while (r->xq_head) {
        struct ag_http_xpiece *x = r->xq_head;
        struct ag_http_xpiece *next = x->next;
        bool last = !next && (x->kind == XP_END || x->kind == XP_GONE_ACK);
        r->xq_head = next;
        if (!next)
            r->xq_tail = NULL;
        struct ag_msg m = {.type = MSG_HTTP_PIECE, .ptr = x};
        uint32_t body = x->kind == XP_DATA ? x->len : 0;
        /* Moved before the send: the connection's shard may take it (and subtract) at once, and r is
         * not to be touched after the last piece left. */
        r->xq_bytes -= body;
        atomic_fetch_add_explicit(&r->x_unread, body, memory_order_relaxed);
        if (ag_shard_send_data(s, to, &m) != 0) {
            atomic_fetch_sub_explicit(&r->x_unread, body, memory_order_relaxed);
            r->xq_bytes += body;
            x->next = r->xq_head;
            r->xq_head = x;
            if (!r->xq_tail)
                r->xq_tail = x;
            /* The connection's shard says when it took from the lane (ag_http_data_room): waiting for
             * that, not retrying every turn, leaves this shard free meanwhile. Pieces that come
             * meanwhile queue behind these. */
            if (!r->xwaiting) {
                struct http_shard *hs = hs_of(s);
                r->xwaiting = true;
                r->xwait_next = hs->xwait;
                hs->xwait = r;
            }
            return;
        }
        if (last)
            return;
    }
}

void ag_http_data_room(struct ag_shard *s, int to)
{
    struct http_shard *hs = hs_of(s);
    struct ag_req *list = hs->xwait;
    hs->xwait = NULL;
    while (list) {
        struct ag_req *r = list;
        list = r->xwait_next; /* read first: r may be finished by its connection's shard once sent */
        r->xwaiting = false;
        if (r->conn->shard->id == to) {
            xq_flush(r);
        } else {
            r->xwaiting = true;
            r->xwait_next = hs->xwait;
            hs->xwait = r;
        }
    }
}

/* Appends x to the request's queue and sends what the lane takes. */
static void xq_append(struct ag_req *r, struct ag_http_xpiece *x)
{
    x->next = NULL;
    x->r = r;
    if (x->kind == XP_DATA)
        r->xq_bytes += x->len;
    /* Nothing queued and not waiting for room: send now. Otherwise it goes behind the rest (a request
     * waiting for room must not send, its cut-off freed its data pieces or not). */
    bool idle = !r->xq_head && !r->xwaiting;
    if (r->xq_tail)
        r->xq_tail->next = x;
    else
        r->xq_head = x;
    r->xq_tail = x;
    if (idle)
        xq_flush(r);
}

static void xq_push(struct ag_req *r, enum xkind kind, const char *p, size_t n)
{
    struct ag_http_xpiece *x = ag_malloc(sizeof *x + n);
    x->kind = kind;
    x->len = (uint32_t)n;
    if (n)
        memcpy(x->data, p, n);
    xq_append(r, x);
}

static void gone_task(struct ag_task *t);

/* The owner's side of the backlog: a body piece for a client on another shard, or the cut-off of a
 * client that holds more than the backlog here and in flight. The piece that would exceed it is not
 * copied: the client will not get it. */
static void xq_push_data(struct ag_req *r, const char *p, size_t n)
{
    uint64_t unread = r->xq_bytes + atomic_load_explicit(&r->x_unread, memory_order_relaxed) + n;
    if (unread <= hs_of(r->shard)->cfg->limits.stream_backlog_bytes) {
        xq_push(r, XP_DATA, p, n);
        return;
    }
    ag_log(AG_LOG_WARN, "req=%.*s streaming client on shard %d cut off: %llu bytes unread", (int)r->id_len, r->id,
           r->conn->shard->id, (unsigned long long)unread);
    /* Free what it holds here now; the head, an end or an ack still go, in order, before XP_CUT. */
    struct ag_http_xpiece **pp = &r->xq_head, *tail = NULL;
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
    r->xq_tail = tail;
    r->xq_bytes = 0;
    r->gone = true;
    r->gone_task.fn = gone_task;
    ag_shard_defer(r->shard, &r->gone_task);
    xq_push(r, XP_CUT, NULL, 0);
}

static void on_heartbeat(struct ag_timer *t);
static void conn_wrote(struct http_conn *h, size_t n);

static void arm_heartbeat(struct http_conn *h)
{
    struct ag_shard *s = h->conn->shard;
    h->conn->timer.cb = on_heartbeat;
    ag_timer_arm(&s->timers, &h->conn->timer, s->now_ns + ag_ms_to_ns(h->hb_ms));
}

/* Writes a body piece to the connection (on its shard), as a chunk unless HTTP/1.0. A client whose
 * backlog grew past the limit is cut off: it reconnects and resumes from its last event id. */
static void conn_piece(struct http_conn *h, const char *p, size_t n)
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

/* Accounts a body piece written to the connection, and cuts off a client that stopped reading. */
static void conn_wrote(struct http_conn *h, size_t n)
{
    struct ag_conn *c = h->conn;
    h->req.resp_bytes += n;
    if (c->out_bytes > hs_of(c->shard)->cfg->limits.stream_backlog_bytes) {
        ag_log(AG_LOG_WARN, "req=%.*s streaming client cut off: %llu bytes unread", (int)h->req.id_len, h->req.id,
               (unsigned long long)c->out_bytes);
        ag_conn_close(c, AG_CLOSE_NOW);
    }
}

static void on_heartbeat(struct ag_timer *t)
{
    struct ag_conn *c = AG_CONTAINER_OF(t, struct ag_conn, timer);
    struct http_conn *h = hc_of(c);
    if (h->state != H_WAIT || !h->hb)
        return;
    conn_piece(h, h->hb, strlen(h->hb));
    if (!ag_conn_closing(c))
        arm_heartbeat(h);
}

/* The head of a streamed answer, on the connection's shard. */
static void conn_head(struct http_conn *h, const char *head, size_t n)
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

static void conn_end(struct http_conn *h)
{
    struct ag_conn *c = h->conn;
    if (!(c->flags & AG_CONN_F_CLOSED) && !ag_conn_closing(c) && !h->req.http10)
        ag_conn_write(c, "0\r\n\r\n", 5);
    ag_timer_cancel(&c->shard->timers, &c->timer);
    h->hb = NULL;
    h->streaming = false;
    h->forwarded = false;
    finish(h);
}

void ag_http_stream_start(struct ag_req *r, int status, const char *content_type, const char *heartbeat,
                          uint32_t heartbeat_ms)
{
    AG_BUG_ON(r->status != 0);
    r->status = status;
    r->streaming = true;
    r->hb = heartbeat;
    r->hb_ms = heartbeat_ms;
    if (r->http10)
        r->keep_alive = false; /* the body ends when the connection does */
    if (r->shard->draining)
        r->keep_alive = false;
    size_t max = head_max(r, content_type);
    if (r->shard == r->conn->shard) {
        struct http_conn *h = hc_of(r->conn);
        h->hb = heartbeat;
        h->hb_ms = heartbeat_ms;
        char *tmp = ag_malloc(max);
        char *e = write_head(r, hs_of(r->shard), tmp, content_type, -1);
        conn_head(h, tmp, (size_t)(e - tmp));
        ag_free(tmp);
        return;
    }
    struct ag_http_xpiece *x = ag_malloc(sizeof *x + max);
    char *e = write_head(r, hs_of(r->shard), x->data, content_type, -1);
    x->kind = XP_HEAD;
    x->len = (uint32_t)(e - x->data);
    xq_append(r, x);
}

void ag_http_stream_write(struct ag_req *r, const char *p, size_t n)
{
    AG_BUG_ON(!r->streaming || r->x_ended);
    if (r->gone || !n)
        return;
    if (r->shard == r->conn->shard)
        conn_piece(hc_of(r->conn), p, n);
    else
        xq_push_data(r, p, n);
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
    AG_BUG_ON(!r->streaming || r->x_ended);
    uint32_t n = b->len - AG_HTTP_PIECE_HEAD - 2;
    if (r->gone || !n)
        return;
    if (r->shard != r->conn->shard) {
        xq_push_data(r, b->data + AG_HTTP_PIECE_HEAD, n);
        return;
    }
    struct http_conn *h = hc_of(r->conn);
    struct ag_conn *c = h->conn;
    if ((c->flags & AG_CONN_F_CLOSED) || ag_conn_closing(c))
        return;
    if (r->http10)
        ag_conn_write_obuf(c, b, AG_HTTP_PIECE_HEAD, n);
    else
        ag_conn_write_obuf(c, b, 0, b->len);
    conn_wrote(h, n);
}

bool ag_http_stream_behind(const struct ag_req *r)
{
    if (r->gone || !r->streaming || r->shard != r->conn->shard)
        return false;
    const struct ag_conn *c = r->conn;
    if ((c->flags & AG_CONN_F_CLOSED) || ag_conn_closing(c))
        return false;
    const struct ag_config *cfg = hs_of(c->shard)->cfg;
    return c->out_bytes > cfg->limits.stream_backlog_bytes / 2 && c->sent_ns &&
           c->shard->now_ns - c->sent_ns < ag_ms_to_ns(AG_HTTP_READER_GRACE_MS);
}

static void stream_end_task(struct ag_task *t)
{
    ag_http_stream_end(AG_CONTAINER_OF(t, struct ag_req, xtask));
}

void ag_http_stream_end(struct ag_req *r)
{
    if (!r->streaming || r->gone_task.queued) {
        ag_http_done(r);
        return;
    }
    AG_BUG_ON(r->x_ended);
    if (r->shard == r->conn->shard) {
        struct http_conn *h = hc_of(r->conn);
        if (h->state != H_WAIT) {
            /* Ended inside its handler, before dispatch made it a waiting request: end it from the
             * loop, once it is one. */
            r->xtask.fn = stream_end_task;
            ag_shard_defer(r->shard, &r->xtask);
            return;
        }
        conn_end(h);
        return;
    }
    r->x_ended = true;
    xq_push(r, XP_END, NULL, 0);
}

static void on_msg_piece(struct ag_shard *s, const struct ag_msg *m)
{
    struct ag_http_xpiece *x = m->ptr;
    struct ag_req *r = x->r;
    struct http_conn *h = hc_of(r->conn);
    AG_BUG_ON(r->conn->shard != s || h->state != H_WAIT);
    switch (x->kind) {
    case XP_HEAD:
        h->hb = r->hb;
        h->hb_ms = r->hb_ms;
        conn_head(h, x->data, x->len);
        break;
    case XP_DATA:
        atomic_fetch_sub_explicit(&r->x_unread, x->len, memory_order_relaxed);
        conn_piece(h, x->data, x->len);
        break;
    case XP_CUT:
        /* The owner gave up on a client that did not read: close, so it resumes elsewhere. The close
         * reports the goodbye to the owner like any other (request_gone). */
        ag_conn_close(r->conn, AG_CLOSE_NOW);
        break;
    case XP_END:
        if (h->gone_sent) {
            h->end_pending = true; /* the owner still owes the ack of our goodbye */
            break;
        }
        r->shard = s;
        conn_end(h);
        break;
    case XP_GONE_ACK:
        h->gone_sent = false;
        if (h->end_pending) {
            h->end_pending = false;
            if (r->streaming) {
                r->shard = s;
                conn_end(h);
            } else {
                write_done(s, r);
            }
        }
        break;
    }
    ag_free(x);
}

/* Runs on_gone from the loop, never inside the write or close that noticed the client left. A
 * request ended meanwhile is ended here, after the task left the shard's list (the request may be
 * reused as soon as it ends). */
static void gone_task(struct ag_task *t)
{
    struct ag_req *r = AG_CONTAINER_OF(t, struct ag_req, gone_task);
    if (r->end_deferred) {
        r->end_deferred = false;
        ag_http_done(r);
        return;
    }
    if (r->on_gone)
        r->on_gone(r);
}

/* The owner learns that the client of r left. */
static void on_msg_gone(struct ag_shard *s, const struct ag_msg *m)
{
    struct ag_req *r = m->ptr;
    AG_BUG_ON(r->shard != s);
    if (!r->x_ended && !r->gone) {
        r->gone = true;
        r->gone_task.fn = gone_task;
        ag_shard_defer(s, &r->gone_task);
    }
    xq_push(r, XP_GONE_ACK, NULL, 0);
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

/* The connection of a request still in its handler closed. */
static void request_gone(struct http_conn *h)
{
    struct ag_req *r = &h->req;
    ag_timer_cancel(&h->conn->shard->timers, &h->conn->timer);
    if (h->forwarded) {
        if (!h->gone_sent) {
            h->gone_sent = true;
            send_gone(h);
        }
        return;
    }
    if (!r->gone) {
        r->gone = true;
        r->gone_task.fn = gone_task;
        ag_shard_defer(h->conn->shard, &r->gone_task);
    }
}

void ag_http_register(void)
{
    ag_shard_register_msg(MSG_HTTP_RUN, on_msg_run);
    ag_shard_register_msg(MSG_HTTP_DONE, on_msg_done);
    ag_shard_register_msg(MSG_HTTP_PIECE, on_msg_piece);
    ag_shard_register_msg(MSG_HTTP_GONE, on_msg_gone);
}

void ag_http_done(struct ag_req *r)
{
    if (r->gone_task.queued) {
        r->end_deferred = true;
        return;
    }
    if (r->streaming) {
        ag_http_stream_end(r);
        return;
    }
    if (r->shard != r->conn->shard) {
        if (!r->status)
            ag_http_error(r, 500, "An unexpected error occurred");
        send_back(r);
        return;
    }
    struct http_conn *h = hc_of(r->conn);
    AG_BUG_ON(h->state != H_WAIT || &h->req != r);
    if (!r->status)
        ag_http_error(r, 500, "An unexpected error occurred");
    finish(h);
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
    const struct ag_limits *l = &hs_of(s)->cfg->limits;
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
    const struct ag_limits *l = &hs_of(h->conn->shard)->cfg->limits;
    if ((size_t)(at + len - h->win) > l->max_header_bytes)
        return stop_with(h, 431, "request head too large");
    return 0;
}

static int cb_message_begin(llhttp_t *p)
{
    struct http_conn *h = hc_from(p);
    h->state = H_HEAD;
    arm_timer(h, hs_of(h->conn->shard)->cfg->limits.header_timeout_ms);
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
    struct ag_req *r = &h->req;
    if (h->state == H_BODY)
        return 0;
    if (check_head(h, at, len))
        return -1;
    if (h->hstate != HS_FIELD) {
        if (r->nhdrs == AG_HTTP_MAX_HEADERS)
            return stop_with(h, 431, "too many request headers");
        struct ag_hdr *hd = &r->hdrs[r->nhdrs++];
        hd->name_off = (uint32_t)(at - h->win);
        hd->name_len = 0;
        hd->val_off = hd->val_len = 0;
        h->hstate = HS_FIELD;
    }
    r->hdrs[r->nhdrs - 1].name_len += (uint32_t)len;
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
    const struct ag_limits *l = &hs_of(c->shard)->cfg->limits;
    if (p->http_major != 1)
        return stop_with(h, 400, "unsupported HTTP version");
    h->state = H_BODY;
    h->chunked = (p->flags & F_CHUNKED) != 0;
    bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > l->max_body_bytes)
        return stop_with(h, 413, "request body too large");
    h->req.base = h->win;
    struct ag_iov expect = ag_req_header(&h->req, "expect");
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
    const struct ag_limits *l = &hs_of(h->conn->shard)->cfg->limits;
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
    const struct ag_limits *l = &hs_of(h->conn->shard)->cfg->limits;
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
    h->req.shard = c->shard;
    h->req.fwd_to = -1;
    if (c->flags & AG_CONN_F_REJECTED) {
        respond_early(h, 503, "too many connections", "1");
        return;
    }
    arm_timer(h, hs_of(c->shard)->cfg->limits.idle_timeout_ms);
}

/* Every byte of a request counts against a limit, checked as the parser reads them (h->raw): the
 * head, with any blank lines before it, against max_header_bytes (431); a body's data against
 * max_body_bytes (413, in the callbacks); a chunked body's other bytes (size lines, extensions,
 * CRLFs, trailers) against what the head left of max_header_bytes plus AG_HTTP_CHUNK_OVERHEAD per
 * chunk (400, or 431 in the trailers). Returns false after answering. */
static bool within_limits(struct http_conn *h)
{
    const struct ag_limits *l = &hs_of(h->conn->shard)->cfg->limits;
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
                if (h->head_len > hs_of(c->shard)->cfg->limits.max_header_bytes) {
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
        return; /* a handler (maybe on another shard) still reads the request; finish() frees it */
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
