-- perf/pgbench-insert.sql: one thread row per transaction (autocommit, so one commit per row), the
-- same row and statement pg_insert_bench sends through agentd's persistence layer
-- (AG_SQL_THREAD_INSERT in persist/statements.def, RETURNING list included).
--
-- Run by perf/bench-pg.sh as
--   pgbench -n -M prepared -c C -j J -T D -f perf/pgbench-insert.sql \
--           -D n=0 -D tag=HHHH -D owner=anonymous -D meta='<the metadata JSON>' ...
-- -M prepared makes every :variable a text parameter, as agentd sends them; the metadata is a
-- parameter cast to jsonb ($3::jsonb), so it is parsed on every insert in both programs.
--
-- Ids: the same scheme as pg_insert_bench, "%08x-TAG-4%03x-8000-%012x" of
-- (n * 2654435761 mod 2^32, tag, client_id, n) with n this client's 1-based transaction count
-- (pgbench variables live per client for the whole run). Unique by construction for
-- client_id < 4096 within one tag; the scrambled first group spreads inserts over the primary-key
-- btree as random UUIDs would. Building the string costs the server a few function calls that
-- agentd's rows do not (agentd sends the finished id).
\set n :n + 1
\set h (:n * 2654435761) % 4294967296
INSERT INTO threads (thread_id, owner, metadata)
VALUES (lpad(to_hex(:h::bigint), 8, '0') || '-' || :tag::text || '-4' || lpad(to_hex(:client_id::int), 3, '0')
        || '-8000-' || lpad(to_hex(:n::bigint), 12, '0'), :owner::text, :meta::jsonb)
RETURNING thread_id, status, metadata, "values", interrupts, config, created_at, updated_at, state_updated_at;
