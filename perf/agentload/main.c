/* agentload: a load generator that speaks the Agent Protocol (the LangGraph Platform HTTP API) to a
 * server on the loopback interface. See `agentload --help` and perf/README.md. */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "conn.h"
#include "drive.h"
#include "fanout.h"
#include "idle.h"
#include "ops.h"
#include "report.h"
#include "sync.h"

#define EXIT_FAILURES 1
#define EXIT_USAGE 2
#define EXIT_SETUP 3
#define EXIT_UNSUPPORTED 4

static const char usage_text[] =
    "usage: agentload -s SCENARIO [options]\n"
    "Drives an Agent Protocol server on 127.0.0.1 and reports throughput, latency percentiles, failures\n"
    "by kind and (with --pid) the server's CPU per request and memory. Bounded: it always exits by itself.\n"
    "\n"
    "scenarios:\n"
    "  ok, threads.create, threads.search   GET /ok, POST /threads, POST /threads/search\n"
    "  runs.wait, runs.stream               a run on a pool thread (one run per thread at a time); stream\n"
    "                                       reads the SSE to the end of the response\n"
    "  v2.session                           open /threads/{new}/stream/events, run.start via /commands,\n"
    "                                       read to the root terminal lifecycle event\n"
    "  mixed                                weighted ops on the same connections (--mix)\n"
    "  fanout                               --subs subscribers joined to one stress run: deliveries/s, lag\n"
    "  fanout.v2                            the same through v2 streams (--channels, default [\"custom\"])\n"
    "  idle, sse.idle                       --conns idle keep-alive connections / --subs open SSE joins held\n"
    "                                       --hold s: server RSS per connection (needs --pid)\n"
    "\n"
    "load shape (task scenarios):\n"
    "  -u, --url URL          server base URL, loopback only (http://127.0.0.1:2024)\n"
    "  -c, --conns N          connections (1); closed loop: N tasks in flight\n"
    "  -r, --rate R           open loop: R task arrivals per second over the N connections; latency\n"
    "                         counts from the arrival (no coordinated omission)\n"
    "  -d, --duration S       measured seconds (10)      -n, --requests N   measured tasks instead\n"
    "  -w, --warmup S         warm-up seconds, not recorded (1)\n"
    "  -T, --timeout S        per-task timeout (30)      -L, --max-seconds S   hard cap on the whole run\n"
    "request content:\n"
    "  -a, --assistant ID     assistant id or graph name (echo, stress, interrupt map to their ids;\n"
    "                         default echo, stress for fanout and sse.idle)\n"
    "  -i, --input JSON       run input ({\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]})\n"
    "      --config JSON      run config (none)          --stream-mode JSON  runs.stream ([\"values\"])\n"
    "      --channels JSON    v2.session channels ([\"lifecycle\",\"messages\",\"values\"])\n"
    "      --pool N           threads in the runs pool (max(4 x conns, 64))\n"
    "      --thread ID        the runs pool is this existing thread (its runs one at a time: -c 1)\n"
    "      --mix SPEC         mixed weights (ok:1,threads.create:2,threads.search:2,runs.wait:4,runs.stream:1)\n"
    "fan-out and memory:\n"
    "      --subs N (1000)  --tokens K (1000)  --delay-ms D (0)  --after S (3)  --hold S (2)\n"
    "      --idle-stop S      fanout ends once nothing arrived for S seconds after the first event (15)\n"
    "output:\n"
    "  -p, --pid PID[,PID]    the server's processes: CPU per request (schedstat), RSS\n"
    "      --aux-pid PID[,PID] processes working for the server (its Postgres): CPU per request, apart\n"
    "  -j, --json FILE        also write the JSON result to FILE (- for stdout)\n"
    "  -l, --label TEXT       copied into the JSON      -q, --quiet   no progress or error lines\n"
    "exit status: 0 all tasks succeeded; 1 some failed; 2 usage; 3 set-up failed; 4 the server does not\n"
    "implement the scenario's endpoint (404/405 on a probe; the JSON says so).\n";

static const struct {
    const char *name, *id;
} known_graphs[] = {
    {"echo", "046b5dc7-2108-582c-9c6c-31d556d138f0"},
    {"stress", "a2613945-cc44-5b9d-b20b-aa8f8497bb3b"},
    {"interrupt", "2e6b29d1-4009-5fcc-9319-4cffb1865dfe"},
};

static int usage_error(const char *what)
{
    fprintf(stderr, "agentload: %s (see --help)\n", what);
    return EXIT_USAGE;
}

