/* fanout: the scenarios built on many SSE subscribers to one run, outside the task driver.
 *   fanout    a background `stress` run ({"tokens":K,"mode":"custom","delay_ms":D}, stream_mode
 *             custom, after_seconds A so that everyone joins first) watched by S subscribers through
 *             GET /threads/{id}/runs/{run_id}/stream (Last-Event-ID: -1, which the JS peer needs to
 *             give every joiner the whole stream). Reports deliveries/s (custom frames received by
 *             all subscribers / (last - first receive time)) and the delivery lag. v1 custom events
 *             carry no server timestamp ({"token","index"} only), so the lag of a delivery is its
 *             receive time minus the first receive time of the same index by any subscriber (one
 *             clock reading per read; the loop is single-threaded, so reads are in time order). When
 *             a frame does carry "timestamp" (ms since the epoch, as v2 envelopes do), the lag from
 *             it is reported as well.
 *   fanout.v2 the same run watched by S v2 sessions, POST /threads/{id}/stream/events with
 *             {"channels": --channels (["custom"])}, each closed once it received K custom frames;
 *             every v2 frame carries params.timestamp, so the lag is also from the server's clock.
 *   sse.idle  S subscribers joined to a run that is not due for a long time (after_seconds), held
 *             open for --hold seconds: the server's RSS growth per open SSE subscriber. */
#ifndef AL_FANOUT_H
#define AL_FANOUT_H

#include "run.h"

/* Run the scenario; results go to r (ops[0] holds the deliveries and their lag). Returns 0, or -1
 * when the set-up failed (no thread, no run, no subscriber). */
int al_fanout_run(struct al_run *r);
int al_sse_idle_run(struct al_run *r);

#endif
