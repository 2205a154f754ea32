/* Superseded by agentload's `fanout` scenario (perf/agentload/fanout.c), which measures the same
 * figures the same way; kept because perf/bench-runs.sh and its recorded results use it.
 *
 * fanout_sse: N keep-alive SSE subscribers on one stream URL, read with one epoll loop; measures how
 * many events reach them per second and how far each delivery lags behind the first delivery of the
 * same event. perf/bench-runs.sh runs it against GET /threads/{id}/runs/{run_id}/stream of a `stress`
 * run (stream_mode custom) that starts after every subscriber has joined.
 *
 * Events are told apart by the `"index":K` of their data (the stress graph's custom payload
 * {"token":"tK","index":K}), not by the SSE id, so that any server's numbering works. Only frames whose
 * event is `custom` (or whose data has an index and no event name) count as deliveries.
 *
 * Timing: one CLOCK_MONOTONIC reading per recv; every frame completed by that read gets it. The lag
 * of a delivery is (its read time) - (the read time of the first delivery of the same index to any
 * subscriber); the loop is single-threaded, so reads are processed in time order and the first
 * delivery of an index is always seen before the others. deliveries/s = custom frames received by all
 * subscribers / (last - first receive time of a custom frame).
 *
 * usage: fanout_sse -p PORT -u PATH [-n SUBS] [-H "Name: value"]... [-e EVENTS] [-t SECONDS]
 *                   [-i IDLE_SECONDS] [-a HOST]
 *   -n subscribers (1000)   -e events each should see (0: unknown; the run's `tokens`)
 *   -t give up after this many seconds in all (120)   -i stop once nothing arrived for this long
 *      after the first event (10)   -a the server's IPv4 address (127.0.0.1)
 * Connections are opened 64 at a time (the next as each one completes its connect or fails), so a
 * listen backlog is never overrun. Status lines go to stderr ("subscribed N in S s" once every
 * subscriber has its 200 and headers); the result is one JSON object on stdout. Exit status 0 when
 * every subscriber got a 200, 1 otherwise (the JSON is printed either way). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_WINDOW 64
#define RBUF (256 * 1024)
#define HDR_MAX 8192
#define LINE_MAX_ 4096

enum cstate { C_IDLE, C_CONNECTING, C_HEADERS, C_BODY, C_DONE, C_FAILED };
enum chunk { K_SIZE, K_SIZE_EXT, K_SIZE_LF, K_DATA, K_DATA_CR, K_DATA_LF, K_END };

struct conn {
    int fd;
    enum cstate st;
    char hdr[HDR_MAX];
    size_t hlen;
    int status;
    bool chunked;
    long long clen; /* content-length, -1 if none */
    enum chunk k;
    uint64_t krem; /* bytes left in the current chunk */
    char line[LINE_MAX_];
    size_t llen;
    bool lcr; /* the last line ended with \r (a \n right after it belongs to it) */
    /* the frame being read */
    bool ev_custom, ev_named, ev_end;
    long long index;
    /* totals */
    uint64_t frames, custom, bytes;
    bool got_end;
};

static struct conn *conns;
static int nsubs = 1000;
static const char *path;
static const char *host = "127.0.0.1";
static int port;
static char request[4096];
static size_t request_len;
static int ep;

static uint64_t *first_ns; /* per index: first receive time (0 = not yet) */
static long long nindex;   /* size of first_ns */
static uint64_t *lags;     /* ns */
static size_t nlags, caplags;
static uint64_t t_first_custom, t_last_custom, t_start;
static uint64_t reads, custom_total, frames_total, bytes_total, bad_index;
static int nconnected, nheaders, nfailed, nended, nopen, next_to_open;
static uint64_t t_all_headers;
static uint64_t t_first_any_custom_before_all = 0;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    perror(msg);
    exit(2);
}

static void record(long long idx, uint64_t t)
{
    if (idx < 0 || idx > 100000000) {
        bad_index++;
        return;
    }
    if (idx >= nindex) {
        long long n = nindex ? nindex : 1024;
        while (n <= idx)
            n *= 2;
        first_ns = realloc(first_ns, (size_t)n * sizeof *first_ns);
        if (!first_ns) die("realloc");
        memset(first_ns + nindex, 0, (size_t)(n - nindex) * sizeof *first_ns);
        nindex = n;
    }
    if (!first_ns[idx]) first_ns[idx] = t;
    if (nlags == caplags) {
        caplags = caplags ? caplags * 2 : 1 << 20;
        lags = realloc(lags, caplags * sizeof *lags);
        if (!lags) die("realloc");
    }
    lags[nlags++] = t - first_ns[idx];
    if (!t_first_custom) t_first_custom = t;
    t_last_custom = t;
    custom_total++;
    if (nheaders < nsubs && !t_first_any_custom_before_all) t_first_any_custom_before_all = t;
}

