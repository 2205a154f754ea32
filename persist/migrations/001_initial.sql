-- 001_initial.sql: agentd's initial schema: every resource the server keeps in Postgres.
--
-- Applied by agentd itself, once, inside one transaction under an advisory lock; agentd records
-- it in its own `schema_version` table. So: no BEGIN/COMMIT here, no IF NOT EXISTS (a half-applied
-- or repeated migration must fail loudly), core PostgreSQL 15 only (no extensions;
-- gen_random_uuid() is core since 13).
--
-- Conventions
-- * Ids are text: client-chosen ids are arbitrary strings; server-minted ones are UUID text.
-- * Every row that belongs to a caller carries `owner` (the auth identity; 'anonymous' until auth
--   lands, 'system' for the built-in assistants). Reads filter on it and a foreign row answers 404.
--   Rows that hang off a thread or an assistant (checkpoints, thread_events, assistant_versions)
--   have no owner of their own: they are reached only through their parent, whose owner is checked.
-- * JSON is jsonb. Object-shaped columns are CHECKed to be objects so a stray scalar cannot reach
--   a client. Containment filters (`metadata @> $1`) are served by GIN jsonb_path_ops indexes,
--   which support @> (and jsonpath @? @@) but not the key-exists operators (? ?| ?&).
-- * updated_at is written by agentd in the same statement that changes the row (no triggers: the
--   server already knows when it writes, and triggers would cost on the hot paths).
-- * Timestamps are timestamptz. Defaults use now() (transaction start) except where rows of one
--   coalesced transaction must stay ordered (checkpoints, thread_events: clock_timestamp()).
-- * Status enums are text + CHECK, not Postgres enum types: adding a value later is a one-line
--   constraint swap inside a transaction.

------------------------------------------------------------------------------------------------
-- Assistants
------------------------------------------------------------------------------------------------

CREATE TABLE assistants (
    assistant_id text        PRIMARY KEY DEFAULT gen_random_uuid()::text,
    owner        text        NOT NULL DEFAULT 'anonymous' CHECK (owner <> ''),
    graph_id     text        NOT NULL,
    name         text        NOT NULL,
    description  text,
    config       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    context      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    metadata     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    version      integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE assistants IS
    'A graph plus its configuration. The row holds the current (pinned) version, copied from assistant_versions.';
COMMENT ON COLUMN assistants.assistant_id IS
    'Client-chosen string or server-minted UUID; built-in assistants use UUID5(6ba7b821-9dad-11d1-80b4-00c04fd430c8, graph_id).';
COMMENT ON COLUMN assistants.owner IS
    'Auth identity that owns the row; ''system'' for the built-in per-graph assistants, visible to every caller.';
COMMENT ON COLUMN assistants.graph_id IS 'Name of a graph in the server config.';
COMMENT ON COLUMN assistants.config IS 'RunnableConfig fragment (configurable, tags, recursion_limit, ...).';
COMMENT ON COLUMN assistants.context IS 'Runtime context; kept in sync with config.configurable by the server.';
COMMENT ON COLUMN assistants.version IS 'Version currently pinned; a row with this number exists in assistant_versions.';

-- Search/list: owner IN (caller, 'system'), default order created_at DESC, tie-break assistant_id.
CREATE INDEX assistants_owner_created_idx ON assistants (owner, created_at DESC, assistant_id);
-- Search by graph_id; graph-id -> assistant resolution.
CREATE INDEX assistants_owner_graph_idx ON assistants (owner, graph_id);
CREATE INDEX assistants_metadata_gin ON assistants USING gin (metadata jsonb_path_ops);

CREATE TABLE assistant_versions (
    assistant_id text        NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version      integer     NOT NULL CHECK (version >= 1),
    graph_id     text        NOT NULL,
    name         text        NOT NULL,
    description  text,
    config       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    context      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    metadata     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (assistant_id, version)
);
COMMENT ON TABLE assistant_versions IS
    'Immutable history of an assistant: version 1 at create, max+1 on every update. The PK serves "newest first" listing and pinning.';

------------------------------------------------------------------------------------------------
-- Threads
------------------------------------------------------------------------------------------------

-- fillfactor 80: threads are updated in place many times per run (status busy/idle, the cached
-- state, and last_seq on every batch of events). Free space on the page lets the updates that touch
-- no indexed column (last_seq bumps above all) be HOT updates, with no index writes.
CREATE TABLE threads (
    thread_id        text        PRIMARY KEY,
    owner            text        NOT NULL DEFAULT 'anonymous' CHECK (owner <> ''),
    status           text        NOT NULL DEFAULT 'idle'
                                 CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    metadata         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    "values"         jsonb       CHECK (jsonb_typeof("values") = 'object'),
    interrupts       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(interrupts) = 'object'),
    config           jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    state_updated_at timestamptz NOT NULL DEFAULT now(),
    ttl_minutes      integer     CHECK (ttl_minutes > 0),
    ttl_strategy     text        CHECK (ttl_strategy IN ('delete', 'keep_latest')),
    expires_at       timestamptz,
    last_seq         bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
) WITH (fillfactor = 80);
COMMENT ON TABLE threads IS
    'A conversation: status, metadata and a cache of its latest root state. Owns its runs, checkpoints, events and thread-bound crons (FK cascade).';
