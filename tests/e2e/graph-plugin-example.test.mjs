// A user's C graph project, as the README tells it: agentd installed into a prefix (cmake --install),
// examples/c-graph built out of tree against that installation (find_package(agentd)), its
// langgraph.json served by the installed binary with --graphs, and the graph driven with the real SDK:
// its system assistant and drawing, a run that reads the file's env, and an interrupt resumed with
// Command.
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
        sdk = await startSdk({ bin: path.join(prefix, 'bin/agentd'), args: ['--graphs', path.join(project, 'langgraph.json')] });
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
        assert.deepEqual(graph.nodes.map((n) => n.id).sort(), ['__end__', '__start__', 'confirm', 'greet']);
        assert.ok(graph.edges.some((e) => e.source === 'greet' && e.target === 'confirm' && e.conditional));
    });

    test('a run answers with the greeting the file\'s env sets', async () => {
        const t = await c.threads.create();
        const out = await c.runs.wait(t.thread_id, 'greeter', { input: human('Ada') });
        assert.equal(lastContent(out), 'Hello, Ada!');
        assert.deepEqual(out.greeted, ['Hello, Ada!']);
        const again = await c.runs.wait(t.thread_id, 'greeter', { input: human('Bob') });
        assert.deepEqual(again.greeted, ['Hello, Ada!', 'Hello, Bob!'], 'the append channel keeps both');
    });

    test('a question interrupts; resuming with Command finishes the run', async () => {
        const t = await c.threads.create();
        const first = await c.runs.wait(t.thread_id, 'greeter', { input: human('Ada?') });
        assert.deepEqual(first.__interrupt__[0].value, { question: 'confirm?' });
        const state = await c.threads.getState(t.thread_id);
        assert.deepEqual(state.next, ['confirm']);
        const done = await c.runs.wait(t.thread_id, 'greeter', { command: { resume: 'yes' } });
        assert.equal(lastContent(done), 'confirmed: yes');
        assert.equal((await c.threads.get(t.thread_id)).status, 'idle');
    });

    test('the built-in graphs stay available', async () => {
        const out = await c.runs.wait(null, 'echo', { input: human('still here') });
        assert.equal(lastContent(out), 'still here');
    });
});
