-- 004_thread_events_trimmed.sql: how far the v2 event log of a thread has been trimmed.
--
-- agentd keeps a bounded number of events per thread (events.retain_per_thread) and deletes older
-- ones as new ones are written. A client resuming with `since` below the trimmed range must be told
-- that events are missing; a gap in seq alone does not say so (seq also jumps where a reservation of
-- an earlier process was never used).

ALTER TABLE threads ADD COLUMN events_trimmed_seq bigint NOT NULL DEFAULT 0 CHECK (events_trimmed_seq >= 0);
COMMENT ON COLUMN threads.events_trimmed_seq IS
    'Highest seq deleted from thread_events by retention; a resume from a seq below it has lost events.';
COMMENT ON COLUMN threads.last_seq IS
    'At least every seq ever handed out for this thread (v2 stream seq): agentd reserves seqs ahead (run creation reserves a block) so that no seq is reused after a crash, even for events not written yet. Grows only.';
