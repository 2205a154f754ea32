/* assistants endpoints (protocol.md). */
#ifndef AG_PROTOCOL_AGENT_ASSISTANTS_H
#define AG_PROTOCOL_AGENT_ASSISTANTS_H

struct ag_req;

#endif
