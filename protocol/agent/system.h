/* Operational endpoints: GET /ok, /live, /ready, /health, /info, /metrics. Only /health and /ready
 * look at the database. */
#ifndef AG_PROTOCOL_AGENT_SYSTEM_H
#define AG_PROTOCOL_AGENT_SYSTEM_H

struct ag_req;

/* 200 {"ok":true} */
int ag_sys_ok(struct ag_req *r);
/* 200 {"status":"alive"}: the process answers. */
int ag_sys_live(struct ag_req *r);
/* 200 {"status":"ready"}, or 503 while draining or while the database is not usable. */
int ag_sys_ready(struct ag_req *r);
/* 200 {"status":"healthy","database":"connected"} after a round trip to Postgres, else 503. */
int ag_sys_health(struct ag_req *r);
/* 200 with name, version, shard count and feature flags. */
int ag_sys_info(struct ag_req *r);
/* 200 Prometheus text: every registered metric (each layer's stats.def, core/stats.h), per shard. */
int ag_sys_metrics(struct ag_req *r);

#endif
