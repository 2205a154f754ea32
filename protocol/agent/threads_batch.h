/* Thread creation, coalesced: every POST /threads that waits for the same commit on a shard goes to
 * Postgres as one multi-row INSERT (design.md §6), so a loaded server pays the statement overhead
 * once per batch instead of once per thread. The batch stays open while it waits in the shard's
 * database queue and is sealed when it is sent. */
#ifndef AG_PROTOCOL_AGENT_THREADS_BATCH_H
#define AG_PROTOCOL_AGENT_THREADS_BATCH_H

struct ag_req;

/* Creates thread `id` (a canonical lowercase UUID, owned by r->shard) for owner, from the request's
 * validated JSON body (its "metadata" is stored), with a TTL of ttl_minutes (<= 0: none) and
 * strategy ("delete" | "keep_latest"; ignored without a TTL). A taken id is a 409. Returns AG_AGAIN
 * (r is answered later and ag_http_done called), or AG_OK after answering 503 (no database, or its
 * queue is full). */
int ag_threads_batch_create(struct ag_req *r, const char *id, const char *owner, double ttl_minutes,
                            const char *strategy);

#endif
