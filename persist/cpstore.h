/* How a checkpoint is stored (persist/migrations/009_checkpoint_blobs.sql): not with its values, but
 * with the version of each channel ({channel: version}, the version being the id of the checkpoint that
 * wrote the value); a value is stored once, in checkpoint_blobs, when a checkpoint changes it, and a
 * value that extends the previous version's array (messages) stores only the items appended. What a run
 * writes thus does not grow with its thread's history.
 *
 * A checkpoint in the engine's shape (graph/engine.h AG_GEV_CHECKPOINT: checkpoint_id, values, next,
 * tasks, ...) is stamped, relative to the checkpoint it follows, into a shallow copy that also carries
 * "channel_versions", "blobs" ([[channel, base version or null, index of the first new item]] of the
 * channels it changed) and "bytes" (ag_cpstore_bytes). Stamped checkpoints are what a thread's runtime
 * keeps; the engine ignores those keys. A checkpoint read back from Postgres comes with its
 * channel_versions (and the size of its text as "bytes"), without blobs.
 *
 * Pure JSON functions: no I/O, no shared state. */
#ifndef AG_PERSIST_CPSTORE_H
#define AG_PERSIST_CPSTORE_H

#include <jansson.h>

#include "persist/pgargs.h"

/* A new reference: cp (borrowed, engine shape, not stamped) stamped relative to prev (borrowed, stamped;
 * NULL: the thread has no checkpoint, or none this process can build on). A channel whose value is
 * prev's keeps prev's version; one whose value is an array that starts with prev's items stores the
 * rest, based on prev's version; any other stores its whole value. cp having prev's checkpoint_id (a
 * checkpoint emitted again with its tasks' ends) keeps prev's blobs for the channels it did not change. */
json_t *ag_cpstore_stamp(const json_t *prev, const json_t *cp);

/* An estimate from above of what cp's values take encoded (its "bytes": set when it was stamped, or by
 * whoever parsed it; else encoded now). 0 for NULL. */
size_t ag_cpstore_bytes(const json_t *cp);

/* The checkpoints cps (a JSON array of stamped checkpoints, borrowed) as the statements that insert
 * checkpoints take them (AG_CPSTORE_SQL_* in persist/sql_state.def): each without its values, its blobs
 * as [channel, base, value] (value: the whole value, or the array of appended items), in a's arena. */
const char *ag_cpstore_param(struct ag_pg_args *a, const json_t *cps);

#endif
