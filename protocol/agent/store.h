/* The store: long-term memory as JSON documents addressed by (namespace, key), per owner
 * (protocol.md §8, with LangGraph Platform semantics: namespaces are stored and echoed exactly as the
 * client wrote them; the owner column scopes them per identity). Items may carry a TTL in minutes;
 * an expired item is invisible to every read at once and deleted later by a sweeper on shard 0.
 *
 * Namespace labels are non-empty strings without '.' (the SDK joins them with '.' in GET queries).
 * Semantic search (`query`) and embedding (`index` on put) need an embedding index this server does
 * not have: they are refused with 422, never ignored. */
#ifndef AG_PROTOCOL_AGENT_STORE_H
#define AG_PROTOCOL_AGENT_STORE_H

struct ag_req;
struct ag_shard;

/* PUT /store/items {namespace, key, value, index?, ttl?}: upsert; 204. ttl: minutes (> 0) or null (a
 * fractional ttl sets the first expiry exactly; refreshes use it rounded up to whole minutes);
 * index: false, null or [] only. A put or delete that finds its item being written by another
 * transaction runs again after a short pause (503 with Retry-After after 10 s of that). */
int ag_store_put(struct ag_req *r);
/* GET /store/items?namespace=a.b&key=k[&refresh_ttl=bool]: the item
 * {namespace, key, value, created_at, updated_at}; 404 when missing or expired. refresh_ttl (default
 * true) restarts the TTL of an item that has one. */
int ag_store_get(struct ag_req *r);
/* DELETE /store/items {namespace, key}: 204, also when there was nothing to delete. */
int ag_store_delete(struct ag_req *r);
/* POST /store/items/search {namespace_prefix, filter?, limit?, offset?, query?, refresh_ttl?}:
 * {"items":[item + "score":null], "total": every match}; newest update first. filter: per top-level
 * value field, a value (containment) or {$eq|$ne|$gt|$gte|$lt|$lte: value}. limit 1..1000 (10),
 * offset >= 0. refresh_ttl (default true) restarts the TTL of the returned items. */
int ag_store_search(struct ag_req *r);
/* POST /store/namespaces {prefix?, suffix?, max_depth?, limit?, offset?}: {"namespaces":[[...],...]},
 * the distinct namespaces holding live items, sorted; prefix and suffix match label-wise ('*' matches
 * any label); max_depth cuts each namespace to that many labels before de-duplication. limit 1..1000
 * (100), offset >= 0. */
int ag_store_namespaces(struct ag_req *r);

/* Per-shard start (on_start, after ag_pg_start): on shard 0 with a database, arms the TTL sweeper,
 * which deletes expired items in bounded batches every few seconds. */
void ag_store_shard_start(struct ag_shard *s);
/* Per-shard exit: disarms the sweeper. */
void ag_store_shard_exit(struct ag_shard *s);

#endif
