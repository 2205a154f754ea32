#include "resp.h"

#include <string.h>
#include <strings.h>

/* Chunked-body states. */
enum { K_SIZE, K_EXT, K_SIZE_LF, K_DATA, K_DATA_CR, K_DATA_LF, K_TRAILER, K_TRAILER_LF, K_TRAILER_LINE };

void al_resp_init(struct al_resp *r)
{
    r->state = AL_RESP_HEAD;
    r->status = 0;
    r->content_length = -1;
    r->chunked = false;
    r->close = false;
    r->until_eof = false;
    r->body_bytes = 0;
    r->error = NULL;
    r->kstate = K_SIZE;
    r->krem = 0;
    r->hlen = 0;
}

static long fail(struct al_resp *r, const char *why)
{
    r->state = AL_RESP_ERROR;
    r->error = why;
    return -1;
}

static bool token_has(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++)
        if (!strncasecmp(v + i, tok, t)) return true;
    return false;
}

static void finish(struct al_resp *r, const struct al_resp_cb *cb, void *ud)
{
    r->state = AL_RESP_DONE;
    if (cb && cb->on_done) cb->on_done(ud, r);
}

/* Parses the complete head in r->head[0..r->hlen). */
static int parse_head(struct al_resp *r)
{
    char *p = r->head, *end = r->head + r->hlen;
    char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || end - p < 12 || strncmp(p, "HTTP/1.", 7)) return -1;
    bool http10 = p[7] == '0';
    if (p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') return -1;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    bool keepalive = false;
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        size_t len = (size_t)(eol - p);
        if (len && p[len - 1] == '\r') len--;
        if (!len) break;
        char *colon = memchr(p, ':', len);
        if (!colon) return -1;
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        size_t vlen = len - nlen - 1;
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        if (nlen == 14 && !strncasecmp(p, "content-length", 14)) {
            int64_t cl = 0;
            if (!vlen) return -1;
            for (size_t i = 0; i < vlen && v[i] != ' ' && v[i] != '\t'; i++) {
                if (v[i] < '0' || v[i] > '9' || cl > (INT64_MAX - 9) / 10) return -1;
                cl = cl * 10 + (v[i] - '0');
            }
            r->content_length = cl;
        } else if (nlen == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
            r->chunked = token_has(v, vlen, "chunked");
        } else if (nlen == 10 && !strncasecmp(p, "connection", 10)) {
            if (token_has(v, vlen, "close")) r->close = true;
            if (token_has(v, vlen, "keep-alive")) keepalive = true;
        }
    }
    if (http10 && !keepalive) r->close = true;
    return 0;
}

/* Enters the body after the head: decides how it is delimited. Returns true when there is none. */
static bool start_body(struct al_resp *r)
{
    r->state = AL_RESP_BODY;
    if ((r->status >= 100 && r->status < 200) || r->status == 204 || r->status == 304) return true;
    if (r->chunked) {
        r->kstate = K_SIZE;
        r->krem = 0;
        return false;
    }
    if (r->content_length >= 0) {
        r->krem = (uint64_t)r->content_length;
        return r->krem == 0;
    }
    r->until_eof = true;
    r->close = true;
    return false;
}

