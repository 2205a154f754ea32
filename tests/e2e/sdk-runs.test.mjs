// The real LangGraph JS SDK (each SDK line) against agentd: client.runs (create, wait, stream with several
// modes, join, joinStream, get, list, cancel, delete), client.threads.joinStream, stateless runs, interrupts resumed with
// Command, multitask strategies, and client.threads.getState / getHistory after runs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lacks, rejectsWith, useSdk } from './lib.mjs';

const human = (content) => ({ messages: [{ role: 'user', content }] });

describe('LangGraph SDK: client.runs', { timeout: 120000 }, () => {
    const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

    test('wait, get, list, state and history after an echo run', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const out = await c.runs.wait(t.thread_id, 'echo', { input: human('hello') });
        assert.deepEqual(out.messages.map((m) => [m.type, m.content]), [['human', 'hello'], ['ai', 'hello']]);
        const runs = await c.runs.list(t.thread_id);
        assert.equal(runs.length, 1);
        assert.equal(runs[0].status, 'success');
        const run = await c.runs.get(t.thread_id, runs[0].run_id);
        assert.equal(run.assistant_id, '046b5dc7-2108-582c-9c6c-31d556d138f0');
        const state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.values, out);
        assert.deepEqual(state.next, []);
        const hist = await c.threads.getHistory(t.thread_id);
        assert.equal(hist.length, 3);
        assert.equal(hist[2].metadata.source, 'input');
        const th = await c.threads.get(t.thread_id);
        assert.equal(th.status, 'idle');
    });

    test('stream: values, updates, custom, messages-tuple parts as the SDK yields them', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const parts = [];
        for await (const p of c.runs.stream(t.thread_id, 'stress', {
            input: human('go'),
            streamMode: ['values', 'updates', 'custom', 'messages-tuple'],
            config: { configurable: { tokens: 3 } },
        })) parts.push(p);
        const events = parts.map((p) => p.event);
        assert.equal(events[0], 'metadata');
        assert.deepEqual(parts.filter((p) => p.event === 'custom').map((p) => p.data.token), ['t0', 't1', 't2']);
        assert.deepEqual(parts.filter((p) => p.event === 'messages').map((p) => p.data[0].content), ['t0', ' t1', ' t2']);
        assert.equal(parts.filter((p) => p.event === 'values').at(-1).data.messages.at(-1).content, 't0 t1 t2');
        assert.ok(parts.some((p) => p.event === 'updates' && p.data.emit));
    });

    test('background create, join and joinStream', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const run = await c.runs.create(t.thread_id, 'echo', { input: human('bg'), metadata: { who: 'me' } });
        assert.equal(run.status, 'pending');
        const joined = await c.runs.join(t.thread_id, run.run_id);
        assert.equal(joined.messages.at(-1).content, 'bg');
        const parts = [];
        for await (const p of c.runs.joinStream(t.thread_id, run.run_id)) parts.push(p);
        assert.ok(parts.length >= 1);
        assert.equal((await c.runs.get(t.thread_id, run.run_id)).metadata.who, 'me');
    });

    test('client.threads.joinStream follows the runs of a thread and resumes with lastEventId', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.create(t.thread_id, 'stress', {
            input: human('go'), streamMode: ['custom'], config: { configurable: { tokens: 20, delay_ms: 10 } },
        });
        const ac = new AbortController();
        const first = [];
        for await (const p of c.threads.joinStream(t.thread_id, { signal: ac.signal })) {
            first.push(p);
            if (p.event === 'custom' && p.data.index === 3) break;
        }
        const last = first.at(-1).id;
        assert.match(last, /^[0-9a-f-]{36}:\d+$/);
        const rest = [];
        for await (const p of c.threads.joinStream(t.thread_id, { lastEventId: last })) {
            rest.push(p);
            if (p.event === 'end') break;
        }
        const tokens = [...first, ...rest].filter((p) => p.event === 'custom').map((p) => p.data.index);
        assert.deepEqual(tokens, [...Array(20).keys()]);
    });

    test('interrupt and resume with Command', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const first = await c.runs.wait(t.thread_id, 'interrupt', { input: human('q') });
        assert.deepEqual(first.__interrupt__[0].value, { question: 'what now?' });
        const state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.next, ['ask']);
        assert.equal((await c.threads.get(t.thread_id)).status, 'interrupted');
        const parts = [];
        for await (const p of c.runs.stream(t.thread_id, 'interrupt', { command: { resume: 'fine' }, streamMode: 'updates' })) parts.push(p);
        const upd = parts.find((p) => p.event === 'updates' && p.data.ask);
        assert.equal(upd.data.ask.messages[0].content, 'you said: fine');
        assert.equal((await c.threads.get(t.thread_id)).status, 'idle');
    });

    test('multitask: reject is a 409; cancel and delete', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const slow = { input: human('s'), config: { configurable: { tokens: 40, delay_ms: 100, mode: 'custom' } } };
        const run = await c.runs.create(t.thread_id, 'stress', slow);
        await rejectsWith(c.runs.create(t.thread_id, 'echo', { input: human('x'), multitaskStrategy: 'reject' }), 409);
        await c.runs.cancel(t.thread_id, run.run_id, true);
        assert.equal((await c.runs.get(t.thread_id, run.run_id)).status, 'interrupted');
        const again = await c.runs.create(t.thread_id, 'stress', slow);
        const out = await c.runs.wait(t.thread_id, 'echo', { input: human('now'), multitaskStrategy: 'interrupt' });
        assert.equal(out.messages.at(-1).content, 'now');
        assert.equal((await c.runs.get(t.thread_id, again.run_id)).status, 'interrupted');
        await c.runs.delete(t.thread_id, again.run_id);
        await rejectsWith(c.runs.get(t.thread_id, again.run_id), 404);
    });

    test('cancelMany: by run ids, by status on a thread, and by status on every thread', { skip: lacks('runs.cancelMany') }, async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const slow = { input: human('s'), config: { configurable: { tokens: 40, delay_ms: 100, mode: 'custom' } } };
        const first = await c.runs.create(t.thread_id, 'stress', slow);
        const queued = await c.runs.create(t.thread_id, 'stress', { ...slow, multitaskStrategy: 'enqueue' });
        assert.equal(await c.runs.cancelMany({ threadId: t.thread_id, status: 'pending' }), undefined);
        await c.runs.join(t.thread_id, queued.run_id);
        assert.equal((await c.runs.get(t.thread_id, queued.run_id)).status, 'interrupted');
        assert.equal((await c.runs.get(t.thread_id, first.run_id)).status, 'running');
        await c.runs.cancelMany({ threadId: t.thread_id, runIds: [first.run_id], action: 'interrupt' });
        await c.runs.join(t.thread_id, first.run_id);
        assert.equal((await c.runs.get(t.thread_id, first.run_id)).status, 'interrupted');
        await rejectsWith(c.runs.cancelMany({ runIds: [first.run_id] }), 422); // run ids need their thread
        const again = await c.runs.create(t.thread_id, 'stress', slow);
        await c.runs.cancelMany({ status: 'running' }); // every thread of the caller
        await c.runs.join(t.thread_id, again.run_id);
        assert.equal((await c.runs.get(t.thread_id, again.run_id)).status, 'interrupted');
    });

    test('stateless wait and stream', async () => {
        const c = sdk.client;
        const out = await c.runs.wait(null, 'echo', { input: human('free') });
        assert.equal(out.messages.at(-1).content, 'free');
        const parts = [];
        for await (const p of c.runs.stream(null, 'echo', { input: human('s'), streamMode: 'values' })) parts.push(p);
        assert.equal(parts.filter((p) => p.event === 'values').at(-1).data.messages.at(-1).content, 's');
    });
});
