#include "protocol/agent/v2_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/common.h"
#include "core/obuf.h"
#include "core/shard.h"
#include "protocol/dbq.h"
#include "protocol/http.h"
#include "runtime/run.h"
#include "runtime/tlog.h"

#define SSE_HEARTBEAT ": heartbeat\r\n\r\n"

/* --- the codec --- */

static struct ag_obuf *frame_event(uint64_t seq, const char *method, const char *ns, const char *data, size_t dlen,
                                   uint64_t ts_ms)
{
    char head[400];
    int hl = snprintf(head, sizeof head,
                      "event: %s\ndata: {\"type\":\"event\",\"event_id\":\"%" PRIu64 "\",\"seq\":%" PRIu64
                      ",\"method\":\"%s\",\"params\":{\"namespace\":",
                      method, seq, seq, method);
    char mid[64];
    int ml = snprintf(mid, sizeof mid, ",\"timestamp\":%" PRIu64 ",\"data\":", ts_ms);
    char tail[48];
    int tl = snprintf(tail, sizeof tail, "}}\nid: %" PRIu64 "\n\n", seq);
    size_t nl = strlen(ns);
    struct ag_obuf *b = ag_http_piece_new((size_t)hl + nl + (size_t)ml + dlen + (size_t)tl);
    char *p = ag_http_piece_data(b);
    memcpy(p, head, (size_t)hl);
    p += hl;
    memcpy(p, ns, nl);
    p += nl;
    memcpy(p, mid, (size_t)ml);
    p += ml;
    memcpy(p, data, dlen);
    p += dlen;
    memcpy(p, tail, (size_t)tl);
    return b;
}

const struct ag_tlog_codec ag_v2_stream_codec = {.event = frame_event};

/* --- the sink: ud is the request --- */

static void on_start(void *ud, uint64_t since, uint64_t trimmed)
{
    struct ag_req *r = ud;
    ag_http_add_header(r, "cache-control", "no-cache");
    ag_http_add_header(r, "x-accel-buffering", "no");
    ag_http_stream_start(r, 200, "text/event-stream", SSE_HEARTBEAT, ag_run_heartbeat_ms());
    if (!trimmed)
        return;
    /* Not a logged event (it has no seq): written to this stream only. */
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "event: lifecycle\ndata: {\"type\":\"event\",\"event_id\":\"truncated:%" PRIu64
                     "\",\"method\":\"lifecycle\",\"params\":{\"namespace\":[],\"timestamp\":%" PRIu64
                     ",\"data\":{\"event\":\"truncated\",\"since\":%" PRIu64 ",\"oldest_seq\":%" PRIu64
                     ",\"message\":\"events up to seq %" PRIu64
                     " are no longer retained; the stream starts at the oldest one kept\"}}}\n\n",
                     trimmed, ag_us_to_ms(ag_clock_real_us()), since, trimmed + 1, trimmed);
    ag_http_stream_write(r, buf, (size_t)n);
}

static void on_event(void *ud, const struct ag_tlog_event *e)
{
    struct ag_req *r = ud;
    if (!r->gone)
        ag_http_stream_write_piece(r, e->frame);
}

static void on_end(void *ud, enum ag_tlog_end why, const char *thread_id, const struct ag_pg_query *q)
{
    struct ag_req *r = ud;
    r->on_gone = NULL;
    if (ag_http_stream_started(r)) {
        ag_http_stream_end(r); /* whatever the reason: a client resumes with since */
        return;
    }
    if (why == AG_TLOG_END_NOT_FOUND) {
        char msg[80];
        snprintf(msg, sizeof msg, "Thread '%s' not found", thread_id);
        ag_http_error(r, 404, msg);
    } else if (why == AG_TLOG_END_DB_ERROR && q) {
        ag_dbq_fail(r, q);
    } else if (!r->gone) {
        /* Ended while its first read was in flight: the shard is stopping (or the thread went). */
        ag_http_add_header(r, "retry-after", "1");
        ag_http_error(r, 503, "the server is shutting down; retry");
    }
    ag_http_done(r);
}

static const struct ag_tlog_sink_ops sink_ops = {
    .on_start = on_start,
    .on_event = on_event,
    .on_end = on_end,
};

static void on_gone(struct ag_req *r)
{
    ag_tlog_unsubscribe(r->stream_ud);
}

int ag_v2_stream_open(struct ag_req *r, const char *thread_id, const char *owner, struct ag_tlog_filter *f,
                      uint64_t since)
{
    struct ag_tlog_sink k = {.ops = &sink_ops, .ud = r};
    struct ag_tlog_sub *x;
    int rc = ag_tlog_subscribe(thread_id, owner, f, since, &k, &x);
    if (rc != 0) {
        ag_dbq_refused(r, rc);
        return AG_OK;
    }
    r->stream_ud = x;
    r->on_gone = on_gone;
    return AG_AGAIN;
}
