#define _GNU_SOURCE
#include "proc.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int al_proc_parse(struct al_proc *p, const char *list)
{
    p->n = 0;
    const char *s = list;
    while (*s) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || v <= 0 || p->n == AL_PROC_MAX_PIDS) return -1;
        p->pids[p->n++] = (int)v;
        if (*e == ',')
            e++;
        else if (*e)
            return -1;
        s = e;
    }
    return p->n ? 0 : -1;
}

uint64_t al_proc_cpu_ns(const struct al_proc *p)
{
    uint64_t sum = 0;
    for (int i = 0; i < p->n; i++) {
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/task", p->pids[i]);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
            char path[sizeof dir + sizeof de->d_name + sizeof "/schedstat"];
            snprintf(path, sizeof path, "%s/%s/schedstat", dir, de->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            unsigned long long run = 0;
            if (fscanf(f, "%llu", &run) == 1) sum += run;
            fclose(f);
        }
        closedir(d);
    }
    return sum;
}

void al_proc_mem_kib(const struct al_proc *p, uint64_t *rss, uint64_t *hwm)
{
    *rss = *hwm = 0;
    for (int i = 0; i < p->n; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", p->pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            unsigned long long v;
            if (sscanf(line, "VmRSS: %llu", &v) == 1)
                *rss += v;
            else if (sscanf(line, "VmHWM: %llu", &v) == 1)
                *hwm += v;
        }
        fclose(f);
    }
}

bool al_proc_alive(const struct al_proc *p)
{
    for (int i = 0; i < p->n; i++)
        if (kill(p->pids[i], 0) != 0) return false;
    return true;
}
