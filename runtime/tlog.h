/* The thread event log of protocol v2: every event of every run on a thread, numbered by a per-thread
 * seq that only grows, kept in Postgres (thread_events, bounded by events.retain_per_thread) and
 * served to the thread's readers (sinks: POST /threads/{id}/stream/events is one), live and from any
 * `since`.
 *
 * Everything here runs on the thread's owner shard. A thread's log entry holds the last seq handed
 * out, the most recent events encoded once (by the codec given at shard init; the buffer is shared by
 * every sink), the events not written yet and the open subscriptions. The log never frames anything
 * itself and never answers a request: it tells sinks typed outcomes (enum ag_tlog_end).
 *
 * Seq never repeats, even after a crash: threads.last_seq holds at least every seq handed out.
 * RUN_CREATE reserves a block of AG_TLOG_RESERVE seqs ahead (ag_tlog_reservation / ag_tlog_reserved),
 * each write extends the reservation, and an event past the reservation is held back from the
 * sinks until a reservation covering it is committed. A process that stops leaves the unused part
 * of its reservation as a gap; clients only rely on seq growing. */
#ifndef AG_RUNTIME_TLOG_H
#define AG_RUNTIME_TLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ag_obuf;
struct ag_pg_args;
struct ag_pg_query;
struct ag_shard;
struct ag_tlog_sub;

/* What a shard's v2 logs may keep (read-only while the shards run). */
struct ag_tlog_limits {
    uint32_t retain_per_thread;      /* events kept in Postgres per thread; older ones are deleted */
    uint32_t memory_per_thread;      /* recent events kept in memory per thread for quick replays */
    uint64_t memory_bytes_per_shard; /* what every log of a shard may hold in memory; beyond, events
                                      * already written and delivered leave it (replays read Postgres) */
    uint32_t idle_keep_ms;           /* how long an idle thread's log entry (its seq) stays in memory */
    uint32_t idle_close_ms;          /* a v2 stream with nothing to send and no run on its thread ends */
};
#define AG_TLOG_LIMITS_DEFAULT                                                                                         \
    {.retain_per_thread = 10000,                                                                                       \
     .memory_per_thread = 1024,                                                                                        \
     .memory_bytes_per_shard = 32u << 20,                                                                              \
     .idle_keep_ms = 30000,                                                                                            \
     .idle_close_ms = 30000}

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

/* What one subscription wants. */
struct ag_tlog_filter {
    unsigned channels;    /* AG_TCH_* */
    json_t *custom_names; /* owned array of names from `custom:<name>` channels, or NULL */
    json_t *namespaces;   /* owned array of namespace prefixes (arrays of strings), or NULL: all */
    int depth;            /* events deeper than this are dropped; -1: any depth */
};

void ag_tlog_filter_clear(struct ag_tlog_filter *f);

/* The channel bit of a channel name ("custom:x" is AG_TCH_CUSTOM with a name); 0 for an unknown one. */
unsigned ag_tlog_channel_bit(const char *name);

/* How events are encoded for the sinks: given by the layer that serves them, at shard init. */
struct ag_tlog_codec {
    /* One event: seq, its envelope's method, ns the namespace as JSON text ("[]" at the root),
     * data[0..dlen) the payload as JSON text, ts_ms its Unix time in milliseconds. Returns a buffer
     * with one reference, the caller's (the log keeps it while the event is in memory and hands it to
     * every sink that takes the event). */
    struct ag_obuf *(*event)(uint64_t seq, const char *method, const char *ns, const char *data, size_t dlen,
                             uint64_t ts_ms);
};

/* Per-shard set-up (lim: borrowed for the shard's life; codec: a static table, used by every log of the
 * shard) and tear-down. */
void ag_tlog_shard_init(struct ag_shard *s, const struct ag_tlog_limits *lim, const struct ag_tlog_codec *codec);
void ag_tlog_shard_exit(struct ag_shard *s);
/* Drain: ends every subscription (AG_TLOG_END_SHUTDOWN); true when no write or read is pending any
 * more. */
bool ag_tlog_shard_idle(struct ag_shard *s);

