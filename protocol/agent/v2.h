/* Agent Protocol v2 over HTTP: the thread's event stream and its commands. Both are thread-scoped
 * routes (they run on the thread's owner shard, so a thread's commands and streams never race).
 * The events come from the thread event log (runtime/tlog.h), filled by every run on the
 * thread (runtime/v2proj.h). */
#ifndef AG_PROTOCOL_AGENT_V2_H
#define AG_PROTOCOL_AGENT_V2_H

struct ag_req;

/* POST /threads/{thread_id}/stream/events: {channels, namespaces?, depth?, since?} → SSE of protocol
 * event envelopes (`id:` = seq), from after `since`, live across runs, until idle. */
int ag_v2_stream_events(struct ag_req *r);

/* POST /threads/{thread_id}/commands: {id, method, params} → 200 with a success or error envelope
 * (422 only for a body of another shape). Methods: run.start, input.respond, input.inject (the
 * message as a run queued behind the active one), state.get, state.listCheckpoints, state.fork,
 * agent.getTree; subscription.* (WebSocket-only) answer not_supported, anything else
 * unknown_command. */
int ag_v2_commands(struct ag_req *r);

#endif
