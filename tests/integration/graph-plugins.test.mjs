// Graph plugins listed in a langgraph.json (--graphs, graphs_file, AGENTD_GRAPHS): a plugin's graph is
// served beside the built-ins with its system assistant; the file's env reaches the graphs (object or
// .env file); each bad entry stops agentd at start with exit 2 and a message naming it. The plugins
// are tests/integration/plugins/test_graphs.c, built three ways (AGENTD_TEST_PLUGIN_DIR).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { assertNoSanitizerReport, request, runAgentd, startAgentd, writeTempFile } from './lib/harness.mjs';
import { openSse } from './lib/sse.mjs';

const PLUGINS = process.env.AGENTD_TEST_PLUGIN_DIR;
if (!PLUGINS || !fs.existsSync(path.join(PLUGINS, 'plugin_good.so'))) {
    throw new Error(`AGENTD_TEST_PLUGIN_DIR=${PLUGINS}: no plugin_good.so (built by tests/integration/CMakeLists.txt)`);
}
const good = path.join(PLUGINS, 'plugin_good.so');

/** A langgraph.json with `content` (an object) in a directory of its own; returns its path. */
function graphsFile(content) {
    return writeTempFile('langgraph.json', content);
}

/** POST /runs/wait on a new thread of graph `graphId` with one human message; the answer's last message. */
async function lastAnswer(port, graphId) {
    const res = await request(port, {
        method: 'POST',
        path: '/runs/wait',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ assistant_id: graphId, input: { messages: [{ type: 'human', content: 'hi' }] } }),
    });
    assert.equal(res.status, 200, res.text);
    const msgs = res.json().messages;
    return msgs[msgs.length - 1].content;
}

function describeRun(r) {
    return `command: ${r.command}\nexit code=${r.code} signal=${r.signal} started=${r.started}\nstderr:\n${r.stderr}`;
}

/** agentd must refuse to start: exit 2, a message naming the entry and matching `re`. */
function expectRefused(r, entry, re) {
    assert.equal(r.started, false, `agentd started\n${describeRun(r)}`);
    assert.equal(r.code, 2, `exit code\n${describeRun(r)}`);
    if (entry) assert.ok(r.stderr.includes(`graph '${entry}'`), `stderr names graph '${entry}'\n${describeRun(r)}`);
    assert.match(r.stderr, re, describeRun(r));
    assertNoSanitizerReport(r.stderr);
}

