/* runtime/run_spec: the typed mapping of a run's fields (a RunCreate body, a v2 command's parameters,
 * a cron's payload) to struct ag_run_spec, and a cron firing's spec, without HTTP validation. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "graph/registry.h"
#include "runtime/run_spec.h"

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    CHECKF(v != NULL, "bad test JSON: %s", text);
    return v;
}

/* Maps text (stateless as given); returns whether it mapped, err filled otherwise. */
static bool map(const char *text, bool stateless, struct ag_run_spec *sp, char *err, size_t n)
{
    json_t *body = parse(text);
    memset(sp, 0, sizeof *sp);
    bool ok = ag_run_spec_from_payload(body, stateless, sp, err, n);
    json_decref(body);
    return ok;
}

static const char *system_assistant(const char *graph_id)
{
    return ag_graph_resolve_assistant(graph_id);
}

int main(void)
{
    struct ag_run_spec sp;
    char err[200] = "";

    CHECK(ag_run_spec_mode("values") == AG_SM_VALUES);
    CHECK(ag_run_spec_mode("messages-tuple") == AG_SM_MESSAGES_TUPLE);
    CHECK(ag_run_spec_mode("checkpoints") == AG_SM_CHECKPOINTS);
    CHECK(ag_run_spec_mode("value") == 0);

    /* Every field a run reads, mapped; thread_id left as it is. */
    json_t *body = parse("{\"assistant_id\":\"echo\",\"input\":{\"a\":1},\"command\":{\"resume\":2},"
                         "\"config\":{\"configurable\":{\"k\":1}},\"context\":{\"c\":1},\"metadata\":{\"m\":1},"
                         "\"stream_mode\":[\"updates\",\"custom\"],\"stream_subgraphs\":true,\"stream_resumable\":true,"
                         "\"interrupt_before\":\"*\",\"interrupt_after\":[\"n\"],\"checkpoint_id\":\"top\","
                         "\"checkpoint\":{\"checkpoint_id\":\"inner\"},\"multitask_strategy\":\"enqueue\","
                         "\"on_disconnect\":\"continue\",\"if_not_exists\":\"create\",\"after_seconds\":2.5,"
                         "\"durability\":\"async\",\"timezone\":\"ignored\"}");
    memset(&sp, 0, sizeof sp);
    snprintf(sp.thread_id, sizeof sp.thread_id, "kept");
    CHECKF(ag_run_spec_from_payload(body, false, &sp, err, sizeof err), "%s", err);
    CHECK_STREQ(sp.thread_id, "kept");
    CHECK_STREQ(sp.assistant_id, system_assistant("echo"));
    CHECK(strlen(sp.assistant_id) == 36);
    CHECK(sp.input == json_object_get(body, "input") && sp.command == json_object_get(body, "command"));
    CHECK(sp.config == json_object_get(body, "config") && sp.context == json_object_get(body, "context"));
    CHECK(sp.metadata == json_object_get(body, "metadata"));
    CHECK(sp.stream_mode == json_object_get(body, "stream_mode"));
    CHECK(sp.modes == (AG_SM_UPDATES | AG_SM_CUSTOM));
    CHECK(sp.subgraphs && sp.resumable);
    CHECK(json_is_string(sp.interrupt_before) && json_array_size(sp.interrupt_after) == 1);
    CHECK_STREQ(sp.checkpoint_id, "inner"); /* checkpoint.checkpoint_id wins */
    CHECK(sp.mt == AG_MT_ENQUEUE);
    CHECK(!sp.cancel_on_disconnect);
    CHECK(sp.create_thread && !sp.stateless && !sp.delete_thread);
    CHECK(sp.after_seconds == 2.5);
    CHECK(sp.durability == AG_DURABILITY_ASYNC);
    ag_run_spec_clear(&sp);
    CHECK(json_object_get(body, "input")->refcount == 1); /* the spec's references were released */
    json_decref(body);

    /* Defaults: values mode, reject, cancel on disconnect; a graph id that is not one stays as given. */
    CHECK(map("{\"assistant_id\":\"not-a-graph\"}", false, &sp, err, sizeof err));
    CHECK_STREQ(sp.assistant_id, "not-a-graph");
    CHECK(sp.modes == AG_SM_VALUES && sp.stream_mode == NULL);
    CHECK(sp.mt == AG_MT_REJECT && sp.cancel_on_disconnect && !sp.create_thread);
    CHECK(sp.input == NULL && sp.durability == AG_DURABILITY_DEFAULT && sp.checkpoint_id[0] == 0);
    ag_run_spec_clear(&sp);

    /* durability wins over checkpoint_during; checkpoint_during alone: false is exit, true async. */
    static const struct {
        const char *body;
        enum ag_durability want;
    } dur[] = {
        {"{\"durability\":\"sync\"}", AG_DURABILITY_SYNC},
        {"{\"durability\":\"exit\"}", AG_DURABILITY_EXIT},
        {"{\"checkpoint_during\":false}", AG_DURABILITY_EXIT},
        {"{\"checkpoint_during\":true}", AG_DURABILITY_ASYNC},
        {"{\"checkpoint_during\":false,\"durability\":\"sync\"}", AG_DURABILITY_SYNC},
        {"{\"checkpoint_during\":null}", AG_DURABILITY_DEFAULT},
    };
    for (size_t i = 0; i < sizeof dur / sizeof dur[0]; i++) {
        CHECKF(map(dur[i].body, false, &sp, err, sizeof err), "%s: %s", dur[i].body, err);
        CHECKF(sp.durability == dur[i].want, "%s: %d", dur[i].body, (int)sp.durability);
        ag_run_spec_clear(&sp);
    }

    /* One stream mode as a string becomes a list of one. */
    CHECK(map("{\"stream_mode\":\"messages\"}", false, &sp, err, sizeof err));
    CHECK(sp.modes == AG_SM_MESSAGES && json_array_size(sp.stream_mode) == 1);
    CHECK(sp.assistant_id[0] == 0); /* absent: left as it is */
    ag_run_spec_clear(&sp);

    /* Stateless: a new thread, deleted unless on_completion is keep. */
    CHECK(map("{}", true, &sp, err, sizeof err));
    CHECK(sp.stateless && sp.create_thread && sp.delete_thread);
    ag_run_spec_clear(&sp);
    CHECK(map("{\"on_completion\":\"keep\"}", true, &sp, err, sizeof err));
    CHECK(sp.stateless && !sp.delete_thread);
    ag_run_spec_clear(&sp);

    /* What cannot become a spec is refused with one plain reason, and the spec is left empty. */
    static const struct {
        const char *body, *reason;
    } refused[] = {
        {"[]", "the run fields are not an object"},
        {"{\"assistant_id\":5}", "assistant_id"},
        {"{\"stream_mode\":\"nope\"}", "stream_mode"},
        {"{\"stream_mode\":[]}", "stream_mode"},
        {"{\"command\":[]}", "command"},
        {"{\"interrupt_before\":[1]}", "interrupt_before"},
        {"{\"multitask_strategy\":\"sometimes\"}", "multitask_strategy"},
        {"{\"after_seconds\":-1}", "after_seconds"},
        {"{\"durability\":\"later\"}", "durability"},
        {"{\"checkpoint_during\":1}", "checkpoint_during"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        err[0] = 0;
        bool ok = map(refused[i].body, false, &sp, err, sizeof err);
        CHECKF(!ok && strstr(err, refused[i].reason), "%s: ok=%d err=%s", refused[i].body, ok, err);
        CHECK(sp.input == NULL && sp.stream_mode == NULL && sp.modes == 0);
    }

    /* A cron's firing: the stored payload with the cron's assistant and metadata. */
    json_t *payload = parse("{\"input\":{},\"stream_mode\":[\"updates\"],\"timezone\":\"Europe/Paris\"}");
    CHECKF(ag_run_spec_for_cron("c-1", "echo", true, payload, NULL, &sp, err, sizeof err), "%s", err);
    CHECK_STREQ(sp.assistant_id, system_assistant("echo"));
    CHECK_STREQ(json_string_value(json_object_get(sp.metadata, "cron_id")), "c-1");
    CHECK(json_object_size(sp.metadata) == 1);
    CHECK(sp.modes == AG_SM_UPDATES && sp.stateless && sp.create_thread && sp.delete_thread);
    ag_run_spec_clear(&sp);
    CHECK(ag_run_spec_for_cron("c-1", "echo", true, payload, "keep", &sp, err, sizeof err));
    CHECK(!sp.delete_thread);
    ag_run_spec_clear(&sp);
    CHECK(ag_run_spec_for_cron("c-1", "echo", false, payload, "keep", &sp, err, sizeof err));
    CHECK(!sp.stateless && !sp.delete_thread && !sp.create_thread);
    ag_run_spec_clear(&sp);
    json_decref(payload);

    /* A payload that is not an object fires with the defaults. */
    payload = json_string("odd");
    CHECK(ag_run_spec_for_cron("c-2", "echo", false, payload, NULL, &sp, err, sizeof err));
    CHECK(sp.modes == AG_SM_VALUES && sp.input == NULL);
    ag_run_spec_clear(&sp);
    json_decref(payload);

    /* The config is checked against a system assistant's graph. */
    payload = parse("{\"config\":{\"configurable\":{\"tokens\":1e12}}}");
    CHECK(!ag_run_spec_for_cron("c-3", "stress", false, payload, NULL, &sp, err, sizeof err));
    CHECKF(strstr(err, "config.configurable.tokens") != NULL, "%s", err);
    CHECK(sp.config == NULL);
    const char *key = NULL;
    char msg[200];
    CHECK(!ag_run_spec_check_config(system_assistant("stress"), json_object_get(payload, "config"), &key, msg,
                                    sizeof msg));
    CHECK_STREQ(key, "tokens");
    CHECK(ag_run_spec_check_config(system_assistant("echo"), json_object_get(payload, "config"), &key, msg,
                                   sizeof msg));
    json_decref(payload);
    return CHECK_DONE();
}