/* One SSE line (without its terminator). */
static void sse_line(struct conn *c, const char *l, size_t n, uint64_t t)
{
    if (n == 0) { /* dispatch */
        if (c->ev_end) c->got_end = true;
        if (c->index >= 0 && (c->ev_custom || !c->ev_named)) {
            c->custom++;
            record(c->index, t);
        }
        if (c->ev_named || c->index >= 0) c->frames++, frames_total++;
        c->ev_custom = c->ev_named = c->ev_end = false;
        c->index = -1;
        return;
    }
    if (l[0] == ':') return;
    if (n >= 6 && !memcmp(l, "event:", 6)) {
        const char *v = l + 6;
        size_t vn = n - 6;
        if (vn && *v == ' ') v++, vn--;
        c->ev_named = true;
        c->ev_custom = vn == 6 && !memcmp(v, "custom", 6);
        c->ev_end = vn == 3 && !memcmp(v, "end", 3);
    } else if (n >= 5 && !memcmp(l, "data:", 5)) {
        const char *p = memmem(l, n, "\"index\":", 8);
        if (p) {
            p += 8;
            while (p < l + n && *p == ' ')
                p++;
            long long v = 0;
            bool any = false;
            while (p < l + n && *p >= '0' && *p <= '9')
                v = v * 10 + (*p++ - '0'), any = true;
            if (any) c->index = v;
        }
    }
}

/* Body bytes (chunk framing already removed). */
static void sse_bytes(struct conn *c, const char *p, size_t n, uint64_t t)
{
    while (n) {
        if (c->lcr && *p == '\n') { /* the \n of a \r\n */
            c->lcr = false;
            p++, n--;
            continue;
        }
        c->lcr = false;
        size_t i = 0;
        while (i < n && p[i] != '\n' && p[i] != '\r')
            i++;
        if (i == n) { /* partial line */
            size_t take = i < LINE_MAX_ - c->llen ? i : LINE_MAX_ - c->llen;
            memcpy(c->line + c->llen, p, take);
            c->llen += take;
            return;
        }
        if (c->llen) {
            size_t take = i < LINE_MAX_ - c->llen ? i : LINE_MAX_ - c->llen;
            memcpy(c->line + c->llen, p, take);
            c->llen += take;
            sse_line(c, c->line, c->llen, t);
            c->llen = 0;
        } else {
            sse_line(c, p, i, t);
        }
        c->lcr = p[i] == '\r';
        p += i + 1, n -= i + 1;
    }
}

static void finish(struct conn *c, enum cstate st)
{
    if (c->st == C_DONE || c->st == C_FAILED) return;
    if (st == C_DONE)
        nended++;
    else
        nfailed++;
    if (c->st == C_CONNECTING) nopen--;
    c->st = st;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

/* Body bytes as received: removes chunked framing. Returns false once the body ended. */
static bool body(struct conn *c, const char *p, size_t n, uint64_t t)
{
    c->bytes += n;
    if (!c->chunked) {
        if (c->clen >= 0 && (long long)n > c->clen) n = (size_t)c->clen;
        sse_bytes(c, p, n, t);
        if (c->clen >= 0) {
            c->clen -= (long long)n;
            return c->clen > 0;
        }
        return true;
    }
    while (n) {
        switch (c->k) {
        case K_SIZE: {
            char ch = *p;
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d >= 0)
                c->krem = c->krem * 16 + (uint64_t)d;
            else if (ch == '\r')
                c->k = K_SIZE_LF;
            else if (ch == '\n')
                c->k = c->krem ? K_DATA : K_END;
            else
                c->k = K_SIZE_EXT;
            p++, n--;
            break;
        }
        case K_SIZE_EXT:
            if (*p == '\r') c->k = K_SIZE_LF;
            p++, n--;
            break;
        case K_SIZE_LF:
            c->k = c->krem ? K_DATA : K_END;
            p++, n--;
            break;
        case K_DATA: {
            size_t take = n < c->krem ? n : (size_t)c->krem;
            sse_bytes(c, p, take, t);
            c->krem -= take;
            p += take, n -= take;
            if (!c->krem) c->k = K_DATA_CR;
            break;
        }
        case K_DATA_CR:
            c->k = *p == '\r' ? K_DATA_LF : K_SIZE;
            if (*p == '\n') c->k = K_SIZE;
            p++, n--;
            break;
        case K_DATA_LF:
            c->k = K_SIZE;
            c->krem = 0;
            p++, n--;
            break;
        case K_END:
            return false;
        }
    }
    return c->k != K_END;
}