static bool parse_num(const char *s, double *out)
{
    char *e;
    double v = strtod(s, &e);
    if (e == s || *e || v < 0) return false;
    *out = v;
    return true;
}

/* http://HOST:PORT[/], HOST a loopback IPv4 address or localhost. */
static int parse_url(struct al_run *r)
{
    const char *u = r->o.url;
    if (strncmp(u, "http://", 7)) return -1;
    u += 7;
    char host[64];
    const char *colon = strchr(u, ':');
    size_t hl = colon ? (size_t)(colon - u) : strcspn(u, "/");
    if (!hl || hl >= sizeof host) return -1;
    memcpy(host, u, hl);
    host[hl] = 0;
    long port = 80;
    if (colon) {
        char *e;
        port = strtol(colon + 1, &e, 10);
        if (port <= 0 || port > 65535 || (*e && strcmp(e, "/"))) return -1;
    }
    const char *ip = !strcmp(host, "localhost") ? "127.0.0.1" : host;
    memset(&r->addr, 0, sizeof r->addr);
    r->addr.sin_family = AF_INET;
    r->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &r->addr.sin_addr) != 1 || (ntohl(r->addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "agentload: %s is not a loopback IPv4 address: agentload only loads 127.0.0.0/8\n", host);
        return -1;
    }
    snprintf(r->host, sizeof r->host, "%s:%ld", host, port);
    return 0;
}

/* "op:weight,op:weight" into the phase. */
static int parse_mix(struct al_run *r, struct al_phase *ph, const char *spec)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        unsigned w = 1;
        if (colon) {
            *colon = 0;
            w = (unsigned)atoi(colon + 1);
        }
        const struct al_op *op = al_op_find(tok);
        if (!op || !w || ph->nops == AL_OPS_MAX) {
            fprintf(stderr, "agentload: --mix: bad entry '%s'\n", tok);
            return -1;
        }
        ph->ops[ph->nops] = op;
        ph->weight[ph->nops] = w;
        ph->stat[ph->nops] = al_run_op(r, op->name);
        ph->nops++;
    }
    return ph->nops ? 0 : -1;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* v2.session needs /threads/{id}/stream/events: a 404 or 405 means the server has no protocol v2. */
static int probe_v2(struct al_run *r)
{
    char id[37], path[128], body[512];
    al_run_uuid(id);
    snprintf(path, sizeof path, "/threads/%s/stream/events", id);
    snprintf(body, sizeof body, "{\"channels\":%s}", r->o.channels);
    int st = al_sync_request(r, "POST", path, body, true, 10, NULL, 0);
    if (st == 404 || st == 405) {
        r->unsupported = st == 404 ? "POST /threads/{id}/stream/events answered 404: the server has no protocol v2"
                                   : "POST /threads/{id}/stream/events answered 405: the server has no protocol v2";
        return EXIT_UNSUPPORTED;
    }
    if (st != 200) {
        fprintf(stderr, "agentload: v2 probe: POST %s answered %d\n", path, st);
        return EXIT_SETUP;
    }
    return 0;
}

static int run_tasks(struct al_run *r)
{
    const struct al_opts *o = &r->o;
    struct al_phase ph = {
        .conns = o->conns,
        .rate = o->rate,
        .duration = o->duration,
        .count = o->requests,
        .warmup = o->warmup,
        .timeout = o->timeout,
        .quiet = o->quiet,
        .sample_server = true,
    };
    bool pool = false;
    if (!strcmp(o->scenario, "mixed")) {
        struct al_phase probe = {0};
        struct al_run scratch = *r;
        if (parse_mix(&scratch, &probe, o->mix) < 0) return EXIT_USAGE;
        for (unsigned i = 0; i < probe.nops; i++)
            pool |= probe.ops[i]->uses_pool;
    } else {
        const struct al_op *op = al_op_find(o->scenario);
        pool = op->uses_pool;
    }
    if (!strcmp(o->scenario, "v2.session")) {
        int rc = probe_v2(r);
        if (rc) return rc;
    }
    if (pool && o->thread) {
        /* One thread's history across invocations (perf/history.sh): its runs go one at a time. */
        if (al_pool_add(r, o->thread) < 0) return EXIT_USAGE;
    } else if (pool) {
        unsigned n = o->pool ? o->pool : (o->conns * 4 > 64 ? o->conns * 4 : 64);
        if (!o->quiet) fprintf(stderr, "agentload: creating a pool of %u threads\n", n);
        if (al_ops_fill_pool(r, n) < 0) return EXIT_SETUP;
    }
    if (!strcmp(o->scenario, "mixed")) {
        if (parse_mix(r, &ph, o->mix) < 0) return EXIT_USAGE;
    } else {
        ph.ops[0] = al_op_find(o->scenario);
        ph.weight[0] = 1;
        ph.stat[0] = al_run_op(r, o->scenario);
        ph.nops = 1;
    }
    ph.max_seconds =
        o->max_seconds > 0 ? o->max_seconds : (o->requests ? 300 : o->warmup + o->duration + o->timeout + 10);
    if (al_drive(r, &ph) < 0) return EXIT_SETUP;
    r->mode = o->rate > 0 ? "open" : "closed";
    r->t_window = ph.t_window;
    r->t_end = ph.t_end;
    r->cpu_per = "request";
    if (!strcmp(o->scenario, "v2.session")) {
        r->cpu_per = "session";
        al_v2_report(r);
    }
    for (unsigned i = 0; i < r->nops; i++)
        r->tasks += r->ops[i].ok + r->ops[i].failed;
    return 0;
}

