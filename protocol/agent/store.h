/* store endpoints (protocol.md). */
#ifndef AG_PROTOCOL_AGENT_STORE_H
#define AG_PROTOCOL_AGENT_STORE_H

struct ag_req;

#endif
