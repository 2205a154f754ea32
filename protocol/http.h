/* HTTP/1.1 on llhttp: the per-connection parser and request state, dispatch through the router, and
 * the response writer. Requests on one connection are answered strictly in order: the parser pauses
 * at each complete request and resumes once it is answered, so pipelined responses queue in order and
 * leave together in the turn's single write.
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
#ifndef AG_PROTOCOL_HTTP_H
#define AG_PROTOCOL_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/common.h"
#include "core/config.h"
#include "core/obuf.h"
#include "net/conn.h"
#include "protocol/router.h"

#define AG_HTTP_MAX_HEADERS 64
/* Bytes each chunk of a chunked request body may spend on its size line and CRLFs (16 hex digits,
 * CRLF, CRLF, and room for leading zeros) beyond the allowance it shares with the head. */
#define AG_HTTP_CHUNK_OVERHEAD 32
/* Pipelined requests are read only while less than this many bytes of earlier answers wait to be
 * sent: a client that sends requests and reads none of the answers is paused (its input then stops
 * at the net layer's cap) instead of making the server queue answers without end. */
#define AG_HTTP_PIPELINE_OUT_MAX (256u * 1024u)

/* A header as offsets from the request's first byte. */
struct ag_hdr {
    uint32_t name_off, name_len, val_off, val_len;
};

struct ag_req {
    struct ag_conn *conn;    /* owned by the shard that read the request */
    struct ag_shard *shard;  /* the shard running the handler: conn's, or the thread's owner (AG_TROUTE) */
    const char *base; /* the request's first byte; spans below point into it during dispatch */
    int method;       /* llhttp method number */
    bool keep_alive;  /* the connection stays open after the response */
    bool http10;
    bool cors;        /* the request carried Origin */
    struct ag_iov path, query; /* query excludes the '?' */
    struct ag_hdr hdrs[AG_HTTP_MAX_HEADERS];
    uint32_t nhdrs;
    struct ag_iov body;
    struct ag_route_match match;
    char id[64]; /* X-Request-ID, echoed or generated */
    uint32_t id_len;
    uint64_t start_ns;
    int status; /* set when answered */
    uint64_t resp_bytes;
    struct ag_buf extra_headers; /* "name: value\r\n" lines added by the handler */
    /* Streaming answers (ag_http_stream_*). */
    bool streaming;                     /* the head went out; the body follows in chunks */
    bool gone;                          /* the client left (on_gone was called or is queued) */
    void (*on_gone)(struct ag_req *r);  /* set by the handler: the client left a streamed answer */
    void *stream_ud;                    /* the handler's, for on_gone */
    /* Cross-shard execution (private to http.c). */
    bool x_ended;            /* executing shard: the end of the answer was sent back */
    bool end_deferred;       /* ended while the on_gone task was queued: end from that task */
    struct ag_http_xpiece *xq_head, *xq_tail; /* executing shard: pieces not yet sent back */
    uint64_t xq_bytes;       /* executing shard: body bytes of those pieces */
    _Atomic uint64_t x_unread; /* body bytes sent to the connection's shard and not yet taken by it:
                                * added by the executing shard, subtracted by the connection's */
    const char *hb;          /* heartbeat of a streamed answer (ag_http_stream_start) */
    uint32_t hb_ms;
    int fwd_to;              /* shard to run the handler on, set by ag_http_forward; -1 none */
    const char *xctype;      /* the answer made on another shard, carried back to conn's shard */
    struct ag_buf xbody;
    struct ag_task xtask;
    bool xwaiting;            /* executing shard: its pieces wait for room on the data lane */
    struct ag_req *xwait_next; /* executing shard: the next request waiting so */
    struct ag_task gone_task;
};

/* Installs the limits and per-shard state; call from each shard's on_start before ag_net_start. */
void ag_http_shard_init(struct ag_shard *s, const struct ag_config *cfg);
void ag_http_shard_exit(struct ag_shard *s);
/* The net handler for HTTP connections, and its per-connection state size. */
extern const struct ag_conn_handler ag_http_conn_handler;
size_t ag_http_conn_size(void);
/* The shard's hooks.on_data_room: shard `to` took from the full data lane to it; the streamed answers
 * whose pieces it refused go on. */
void ag_http_data_room(struct ag_shard *s, int to);
/* Drain: close every connection with no request in progress; the others close after their answer. */
void ag_http_drain(struct ag_shard *s);
/* Stop: close every connection now. */
void ag_http_stop(struct ag_shard *s);

/* The value of header `name` (case-insensitive), or {NULL, 0}. */
struct ag_iov ag_req_header(const struct ag_req *r, const char *name);
/* Path parameter `name` of the matched route, or {NULL, 0}. */
struct ag_iov ag_req_param(const struct ag_req *r, const char *name);
/* Path parameter `name`, percent-decoded into a new NUL-terminated string (ag_free it), or NULL when
 * it is absent, badly encoded or decodes to a NUL byte. */
char *ag_req_param_str(const struct ag_req *r, const char *name);

