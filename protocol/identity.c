#include "protocol/identity.h"

const char *ag_req_owner(const struct ag_req *r)
{
    (void)r;
    return AG_IDENTITY_ANONYMOUS;
}
