/* Who a request acts for: the one place that decides a request's owner (runtime/identity.h). Today
 * nothing authenticates and every request belongs to AG_IDENTITY_ANONYMOUS; authentication replaces
 * ag_req_owner and nothing else. */
#ifndef AG_PROTOCOL_IDENTITY_H
#define AG_PROTOCOL_IDENTITY_H

#include "runtime/identity.h"

struct ag_req;

/* The owner of what r creates and the only owner whose rows r may see (a string valid for r's life). */
const char *ag_req_owner(const struct ag_req *r);

#endif
