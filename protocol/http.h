/* HTTP/1.1 on llhttp: the per-connection parser and request state, dispatch through the router, and
 * the response writer. Requests on one connection are answered strictly in order: the parser pauses
 * at each complete request and resumes once it is answered, so pipelined responses queue in order and
 * leave together in the turn's single write.
 *
 * Limits come from the config: head size (431), body size (413), header timeout (408), idle
 * keep-alive timeout (silent close), connections per shard (503). Malformed input is a 400 and the
 * connection closes after the answer. */
#ifndef AG_PROTOCOL_HTTP_H
#define AG_PROTOCOL_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/common.h"
#include "core/config.h"
#include "net/conn.h"
#include "protocol/router.h"

#define AG_HTTP_MAX_HEADERS 64

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
    /* Cross-shard execution (private to http.c). */
    int fwd_to;              /* shard to run the handler on, set by ag_http_forward; -1 none */
    const char *xctype;      /* the answer made on another shard, carried back to conn's shard */
    struct ag_buf xbody;
    struct ag_task xtask;
};

/* Installs the limits and per-shard state; call from each shard's on_start before ag_net_start. */
void ag_http_shard_init(struct ag_shard *s, const struct ag_config *cfg);
void ag_http_shard_exit(struct ag_shard *s);
/* The net handler for HTTP connections, and its per-connection state size. */
extern const struct ag_conn_handler ag_http_conn_handler;
size_t ag_http_conn_size(void);
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
/* {"error":"<code for status>","message":msg,"details":null} */
void ag_http_error(struct ag_req *r, int status, const char *msg);
/* {"detail":detail} (the framework's shape, for 404/405) */
void ag_http_detail(struct ag_req *r, int status, const char *detail);
/* The standard reason phrase and the error code of a status ("not_found" for 404). */
const char *ag_http_reason(int status);
const char *ag_http_error_code(int status);

#endif