COMMENT ON COLUMN threads.thread_id IS
    'Client-chosen string or server-minted UUID (no column default: the accepting shard mints an id that hashes to itself).';
COMMENT ON COLUMN threads.status IS
    'idle | busy (a run is pending or running) | interrupted (waiting for a resume) | error (last run failed).';
COMMENT ON COLUMN threads.metadata IS
    'Client metadata plus server-written keys: owner, assistant_id, graph_id (graph used by /state), thread_name.';
COMMENT ON COLUMN threads."values" IS
    'Cache of the latest root checkpoint''s values (LG Thread.values); NULL until the first checkpoint. Checkpoints are the truth.';
COMMENT ON COLUMN threads.interrupts IS
    'Cache of pending interrupts as LG Thread.interrupts: {task_id: [{"value":..., "id":"<32 hex>"}]}; {} when none.';
COMMENT ON COLUMN threads.config IS 'Config of the last run on the thread (LG Thread.config).';
COMMENT ON COLUMN threads.state_updated_at IS 'When "values"/interrupts last changed (LG Thread.state_updated_at).';
COMMENT ON COLUMN threads.ttl_minutes IS 'Thread TTL from create/update (LG ttl.ttl); NULL = keep forever.';
COMMENT ON COLUMN threads.ttl_strategy IS 'What the sweeper does at expires_at (LG ttl.strategy); NULL with ttl_minutes NULL.';
COMMENT ON COLUMN threads.expires_at IS
    'When the sweeper may act on the thread; NULL = never. Also set on the ephemeral thread of a stateless run as a leak guard (cleared by on_completion=keep). The sweeper skips busy threads.';
COMMENT ON COLUMN threads.last_seq IS
    'Last seq handed out in thread_events for this thread (v2 stream seq). Invariant: >= max(thread_events.seq) of the thread, written in the same transaction as the events, so seq keeps growing after old events are trimmed or the server restarts.';

-- Search/list: owner filter, sort by created_at or updated_at (DESC default), tie-break thread_id.
CREATE INDEX threads_owner_created_idx ON threads (owner, created_at DESC, thread_id);
CREATE INDEX threads_owner_updated_idx ON threads (owner, updated_at DESC, thread_id);
CREATE INDEX threads_owner_status_idx  ON threads (owner, status);
CREATE INDEX threads_metadata_gin ON threads USING gin (metadata jsonb_path_ops);
-- No GIN on "values": it is rewritten on every run and can be large (whole message history), so
-- such an index would be the most expensive write on the hottest update path; LG's rarely used
-- `values` search filter runs as a recheck over the owner's threads instead.
-- TTL sweeper: WHERE expires_at <= now() ORDER BY expires_at.
CREATE INDEX threads_expires_idx ON threads (expires_at) WHERE expires_at IS NOT NULL;

------------------------------------------------------------------------------------------------
-- Runs
------------------------------------------------------------------------------------------------

CREATE TABLE runs (
    run_id             text        PRIMARY KEY DEFAULT gen_random_uuid()::text,
    thread_id          text        NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    -- Deleting an assistant deletes its runs (Aegra behaviour, pinned by its conformance tests).
    assistant_id       text        NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    owner              text        NOT NULL DEFAULT 'anonymous' CHECK (owner <> ''),
    status             text        NOT NULL DEFAULT 'pending'
                                   CHECK (status IN ('pending', 'running', 'success', 'error', 'timeout',
                                                     'interrupted')),
    metadata           jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    kwargs             jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(kwargs) = 'object'),
    multitask_strategy text        NOT NULL DEFAULT 'reject'
                                   CHECK (multitask_strategy IN ('reject', 'interrupt', 'rollback', 'enqueue')),
    output             jsonb,
    error              text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    not_before         timestamptz,
    started_at         timestamptz,
    ended_at           timestamptz,
    attempt            integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    claimed_by         text,
    lease_expires_at   timestamptz
);
COMMENT ON TABLE runs IS
    'One execution of an assistant''s graph on a thread. pending -> running -> success|error|timeout|interrupted; terminal writes are compare-and-set on status IN (pending, running).';
