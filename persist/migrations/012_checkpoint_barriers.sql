-- 012_checkpoint_barriers.sql: the state of a graph's wait-for-all edges at a checkpoint.
--
-- An edge from several nodes to one (LangGraph's add_edge([a, b], c)) runs its target once all its
-- sources ran since it last did; sources may run in different supersteps, and an interrupt or the end
-- of a run may come in between. Which sources have run is part of the checkpoint (LangGraph keeps it in
-- a hidden channel), not of the state the API shows: {"join:<a>+<b>:<c>": ["a"]}. NULL: no edge waits.
ALTER TABLE checkpoints ADD COLUMN barriers jsonb CHECK (barriers IS NULL OR jsonb_typeof(barriers) = 'object');
COMMENT ON COLUMN checkpoints.barriers IS
    'Wait-for-all edges: {"join:<sources joined by +>:<target>": [sources that ran since the target last did]}; NULL: none waiting.';