/* RUN_CREATE's and RUN_RECORD's reservation parameter for thread_id: the last seq handed out plus
 * AG_TLOG_RESERVE as text in buf, or NULL when this shard does not know the thread's seq. */
const char *ag_tlog_reservation(const char *thread_id, char buf[24]);
/* RUN_CREATE committed: the thread's last_seq is now last_seq (a reservation of AG_TLOG_RESERVE). */
void ag_tlog_reserved(const char *thread_id, uint64_t last_seq);
/* The thread's stored last_seq was read (nothing reserved): when this shard does not know the
 * thread's seq yet, it goes on from there, every new event held back from the sinks until a write
 * that covers it commits (the event write itself, or RUN_RECORD with ag_tlog_reservation). */
void ag_tlog_stored(const char *thread_id, uint64_t last_seq);

/* A run on the thread started / ended (a subscription does not end for idleness while one is active). */
void ag_tlog_run_begin(const char *thread_id);
void ag_tlog_run_end(const char *thread_id);

/* Appends one event: the next seq, encoded once, written to Postgres within the turn, given to every
 * sink whose filter takes it. method is the envelope's ("lifecycle", "values", "updates", "messages",
 * "input.requested", "custom", "checkpoints", "tasks"); ns the namespace (array of strings, NULL:
 * root); data the payload (borrowed). The thread's seq must be known (after ag_tlog_reserved).
 * hold: the sinks get neither it nor any later event until ag_tlog_release (a run's end waits for
 * its outcome to be stored, so a client told "interrupted" finds the thread interrupted). Returns
 * the seq (0 when the event was dropped). stored: what Postgres keeps of data instead (NULL: data
 * itself), where a state the checkpoints hold is named by its channel versions (AG_TLOG_STATE_REF). */
uint64_t ag_tlog_append(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                        const json_t *data, const json_t *stored, bool hold);

/* The same with data already JSON text (data[0..dlen), stored as it is); ns as JSON for the
 * subscriptions' filters and as text (ns_text NULL: the root, "[]"); custom: a custom event's data.name
 * (NULL: none). */
uint64_t ag_tlog_append_text(const char *thread_id, const char *run_id, const char *method, const json_t *ns,
                             const char *ns_text, const char *data, size_t dlen, const char *custom, bool hold);

/* What ag_tlog_take hands over, as statement parameters in the caller's arena: RUN_RECORD's. */
struct ag_tlog_taken {
    const char *first_seq, *last_seq; /* of the batch */
    const char *batch;                /* JSON array of [seq, run id, method, namespace, data, ts ms] */
    const char *trim_to;              /* batches wholly at or below this seq go (retention); NULL: none */
};
/* Hands the thread's events not written yet to a statement of the caller's (a direct run's RUN_RECORD
 * carries them: one statement instead of two). Returns false, nothing taken, when there is nothing to
 * write or a write of the thread's events is in flight. Until ag_tlog_taken_done the log writes nothing
 * of the thread itself; events appended meanwhile wait for the next write. */
bool ag_tlog_take(const char *thread_id, struct ag_pg_args *a, struct ag_tlog_taken *out);
/* How the caller's write of taken events ended. */
enum ag_tlog_taken_end {
    AG_TLOG_TAKEN_WRITTEN, /* committed */
    AG_TLOG_TAKEN_LOST,    /* failed for good (an SQL error, the shard stopping): not written again */
    AG_TLOG_TAKEN_RETRY,   /* not written: the log writes them itself */
};
void ag_tlog_taken_done(const char *thread_id, enum ag_tlog_taken_end how);

/* While a direct run may still carry the thread's events in its RUN_RECORD (ag_tlog_take), the log
 * writes none of them itself: ag_tlog_hold_writes until ag_tlog_release_writes, one release per hold
 * (events wait in memory meanwhile; hold briefly). */
void ag_tlog_hold_writes(const char *thread_id);
void ag_tlog_release_writes(const char *thread_id);

