/* Unit tests of agentload's parsers and histogram (ctest perf/agentload-unit): HTTP responses with
 * Content-Length, chunked (with extensions and trailers) and read-until-close bodies, fed whole and
 * split at every byte; SSE frames with LF, CRLF and CR line ends, several data lines, comments;
 * JSON scanning; histogram percentiles; summing a counter of Prometheus text. */
#include <stdlib.h>
#include <string.h>

#include "../../tests/unit/check.h"
#include "hist.h"
#include "jscan.h"
#include "metrics.h"
#include "resp.h"
#include "sse.h"

struct got {
    int heads, dones, status;
    char body[4096];
    size_t blen;
};

static void g_head(void *ud, struct al_resp *r)
{
    struct got *g = ud;
    g->heads++;
    g->status = r->status;
}

static void g_body(void *ud, const char *p, size_t n)
{
    struct got *g = ud;
    memcpy(g->body + g->blen, p, n);
    g->blen += n;
}

static void g_done(void *ud, struct al_resp *r)
{
    ((struct got *)ud)->dones++;
}

static const struct al_resp_cb cb = {g_head, g_body, g_done};

/* Feeds msg in two pieces split at `cut`; returns the bytes consumed in all (-1 on error). */
static long feed_split(struct al_resp *r, struct got *g, const char *msg, size_t len, size_t cut)
{
    memset(g, 0, sizeof *g);
    al_resp_init(r);
    long a = al_resp_feed(r, msg, cut, &cb, g);
    if (a < 0) return -1;
    if (r->state == AL_RESP_DONE) return a;
    long b = al_resp_feed(r, msg + cut, len - cut, &cb, g);
    return b < 0 ? -1 : a + b;
}

static void test_resp(void)
{
    static struct al_resp r;
    struct got g;
    const char *cl = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
    const char *ch =
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0000006\r\n world\r\n"
        "0\r\nX-Trailer: 1\r\n\r\n";
    const char *lf = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n";
    for (size_t cut = 0; cut <= strlen(cl); cut++) {
        CHECK(feed_split(&r, &g, cl, strlen(cl), cut) == (long)strlen(cl));
        CHECK(g.status == 200 && g.heads == 1 && g.dones == 1 && g.blen == 11 && !memcmp(g.body, "{\"ok\":true}", 11));
    }
    for (size_t cut = 0; cut <= strlen(ch); cut++) {
        CHECK(feed_split(&r, &g, ch, strlen(ch), cut) == (long)strlen(ch));
        CHECK(g.status == 201 && g.dones == 1 && g.blen == 11 && !memcmp(g.body, "hello world", 11));
    }
    for (size_t cut = 0; cut <= strlen(lf); cut++) {
        CHECK(feed_split(&r, &g, lf, strlen(lf), cut) == (long)strlen(lf));
        CHECK(g.dones == 1 && g.blen == 3 && !memcmp(g.body, "abc", 3));
    }
    /* A body delimited by the connection's end. */
    const char *eof = "HTTP/1.0 200 OK\r\n\r\nuntil close";
    CHECK(feed_split(&r, &g, eof, strlen(eof), 5) == (long)strlen(eof));
    CHECK(g.dones == 0 && r.close && r.until_eof);
    CHECK(al_resp_eof(&r, &cb, &g) == 0 && g.dones == 1 && g.blen == 11);
    /* No body for 204; bytes after a complete message are left over. */
    const char *nb = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1";
    CHECK(feed_split(&r, &g, nb, strlen(nb), strlen(nb)) == (long)strlen(nb) - 8);
    CHECK(g.dones == 1 && g.status == 204);
    /* Connection: close is remembered. */
    const char *cc = "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    CHECK(feed_split(&r, &g, cc, strlen(cc), 10) == (long)strlen(cc) && r.close && g.status == 503);
    /* Malformed: bad status line, bad chunk size, truncated body. */
    const char *bad1 = "HTTX/1.1 200 OK\r\n\r\n";
    CHECK(feed_split(&r, &g, bad1, strlen(bad1), 3) < 0 && r.state == AL_RESP_ERROR);
    const char *bad2 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    CHECK(feed_split(&r, &g, bad2, strlen(bad2), 20) < 0);
    const char *trunc = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    CHECK(feed_split(&r, &g, trunc, strlen(trunc), 7) == (long)strlen(trunc));
    CHECK(al_resp_eof(&r, &cb, &g) < 0 && !strcmp(r.error, "truncated"));
    al_resp_init(&r);
    CHECK(al_resp_eof(&r, &cb, &g) < 0 && !strcmp(r.error, "closed"));
}

struct frames {
    int n;
    char ev[8][32], data[8][128], id[8][32];
};

static void on_frame(void *ud, const struct al_sse_frame *f)
{
    struct frames *fr = ud;
    if (fr->n == 8) return;
    snprintf(fr->ev[fr->n], 32, "%.*s", (int)f->event_len, f->event);
    snprintf(fr->data[fr->n], 128, "%.*s", (int)f->data_len, f->data);
    snprintf(fr->id[fr->n], 32, "%.*s", (int)f->id_len, f->id);
    fr->n++;
}

