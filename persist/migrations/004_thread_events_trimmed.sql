-- 004_thread_events_trimmed.sql: the v2 event log stored as batches, and how far it was trimmed.
--
-- A run's turn produces its v2 events together (a values event carries the whole state, a tasks
-- event the node's input), and they are written together: one row per thread per write, holding
-- the JSON array agentd already encoded, instead of one jsonb row per event. Replays are rare and
-- read batches back in seq order; the server filters them. This keeps the log's cost per run at one
-- heap tuple and one index entry (measured: per-event jsonb rows doubled the WAL of a durable echo
-- run). No agentd before this migration wrote thread_events, so the table is replaced.
--
-- agentd keeps a bounded number of events per thread (events.retain_per_thread) and deletes whole
-- batches that fall out of it. A client resuming with `since` below the trimmed range must be told
-- that events are missing; a gap in seq alone does not say so (seq also jumps where a reservation of
-- an earlier process was never used).

DROP TABLE thread_events;
CREATE TABLE thread_events (
    thread_id  text        NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    last_seq   bigint      NOT NULL CHECK (last_seq >= 1),
    first_seq  bigint      NOT NULL CHECK (first_seq >= 1 AND first_seq <= last_seq),
    events     text        COMPRESSION lz4 NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, last_seq)
);
COMMENT ON TABLE thread_events IS
    'The v2 event log of each thread in batches (one per write), for resume with `since` across reconnects and restarts. Bounded per thread by agentd (events.retain_per_thread); trimmed batches are gone, seq never restarts (threads.last_seq).';
COMMENT ON COLUMN thread_events.last_seq IS 'Seq of the batch''s last event (replays read batches with last_seq > since, in order).';
COMMENT ON COLUMN thread_events.first_seq IS 'Seq of the batch''s first event.';
COMMENT ON COLUMN thread_events.events IS
    'JSON array of events, seq ascending, each [seq, run id, method, namespace (array of strings), data, timestamp in ms]: the envelope''s parts (method is lifecycle, values, updates, messages, input.requested, custom, checkpoints or tasks).';

ALTER TABLE threads ADD COLUMN events_trimmed_seq bigint NOT NULL DEFAULT 0 CHECK (events_trimmed_seq >= 0);
COMMENT ON COLUMN threads.events_trimmed_seq IS
    'Highest seq deleted from thread_events by retention; a resume from a seq below it has lost events.';
COMMENT ON COLUMN threads.last_seq IS
    'At least every seq ever handed out for this thread (v2 stream seq): agentd reserves seqs ahead (run creation reserves a block) so that no seq is reused after a crash, even for events not written yet. Grows only.';
