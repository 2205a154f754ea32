/* What the parts of the HTTP module share, and nothing outside protocol/http*.c includes:
 *   http.c           HTTP/1.1 parsing on llhttp, the connection handler (net/conn.h), a request's life
 *                    from its first byte to ag_http_done, pipelining, timeouts
 *   http_response.c  the status table, response heads, whole answers (ag_http_respond, ag_http_error)
 *   http_stream.c    streamed answers on the connection's shard: chunks, heartbeats, the backlog
 *                    cut-off, the on_gone task
 *   http_forward.c   running a request on its thread's owner shard, and carrying its answer (whole or
 *                    piece by piece) back to the connection's shard
 *
 * Limits come from the config: head size (431), body size (413), header timeout (408), idle
 * keep-alive timeout (silent close; a connection whose answer is still being sent is not idle), send
 * timeout (a client that reads nothing of its answer for that long: silent close), connections per
 * shard (503). Malformed input is a 400 and the
 * connection closes after the answer. Every byte a client sends counts against one of them: blank
 * lines before a request count as head; a chunked body's size lines, extensions and trailers share
 * what the head left of the head limit, plus AG_HTTP_CHUNK_OVERHEAD bytes per chunk (400 beyond, 431
 * in the trailers). An unfinished request is kept in the connection's input only up to its head
 * (chunked) or its head and declared body (Content-Length). A client that pipelines requests without
 * reading their answers is not read from while AG_HTTP_PIPELINE_OUT_MAX bytes of answers wait. */
#ifndef AG_PROTOCOL_HTTP_INTERNAL_H
#define AG_PROTOCOL_HTTP_INTERNAL_H

#include <llhttp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/common.h"
#include "core/shard.h"
#include "net/conn.h"
#include "protocol/http.h"
#include "protocol/router.h"

/* Headers a request may have: 431 beyond. */
#define AG_HTTP_MAX_HEADERS 64
/* Bytes each chunk of a chunked request body may spend on its size line and CRLFs (16 hex digits,
 * CRLF, CRLF, and room for leading zeros) beyond the allowance it shares with the head. */
#define AG_HTTP_CHUNK_OVERHEAD 32
/* Pipelined requests are read only while less than this many bytes of earlier answers wait to be
 * sent: a client that sends requests and reads none of the answers is paused (its input then stops
 * at the net layer's cap) instead of making the server queue answers without end. */
#define AG_HTTP_PIPELINE_OUT_MAX (256u * 1024u)

/* Where a connection is in its current request (http_conn.state). */
enum hstate {
    H_IDLE, /* between requests */
    H_HEAD, /* reading a request head */
    H_BODY, /* reading its body */
    H_WAIT, /* its handler answers later (AG_AGAIN); the connection is paused */
};

/* A request run on its thread's owner shard, as its connection's shard sees it (http_conn.fwd). Only
 * that shard writes it; the owner keeps its own side in the request (x_ended, the xwait list), so
 * neither shard writes what the other reads while both hold the request.
 *
 *   FWD_NONE     -> FWD_AWAY      ag_http__send_forward: MSG_HTTP_RUN went to the owner
 *   FWD_AWAY     -> FWD_NONE      the end came back (MSG_HTTP_DONE with a whole answer, or the XP_END
 *                                 piece of a streamed one) and is written: the request finishes. Also
 *                                 at once, answering 503, when the owner's queue refused MSG_HTTP_RUN
 *   FWD_AWAY     -> FWD_GONE      the client left (ag_http__fwd_goodbye): MSG_HTTP_GONE went to the owner
 *   FWD_GONE     -> FWD_AWAY      its XP_GONE_ACK came before the end; a later goodbye goes out again
 *   FWD_GONE     -> FWD_GONE_END  the end came before the ack: it is held
 *   FWD_GONE_END -> FWD_NONE      XP_GONE_ACK: the held end is written, the request finishes
 *
 * Until the goodbye is acknowledged the request stays held, so the owner may read it however the
 * goodbye and the end cross. */