static void open_next(void)
{
    while (nopen < CONNECT_WINDOW && next_to_open < nsubs) {
        struct conn *c = &conns[next_to_open++];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, host, &sa.sin_addr);
        c->st = C_CONNECTING;
        c->index = -1;
        c->clen = -1;
        nopen++;
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
            fprintf(stderr, "fanout_sse: connect: %s\n", strerror(errno));
            finish(c, C_FAILED);
            continue;
        }
        struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl");
    }
}

static void on_headers(struct conn *c, uint64_t t)
{
    char *end = memmem(c->hdr, c->hlen, "\r\n\r\n", 4);
    size_t hl = (size_t)(end - c->hdr) + 4;
    c->hdr[hl - 2] = 0;
    if (sscanf(c->hdr, "HTTP/1.%*d %d", &c->status) != 1) c->status = -1;
    for (char *l = strstr(c->hdr, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        char *h = l + 2;
        if (!strncasecmp(h, "transfer-encoding:", 18) && strcasestr(h, "chunked")) c->chunked = true;
        if (!strncasecmp(h, "content-length:", 15)) c->clen = atoll(h + 15);
    }
    if (c->status != 200) {
        static int shown;
        if (shown++ < 3) fprintf(stderr, "fanout_sse: HTTP %d: %.300s\n", c->status, c->hdr);
        finish(c, C_FAILED);
        return;
    }
    c->st = C_BODY;
    if (++nheaders == nsubs) {
        t_all_headers = t;
        fprintf(stderr, "subscribed %d in %.3f s\n", nsubs, (double)(t - t_start) / 1e9);
    }
    size_t rest = c->hlen - hl;
    if (rest && !body(c, c->hdr + hl, rest, t)) finish(c, C_DONE);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!nlags) return -1;
    size_t i = (size_t)(p / 100.0 * (double)(nlags - 1) + 0.5);
    return (double)lags[i] / 1e6;
}

