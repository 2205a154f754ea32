/* idle: the server's memory per idle keep-alive connection. Opens --conns connections, sends one
 * GET /ok on each (so the server has accepted and served every one), holds them idle for --hold
 * seconds, then reads the server's RSS: (RSS after - RSS before opening) / connections open. */
#ifndef AL_IDLE_H
#define AL_IDLE_H

#include "run.h"

/* Runs the scenario; results go to r. Returns 0, or -1 when no connection was served. */
int al_idle_run(struct al_run *r);

#endif
