#include "sync.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "resp.h"

struct sink {
    char *out;
    size_t cap, len;
    bool head_seen;
};

static void on_head(void *ud, struct al_resp *r)
{
    ((struct sink *)ud)->head_seen = true;
}

static void on_body(void *ud, const char *p, size_t n)
{
    struct sink *s = ud;
    if (!s->out || s->len + 1 >= s->cap) return;
    size_t take = n < s->cap - 1 - s->len ? n : s->cap - 1 - s->len;
    memcpy(s->out + s->len, p, take);
    s->len += take;
    s->out[s->len] = 0;
}

int al_sync_request(const struct al_run *r, const char *method, const char *path, const char *body, bool head_only,
                    double timeout_s, char *out, size_t cap)
{
    size_t qcap = 4096 + (body ? strlen(body) : 0);
    char *req = malloc(qcap);
    size_t qlen = al_run_request(r, req, qcap, method, path, body, NULL);
    struct al_resp *resp = malloc(sizeof *resp);
    struct sink sink = {.out = out, .cap = cap};
    int status = -1;
    if (out && cap) out[0] = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) goto out;
    struct timeval tv = {.tv_sec = (time_t)timeout_s, .tv_usec = (suseconds_t)((timeout_s - (long)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)&r->addr, sizeof r->addr) < 0) goto out;
    for (size_t off = 0; off < qlen;) {
        ssize_t k = send(fd, req + off, qlen - off, MSG_NOSIGNAL);
        if (k <= 0) goto out;
        off += (size_t)k;
    }
    const struct al_resp_cb cb = {on_head, on_body, NULL};
    al_resp_init(resp);
    uint64_t deadline = al_now() + (uint64_t)(timeout_s * 1e9);
    char buf[16384];
    while (resp->state != AL_RESP_DONE && al_now() < deadline) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0 && al_resp_eof(resp, &cb, &sink) == 0) break;
            goto out;
        }
        if (al_resp_feed(resp, buf, (size_t)k, &cb, &sink) < 0) goto out;
        if (head_only && sink.head_seen) break;
    }
    if (resp->state == AL_RESP_DONE || (head_only && sink.head_seen)) status = resp->status;
out:
    if (fd >= 0) close(fd);
    free(req);
    free(resp);
    return status;
}