int main(int argc, char **argv)
{
    char headers[2048] = "";
    size_t hn = 0;
    long long expect = 0;
    double limit_s = 120, idle_s = 10;
    int o;
    while ((o = getopt(argc, argv, "p:u:n:H:e:t:i:a:")) != -1) {
        switch (o) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'u':
            path = optarg;
            break;
        case 'n':
            nsubs = atoi(optarg);
            break;
        case 'H': {
            int w = snprintf(headers + hn, sizeof headers - hn, "%s\r\n", optarg);
            if (w < 0 || (size_t)w >= sizeof headers - hn) {
                fprintf(stderr, "fanout_sse: headers too long\n");
                return 2;
            }
            hn += (size_t)w;
            break;
        }
        case 'e':
            expect = atoll(optarg);
            break;
        case 't':
            limit_s = atof(optarg);
            break;
        case 'i':
            idle_s = atof(optarg);
            break;
        case 'a':
            host = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: fanout_sse -p PORT -u PATH [-n SUBS] [-H header]... [-e EVENTS] [-t S] [-i S] [-a HOST]\n");
            return 2;
        }
    }
    if (!port || !path || nsubs < 1) {
        fprintf(stderr, "fanout_sse: -p PORT and -u PATH are required\n");
        return 2;
    }
    int w = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n",
                     path, host, port, headers);
    if (w < 0 || (size_t)w >= sizeof request) return 2;
    request_len = (size_t)w;
    conns = calloc((size_t)nsubs, sizeof *conns);
    char *rbuf = malloc(RBUF);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || !rbuf || ep < 0) die("setup");
    for (int i = 0; i < nsubs; i++)
        conns[i].fd = -1;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    t_start = now_ns();
    uint64_t deadline = t_start + (uint64_t)(limit_s * 1e9);
    open_next();
    struct epoll_event evs[256];
    bool timed_out = false, idle_out = false;
    uint64_t t_last_byte = t_start;
    while (nended + nfailed < nsubs) {
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->st == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    fprintf(stderr, "fanout_sse: connect: %s\n", strerror(err));
                    finish(c, C_FAILED);
                    continue;
                }
                if (!(evs[i].events & EPOLLOUT)) continue;
                ssize_t s = send(c->fd, request, request_len, MSG_NOSIGNAL);
                if (s != (ssize_t)request_len) {
                    finish(c, C_FAILED);
                    continue;
                }
                nconnected++;
                nopen--;
                c->st = C_HEADERS;
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                continue;
            }
            if (c->st != C_HEADERS && c->st != C_BODY) continue;
            ssize_t r = recv(c->fd, rbuf, RBUF, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) {
                if (c->st == C_BODY && !c->chunked && c->clen < 0)
                    finish(c, C_DONE); /* close-delimited body */
                else if (c->st == C_BODY && c->got_end)
                    finish(c, C_DONE);
                else {
                    static int shown;
                    if (shown++ < 3)
                        fprintf(stderr, "fanout_sse: subscriber %td: %s before the end of the stream\n", c - conns,
                                r < 0 ? strerror(errno) : "EOF");
                    finish(c, C_FAILED);
                }
                continue;
            }
            reads++;
            bytes_total += (uint64_t)r;
            t_last_byte = t;
            if (c->st == C_HEADERS) {
                size_t take = (size_t)r < HDR_MAX - c->hlen ? (size_t)r : HDR_MAX - c->hlen;
                memcpy(c->hdr + c->hlen, rbuf, take);
                c->hlen += take;
                if (memmem(c->hdr, c->hlen, "\r\n\r\n", 4)) {
                    if ((size_t)r > take) { /* headers and more than HDR_MAX of body in one read */
                        fprintf(stderr, "fanout_sse: response head too large\n");
                        finish(c, C_FAILED);
                        continue;
                    }
                    on_headers(c, t);
                } else if (c->hlen == HDR_MAX) {
                    finish(c, C_FAILED);
                }
                continue;
            }
            if (!body(c, rbuf, (size_t)r, t)) finish(c, C_DONE);
        }
        open_next();
        if (t >= deadline) {
            timed_out = true;
            break;
        }
        if (t_first_custom && t - t_last_byte > (uint64_t)(idle_s * 1e9)) {
            idle_out = true;
            break;
        }
    }
    uint64_t t_end = now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    int still_open = 0, complete = 0;
    uint64_t cmin = UINT64_MAX, cmax = 0;
    for (int i = 0; i < nsubs; i++) {
        struct conn *c = &conns[i];
        if (c->fd >= 0) {
            still_open++;
            close(c->fd);
        }
        if (c->status == 200) {
            cmin = c->custom < cmin ? c->custom : cmin;
            cmax = c->custom > cmax ? c->custom : cmax;
            if (expect && (long long)c->custom == expect) complete++;
        }
    }
    if (cmin == UINT64_MAX) cmin = 0;
    qsort(lags, nlags, sizeof *lags, cmp_u64);
    double span = t_last_custom > t_first_custom ? (double)(t_last_custom - t_first_custom) / 1e9 : 0;
    double cpu =
        (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
        (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    long long distinct = 0;
    for (long long i = 0; i < nindex; i++)
        distinct += first_ns[i] != 0;
    printf(
        "{\"subscribers\":%d,\"ok_200\":%d,\"failed\":%d,\"ended\":%d,\"still_open\":%d,\"timed_out\":%s,"
        "\"idle_out\":%s,\"expect_each\":%lld,\"complete_subscribers\":%d,\"custom_min\":%" PRIu64
        ",\"custom_max\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"distinct_events\":%lld,"
        "\"bad_index\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"deliveries_per_read\":%.2f,"
        "\"subscribed_s\":%.4f,\"first_event_s\":%.4f,\"last_event_s\":%.4f,\"events_before_all_subscribed\":%s,"
        "\"span_s\":%.4f,\"deliveries_per_s\":%.0f,\"lag_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p999\":%.3f,\"max\":%.3f},\"elapsed_s\":%.3f,\"client_cpu_s\":%.3f}\n",
        nsubs, nheaders, nfailed, nended, still_open, timed_out ? "true" : "false", idle_out ? "true" : "false", expect,
        complete, cmin, cmax, custom_total, frames_total, distinct, bad_index, bytes_total, reads,
        reads ? (double)custom_total / (double)reads : 0, t_all_headers ? (double)(t_all_headers - t_start) / 1e9 : -1,
        t_first_custom ? (double)(t_first_custom - t_start) / 1e9 : -1,
        t_last_custom ? (double)(t_last_custom - t_start) / 1e9 : -1, t_first_any_custom_before_all ? "true" : "false",
        span, span > 0 ? (double)custom_total / span : 0, pct(50), pct(90), pct(99), pct(99.9),
        nlags ? (double)lags[nlags - 1] / 1e6 : -1, (double)(t_end - t_start) / 1e9, cpu);
    return nheaders == nsubs ? 0 : 1;
}
