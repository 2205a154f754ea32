#define _GNU_SOURCE
#include "core/cpu.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ag_cpu_affinity(int *cpus, int max)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        if (max > 0)
            cpus[0] = 0;
        return 1;
    }
    int n = 0;
    for (int i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &set))
            cpus[n++] = i;
    return n ? n : 1;
}

int ag_cpu_quota(void)
{
    /* The process's cgroup path, then its cpu.max ("max 100000" or "200000 100000"). */
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    char line[512], path[600] = "";
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
        }
    }
    fclose(f);
    if (!*path)
        return 0;
    f = fopen(path, "r");
    if (!f)
        return 0;
    char quota[32] = "";
    long period = 0;
    int ok = fscanf(f, "%31s %ld", quota, &period) == 2;
    fclose(f);
    if (!ok || !strcmp(quota, "max") || period <= 0)
        return 0;
    long q = atol(quota);
    if (q <= 0)
        return 0;
    return (int)((q + period - 1) / period);
}

int ag_cpu_shard_count(int requested)
{
    if (requested > 0)
        return requested;
    int cpus[1024];
    int n = ag_cpu_affinity(cpus, 1024);
    int q = ag_cpu_quota();
    if (q > 0 && q < n)
        n = q;
    return n;
}