COMMENT ON COLUMN runs.run_id IS
    'Server-minted; should be a time-ordered UUIDv7 from agentd (the gen_random_uuid() v4 default is only a fallback).';
COMMENT ON COLUMN runs.assistant_id IS 'Resolved assistant id (a graph id is mapped to its UUID5 first).';
COMMENT ON COLUMN runs.metadata IS 'Run metadata from the request (LG Run.metadata), searchable.';
COMMENT ON COLUMN runs.kwargs IS
    'Everything needed to (re)start the run after a restart, as LG Run.kwargs: input, command, config (merged, configurable.thread_id/run_id pinned), context, stream_mode, subgraphs, interrupt_before, interrupt_after, checkpoint, on_disconnect, on_completion (stateless: delete|keep the thread), webhook, temporary, resumable, graph_id, assistant version.';
COMMENT ON COLUMN runs.output IS 'Final values once terminal (returned by /wait and /join, also after a restart); NULL while active.';
COMMENT ON COLUMN runs.error IS 'Error text of a failed run (error_message on the wire); NULL otherwise.';
COMMENT ON COLUMN runs.not_before IS 'Earliest start (RunCreate.after_seconds); NULL = as soon as admitted.';
COMMENT ON COLUMN runs.started_at IS 'When the engine moved the run to running; NULL while pending.';
COMMENT ON COLUMN runs.ended_at IS 'When the run reached a terminal status; NULL while active.';
COMMENT ON COLUMN runs.attempt IS
    'Times execution was started; a run found running after a crash is retried from its last checkpoint or failed once a limit is reached.';
COMMENT ON COLUMN runs.claimed_by IS
    'Id of the agentd instance (a per-boot id) executing or queueing the run; NULL when unclaimed. At start-up an instance takes over active runs whose claimant is gone.';
COMMENT ON COLUMN runs.lease_expires_at IS
    'Claim lease, renewed by the claimant while the run is active; an expired lease means the claimant died (multi-instance recovery).';

-- GET /threads/{id}/runs: WHERE thread_id ORDER BY created_at DESC, run_id DESC. Also serves the
-- FK cascade. created_at defaults to now(), equal for every run of one coalesced transaction, so
-- run_id breaks ties: agentd should mint time-ordered run ids (UUIDv7, as LangGraph does).
CREATE INDEX runs_thread_created_idx ON runs (thread_id, created_at DESC, run_id DESC);
-- Active runs: per-thread admission (multitask strategies, enqueue FIFO order), restart recovery
-- and the lease reaper. Small, because almost every run is terminal.
CREATE INDEX runs_active_idx ON runs (thread_id, created_at, run_id) WHERE status IN ('pending', 'running');
-- FK cascade from assistants (without it, deleting an assistant scans runs).
CREATE INDEX runs_assistant_idx ON runs (assistant_id);
CREATE INDEX runs_metadata_gin ON runs USING gin (metadata jsonb_path_ops);

------------------------------------------------------------------------------------------------
-- Checkpoints (thread state after each superstep)
------------------------------------------------------------------------------------------------

CREATE TABLE checkpoints (
    thread_id            text        NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    checkpoint_ns        text        NOT NULL DEFAULT '',
    checkpoint_id        text        NOT NULL,
    parent_checkpoint_id text,
    run_id               text,
    step                 integer     NOT NULL,
    source               text        NOT NULL CHECK (source IN ('input', 'loop', 'update', 'fork')),
    "values"             jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof("values") = 'object'),
    next                 text[]      NOT NULL DEFAULT '{}',
    tasks                jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tasks) = 'array'),
    metadata             jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
COMMENT ON TABLE checkpoints IS
    'Snapshot of a thread''s state after a superstep (or a state update/fork); /state and /history read it. Append-only except rollback and thread delete.';
COMMENT ON COLUMN checkpoints.checkpoint_ns IS 'Empty string at the root; subgraph checkpoints use ''node:<task-id>'' (levels joined with ''|'').';
COMMENT ON COLUMN checkpoints.checkpoint_id IS
    'Time-ordered UUID (v6 or v7) text, so lexical order is creation order within a thread (history `before` paging).';
COMMENT ON COLUMN checkpoints.parent_checkpoint_id IS 'Previous checkpoint in the same namespace; NULL for the first.';
COMMENT ON COLUMN checkpoints.run_id IS
    'Run that wrote it (multitask rollback deletes by it); NULL for POST /threads/{id}/state. Deliberately no FK: deleting a run record must not erase thread history.';
