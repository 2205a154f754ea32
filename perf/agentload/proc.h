/* proc: what the server processes cost, read from /proc: CPU time (the sum of every thread's
 * run time in /proc/PID/task/TID/schedstat, ns-exact, which the tick-based utime/stime are not on
 * this kernel) and resident memory (VmRSS now, VmHWM the peak). Given several pids (the JS peer is
 * a process group), the figures are sums. */
#ifndef AL_PROC_H
#define AL_PROC_H

#include <stdbool.h>
#include <stdint.h>

#define AL_PROC_MAX_PIDS 64

struct al_proc {
    int pids[AL_PROC_MAX_PIDS];
    int n;
};

/* Parses "PID[,PID...]" into p. Returns 0, or -1 on a malformed list or more than AL_PROC_MAX_PIDS. */
int al_proc_parse(struct al_proc *p, const char *list);

/* CPU time used so far by all threads of all pids, in ns. Threads that already exited are not
 * counted, so sample a long-lived server. */
uint64_t al_proc_cpu_ns(const struct al_proc *p);

/* Resident set now (VmRSS) and peak (VmHWM), KiB, summed over the pids. */
void al_proc_mem_kib(const struct al_proc *p, uint64_t *rss, uint64_t *hwm);

/* True while every pid exists. */
bool al_proc_alive(const struct al_proc *p);

#endif
