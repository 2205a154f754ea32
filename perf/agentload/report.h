/* report: prints a run's results as a table (for people) and as one JSON object (for the runner).
 * Per operation: successes, failures, throughput over the measured window, latency percentiles
 * p50/p90/p99/p99.9/max (for fan-out: the delivery lag), HTTP statuses and failures by kind; then the
 * server's CPU per unit of work and memory (when its pids were given), the client's own CPU, and the
 * scenario's own figures. */
#ifndef AL_REPORT_H
#define AL_REPORT_H

#include <stdio.h>

#include "run.h"

/* The table, to f. */
void al_report_table(const struct al_run *r, FILE *f);

/* The JSON object (one line), to f. */
void al_report_json(const struct al_run *r, FILE *f);

/* Measured failures over all operations. */
unsigned long long al_report_failures(const struct al_run *r);

#endif
