-- 005_runs_no_metadata_gin.sql: runs lose their GIN index on metadata.
--
-- No endpoint searches runs by metadata (GET /threads/{id}/runs filters by status only), yet every
-- run row written paid for the index: the insert and the terminal update each added the metadata's
-- keys to the GIN pending list, which the insert that overflows it then merges in the foreground.
-- Measured with auto_explain on a durable echo run: the run insert was the most expensive part of
-- creating it. Runs of a thread are still found through runs_thread_created_idx.

DROP INDEX IF EXISTS runs_metadata_gin;
