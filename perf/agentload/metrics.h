/* metrics: one counter of a server's Prometheus text (GET /metrics), summed over its labels (agentd
 * keeps one series per shard). run.c reads agentd_allocations_total at both ends of the measured
 * window for the allocations per operation; a server without it (the JS peer) reports none. */
#ifndef AL_METRICS_H
#define AL_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* Sums the samples of metric `name` in Prometheus text text[0..len): the lines "name value" and
 * "name{labels} value" (not "name_sum" or other names it prefixes; comments skipped). True with *out
 * set when at least one sample parsed. */
bool al_metrics_parse_sum(const char *text, size_t len, const char *name, double *out);

#endif
