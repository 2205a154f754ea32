/* sync: one blocking request on a connection of its own, for set-up steps (create the thread and
 * the run a fan-out watches, probe an endpoint, cancel a run) outside the measured loop. */
#ifndef AL_SYNC_H
#define AL_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "run.h"

/* Sends the request and reads the answer, at most timeout_s seconds in all. With head_only the
 * connection is closed as soon as the status is known (for a stream that would not end). The body
 * (its first cap - 1 bytes, NUL-terminated) goes to out when out is not NULL. Returns the HTTP
 * status, or -1 on a connection, timeout or parse failure. */
int al_sync_request(const struct al_run *r, const char *method, const char *path, const char *body, bool head_only,
                    double timeout_s, char *out, size_t cap);

#endif
