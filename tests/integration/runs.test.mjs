// Runs on threads and stateless runs, against the real binary and a fresh database: background, wait
// and stream; every v1 stream mode with the built-in graphs; join, attach with Last-Event-ID, cancel,
// delete; multitask strategies; interrupts and resume; RunCreate validation; what lands in Postgres
// (runs, checkpoints, thread status and values).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { getMetrics, metricSum, startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { parseSse } from './lib/sse.mjs';
import { call, expect422, expectIgnored, uuidOwnedBy } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const INTERRUPT = '2e6b29d1-4009-5fcc-9319-4cffb1865dfe';
const human = (content) => ({ messages: [{ role: 'user', content }] });

describe('runs', { timeout: 180000 }, () => {
    let db;
    let srv;
    let base;
    const api = (method, path, body, headers) => call(srv.port, method, path, body, headers);
    const sql = (text) => psql(db.url, text);
    const thread = async () => {
        const res = await api('POST', '/threads', {});
        assert.equal(res.status, 200, res.text);
        return res.json.thread_id;
    };
    const post = (path, body, opts = {}) =>
        fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(opts.headers || {}) }, body: JSON.stringify(body), signal: opts.signal });
    const stream = async (tid, body) => {
        const res = await post(`/threads/${tid}/runs/stream`, body);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/event-stream/);
        return { res, frames: parseSse(await res.text()) };
    };
    const wait = async (tid, body) => {
        const res = await post(`/threads/${tid}/runs/wait`, body);
        const text = await res.text();
        return { res, status: res.status, json: JSON.parse(text), text };
    };
    const runIdOf = (res) => res.headers.get('content-location').split('/').pop();

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        base = `http://127.0.0.1:${srv.port}`;
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    describe('wait', () => {
        it('echo: the final values, the run success, the thread idle with its values, 3 checkpoints', async () => {
            const tid = await thread();
            const { res, status, json } = await wait(tid, { assistant_id: ECHO, input: human('hello') });
            assert.equal(status, 200);
            const rid = runIdOf(res);
            assert.equal(res.headers.get('content-location'), `/threads/${tid}/runs/${rid}`);
            assert.equal(res.headers.get('location'), `/threads/${tid}/runs/${rid}/join`);
            assert.equal(json.messages.length, 2);
            assert.equal(json.messages[0].type, 'human');
            assert.equal(json.messages[0].content, 'hello');
            assert.equal(json.messages[1].type, 'ai');
            assert.equal(json.messages[1].content, 'hello');
            assert.ok(json.messages[0].id && json.messages[1].id);
            const run = await api('GET', `/threads/${tid}/runs/${rid}`);
            assert.equal(run.status, 200, run.text);
            assert.equal(run.json.status, 'success');
            assert.equal(run.json.assistant_id, ECHO);
            assert.equal(run.json.kwargs.config.configurable.thread_id, tid);
            assert.equal(run.json.kwargs.config.configurable.run_id, rid);
            assert.equal(run.json.kwargs.config.configurable.graph_id, 'echo');
            const t = await api('GET', `/threads/${tid}`);
            assert.equal(t.json.status, 'idle');
            assert.deepEqual(t.json.values, json);
            assert.equal(t.json.metadata.graph_id, 'echo');
            assert.equal(t.json.metadata.assistant_id, ECHO);
            const rows = await sql(`SELECT step, source, array_to_string(next, ',') FROM checkpoints WHERE thread_id = '${tid}' ORDER BY created_at`);
            assert.equal(rows, '-1|input|__start__\n0|loop|echo\n1|loop|');
            const st = await api('GET', `/threads/${tid}/state`);
            assert.deepEqual(st.json.values, json);
            assert.deepEqual(st.json.next, []);
            const hist = await api('POST', `/threads/${tid}/history`, {});
            assert.equal(hist.json.length, 3);
        });

        it('a second run on the thread continues its messages', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: 'echo', input: human('one') });
            const { json } = await wait(tid, { assistant_id: 'echo', input: human('two') });
            assert.deepEqual(json.messages.map((m) => m.content), ['one', 'one', 'two', 'two']);
            const rows = await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${tid}'`);
            assert.equal(rows, '6');
        });
    });

    describe('durability', () => {
        const steps = (tid) => sql(`SELECT step, source FROM checkpoints WHERE thread_id = '${tid}' ORDER BY created_at`);
        it('sync and async write every checkpoint; exit (or checkpoint_during false) only the last, chained to the thread\'s', async () => {
            for (const body of [{ durability: 'sync' }, { durability: 'async' }, { checkpoint_during: true }]) {
                const tid = await thread();
                const { status, json } = await wait(tid, { assistant_id: ECHO, input: human('s'), ...body });
                assert.equal(status, 200, JSON.stringify(json));
                assert.equal(await steps(tid), '-1|input\n0|loop\n1|loop', JSON.stringify(body));
            }
            for (const body of [{ durability: 'exit' }, { checkpoint_during: false }, { checkpoint_during: true, durability: 'exit' }]) {
                const tid = await thread();
                await wait(tid, { assistant_id: ECHO, input: human('one') });
                const { status, json } = await wait(tid, { assistant_id: ECHO, input: human('two'), ...body });
                assert.equal(status, 200, JSON.stringify(json));
                assert.deepEqual(json.messages.map((m) => m.content), ['one', 'one', 'two', 'two']);
                assert.equal(await steps(tid), '-1|input\n0|loop\n1|loop\n4|loop', JSON.stringify(body));
                const hist = await api('POST', `/threads/${tid}/history`, {});
                assert.equal(hist.json.length, 4);
                assert.equal(hist.json[0].parent_checkpoint.checkpoint_id, hist.json[1].checkpoint.checkpoint_id);
                assert.deepEqual(hist.json[0].values, json);
            }
        });

        it('a sync run in the background writes each checkpoint before its next step and records its durability', async () => {
            const tid = await thread();
            const res = await api('POST', `/threads/${tid}/runs`, { assistant_id: STRESS, input: { messages: [] }, durability: 'sync', config: { configurable: { tokens: 3, delay_ms: 5 } } });
            assert.equal(res.status, 200, res.text);
            const joined = await api('GET', `/threads/${tid}/runs/${res.json.run_id}/join`);
            assert.equal(joined.status, 200, joined.text);
            const run = await api('GET', `/threads/${tid}/runs/${res.json.run_id}`);
            assert.equal(run.json.status, 'success');
            assert.equal(run.json.kwargs.durability, 'sync');
            assert.equal(await steps(tid), '-1|input\n0|loop\n1|loop');
            // Its checkpoints were all written before its end: the thread's values still come with the outcome.
            assert.deepEqual((await api('GET', `/threads/${tid}`)).json.values, joined.json);
            expect422(assert, await api('POST', `/threads/${tid}/runs`, { assistant_id: ECHO, durability: 'later' }), ['body', 'durability'], 'literal_error');
            expect422(assert, await api('POST', `/threads/${tid}/runs`, { assistant_id: ECHO, checkpoint_during: 'no' }), ['body', 'checkpoint_during'], 'bool_type');
        });
    });

    describe('stream', () => {
        it('values: metadata first, one values per step, end last; Location headers', async () => {
            const tid = await thread();
            const { res, frames } = await stream(tid, { assistant_id: ECHO, input: human('hi values'), stream_mode: 'values' });
            const rid = runIdOf(res);
            assert.equal(res.headers.get('location'), `/threads/${tid}/runs/${rid}/stream`);
            assert.deepEqual(frames.map((f) => f.event), ['metadata', 'values', 'values', 'end']);
            assert.deepEqual(frames[0].data, { run_id: rid, attempt: 1 });
            assert.deepEqual(frames.map((f) => f.id), ['0', '1', '2', '3']);
            assert.equal(frames[1].data.messages.length, 1);
            assert.equal(frames[2].data.messages[1].content, 'hi values');
            assert.deepEqual(frames[3].data, { status: 'success' });
        });

        it('updates, custom, checkpoints, tasks, messages-tuple of echo', async () => {
            const tid = await thread();
            const { frames } = await stream(tid, {
                assistant_id: ECHO, input: human('x'), stream_mode: ['updates', 'custom', 'checkpoints', 'tasks', 'messages-tuple'],
            });
            const ev = frames.map((f) => f.event);
            assert.equal(ev[0], 'metadata');
            assert.equal(ev.at(-1), 'end');
            assert.equal(ev.filter((e) => e === 'checkpoints').length, 3);
            const custom = frames.find((f) => f.event === 'custom');
            assert.deepEqual(custom.data, { echo: 'x' });
            const upd = frames.find((f) => f.event === 'updates' && f.data.echo);
            assert.equal(upd.data.echo.messages[0].content, 'x');
            const tuple = frames.find((f) => f.event === 'messages');
            assert.equal(tuple.data[0].content, 'x');
            assert.equal(tuple.data[1].langgraph_node, 'echo');
            const tasks = frames.filter((f) => f.event === 'tasks' && f.data.name === 'echo');
            assert.equal(tasks.length, 2);
            assert.ok('input' in tasks[0].data && 'result' in tasks[1].data);
        });

        it('stress: custom tokens, then message chunks (messages mode accumulates), final message', async () => {
            const tid = await thread();
            const { frames } = await stream(tid, {
                assistant_id: STRESS, input: human('go'), stream_mode: ['custom', 'messages', 'values'], config: { configurable: { tokens: 3 } },
            });
            const custom = frames.filter((f) => f.event === 'custom').map((f) => f.data);
            assert.deepEqual(custom, [{ token: 't0', index: 0 }, { token: 't1', index: 1 }, { token: 't2', index: 2 }]);
            const partial = frames.filter((f) => f.event === 'messages/partial').map((f) => f.data[0].content);
            assert.deepEqual(partial, ['t0', 't0 t1', 't0 t1 t2']);
            assert.ok(frames.some((f) => f.event === 'messages/metadata'));
            const last = frames.filter((f) => f.event === 'values').at(-1);
            assert.equal(last.data.messages.at(-1).content, 't0 t1 t2');
        });

        it('events: LangChain astream_events objects for the graph and its node', async () => {
            const tid = await thread();
            const { frames } = await stream(tid, { assistant_id: ECHO, input: human('e'), stream_mode: 'events' });
            const ev = frames.filter((f) => f.event === 'events').map((f) => `${f.data.event}:${f.data.name}`);
            assert.deepEqual(ev, ['on_chain_start:LangGraph', 'on_chain_start:echo', 'on_chain_end:echo', 'on_chain_end:LangGraph']);
            const end = frames.filter((f) => f.event === 'events').at(-1);
            assert.equal(end.data.data.output.messages[1].content, 'e');
            const node = frames.find((f) => f.event === 'events' && f.data.name === 'echo');
            assert.equal(node.data.metadata.langgraph_node, 'echo');
            assert.deepEqual(node.data.tags, ['graph:step:1']);
        });

        it('debug frames carry checkpoint and task payloads', async () => {
            const tid = await thread();
            const { frames } = await stream(tid, { assistant_id: ECHO, input: human('d'), stream_mode: 'debug' });
            const types = frames.filter((f) => f.event === 'debug').map((f) => f.data.type);
            assert.deepEqual(types.filter((t) => t === 'checkpoint').length, 3);
            assert.ok(types.includes('task') && types.includes('task_result'));
            const cp = frames.find((f) => f.event === 'debug' && f.data.type === 'checkpoint');
            assert.equal(cp.data.payload.checkpoint.thread_id, tid);
        });

        it('attach: Last-Event-ID replays what follows it; an ended run without one answers its end', async () => {
            const tid = await thread();
            const { res, frames } = await stream(tid, { assistant_id: STRESS, input: human('go'), stream_mode: 'custom', config: { configurable: { tokens: 3, mode: 'custom' } } });
            const rid = runIdOf(res);
            const again = await fetch(`${base}/threads/${tid}/runs/${rid}/stream`, { headers: { 'last-event-id': '1' } });
            const replay = parseSse(await again.text());
            assert.deepEqual(replay.map((f) => f.id), frames.slice(2).map((f) => f.id));
            const plain = parseSse(await (await fetch(`${base}/threads/${tid}/runs/${rid}/stream`)).text());
            assert.deepEqual(plain.map((f) => f.event), ['end']);
        });

        it('tools and lifecycle are accepted; graphs without tools or subgraphs stream none of them', async () => {
            const tid = await thread();
            const { frames } = await stream(tid, { assistant_id: ECHO, input: human('t'), stream_mode: ['tools', 'lifecycle', 'updates'] });
            assert.deepEqual(frames.map((f) => f.event), ['metadata', 'updates', 'end']);
            const run = await api('GET', `/threads/${tid}/runs`);
            assert.deepEqual(run.json[0].kwargs.stream_mode, ['tools', 'lifecycle', 'updates']);
        });

        it('GET /runs/{run_id}/stream finds the run\'s thread on either shard: live, resumed, ended; 404, 422', async () => {
            const slowish = { assistant_id: STRESS, input: human('go'), stream_mode: 'custom', config: { configurable: { tokens: 4, delay_ms: 30, mode: 'custom' } } };
            // A thread on each shard: the request lands on one and the run may live on the other.
            for (const shard of [0, 1]) {
                const tid = uuidOwnedBy(shard, 2);
                assert.equal((await api('POST', '/threads', { thread_id: tid })).status, 200);
                const created = await api('POST', `/threads/${tid}/runs`, slowish);
                assert.equal(created.status, 200, created.text);
                const rid = created.json.run_id;
                const live = await fetch(`${base}/runs/${rid}/stream`);
                assert.equal(live.status, 200);
                assert.match(live.headers.get('content-type'), /^text\/event-stream/);
                const frames = parseSse(await live.text());
                assert.deepEqual(frames.filter((f) => f.event === 'custom').map((f) => f.data.token), ['t0', 't1', 't2', 't3']);
                assert.equal(frames.at(-1).event, 'end');
                const resumed = parseSse(await (await fetch(`${base}/runs/${rid}/stream`, { headers: { 'last-event-id': frames[1].id } })).text());
                assert.deepEqual(resumed.map((f) => f.id), frames.slice(2).map((f) => f.id));
                const ended = parseSse(await (await fetch(`${base}/runs/${rid}/stream`)).text());
                assert.deepEqual(ended.map((f) => f.event), ['end']);
            }
            const missing = await api('GET', `/runs/${randomUUID()}/stream`);
            assert.equal(missing.status, 404, missing.text);
            expect422(assert, await api('GET', '/runs/not-a-uuid/stream'), ['path', 'run_id'], 'uuid_parsing');
        });
    });

    describe('background runs', () => {
        it('POST /runs answers the pending Run; join answers its output; list shows it', async () => {
            const tid = await thread();
            const res = await api('POST', `/threads/${tid}/runs`, { assistant_id: ECHO, input: human('bg'), metadata: { k: 'v' } });
            assert.equal(res.status, 200, res.text);
            assert.equal(res.json.status, 'pending');
            assert.equal(res.json.metadata.k, 'v');
            assert.equal(res.headers['content-location'], `/threads/${tid}/runs/${res.json.run_id}`);
            const join = await api('GET', `/threads/${tid}/runs/${res.json.run_id}/join`);
            assert.equal(join.status, 200, join.text);
            assert.equal(join.json.messages[1].content, 'bg');
            const list = await api('GET', `/threads/${tid}/runs`);
            assert.equal(list.json[0].run_id, res.json.run_id);
            assert.equal(list.json[0].status, 'success');
            // The thread's values (written with the outcome, from its last checkpoint) are the run's output.
            const t = await api('GET', `/threads/${tid}`);
            assert.deepEqual(t.json.values, join.json);
            assert.ok(t.json.state_updated_at > t.json.created_at, JSON.stringify(t.json));
        });
    });

    describe('interrupts', () => {
        it('the interrupt graph stops with its question; a resume answers it', async () => {
            const tid = await thread();
            const first = await wait(tid, { assistant_id: INTERRUPT, input: human('q') });
            assert.equal(first.json.__interrupt__.length, 1);
            const intr = first.json.__interrupt__[0];
            assert.deepEqual(intr.value, { question: 'what now?' });
            assert.match(intr.id, /^[0-9a-f]{32}$/);
            let t = await api('GET', `/threads/${tid}`);
            assert.equal(t.json.status, 'interrupted');
            const ints = Object.values(t.json.interrupts);
            assert.equal(ints.length, 1);
            assert.equal(ints[0][0].id, intr.id);
            const st = await api('GET', `/threads/${tid}/state`);
            assert.deepEqual(st.json.next, ['ask']);
            assert.equal(st.json.tasks[0].interrupts[0].id, intr.id);
            const run1 = await api('GET', `/threads/${tid}/runs/${runIdOf(first.res)}`);
            assert.equal(run1.json.status, 'interrupted');

            const second = await wait(tid, { assistant_id: INTERRUPT, command: { resume: 'yes' } });
            assert.deepEqual(second.json.messages.map((m) => m.content), ['q', 'you said: yes']);
            t = await api('GET', `/threads/${tid}`);
            assert.equal(t.json.status, 'idle');
            assert.deepEqual(t.json.interrupts, {});
        });

        it('resume by interrupt id; interrupt_before stops before the node and a null-input run continues', async () => {
            const tid = await thread();
            const first = await wait(tid, { assistant_id: INTERRUPT, input: human('q') });
            const id = first.json.__interrupt__[0].id;
            const second = await wait(tid, { assistant_id: INTERRUPT, command: { resume: { [id]: { ok: 1 } } } });
            assert.equal(second.json.messages.at(-1).content, 'you said: {"ok":1}');

            const t2 = await thread();
            const a = await wait(t2, { assistant_id: ECHO, input: human('b'), interrupt_before: ['echo'] });
            assert.equal(a.status, 200);
            let st = await api('GET', `/threads/${t2}/state`);
            assert.deepEqual(st.json.next, ['echo']);
            assert.equal((await api('GET', `/threads/${t2}`)).json.status, 'interrupted');
            const b = await wait(t2, { assistant_id: ECHO, input: null });
            assert.deepEqual(b.json.messages.map((m) => m.content), ['b', 'b']);
            st = await api('GET', `/threads/${t2}/state`);
            assert.deepEqual(st.json.next, []);
        });

        it('strict_resume: a resume naming an interrupt that is not waiting fails its run and leaves the thread as it was', async () => {
            const info = await api('GET', '/info');
            assert.equal(info.json.flags.strict_resume, true);
            const tid = await thread();
            const first = await wait(tid, { assistant_id: INTERRUPT, input: human('q') });
            const id = first.json.__interrupt__[0].id;
            const before = await api('GET', `/threads/${tid}/state`);
            const wrong = 'f'.repeat(32);
            const res = await wait(tid, { assistant_id: INTERRUPT, command: { resume: { [wrong]: 'no' } }, strict_resume: true });
            assert.equal(res.status, 200);
            assert.match(res.json.__error__.message, new RegExp(`no pending interrupt has id ${wrong}`), res.text);
            assert.equal((await api('GET', `/threads/${tid}/runs/${runIdOf(res.res)}`)).json.status, 'error');
            const t = await api('GET', `/threads/${tid}`);
            assert.equal(t.json.status, 'interrupted');
            assert.equal(Object.values(t.json.interrupts)[0][0].id, id);
            assert.deepEqual((await api('GET', `/threads/${tid}/state`)).json, before.json);
            const right = await wait(tid, { assistant_id: INTERRUPT, command: { resume: { [id]: 'yes' } }, strict_resume: true });
            assert.equal(right.json.messages.at(-1).content, 'you said: yes');
            assert.equal((await api('GET', `/threads/${tid}`)).json.status, 'idle');
        });

        it('a resume without a pending interrupt ends the run in error', async () => {
            const tid = await thread();
            const res = await wait(tid, { assistant_id: INTERRUPT, command: { resume: 'x' } });
            assert.equal(res.status, 200);
            assert.ok(res.json.__error__, res.text);
            const run = await api('GET', `/threads/${tid}/runs/${runIdOf(res.res)}`);
            assert.equal(run.json.status, 'error');
            assert.equal((await api('GET', `/threads/${tid}`)).json.status, 'error');
        });
    });

    describe('written at their end (RUN_PREPARE, then one RUN_RECORD)', () => {
        it('a wait run that ends at once is stored whole: the run row, the thread (config, status) and its events', async () => {
            const tid = await thread();
            const { res } = await wait(tid, { assistant_id: ECHO, input: human('once'), metadata: { tag: 'x' } });
            const rid = runIdOf(res);
            // lease_expires_at stays NULL: the row was never created pending (RUN_CREATE takes a lease).
            const row = await sql(`SELECT status, started_at IS NOT NULL, ended_at IS NOT NULL, claimed_by IS NOT NULL, ` +
                `multitask_strategy, metadata->>'tag', metadata->>'graph_id', kwargs->'config'->'configurable'->>'run_id', ` +
                `lease_expires_at IS NULL FROM runs WHERE run_id = '${rid}'`);
            assert.equal(row, `success|t|t|t|reject|x|echo|${rid}|t`, 'written once, at its end');
            const t = await sql(`SELECT status, config->'configurable'->>'run_id', last_seq > 0, ` +
                `json_array_length(agentd_thread_values(thread_id)->'messages') FROM threads WHERE thread_id = '${tid}'`);
            assert.equal(t, `idle|${rid}|t|2`);
            // Its output is the thread's state at its end: the run names that checkpoint instead of a copy.
            assert.equal(
                await sql(`SELECT output IS NULL, output_checkpoint = (SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = '${tid}') FROM runs WHERE run_id = '${rid}'`),
                't|t',
            );
            // The run's v2 events were written in the same transaction, inside the seq reservation.
            const ev = await sql(`SELECT e.first_seq, e.last_seq <= t.last_seq, e.events LIKE '%${rid}%' ` +
                `FROM thread_events e JOIN threads t USING (thread_id) WHERE thread_id = '${tid}'`);
            assert.equal(ev, '1|t|t');
        });

        it('a wait run that outlives its turn is created first: its headers come once it is stored, busy and running', async () => {
            const tid = await thread();
            const res = await post(`/threads/${tid}/runs/wait`, {
                assistant_id: STRESS, input: human('slow'), config: { configurable: { tokens: 10, delay_ms: 200, mode: 'custom' } },
            });
            assert.equal(res.status, 200);
            const rid = runIdOf(res);
            const stored = await sql(`SELECT r.status IN ('pending', 'running'), t.status FROM runs r JOIN threads t USING (thread_id) ` +
                `WHERE r.run_id = '${rid}'`);
            assert.equal(stored, 't|busy');
            const busy = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human('x') });
            assert.equal(busy.status, 409, busy.text);
            const out = JSON.parse(await res.text());
            assert.equal(out.messages.at(-1).content, 't0 t1 t2 t3 t4 t5 t6 t7 t8 t9');
            assert.equal((await api('GET', `/threads/${tid}/runs/${rid}`)).json.status, 'success');
            assert.equal((await api('GET', `/threads/${tid}`)).json.status, 'idle');
        });

        it('a stream run that ends at once sends every frame once it is stored', async () => {
            const tid = await thread();
            const { res, frames } = await stream(tid, { assistant_id: ECHO, input: human('s'), stream_mode: ['values', 'updates'] });
            const rid = runIdOf(res);
            assert.deepEqual(frames.map((f) => f.event), ['metadata', 'values', 'updates', 'values', 'end']);
            assert.deepEqual(frames.map((f) => f.id), ['0', '1', '2', '3', '4']);
            assert.equal(frames[0].data.run_id, rid);
            assert.equal(await sql(`SELECT status FROM runs WHERE run_id = '${rid}'`), 'success');
        });

        it('a run on a thread that is missing, or one with a run finishing, is created first', async () => {
            const missing = randomUUID();
            const res = await post(`/threads/${missing}/runs/wait`, { assistant_id: ECHO, input: human('new'), if_not_exists: 'create' });
            assert.equal(res.status, 200);
            assert.equal(JSON.parse(await res.text()).messages.length, 2);
            assert.equal(await sql(`SELECT status FROM threads WHERE thread_id = '${missing}'`), 'idle');
            const gone = await post(`/threads/${randomUUID()}/runs/wait`, { assistant_id: ECHO, input: human('x') });
            assert.equal(gone.status, 404);
            const fork = await api('POST', `/threads/${missing}/history`, {});
            const first = fork.json.at(-1).checkpoint.checkpoint_id;
            const f = await wait(missing, { assistant_id: ECHO, input: human('fork'), checkpoint_id: first });
            assert.deepEqual(f.json.messages.map((m) => m.content), ['fork', 'fork']);
            const bad = await post(`/threads/${missing}/runs/wait`, { assistant_id: ECHO, input: human('x'), checkpoint_id: randomUUID() });
            assert.equal(bad.status, 404);
        });
    });

    describe('multitask and cancel', () => {
        const slow = { assistant_id: STRESS, input: human('slow'), config: { configurable: { tokens: 50, delay_ms: 100, mode: 'custom' } } };

        it('reject (the default): 409 while a run is active', async () => {
            const tid = await thread();
            const first = await api('POST', `/threads/${tid}/runs`, slow);
            assert.equal(first.status, 200);
            const second = await api('POST', `/threads/${tid}/runs`, { assistant_id: ECHO, input: human('x') });
            assert.equal(second.status, 409, second.text);
            const c = await api('POST', `/threads/${tid}/runs/${first.json.run_id}/cancel?wait=1`);
            assert.equal(c.status, 204, c.text);
            const run = await api('GET', `/threads/${tid}/runs/${first.json.run_id}`);
            assert.equal(run.json.status, 'interrupted');
            assert.equal(run.json.cancel_reason, 'user');
            assert.equal((await api('GET', `/threads/${tid}`)).json.status, 'idle');
        });

        it('cancel reason=taken records taken:<who>; reason with rollback, or another reason, is 422', async () => {
            const tid = await thread();
            const first = await api('POST', `/threads/${tid}/runs`, slow);
            const path = `/threads/${tid}/runs/${first.json.run_id}/cancel`;
            expect422(assert, await api('POST', `${path}?action=rollback&reason=taken`), ['query', 'reason'], 'value_error');
            expect422(assert, await api('POST', `${path}?reason=bored`), ['query', 'reason'], 'literal_error');
            const c = await api('POST', `${path}?wait=1&action=interrupt&reason=taken`);
            assert.equal(c.status, 204, c.text);
            const run = await api('GET', `/threads/${tid}/runs/${first.json.run_id}`);
            assert.equal(run.json.status, 'interrupted');
            assert.equal(run.json.cancel_reason, 'taken:anonymous');
            const picked = await api('GET', `/threads/${tid}/runs?select=run_id&select=cancel_reason`);
            assert.deepEqual(picked.json, [{ run_id: first.json.run_id, cancel_reason: 'taken:anonymous' }]);
            const done = await wait(tid, { assistant_id: ECHO, input: human('x') });
            assert.equal(done.status, 200);
            const ok = await api('GET', `/threads/${tid}/runs/${runIdOf(done.res)}`);
            assert.equal(ok.json.cancel_reason, null);
        });

        it('interrupt: the active run ends interrupted, the new one runs', async () => {
            const tid = await thread();
            const first = await api('POST', `/threads/${tid}/runs`, slow);
            const second = await wait(tid, { assistant_id: ECHO, input: human('second'), multitask_strategy: 'interrupt' });
            assert.equal(second.json.messages.at(-1).content, 'second');
            const run = (await api('GET', `/threads/${tid}/runs/${first.json.run_id}`)).json;
            assert.equal(run.status, 'interrupted');
            assert.equal(run.cancel_reason, 'multitask');
        });

        it('rollback: the active run and its checkpoints are gone', async () => {
            const tid = await thread();
            const first = await api('POST', `/threads/${tid}/runs`, slow);
            const second = await wait(tid, { assistant_id: ECHO, input: human('second'), multitask_strategy: 'rollback' });
            assert.deepEqual(second.json.messages.map((m) => m.content), ['second', 'second']);
            assert.equal((await api('GET', `/threads/${tid}/runs/${first.json.run_id}`)).status, 404);
            assert.equal(await sql(`SELECT count(*) FROM checkpoints WHERE run_id = '${first.json.run_id}'`), '0');
        });

        it('enqueue: the new run waits for the active one and sees its state', async () => {
            const tid = await thread();
            const quick = { ...slow, config: { configurable: { tokens: 5, delay_ms: 20, mode: 'custom' } } };
            const first = await api('POST', `/threads/${tid}/runs`, quick);
            const second = await wait(tid, { assistant_id: ECHO, input: human('after'), multitask_strategy: 'enqueue' });
            assert.deepEqual(second.json.messages.map((m) => m.content), ['slow', 't0 t1 t2 t3 t4', 'after', 'after']);
            assert.equal((await api('GET', `/threads/${tid}/runs/${first.json.run_id}`)).json.status, 'success');
        });

        it('on_disconnect cancel: leaving a stream cancels its run', async () => {
            const tid = await thread();
            const ac = new AbortController();
            const res = await post(`/threads/${tid}/runs/stream`, { ...slow, stream_mode: 'custom' }, { signal: ac.signal });
            const rid = runIdOf(res);
            const reader = res.body.getReader();
            await reader.read(); // the stream started
            ac.abort();
            const join = await api('GET', `/threads/${tid}/runs/${rid}/join`);
            assert.equal(join.status, 200);
            assert.equal((await api('GET', `/threads/${tid}/runs/${rid}`)).json.status, 'interrupted');
        });

        it('cancel_on_disconnect=1: a join or join stream whose client leaves cancels the run; =0 does not', async () => {
            for (const [suffix, cancel, status] of [['join', 1, 'interrupted'], ['stream', 1, 'interrupted'], ['stream', 0, 'success']]) {
                const tid = await thread();
                const quick = { ...slow, config: { configurable: { tokens: 10, delay_ms: 100, mode: 'custom' } } };
                const rid = (await api('POST', `/threads/${tid}/runs`, cancel ? slow : quick)).json.run_id;
                const ac = new AbortController();
                const res = await fetch(`${base}/threads/${tid}/runs/${rid}/${suffix}?cancel_on_disconnect=${cancel}`, { signal: ac.signal });
                assert.equal(res.status, 200, `${suffix}?cancel_on_disconnect=${cancel}`);
                ac.abort(); // the answer started; the client leaves
                assert.equal((await api('GET', `/threads/${tid}/runs/${rid}/join`)).status, 200);
                const run = (await api('GET', `/threads/${tid}/runs/${rid}`)).json;
                assert.equal(run.status, status, `${suffix}?cancel_on_disconnect=${cancel}: ${JSON.stringify(run)}`);
                assert.equal(run.cancel_reason, cancel ? 'disconnect' : null);
            }
        });

        it('POST /runs/cancel (cancelMany): by status or by run ids on a thread; 422 without thread_id', async () => {
            const tid = await thread();
            const start = async (mt) => (await api('POST', `/threads/${tid}/runs`, { ...slow, multitask_strategy: mt })).json.run_id;
            const a = await start('reject');
            const b = await start('enqueue');
            const c = await start('enqueue');
            const status = async (rid, t = tid) => (await api('GET', `/threads/${t}/runs/${rid}`)).json.status;
            assert.equal((await api('POST', '/runs/cancel', { thread_id: tid, status: 'pending' })).status, 204);
            for (const rid of [b, c]) {
                assert.equal((await api('GET', `/threads/${tid}/runs/${rid}/join`)).status, 200);
                assert.equal(await status(rid), 'interrupted', `queued run ${rid}`);
            }
            assert.equal(await status(a), 'running', 'status pending leaves the running one');
            const other = await thread();
            const d = (await api('POST', `/threads/${other}/runs`, slow)).json.run_id;
            // By ids (an unknown one is left alone), with rollback: the run and its checkpoints go.
            assert.equal((await api('POST', '/runs/cancel?action=rollback', { thread_id: tid, run_ids: [a, randomUUID()] })).status, 204);
            await api('GET', `/threads/${tid}/runs/${a}/join`);
            assert.equal((await api('GET', `/threads/${tid}/runs/${a}`)).status, 404, 'rolled back');
            assert.equal(await status(d, other), 'running', 'another thread is not touched');
            assert.equal((await api('POST', '/runs/cancel', { thread_id: other, status: 'all' })).status, 204);
            await api('GET', `/threads/${other}/runs/${d}/join`);
            assert.equal(await status(d, other), 'interrupted');
            expect422(assert, await api('POST', '/runs/cancel', { run_ids: [a] }), ['body', 'thread_id'], 'value_error');
            expect422(assert, await api('POST', '/runs/cancel', { thread_id: tid }), ['body', 'run_ids'], 'value_error');
            expect422(assert, await api('POST', '/runs/cancel', { thread_id: 'x', status: 'all' }), ['body', 'thread_id'], 'uuid_parsing');
            expect422(assert, await api('POST', '/runs/cancel', { thread_id: tid, status: 'done' }), ['body', 'status']);
            expect422(assert, await api('POST', '/runs/cancel', { thread_id: tid, run_ids: 'a' }), ['body', 'run_ids']);
            expect422(assert, await api('POST', '/runs/cancel?action=explode', { thread_id: tid, status: 'all' }), ['query', 'action'], 'literal_error');
            expect422(assert, await api('POST', '/runs/cancel'), ['body'], 'missing');
        });

        it('POST /runs/cancel with status alone cancels the caller\'s runs on every thread, on every shard', async () => {
            // Threads on both shards (the server runs 2), each with a running and a queued run.
            const runs = [];
            for (let i = 0; i < 4; i++) {
                const tid = uuidOwnedBy(i % 2, 2);
                assert.equal((await api('POST', '/threads', { thread_id: tid })).status, 200);
                runs.push([tid, (await api('POST', `/threads/${tid}/runs`, slow)).json.run_id, 'interrupted']);
                runs.push([tid, (await api('POST', `/threads/${tid}/runs`, { ...slow, multitask_strategy: 'enqueue' })).json.run_id, 'pending']);
            }
            assert.equal((await api('POST', '/runs/cancel', { status: 'running' })).status, 204);
            for (const [tid, rid, want] of runs) {
                if (want === 'pending') continue;
                await api('GET', `/threads/${tid}/runs/${rid}/join`);
                assert.equal((await api('GET', `/threads/${tid}/runs/${rid}`)).json.status, 'interrupted', `running run ${rid}`);
            }
            // The queued ones started once their thread's run was cancelled; all of them go now.
            assert.equal((await api('POST', '/runs/cancel', { status: 'all' })).status, 204);
            for (const [tid, rid] of runs) {
                await api('GET', `/threads/${tid}/runs/${rid}/join`);
                assert.equal((await api('GET', `/threads/${tid}/runs/${rid}`)).json.status, 'interrupted', `run ${rid}`);
            }
        });

        it('delete: 409 while active, 204 with force, then 404', async () => {
            const tid = await thread();
            const first = await api('POST', `/threads/${tid}/runs`, slow);
            const rid = first.json.run_id;
            assert.equal((await api('DELETE', `/threads/${tid}/runs/${rid}`)).status, 409);
            assert.equal((await api('DELETE', `/threads/${tid}/runs/${rid}?force=1`)).status, 204);
            const gone = await api('GET', `/threads/${tid}/runs/${rid}/join`);
            assert.ok(gone.status === 404 || gone.status === 200, gone.text);
            await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human('x') });
            assert.equal((await api('GET', `/threads/${tid}/runs/${rid}`)).status, 404);
        });
    });

    describe('stateless runs', () => {
        it('/runs/wait runs on a new thread and deletes it; on_completion keep keeps it', async () => {
            const a = await post('/runs/wait', { assistant_id: ECHO, input: human('s') });
            const out = await a.json();
            assert.equal(out.messages[1].content, 's');
            const tid = a.headers.get('content-location').split('/')[2];
            assert.equal((await api('GET', `/threads/${tid}`)).status, 404);
            const b = await post('/runs/wait', { assistant_id: ECHO, input: human('k'), on_completion: 'keep' });
            await b.text();
            const kept = b.headers.get('content-location').split('/')[2];
            assert.equal((await api('GET', `/threads/${kept}`)).json.status, 'idle');
        });

        it('/runs/batch creates background runs on new threads; bad items are 422 by index', async () => {
            const res = await api('POST', '/runs/batch', [
                { assistant_id: ECHO, input: human('b1'), on_completion: 'keep' },
                { assistant_id: 'echo', input: human('b2'), on_completion: 'keep' },
            ]);
            assert.equal(res.status, 200, res.text);
            assert.equal(res.json.length, 2);
            assert.notEqual(res.json[0].thread_id, res.json[1].thread_id);
            for (const [i, run] of res.json.entries()) {
                const join = await api('GET', `/threads/${run.thread_id}/runs/${run.run_id}/join`);
                assert.equal(join.json.messages[1].content, `b${i + 1}`);
            }
            expect422(assert, await api('POST', '/runs/batch', [{ assistant_id: ECHO }, { bogus: 1 }]), ['body', 1, 'assistant_id'], 'missing');
            // The SDK's createBatch sends its camelCase keys beside the snake_case ones: unknown, ignored.
            const camel = await api('POST', '/runs/batch', [{ assistant_id: ECHO, assistantId: ECHO, input: human('c1'), onCompletion: 'keep' }]);
            assert.equal(camel.status, 200, camel.text);
            assert.equal(camel.json.length, 1);
            expect422(assert, await api('POST', '/runs/batch', []), ['body']);
            expect422(assert, await api('POST', '/runs/batch', { assistant_id: ECHO }), ['body'], 'list_type');
            const missing = await api('POST', '/runs/batch', [{ assistant_id: ECHO, input: {} }, { assistant_id: '00000000-0000-0000-0000-000000000000', input: {} }]);
            assert.equal(missing.status, 404, missing.text);
        });

        it('/runs/stream streams a stateless run', async () => {
            const res = await post('/runs/stream', { assistant_id: ECHO, input: human('s'), stream_mode: 'updates' });
            const frames = parseSse(await res.text());
            assert.deepEqual(frames.map((f) => f.event), ['metadata', 'updates', 'end']);
        });
    });

    describe('validation', () => {
        it('422 names the bad field (unknown fields are ignored); 404 for unknown assistants and threads', async () => {
            const tid = await thread();
            const path = `/threads/${tid}/runs`;
            expect422(assert, await api('POST', path, {}), ['body', 'assistant_id'], 'missing');
            await expectIgnored(assert, () => api('POST', `${path}/wait`, { assistant_id: ECHO, input: human('u'), bogus: 1 }), () => api('POST', `${path}/wait`, { assistant_id: ECHO, input: human('u') }));
            expect422(assert, await api('POST', path, { assistant_id: ECHO, stream_mode: 'nope' }), ['body', 'stream_mode'], 'literal_error');
            expect422(assert, await api('POST', path, { assistant_id: ECHO, stream_mode: ['values', 7] }), ['body', 'stream_mode', 1], 'literal_error');
            expect422(assert, await api('POST', path, { assistant_id: ECHO, multitask_strategy: 'x' }), ['body', 'multitask_strategy']);
            expect422(assert, await api('POST', path, { assistant_id: ECHO, webhook: 'http://127.0.0.1:1/x' }), ['body', 'webhook']);
            await expectIgnored(assert, () => api('POST', `${path}/wait`, { assistant_id: ECHO, command: { resume: 1, nope: 2 } }), () => api('POST', `${path}/wait`, { assistant_id: ECHO, command: { resume: 1 } }));
            expect422(assert, await api('POST', path, { assistant_id: ECHO, on_completion: 'keep' }), ['body', 'on_completion']);
            expect422(assert, await api('POST', '/threads/not-a-uuid/runs', { assistant_id: ECHO }), ['path', 'thread_id'], 'uuid_parsing');
            const na = await api('POST', path, { assistant_id: randomUUID(), input: {} });
            assert.equal(na.status, 404, na.text);
            const nt = await api('POST', `/threads/${randomUUID()}/runs`, { assistant_id: ECHO, input: {} });
            assert.equal(nt.status, 404, nt.text);
            const created = randomUUID();
            const ok = await api('POST', `/threads/${created}/runs/wait`, { assistant_id: ECHO, input: human('c'), if_not_exists: 'create' });
            assert.equal(ok.status, 200, ok.text);
            assert.equal((await api('GET', `/threads/${created}`)).json.status, 'idle');
            const nr = await api('GET', `/threads/${tid}/runs/${randomUUID()}/join`);
            assert.equal(nr.status, 404);
        });
    });

    describe('metrics', () => {
        it('counts runs by outcome and returns the active gauge to 0', async () => {
            const tid = await thread();
            await wait(tid, { assistant_id: ECHO, input: human('m') });
            const m = (await getMetrics(srv.port)).samples;
            assert.ok(metricSum(m, 'agentd_runs_finished_total', { status: 'success' }) >= 1);
            assert.ok(metricSum(m, 'agentd_runs_finished_total', { status: 'interrupted' }) >= 1);
            assert.ok(metricSum(m, 'agentd_runs_started_total') >= 1);
            assert.ok(metricSum(m, 'agentd_run_events_total') >= 3);
            assert.equal(metricSum(m, 'agentd_runs_active'), 0);
            assert.equal(metricSum(m, 'agentd_stream_subscribers'), 0);
        });
    });
});
