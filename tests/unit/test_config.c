/* Configuration: defaults, file < environment < flags, and errors that name the key. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/log.h"
#include "server/config.h"

static char path[] = "/tmp/agentd-test-config-XXXXXX";

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static enum ag_config_status load(struct ag_config *cfg, char *err, int argc, char **argv)
{
    return ag_config_load(cfg, argc, argv, err, 512);
}

int main(void)
{
    struct ag_config cfg;
    char err[512];
    int fd = mkstemp(path);
    close(fd);
    unsetenv("PORT");
    unsetenv("HOST");
    unsetenv("AGENTD_SHARDS");
    unsetenv("AGENTD_LOG_LEVEL");
    unsetenv("DATABASE_URL");

    char *a0[] = {"agentd", NULL};
    CHECK(load(&cfg, err, 1, a0) == AG_CONFIG_RUN);
    CHECK(cfg.port == 2024 && !strcmp(cfg.host, "127.0.0.1") && cfg.http.max_header_bytes == 16384);
    CHECK(cfg.http.max_body_bytes == 10u << 20 && cfg.shards == 0 && cfg.log_level == AG_LOG_INFO);
    ag_config_free(&cfg);

    write_file("{\"port\": 3000, \"host\": \"0.0.0.0\", \"limits\": {\"max_body_bytes\": 1000}}");
    char *a1[] = {"agentd", "--config", path, NULL};
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_RUN);
    CHECK(cfg.port == 3000 && !strcmp(cfg.host, "0.0.0.0") && cfg.http.max_body_bytes == 1000);
    ag_config_free(&cfg);

    setenv("PORT", "4000", 1);
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_RUN);
    CHECK(cfg.port == 4000); /* environment over file */
    ag_config_free(&cfg);

    char *a2[] = {"agentd", "--config", path, "--port", "5000", NULL};
    CHECK(load(&cfg, err, 5, a2) == AG_CONFIG_RUN);
    CHECK(cfg.port == 5000); /* flag over environment */
    ag_config_free(&cfg);
    unsetenv("PORT");

    write_file("{\"limits\": {\"max_bogus\": 1}}");
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_BAD);
    CHECK(strstr(err, "limits.max_bogus") != NULL);
    ag_config_free(&cfg);

    write_file("{\"port\": \"80\"}");
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_BAD);
    CHECK(strstr(err, "'port'") != NULL);
    ag_config_free(&cfg);

    write_file("{\"port\": 70000}");
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_BAD);
    ag_config_free(&cfg);

    write_file("{\"port\": ");
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_BAD);
    ag_config_free(&cfg);

    write_file("{\"log_level\": \"loud\"}");
    CHECK(load(&cfg, err, 3, a1) == AG_CONFIG_BAD);
    CHECK(strstr(err, "log_level") != NULL);
    ag_config_free(&cfg);

    setenv("AGENTD_SHARDS", "two", 1);
    CHECK(load(&cfg, err, 1, a0) == AG_CONFIG_BAD);
    CHECK(strstr(err, "AGENTD_SHARDS") != NULL);
    ag_config_free(&cfg);
    unsetenv("AGENTD_SHARDS");

    char *a3[] = {"agentd", "--frobnicate", NULL};
    CHECK(load(&cfg, err, 2, a3) == AG_CONFIG_BAD);
    ag_config_free(&cfg);

    unlink(path);
    return CHECK_DONE();
}
