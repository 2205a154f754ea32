-- 009_checkpoint_blobs.sql: a checkpoint lists the version of each channel; a channel's value is stored
-- once per version, and a value that extends an array (messages) stores only what was appended.
--
-- Every checkpoint used to carry the whole state, and the thread row a copy of it: a thread of N turns
-- stored O(N²) bytes, and a run on a long conversation wrote its state several times over (measured at
-- turn 1,000 of an echo conversation: 741 kB of WAL per run, for 2 new messages). Now a run writes the
-- channels its steps changed, and of `messages` only the new ones: what a run writes no longer depends
-- on how long the conversation is.
--
-- checkpoint_blobs holds the values. A row is one channel at one version (the id of the checkpoint that
-- wrote it): with base NULL its value is the channel's whole value; otherwise its value is a JSON array
-- of the items appended to the value at version `base` (a chain down to a whole value; a fork appends to
-- an older version, so chains may branch). Values are JSON text: a state is read back by joining texts,
-- never parsed by Postgres.
--
-- agentd_channel_value, agentd_checkpoint_values and agentd_thread_values give back what the old
-- columns held; every read (state, history, forks, copy, v2 replays, Thread.values) goes through them.
-- threads."values" and checkpoints."values" are dropped: Thread.values is its latest root checkpoint's.

CREATE TABLE checkpoint_blobs (
    thread_id     text NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    checkpoint_ns text NOT NULL DEFAULT '',
    channel       text NOT NULL,
    version       text NOT NULL,
    base          text,
    value         text COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);
COMMENT ON TABLE checkpoint_blobs IS
    'Channel values of checkpoints, one row per channel per version (checkpoints.channel_versions names them). Rows of a rolled-back run go with its checkpoints; keep_latest prunes make the kept versions whole.';
COMMENT ON COLUMN checkpoint_blobs.version IS 'Id of the checkpoint that wrote this value of the channel.';
COMMENT ON COLUMN checkpoint_blobs.base IS
    'NULL: value is the whole value. Else value is a JSON array of items appended to the value at version base (same thread, namespace and channel).';
COMMENT ON COLUMN checkpoint_blobs.value IS 'JSON text.';

ALTER TABLE checkpoints ADD COLUMN channel_versions jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(channel_versions) = 'object');
COMMENT ON COLUMN checkpoints.channel_versions IS
    '{channel: version}: the checkpoint_blobs row of each channel of its values (agentd_checkpoint_values reads them).';

-- Existing checkpoints: each channel value becomes a whole value at the checkpoint's own version.
INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, base, value)
SELECT c.thread_id, c.checkpoint_ns, v.key, c.checkpoint_id, NULL, v.value::text
FROM checkpoints c CROSS JOIN LATERAL jsonb_each(c."values") v;
UPDATE checkpoints c SET channel_versions = coalesce(
    (SELECT jsonb_object_agg(v.key, c.checkpoint_id) FROM jsonb_each(c."values") v), '{}');

ALTER TABLE checkpoints DROP COLUMN "values";
ALTER TABLE threads DROP COLUMN "values";

-- The value of a channel at a version, as JSON text (NULL: no such row). An appended array is its whole
-- value's items followed by each row's, oldest first, joined as text.
CREATE FUNCTION agentd_channel_value(p_thread text, p_ns text, p_channel text, p_version text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH RECURSIVE c AS (
        SELECT b.base, b.value, 0 AS d FROM checkpoint_blobs b
        WHERE b.thread_id = p_thread AND b.checkpoint_ns = p_ns AND b.channel = p_channel AND b.version = p_version
        UNION ALL
        SELECT n.base, n.value, c.d + 1 FROM c CROSS JOIN LATERAL (
            SELECT b.base, b.value FROM checkpoint_blobs b WHERE b.thread_id = p_thread AND b.checkpoint_ns = p_ns
            AND b.channel = p_channel AND b.version = c.base LIMIT 1) n)
    SELECT CASE WHEN count(*) = 0 THEN NULL WHEN max(d) = 0 THEN min(value) ELSE '[' || coalesce(string_agg(nullif(btrim(substr(value, 2,
        greatest(length(value) - 2, 0))), ''), ',' ORDER BY d DESC), '') || ']' END FROM c
$$;

-- A checkpoint's values (ThreadState.values) from its channel_versions.
CREATE FUNCTION agentd_checkpoint_values(p_thread text, p_ns text, p_versions jsonb) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(('{' || string_agg(to_json(v.key)::text || ':' || agentd_channel_value(p_thread, p_ns, v.key,
        v.value #>> '{}'), ',') || '}')::json, '{}'::json)
    FROM jsonb_each(p_versions) v
$$;

-- Thread.values: its latest root checkpoint's values (NULL before the first).
CREATE FUNCTION agentd_thread_values(p_thread text) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT agentd_checkpoint_values(c.thread_id, c.checkpoint_ns, c.channel_versions) FROM checkpoints c
    WHERE c.thread_id = p_thread AND c.checkpoint_ns = '' ORDER BY c.checkpoint_id DESC LIMIT 1
$$;

-- The v2 event log (thread_events) keeps a state its checkpoints hold (a `values` event, a task's input)
-- as {"$agentd.state":{channel: version}}. A replay reads each batch through agentd_event_batch, which
-- puts {"$agentd.state":<the values>} in its place (as text: the batch is not parsed); agentd unwraps it.
-- Values whose versions are gone (a keep_latest prune, a rolled-back run) read back as {}.
CREATE FUNCTION agentd_event_batch(p_thread text, p_events text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN strpos(p_events, '{"$agentd.state":{') = 0 THEN p_events ELSE (
        SELECT string_agg(s.piece || CASE WHEN m.v IS NULL THEN '' ELSE '{"$agentd.state":' ||
            agentd_checkpoint_values(p_thread, '', m.v[1]::jsonb)::text || '}' END, '' ORDER BY s.i)
        FROM regexp_split_to_table(p_events, '\{"\$agentd\.state":(\{[^{}]*\})\}') WITH ORDINALITY s(piece, i)
        LEFT JOIN regexp_matches(p_events, '\{"\$agentd\.state":(\{[^{}]*\})\}', 'g') WITH ORDINALITY m(v, i)
        ON m.i = s.i) END
$$;

-- A run's output is most often its thread's state at its end: the values of its last checkpoint, which
-- is then named instead of stored again (RUN_OUTCOME reads them).
ALTER TABLE runs ADD COLUMN output_checkpoint text;
COMMENT ON COLUMN runs.output_checkpoint IS
    'When output is NULL and this is not: the output is the values of this root checkpoint of the run''s thread.';
