/* Assistants endpoints (protocol.md §3; LangGraph Platform's shapes): a graph plus its configuration,
 * versioned. Served on any shard, straight against Postgres.
 *
 * Every registered graph (graph/registry.h) has a system assistant (owner 'system', id UUID5 of the
 * graph id, metadata {"created_by":"system"}, version 1) that every caller sees and nobody may change
 * (403). Wherever a path takes an assistant id, a graph id stands for its system assistant. A caller
 * sees its own assistants and the system ones. Ids are arbitrary client strings of at most 256
 * characters (longer: 422). Bodies are validated strictly: an unknown field is a 422. */
#ifndef AG_PROTOCOL_AGENT_ASSISTANTS_H
#define AG_PROTOCOL_AGENT_ASSISTANTS_H

#include <stddef.h>

#include <libpq-fe.h>

struct ag_req;
struct ag_shard;

/* The migration seed (persist/migrate.h), blocking, inside the migration transaction: inserts the
 * system assistant of every registered graph and its version 1 when missing (idempotent; existing
 * rows are left as they are). Returns 0, or -1 with the reason in err. */
int ag_assistants_seed(PGconn *pg, char *err, size_t errlen);

/* POST /assistants: AssistantCreate {graph_id, assistant_id?, name?="Untitled", description?,
 * config?, context?, metadata?, if_exists?="raise"|"do_nothing"} → 200 Assistant (version 1).
 * 404 unknown graph; 409 id taken (with "raise", or when the existing row is not visible); 400
 * config.configurable and context both non-empty. */
int ag_assistants_create(struct ag_req *r);
/* GET /assistants?limit=&offset= → {"assistants":[...newest first],"total":n} (limit 1..1000,
 * default 1000). */
int ag_assistants_list(struct ag_req *r);
/* POST /assistants/search {metadata?, graph_id?, name?, limit?=10 (1..1000), offset?=0, sort_by?,
 * sort_order?, select?} → [Assistant] with X-Pagination-Total, and X-Pagination-Next when another
 * page follows. 404 unknown graph_id. */
int ag_assistants_search(struct ag_req *r);
/* POST /assistants/count {metadata?, graph_id?, name?} → a bare integer. */
int ag_assistants_count(struct ag_req *r);
/* GET /assistants/{assistant_id} → Assistant, 404. */
int ag_assistants_get(struct ag_req *r);
/* PATCH /assistants/{assistant_id} {graph_id?, config?, context?, metadata?, name?, description?}:
 * a new version with only the given fields changed (metadata is merged key by key) → Assistant.
 * 404; 403 system assistant; 404 unknown graph; 400 configurable and context both non-empty. */
int ag_assistants_patch(struct ag_req *r);
/* DELETE /assistants/{assistant_id}?delete_threads=false → 204 (versions, runs and crons go too;
 * with delete_threads, the caller's threads whose metadata.assistant_id is this id). 404; 403. */
int ag_assistants_delete(struct ag_req *r);
/* POST /assistants/{assistant_id}/versions {metadata?, limit?=10, offset?=0} → [AssistantVersion]
 * newest first. 404. */
int ag_assistants_versions(struct ag_req *r);
/* POST /assistants/{assistant_id}/latest {version} → Assistant pinned to that version. 404 unknown
 * assistant or version; 403. */
int ag_assistants_set_latest(struct ag_req *r);
/* GET /assistants/{assistant_id}/schemas → {graph_id, input_schema, output_schema, state_schema,
 * config_schema, context_schema}. 404. */
int ag_assistants_schemas(struct ag_req *r);
/* GET /assistants/{assistant_id}/graph?xray= → {nodes, edges}. xray: a boolean or a positive
 * integer, else 422. 404. */
int ag_assistants_graph(struct ag_req *r);
/* GET /assistants/{assistant_id}/subgraphs[/{namespace}]?recurse= → {namespace: schemas} (the
 * built-in graphs have no subgraphs: {}). 404. */
int ag_assistants_subgraphs(struct ag_req *r);

#endif
