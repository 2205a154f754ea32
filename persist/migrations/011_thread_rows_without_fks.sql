-- 011_thread_rows_without_fks.sql: the rows under a thread (runs, checkpoints, checkpoint_blobs,
-- thread_events) no longer have foreign keys to threads; a trigger on threads deletes them with it, and
-- each statement that inserts them holds the thread row itself.
--
-- A foreign key checks every inserted row on its own: an SPI query and a FOR KEY SHARE lock of the
-- thread row, at the end of the statement. A run ended in its turn inserts its run, three checkpoints,
-- their channel values and its v2 batch, all under one thread whose row the same statement already
-- updates: six to eight checks of a lock it holds. Measured at 64 connections (runs.wait echo,
-- agentload -c 64 -d 6 -w 2 --pool 4000, 4 alternating rounds): Postgres 529 -> 471 CPU-us per run
-- without these four keys.
--
-- What the keys guaranteed, the statements keep: every insert under a thread is gated on a row of that
-- thread which the same statement updated, inserted or locked (FOR KEY SHARE), never on a plain read.
-- A thread deleted by a transaction that commits first is then not seen (the insert writes nothing),
-- and a delete that comes second waits for the insert's commit and its trigger removes what it wrote.
-- The cascade itself is the trigger below, one row at a time as ON DELETE CASCADE was. The keys to
-- assistants (runs, crons) and from crons to threads stay: those rows are written rarely.

ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_thread_id_fkey;
ALTER TABLE checkpoints DROP CONSTRAINT IF EXISTS checkpoints_thread_id_fkey;
ALTER TABLE checkpoint_blobs DROP CONSTRAINT IF EXISTS checkpoint_blobs_thread_id_fkey;
ALTER TABLE thread_events DROP CONSTRAINT IF EXISTS thread_events_thread_id_fkey;

CREATE FUNCTION agentd_thread_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM runs WHERE thread_id = OLD.thread_id;
    DELETE FROM checkpoints WHERE thread_id = OLD.thread_id;
    DELETE FROM checkpoint_blobs WHERE thread_id = OLD.thread_id;
    DELETE FROM thread_events WHERE thread_id = OLD.thread_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION agentd_thread_deleted() IS
    'The rows under a deleted thread go with it (runs, checkpoints, checkpoint_blobs, thread_events have no foreign key to threads).';

CREATE TRIGGER threads_deleted AFTER DELETE ON threads FOR EACH ROW EXECUTE FUNCTION agentd_thread_deleted();
