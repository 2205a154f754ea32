// POST /threads with supersteps (the SDKs' threads.create({graphId, supersteps})), against the real binary
// and a fresh database: each superstep becomes one "update" checkpoint (its updates applied together, as
// from their as_node), visible through state and history and continued by a run; the thread created on
// its owner shard when the id belongs to another; if_exists; and every refusal (422 with the field's
// path), none of which creates a thread or a checkpoint.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { assertThread, call, expect422, uuidOwnedBy } from './lib/threads-util.mjs';

const SHARDS = 2;
const human = (content) => ({ messages: [{ role: 'user', content }] });
const ai = (content) => ({ messages: [{ role: 'ai', content }] });
const contents = (values) => values.messages.map((m) => m.content);
const step = (...updates) => ({ updates });

describe('POST /threads with supersteps', { timeout: 180000 }, () => {
    let db;
    let srv;
    const api = (method, path, body) => call(srv.port, method, path, body);
    const sql = (text) => psql(db.url, text);
    const created = async (body) => {
        const res = await api('POST', '/threads', body);
        assert.equal(res.status, 200, `${JSON.stringify(body)}: ${res.text}`);
        return res.json;
    };
    const state = async (tid) => {
        const res = await api('GET', `/threads/${tid}/state`);
        assert.equal(res.status, 200, res.text);
        return res.json;
    };
    const history = async (tid) => {
        const res = await api('GET', `/threads/${tid}/history?limit=100`);
        assert.equal(res.status, 200, res.text);
        return res.json;
    };
    const counts = () => sql('SELECT (SELECT count(*) FROM threads) || \'|\' || (SELECT count(*) FROM checkpoints)');
    /** Asserts that a refused create left nothing behind: no thread with its id, and no thread or checkpoint
     * at all beyond those counted before. */
    const nothingCreated = async (tid, before) => {
        assert.equal((await api('GET', `/threads/${tid}`)).status, 404, `thread ${tid} was not created`);
        assert.equal(await counts(), before, 'threads|checkpoints: nothing was written');
    };

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', String(SHARDS)] });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('two supersteps, the second with two updates: one "update" checkpoint each, steps -1 and 0, next from the nodes; the answer is the thread as they left it', async () => {
        const t = await created({
            metadata: { graph_id: 'echo', team: 'a' },
            supersteps: [
                step({ values: human('hi'), as_node: '__start__' }),
                // values, and a command whose update is [key, value] pairs: each pair its own write.
                step({ values: ai('one'), as_node: 'echo' }, { command: { update: [['messages', ai('two').messages], ['messages', { role: 'ai', content: 'three' }]] }, as_node: 'echo' }),
            ],
        });
        assertThread(assert, t);
        assert.deepEqual(t.metadata, { graph_id: 'echo', team: 'a' });
        assert.equal(t.status, 'idle');
        assert.deepEqual(contents(t.values), ['hi', 'one', 'two', 'three']);
        assert.deepEqual(t.interrupts, {});

        const st = await state(t.thread_id);
        assert.deepEqual(st.values, t.values);
        assert.deepEqual(st.next, [], 'echo leads to END');
        assert.deepEqual(st.tasks, []);
        assert.equal(st.metadata.source, 'update');
        assert.equal(st.metadata.step, 0);
        assert.equal(st.metadata.graph_id, 'echo');
        assert.equal(st.metadata.thread_id, t.thread_id);
        assert.deepEqual(st.values.messages.map((m) => m.type), ['human', 'ai', 'ai', 'ai']);
        assert.ok(st.values.messages.every((m) => m.id), 'the reducer gives every message an id');

        const hist = await history(t.thread_id);
        assert.deepEqual(hist.map((h) => [h.metadata.source, h.metadata.step]), [['update', 0], ['update', -1]]);
        assert.deepEqual(hist.map((h) => h.next), [[], ['echo']], 'as __start__, echo is next; as echo, nothing is');
        assert.deepEqual(contents(hist[1].values), ['hi']);
        assert.equal(hist[1].tasks.length, 1);
        assert.equal(hist[1].tasks[0].name, 'echo');
        assert.equal(hist[1].parent_checkpoint, null);
        assert.equal(hist[0].parent_checkpoint.checkpoint_id, hist[1].checkpoint.checkpoint_id);
        assert.equal(st.checkpoint.checkpoint_id, hist[0].checkpoint.checkpoint_id);
        // Written as POST /threads/{id}/state writes them: no run, source update.
        assert.equal(
            await sql(`SELECT string_agg(format('%s|%s|%s', run_id IS NULL, step, source), ',' ORDER BY checkpoint_id) FROM checkpoints WHERE thread_id = '${t.thread_id}'`),
            't|-1|update,t|0|update',
        );
        assert.equal((await api('GET', `/threads/${t.thread_id}`)).json.values.messages.length, 4);
    });

    it('a run continues from the last superstep: as __start__ it leaves echo next, and a run without input executes it', async () => {
        const t = await created({ metadata: { graph_id: 'echo' }, supersteps: [step({ values: human('seed'), as_node: '__start__' })] });
        assert.deepEqual((await state(t.thread_id)).next, ['echo']);
        const res = await api('POST', `/threads/${t.thread_id}/runs/wait`, { assistant_id: 'echo', input: null });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(contents(res.json), ['seed', 'seed']);
        const hist = await history(t.thread_id);
        assert.deepEqual(hist.map((h) => h.metadata.source), ['loop', 'update']);
        assert.equal(hist[0].parent_checkpoint.checkpoint_id, hist[1].checkpoint.checkpoint_id);
    });

    it('LangGraph\'s documented form: an __input__ superstep, then the nodes\' updates', async () => {
        const t = await created({
            metadata: { graph_id: 'echo' },
            supersteps: [step({ values: {}, as_node: '__input__' }), step({ values: { messages: [{ type: 'human', content: 'hi' }, { type: 'ai', content: 'hello' }] }, as_node: 'echo' })],
        });
        assert.deepEqual(contents(t.values), ['hi', 'hello']);
        const hist = await history(t.thread_id);
        assert.deepEqual(hist.map((h) => [h.metadata.source, h.metadata.step, h.next]), [['update', 0, []], ['input', -1, ['__start__']]]);
    });

    it('a client thread_id owned by another shard: created there, with its supersteps and ttl; __copy__ in a later superstep forks', async () => {
        for (let shard = 0; shard < SHARDS; shard++) {
            const id = uuidOwnedBy(shard, SHARDS);
            const t = await created({
                thread_id: id,
                ttl: 30,
                metadata: { graph_id: 'echo' },
                supersteps: [step({ values: human('a'), as_node: '__start__' }), step({ values: null, as_node: '__copy__' })],
            });
            assert.equal(t.thread_id, id);
            assert.deepEqual(contents(t.values), ['a']);
            const hist = await history(id);
            assert.deepEqual(hist.map((h) => [h.metadata.source, h.metadata.step]), [['fork', 0], ['update', -1]]);
            assert.deepEqual(hist[0].next, ['echo'], 'a fork keeps next');
            assert.equal(hist[0].parent_checkpoint, null, 'a fork sits beside its source (same parent)');
            const g = (await api('GET', `/threads/${id}?include=ttl`)).json;
            assert.equal(g.ttl.ttl_minutes, 30);
        }
    });

    it('a taken id: 409 with if_exists raise, the existing thread untouched with do_nothing; neither applies the supersteps', async () => {
        const first = await created({ metadata: { graph_id: 'echo' }, supersteps: [step({ values: human('a'), as_node: '__start__' })] });
        const id = first.thread_id;
        const again = { thread_id: id, metadata: { graph_id: 'echo' }, supersteps: [step({ values: human('b'), as_node: '__start__' })] };
        const res = await api('POST', '/threads', again);
        assert.equal(res.status, 409, res.text);
        assert.equal(res.json.message, `Thread '${id}' already exists`);
        const same = await created({ ...again, if_exists: 'do_nothing' });
        assert.deepEqual(same, first);
        assert.equal(await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${id}'`), '1');
        assert.deepEqual(contents((await state(id)).values), ['a']);
    });

    it('refusals answer 422 with the path of each bad field and create nothing', async () => {
        const before = await counts();
        let n = 0;
        const refused = async (body, ...problems) => {
            const id = uuidOwnedBy(n++ % SHARDS, SHARDS); /* read here, answered by its owner */
            const res = await api('POST', '/threads', { thread_id: id, ...body });
            for (const [loc, type] of problems) expect422(assert, res, ['body', ...loc], type);
            await nothingCreated(id, before);
            return res;
        };
        const echo = { graph_id: 'echo' };
        const ok = { values: human('x'), as_node: '__start__' };
        let res0;
        // Shapes and types.
        await refused({ metadata: echo, supersteps: [step(ok, { values: human('y') })] }, [['supersteps', 0, 'updates', 1, 'as_node'], 'missing']);
        await refused(
            { metadata: echo, supersteps: [step({ values: 'text', as_node: 7 }), { updates: {} }, 3, step()] },
            [['supersteps', 0, 'updates', 0, 'values'], 'dict_type'],
            [['supersteps', 0, 'updates', 0, 'as_node'], 'string_type'],
            [['supersteps', 1, 'updates'], 'list_type'],
            [['supersteps', 2], 'model_attributes_type'],
            [['supersteps', 3, 'updates'], 'too_short'],
        );
        await refused({ metadata: echo, supersteps: [step({ values: [human('a'), 5], as_node: 'echo' })] }, [['supersteps', 0, 'updates', 0, 'values', 1], 'dict_type']);
        await refused({ metadata: echo, supersteps: [step({ command: { update: [['messages']] }, as_node: 'echo' })] }, [['supersteps', 0, 'updates', 0, 'command', 'update', 0], 'tuple_type']);
        await refused({ metadata: echo, supersteps: [step({ command: 'go', as_node: 'echo' })] }, [['supersteps', 0, 'updates', 0, 'command'], 'dict_type']);
        await refused({ metadata: echo, supersteps: Array.from({ length: 257 }, () => step(ok)) }, [['supersteps'], 'too_long']);
        // 40 messages of 200 kB (an 8 MB body) append to a state each checkpoint holds whole: over 16 MiB of
        // checkpoints by the 12th superstep, refused once counted, before the rest are built.
        const big = Array.from({ length: 40 }, (_, i) => step({ values: { messages: [{ role: 'user', content: `${i}`.padEnd(200000, 'x') }] }, as_node: '__start__' }));
        res0 = await refused({ metadata: echo, supersteps: big }, [['supersteps'], 'value_error']);
        assert.match(res0.json.detail[0].msg, /supersteps up to 1[0-9] build more than 16777216 bytes/, res0.text);
        // The graph: metadata.graph_id is required and must be registered.
        let res = await refused({ supersteps: [step(ok)] }, [['metadata', 'graph_id'], 'missing']);
        assert.equal(res.json.detail.length, 1, res.text);
        await refused({ metadata: { graph_id: 5 }, supersteps: [step(ok)] }, [['metadata', 'graph_id'], 'string_type']);
        res = await refused({ metadata: { graph_id: 'no-such-graph' }, supersteps: [step(ok)] }, [['metadata', 'graph_id'], 'value_error']);
        assert.match(res.json.detail[0].msg, /graph 'no-such-graph' is not a registered graph/);
        // What the graph refuses, found while computing the checkpoints (after earlier supersteps applied).
        res = await refused({ metadata: echo, supersteps: [step(ok), step(ok, { values: ai('z'), as_node: 'nope' })] }, [['supersteps', 1, 'updates', 1, 'as_node'], 'value_error']);
        assert.match(res.json.detail[0].msg, /Node nope does not exist/);
        res = await refused({ metadata: echo, supersteps: [step({ values: null, as_node: '__copy__' })] }, [['supersteps', 0, 'updates', 0, 'as_node'], 'value_error']);
        assert.match(res.json.detail[0].msg, /Cannot copy a non-existent checkpoint/);
        res = await refused({ metadata: echo, supersteps: [step(ok), step({ values: { messages: [{ type: 'remove', id: 'ghost' }] }, as_node: 'echo' })] }, [['supersteps', 1], 'value_error']);
        assert.match(res.json.detail[0].msg, /ghost/);
        // A command's goto and resume need a run: named, not ignored.
        await refused(
            { metadata: echo, supersteps: [step({ command: { update: ai('u'), goto: 'echo', resume: 'yes' }, as_node: 'echo' })] },
            [['supersteps', 0, 'updates', 0, 'command', 'goto'], 'value_error'],
            [['supersteps', 0, 'updates', 0, 'command', 'resume'], 'value_error'],
        );
    });

    it('a command update as an object is applied like values; an empty supersteps list is a plain create', async () => {
        const t = await created({ metadata: { graph_id: 'echo' }, supersteps: [step({ command: { update: human('c') }, as_node: '__start__' })] });
        assert.deepEqual(contents(t.values), ['c']);
        assert.deepEqual((await state(t.thread_id)).next, ['echo']);
        const plain = await created({ metadata: { graph_id: 'echo' }, supersteps: [] });
        assert.equal(plain.values, null);
        assert.deepEqual(await history(plain.thread_id), []);
    });
});
