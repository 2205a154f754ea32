// The engine features of C graphs that the example does not show, through the real SDK: a
// wait-for-all edge whose sources run in different supersteps and across an interrupt resumed with
// Command, a node's retry policy (attempts seen on the custom stream, the run ending once attempts run
// out), and a subgraph (its events with stream_subgraphs, an interrupt inside it resumed, its state with
// getState(subgraphs), getSubgraphs). The graphs are tests/integration/plugins/test_graphs.c (AGENTD_TEST_PLUGIN_DIR), served with
// --graphs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startSdk } from './lib.mjs';

const PLUGINS = process.env.AGENTD_TEST_PLUGIN_DIR;

describe('C graph engine features through the SDK', { timeout: 120000 }, () => {
    let tmp, sdk, c;

    before(async () => {
        assert.ok(PLUGINS && fs.existsSync(path.join(PLUGINS, 'plugin_good.so')), `AGENTD_TEST_PLUGIN_DIR=${PLUGINS}`);
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-features-'));
        const so = path.join(PLUGINS, 'plugin_good.so');
        fs.writeFileSync(path.join(tmp, 'langgraph.json'), JSON.stringify({ graphs: { join: `${so}:join_graph`, retry: `${so}:retry_graph`, outer: `${so}:subgraph_graph` } }));
        sdk = await startSdk({ args: ['--graphs', path.join(tmp, 'langgraph.json')] });
        c = sdk.client;
    });

    after(async () => {
        if (sdk) await sdk.dispose();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('a wait-for-all edge runs its target once, after sources that ran in different steps', async () => {
        const t = await c.threads.create();
        const out = await c.runs.wait(t.thread_id, 'join', { input: {} });
        assert.deepEqual(out.log, ['a', 'b', 'a2', 'c']);
        const history = await c.threads.getHistory(t.thread_id, { limit: 10 });
        // newest first: c ran alone after a2 ran alone
        assert.deepEqual(history.map((s) => s.next), [[], ['c'], ['a2'], ['a', 'b'], ['__start__']]);
    });

    test('its progress survives an interrupt between its sources', async () => {
        const t = await c.threads.create();
        const first = await c.runs.wait(t.thread_id, 'join', { input: { stop: true } });
        assert.equal(first.__interrupt__[0].value, 'go on?');
        assert.deepEqual((await c.threads.getState(t.thread_id)).next, ['a2']);
        const done = await c.runs.wait(t.thread_id, 'join', { command: { resume: 'yes' } });
        assert.deepEqual(done.log, ['a', 'b', 'a2', 'c']);
    });

    test('a retry policy runs a failing node again until it succeeds', async () => {
        const attempts = [];
        let values = null;
        for await (const part of c.runs.stream(null, 'retry', { input: { fails: 2 }, streamMode: ['custom', 'values'] })) {
            if (part.event === 'custom') attempts.push(part.data.attempt);
            if (part.event === 'values') values = part.data;
        }
        assert.deepEqual(attempts, [1, 2, 3]);
        assert.equal(values.attempts, 3);
    });

    test('a node out of attempts fails the run with its last error', async () => {
        const t = await c.threads.create();
        const run = await c.runs.create(t.thread_id, 'retry', { input: { fails: 3 } });
        await c.runs.join(t.thread_id, run.run_id);
        const ended = await c.runs.get(t.thread_id, run.run_id);
        assert.equal(ended.status, 'error');
        const state = await c.threads.getState(t.thread_id);
        assert.equal(state.tasks[0].error, 'flaky attempt 3');
    });

    test('a subgraph streams its events under its namespace with streamSubgraphs, and only then', async () => {
        const t = await c.threads.create();
        const events = [];
        for await (const part of c.runs.stream(t.thread_id, 'outer', { input: {}, streamMode: 'updates', streamSubgraphs: true })) {
            events.push(part.event);
        }
        const sub = events.filter((e) => e.startsWith('updates|sub:'));
        assert.equal(sub.length, 2, JSON.stringify(events)); // i1 and i2
        assert.match(sub[0], /^updates\|sub:[0-9a-f-]{36}$/);
        assert.equal(events.filter((e) => e === 'updates').length, 3); // before, sub, after
        const state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.values.log, ['before', 'i1', 'i2', 'after']);
        const plain = [];
        for await (const part of c.runs.stream(null, 'outer', { input: {}, streamMode: 'updates' })) plain.push(part.event);
        assert.ok(!plain.some((e) => e.includes('|')), JSON.stringify(plain));
    });

    test('an interrupt inside a subgraph surfaces, its state shows with subgraphs, and the resume goes on inside it', async () => {
        const t = await c.threads.create();
        const first = await c.runs.wait(t.thread_id, 'outer', { input: { ask: true } });
        assert.equal(first.__interrupt__[0].value, 'inner?');
        const bare = await c.threads.getState(t.thread_id);
        assert.deepEqual(bare.next, ['sub']);
        assert.equal(bare.tasks[0].state, null);
        const deep = await c.threads.getState(t.thread_id, undefined, { subgraphs: true });
        const inner = deep.tasks[0].state;
        assert.ok(inner, JSON.stringify(deep.tasks));
        assert.deepEqual(inner.values.log, ['before', 'i1']);
        assert.deepEqual(inner.next, ['i2']);
        assert.match(inner.checkpoint.checkpoint_ns, /^sub:/);
        const done = await c.runs.wait(t.thread_id, 'outer', { command: { resume: 'yes' } });
        assert.deepEqual(done.log, ['before', 'i1', 'i2:yes', 'after']);
    });

    test('getSubgraphs lists the subgraph node with its schemas', async () => {
        const [a] = await c.assistants.search({ graphId: 'outer', metadata: { created_by: 'system' } });
        const subs = await c.assistants.getSubgraphs(a.assistant_id);
        assert.deepEqual(Object.keys(subs), ['sub']);
        assert.ok(subs.sub.state_schema && subs.sub.input_schema, JSON.stringify(subs));
        assert.deepEqual(await c.assistants.getSubgraphs(a.assistant_id, { namespace: 'nope' }), {});
    });

    test('a node of a subgraph ends it with a command to the parent graph (graph: PARENT)', async () => {
        const out = await c.runs.wait(null, 'outer', { input: { escape: true } });
        assert.deepEqual(out.log, ['before', 'i1-escape', 'after']);
    });
});
