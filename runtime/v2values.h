/* The state and messages of protocol v2 (the `values` channel of the thread event log): LangChain
 * message dicts as the protocol shapes them. Pure JSON functions, used by the projection of a run's
 * events (runtime/v2proj.h) and by replays that read a state back from its checkpoint. */
#ifndef AG_RUNTIME_V2VALUES_H
#define AG_RUNTIME_V2VALUES_H

#include <jansson.h>

/* The protocol role of a LangChain message type ("ai", "human", "system", "tool"; another type as it
 * is; NULL: "ai"). */
const char *ag_v2_role_of(const char *type);
/* tool_calls in protocol shape: [{"type":"tool_call","id","name","args"}]. A new reference. */
json_t *ag_v2_normalize_tool_calls(const json_t *calls);
/* values in protocol shape: messages of any top-level list normalized, `__interrupt__` dropped. A
 * new reference. */
json_t *ag_v2_normalize_values(const json_t *values);

#endif
