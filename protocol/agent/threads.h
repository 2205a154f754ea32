/* Threads endpoints (LangGraph Platform API): create, list, get, patch, delete, search, count, copy,
 * prune, and the TTL sweeper. Thread ids are UUIDs (8-4-4-4-12 hex, any case, stored lowercase); a
 * malformed id in a path or body is a 422. Answers are built in SQL (persist/sql_threads.def).
 *
 * Routes under /threads/{thread_id} run on the thread's owner shard (AG_TROUTE). POST /threads with
 * no thread_id mints one owned by the accepting shard; with a client-chosen id owned by another shard
 * the request is forwarded there. Errors: 404 {"error":"not_found","message":"Thread '<id>' not
 * found",...}; 409 for a taken id; 422 with field paths for bad input (unknown fields included). */
#ifndef AG_PROTOCOL_AGENT_THREADS_H
#define AG_PROTOCOL_AGENT_THREADS_H

struct ag_req;
struct ag_shard;

/* POST /threads {thread_id?, metadata?, if_exists? "raise"|"do_nothing", ttl? minutes |
 * {ttl, strategy?}, supersteps?} → 200 Thread. A taken id answers 409 (raise) or the caller's
 * existing thread (do_nothing). Non-empty supersteps (with metadata.graph_id) create the thread with the
 * state they build (protocol/agent/threads_supersteps.h); an empty list is no supersteps. */
int ag_threads_create(struct ag_req *r);
/* GET /threads?limit=&offset= → 200 {"threads":[Thread...],"total":n}, newest first; limit 1..1000
 * (default 10). */
int ag_threads_list(struct ag_req *r);
/* POST /threads/search {metadata?, values?, ids?, status?, limit? 1..1000 (10), offset? (0),
 * sort_by? (created_at), sort_order? (desc), select? [field...], extract? {alias: path} (≤10)} →
 * 200 [Thread...] with x-pagination-total (and x-pagination-next when the page is full). */
int ag_threads_search(struct ag_req *r);
/* POST /threads/count {metadata?, values?, status?} → 200 bare integer. */
int ag_threads_count(struct ag_req *r);
/* POST /threads/prune {thread_ids: [id...], strategy? "delete"|"keep_latest"} → 200
 * {"pruned_count": n}: delete removes the threads; keep_latest keeps only each thread's latest
 * checkpoint per namespace. Ids that are not the caller's are not counted. */
int ag_threads_prune(struct ag_req *r);
/* GET /threads/{thread_id}?include=ttl → 200 Thread (with "ttl" when included), 404. */
int ag_threads_get(struct ag_req *r);
/* PATCH /threads/{thread_id} {metadata?, ttl?} → 200 Thread (metadata merged shallowly; a ttl
 * restarts the TTL from now), or 204 with "Prefer: return=minimal"; 404. */
int ag_threads_patch(struct ag_req *r);
/* DELETE /threads/{thread_id} → 204 (runs, checkpoints, events and thread crons go with it); 404. */
int ag_threads_delete(struct ag_req *r);
/* POST /threads/{thread_id}/copy (no body, or {}) → 200 the new Thread, with the source's metadata,
 * state, checkpoints and events; 404. */
int ag_threads_copy(struct ag_req *r);

/* Per-shard start (on_start, after ag_pg_start): shard 0 arms the thread TTL sweeper, which deletes
 * (or prunes, strategy keep_latest) expired threads that are not busy, a bounded batch per tick. */
void ag_threads_shard_start(struct ag_shard *s);
/* Per-shard exit: disarms the sweeper. */
void ag_threads_shard_exit(struct ag_shard *s);

#endif
