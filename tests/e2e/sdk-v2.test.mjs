// The real LangGraph JS SDK speaking Agent Protocol v2 to agentd (the lines that have it): client.threads.stream()
// (run.start, messages, values, output, interrupts, input.respond, state.get, subscribe with two
// channel sets), and its SSE transport directly for `since` after a dropped connection and after an
// agentd restart.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startAgentd } from '../integration/lib/harness.mjs';
import { freshDatabase } from '../integration/lib/pg.mjs';
import { lacks, sdkModule, SDK_VERSION, useSdk } from './lib.mjs';

const { ProtocolSseTransportAdapter } = sdkModule;

const human = (content) => ({ messages: [{ role: 'user', content }] });

/** Resolves p, or rejects after ms saying what did not happen. */
const within = (p, ms, what) =>
    Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: nothing within ${ms} ms`)), ms))]);

/** Reads an SDK event iterator until pred matches; returns every event read. */
async function readUntil(events, pred) {
    const seen = [];
    for await (const e of events) {
        seen.push(e);
        if (pred(e)) break;
    }
    return seen;
}

const rootEnd = (e) => e.method === 'lifecycle' && e.params.namespace.length === 0 &&
    ['completed', 'failed', 'interrupted'].includes(e.params.data.event);

// Skipped test by test (not the suite) so that a line without protocol v2 reports each as skipped.
const noV2 = lacks('threads.stream');

describe('LangGraph SDK: protocol v2 (client.threads.stream)', { timeout: 120000 }, () => {
    const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

    test('run.start, streamed messages, values and the output', { skip: noV2 }, async () => {
        const thread = sdk.client.threads.stream({ assistantId: 'echo' });
        try {
            // Subscribed before the run (the thread does not exist yet: its stream waits for it), so
            // nothing depends on how fast the run is.
            const texts = [];
            const reading = (async () => {
                for await (const m of thread.messages) {
                    texts.push(await m.text);
                    break;
                }
            })();
            const started = await thread.run.start({ input: human('hi v2') });
            assert.match(started.run_id, /^[0-9a-f-]{36}$/);
            const out = await within(thread.output, 10000, 'thread.output');
            await within(reading, 10000, 'thread.messages');
            assert.deepEqual(texts, ['hi v2']);
            const contents = out.messages.map((m) => m.kwargs?.content ?? m.content);
            assert.deepEqual(contents, ['hi v2', 'hi v2']);
            const state = await thread.state.get({ namespace: [] });
            assert.deepEqual(state.values.messages.map((m) => m.content), ['hi v2', 'hi v2']);
            // The same thread through the v1 API.
            const st = await sdk.client.threads.getState(thread.threadId);
            assert.deepEqual(st.values.messages.map((m) => m.content), ['hi v2', 'hi v2']);
        } finally {
            await thread.close();
        }
    });

    test('human in the loop: interrupts, input.respond, the resumed output', { skip: noV2 }, async () => {
        const thread = sdk.client.threads.stream({ assistantId: 'interrupt' });
        try {
            const watch = await thread.subscribe(['lifecycle', 'input']);
            await thread.run.start({ input: human('q') });
            const seen = await within(readUntil(watch,
                (e) => e.method === 'lifecycle' && e.params.data.event === 'interrupted'), 10000, 'the interrupt');
            const req = seen.find((e) => e.method === 'input.requested');
            assert.deepEqual(req.params.data.payload, { question: 'what now?' });
            assert.equal(thread.interrupted, true);
            assert.equal(thread.interrupts.length, 1);
            assert.equal(thread.interrupts[0].interruptId, req.params.data.interrupt_id);
            const sub = await thread.subscribe(['values', 'lifecycle']);
            await thread.input.respond({ interrupt_id: thread.interrupts[0].interruptId, response: 'yes', namespace: [] });
            const after = await within(readUntil(sub, (e) => rootEnd(e) && e.params.data.event === 'completed' &&
                e.seq > req.seq), 10000, 'the resumed run');
            const values = after.filter((e) => e.method === 'values').at(-1).params.data;
            assert.deepEqual(values.messages.map((m) => m.content), ['q', 'you said: yes']);
        } finally {
            await thread.close();
        }
    });

    test('two subscriptions with different channels on one thread', { skip: noV2 }, async () => {
        const thread = sdk.client.threads.stream({ assistantId: 'stress' });
        try {
            const custom = await thread.subscribe(['custom', 'lifecycle']);
            const msgs = await thread.subscribe(['messages', 'lifecycle']);
            await thread.run.start({ input: human('go'), config: { configurable: { tokens: 5 } } });
            const [a, b] = await within(Promise.all([readUntil(custom, rootEnd), readUntil(msgs, rootEnd)]), 10000, 'both ends');
            assert.deepEqual(a.filter((e) => e.method === 'custom').map((e) => e.params.data.payload.index), [0, 1, 2, 3, 4]);
            assert.ok(a.every((e) => e.method === 'custom' || e.method === 'lifecycle'));
            const deltas = b.filter((e) => e.method === 'messages' && e.params.data.event === 'content-block-delta');
            assert.equal(deltas.length, 5);
            assert.ok(b.every((e) => e.method === 'messages' || e.method === 'lifecycle'));
        } finally {
            await thread.close();
        }
    });
});

const noSseAdapter = typeof ProtocolSseTransportAdapter !== 'function' &&
    `@langchain/langgraph-sdk ${SDK_VERSION} exports no ProtocolSseTransportAdapter`;

describe('LangGraph SDK: v2 resume with since', { timeout: 120000 }, () => {
    test('after the connection drops mid-run, and after an agentd restart', { skip: noSseAdapter }, async (t) => {
        const db = await freshDatabase({ t });
        let server = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        t.after(() => server.dispose());
        const threadId = randomUUID();
        const adapter = (url) => new ProtocolSseTransportAdapter({ apiUrl: url, threadId, maxReconnectAttempts: 0 });
        const a1 = adapter(server.url);
        const r = await a1.send({ id: 1, method: 'run.start', params: { assistant_id: 'stress', input: human('go'),
            config: { configurable: { tokens: 30, delay_ms: 5 } } } });
        assert.equal(r.type, 'success', JSON.stringify(r));
        const s1 = a1.openEventStream({ channels: ['custom', 'lifecycle'] });
        await s1.ready;
        const first = await within(readUntil(s1.events, (e) => e.method === 'custom' && e.params.data.payload.index === 9),
            10000, 'token 9');
        s1.close(); // dropped mid-run
        const lastSeq = first.at(-1).seq;
        const s2 = a1.openEventStream({ channels: ['custom', 'lifecycle'], since: lastSeq });
        const rest = await within(readUntil(s2.events, rootEnd), 10000, 'the rest');
        s2.close();
        const idx = [...first, ...rest].filter((e) => e.method === 'custom').map((e) => e.params.data.payload.index);
        assert.deepEqual(idx, [...Array(30).keys()], 'no event lost or repeated');
        const endSeq = rest.at(-1).seq;
        await a1.close();

        assert.equal(await server.stop('SIGTERM'), 0);
        server = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        const a2 = adapter(server.url);
        const s3 = a2.openEventStream({ channels: ['custom', 'lifecycle'], since: lastSeq });
        await s3.ready;
        const again = await within(readUntil(s3.events, rootEnd), 10000, 'the replay after restart');
        assert.deepEqual(again.map((e) => e.seq), rest.map((e) => e.seq), 'the same events, from Postgres');
        const r2 = await a2.send({ id: 2, method: 'run.start', params: { assistant_id: 'echo', input: human('later') } });
        assert.equal(r2.type, 'success');
        const next = await within(readUntil(s3.events, rootEnd), 10000, 'the next run');
        assert.ok(next.every((e) => e.seq > endSeq), 'seq keeps growing after the restart');
        s3.close();
        await a2.close();
    });
});

