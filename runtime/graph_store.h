/* The store from inside graph nodes: the operations a node starts (graph/engine.h struct
 * ag_graph_store_req) carried out on the Postgres store the /store endpoints serve (persist/sql_store.def),
 * as the run's owner, on the run's shard. Engines give these to their graphs' host (runtime/engine_c.c).
 *
 * A put or delete that finds its item being written by another transaction runs again after a pause
 * growing from 1 to 16 ms, as the endpoints do, and fails after 10 s. */
#ifndef AG_RUNTIME_GRAPH_STORE_H
#define AG_RUNTIME_GRAPH_STORE_H

#include <stddef.h>

#include "graph/engine.h"

struct ag_shard;

/* Starts req for owner (copied) on shard s; done(cookie, result, error) is called once, later, on s, unless
 * ag_graph_store_cancel came first. Returns the operation, or NULL with err (no database, queue full). */
void *ag_graph_store_start(struct ag_shard *s, const char *owner, const struct ag_graph_store_req *req,
                           ag_graph_store_done_fn done, void *cookie, char *err, size_t errlen);
/* Abandons an operation: done is not called (a write may still happen). */
void ag_graph_store_cancel(void *op);

#endif
