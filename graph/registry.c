#include "graph/registry.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"

/* --- the built-in graphs' descriptions ---
 *
 * All three share LangGraph's MessagesAnnotation state: one `messages` channel with the
 * add-messages reducer (append, or replace the message with the same id). Input may use LangChain's
 * serialized shape ({type, content, ...}) or the OpenAI one ({role, content}). */

#define MESSAGE_DEFS                                                                                                   \
    "\"definitions\":{\"Message\":{\"title\":\"Message\",\"description\":\"A chat message: LangChain's serialized "   \
    "form {type, content, ...} or the OpenAI form {role, content}.\",\"type\":\"object\",\"properties\":{"             \
    "\"type\":{\"type\":\"string\",\"enum\":[\"human\",\"ai\",\"system\",\"tool\",\"function\",\"chat\",\"remove\"]}," \
    "\"role\":{\"type\":\"string\"},"                                                                                  \
    "\"content\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":\"object\"}}]},"            \
    "\"id\":{\"type\":[\"string\",\"null\"]},"                                                                         \
    "\"name\":{\"type\":[\"string\",\"null\"]},"                                                                       \
    "\"additional_kwargs\":{\"type\":\"object\"},"                                                                     \
    "\"response_metadata\":{\"type\":\"object\"},"                                                                     \
    "\"tool_calls\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"                                             \
    "\"tool_call_id\":{\"type\":\"string\"}}}}"

#define MESSAGES_SCHEMA(title)                                                                                         \
    "{\"title\":\"" title "\",\"type\":\"object\",\"properties\":{\"messages\":{\"title\":\"Messages\","               \
    "\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/Message\"}}}," MESSAGE_DEFS "}"

#define EMPTY_CONFIGURABLE "{\"title\":\"Configurable\",\"type\":\"object\",\"properties\":{}}"

/* stress reads config.configurable (mirrored into context): tokens, mode, delay_ms. */
#define STRESS_CONFIGURABLE                                                                                            \
    "{\"title\":\"Configurable\",\"type\":\"object\",\"properties\":{"                                                \
    "\"tokens\":{\"title\":\"Tokens\",\"description\":\"Number of tokens to emit.\",\"type\":\"integer\","          \
    "\"minimum\":0,\"default\":10},"                                                                                   \
    "\"mode\":{\"title\":\"Mode\",\"description\":\"custom: stream_mode custom events; messages: message chunks; "   \
    "both.\",\"type\":\"string\",\"enum\":[\"custom\",\"messages\",\"both\"],\"default\":\"both\"},"                   \
    "\"delay_ms\":{\"title\":\"Delay Ms\",\"description\":\"Sleep between tokens, in milliseconds.\","                \
    "\"type\":\"integer\",\"minimum\":0,\"default\":0}}}"