COMMENT ON COLUMN checkpoints.step IS 'Superstep number: -1 for the input checkpoint, then 0, 1, ...';
COMMENT ON COLUMN checkpoints.source IS 'input | loop | update | fork (LangGraph checkpoint metadata.source).';
COMMENT ON COLUMN checkpoints."values" IS 'Channel values (ThreadState.values).';
COMMENT ON COLUMN checkpoints.next IS 'Nodes scheduled next; empty when the graph has finished (ThreadState.next).';
COMMENT ON COLUMN checkpoints.tasks IS
    'Pending tasks: [{"id","name","error","interrupts":[{"value","id"}],"result"?...}] (ThreadState.tasks); pending interrupts are read from here.';
COMMENT ON COLUMN checkpoints.metadata IS
    'Checkpoint metadata (source, step, parents, run/thread/graph ids); history `metadata` filter = @> recheck within the thread.';
COMMENT ON COLUMN checkpoints.created_at IS
    'clock_timestamp() so rows inserted by one coalesced transaction still differ; order by (created_at, checkpoint_id) for ties.';

-- History and latest state: WHERE thread_id AND checkpoint_ns ORDER BY created_at DESC LIMIT n.
-- (The PK already orders by checkpoint_id, which is time-ordered; this index does not depend on
-- the id format.) No GIN on metadata: checkpoints are the hottest insert path and the history
-- filter is always scoped to one thread.
CREATE INDEX checkpoints_history_idx ON checkpoints (thread_id, checkpoint_ns, created_at DESC, checkpoint_id DESC);

------------------------------------------------------------------------------------------------
-- Per-thread event log (stream resume)
------------------------------------------------------------------------------------------------

CREATE TABLE thread_events (
    thread_id  text        NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    seq        bigint      NOT NULL CHECK (seq >= 1),
    run_id     text,
    namespace  text[]      NOT NULL DEFAULT '{}',
    method     text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (thread_id, seq)
);
COMMENT ON TABLE thread_events IS
    'Ordered stream events of every run on a thread, for resume (v2 `since`, v1 Last-Event-ID) across reconnects and restarts. Retention is bounded by agentd (per-thread count/age); trimmed events are gone, seq never restarts (threads.last_seq).';
COMMENT ON COLUMN thread_events.seq IS
    'Per-thread monotonic sequence starting at 1, allocated from threads.last_seq; the v2 envelope seq and SSE id.';
COMMENT ON COLUMN thread_events.run_id IS 'Run that produced the event (v1 run-scoped streams filter on it); NULL for thread-level events.';
COMMENT ON COLUMN thread_events.namespace IS 'Subgraph path, {} at the root (envelope params.namespace); depth = cardinality(namespace).';
COMMENT ON COLUMN thread_events.method IS
    'Channel: lifecycle, values, updates, messages, input.requested, custom (or custom:<name>), checkpoints, tasks, tools ...';
COMMENT ON COLUMN thread_events.data IS 'Channel payload (envelope params.data).';
COMMENT ON COLUMN thread_events.created_at IS 'Event time (envelope params.timestamp); the server may supply it.';

-- Age-based retention sweeps: tiny BRIN, as rows arrive roughly in time order. Per-thread
-- trimming and replay use the PK (thread_id, seq).
CREATE INDEX thread_events_created_brin ON thread_events USING brin (created_at);

------------------------------------------------------------------------------------------------
-- Store (cross-thread key/value)
------------------------------------------------------------------------------------------------

