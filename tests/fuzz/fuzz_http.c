/* libFuzzer target: arbitrary bytes through the whole HTTP path of a real in-process server (one
 * shard, real io_uring, real loopback socket). Each input is sent on a fresh connection in two writes
 * (the first byte picks the split) and the write side is shut; the server must answer with
 * well-formed responses or nothing, and close the connection in bounded time. A crash, a sanitizer
 * report, or a connection left hanging fails the run. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/config.h"
#include "server/server.h"

static struct ag_config cfg;
static struct ag_server srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    char *args[] = {"fuzz", NULL};
    unsetenv("PORT");
    unsetenv("AGENTD_SHARDS");
    if (ag_config_load(&cfg, 1, args, err, sizeof err) != AG_CONFIG_RUN)
        abort();
    cfg.port = 0;
    cfg.shards = 1;
    cfg.log_level = AG_LOG_ERROR;
    cfg.http.max_header_bytes = 4096;
    cfg.http.max_body_bytes = 65536;
    cfg.http.header_timeout_ms = 3000;
    cfg.http.idle_timeout_ms = 3000;
    ag_log_level = cfg.log_level;
    if (ag_server_start(&srv, &cfg) != 0)
        abort();
    return 0;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the server may close early (400, 413): fine */
        p += w;
        n -= (size_t)w;
    }
}

/* A connect interrupted by a signal (libFuzzer's timer alarm) goes on in the background: wait for
 * it and read its outcome. True when it succeeded. */
static bool connect_finished(int fd)
{
    if (errno != EINTR)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    while ((n = poll(&p, 1, 5000)) < 0 && errno == EINTR)
        ;
    int err = 0;
    socklen_t len = sizeof err;
    if (n != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return false;
    errno = err;
    return err == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && !connect_finished(fd)) {
        fprintf(stderr, "fuzz_http: connect: %s\n", strerror(errno));
        abort();
    }
    struct timeval tv = {.tv_sec = 8};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t split = size ? data[0] % size : 0;
    if (size) {
        write_all(fd, data + 1, split ? split - 1 : 0);
        write_all(fd, data + (split ? split : 1), size - (split ? split : 1));
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    size_t total = 0;
    char head[9] = {0};
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                break;
            __builtin_trap(); /* EAGAIN: the server left the connection hanging */
        }
        if (total < 9)
            memcpy(head + total, buf, (size_t)r < 9 - total ? (size_t)r : 9 - total);
        total += (size_t)r;
    }
    if (total && memcmp(head, "HTTP/1.1 ", total < 9 ? total : 9) != 0)
        __builtin_trap(); /* something other than an HTTP response came back */
    /* We sent the first FIN, so this side would sit in TIME_WAIT: tens of thousands of inputs would
     * use up the ephemeral ports. The exchange is over; close with a reset instead. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    return 0;
}
