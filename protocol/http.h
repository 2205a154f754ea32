/* HTTP/1.1 on llhttp, as handlers and the server see it: the connection handler and per-shard hooks,
 * the request a handler gets, and the ways to answer it, whole or streamed. Requests on one connection
 * are answered strictly in order: the parser pauses at each complete request and resumes once it is
 * answered, so pipelined responses queue in order and leave together in the turn's single write.
 * A thread-scoped request runs on the thread's owner shard and its answer is carried back.
 * Limits, and the parts the module is made of: protocol/http_internal.h. */
#ifndef AG_PROTOCOL_HTTP_H
#define AG_PROTOCOL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "net/conn.h"

/* A request as its handler sees it. It lives inside its connection's state, next to the fields only
 * protocol/http*.c use; a handler reads it through this pointer, never a copy, until it calls
 * ag_http_done or ag_http_stream_end. Its spans point into the request's bytes, kept as long. */
struct ag_req {
    struct ag_shard *shard; /* the shard running the handler: the connection's, or the thread's owner
                             * (AG_TROUTE) */
    struct ag_iov query;    /* the query string without the '?', or {NULL, 0} */
    struct ag_iov body;     /* the body (a chunked one without its framing); len 0 when there is none */
    char id[64];            /* X-Request-ID, echoed or generated: id_len bytes */
    uint32_t id_len;
    /* Streamed (or waiting) answers: see ag_http_stream_start. */
    bool gone;                         /* the client left (on_gone was called or is queued) */
    void (*on_gone)(struct ag_req *r); /* set by the handler: the client left a streamed answer */
    void *stream_ud;                   /* the handler's, for on_gone */
};

/* What one connection may take (read-only while the shards run). */
struct ag_http_limits {
    uint32_t max_header_bytes;     /* request line + headers; beyond: 431 */
    uint64_t max_body_bytes;       /* request body; beyond: 413 */
    uint32_t idle_timeout_ms;      /* keep-alive connection with no request in progress and nothing left to send */
    uint32_t header_timeout_ms;    /* from a request's first byte to its complete head; beyond: 408 */
    uint32_t stream_backlog_bytes; /* output queued for a streaming client that does not read; beyond: cut off */
    uint32_t send_timeout_ms;      /* a connection with output pending that could send no byte for this
                                    * long is closed (it is not idle while it has output to send) */
};
#define AG_HTTP_LIMITS_DEFAULT                                                                                         \
    {.max_header_bytes = 16384,                                                                                        \
     .max_body_bytes = 10u << 20,                                                                                      \
     .idle_timeout_ms = 60000,                                                                                         \
     .header_timeout_ms = 10000,                                                                                       \
     .stream_backlog_bytes = 4u << 20,                                                                                 \
     .send_timeout_ms = 120000}

/* Installs the limits (borrowed for the shard's life) and per-shard state; call from each shard's
 * on_start before ag_net_start. */
void ag_http_shard_init(struct ag_shard *s, const struct ag_http_limits *lim);
/* Frees the per-shard state; from the shard's on_exit, once its connections are gone. */
void ag_http_shard_exit(struct ag_shard *s);
/* The net handler for HTTP connections, and its per-connection state size. */
extern const struct ag_conn_handler ag_http_conn_handler;
size_t ag_http_conn_size(void);
/* The shard's hooks.on_data_room: shard `to` took from the full data lane to it; the streamed answers
 * whose pieces it refused go on. */
void ag_http_data_room(struct ag_shard *s, int to);
/* Phase 5 (before the sockets' flush): sends what this turn gathered for other shards. */
void ag_http_flush(struct ag_shard *s);
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
 * the body, say) and return AG_AGAIN. The answer is carried back to the connection's shard. Also
 * later, on the connection's shard, for a request whose handler returned AG_AGAIN without answering
 * (a thread found by a query, say): it goes at once. Never for a request already forwarded. */
int ag_http_forward(struct ag_req *r, int to);

/* Adds a response header line to the answer of r (before ag_http_respond). */
void ag_http_add_header(struct ag_req *r, const char *name, const char *value);
/* Writes the complete response to r: status line, standard headers (content-type, content-length,
 * date, x-request-id, CORS, connection), the extra headers, and body[0..len). Exactly once per request.
 * content_type must outlive the request (a literal): on a forwarded request the answer is copied and
 * written later by the connection's shard. */
void ag_http_respond(struct ag_req *r, int status, const char *content_type, const char *body, size_t len);
/* ag_http_respond with json[0..len) as application/json. */
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
/* True once r's streamed answer has sent its head (ag_http_stream_start): an error can no longer be
 * answered with a status, only by ending the stream. */
bool ag_http_stream_started(const struct ag_req *r);
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
/* The standard reason phrase and the error code of a status ("not_found" for 404), from
 * protocol/http_status.def; "Unknown" and "unknown_error" for a status it does not name. */
const char *ag_http_reason(int status);
const char *ag_http_error_code(int status);

#endif
