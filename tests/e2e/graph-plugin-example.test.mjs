// A user's C graph project, as the README tells it: agentd installed into a prefix (cmake --install),
// examples/c-graph built out of tree against that installation (find_package(agentd), and once more
// with plain cc and the installed pkg-config flags), its
// langgraph.json served by the installed binary with --graphs, and the graph driven with the real SDK:
// its system assistant and drawing, a run that reads the file's env and fans out with Send (one task
// per name, reduced once), the push tasks in the checkpoint history, a node's command that leads to a
// subgraph that interrupts, resumed with Command, and what nodes wrote to the store, read back by other threads' runs
// and by the SDK's store client. On a database of its own (the store outlives threads).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startSdk } from './lib.mjs';

const SOURCE = process.env.AGENTD_SOURCE_DIR;
const BUILD = path.dirname(process.env.AGENTD_BIN || '');

function run(cmd, args) {
    try {
        execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    } catch (e) {
        throw new Error(`${cmd} ${args.join(' ')} failed:\n${e.stdout}\n${e.stderr}`);
    }
}

const human = (content) => ({ messages: [{ type: 'human', content }] });
const lastContent = (values) => values.messages[values.messages.length - 1].content;

describe('a C graph built out of tree against the installed agentd', { timeout: 240000 }, () => {
    let tmp, sdk, c;

    before(async () => {
        assert.ok(SOURCE && fs.existsSync(path.join(SOURCE, 'examples/c-graph/CMakeLists.txt')), 'AGENTD_SOURCE_DIR');
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-example-'));
        const prefix = path.join(tmp, 'prefix'), project = path.join(tmp, 'project');
        run('cmake', ['--install', BUILD, '--prefix', prefix]);
        // The user's project: its sources and langgraph.json, built in its own ./build.
        fs.cpSync(path.join(SOURCE, 'examples/c-graph'), project, { recursive: true, filter: (p) => !p.endsWith('/build') });
        run('cmake', ['-S', project, '-B', path.join(project, 'build'), `-DCMAKE_PREFIX_PATH=${prefix}`]);
        run('cmake', ['--build', path.join(project, 'build')]);
        // The same source built without CMake, with the flags of the installed pkg-config file, listed
        // under a second id.
        const pcDir = path.join(prefix, 'lib/pkgconfig');
        const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'agentd-graph'], { env: { ...process.env, PKG_CONFIG_PATH: pcDir }, encoding: 'utf8' });
        run('cc', ['-shared', '-fPIC', '-Wall', '-Werror', '-o', path.join(project, 'pc-greeter.so'), path.join(project, 'src/greeter.c'), ...flags.trim().split(/\s+/)]);
        const lg = JSON.parse(fs.readFileSync(path.join(project, 'langgraph.json'), 'utf8'));
        lg.graphs.greeter_pc = './pc-greeter.so:greeter_graph';
        fs.writeFileSync(path.join(project, 'langgraph.json'), JSON.stringify(lg));
        sdk = await startSdk({ fresh: true, bin: path.join(prefix, 'bin/agentd'), args: ['--graphs', path.join(project, 'langgraph.json')] });
        c = sdk.client;
    });

    after(async () => {
        if (sdk) await sdk.dispose();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('the graph has its system assistant and its drawing', async () => {
        const found = await c.assistants.search({ graphId: 'greeter', metadata: { created_by: 'system' } });
        assert.equal(found.length, 1);
        const graph = await c.assistants.getGraph(found[0].assistant_id);
        assert.deepEqual(graph.nodes.map((n) => n.id).sort(), ['__end__', '__start__', 'done', 'greet_one', 'review', 'split']);
        assert.ok(graph.edges.some((e) => e.source === 'split' && e.target === 'greet_one' && e.conditional));
    });

    test('a run answers with the greeting the file\'s env sets', async () => {
        const t = await c.threads.create();
        const out = await c.runs.wait(t.thread_id, 'greeter', { input: human('Ada') });
        assert.equal(lastContent(out), 'Hello, Ada!');
        assert.deepEqual(out.greeted, ['Hello, Ada!']);
    });

    test('Send fans out one task per name, applied in the order sent; the reduce step runs once', async () => {
        const t = await c.threads.create();
        const out = await c.runs.wait(t.thread_id, 'greeter', { input: human('Bob, Cy, Di') });
        assert.deepEqual(out.greeted, ['Hello, Bob!', 'Hello, Cy!', 'Hello, Di!']);
        assert.equal(lastContent(out), 'Hello, Bob! Hello, Cy! Hello, Di!');
        assert.equal(out.messages.filter((m) => m.type === 'ai').length, 1, 'done ran once');
        // The checkpoint after split lists a push task per packet, each with its own id.
        const history = await c.threads.getHistory(t.thread_id, { limit: 10 });
        const fan = history.find((s) => s.next.length === 3);
        assert.ok(fan, JSON.stringify(history.map((s) => s.next)));
        assert.deepEqual(fan.next, ['greet_one', 'greet_one', 'greet_one']);
        assert.deepEqual(fan.tasks.map((k) => k.path), [['__pregel_push', 0], ['__pregel_push', 1], ['__pregel_push', 2]]);
        assert.equal(new Set(fan.tasks.map((k) => k.id)).size, 3);
        assert.ok(!('send_arg' in fan.tasks[0]), 'the stored packet is not shown');
        // The tasks stream shows each push task's own input.
        const starts = [];
        for await (const part of c.runs.stream(t.thread_id, 'greeter', { input: human('Ed, Flo'), streamMode: 'tasks' })) {
            if (part.event === 'tasks' && part.data.name === 'greet_one' && 'input' in part.data) starts.push(part.data.input);
        }
        assert.deepEqual(starts, [{ name: 'Ed' }, { name: 'Flo' }]);
    });

    test('a question goes on to a subgraph that interrupts; resuming with Command finishes inside it', async () => {
        const t = await c.threads.create();
        const first = await c.runs.wait(t.thread_id, 'greeter', { input: human('Gus, Hal?') });
        assert.deepEqual(first.__interrupt__[0].value, { question: 'confirm?' });
        const state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.next, ['review'], 'done went on to review with its command');
        const deep = await c.threads.getState(t.thread_id, undefined, { subgraphs: true });
        assert.deepEqual(deep.tasks[0].state.next, ['confirm'], 'the subgraph waits at confirm');
        assert.deepEqual(state.values.greeted, ['Hello, Gus!', 'Hello, Hal!']);
        const done = await c.runs.wait(t.thread_id, 'greeter', { command: { resume: 'yes' } });
        assert.equal(lastContent(done), 'confirmed: yes');
        assert.equal((await c.threads.get(t.thread_id)).status, 'idle');
    });

    test('nodes read and write the store: a name greeted in one thread is welcomed back in another', async () => {
        const a = await c.threads.create(), b = await c.threads.create();
        const first = await c.runs.wait(a.thread_id, 'greeter', { input: human('Ivy') });
        assert.deepEqual(first.greeted, ['Hello, Ivy!']);
        const again = await c.runs.wait(b.thread_id, 'greeter', { input: human('Ivy, Jo') });
        assert.deepEqual(again.greeted, ['Welcome back, Ivy!', 'Hello, Jo!']);
        const item = await c.store.getItem(['greeted'], 'Ivy');
        assert.deepEqual(item.value, { visits: 2 });
        const found = await c.store.searchItems(['greeted'], { limit: 100 });
        assert.deepEqual(found.items.map((i) => i.key).filter((k) => k === 'Ivy' || k === 'Jo').sort(), ['Ivy', 'Jo']);
    });

    test('the copy built with pkg-config flags runs too', async () => {
        const out = await c.runs.wait(null, 'greeter_pc', { input: human('Kai') });
        assert.deepEqual(out.greeted, ['Hello, Kai!']);
    });

    test('the built-in graphs stay available', async () => {
        const out = await c.runs.wait(null, 'echo', { input: human('still here') });
        assert.equal(lastContent(out), 'still here');
    });
});
