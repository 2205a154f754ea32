/* The thread event log of protocol v2: every event of every run on a thread, numbered by a per-thread
 * seq that only grows, kept in Postgres (thread_events, bounded by events.retain_per_thread) and
 * served to the thread's v2 streams (POST /threads/{id}/stream/events), live and from any `since`.
 *
 * Everything here runs on the thread's owner shard. A thread's log entry holds the last seq handed
 * out, the most recent events framed once as SSE (shared by every stream), the events not written yet
 * and the open streams.
 *
 * Seq never repeats, even after a crash: threads.last_seq holds at least every seq handed out.
 * RUN_CREATE reserves a block of AG_TLOG_RESERVE seqs ahead (ag_tlog_reservation / ag_tlog_reserved),
 * each write extends the reservation, and an event past the reservation is held back from the
 * streams until a reservation covering it is committed. A process that stops leaves the unused part
 * of its reservation as a gap; clients only rely on seq growing. */
#ifndef AG_PROTOCOL_AGENT_TLOG_H
#define AG_PROTOCOL_AGENT_TLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct ag_req;
struct ag_shard;

/* Seqs reserved ahead of the last one handed out. */
#define AG_TLOG_RESERVE 1000
#define AG_TLOG_RESERVE_TEXT "1000"

/* v2 channels (bit flags). */
enum {
    AG_TCH_VALUES = 1u << 0,
    AG_TCH_UPDATES = 1u << 1,
    AG_TCH_MESSAGES = 1u << 2,
    AG_TCH_TOOLS = 1u << 3,
    AG_TCH_LIFECYCLE = 1u << 4,
    AG_TCH_INPUT = 1u << 5, /* input.requested */
    AG_TCH_CHECKPOINTS = 1u << 6,
    AG_TCH_TASKS = 1u << 7,
    AG_TCH_CUSTOM = 1u << 8, /* every custom event, named or not */
};

/* What one stream wants. */
struct ag_tlog_filter {
    unsigned channels;    /* AG_TCH_* */
    json_t *custom_names; /* owned array of names from `custom:<name>` channels, or NULL */
    json_t *namespaces;   /* owned array of namespace prefixes (arrays of strings), or NULL: all */
    int depth;            /* events deeper than this are dropped; -1: any depth */
};

void ag_tlog_filter_clear(struct ag_tlog_filter *f);

/* The channel bit of a channel name ("custom:x" is AG_TCH_CUSTOM with a name); 0 for an unknown one. */
unsigned ag_tlog_channel_bit(const char *name);

/* Per-shard set-up and tear-down. */
void ag_tlog_shard_init(struct ag_shard *s, const struct ag_config *cfg);
void ag_tlog_shard_exit(struct ag_shard *s);
/* Drain: ends every stream; true when no write is pending any more. */
bool ag_tlog_shard_idle(struct ag_shard *s);

/* RUN_CREATE's and RUN_RECORD's reservation parameter for thread_id: the last seq handed out plus
 * AG_TLOG_RESERVE as text in buf, or NULL when this shard does not know the thread's seq. */
const char *ag_tlog_reservation(const char *thread_id, char buf[24]);
/* RUN_CREATE committed: the thread's last_seq is now last_seq (a reservation of AG_TLOG_RESERVE). */
void ag_tlog_reserved(const char *thread_id, uint64_t last_seq);
/* The thread's stored last_seq was read (nothing reserved): when this shard does not know the
 * thread's seq yet, it goes on from there, every new event held back from the streams until a write
 * that covers it commits (the event write itself, or RUN_RECORD with ag_tlog_reservation). */
void ag_tlog_stored(const char *thread_id, uint64_t last_seq);

/* A run on the thread started / ended (a stream does not close for idleness while one is active). */
void ag_tlog_run_begin(const char *thread_id);
void ag_tlog_run_end(const char *thread_id);

/* Appends one event: the next seq, written to Postgres within the turn, sent to every stream whose
 * filter takes it. method is the envelope's ("lifecycle", "values", "updates", "messages",
 * "input.requested", "custom", "checkpoints", "tasks"); ns the namespace (array of strings, NULL:
 * root); data the payload (borrowed). The thread's seq must be known (after ag_tlog_reserved).
 * hold: the streams get neither it nor any later event until ag_tlog_release (a run's end waits for
 * its outcome to be stored, so a client told "interrupted" finds the thread interrupted). Returns
 * the seq (0 when the event was dropped). */
uint64_t ag_tlog_append(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                        const json_t *data, bool hold);
/* Lets the held event seq (and what waits behind it) go to the streams. */
void ag_tlog_release(const char *thread_id, uint64_t seq);

/* The last seq handed out on this shard for the thread, or 0 when not known here. */
uint64_t ag_tlog_last_seq(const char *thread_id);

/* Serves r (on the thread's owner shard) as a v2 event stream: 404 for someone else's thread, else
 * SSE of the events after `since` that pass f, then live ones, until the client leaves, the thread
 * is deleted or it has been idle events.idle_close_ms with no run on it. A thread that does not
 * exist yet is streamed too (the protocol lets clients open the stream before run.start creates
 * it). Takes f's references. Returns AG_AGAIN, or AG_OK when it answered at once (503: the database
 * queue is full or there is no database). */
int ag_tlog_stream(struct ag_req *r, const char *thread_id, struct ag_tlog_filter *f, uint64_t since);

/* The thread is being deleted: its streams end, its unwritten events are dropped. */
void ag_tlog_thread_deleted(const char *thread_id);

#endif
