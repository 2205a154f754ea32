#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define METRICS_MAX (4u << 20) /* a /metrics answer longer than this is not read */

bool al_metrics_parse_sum(const char *text, size_t len, const char *name, double *out)
{
    size_t nl = strlen(name);
    const char *p = text, *end = text + len;
    double sum = 0;
    bool found = false;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        size_t ll = (size_t)(eol - p);
        if (ll > nl && *p != '#' && !memcmp(p, name, nl) && (p[nl] == ' ' || p[nl] == '{')) {
            const char *v = p + nl;
            if (*v == '{') {
                v = memchr(v, '}', (size_t)(eol - v));
                v = v ? v + 1 : eol;
            }
            while (v < eol && *v == ' ') v++;
            char num[64];
            size_t vl = 0;
            while (v + vl < eol && v[vl] != ' ' && vl < sizeof num - 1) vl++;
            memcpy(num, v, vl);
            num[vl] = 0;
            char *e;
            double d = strtod(num, &e);
            if (vl && *e == 0) {
                sum += d;
                found = true;
            }
        }
        if (eol == end) break;
        p = eol + 1;
    }
    if (found) *out = sum;
    return found;
}

bool al_metrics_fetch_sum(const struct sockaddr_in *addr, const char *host, const char *name, double *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bool ok = false;
    char *buf = NULL;
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) goto done;
    char req[256];
    int n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) goto done;
    size_t cap = 1u << 16, len = 0;
    buf = malloc(cap + 1);
    if (!buf) goto done;
    for (;;) {
        if (len == cap) {
            if (cap >= METRICS_MAX) goto done;
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) goto done;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0) goto done;
        if (r == 0) break;
        len += (size_t)r;
    }
    buf[len] = 0;
    /* Connection: close, so the body runs to the end (agentd answers /metrics with a Content-Length). */
    const char *body = strstr(buf, "\r\n\r\n");
    if (len < 12 || memcmp(buf, "HTTP/1.1 200", 12) || !body) goto done;
    body += 4;
    ok = al_metrics_parse_sum(body, len - (size_t)(body - buf), name, out);
done:
    free(buf);
    close(fd);
    return ok;
}
