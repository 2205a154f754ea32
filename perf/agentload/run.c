#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "sync.h"

const char *const al_err_names[AL_E__N] = {"connect", "closed", "timeout", "parse", "body", "overload", "pool"};

uint64_t al_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double al_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define ALLOCS_METRIC "agentd_allocations_total"
#define METRICS_MAX (1u << 20) /* the /metrics text read (agentd's is a few KiB) */

/* The sum of ALLOCS_METRIC in the server's GET /metrics (sync.h: a connection of its own, 2 s at most). */
static bool fetch_allocs(const struct al_run *r, double *out)
{
    char *text = malloc(METRICS_MAX);
    if (!text) return false;
    bool ok = al_sync_request(r, "GET", "/metrics", NULL, false, 2, text, METRICS_MAX) == 200 &&
              al_metrics_parse_sum(text, strlen(text), ALLOCS_METRIC, out);
    free(text);
    return ok;
}

void al_run_allocs_begin(struct al_run *r)
{
    r->have_allocs = false;
    r->allocs_begun = r->have_proc && fetch_allocs(r, &r->allocs0);
}

void al_run_allocs_end(struct al_run *r)
{
    double now;
    if (r->allocs_begun && fetch_allocs(r, &now) && now >= r->allocs0) {
        r->allocs = now - r->allocs0;
        r->have_allocs = true;
    }
}

void al_run_extra(struct al_run *r, const char *key, double value, int decimals)
{
    for (unsigned i = 0; i < r->nextra; i++)
        if (!strcmp(r->extra[i].key, key)) {
            r->extra[i].value = value;
            r->extra[i].decimals = decimals;
            return;
        }
    if (r->nextra < AL_EXTRA_MAX) r->extra[r->nextra++] = (struct al_extra){key, value, decimals};
}

unsigned al_run_op(struct al_run *r, const char *name)
{
    for (unsigned i = 0; i < r->nops; i++)
        if (!strcmp(r->ops[i].name, name)) return i;
    struct al_op_stats *s = &r->ops[r->nops];
    memset(s, 0, sizeof *s);
    s->name = name;
    return r->nops++;
}

size_t al_run_request(const struct al_run *r, char *buf, size_t cap, const char *method, const char *path,
                      const char *body, const char *extra)
{
    int n;
    if (body)
        n = snprintf(buf, cap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                     method, path, r->host, strlen(body), extra ? extra : "", body);
    else
        n = snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, path, r->host, extra ? extra : "");
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

uint64_t al_run_rand(void)
{
    if (rng_state == 0x9e3779b97f4a7c15ull) rng_state ^= al_now();
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

void al_run_uuid(char out[37])
{
    uint64_t a = al_run_rand(), b = al_run_rand();
    a = (a & ~0xf000ull) | 0x4000ull;                        /* version 4 */
    b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull; /* variant 10 */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xffff, (unsigned)(b >> 48), (unsigned long long)(b & 0xffffffffffffull));
}

int al_pool_add(struct al_run *r, const char *id)
{
    if (strlen(id) >= sizeof r->pool_ids[0]) return -1;
    if (r->pool_n == r->pool_cap) {
        unsigned cap = r->pool_cap ? r->pool_cap * 2 : 256;
        r->pool_ids = realloc(r->pool_ids, cap * sizeof r->pool_ids[0]);
        unsigned *f = malloc(cap * sizeof *f);
        for (unsigned i = 0; i < r->pool_count; i++) /* unwrap the ring into the new array */
            f[i] = r->pool_free[(r->pool_head + i) % r->pool_cap];
        free(r->pool_free);
        r->pool_free = f;
        r->pool_head = 0;
        r->pool_cap = cap;
    }
    unsigned slot = r->pool_n++;
    snprintf(r->pool_ids[slot], sizeof r->pool_ids[slot], "%s", id);
    al_pool_give(r, (int)slot);
    return 0;
}

int al_pool_take(struct al_run *r)
{
    if (!r->pool_count) return -1;
    unsigned slot = r->pool_free[r->pool_head];
    r->pool_head = (r->pool_head + 1) % r->pool_cap;
    r->pool_count--;
    return (int)slot;
}

void al_pool_give(struct al_run *r, int slot)
{
    r->pool_free[(r->pool_head + r->pool_count) % r->pool_cap] = (unsigned)slot;
    r->pool_count++;
}

void al_run_report_hold(struct al_run *r, const char *key, const char *unit, const char *per_key, unsigned n,
                        unsigned open, uint64_t t0, uint64_t t_up, uint64_t rss0, uint64_t rss1)
{
    r->mode = "hold";
    r->t_window = t0;
    r->t_end = t_up > t0 ? t_up : t0 + 1;
    r->cpu_per = unit;
    al_run_extra(r, key, n, 0);
    al_run_extra(r, "open_at_sample", open, 0);
    al_run_extra(r, "connect_s", (double)(t_up - t0) / 1e9, 3);
    if (r->have_proc) {
        al_run_extra(r, "server_rss_before_kib", (double)rss0, 0);
        al_run_extra(r, "server_rss_after_kib", (double)rss1, 0);
        al_run_extra(r, per_key, open ? ((double)rss1 - (double)rss0) / open : 0, 2);
    }
}
