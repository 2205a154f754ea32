#include "protocol/agent/assistants.h"

int ag_assistants_seed(PGconn *pg, char *err, size_t errlen)
{
    return 0;
}
