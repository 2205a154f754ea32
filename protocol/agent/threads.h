/* threads endpoints (protocol.md). */
#ifndef AG_PROTOCOL_AGENT_THREADS_H
#define AG_PROTOCOL_AGENT_THREADS_H

struct ag_req;

#endif
