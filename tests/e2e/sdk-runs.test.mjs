// The real LangGraph JS SDK (each SDK line) against agentd: client.runs (create, createBatch, wait,
// stream in every stream mode, join, joinStream, get, list, cancel, cancelMany, delete) with every
// option they send, client.threads.joinStream, stateless runs, interrupts resumed with Command,
// multitask strategies, and client.threads.getState / getHistory after runs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { lacks, lacksOption, rejectsWith, useSdk } from './lib.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const human = (content) => ({ messages: [{ role: 'user', content }] });
const contents = (values) => values.messages.map((m) => m.content);
// A stress run that goes on for about 5 s unless cancelled.
const slow = { input: human('s'), streamMode: ['custom'], config: { configurable: { tokens: 100, delay_ms: 50, mode: 'custom' } } };

async function collect(iterable) {
    const out = [];
    for await (const p of iterable) out.push(p);
    return out;
}

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

    test('create keeps every option on the Run; onRunCreated gets its ids; join answers the output', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const created = [];
        const run = await c.runs.create(t.thread_id, 'echo', {
            input: human('kept'),
            metadata: { who: 'me' },
            config: { tags: ['x'], recursion_limit: 7, configurable: { k: 1 } },
            context: { user: 'u' },
            streamMode: ['values', 'updates'],
            streamSubgraphs: true,
            streamResumable: true,
            multitaskStrategy: 'enqueue',
            onRunCreated: (m) => created.push(m),
        });
        assert.deepEqual(created, [{ run_id: run.run_id, thread_id: t.thread_id }]);
        assert.equal(run.status, 'pending');
        assert.equal(run.thread_id, t.thread_id);
        assert.equal(run.assistant_id, ECHO);
        assert.equal(run.multitask_strategy, 'enqueue');
        assert.equal(run.metadata.who, 'me');
        assert.deepEqual(run.kwargs.input, human('kept'));
        assert.deepEqual(run.kwargs.config.tags, ['x']);
        assert.equal(run.kwargs.config.configurable.k, 1);
        assert.deepEqual(run.kwargs.context, { user: 'u' });
        assert.deepEqual(run.kwargs.stream_mode, ['values', 'updates']);
        assert.equal(run.kwargs.subgraphs, true);
        assert.equal(run.kwargs.resumable, true);
        assert.deepEqual(contents(await c.runs.join(t.thread_id, run.run_id)), ['kept', 'kept']);
        const done = await c.runs.get(t.thread_id, run.run_id);
        assert.equal(done.status, 'success');
        assert.deepEqual(done.metadata, run.metadata);
    });

    test('stream and wait call onRunCreated with the run they started', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const seen = [];
        const parts = await collect(c.runs.stream(t.thread_id, 'echo', { input: human('s'), onRunCreated: (m) => seen.push(m) }));
        const meta = parts.find((p) => p.event === 'metadata');
        await c.runs.wait(t.thread_id, 'echo', { input: human('w'), onRunCreated: (m) => seen.push(m) });
        const [latest] = await c.runs.list(t.thread_id, { limit: 1 });
        assert.deepEqual(seen, [
            { run_id: meta.data.run_id, thread_id: t.thread_id },
            { run_id: latest.run_id, thread_id: t.thread_id },
        ]);
    });

    test('interruptBefore and interruptAfter stop the run at the node; a run with no input goes on', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const before = await c.runs.wait(t.thread_id, 'echo', { input: human('b'), interruptBefore: ['echo'] });
        assert.deepEqual(before.__interrupt__, []);
        let state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.next, ['echo']);
        assert.deepEqual(contents(state.values), ['b']);
        assert.equal((await c.threads.get(t.thread_id)).status, 'interrupted');
        assert.equal((await c.runs.list(t.thread_id))[0].status, 'interrupted');
        const resumed = await c.runs.wait(t.thread_id, 'echo', { input: null });
        assert.deepEqual(contents(resumed), ['b', 'b']);

        const u = await c.threads.create();
        const after = await c.runs.wait(u.thread_id, 'echo', { input: human('a'), interruptAfter: '*' });
        assert.ok('__interrupt__' in after);
        state = await c.threads.getState(u.thread_id);
        assert.deepEqual(state.next, []);
        assert.deepEqual(contents(state.values), ['a', 'a']);
        assert.equal((await c.threads.get(u.thread_id)).status, 'interrupted');
    });

    test('checkpointId and checkpoint start a run from an earlier checkpoint', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('a') });
        const hist = await c.threads.getHistory(t.thread_id);
        const first = hist.find((h) => h.metadata.source === 'input');
        const latest = hist[0];
        const forked = await c.runs.wait(t.thread_id, 'echo', { input: human('b'), checkpointId: first.checkpoint.checkpoint_id });
        assert.deepEqual(contents(forked), ['b', 'b']);
        const more = await c.runs.wait(t.thread_id, 'echo', {
            input: human('c'),
            checkpoint: { checkpoint_id: latest.checkpoint.checkpoint_id, checkpoint_ns: '' },
        });
        assert.deepEqual(contents(more), ['a', 'a', 'c', 'c']);
        await rejectsWith(c.runs.wait(t.thread_id, 'echo', { input: human('x'), checkpointId: randomUUID() }), 404);
    });

    test('multitaskStrategy rollback: the active run is cancelled and deleted, with what it wrote', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('kept') });
        const r1 = await c.runs.create(t.thread_id, 'stress', slow);
        const out = await c.runs.wait(t.thread_id, 'echo', { input: human('after'), multitaskStrategy: 'rollback' });
        assert.deepEqual(contents(out), ['kept', 'kept', 'after', 'after']);
        await rejectsWith(c.runs.get(t.thread_id, r1.run_id), 404);
    });

    test('cancel with action rollback deletes the run and what it wrote; interrupt keeps both', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('kept') });
        const r1 = await c.runs.create(t.thread_id, 'stress', slow);
        await c.runs.cancel(t.thread_id, r1.run_id, true, 'rollback');
        await rejectsWith(c.runs.get(t.thread_id, r1.run_id), 404);
        assert.deepEqual(contents((await c.threads.getState(t.thread_id)).values), ['kept', 'kept']);
        assert.equal((await c.threads.get(t.thread_id)).status, 'idle');
        const r2 = await c.runs.create(t.thread_id, 'stress', slow);
        await c.runs.cancel(t.thread_id, r2.run_id, true, 'interrupt');
        assert.equal((await c.runs.get(t.thread_id, r2.run_id)).status, 'interrupted');
        await rejectsWith(c.runs.cancel(t.thread_id, randomUUID(), true), 404);
    });

    test('cancel with reason taken: the Run says why; taken with rollback is a 422', { skip: lacksOption('RunsClient.cancel.options.reason') }, async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const run = await c.runs.create(t.thread_id, 'stress', slow);
        await c.runs.cancel(t.thread_id, run.run_id, true, 'interrupt', { reason: 'taken' });
        const got = await c.runs.get(t.thread_id, run.run_id);
        assert.equal(got.status, 'interrupted');
        assert.match(got.cancel_reason ?? '', /^taken:/, JSON.stringify(got));
        const other = await c.runs.create(t.thread_id, 'stress', slow);
        try {
            await rejectsWith(c.runs.cancel(t.thread_id, other.run_id, true, 'rollback', { reason: 'taken' }), 422);
        } finally {
            await c.runs.cancel(t.thread_id, other.run_id, true);
        }
    });

    test('afterSeconds delays the start; ifNotExists create makes the thread, reject answers 404', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const t0 = Date.now();
        const run = await c.runs.create(t.thread_id, 'echo', { input: human('later'), afterSeconds: 1 });
        assert.equal(run.status, 'pending');
        assert.deepEqual(contents(await c.runs.join(t.thread_id, run.run_id)), ['later', 'later']);
        assert.ok(Date.now() - t0 >= 950, `the run ended ${Date.now() - t0} ms after its creation, before its second`);

        const id = randomUUID();
        const body = await rejectsWith(c.runs.wait(id, 'echo', { input: human('x'), ifNotExists: 'reject' }), 404);
        assert.equal(body.message, `Thread '${id}' not found`);
        const out = await c.runs.wait(id, 'echo', { input: human('made'), ifNotExists: 'create' });
        assert.deepEqual(contents(out), ['made', 'made']);
        assert.equal((await c.threads.get(id)).thread_id, id);
        const parts = await collect(c.runs.stream(randomUUID(), 'echo', { input: human('s'), ifNotExists: 'create', streamMode: 'values' }));
        assert.equal(parts.at(-1).event === 'end' ? parts.at(-2).event : parts.at(-1).event, 'values');
    });

    test('stateless: onCompletion keep keeps the thread, the default deletes it; createBatch starts several runs', async () => {
        const c = sdk.client;
        // (runs.create of 2.0.0 does not send onCompletion; stream and wait do on both lines.)
        const made = [];
        const onRunCreated = (m) => made.push(m);
        await collect(c.runs.stream(null, 'echo', { input: human('keep'), onCompletion: 'keep', streamMode: 'values', onRunCreated }));
        assert.deepEqual(contents((await c.threads.getState(made[0].thread_id)).values), ['keep', 'keep']);
        assert.deepEqual(contents(await c.runs.wait(null, 'echo', { input: human('del'), onCompletion: 'delete', onRunCreated })), ['del', 'del']);
        await rejectsWith(c.threads.get(made[1].thread_id), 404);
        const gone = await c.runs.create(null, 'echo', { input: human('go') });
        assert.deepEqual(contents(await c.runs.join(gone.thread_id, gone.run_id)), ['go', 'go']);
        await rejectsWith(c.threads.get(gone.thread_id), 404);

        const batch = await c.runs.createBatch([
            { assistantId: 'echo', input: human('b1'), metadata: { n: 1 } },
            { assistantId: 'stress', input: human('b2'), config: { configurable: { tokens: 2, mode: 'custom' } } },
        ]);
        assert.equal(batch.length, 2);
        assert.notEqual(batch[0].run_id, batch[1].run_id);
        assert.notEqual(batch[0].thread_id, batch[1].thread_id);
        assert.equal(batch[0].assistant_id, ECHO);
        assert.equal(batch[0].metadata.n, 1);
        assert.ok(batch.every((r) => r.status === 'pending'));
        assert.deepEqual(contents(await c.runs.join(batch[0].thread_id, batch[0].run_id)), ['b1', 'b1']);
        assert.equal(contents(await c.runs.join(batch[1].thread_id, batch[1].run_id)).at(-1), 't0 t1');
        const bad = await rejectsWith(c.runs.createBatch([{ assistantId: 'echo', input: human('ok') }, { assistantId: 'no-such-graph' }]), 404);
        assert.match(bad.message, /no-such-graph/);
    });

    test('stream modes messages, events, debug, tasks and checkpoints, as the SDK yields them', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const parts = await collect(c.runs.stream(t.thread_id, 'stress', {
            input: human('m'),
            streamMode: ['messages', 'events', 'debug', 'tasks', 'checkpoints'],
            streamSubgraphs: true,
            config: { configurable: { tokens: 2 } },
        }));
        const names = new Set(parts.map((p) => p.event));
        for (const e of ['metadata', 'messages/metadata', 'messages/partial', 'events', 'debug', 'tasks', 'checkpoints']) assert.ok(names.has(e), `no ${e} event in ${[...names]}`);
        assert.deepEqual(parts.filter((p) => p.event === 'messages/partial').map((p) => p.data[0].content), ['t0', 't0 t1']);
        const cps = parts.filter((p) => p.event === 'checkpoints');
        assert.deepEqual(contents(cps.at(-1).data.values), ['m', 't0 t1']);
        assert.ok(parts.some((p) => p.event === 'tasks' && p.data.name === 'emit'));
        assert.ok(parts.some((p) => p.event === 'debug' && p.data.type === 'checkpoint'));
    });

    test('stream modes tools and lifecycle', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const parts = await collect(c.runs.stream(t.thread_id, 'echo', { input: human('life'), streamMode: ['tools', 'lifecycle', 'values'] }));
        assert.ok(!parts.some((p) => p.event === 'error'), JSON.stringify(parts));
        assert.deepEqual(contents(parts.filter((p) => p.event === 'values').at(-1).data), ['life', 'life']);
        // tools: tool calls; lifecycle: subgraphs starting and ending (`lifecycle|<namespace>`, as the
        // SDK's LifecycleStreamEvent names them). echo has neither: the run streams none of them.
        assert.deepEqual(parts.map((p) => p.event), ['metadata', 'values', 'values', 'end']);
        const run = (await c.runs.list(t.thread_id))[0];
        assert.deepEqual(run.kwargs.stream_mode, ['tools', 'lifecycle', 'values']);
    });

    test('durability sync, async and exit, and checkpointDuring false, on create, stream and wait', async () => {
        const c = sdk.client;
        const histories = {};
        for (const [how, durability] of [['create', 'sync'], ['stream', 'async'], ['wait', 'exit']]) {
            const t = await c.threads.create();
            const payload = { input: human(durability), durability };
            if (how === 'create') {
                const run = await c.runs.create(t.thread_id, 'echo', payload);
                await c.runs.join(t.thread_id, run.run_id);
            } else if (how === 'stream') {
                await collect(c.runs.stream(t.thread_id, 'echo', payload));
            } else {
                assert.deepEqual(contents(await c.runs.wait(t.thread_id, 'echo', payload)), [durability, durability]);
            }
            const state = await c.threads.getState(t.thread_id);
            assert.deepEqual(contents(state.values), [durability, durability], `${how} with durability ${durability}`);
            const hist = await c.threads.getHistory(t.thread_id);
            assert.equal(hist[0].checkpoint.checkpoint_id, state.checkpoint.checkpoint_id);
            histories[durability] = hist.length;
            assert.equal((await c.runs.list(t.thread_id))[0].status, 'success');
        }
        assert.equal(histories.sync, histories.async, 'sync and async keep the same checkpoints');
        assert.ok(histories.exit <= histories.sync, `exit keeps no more checkpoints than sync: ${JSON.stringify(histories)}`);
        const t = await c.threads.create();
        const out = await c.runs.wait(t.thread_id, 'echo', { input: human('nd'), checkpointDuring: false });
        assert.deepEqual(contents(out), ['nd', 'nd']);
        assert.deepEqual(contents((await c.threads.getState(t.thread_id)).values), ['nd', 'nd']);
    });

    test('list: limit, offset and status', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const ids = [];
        for (let i = 0; i < 3; i++) {
            const r = await c.runs.create(t.thread_id, 'echo', { input: human(`r${i}`) });
            await c.runs.join(t.thread_id, r.run_id);
            ids.push(r.run_id);
        }
        assert.deepEqual((await c.runs.list(t.thread_id)).map((r) => r.run_id), [...ids].reverse());
        assert.deepEqual((await c.runs.list(t.thread_id, { limit: 2, offset: 1 })).map((r) => r.run_id), [ids[1], ids[0]]);
        assert.equal((await c.runs.list(t.thread_id, { status: 'success' })).length, 3);
        assert.deepEqual(await c.runs.list(t.thread_id, { status: 'pending' }), []);
        await rejectsWith(c.runs.list(t.thread_id, { limit: 0 }), 422);
        await rejectsWith(c.runs.list(randomUUID()), 404);
    });

    test('list with select answers only those fields', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        await c.runs.wait(t.thread_id, 'echo', { input: human('sel') });
        const [r] = await c.runs.list(t.thread_id, { select: ['run_id', 'status'] });
        assert.deepEqual(Object.keys(r).sort(), ['run_id', 'status']);
        assert.equal(r.status, 'success');
    });

    test('joinStream: streamMode, lastEventId after the end (streamResumable), cancelOnDisconnect with an abort', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const parts = await collect(c.runs.stream(t.thread_id, 'stress', {
            input: human('r'), streamMode: ['custom'], streamResumable: true, config: { configurable: { tokens: 3, mode: 'custom' } },
        }));
        const runId = parts.find((p) => p.event === 'metadata').data.run_id;
        const firstCustom = parts.find((p) => p.event === 'custom');
        const again = await collect(c.runs.joinStream(t.thread_id, runId, { lastEventId: firstCustom.id, streamMode: ['custom'] }));
        assert.deepEqual(again.filter((p) => p.event === 'custom').map((p) => p.data.index), [1, 2]);
        assert.equal(again.at(-1).event, 'end');

        const long = await c.runs.create(t.thread_id, 'stress', slow);
        const ac = new AbortController();
        for await (const p of c.runs.joinStream(t.thread_id, long.run_id, { cancelOnDisconnect: true, signal: ac.signal })) {
            if (p.event === 'custom') {
                ac.abort(); // breaking alone leaves the SDK's connection open
                break;
            }
        }
        await c.runs.join(t.thread_id, long.run_id);
        assert.equal((await c.runs.get(t.thread_id, long.run_id)).status, 'interrupted');
    });

    test('stream onDisconnect: cancel ends the run when the client leaves, continue lets it finish', async () => {
        const c = sdk.client;
        for (const [onDisconnect, status] of [['cancel', 'interrupted'], ['continue', 'success']]) {
            const t = await c.threads.create();
            const ac = new AbortController();
            let runId;
            const cfg = onDisconnect === 'cancel' ? slow.config : { configurable: { tokens: 5, delay_ms: 20, mode: 'custom' } };
            for await (const p of c.runs.stream(t.thread_id, 'stress', { ...slow, config: cfg, onDisconnect, signal: ac.signal })) {
                if (p.event === 'metadata') runId = p.data.run_id;
                if (p.event === 'custom') {
                    ac.abort();
                    break;
                }
            }
            await c.runs.join(t.thread_id, runId);
            assert.equal((await c.runs.get(t.thread_id, runId)).status, status, `onDisconnect ${onDisconnect}`);
        }
    });

    test('join with cancelOnDisconnect answers the output of a run that ends', { skip: lacksOption('RunsClient.join.options.cancelOnDisconnect') }, async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const run = await c.runs.create(t.thread_id, 'echo', { input: human('j') });
        assert.deepEqual(contents(await c.runs.join(t.thread_id, run.run_id, { cancelOnDisconnect: true })), ['j', 'j']);
        assert.equal((await c.runs.get(t.thread_id, run.run_id)).status, 'success');
    });

    test('joinStream without a thread id follows the run (GET /runs/{run_id}/stream)', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        // Slow enough to be joined while it runs: an ended run joined without Last-Event-ID answers its end only.
        const run = await c.runs.create(t.thread_id, 'stress', { input: human('n'), streamMode: ['custom'], config: { configurable: { tokens: 3, mode: 'custom', delay_ms: 100 } } });
        const parts = await collect(c.runs.joinStream(null, run.run_id));
        assert.deepEqual(parts.filter((p) => p.event === 'custom').map((p) => p.data.index), [0, 1, 2]);
        assert.equal(parts.at(-1).event, 'end');
        await rejectsWith(collect(c.runs.joinStream(null, randomUUID())), 404);
    });
});