/* Main thread, before the runtime starts: the cross-shard message handlers. */
void ag_http_register(void);
/* From a handler: run this request's handler again on shard `to` (the owner of a thread named in
 * the body, say) and return AG_AGAIN. The answer is carried back to the connection's shard. */
int ag_http_forward(struct ag_req *r, int to);

/* Adds a response header line to the answer of r (before ag_http_respond). */
void ag_http_add_header(struct ag_req *r, const char *name, const char *value);
/* Writes the complete response to r: status line, standard headers (content-type, content-length,
 * date, x-request-id, CORS, connection), the extra headers, and body[0..len). Exactly once per request.
 * content_type must outlive the request (a literal): on a forwarded request the answer is copied and
 * written later by the connection's shard. */
void ag_http_respond(struct ag_req *r, int status, const char *content_type, const char *body, size_t len);
static inline void ag_http_json(struct ag_req *r, int status, const char *json, size_t len)
{
    ag_http_respond(r, status, "application/json", json, len);
}
/* Completes a request whose handler returned AG_AGAIN, after it called ag_http_respond (or a 500 is
 * sent). The request's spans stay valid until this call; the connection is held open until then even
 * if the client leaves (writes to a closed connection are dropped). */
void ag_http_done(struct ag_req *r);
/* --- Streamed answers (SSE, or a JSON body that trickles heartbeats while a run works) ---
 * From a handler that returned AG_AGAIN (or later), on the shard running it (r->shard, which may be
 * the thread's owner and not the connection's): start the answer, write body pieces as they come,
 * end it. HTTP/1.1 uses chunked transfer encoding (one chunk per write); HTTP/1.0 gets the raw body
 * and the connection closes after it. A forwarded request's pieces are copied into messages to the
 * connection's shard, in order. The connection's shard writes `heartbeat` every `heartbeat_ms`
 * while the answer is open (SSE comments, or "\n" for JSON), independent of traffic. A client that
 * stops reading is cut off (its connection closes; on_gone follows) once more than the configured
 * output backlog (limits.stream_backlog_bytes) is queued for it: in its connection's output queue,
 * or, for a forwarded request, on the executing shard plus in flight between the two shards. */

/* Sends the head: status, content_type (a literal), the extra headers, chunked encoding. heartbeat
 * (a literal, or NULL for none) is written every heartbeat_ms. */
void ag_http_stream_start(struct ag_req *r, int status, const char *content_type, const char *heartbeat,
                          uint32_t heartbeat_ms);
/* Writes p[0..n) as the next piece (copied). Ignored once the client left. */
void ag_http_stream_write(struct ag_req *r, const char *p, size_t n);
/* Pieces framed once for every subscriber (fan-out): a buffer holding one body piece of n bytes
 * inside its chunk framing ("<8 hex digits>\r\n" before, "\r\n" after), so each chunked connection
 * queues a reference to the same bytes and nothing else (an HTTP/1.0 one the middle part). Write the
 * piece at ag_http_piece_data(b); the buffer has one reference, the caller's. */
#define AG_HTTP_PIECE_HEAD 10
struct ag_obuf *ag_http_piece_new(size_t n);
static inline char *ag_http_piece_data(struct ag_obuf *b)
{
    return b->data + AG_HTTP_PIECE_HEAD;
}
/* Writes piece b (from ag_http_piece_new) as the next piece: shared when the connection is on this
 * shard, its payload copied otherwise. */
void ag_http_stream_write_piece(struct ag_req *r, struct ag_obuf *b);
/* A client still reading is waited for this long: see ag_http_stream_behind. */
#define AG_HTTP_READER_GRACE_MS 1000
/* For the producer of a stream: true while r's client is behind but reading: more than half of
 * limits.stream_backlog_bytes is queued for it and a write to it moved bytes within the last
 * AG_HTTP_READER_GRACE_MS. The producer should pause rather than queue more: a connection sends one
 * write per loop turn, so a producer faster than that would get a reader that keeps up cut off. A
 * client that stopped reading is not waited for (false): its backlog grows and it is cut off. Also false
 * for a forwarded request (its connection is another shard's) and once the client left. */
bool ag_http_stream_behind(const struct ag_req *r);
/* Ends the answer (the terminating chunk) and completes the request, like ag_http_done; r is the
 * connection's again after this call: do not touch it. Also the way to release a request whose
 * client left (after on_gone). */
void ag_http_stream_end(struct ag_req *r);
/* r->on_gone is called on r->shard, from a deferred task, once the client of a streamed (or
 * waiting) request has gone; the handler then stops producing and calls ag_http_stream_end (or
 * ag_http_done when nothing was started). Set it before returning AG_AGAIN. */

/* {"error":"<code for status>","message":msg,"details":null} */
void ag_http_error(struct ag_req *r, int status, const char *msg);
/* {"detail":detail} (the framework's shape, for 404/405) */
void ag_http_detail(struct ag_req *r, int status, const char *detail);
/* The standard reason phrase and the error code of a status ("not_found" for 404). */
const char *ag_http_reason(int status);
const char *ag_http_error_code(int status);

#endif