/* The key of the object that stands for a state in a stored event: {"$agentd.state": {channel: version}}
 * (checkpoint_blobs versions). A replay from Postgres reads it back as {"$agentd.state": <the values>}
 * (agentd_event_batch, migration 010); values whose versions are gone (a keep_latest prune, a rollback)
 * read back as {}. */
#define AG_TLOG_STATE_REF "$agentd.state"
/* Lets the held event seq (and what waits behind it) go to the sinks. */
void ag_tlog_release(const char *thread_id, uint64_t seq);

/* The last seq handed out on this shard for the thread, or 0 when not known here. */
uint64_t ag_tlog_last_seq(const char *thread_id);

/* One event given to a sink: frame is the codec's encoding (borrowed: take a reference to keep it). */
struct ag_tlog_event {
    uint64_t seq;
    struct ag_obuf *frame;
};

/* Why a subscription ended. */
enum ag_tlog_end {
    AG_TLOG_END_LEFT,      /* the reader left (ag_tlog_unsubscribe) */
    AG_TLOG_END_IDLE,      /* no event for events.idle_close_ms and no run on the thread */
    AG_TLOG_END_DELETED,   /* the thread was deleted */
    AG_TLOG_END_SHUTDOWN,  /* the shard is stopping (ag_tlog_shard_idle) */
    AG_TLOG_END_NOT_FOUND, /* the thread is another owner's (found by a replay read) */
    AG_TLOG_END_DB_ERROR,  /* a replay read failed, or could not be queued after the first one (the
                            * reader resumes with since) */
};

/* A reader of the log. Every call comes on the thread's owner shard, in this order: on_start at most
 * once, then on_event for each event in seq order, then on_end exactly once; never after on_end. */
struct ag_tlog_sink_ops {
    /* The first replay page was read: the subscription is on. trimmed: when the reader asked for
     * events that are no longer retained (since < the last seq dropped), that seq, else 0; the events
     * go on from the oldest one kept. */
    void (*on_start)(void *ud, uint64_t since, uint64_t trimmed);
    /* One event after since that passes the filter: replayed from Postgres, then live. */
    void (*on_event)(void *ud, const struct ag_tlog_event *e);
    /* The subscription ended. Before on_start it was refused: why is AG_TLOG_END_NOT_FOUND, or
     * AG_TLOG_END_DB_ERROR with q the failed read (its status and error, valid during the call), or
     * any other reason after an end that came while the first read was in flight (that read is
     * waited for: on_end follows its completion). q is NULL otherwise. thread_id is the
     * subscription's. The log no longer refers to the subscription. */
    void (*on_end)(void *ud, enum ag_tlog_end why, const char *thread_id, const struct ag_pg_query *q);
};

/* A reader as the log sees it: its table and its own pointer. */
struct ag_tlog_sink {
    const struct ag_tlog_sink_ops *ops; /* a static table */
    void *ud;                           /* the reader's, passed to every call */
};

/* Subscribes k (copied) to thread_id's log, on the thread's owner shard, for the events after since
 * that pass f, then live ones, until the reader leaves, the thread is deleted or it has been idle
 * events.idle_close_ms with no run on it. owner (copied) is who may read the thread: another owner's
 * thread ends with AG_TLOG_END_NOT_FOUND; a thread that does not exist yet is read too (the protocol
 * lets clients subscribe before run.start creates it). Takes f's references either way. Returns 0
 * with *out set (k is called from then on, never from inside this call), or, when the first read
 * could not be queued (nothing is called): -EAGAIN, the database queue is full; -ENOTCONN, there is
 * no database. */
int ag_tlog_subscribe(const char *thread_id, const char *owner, struct ag_tlog_filter *f, uint64_t since,
                      const struct ag_tlog_sink *k, struct ag_tlog_sub **out);
/* The reader of x left: the subscription ends with AG_TLOG_END_LEFT (at once, or when its first read
 * is back). Not to be called after on_end. */
void ag_tlog_unsubscribe(struct ag_tlog_sub *x);

/* The thread is being deleted: its subscriptions end (AG_TLOG_END_DELETED), its unwritten events are
 * dropped. */
void ag_tlog_thread_deleted(const char *thread_id);

#endif