static void body(struct al_resp *r, const char *p, size_t n, const struct al_resp_cb *cb, void *ud)
{
    r->body_bytes += n;
    if (n && cb && cb->on_body) cb->on_body(ud, p, n);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Chunked body: consumes from p[0..n), returns the bytes consumed (the message may end inside). */
static long feed_chunked(struct al_resp *r, const char *p, size_t n, const struct al_resp_cb *cb, void *ud)
{
    size_t i = 0;
    while (i < n && r->state == AL_RESP_BODY) {
        char c = p[i];
        switch (r->kstate) {
        case K_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                if (r->krem >> 59) return fail(r, "chunk size too large");
                r->krem = r->krem * 16 + (uint64_t)h;
            } else if (c == ';' || c == ' ' || c == '\t')
                r->kstate = K_EXT;
            else if (c == '\r')
                r->kstate = K_SIZE_LF;
            else if (c == '\n')
                r->kstate = r->krem ? K_DATA : K_TRAILER;
            else
                return fail(r, "bad chunk size");
            i++;
            break;
        }
        case K_EXT:
            if (c == '\n')
                r->kstate = r->krem ? K_DATA : K_TRAILER;
            else if (c == '\r')
                r->kstate = K_SIZE_LF;
            i++;
            break;
        case K_SIZE_LF:
            if (c != '\n') return fail(r, "bad chunk size line");
            r->kstate = r->krem ? K_DATA : K_TRAILER;
            i++;
            break;
        case K_DATA: {
            size_t take = n - i;
            if (take > r->krem) take = (size_t)r->krem;
            body(r, p + i, take, cb, ud);
            i += take;
            r->krem -= take;
            if (!r->krem) r->kstate = K_DATA_CR;
            break;
        }
        case K_DATA_CR:
            if (c == '\r')
                r->kstate = K_DATA_LF;
            else if (c == '\n')
                r->kstate = K_SIZE;
            else
                return fail(r, "chunk data not followed by CRLF");
            i++;
            break;
        case K_DATA_LF:
            if (c != '\n') return fail(r, "chunk data not followed by CRLF");
            r->kstate = K_SIZE;
            i++;
            break;
        case K_TRAILER: /* at the start of a trailer line; an empty one ends the message */
            i++;
            if (c == '\r')
                r->kstate = K_TRAILER_LF;
            else if (c == '\n')
                finish(r, cb, ud);
            else
                r->kstate = K_TRAILER_LINE;
            break;
        case K_TRAILER_LF:
            if (c != '\n') return fail(r, "bad end of chunked body");
            i++;
            finish(r, cb, ud);
            break;
        case K_TRAILER_LINE:
            i++;
            if (c == '\n') r->kstate = K_TRAILER;
            break;
        }
    }
    return (long)i;
}

long al_resp_feed(struct al_resp *r, const char *p, size_t n, const struct al_resp_cb *cb, void *ud)
{
    size_t used = 0;
    if (r->state == AL_RESP_ERROR) return -1;
    if (r->state == AL_RESP_DONE) return 0;
    if (r->state == AL_RESP_HEAD) {
        /* Copy into the head buffer until the blank line; resume the search a few bytes back. */
        size_t from = r->hlen > 3 ? r->hlen - 3 : 0;
        size_t room = sizeof r->head - r->hlen;
        size_t take = n < room ? n : room;
        memcpy(r->head + r->hlen, p, take);
        r->hlen += take;
        char *h = r->head, *end = NULL;
        for (size_t i = from; i + 1 < r->hlen; i++) {
            if (h[i] == '\n' && h[i + 1] == '\n') {
                end = h + i + 2;
                break;
            }
            if (i + 3 < r->hlen && h[i] == '\r' && h[i + 1] == '\n' && h[i + 2] == '\r' && h[i + 3] == '\n') {
                end = h + i + 4;
                break;
            }
        }
        if (!end) {
            if (r->hlen == sizeof r->head) return fail(r, "response head too large");
            return (long)n;
        }
        size_t headlen = (size_t)(end - h);
        used = headlen - (r->hlen - take); /* bytes of this buffer that belonged to the head */
        r->hlen = headlen;
        if (parse_head(r) < 0) return fail(r, "malformed status line or header");
        bool empty = start_body(r);
        if (cb && cb->on_head) cb->on_head(ud, r);
        if (empty) {
            finish(r, cb, ud);
            return (long)used;
        }
    }
    p += used;
    n -= used;
    if (r->chunked) {
        long k = feed_chunked(r, p, n, cb, ud);
        return k < 0 ? -1 : (long)used + k;
    }
    if (r->until_eof) {
        body(r, p, n, cb, ud);
        return (long)(used + n);
    }
    size_t take = n < r->krem ? n : (size_t)r->krem;
    body(r, p, take, cb, ud);
    r->krem -= take;
    if (!r->krem) finish(r, cb, ud);
    return (long)(used + take);
}

int al_resp_eof(struct al_resp *r, const struct al_resp_cb *cb, void *ud)
{
    if (r->state == AL_RESP_BODY && r->until_eof) {
        finish(r, cb, ud);
        return 0;
    }
    if (r->state == AL_RESP_DONE) return 0;
    r->error = (r->state == AL_RESP_HEAD && r->hlen == 0) ? "closed" : "truncated";
    r->state = AL_RESP_ERROR;
    return -1;
}