enum {
    OPT_CONFIG = 256,
    OPT_STREAM_MODE,
    OPT_CHANNELS,
    OPT_POOL,
    OPT_THREAD,
    OPT_MIX,
    OPT_SUBS,
    OPT_TOKENS,
    OPT_DELAY,
    OPT_AFTER,
    OPT_HOLD,
    OPT_IDLE_STOP,
    OPT_AUX_PID,
};

int main(int argc, char **argv)
{
    static struct al_run run;
    struct al_run *r = &run;
    struct al_opts *o = &r->o;
    *o = (struct al_opts){
        .url = "http://127.0.0.1:2024",
        .input = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        .stream_mode = "[\"values\"]",
        .channels = "[\"lifecycle\",\"messages\",\"values\"]",
        .mix = "ok:1,threads.create:2,threads.search:2,runs.wait:4,runs.stream:1",
        .conns = 1,
        .subs = 1000,
        .tokens = 1000,
        .after_s = 3,
        .duration = 10,
        .warmup = 1,
        .timeout = 30,
        .hold = 2,
        .idle_stop = 15,
    };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"scenario", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 'T'},
        {"max-seconds", required_argument, NULL, 'L'},
        {"assistant", required_argument, NULL, 'a'},
        {"input", required_argument, NULL, 'i'},
        {"pid", required_argument, NULL, 'p'},
        {"json", required_argument, NULL, 'j'},
        {"label", required_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"stream-mode", required_argument, NULL, OPT_STREAM_MODE},
        {"channels", required_argument, NULL, OPT_CHANNELS},
        {"pool", required_argument, NULL, OPT_POOL},
        {"thread", required_argument, NULL, OPT_THREAD},
        {"mix", required_argument, NULL, OPT_MIX},
        {"subs", required_argument, NULL, OPT_SUBS},
        {"tokens", required_argument, NULL, OPT_TOKENS},
        {"delay-ms", required_argument, NULL, OPT_DELAY},
        {"after", required_argument, NULL, OPT_AFTER},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"idle-stop", required_argument, NULL, OPT_IDLE_STOP},
        {"aux-pid", required_argument, NULL, OPT_AUX_PID},
        {NULL, 0, NULL, 0},
    };
    int c;
    double v;
    bool channels_set = false;
    while ((c = getopt_long(argc, argv, "u:s:c:r:d:n:w:T:L:a:i:p:j:l:qh", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 's':
            o->scenario = optarg;
            break;
        case 'a':
            o->assistant = optarg;
            break;
        case 'i':
            o->input = optarg;
            break;
        case 'p':
            o->pids = optarg;
            break;
        case 'j':
            o->json_out = optarg;
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case OPT_CONFIG:
            o->config = optarg;
            break;
        case OPT_STREAM_MODE:
            o->stream_mode = optarg;
            break;
        case OPT_CHANNELS:
            o->channels = optarg;
            channels_set = true;
            break;
        case OPT_MIX:
            o->mix = optarg;
            break;
        case OPT_AUX_PID:
            o->aux_pids = optarg;
            break;
        case 'r':
            ok = parse_num(optarg, &o->rate);
            break;
        case 'd':
            ok = parse_num(optarg, &o->duration) && o->duration > 0;
            break;
        case 'w':
            ok = parse_num(optarg, &o->warmup);
            break;
        case 'T':
            ok = parse_num(optarg, &o->timeout) && o->timeout > 0;
            break;
        case 'L':
            ok = parse_num(optarg, &o->max_seconds) && o->max_seconds > 0;
            break;
        case OPT_HOLD:
            ok = parse_num(optarg, &o->hold);
            break;
        case OPT_IDLE_STOP:
            ok = parse_num(optarg, &o->idle_stop) && o->idle_stop > 0;
            break;
        case 'n':
            ok = parse_num(optarg, &v) && v >= 1;
            o->requests = (uint64_t)v;
            break;
        case 'c':
            ok = parse_num(optarg, &v) && v >= 1 && v <= 100000;
            o->conns = (unsigned)v;
            break;
        case OPT_THREAD:
            o->thread = optarg;
            break;
        case OPT_POOL:
            ok = parse_num(optarg, &v) && v <= 1000000;
            o->pool = (unsigned)v;
            break;
        case OPT_SUBS:
            ok = parse_num(optarg, &v) && v >= 1 && v <= 100000;
            o->subs = (unsigned)v;
            break;
        case OPT_TOKENS:
            ok = parse_num(optarg, &v) && v >= 1 && v <= 10000000;
            o->tokens = (unsigned)v;
            break;
        case OPT_DELAY:
            ok = parse_num(optarg, &v) && v <= 60000;
            o->delay_ms = (unsigned)v;
            break;
        case OPT_AFTER:
            ok = parse_num(optarg, &v) && v <= 3600;
            o->after_s = (unsigned)v;
            break;
        default:
            return usage_error("unknown option");
        }
        if (!ok) return usage_error("bad numeric value");
    }
    if (optind < argc) return usage_error("unexpected argument");
    if (!o->scenario) return usage_error("-s SCENARIO is required");
    bool tasks = al_op_find(o->scenario) || !strcmp(o->scenario, "mixed");
    bool is_fanout = !strcmp(o->scenario, "fanout") || !strcmp(o->scenario, "fanout.v2"),
         is_sse_idle = !strcmp(o->scenario, "sse.idle"), is_idle = !strcmp(o->scenario, "idle");
    if (!tasks && !is_fanout && !is_sse_idle && !is_idle) return usage_error("unknown scenario");
    if (!strcmp(o->scenario, "fanout.v2") && !channels_set) o->channels = "[\"custom\"]";
    if (parse_url(r) < 0) return usage_error("--url must be http://127.x.y.z:PORT or http://localhost:PORT");
    if (o->pids) {
        if (al_proc_parse(&r->proc, o->pids) < 0) return usage_error("--pid takes PID[,PID...]");
        r->have_proc = true;
    }
    if (o->aux_pids) {
        if (al_proc_parse(&r->aux, o->aux_pids) < 0) return usage_error("--aux-pid takes PID[,PID...]");
        r->have_aux = true;
    }
    const char *a = o->assistant ? o->assistant : (is_fanout || is_sse_idle) ? "stress" : "echo";
    for (size_t i = 0; i < sizeof known_graphs / sizeof known_graphs[0]; i++)
        if (!strcmp(a, known_graphs[i].name)) a = known_graphs[i].id;
    if (strlen(a) >= sizeof r->assistant || strchr(a, '"') || strchr(a, '\\')) return usage_error("bad --assistant");
    snprintf(r->assistant, sizeof r->assistant, "%s", a);
    if (o->max_seconds <= 0 && (is_fanout || is_sse_idle || is_idle)) o->max_seconds = is_fanout ? 120 : 60;

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (al_conn_loop_init(&r->addr) < 0) {
        perror("agentload: epoll");
        return EXIT_SETUP;
    }

    int rc;
    if (tasks)
        rc = run_tasks(r);
    else if (is_fanout)
        rc = al_fanout_run(r) < 0 ? EXIT_SETUP : 0;
    else if (is_sse_idle)
        rc = al_sse_idle_run(r) < 0 ? EXIT_SETUP : 0;
    else
        rc = al_idle_run(r) < 0 ? EXIT_SETUP : 0;

    if (rc == EXIT_UNSUPPORTED) {
        fprintf(stderr, "agentload: %s: skipped: %s\n", o->scenario, r->unsupported);
        r->mode = "skipped";
    }
    if (!r->mode) r->mode = "none";
    if (rc == 0 || rc == EXIT_UNSUPPORTED || r->nops) {
        if (!o->quiet || rc == 0) al_report_table(r, stdout);
        if (o->json_out) {
            FILE *f = strcmp(o->json_out, "-") ? fopen(o->json_out, "w") : stdout;
            if (!f) {
                perror(o->json_out);
                return EXIT_SETUP;
            }
            al_report_json(r, f);
            if (f != stdout) fclose(f);
        }
    }
    if (rc == 0 && al_report_failures(r)) rc = EXIT_FAILURES;
    return rc;
}
