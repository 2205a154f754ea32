/* conn: non-blocking TCP client connections on one epoll loop. A connection connects (at most
 * AL_CONN_CONNECT_WINDOW connects are in progress at once; the rest wait their turn, so a server's
 * listen backlog is never overrun), writes whole requests (queued when the socket is full), and
 * feeds what it reads to its response parser (resp.h), whose callbacks go to the connection's owner.
 * One request at a time per connection (no pipelining); keep-alive is the default. */
#ifndef AL_CONN_H
#define AL_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resp.h"

#define AL_CONN_CONNECT_WINDOW 64

enum al_conn_state { AL_CONN_CLOSED, AL_CONN_QUEUED, AL_CONN_CONNECTING, AL_CONN_OPEN };

struct al_conn;

/* What the owner hears. on_open: the connection is established (send the first request now).
 * on_head / on_body / on_done: the response parser's callbacks for the request in flight.
 * on_error: the connection failed (connect refused, reset, end of file outside a response, a
 * malformed response) and is already closed; `what` is a short fixed string. Callbacks may send,
 * close or reopen the connection. */
struct al_conn_ops {
    void (*on_open)(struct al_conn *c);
    void (*on_head)(struct al_conn *c, struct al_resp *r);
    void (*on_body)(struct al_conn *c, const char *p, size_t n);
    void (*on_done)(struct al_conn *c, struct al_resp *r);
    void (*on_error)(struct al_conn *c, const char *what);
};

struct al_conn {
    int fd;
    enum al_conn_state state;
    const struct al_conn_ops *ops;
    void *owner;
    struct al_resp resp;
    bool awaiting; /* a request was sent and its response has not ended */
    char *wbuf;    /* queued request bytes not yet written (owned) */
    size_t wlen, woff, wcap;
    uint64_t responses; /* completed on this connection since it opened */
    struct al_conn *next_queued;
};

/* Sets up the loop: the server address every connection goes to. Returns 0 or -errno. */
int al_conn_loop_init(const struct sockaddr_in *server);

/* Prepares c (closed) with its owner's callbacks. */
void al_conn_init(struct al_conn *c, const struct al_conn_ops *ops, void *owner);

/* Starts connecting c (closed) now, or queues it behind the connect window. Errors arrive through
 * on_error. */
void al_conn_open(struct al_conn *c);

/* Sends one request (copied) and arms the response parser. The connection must be open with no
 * response pending. */
void al_conn_request(struct al_conn *c, const char *req, size_t len);

/* Closes c at once (no callback); it can be opened again. Frees its write buffer. */
void al_conn_close(struct al_conn *c);

/* Waits up to timeout_ms (-1: no limit) for socket events and dispatches them. Returns the number
 * of events handled, or -errno. */
int al_conn_loop_poll(int timeout_ms);

/* Connections currently connecting or waiting for the connect window. */
unsigned al_conn_pending_connects(void);

/* Totals since start: connections opened, connect failures, bytes read and written, recv calls. */
struct al_conn_totals {
    uint64_t opened, connect_failed, bytes_in, bytes_out, reads;
};
const struct al_conn_totals *al_conn_totals(void);

#endif