describe('graph plugins', { timeout: 120000 }, () => {
    it('serves a plugin graph beside the built-ins, under each id it is listed as, with the env of the file', async (t) => {
        const file = graphsFile({
            graphs: { mine: `${good}:good_graph`, mine_too: { path: `${good}:good_graph` } },
            env: { PLUGIN_TEST_WORD: 'from-json' },
            dependencies: ['.'],
            node_version: '20',
        });
        const srv = await startAgentd({ t, args: ['--graphs', file], waitReady: true });
        assert.equal(await lastAnswer(srv.port, 'mine'), 'ok from-json');
        assert.equal(await lastAnswer(srv.port, 'mine_too'), 'ok from-json');
        assert.equal(await lastAnswer(srv.port, 'echo'), 'hi', 'the built-ins stay');
        const res = await request(srv.port, {
            method: 'POST',
            path: '/assistants/search',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ graph_id: 'mine', metadata: { created_by: 'system' } }),
        });
        const found = res.json();
        assert.equal(found.length, 1, res.text);
        assert.equal(found[0].name, 'mine');
        const graph = (await request(srv.port, { path: `/assistants/${found[0].assistant_id}/graph` })).json();
        assert.deepEqual(graph.nodes.map((n) => n.id), ['__start__', 'answer', '__end__']);
    });

    it('reads the file from AGENTD_GRAPHS and from the config key graphs_file, paths relative to the file', async (t) => {
        const file = graphsFile({ graphs: { rel: './plugin_good.so:good_graph' } });
        fs.copyFileSync(good, path.join(path.dirname(file), 'plugin_good.so'));
        const a = await startAgentd({ t, env: { AGENTD_GRAPHS: file }, waitReady: true });
        assert.equal(await lastAnswer(a.port, 'rel'), 'ok (unset)');
        const b = await startAgentd({ t, config: { graphs_file: file }, waitReady: true });
        assert.equal(await lastAnswer(b.port, 'rel'), 'ok (unset)');
    });

    it('applies a .env file named by "env" before the graphs load', async (t) => {
        const file = graphsFile({ graphs: { needs_env: `${good}:env_graph` }, env: '.env' });
        fs.writeFileSync(path.join(path.dirname(file), '.env'), '# comment\n\nexport PLUGIN_TEST_WORD="from dotenv"\nOTHER=x # comment\n');
        const srv = await startAgentd({ t, args: ['--graphs', file], waitReady: true });
        assert.equal(await lastAnswer(srv.port, 'needs_env'), 'ok from dotenv');
        // Without it the graph's function builds nothing: proof that the variable came from the file.
        const bare = graphsFile({ graphs: { needs_env: `${good}:env_graph` } });
        expectRefused(await runAgentd({ args: ['--graphs', bare] }), 'needs_env', /returned no graph definition/);
    });

    it('keeps a wait-for-all edge\'s progress in the checkpoint, across an interrupt and a restart', async (t) => {
        const file = graphsFile({ graphs: { join: `${good}:join_graph` } });
        const post = (port, path, body) =>
            request(port, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        let srv = await startAgentd({ args: ['--graphs', file], waitReady: true });
        const thread = (await post(srv.port, '/threads', {})).json().thread_id;
        const first = await post(srv.port, `/threads/${thread}/runs/wait`, { assistant_id: 'join', input: { stop: true } });
        assert.equal(first.status, 200, first.text);
        assert.deepEqual(first.json().__interrupt__[0].value, 'go on?');
        const state = (await request(srv.port, { path: `/threads/${thread}/state` })).json();
        assert.deepEqual(state.next, ['a2']);
        assert.deepEqual(state.values.log, ['a', 'b']);
        assert.equal(await srv.stop(), 0);
        // A new process reads the checkpoint back from Postgres: b's run still counts for c.
        srv = await startAgentd({ t, args: ['--graphs', file], waitReady: true });
        const done = await post(srv.port, `/threads/${thread}/runs/wait`, { assistant_id: 'join', command: { resume: 'yes' } });
        assert.equal(done.status, 200, done.text);
        assert.deepEqual(done.json().log, ['a', 'b', 'a2', 'c']);
    });

    it('streams a subgraph\'s v2 events under its namespace, opened and closed with its node\'s task', async (t) => {
        const file = graphsFile({ graphs: { outer: `${good}:subgraph_graph` } });
        const srv = await startAgentd({ t, args: ['--graphs', file], waitReady: true });
        const post = (path, body) =>
            request(srv.port, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const thread = (await post('/threads', {})).json().thread_id;
        const s = await openSse(`${srv.url}/threads/${thread}/stream/events`, {
            channels: ['updates', 'lifecycle', 'checkpoints', 'values', 'tasks'],
        });
        const run = await post(`/threads/${thread}/runs/wait`, { assistant_id: 'outer', input: {} });
        assert.equal(run.status, 200, run.text);
        await s.waitFor(
            (f) => f.event === 'lifecycle' && f.data.params.namespace.length === 0 && f.data.params.data.event === 'completed',
            'the terminal lifecycle',
        );
        s.close();
        const frames = s.frames.map((f) => ({ method: f.event, ns: f.data.params.namespace, data: f.data.params.data }));
        const subNs = frames.find((f) => f.method === 'updates' && f.ns.length === 1)?.ns;
        assert.ok(subNs && /^sub:[0-9a-f-]{36}$/.test(subNs[0]), JSON.stringify(frames.map((f) => [f.method, f.ns])));
        const inSub = (m) => frames.filter((f) => f.method === m && f.ns.length === 1 && f.ns[0] === subNs[0]);
        assert.deepEqual(inSub('updates').map((f) => f.data.node), ['i1', 'i2']);
        assert.equal(inSub('checkpoints').length, 4);
        assert.deepEqual(inSub('values').at(-1).data.log, ['before', 'i1', 'i2']);
        assert.deepEqual(inSub('lifecycle').map((f) => f.data.event), ['started', 'completed']);
        assert.deepEqual(frames.filter((f) => f.method === 'updates' && f.ns.length === 0).map((f) => f.data.node), ['before', 'sub', 'after']);
        // The lifecycle of sub's namespace comes between the root's running and completed.
        const at = (pred) => frames.findIndex(pred);
        assert.ok(at((f) => f.method === 'lifecycle' && f.ns.length === 1 && f.data.event === 'started') >
            at((f) => f.method === 'lifecycle' && f.ns.length === 0 && f.data.event === 'running'));
    });

    it('serves the v2 state commands of a subgraph\'s namespace', async (t) => {
        const file = graphsFile({ graphs: { outer: `${good}:subgraph_graph` } });
        const srv = await startAgentd({ t, args: ['--graphs', file], waitReady: true });
        const post = (path, body) =>
            request(srv.port, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const thread = (await post('/threads', {})).json().thread_id;
        assert.equal((await post(`/threads/${thread}/runs/wait`, { assistant_id: 'outer', input: { ask: true } })).status, 200);
        const deep = (await request(srv.port, { path: `/threads/${thread}/state?subgraphs=true` })).json();
        const ns = deep.tasks[0].state.checkpoint.checkpoint_ns;
        assert.match(ns, /^sub:/);
        const cmd = async (id, method, params) => (await post(`/threads/${thread}/commands`, { id, method, params })).json();
        const got = await cmd(1, 'state.get', { namespace: [ns] });
        assert.equal(got.type, 'success', JSON.stringify(got));
        assert.deepEqual(got.result.values.log, ['before', 'i1']);
        assert.equal(got.result.checkpoint.ns, ns);
        const list = await cmd(2, 'state.listCheckpoints', { namespace: [ns] });
        assert.equal(list.type, 'success', JSON.stringify(list));
        assert.equal(list.result.checkpoints.length, 3); // input, after start, after i1 (re-emitted with the interrupt)
        const root = await cmd(3, 'state.get', { namespace: [] });
        assert.deepEqual(root.result.values.log, ['before']);
        assert.equal((await cmd(4, 'state.get', { namespace: ['sub:00000000-0000-0000-0000-000000000000'] })).error, 'no_such_namespace');
        assert.equal((await cmd(5, 'state.get', { namespace: [7] })).error, 'invalid_argument');
    });

    const cases = [
        ['a missing library', { x: `${PLUGINS}/nope.so:good_graph` }, 'x', /cannot load .*nope\.so/],
        ['a missing symbol', { x: `${good}:no_such_symbol` }, 'x', /has no symbol no_such_symbol/],
        ['a library without an ABI version', { x: `${PLUGINS}/plugin_noabi.so:good_graph` }, 'x', /exports no graph ABI version/],
        ['a library for another ABI version', { x: `${PLUGINS}/plugin_abi999.so:good_graph` }, 'x', /built for graph ABI version 999; this agentd has version 1\b/],
        ['a definition that does not compile', { x: `${good}:bad_graph` }, 'x', /unknown node/],
        ['a function that returns nothing', { x: `${good}:null_graph` }, 'x', /returned no graph definition/],
        ['a compiled definition', { x: `${good}:compiled_graph` }, 'x', /returned a compiled definition/],
        ['the id of a built-in graph', { echo: `${good}:good_graph` }, 'echo', /registered twice/],
        ['an entry without a symbol', { x: `${good}` }, 'x', /is not "<path>:<symbol>"/],
        ['a Python graph', { x: './agent.py:graph' }, 'x', /only graph plugins .*not supported yet/],
        ['an entry that is not a string', { x: 42 }, 'x', /must be a string/],
    ];
    for (const [what, graphs, entry, re] of cases) {
        it(`refuses ${what}: exit 2 naming the entry`, async () => {
            expectRefused(await runAgentd({ args: ['--graphs', graphsFile({ graphs })] }), entry, re);
        });
    }

    it('refuses a file that is not a graphs file: exit 2 naming it', async () => {
        const missing = path.join(PLUGINS, 'no-such-langgraph.json');
        expectRefused(await runAgentd({ args: ['--graphs', missing] }), null, /no-such-langgraph\.json/);
        const notJson = writeTempFile('langgraph.json', '{"graphs": ');
        expectRefused(await runAgentd({ args: ['--graphs', notJson] }), null, /langgraph\.json: .*line 1/);
        const dup = writeTempFile('langgraph.json', `{"graphs": {"a": "${good}:good_graph", "a": "${good}:good_graph"}}`);
        expectRefused(await runAgentd({ args: ['--graphs', dup] }), null, /duplicate/);
        expectRefused(await runAgentd({ args: ['--graphs', graphsFile({ graphs: [] })] }), null, /"graphs" must be an object/);
        expectRefused(
            await runAgentd({ args: ['--graphs', graphsFile({ graphs: { x: `${good}:good_graph` }, env: { N: 1 } })] }),
            null,
            /env\.N must be a string/,
        );
        expectRefused(
            await runAgentd({ args: ['--graphs', graphsFile({ graphs: { x: `${good}:good_graph` }, env: 'missing.env' })] }),
            null,
            /missing\.env/,
        );
    });
});