static void test_sse(void)
{
    const char *text = "event: metadata\ndata: {\"run_id\":\"r\"}\nid: 0\n\n: heartbeat\r\n\r\n"
                       "event: custom\r\ndata: {\"index\":1}\r\nid: 1\r\n\r\n"
                       "data: a\rdata:b\r\r"
                       "event: end\ndata: {\"status\":\"success\"}\n\n";
    size_t len = strlen(text);
    for (size_t step = 1; step <= len; step++) {
        struct al_sse s;
        struct frames fr = {0};
        al_sse_init(&s);
        for (size_t i = 0; i < len; i += step)
            CHECK(al_sse_feed(&s, text + i, i + step <= len ? step : len - i, on_frame, &fr) == 0);
        CHECK(fr.n == 4);
        CHECK_STREQ(fr.ev[0], "metadata");
        CHECK_STREQ(fr.data[0], "{\"run_id\":\"r\"}");
        CHECK_STREQ(fr.id[0], "0");
        CHECK_STREQ(fr.ev[1], "custom");
        CHECK_STREQ(fr.data[1], "{\"index\":1}");
        CHECK_STREQ(fr.id[1], "1");
        CHECK_STREQ(fr.ev[2], "message");
        CHECK_STREQ(fr.data[2], "a\nb");
        CHECK_STREQ(fr.id[2], "");
        CHECK_STREQ(fr.ev[3], "end");
        CHECK(s.comments == 1);
        al_sse_free(&s);
    }
}

static void test_jscan(void)
{
    const char *j = "{\"thread_id\" : \"abc-1\", \"params\":{\"timestamp\":1795422659982,\"data\":{\"index\":42}}}";
    char out[40];
    double v;
    CHECK(al_jscan_str(j, strlen(j), "thread_id", out, sizeof out) && !strcmp(out, "abc-1"));
    CHECK(al_jscan_num(j, strlen(j), "index", &v) && v == 42);
    CHECK(al_jscan_num(j, strlen(j), "timestamp", &v) && v == 1795422659982.0);
    CHECK(!al_jscan_str(j, strlen(j), "missing", out, sizeof out));
    CHECK(!al_jscan_num(j, strlen(j), "thread_id", &v));
    CHECK(al_jscan_has(j, strlen(j), "\"data\":{"));
}

static void test_hist(void)
{
    static struct al_hist h;
    al_hist_reset(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        al_hist_record(&h, v * 1000); /* 1 µs .. 100 ms, uniform */
    double p50 = (double)al_hist_percentile(&h, 50), p99 = (double)al_hist_percentile(&h, 99);
    CHECK(p50 > 50e6 * 0.98 && p50 < 50e6 * 1.02);
    CHECK(p99 > 99e6 * 0.98 && p99 < 99e6 * 1.02);
    CHECK(al_hist_percentile(&h, 100) == 100000000ull && h.min == 1000);
    CHECK(h.count == 100000);
    static struct al_hist one;
    al_hist_reset(&one);
    al_hist_record(&one, 5);
    al_hist_record(&one, UINT64_MAX / 2);
    /* Within the 1/64 resolution of its bucket, and the exact max at 100. */
    CHECK(al_hist_percentile(&one, 50) == 5);
    CHECK(al_hist_percentile(&one, 99.9) >= UINT64_MAX / 2 - UINT64_MAX / 128);
    CHECK(al_hist_percentile(&one, 100) == UINT64_MAX / 2);
}

static void test_metrics(void)
{
    const char *t = "# HELP agentd_allocations_total Heap allocations\n"
                    "# TYPE agentd_allocations_total counter\n"
                    "agentd_allocations_total{shard=\"0\"} 1500\n"
                    "agentd_allocations_total_other 7\n"
                    "agentd_allocations_total{shard=\"1\"} 250\n"
                    "agentd_allocations 9\n"
                    "agentd_allocations_total{shard=\"2\"} notanumber\n"
                    "agentd_allocations_total 3";
    double v = 0;
    CHECK(al_metrics_parse_sum(t, strlen(t), "agentd_allocations_total", &v));
    CHECK(v == 1753);
    CHECK(!al_metrics_parse_sum(t, strlen(t), "agentd_missing_total", &v) && v == 1753);
    CHECK(!al_metrics_parse_sum("", 0, "agentd_allocations_total", &v));
    /* Cut anywhere, it never reads past the end and never finds more than the whole text has. */
    for (size_t n = 0; n <= strlen(t); n++) {
        double w = -1;
        if (al_metrics_parse_sum(t, n, "agentd_allocations_total", &w)) CHECK(w >= 0 && w <= 1753);
    }
}

int main(void)
{
    test_resp();
    test_sse();
    test_jscan();
    test_hist();
    test_metrics();
    return CHECK_DONE();
}
