-- 010_threads_updated_unindexed.sql: threads.updated_at is no longer indexed, so that a run's update of
-- its thread row is a HOT update (no index entries written).
--
-- Every run writes its thread's updated_at (RUN_RECORD, RUN_CREATE, RUN_FINISH). With updated_at in
-- an index, no such update could be HOT: each wrote a new entry into all six indexes of threads,
-- the GIN on metadata among them. A run on an idle thread that ends in its turn changes no other
-- indexed column (its status stays idle, its metadata names the same graph), so with this index gone
-- its thread update writes no index at all. What it served, POST /threads/search with
-- sort_by=updated_at, now sorts the owner's matching threads (a top-N sort, as any other filter does).
DROP INDEX IF EXISTS threads_owner_updated_idx;
