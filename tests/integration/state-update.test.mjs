// POST /threads/{id}/state in its update form, against the real binary and a fresh database: an update
// as a node (reducers, next from the node's edges), from an older checkpoint, Studio's "__copy__" fork,
// values merged from a list; what lands in Postgres (checkpoint without a run, thread values, status and
// interrupts); runs that continue from the updated checkpoint; and the refusals (422, 404, 400, 409).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { call, expect422 } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const INTERRUPT = '2e6b29d1-4009-5fcc-9319-4cffb1865dfe';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const human = (content) => ({ messages: [{ role: 'user', content }] });
const contents = (values) => values.messages.map((m) => m.content);

describe('thread state updates', { timeout: 180000 }, () => {
    let db;
    let srv;
    const api = (method, path, body, headers) => call(srv.port, method, path, body, headers);
    const sql = (text) => psql(db.url, text);
    const thread = async () => {
        const res = await api('POST', '/threads', {});
        assert.equal(res.status, 200, res.text);
        return res.json.thread_id;
    };
    const wait = async (tid, body) => {
        const res = await api('POST', `/threads/${tid}/runs/wait`, body);
        assert.equal(res.status, 200, res.text);
        return res.json;
    };
    const update = (tid, body) => api('POST', `/threads/${tid}/state`, body);
    /** An update that must succeed; returns the new checkpoint id after checking the answer's shape. */
    const updated = async (tid, body) => {
        const res = await update(tid, body);
        assert.equal(res.status, 200, `${JSON.stringify(body)}: ${res.text}`);
        assert.deepEqual(Object.keys(res.json), ['checkpoint']);
        const cp = res.json.checkpoint;
        assert.deepEqual(Object.keys(cp), ['thread_id', 'checkpoint_ns', 'checkpoint_id', 'checkpoint_map']);
        assert.equal(cp.thread_id, tid);
        assert.equal(cp.checkpoint_ns, '');
        assert.equal(cp.checkpoint_map, null);
        assert.match(cp.checkpoint_id, UUID_RE);
        return cp.checkpoint_id;
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
    const threadRow = async (tid) => (await api('GET', `/threads/${tid}`)).json;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    describe('as a node', () => {
        it('after an echo run: an "update" checkpoint at step 2 with the injected message, the thread idle with its values; the next run continues from it', async () => {
            const tid = await thread();
            const out = await wait(tid, { assistant_id: 'echo', input: human('a') });
            assert.deepEqual(contents(out), ['a', 'a']);
            const before = await state(tid);

            const cid = await updated(tid, { values: human('injected'), as_node: 'echo' });
            const st = await state(tid);
            assert.equal(st.checkpoint.checkpoint_id, cid);
            assert.equal(st.parent_checkpoint.checkpoint_id, before.checkpoint.checkpoint_id);
            assert.deepEqual(contents(st.values), ['a', 'a', 'injected']);
            assert.equal(st.values.messages[2].type, 'human');
            assert.ok(st.values.messages[2].id, 'the reducer gives the message an id');
            assert.deepEqual(st.next, []);
            assert.deepEqual(st.tasks, []);
            assert.deepEqual(st.interrupts, []);
            assert.equal(st.metadata.source, 'update');
            assert.equal(st.metadata.step, 2);
            assert.deepEqual(st.metadata.parents, {});
            assert.equal(st.metadata.graph_id, 'echo');
            assert.equal(st.metadata.assistant_id, ECHO);
            assert.equal(st.metadata.thread_id, tid);

            const hist = await history(tid);
            assert.equal(hist.length, 4);
            assert.equal(hist[0].checkpoint_id, cid);
            assert.deepEqual(hist.map((h) => [h.metadata.source, h.metadata.step]), [['update', 2], ['loop', 1], ['loop', 0], ['input', -1]]);

            const t = await threadRow(tid);
            assert.equal(t.status, 'idle');
            assert.deepEqual(t.values, st.values);
            assert.deepEqual(t.interrupts, {});
            assert.ok(t.state_updated_at >= t.created_at);
            assert.equal(await sql(`SELECT run_id IS NULL, step, source FROM checkpoints WHERE checkpoint_id = '${cid}'`), 't|2|update');

            const next = await wait(tid, { assistant_id: 'echo', input: human('b') });
            assert.deepEqual(contents(next), ['a', 'a', 'injected', 'b', 'b']);
            const hist2 = await history(tid);
            assert.equal(hist2.length, 7);
            assert.equal(hist2[2].metadata.source, 'input');
            assert.equal(hist2[2].parent_checkpoint_id, cid, 'the run starts from the update checkpoint');
        });

        it('as __start__ the node is scheduled (next ["echo"]) and a run without input executes it on the updated state', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            await updated(tid, { values: human('again'), as_node: '__start__' });
            const st = await state(tid);
            assert.deepEqual(st.next, ['echo']);
            assert.equal(st.tasks.length, 1);
            assert.equal(st.tasks[0].name, 'echo');
            assert.deepEqual(st.tasks[0].interrupts, []);
            assert.equal((await threadRow(tid)).status, 'idle');
            const out = await wait(tid, { assistant_id: 'echo', input: null });
            assert.deepEqual(contents(out), ['a', 'a', 'again', 'again']);
            assert.deepEqual((await state(tid)).next, []);
        });

        it('without as_node: the node that ran last; values as a list of objects merged left to right; null values write nothing', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            await updated(tid, { values: [human('first'), human('second')] });
            let st = await state(tid);
            assert.deepEqual(contents(st.values), ['a', 'a', 'second']);
            assert.deepEqual(st.next, []);
            assert.equal(st.metadata.step, 2);

            const cid = await updated(tid, { values: null, as_node: 'echo' });
            st = await state(tid);
            assert.equal(st.checkpoint_id, cid);
            assert.equal(st.metadata.source, 'update');
            assert.equal(st.metadata.step, 3);
            assert.deepEqual(contents(st.values), ['a', 'a', 'second']);
        });

        it('a thread with a graph_id but no checkpoint yet: the update starts its history at step -1', async () => {
            const tid = await thread();
            const p = await api('PATCH', `/threads/${tid}`, { metadata: { graph_id: 'echo', assistant_id: ECHO } });
            assert.equal(p.status, 200, p.text);
            await updated(tid, { values: human('seed') });
            const st = await state(tid);
            assert.deepEqual(contents(st.values), ['seed']);
            assert.deepEqual(st.next, ['echo']);
            assert.equal(st.metadata.step, -1);
            assert.equal(st.parent_checkpoint, null);
            const out = await wait(tid, { assistant_id: 'echo', input: null });
            assert.deepEqual(contents(out), ['seed', 'seed']);
        });
    });

    describe('from a given checkpoint, and copies', () => {
        it('checkpoint_id (or checkpoint.checkpoint_id) branches from that checkpoint', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            const hist = await history(tid);
            const step0 = hist.find((h) => h.metadata.step === 0);
            assert.deepEqual(step0.next, ['echo']);

            const cid = await updated(tid, { checkpoint_id: step0.checkpoint_id, values: human('branch'), as_node: 'echo' });
            let st = await state(tid);
            assert.equal(st.checkpoint_id, cid);
            assert.equal(st.parent_checkpoint_id, step0.checkpoint_id);
            assert.equal(st.metadata.step, 1);
            assert.deepEqual(contents(st.values), ['a', 'branch']);

            const cid2 = await updated(tid, { checkpoint: { checkpoint_id: step0.checkpoint_id, thread_id: tid, checkpoint_ns: '' }, values: human('other') });
            st = await state(tid);
            assert.equal(st.checkpoint_id, cid2);
            assert.equal(st.parent_checkpoint_id, step0.checkpoint_id);
            assert.deepEqual(contents(st.values), ['a', 'other']);
            assert.deepEqual(st.next, ['echo'], 'as_node inferred from the parent\'s next: __start__, which leads to echo');

            const missing = await update(tid, { checkpoint_id: 'nope', values: human('x') });
            assert.equal(missing.status, 404, missing.text);
            assert.deepEqual(missing.json, { error: 'not_found', message: "Checkpoint 'nope' not found", details: null });
        });

        it('values null with as_node "__copy__" forks a copy beside the checkpoint (source "fork")', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            const latest = await state(tid);
            const cid = await updated(tid, { values: null, as_node: '__copy__' });
            const st = await state(tid);
            assert.equal(st.checkpoint_id, cid);
            assert.notEqual(cid, latest.checkpoint_id);
            assert.equal(st.parent_checkpoint_id, latest.parent_checkpoint_id);
            assert.deepEqual(st.values, latest.values);
            assert.deepEqual(st.next, latest.next);
            assert.equal(st.metadata.source, 'fork');
            assert.equal(st.metadata.step, latest.metadata.step + 1);
            assert.equal(await sql(`SELECT run_id IS NULL, source FROM checkpoints WHERE checkpoint_id = '${cid}'`), 't|fork');

            const hist = await history(tid);
            const step0 = hist.find((h) => h.metadata.step === 0 && h.metadata.source === 'loop');
            const copy = await updated(tid, { checkpoint_id: step0.checkpoint_id, values: null, as_node: '__copy__' });
            const c = await state(tid);
            assert.equal(c.checkpoint_id, copy);
            assert.deepEqual(c.next, ['echo']);
            assert.equal(c.tasks.length, 1);
            assert.notEqual(c.tasks[0].id, step0.tasks[0].id);
            const out = await wait(tid, { assistant_id: 'echo', input: null });
            assert.deepEqual(contents(out), ['a', 'a'], 'a run continues the copy');

            const fresh = await thread();
            await api('PATCH', `/threads/${fresh}`, { metadata: { graph_id: 'echo' } });
            const none = await update(fresh, { values: null, as_node: '__copy__' });
            assert.equal(none.status, 400, none.text);
            assert.equal(none.json.message, 'Cannot copy a non-existent checkpoint');
        });
    });

    describe('as __input__', () => {
        it('an "input" checkpoint holding the values as the next run\'s input: state unchanged, next ["__start__"]; a run without input applies it', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            const latest = await state(tid);
            const cid = await updated(tid, { values: human('queued'), as_node: '__input__' });
            const st = await state(tid);
            assert.equal(st.checkpoint_id, cid);
            assert.equal(st.metadata.source, 'input');
            assert.equal(st.metadata.step, latest.metadata.step + 1);
            assert.deepEqual(st.values, latest.values, 'the input is not applied yet');
            assert.deepEqual(st.next, ['__start__']);
            assert.equal(st.tasks[0].name, '__start__');
            const out = await wait(tid, { assistant_id: 'echo', input: null });
            assert.deepEqual(contents(out), ['a', 'a', 'queued', 'queued']);
            const bad = await update(tid, { values: null, as_node: '__input__' });
            assert.equal(bad.status, 400, bad.text);
            assert.match(bad.json.message, /Received no input/);
        });
    });

    describe('interrupted threads', () => {
        it('an update as the interrupted node ends the wait: no next, no interrupts, the thread idle', async () => {
            const tid = await thread();
            const first = await wait(tid, { assistant_id: INTERRUPT, input: human('q') });
            assert.equal(first.__interrupt__.length, 1);
            assert.equal((await threadRow(tid)).status, 'interrupted');
            await updated(tid, { values: { messages: [{ role: 'assistant', content: 'manual' }] }, as_node: 'ask' });
            const st = await state(tid);
            assert.deepEqual(st.next, []);
            assert.deepEqual(st.interrupts, []);
            assert.deepEqual(contents(st.values), ['q', 'manual']);
            assert.equal(st.values.messages[1].type, 'ai');
            const t = await threadRow(tid);
            assert.equal(t.status, 'idle');
            assert.deepEqual(t.interrupts, {});
        });

        it('an update without as_node (after __start__) schedules the node again; a run asks again and a resume answers', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: INTERRUPT, input: human('q') });
            await updated(tid, { values: human('more') });
            const st = await state(tid);
            assert.deepEqual(st.next, ['ask']);
            assert.deepEqual(st.interrupts, []);
            assert.equal((await threadRow(tid)).status, 'idle');
            const again = await wait(tid, { assistant_id: INTERRUPT, input: null });
            assert.equal(again.__interrupt__.length, 1);
            assert.equal((await threadRow(tid)).status, 'interrupted');
            const done = await wait(tid, { assistant_id: INTERRUPT, command: { resume: 'ok' } });
            assert.deepEqual(contents(done), ['q', 'more', 'you said: ok']);
        });
    });

    describe('refusals', () => {
        it('400 for an unknown node; nothing written', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            const res = await update(tid, { values: human('x'), as_node: 'nope' });
            assert.equal(res.status, 400, res.text);
            assert.deepEqual(res.json, { error: 'bad_request', message: 'Node nope does not exist', details: null });
            const copy = await update(tid, { values: human('x'), as_node: '__copy__' });
            assert.equal(copy.status, 400, copy.text);
            assert.equal(await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${tid}'`), '3');
        });

        it('400 for a thread without a graph, 404 for a missing thread', async () => {
            const tid = await thread();
            const res = await update(tid, { values: human('injected'), as_node: 'echo' });
            assert.equal(res.status, 400, res.text);
            assert.deepEqual(res.json, { error: 'bad_request', message: `Thread ${tid} has no graph ID`, details: null });
            const missing = randomUUID();
            const nf = await update(missing, { values: human('x') });
            assert.equal(nf.status, 404, nf.text);
            assert.deepEqual(nf.json, { error: 'not_found', message: `Thread '${missing}' not found`, details: null });
        });

        it('422 for values of the wrong type, a malformed thread id, or a namespace other than the root', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('a') });
            expect422(assert, await update(tid, { values: 'x', as_node: 'echo' }), ['body', 'values'], 'dict_type');
            expect422(assert, await update(tid, { values: [human('x'), 3] }), ['body', 'values', 1], 'dict_type');
            expect422(assert, await update(tid, { values: human('x'), checkpoint_ns: 'echo:1' }), ['body', 'checkpoint_ns'], 'value_error');
            expect422(assert, await update(tid, { values: human('x'), checkpoint: { checkpoint_ns: 'echo:1' } }), ['body', 'checkpoint', 'checkpoint_ns'], 'value_error');
            expect422(assert, await update('not-a-uuid', { values: human('x') }), ['path', 'thread_id'], 'uuid_parsing');
            assert.equal(await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${tid}'`), '3');
        });

        it('409 while a run is active; after the cancel the update goes through', async () => {
            const tid = await thread();
            const run = await api('POST', `/threads/${tid}/runs`, {
                assistant_id: STRESS,
                input: human('slow'),
                config: { configurable: { tokens: 50, delay_ms: 100, mode: 'custom' } },
            });
            assert.equal(run.status, 200, run.text);
            const res = await update(tid, { values: human('x'), as_node: 'emit' });
            assert.equal(res.status, 409, res.text);
            assert.deepEqual(res.json, { error: 'conflict', message: 'Thread is busy: a run is active or queued', details: null });
            const c = await api('POST', `/threads/${tid}/runs/${run.json.run_id}/cancel?wait=1`);
            assert.equal(c.status, 204, c.text);
            await updated(tid, { values: human('x') });
            assert.equal((await threadRow(tid)).status, 'idle');
        });
    });
});
