/* Who a request acts for. Every owned row (threads, runs, crons, store items, assistants a user made)
 * carries its owner; the runtime writes the owner it is given and never decides one. Which owner a
 * request has is answered by one function in protocol/ (ag_req_owner in protocol/identity.h): today
 * everyone is AG_IDENTITY_ANONYMOUS, and authentication replaces that one function. */
#ifndef AG_RUNTIME_IDENTITY_H
#define AG_RUNTIME_IDENTITY_H

/* The owner of everything when nothing authenticates callers. */
#define AG_IDENTITY_ANONYMOUS "anonymous"
/* Bytes an owner may take, with its NUL. */
#define AG_IDENTITY_OWNER_MAX 128

#endif
