-- 007_checkpoints_by_id.sql: a thread's checkpoints are ordered by their id, not by when they were written.
--
-- Checkpoint ids are UUID6 minted on the thread's owner shard, whose text grows with every checkpoint
-- (graph/ids.h). created_at is when the row was written, and writes of different runs may land out
-- of order (a run's end can wait for its promotion while the runs after it are written at once), so
-- "the latest checkpoint" by created_at could be an older run's and a thread's state went back.
-- Every query now orders by checkpoint_id through the primary key; the created_at index has no use.

DROP INDEX IF EXISTS checkpoints_history_idx;
