/* The HTTP side of the thread event log (runtime/tlog.h): POST /threads/{thread_id}/stream/events
 * served as a sink of the log (SSE of protocol v2 event envelopes, `id:` = seq), and the codec the log
 * encodes its events with (one SSE frame per event, in a body piece shared by every stream). The log
 * says what happened (enum ag_tlog_end); the HTTP statuses are chosen here. */
#ifndef AG_PROTOCOL_AGENT_V2_STREAM_H
#define AG_PROTOCOL_AGENT_V2_STREAM_H

#include <stdint.h>

struct ag_req;
struct ag_tlog_filter;

/* For ag_tlog_shard_init: an event as the SSE frame of its envelope
 * (`event: <method>`, `data: {"type":"event","event_id","seq","method","params":{...}}`, `id: <seq>`),
 * built as an HTTP body piece (ag_http_piece_new) so every stream queues the same bytes. */
extern const struct ag_tlog_codec ag_v2_stream_codec;

/* Serves r (on the thread's owner shard, from its handler) as the SSE stream of thread_id's log as
 * seen by owner (a string; copied): the events after since that pass f, then live ones, until the
 * client leaves, the thread is deleted or the log ends it for idleness (ag_tlog_subscribe). Takes f's
 * references. Returns AG_AGAIN, or AG_OK when it answered at once (503: the database queue is full or
 * there is no database). Answered later without a stream: 404 when the thread is another owner's,
 * the failed first read's answer (ag_dbq_fail), 503 when the shard stops before the stream began. */
int ag_v2_stream_open(struct ag_req *r, const char *thread_id, const char *owner, struct ag_tlog_filter *f,
                      uint64_t since);

#endif
