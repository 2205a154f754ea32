/* The built-in graphs, written on the public API (graph/graph.h) and behaving like the JS peer's
 * graphs in shared/peer/graphs/ (one .ts file each). Each returns a new uncompiled definition; the registry
 * registers them (in this order) before anything else. */
#ifndef AG_GRAPH_BUILTIN_H
#define AG_GRAPH_BUILTIN_H

struct ag_graph_def;

/* echo: one node "echo": a custom event {"echo": <content of the last human message>}, then an AI
 * message with that content. */
struct ag_graph_def *ag_graph_builtin_echo(void);
/* stress: one node "emit": config.configurable tokens (10, at most AG_GRAPH_STRESS_TOKENS_MAX: more is
 * refused by its config check), mode custom|messages|both (both), delay_ms (0); custom events
 * {"token","index"}, then message chunks, then one AI message "t0 t1 ... t{N-1}". Without a delay it
 * yields to the loop whenever the shard's run work budget for the turn is spent. */
#define AG_GRAPH_STRESS_TOKENS_MAX 100000
struct ag_graph_def *ag_graph_builtin_stress(void);
/* interrupt: one node "ask": interrupt({"question":"what now?"}), then an AI message
 * "you said: <answer>" (a string as is, anything else as its JSON). */
struct ag_graph_def *ag_graph_builtin_interrupt(void);

#endif