enum fwd_state {
    FWD_NONE,     /* the request runs here, or none is in progress */
    FWD_AWAY,     /* on fwd_shard: only that shard touches the request until the end comes back */
    FWD_GONE,     /* MSG_HTTP_GONE went to the owner: wait for its ack before finishing */
    FWD_GONE_END, /* the end arrived before that ack */
};

/* A header as offsets from the request's first byte. */
struct ag_hdr {
    uint32_t name_off, name_len, val_off, val_len;
};

struct ag_http_xpiece; /* a piece of an answer on its way back to the connection's shard (http_forward.c) */

/* A request: what its handler sees (pub), and the rest. One per connection, inside struct http_conn:
 * reset_request clears all of it between requests. */
struct http_req {
    struct ag_req pub;     /* first: handlers get &pub, hr_of() goes back */
    struct ag_conn *conn;  /* owned by the shard that read the request */
    const char *base;      /* the request's first byte; spans below point into it during dispatch */
    int method;            /* llhttp method number */
    bool keep_alive;       /* the connection stays open after the response */
    bool http10;
    bool cors;             /* the request carried Origin */
    struct ag_iov path;
    struct ag_hdr hdrs[AG_HTTP_MAX_HEADERS];
    uint32_t nhdrs;
    struct ag_route_match match;
    uint64_t start_ns;
    int status;            /* set when answered */
    uint64_t resp_bytes;
    struct ag_buf extra_headers; /* "name: value\r\n" lines added by the handler */
    /* Streamed answers (ag_http_stream_*) and on_gone. */
    bool streaming;        /* the head went out; the body follows in chunks */
    const char *hb;        /* heartbeat of a streamed answer (ag_http_stream_start) */
    uint32_t hb_ms;
    bool end_deferred;     /* ended while the on_gone task was queued: end from that task */
    struct ag_task gone_task;
    /* Cross-shard execution: the executing shard's side (the connection's is http_conn.fwd). */
    int fwd_to;            /* shard to run the handler on, set by ag_http_forward; -1 none */
    bool x_ended;          /* the end of the answer was sent back */
    struct ag_http_xpiece *xq_head, *xq_tail; /* pieces not yet sent back */
    uint64_t xq_bytes;     /* body bytes of those pieces */
    _Atomic uint64_t x_unread; /* body bytes sent to the connection's shard and not yet taken by it:
                                * added by the executing shard, subtracted by the connection's */
    struct http_req *xwait_next; /* the next request whose pieces wait for room on the data lane (it is
                                  * on that list while xq_head is set) */
    const char *xctype;    /* the answer made on another shard, carried back to conn's shard */
    struct ag_buf xbody;
    struct ag_task xtask;
};

/* The module's state on one shard (ag_shard.app). */
struct http_shard {
    const struct ag_http_limits *lim;
    uint64_t id_seed, id_counter;
    int64_t date_sec;
    char date[30];
    struct http_req *xwait; /* requests run here whose pieces a full data lane refused (http_req.xwait_next) */
    struct xfan_pend *fans; /* per connection's shard: the fan gathering there (http_forward.c), or NULL */
};

/* A connection's state (its ag_conn_priv), with the one request it reads or answers at a time. */
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
    enum fwd_state fwd; /* a request run on another shard */
    int fwd_shard;      /* that shard, once fwd left FWD_NONE */
    bool streaming;     /* the head of a streamed answer went out on this connection */
    const char *hb;     /* heartbeat of a streamed answer, every hb_ms */
    uint32_t hb_ms;
    struct ag_task gone_retry;
    int err_status;     /* set by a callback that stopped the parser */
    const char *err_msg;
    struct http_req req;
};

/* The module's state on shard s. */
static inline struct http_shard *hs_of(struct ag_shard *s)
{
    return s->app;
}

/* The state of HTTP connection c. */
static inline struct http_conn *hc_of(struct ag_conn *c)
{
    return ag_conn_priv(c);
}