#define LINEAR_GRAPH(node)                                                                                             \
    static const struct ag_graph_node_info node##_nodes[] = {{AG_GRAPH_START}, {#node}, {AG_GRAPH_END}};               \
    static const struct ag_graph_edge_info node##_edges[] = {{AG_GRAPH_START, #node, false},                          \
                                                             {#node, AG_GRAPH_END, false}};

LINEAR_GRAPH(echo)
LINEAR_GRAPH(emit)
LINEAR_GRAPH(ask)

static char assistant_ids[3][37];

static struct ag_graph_info graphs[] = {
    {
        .graph_id = "echo",
        .assistant_id = assistant_ids[0],
        .input_schema = MESSAGES_SCHEMA("MessagesState"),
        .output_schema = MESSAGES_SCHEMA("MessagesState"),
        .state_schema = MESSAGES_SCHEMA("MessagesState"),
        .config_schema = EMPTY_CONFIGURABLE,
        .context_schema = EMPTY_CONFIGURABLE,
        .nodes = echo_nodes,
        .nnodes = AG_ARRAY_LEN(echo_nodes),
        .edges = echo_edges,
        .nedges = AG_ARRAY_LEN(echo_edges),
    },
    {
        .graph_id = "stress",
        .assistant_id = assistant_ids[1],
        .input_schema = MESSAGES_SCHEMA("MessagesState"),
        .output_schema = MESSAGES_SCHEMA("MessagesState"),
        .state_schema = MESSAGES_SCHEMA("MessagesState"),
        .config_schema = STRESS_CONFIGURABLE,
        .context_schema = STRESS_CONFIGURABLE,
        .nodes = emit_nodes,
        .nnodes = AG_ARRAY_LEN(emit_nodes),
        .edges = emit_edges,
        .nedges = AG_ARRAY_LEN(emit_edges),
    },
    {
        .graph_id = "interrupt",
        .assistant_id = assistant_ids[2],
        .input_schema = MESSAGES_SCHEMA("MessagesState"),
        .output_schema = MESSAGES_SCHEMA("MessagesState"),
        .state_schema = MESSAGES_SCHEMA("MessagesState"),
        .config_schema = EMPTY_CONFIGURABLE,
        .context_schema = EMPTY_CONFIGURABLE,
        .nodes = ask_nodes,
        .nnodes = AG_ARRAY_LEN(ask_nodes),
        .edges = ask_edges,
        .nedges = AG_ARRAY_LEN(ask_edges),
    },
};

_Static_assert(AG_ARRAY_LEN(graphs) == AG_ARRAY_LEN(assistant_ids), "one assistant id per graph");

/* --- SHA-1 (FIPS 180-4), only for UUID5: not used for anything that needs collision resistance --- */

struct sha1 {
    uint32_t h[5];
    uint64_t len; /* bytes hashed */
    uint8_t block[64];
    size_t fill;
};

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(struct sha1 *c, const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ cc ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ cc ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol(b, 30);
        b = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

static void sha1_init(struct sha1 *c)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->fill = 0;
}

static void sha1_update(struct sha1 *c, const void *data, size_t n)
{
    const uint8_t *p = data;
    c->len += n;
    while (n) {
        size_t take = AG_MIN(n, sizeof c->block - c->fill);
        memcpy(c->block + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill == sizeof c->block) {
            sha1_block(c, c->block);
            c->fill = 0;
        }
    }
}

static void sha1_final(struct sha1 *c, uint8_t out[20])
{
    uint64_t bits = c->len * 8;
    static const uint8_t pad0 = 0x80, zero = 0;
    sha1_update(c, &pad0, 1);
    while (c->fill != 56)
        sha1_update(c, &zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(c, len, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

int ag_uuid5(const char *ns, const char *name, size_t name_len, char out[37])
{
    uint8_t nsb[16] = {0};
    if (strlen(ns) != 36)
        return -1;
    for (size_t i = 0, nib = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ns[i] != '-')
                return -1;
            continue;
        }
        int v = ag_hexval(ns[i]);
        if (v < 0)
            return -1;
        nsb[nib / 2] |= (uint8_t)(nib % 2 ? v : v << 4);
        nib++;
    }
    struct sha1 c;
    uint8_t h[20];
    sha1_init(&c);
    sha1_update(&c, nsb, sizeof nsb);
    sha1_update(&c, name, name_len);
    sha1_final(&c, h);
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x50);
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[h[i] >> 4];
        *p++ = hex[h[i] & 15];
    }
    *p = 0;
    return 0;
}

/* --- lookup --- */

static pthread_once_t ids_once = PTHREAD_ONCE_INIT;

static void compute_ids(void)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(graphs); i++)
        AG_BUG_ON(ag_uuid5(AG_GRAPH_ASSISTANT_NS, graphs[i].graph_id, strlen(graphs[i].graph_id), assistant_ids[i]));
}

size_t ag_graph_count(void)
{
    return AG_ARRAY_LEN(graphs);
}

const struct ag_graph_info *ag_graph_at(size_t i)
{
    pthread_once(&ids_once, compute_ids);
    return i < AG_ARRAY_LEN(graphs) ? &graphs[i] : NULL;
}

const struct ag_graph_info *ag_graph_find_n(const char *id, size_t len)
{
    pthread_once(&ids_once, compute_ids);
    for (size_t i = 0; i < AG_ARRAY_LEN(graphs); i++)
        if (strlen(graphs[i].graph_id) == len && !memcmp(graphs[i].graph_id, id, len))
            return &graphs[i];
    return NULL;
}

const struct ag_graph_info *ag_graph_find(const char *graph_id)
{
    return ag_graph_find_n(graph_id, strlen(graph_id));
}

const char *ag_graph_resolve_assistant(const char *id)
{
    const struct ag_graph_info *g = ag_graph_find(id);
    return g ? g->assistant_id : id;
}
