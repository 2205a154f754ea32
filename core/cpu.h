/* Which CPUs the process may run on, to size and pin the shards. */
#ifndef AG_CORE_CPU_H
#define AG_CORE_CPU_H

/* Fills cpus[0..max) with the CPU numbers of the calling thread's affinity mask (sched_getaffinity,
 * what a Kubernetes static CPU policy gives a pod) and returns how many there are (at least 1). */
int ag_cpu_affinity(int *cpus, int max);
/* The CPU quota of the process's cgroup v2 (cpu.max), rounded up to whole CPUs; 0 when unlimited
 * or unreadable. */
int ag_cpu_quota(void);
/* The shard count to use: `requested` if non-zero, else the affinity CPU count capped by the quota. */
int ag_cpu_shard_count(int requested);

#endif