/* The request around r, which a handler was given (never one of its own making). */
static inline struct http_req *hr_of(const struct ag_req *r)
{
    return AG_CONTAINER_OF(r, struct http_req, pub);
}

/* --- http.c --- */

/* The request of h has its answer (or the rest of it is dropped): logs it, then keeps the connection
 * for the next one or closes it. h->req is reset; the connection may be released. */
void ag_http__finish(struct http_conn *h);

/* --- http_response.c --- */

/* At most how many bytes ag_http__write_head writes for q with this content type. */
size_t ag_http__head_max(const struct http_req *q, const char *content_type);
/* Writes q's status line and headers at p (room for ag_http__head_max bytes): content_type, then a
 * content-length of len, or, for len < 0, a streamed body (chunked, or raw until close for HTTP/1.0).
 * Returns the end. */
char *ag_http__write_head(struct http_req *q, struct http_shard *hs, char *p, const char *content_type, int64_t len);

/* --- http_stream.c --- */

/* On the connection's shard: writes the head of a streamed answer, head[0..n), and starts the heartbeat
 * (h->hb every h->hb_ms). Nothing when the connection closed. */
void ag_http__conn_head(struct http_conn *h, const char *head, size_t n);
/* On the connection's shard: writes body piece p[0..n) as a chunk, raw for HTTP/1.0 (nothing when n is
 * 0 or the connection is closing), and cuts the client off (closes) when its backlog passed
 * limits.stream_backlog_bytes. */
void ag_http__conn_piece(struct http_conn *h, const char *p, size_t n);
/* On the connection's shard: the same for a piece made by ag_http_piece_new, written by reference. */
void ag_http__conn_obuf(struct http_conn *h, struct ag_obuf *b);
/* On the connection's shard: writes the end of a streamed answer, stops the heartbeat and finishes the
 * request (ag_http__finish). */
void ag_http__conn_end(struct http_conn *h);
/* The client of q left: sets q->pub.gone and queues on shard s (the one running q's handler) the task
 * that calls on_gone, or ends q if it ended meanwhile. q->pub.gone was false. */
void ag_http__gone(struct http_req *q, struct ag_shard *s);

/* --- http_forward.c --- */

/* On the connection's shard, for a request whose handler called ag_http_forward: sends h->req to shard
 * h->req.fwd_to (h->fwd becomes FWD_AWAY), or answers 503 and completes it when that shard's queue is
 * full. */
void ag_http__send_forward(struct http_conn *h);
/* On the executing shard: sends q's whole answer (ag_http_respond kept it) back to the connection's
 * shard, now or, when the way is full, from a retry task; only a goodbye that crosses it (MSG_HTTP_GONE)
 * touches q here after that. */
void ag_http__send_back(struct http_req *q);
/* On the connection's shard: the client of a forwarded request left; tells the owner once (FWD_AWAY
 * to FWD_GONE). The request stays held until the owner's ack. */
void ag_http__fwd_goodbye(struct http_conn *h);
/* On the executing shard (not the connection's): the head of a streamed answer, for the connection's
 * shard, written from q's status and headers. */
void ag_http__x_head(struct http_req *q, const char *content_type);
/* On the executing shard: body piece p[0..n) (copied), or the client's cut-off when its backlog here
 * and in flight would pass limits.stream_backlog_bytes. */
void ag_http__x_data(struct http_req *q, const char *p, size_t n);
/* On the executing shard: the same for a piece made by ag_http_piece_new (b is borrowed). The pieces of
 * one b for the requests of one connection's shard go there together, in one message with one copy
 * (see "fans" in http_forward.c). */
void ag_http__x_obuf(struct http_req *q, struct ag_obuf *b);
/* Shard exit: lets go of the fans that gather here, unsent (the other shards are stopping too). */
void ag_http__fans_free(struct ag_shard *s);
/* On the executing shard: the end of q's streamed answer. q is not touched after it left. */
void ag_http__x_end(struct http_req *q);

#endif
