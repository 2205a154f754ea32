#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"

#define LOG_MAX_PENDING (1u << 20)

int ag_log_level = AG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

struct log_thread {
    int shard; /* -1: not a shard thread */
    struct ag_buf pending;
    struct ag_buf inflight; /* bytes handed to the shard's write, kept alive until done */
    size_t inflight_off;
    uint64_t dropped;
};

static _Thread_local struct log_thread tl = {.shard = -1};

int ag_log_parse_level(const char *s)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(level_names); i++)
        if (!strcmp(s, level_names[i]))
            return (int)i;
    return -1;
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(2, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void ag_log(int lvl, const char *fmt, ...)
{
    if (!ag_log_enabled(lvl))
        return;
    char ts[32];
    ag_clock_iso8601(ag_clock_real_us(), ts);
    struct ag_buf local = {0};
    struct ag_buf *b = tl.shard >= 0 ? &tl.pending : &local;
    if (b->len > LOG_MAX_PENDING) {
        tl.dropped++;
        return;
    }
    if (tl.dropped) {
        ag_buf_printf(b, "ts=%s level=warn shard=%d msg=\"log lines dropped\" count=%llu\n", ts, tl.shard,
                      (unsigned long long)tl.dropped);
        tl.dropped = 0;
    }
    if (tl.shard >= 0)
        ag_buf_printf(b, "ts=%s level=%s shard=%d ", ts, level_names[lvl], tl.shard);
    else
        ag_buf_printf(b, "ts=%s level=%s ", ts, level_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    ag_buf_vprintf(b, fmt, ap);
    va_end(ap);
    ag_buf_append(b, "\n", 1);
    if (b == &local) {
        write_all(local.base, local.len);
        ag_buf_free(&local);
    }
}

const char *ag_log_clean(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    if (!n)
        return dst;
    for (; src && *src && i + 1 < n; src++) {
        char ch = *src;
        if (ch == '\n' || ch == '\t' || ch == '\r')
            ch = ' ';
        else if (ch == '"')
            ch = '\'';
        if (ch == ' ' && i && dst[i - 1] == ' ')
            continue;
        dst[i++] = ch;
    }
    while (i && dst[i - 1] == ' ')
        i--;
    dst[i] = 0;
    return dst;
}

void ag_log__thread_init(int shard)
{
    tl.shard = shard;
}

struct ag_iov ag_log__take(void)
{
    struct ag_iov v = {0};
    if (tl.inflight.len) /* one write in flight at a time */
        return v;
    if (!tl.pending.len)
        return v;
    struct ag_buf t = tl.inflight;
    tl.inflight = tl.pending;
    tl.pending = t;
    tl.pending.len = 0;
    tl.inflight_off = 0;
    v.base = tl.inflight.base;
    v.len = tl.inflight.len;
    return v;
}

void ag_log__done(int res)
{
    if (res > 0 && tl.inflight_off + (size_t)res < tl.inflight.len) {
        /* A short write to stderr: finish it synchronously rather than lose the tail. */
        write_all(tl.inflight.base + tl.inflight_off + res, tl.inflight.len - tl.inflight_off - (size_t)res);
    }
    tl.inflight.len = 0;
}

void ag_log__thread_exit(void)
{
    if (tl.pending.len)
        write_all(tl.pending.base, tl.pending.len);
    ag_buf_free(&tl.pending);
    ag_buf_free(&tl.inflight);
    tl.shard = -1;
}
