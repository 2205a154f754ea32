/* Response heads and whole answers: the status table (protocol/http_status.def), the head writer shared
 * with streamed answers, ag_http_respond and the JSON error shapes. */
#include "protocol/http.h"

#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "net/conn.h"
#include "protocol/http_internal.h"
#include "protocol/jsonw.h"

/* --- status table (protocol/http_status.def) --- */

static const char *or_default(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

const char *ag_http_reason(int status)
{
    switch (status) {
#define AG_HTTP_STATUS(code, reason, error, body) case code: return or_default(reason, "Unknown");
#include "protocol/http_status.def"
#undef AG_HTTP_STATUS
    default: return "Unknown";
    }
}

const char *ag_http_error_code(int status)
{
    switch (status) {
#define AG_HTTP_STATUS(code, reason, error, body) case code: return or_default(error, "unknown_error");
#include "protocol/http_status.def"
#undef AG_HTTP_STATUS
    default: return "unknown_error";
    }
}

/* False for a status whose answer never has a body, nor a Content-Length (RFC 9110 §8.6). */
static bool has_body(int status)
{
    switch (status) {
#define AG_HTTP_STATUS(code, reason, error, body) case code: return body;
#include "protocol/http_status.def"
#undef AG_HTTP_STATUS
    default: return true;
    }
}

/* --- heads --- */

static const char *http_date(struct http_shard *hs)
{
    int64_t now = (int64_t)time(NULL);
    if (now != hs->date_sec) {
        hs->date_sec = now;
        ag_clock_imf_fixdate(now, hs->date);
    }
    return hs->date;
}

void ag_http_add_header(struct ag_req *r, const char *name, const char *value)
{
    struct http_req *q = hr_of(r);
    ag_buf_puts(&q->extra_headers, name);
    ag_buf_append(&q->extra_headers, ": ", 2);
    ag_buf_puts(&q->extra_headers, value);
    ag_buf_append(&q->extra_headers, "\r\n", 2);
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

size_t ag_http__head_max(const struct http_req *q, const char *content_type)
{
    return 440 + strlen(content_type) + strlen(ag_http_reason(q->status)) + q->pub.id_len + q->extra_headers.len;
}

char *ag_http__write_head(struct http_req *q, struct http_shard *hs, char *p, const char *content_type, int64_t len)
{
    int status = q->status;
    const char *reason = ag_http_reason(status);
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_uint(p, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    if (has_body(status)) {
        p = PUT_LIT(p, "\r\ncontent-type: ");
        p = put(p, content_type, strlen(content_type));
        if (len >= 0) {
            p = PUT_LIT(p, "\r\ncontent-length: ");
            p = put_uint(p, (uint64_t)len);
        } else if (!q->http10) {
            p = PUT_LIT(p, "\r\ntransfer-encoding: chunked");
        }
    }
    p = PUT_LIT(p, "\r\ndate: ");
    p = put(p, http_date(hs), 29);
    p = PUT_LIT(p, "\r\nx-request-id: ");
    p = put(p, q->pub.id, q->pub.id_len);
    p = PUT_LIT(p, "\r\n");
    if (q->cors)
        p = PUT_LIT(p, "access-control-allow-origin: *\r\n"
                       "access-control-expose-headers: Content-Location, Location, X-Pagination-Total, X-Pagination-Next\r\n");
    if (!q->keep_alive)
        p = PUT_LIT(p, "connection: close\r\n");
    else if (q->http10)
        p = PUT_LIT(p, "connection: keep-alive\r\n");
    if (q->extra_headers.len)
        p = put(p, q->extra_headers.base, q->extra_headers.len);
    return PUT_LIT(p, "\r\n");
}

/* --- whole answers --- */

void ag_http_respond(struct ag_req *r, int status, const char *content_type, const char *body, size_t len)
{
    struct http_req *q = hr_of(r);
    struct ag_conn *c = q->conn;
    AG_BUG_ON(q->status != 0);
    q->status = status;
    if (r->shard && r->shard != c->shard) {
        /* Running on the thread's owner: the connection belongs to another shard. Keep the answer. */
        q->xctype = content_type;
        ag_buf_append(&q->xbody, body, len);
        return;
    }
    if (c->shard->draining)
        q->keep_alive = false; /* a drain began while an asynchronous handler worked */
    if (c->flags & AG_CONN_F_CLOSED)
        return; /* the client left while the answer was being prepared */
    if (!has_body(status))
        len = 0;
    char *start = ag_conn_wbuf(c, ag_http__head_max(q, content_type) + len), *p = start;
    p = ag_http__write_head(q, hs_of(c->shard), p, content_type, (int64_t)len);
    if (len)
        p = put(p, body, len);
    q->resp_bytes = (uint64_t)(p - start);
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