-- Key choice: PRIMARY KEY (owner, namespace, key). Every identity gets its own store, so agentd
-- needs no Aegra-style namespace rewriting (clients see exactly the namespaces they wrote, as on
-- LangGraph Platform), and until auth lands (one owner) it is LangGraph's single global store.
-- Sharing across identities (an org-wide namespace) is then an explicit owner value chosen by the
-- server (e.g. 'org:<id>'), not something a client can reach by guessing a namespace.
--
-- namespace is text[] COLLATE "C" so the PK btree serves label-wise prefix search whatever the
-- database collation:  A starts with P = (p1..pn)  <=>  P <= A < (p1..pn-1, pn || chr(1))
-- (byte order; text cannot contain NUL), i.e.
--   WHERE owner = $1 AND namespace >= $2 AND namespace < $3   -- $3 = $2 with chr(1) appended to its last label
-- and an empty prefix is just owner = $1. list_namespaces is a DISTINCT over the same range.
CREATE TABLE store_items (
    owner       text               NOT NULL DEFAULT 'anonymous' CHECK (owner <> ''),
    namespace   text[] COLLATE "C" NOT NULL
                CHECK (cardinality(namespace) >= 1 AND array_ndims(namespace) = 1
                       AND array_position(namespace, NULL) IS NULL AND array_position(namespace, '') IS NULL),
    key         text               NOT NULL,
    value       jsonb              NOT NULL CHECK (jsonb_typeof(value) = 'object'),
    created_at  timestamptz        NOT NULL DEFAULT now(),
    updated_at  timestamptz        NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    ttl_minutes integer            CHECK (ttl_minutes > 0),
    PRIMARY KEY (owner, namespace, key)
);
COMMENT ON TABLE store_items IS 'Long-term memory: JSON documents addressed by (namespace, key), per owner.';
COMMENT ON COLUMN store_items.namespace IS 'Hierarchical labels, non-empty, no empty or NULL label; byte-ordered (COLLATE "C") for prefix ranges.';
COMMENT ON COLUMN store_items.value IS 'The document (always a JSON object); search `filter` = value @> or per-key comparisons.';
COMMENT ON COLUMN store_items.expires_at IS 'When the item stops being visible and may be swept; NULL = no TTL.';
COMMENT ON COLUMN store_items.ttl_minutes IS 'TTL from the put; reads with refresh_ttl push expires_at to now() + ttl_minutes.';

CREATE INDEX store_items_value_gin ON store_items USING gin (value jsonb_path_ops);
CREATE INDEX store_items_expires_idx ON store_items (expires_at) WHERE expires_at IS NOT NULL;

------------------------------------------------------------------------------------------------
-- Crons
------------------------------------------------------------------------------------------------

CREATE TABLE crons (
    cron_id          text        PRIMARY KEY DEFAULT gen_random_uuid()::text,
    owner            text        NOT NULL DEFAULT 'anonymous' CHECK (owner <> ''),
    assistant_id     text        NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    thread_id        text        REFERENCES threads (thread_id) ON DELETE CASCADE,
    schedule         text        NOT NULL,
    timezone         text        NOT NULL DEFAULT 'UTC',
    payload          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    metadata         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    on_run_completed text        CHECK (on_run_completed IN ('delete', 'keep')),
    end_time         timestamptz,
    enabled          boolean     NOT NULL DEFAULT true,
    next_run_date    timestamptz,
    claimed_until    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crons IS
    'Scheduled runs. Thread-bound (thread_id set; deleting the thread deletes the cron) or stateless (a new thread per firing). Deleting the assistant deletes its crons.';
COMMENT ON COLUMN crons.schedule IS 'Cron expression: 5 fields, or 6 with seconds first when allowed.';
COMMENT ON COLUMN crons.timezone IS
    'IANA zone the schedule is evaluated in (the scheduler''s copy; payload.timezone echoes what the client sent).';
COMMENT ON COLUMN crons.payload IS
    'Run template, only the keys the client set: input, config, context, interrupt_before, interrupt_after, webhook, multitask_strategy, stream_mode, stream_subgraphs, timezone.';
COMMENT ON COLUMN crons.metadata IS 'Cron metadata for search; not copied to fired runs.';
COMMENT ON COLUMN crons.on_run_completed IS 'Stateless crons: delete (default when NULL) or keep each firing''s thread.';
COMMENT ON COLUMN crons.end_time IS 'After it passes, the next firing disables the cron instead; NULL = no end.';
COMMENT ON COLUMN crons.next_run_date IS 'Next due firing (UTC); NULL when there is none.';
COMMENT ON COLUMN crons.claimed_until IS
    'Scheduler claim: set to now()+claim duration under FOR UPDATE SKIP LOCKED, cleared when the firing is advanced; an expired claim is fired again (at-least-once).';

-- Scheduler claim:
--   SELECT ... WHERE enabled AND next_run_date <= now() AND (claimed_until IS NULL OR claimed_until <= now())
--   ORDER BY next_run_date LIMIT n FOR UPDATE SKIP LOCKED
-- Partial on enabled: disabled crons never enter the index.
CREATE INDEX crons_due_idx ON crons (next_run_date) WHERE enabled;
-- Search/count and the per-owner cap.
CREATE INDEX crons_owner_created_idx ON crons (owner, created_at DESC, cron_id);
-- Search by assistant/thread; also the FK cascades.
CREATE INDEX crons_assistant_idx ON crons (assistant_id);
CREATE INDEX crons_thread_idx ON crons (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX crons_metadata_gin ON crons USING gin (metadata jsonb_path_ops);
