#include "report.h"

#include <string.h>
#include <sys/resource.h>

#include "conn.h"

static double window_s(const struct al_run *r)
{
    return r->t_end > r->t_window ? (double)(r->t_end - r->t_window) / 1e9 : 0;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double client_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

unsigned long long al_report_failures(const struct al_run *r)
{
    unsigned long long n = 0;
    for (unsigned i = 0; i < r->nops; i++)
        n += r->ops[i].failed;
    return n;
}

static void total_of(const struct al_run *r, struct al_op_stats *t)
{
    memset(t, 0, sizeof *t);
    t->name = "total";
    for (unsigned i = 0; i < r->nops; i++) {
        const struct al_op_stats *s = &r->ops[i];
        al_hist_merge(&t->lat, &s->lat);
        t->ok += s->ok;
        t->failed += s->failed;
        t->warm += s->warm;
        for (int k = 0; k < 600; k++)
            t->status[k] += s->status[k];
        for (int k = 0; k < AL_E__N; k++)
            t->err[k] += s->err[k];
    }
}

static void row(const struct al_run *r, const struct al_op_stats *s, FILE *f)
{
    double w = window_s(r);
    if (!s->lat.count) { /* nothing timed (the memory scenarios) */
        fprintf(f, "%-17s %10llu %7llu %11.1f %9s %9s %9s %9s %9s\n", s->name, (unsigned long long)s->ok,
                (unsigned long long)s->failed, w > 0 ? (double)s->ok / w : 0, "-", "-", "-", "-", "-");
        return;
    }
    fprintf(f, "%-17s %10llu %7llu %11.1f %9.3f %9.3f %9.3f %9.3f %9.3f\n", s->name, (unsigned long long)s->ok,
            (unsigned long long)s->failed, w > 0 ? (double)s->ok / w : 0, ms(al_hist_percentile(&s->lat, 50)),
            ms(al_hist_percentile(&s->lat, 90)), ms(al_hist_percentile(&s->lat, 99)),
            ms(al_hist_percentile(&s->lat, 99.9)), ms(s->lat.max));
}

static void failures_line(const struct al_op_stats *s, FILE *f)
{
    bool any = false;
    for (int k = 0; k < 600; k++)
        if (s->status[k] && (k < 200 || k >= 300)) {
            fprintf(f, "%s HTTP %d x%llu", any ? "," : "  failures:", k, (unsigned long long)s->status[k]);
            any = true;
        }
    for (int k = 0; k < AL_E__N; k++)
        if (s->err[k]) {
            fprintf(f, "%s %s x%llu", any ? "," : "  failures:", al_err_names[k], (unsigned long long)s->err[k]);
            any = true;
        }
    if (any) fprintf(f, " (%s)\n", s->name);
}

void al_report_table(const struct al_run *r, FILE *f)
{
    const struct al_opts *o = &r->o;
    fprintf(f, "agentload: %s on %s, %s", o->scenario, o->url, r->mode);
    if (!strcmp(r->mode, "open"))
        fprintf(f, " loop at %.0f/s over %u connections", o->rate, o->conns);
    else if (!strcmp(r->mode, "closed"))
        fprintf(f, " loop, %u connection%s", o->conns, o->conns == 1 ? "" : "s");
    fprintf(f, ", %.2f s measured", window_s(r));
    if (!strcmp(r->mode, "open") || !strcmp(r->mode, "closed")) fprintf(f, " after %.1f s warm-up", o->warmup);
    fprintf(f, "\n%-17s %10s %7s %11s %9s %9s %9s %9s %9s\n", "operation", "ok", "failed", "ok/s",
            strcmp(r->mode, "fanout") ? "p50 ms" : "lag p50", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
    for (unsigned i = 0; i < r->nops; i++)
        row(r, &r->ops[i], f);
    if (r->nops > 1) {
        struct al_op_stats t;
        total_of(r, &t);
        row(r, &t, f);
    }
    for (unsigned i = 0; i < r->nops; i++)
        failures_line(&r->ops[i], f);
    if (r->have_proc) {
        uint64_t rss, hwm;
        al_proc_mem_kib(&r->proc, &rss, &hwm);
        double w = window_s(r);
        fprintf(f, "server (pid %s): %.2f CPU-us per %s, %.2f cores; RSS %.1f MiB, peak %.1f MiB\n", o->pids,
                r->tasks ? (double)r->cpu_ns / 1e3 / (double)r->tasks : 0, r->cpu_per,
                w > 0 ? (double)r->cpu_ns / 1e9 / w : 0, (double)rss / 1024, (double)hwm / 1024);
    }
    if (r->have_aux)
        fprintf(f, "aux (pid %s): %.2f CPU-us per %s\n", o->aux_pids,
                r->tasks ? (double)r->aux_cpu_ns / 1e3 / (double)r->tasks : 0, r->cpu_per);
    if (r->have_allocs)
        fprintf(f, "server allocations: %.1f per %s\n", r->tasks ? r->allocs / (double)r->tasks : 0, r->cpu_per);
    const struct al_conn_totals *t = al_conn_totals();
    fprintf(f, "client: %.2f CPU-s, %llu connections opened, %llu connect failures\n", client_cpu_s(),
            (unsigned long long)t->opened, (unsigned long long)t->connect_failed);
    if (r->nextra) {
        fprintf(f, "%s:", o->scenario);
        for (unsigned i = 0; i < r->nextra; i++)
            fprintf(f, " %s=%.*f", r->extra[i].key, r->extra[i].decimals, r->extra[i].value);
        fprintf(f, "\n");
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_op(const struct al_run *r, const struct al_op_stats *s, FILE *f)
{
    double w = window_s(r);
    fprintf(f, "{\"name\":");
    json_str(f, s->name);
    fprintf(f, ",\"ok\":%llu,\"failed\":%llu,\"warmup\":%llu,\"ok_per_s\":%.2f", (unsigned long long)s->ok,
            (unsigned long long)s->failed, (unsigned long long)s->warm, w > 0 ? (double)s->ok / w : 0);
    fprintf(f,
            ",\"latency_ms\":{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p99_9\":%.4f,\"max\":%.4f,\"min\":%.4f,"
            "\"mean\":%.4f}",
            ms(al_hist_percentile(&s->lat, 50)), ms(al_hist_percentile(&s->lat, 90)),
            ms(al_hist_percentile(&s->lat, 99)), ms(al_hist_percentile(&s->lat, 99.9)), ms(s->lat.max), ms(s->lat.min),
            al_hist_mean(&s->lat) / 1e6);
    fprintf(f, ",\"status\":{");
    bool first = true;
    for (int k = 0; k < 600; k++)
        if (s->status[k]) {
            fprintf(f, "%s\"%d\":%llu", first ? "" : ",", k, (unsigned long long)s->status[k]);
            first = false;
        }
    fprintf(f, "},\"errors\":{");
    first = true;
    for (int k = 0; k < AL_E__N; k++)
        if (s->err[k]) {
            fprintf(f, "%s\"%s\":%llu", first ? "" : ",", al_err_names[k], (unsigned long long)s->err[k]);
            first = false;
        }
    fprintf(f, "}}");
}

void al_report_json(const struct al_run *r, FILE *f)
{
    const struct al_opts *o = &r->o;
    fprintf(f, "{\"scenario\":");
    json_str(f, o->scenario);
    fprintf(f, ",\"label\":");
    json_str(f, o->label ? o->label : "");
    fprintf(f, ",\"url\":");
    json_str(f, o->url);
    fprintf(f, ",\"mode\":\"%s\",\"conns\":%u,\"rate\":%.2f,\"warmup_s\":%.2f,\"window_s\":%.4f", r->mode, o->conns,
            o->rate, o->warmup, window_s(r));
    fprintf(f, ",\"ops\":[");
    for (unsigned i = 0; i < r->nops; i++) {
        if (i) fputc(',', f);
        json_op(r, &r->ops[i], f);
    }
    struct al_op_stats t;
    total_of(r, &t);
    fprintf(f, "],\"total\":");
    json_op(r, &t, f);
    if (r->have_proc) {
        uint64_t rss, hwm;
        al_proc_mem_kib(&r->proc, &rss, &hwm);
        double w = window_s(r);
        fprintf(f,
                ",\"server\":{\"pids\":\"%s\",\"cpu_s\":%.4f,\"cores\":%.3f,\"cpu_us_per\":\"%s\","
                "\"cpu_us\":%.3f,\"rss_kib\":%llu,\"peak_rss_kib\":%llu}",
                o->pids, (double)r->cpu_ns / 1e9, w > 0 ? (double)r->cpu_ns / 1e9 / w : 0, r->cpu_per,
                r->tasks ? (double)r->cpu_ns / 1e3 / (double)r->tasks : 0, (unsigned long long)rss,
                (unsigned long long)hwm);
    }
    if (r->have_aux)
        fprintf(f, ",\"aux\":{\"pids\":\"%s\",\"cpu_s\":%.4f,\"cpu_us\":%.3f}", o->aux_pids,
                (double)r->aux_cpu_ns / 1e9, r->tasks ? (double)r->aux_cpu_ns / 1e3 / (double)r->tasks : 0);
    if (r->have_allocs)
        fprintf(f, ",\"allocations\":{\"total\":%.0f,\"per\":\"%s\",\"per_op\":%.2f}", r->allocs, r->cpu_per,
                r->tasks ? r->allocs / (double)r->tasks : 0);
    const struct al_conn_totals *ct = al_conn_totals();
    fprintf(f, ",\"client\":{\"cpu_s\":%.4f,\"connections_opened\":%llu,\"connect_failures\":%llu}", client_cpu_s(),
            (unsigned long long)ct->opened, (unsigned long long)ct->connect_failed);
    fprintf(f, ",\"extra\":{");
    for (unsigned i = 0; i < r->nextra; i++)
        fprintf(f, "%s\"%s\":%.*f", i ? "," : "", r->extra[i].key, r->extra[i].decimals, r->extra[i].value);
    fprintf(f, "}");
    if (r->unsupported) {
        fprintf(f, ",\"unsupported\":");
        json_str(f, r->unsupported);
    }
    fprintf(f, "}\n");
}
