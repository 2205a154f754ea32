// The real LangGraph JS SDK (each SDK line) against agentd: client.threads.updateState (as a node, from a
// given checkpoint, Studio's "__copy__" fork) seen through getState / getHistory and the runs that
// follow, and its refusals as the SDK reports them; getState and getHistory with every option, and
// client.threads.joinStream's stream mode.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lacksOption, rejectsWith, useSdk } from './lib.mjs';

const human = (content) => ({ messages: [{ role: 'user', content }] });
const contents = (values) => values.messages.map((m) => m.content);

describe('LangGraph SDK: client.threads.updateState', { timeout: 120000 }, () => {
    const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

    test('update as a node after a run: getState, getHistory, and the next run continue from it', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        // The server answers LangGraph's {"checkpoint": {...}} (the SDK's type says Pick<Config, "configurable">).
        const res = await c.threads.updateState(t.thread_id, { values: human('injected'), asNode: 'echo' });
        assert.deepEqual(Object.keys(res), ['checkpoint']);
        assert.equal(res.checkpoint.thread_id, t.thread_id);
        assert.equal(res.checkpoint.checkpoint_ns, '');

        const state = await c.threads.getState(t.thread_id);
        assert.equal(state.checkpoint.checkpoint_id, res.checkpoint.checkpoint_id);
        assert.deepEqual(contents(state.values), ['a', 'a', 'injected']);
        assert.deepEqual(state.next, []);
        assert.equal(state.metadata.source, 'update');
        assert.equal(state.metadata.step, 2);

        const hist = await c.threads.getHistory(t.thread_id);
        assert.equal(hist.length, 4);
        assert.equal(hist[0].metadata.source, 'update');
        assert.equal((await c.threads.get(t.thread_id)).status, 'idle');

        const out = await c.runs.wait(t.thread_id, 'echo', { input: human('b') });
        assert.deepEqual(contents(out), ['a', 'a', 'injected', 'b', 'b']);
    });

    test('patchState merges metadata into the latest checkpoint (by thread id or by config)', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        assert.equal(await c.threads.patchState(t.thread_id, { reviewed: true }), undefined);
        assert.equal(await c.threads.patchState({ configurable: { thread_id: t.thread_id } }, { by: 'config' }), undefined);
        const state = await c.threads.getState(t.thread_id);
        assert.equal(state.metadata.reviewed, true);
        assert.equal(state.metadata.by, 'config');
        assert.equal(state.metadata.source, 'loop', 'the other keys stay');
        const hist = await c.threads.getHistory(t.thread_id);
        assert.equal(hist[1].metadata.reviewed, undefined, 'only the latest checkpoint');
        await rejectsWith(c.threads.patchState((await c.threads.create()).thread_id, { x: 1 }), 404);
    });

    test('from an older checkpoint (getState at it), and a "__copy__" fork a run continues', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        const hist = await c.threads.getHistory(t.thread_id);
        const step0 = hist.find((h) => h.metadata.step === 0);

        const res = await c.threads.updateState(t.thread_id, { values: human('branch'), asNode: 'echo', checkpointId: step0.checkpoint.checkpoint_id });
        const at = await c.threads.getState(t.thread_id, res.checkpoint.checkpoint_id);
        assert.deepEqual(contents(at.values), ['a', 'branch']);
        assert.equal(at.parent_checkpoint.checkpoint_id, step0.checkpoint.checkpoint_id);

        const copy = await c.threads.updateState(t.thread_id, { values: null, asNode: '__copy__', checkpoint: step0.checkpoint });
        const state = await c.threads.getState(t.thread_id);
        assert.equal(state.checkpoint.checkpoint_id, copy.checkpoint.checkpoint_id);
        assert.equal(state.metadata.source, 'fork');
        assert.deepEqual(state.next, ['echo']);
        const out = await c.runs.wait(t.thread_id, 'echo', { input: null });
        assert.deepEqual(contents(out), ['a', 'a']);
    });

    test('refusals: unknown node 400, no graph 400, missing thread 404, busy thread 409', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        let body = await rejectsWith(c.threads.updateState(t.thread_id, { values: human('x'), asNode: 'echo' }), 400);
        assert.equal(body.message, `Thread ${t.thread_id} has no graph ID`);
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        body = await rejectsWith(c.threads.updateState(t.thread_id, { values: human('x'), asNode: 'nope' }), 400);
        assert.equal(body.message, 'Node nope does not exist');
        await rejectsWith(c.threads.updateState('00000000-0000-4000-8000-000000000000', { values: human('x') }), 404);

        const run = await c.runs.create(t.thread_id, 'stress', {
            input: human('slow'),
            config: { configurable: { tokens: 50, delay_ms: 100, mode: 'custom' } },
        });
        body = await rejectsWith(c.threads.updateState(t.thread_id, { values: human('x'), asNode: 'echo' }), 409);
        assert.equal(body.error, 'conflict');
        await c.runs.cancel(t.thread_id, run.run_id, true);
        await c.threads.updateState(t.thread_id, { values: human('x') });
        assert.deepEqual(contents((await c.threads.getState(t.thread_id)).values).at(-1), 'x');
    });

    test('getState: at a checkpoint id or a Checkpoint object, with subgraphs', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        await c.runs.wait(t.thread_id, 'echo', { input: human('b') });
        const hist = await c.threads.getHistory(t.thread_id);
        const mid = hist.find((h) => h.metadata.step === 1 && contents(h.values).length === 2);
        const byId = await c.threads.getState(t.thread_id, mid.checkpoint.checkpoint_id);
        assert.deepEqual(contents(byId.values), ['a', 'a']);
        assert.equal(byId.checkpoint.checkpoint_id, mid.checkpoint.checkpoint_id);
        const byObj = await c.threads.getState(t.thread_id, { thread_id: t.thread_id, checkpoint_ns: '', checkpoint_id: mid.checkpoint.checkpoint_id, checkpoint_map: {} });
        assert.deepEqual(byObj, byId);
        const sub = await c.threads.getState(t.thread_id, undefined, { subgraphs: true });
        assert.deepEqual(contents(sub.values), ['a', 'a', 'b', 'b']);
        assert.deepEqual(sub.tasks, []);
        await rejectsWith(c.threads.getState(t.thread_id, '00000000-0000-4000-8000-000000000000'), 404);
    });

    test('getState and getHistory with select answer only those fields', { skip: lacksOption('ThreadsClient.getState.options.select', 'ThreadsClient.getHistory.options.select') }, async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        const state = await c.threads.getState(t.thread_id, undefined, { select: ['values', 'next'] });
        assert.deepEqual(contents(state.values), ['a', 'a']);
        assert.deepEqual(state.next, []);
        const hist = await c.threads.getHistory(t.thread_id, { select: ['values', 'metadata'], limit: 2 });
        assert.equal(hist.length, 2);
        assert.deepEqual(contents(hist[0].values), ['a', 'a']);
        assert.equal(hist[0].metadata.step, 1);
    });

    test('getHistory: limit, before, checkpoint and metadata', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        await c.runs.wait(t.thread_id, 'echo', { input: human('b') });
        const all = await c.threads.getHistory(t.thread_id);
        assert.equal(all.length, 6);
        assert.deepEqual(all.map((h) => h.metadata.step), [4, 3, 2, 1, 0, -1]);
        assert.deepEqual((await c.threads.getHistory(t.thread_id, { limit: 2 })).map((h) => h.checkpoint.checkpoint_id), all.slice(0, 2).map((h) => h.checkpoint.checkpoint_id));
        const before = await c.threads.getHistory(t.thread_id, { before: { configurable: { checkpoint_id: all[2].checkpoint.checkpoint_id } } });
        assert.deepEqual(before.map((h) => h.metadata.step), [1, 0, -1]);
        const inputs = await c.threads.getHistory(t.thread_id, { metadata: { source: 'input' } });
        assert.deepEqual(inputs.map((h) => h.metadata.step), [2, -1]);
        const root = await c.threads.getHistory(t.thread_id, { checkpoint: { checkpoint_ns: '' }, limit: 3 });
        assert.deepEqual(root.map((h) => h.metadata.step), [4, 3, 2]);
        await rejectsWith(c.threads.getHistory('00000000-0000-4000-8000-000000000000'), 404);
    });

    test('joinStream with streamMode run_modes follows the thread\'s runs', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const run = await c.runs.create(t.thread_id, 'stress', {
            input: human('j'), streamMode: ['custom'], config: { configurable: { tokens: 200, delay_ms: 50, mode: 'custom' } },
        });
        const ac = new AbortController();
        const parts = [];
        for await (const p of c.threads.joinStream(t.thread_id, { streamMode: 'run_modes', signal: ac.signal })) {
            parts.push(p);
            if (p.event === 'custom') {
                ac.abort();
                break;
            }
        }
        assert.equal(parts.at(-1).data.index, 0);
        await c.runs.cancel(t.thread_id, run.run_id, true);
    });

    test('joinStream with streamMode as a list', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const run = await c.runs.create(t.thread_id, 'stress', {
            input: human('j'), streamMode: ['custom'], config: { configurable: { tokens: 200, delay_ms: 50, mode: 'custom' } },
        });
        const ac = new AbortController();
        try {
            for await (const p of c.threads.joinStream(t.thread_id, { streamMode: ['run_modes'], signal: ac.signal })) {
                if (p.event === 'custom') {
                    assert.equal(p.data.index, 0);
                    ac.abort();
                    break;
                }
            }
        } finally {
            await c.runs.cancel(t.thread_id, run.run_id, true);
        }
    });
});
