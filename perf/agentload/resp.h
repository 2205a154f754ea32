/* resp: an incremental HTTP/1.1 response parser. Bytes are fed as they arrive, split anywhere; the
 * parser reports the status and headers once the head is complete, then the body de-chunked (chunked
 * transfer coding, Content-Length, or until the connection closes), then the end of the message.
 * Only what a load client needs is kept from the head: status, Content-Length, chunked, and whether
 * the server will close the connection. */
#ifndef AL_RESP_H
#define AL_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AL_RESP_HEAD_MAX 16384 /* a longer response head is a parse error */

enum al_resp_state { AL_RESP_HEAD, AL_RESP_BODY, AL_RESP_DONE, AL_RESP_ERROR };

struct al_resp;

/* Called from al_resp_feed / al_resp_eof. on_head: status and headers are known (r->status,
 * r->content_length, r->chunked, r->close). on_body: the next body bytes, de-chunked (p is only valid
 * during the call). on_done: the message is complete. Any of them may be NULL. */
struct al_resp_cb {
    void (*on_head)(void *ud, struct al_resp *r);
    void (*on_body)(void *ud, const char *p, size_t n);
    void (*on_done)(void *ud, struct al_resp *r);
};

struct al_resp {
    enum al_resp_state state;
    int status;
    int64_t content_length; /* -1: none */
    bool chunked;
    bool close;          /* "Connection: close", or HTTP/1.0 without keep-alive */
    bool until_eof;      /* the body ends when the connection does */
    uint64_t body_bytes; /* de-chunked body bytes so far */
    const char *error;   /* what was wrong, in state AL_RESP_ERROR */
    /* private */
    int kstate;
    uint64_t krem;
    size_t hlen;
    char head[AL_RESP_HEAD_MAX];
};

/* Prepares r for the next response. */
void al_resp_init(struct al_resp *r);

/* Parses up to n bytes and returns how many it consumed: all of them, or fewer when the message
 * ended inside the buffer (the rest belongs to whatever follows; r->state is then AL_RESP_DONE).
 * Returns -1 on a malformed response (r->state AL_RESP_ERROR, r->error says why). A response to a
 * request the client did not pipeline should never leave bytes over. */
long al_resp_feed(struct al_resp *r, const char *p, size_t n, const struct al_resp_cb *cb, void *ud);

/* The connection reached end of file: completes a body read until close (on_done, returns 0); any
 * other unfinished response is truncated (returns -1, state AL_RESP_ERROR). In AL_RESP_HEAD with
 * nothing read yet it returns -1 with r->error "closed". */
int al_resp_eof(struct al_resp *r, const struct al_resp_cb *cb, void *ud);

#endif
