/* LangGraph's add_messages reducer and LangChain's message coercion, on jansson values.
 *
 * A message-like value is a LangChain serialized dict ({"type", "content", ...}), an OpenAI-style
 * dict ({"role", "content", ...}; roles user/human, assistant/ai, system, developer, tool), a
 * LangChain constructor dict ({"lc":1,"type":"constructor","id":[..,"HumanMessage"],"kwargs":{..}})
 * or a bare string (a human message). Coercion produces LangChain's serialized form, e.g.
 *   human: {"content","additional_kwargs":{},"response_metadata":{},"id","type":"human"}
 *   ai:    {"content","tool_calls":[],"invalid_tool_calls":[],"additional_kwargs":{},"response_metadata":{},
 *           "id","type":"ai"}
 *   tool:  {"content","tool_call_id","additional_kwargs":{},"response_metadata":{},"id","type":"tool"}
 *   remove:{"content":"","additional_kwargs":{},"response_metadata":{},"id","type":"remove"}
 * keeping name and any other fields given, with a random UUID4 id when none is given. Input values are
 * never modified; results are new references. */
#ifndef AG_GRAPH_MESSAGES_H
#define AG_GRAPH_MESSAGES_H

#include <jansson.h>
#include <stddef.h>

/* The id that, in a remove message, clears every message before it (LangGraph's REMOVE_ALL_MESSAGES). */
#define AG_MSG_REMOVE_ALL "__remove_all__"

/* Coerces one message-like value. Returns a new normalized dict, or NULL with a reason in err. */
json_t *ag_msg_coerce(const json_t *m, char *err, size_t errlen);
/* Coerces a list of message-likes, or a single one (a dict or a string), into a new array of normalized
 * dicts. Returns NULL with a reason in err when any element cannot be coerced. */
json_t *ag_msg_coerce_list(const json_t *v, char *err, size_t errlen);
/* add_messages(left, right) on normalized arrays (left: the channel's value, right: from
 * ag_msg_coerce_list): a right message whose id is in left replaces it in place, a new one is appended,
 * a remove message deletes its id (an error if left has no such id), a remove message with id
 * AG_MSG_REMOVE_ALL drops everything before it. Returns a new array (elements shared by reference), or
 * NULL with the reason in err. */
json_t *ag_msg_merge(const json_t *left, const json_t *right, char *err, size_t errlen);
/* add_messages on raw values: coerces both sides, then merges. left may be NULL (empty). */
json_t *ag_msg_add(const json_t *left, const json_t *right, char *err, size_t errlen);

#endif
