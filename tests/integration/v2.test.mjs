// Protocol v2 over HTTP against the real binary and a fresh database: POST /threads/{id}/stream/events
// (envelopes, channels, namespace and depth filters, since, several streams, idle close, retention)
// and POST /threads/{id}/commands (run.start, input.respond, state.*, agent.getTree, errors); the
// durable per-thread seq across reconnects and an agentd restart; what lands in thread_events.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { startAgentd, writeTempFile } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { openSse } from './lib/sse.mjs';
import { call, expect422 } from './lib/threads-util.mjs';

const ALL = ['values', 'updates', 'messages', 'tools', 'lifecycle', 'input', 'checkpoints', 'tasks', 'custom'];
const human = (content) => ({ messages: [{ role: 'user', content }] });
const isRootEnd = (f) => f.event === 'lifecycle' && f.data.params.namespace.length === 0 &&
    ['completed', 'failed', 'interrupted'].includes(f.data.params.data.event);

describe('protocol v2', { timeout: 180000 }, () => {
    let db;
    let srv;
    const sql = (text) => psql(db.url, text);
    const api = (method, path, body) => call(srv.port, method, path, body);
    const newThread = async () => {
        const res = await api('POST', '/threads', {});
        assert.equal(res.status, 200, res.text);
        return res.json.thread_id;
    };
    const command = async (tid, id, method, params) => {
        const res = await api('POST', `/threads/${tid}/commands`, { id, method, params });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.id, id);
        return res.json;
    };
    const stream = (tid, body, server = srv) => openSse(`${server.url}/threads/${tid}/stream/events`, body);

    before(async () => {
        db = await freshDatabase();
        const config = writeTempFile('agentd.json', { events: { idle_close_ms: 60000 } });
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2', '--config', config] });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('echo: run.start answers the run id; the stream carries every channel as protocol envelopes', async () => {
        const tid = await newThread();
        const s = await stream(tid, { channels: ALL });
        assert.equal(s.status, 200);
        assert.match(s.headers.get('content-type'), /^text\/event-stream/);
        const ok = await command(tid, 1, 'run.start', { assistant_id: 'echo', input: human('hello v2') });
        assert.equal(ok.type, 'success');
        assert.match(ok.result.run_id, /^[0-9a-f-]{36}$/);
        assert.equal(ok.meta.thread_id, tid);
        assert.equal(typeof ok.meta.applied_through_seq, 'number');
        await s.waitFor(isRootEnd, 'the terminal lifecycle');
        s.close();
        const f = s.frames;
        let last = 0;
        for (const x of f) {
            assert.deepEqual(Object.keys(x.data).sort(), ['event_id', 'method', 'params', 'seq', 'type']);
            assert.equal(x.data.type, 'event');
            assert.equal(x.event, x.data.method);
            assert.equal(x.id, String(x.data.seq));
            assert.equal(x.data.event_id, String(x.data.seq));
            assert.ok(x.data.seq > last, 'seq grows');
            last = x.data.seq;
            assert.ok(Array.isArray(x.data.params.namespace));
            assert.equal(typeof x.data.params.timestamp, 'number');
        }
        const d = (m) => f.filter((x) => x.event === m).map((x) => x.data.params.data);
        assert.deepEqual(d('lifecycle')[0], { event: 'running', graph_name: 'echo' });
        assert.deepEqual(d('lifecycle').at(-1), { event: 'completed', graph_name: 'echo' });
        assert.deepEqual(d('custom'), [{ payload: { echo: 'hello v2' } }]);
        const values = d('values');
        assert.deepEqual(values.at(-1).messages.map((m) => [m.type, m.content]), [['human', 'hello v2'], ['ai', 'hello v2']]);
        assert.ok(values.at(-1).messages.every((m) => !('additional_kwargs' in m)), 'messages in protocol shape');
        assert.deepEqual(d('checkpoints').map((c) => [c.step, c.source]), [[-1, 'input'], [0, 'loop'], [1, 'loop']]);
        assert.equal(d('checkpoints')[1].parent_id, d('checkpoints')[0].id);
        const upd = d('updates');
        assert.equal(upd.length, 1);
        assert.equal(upd[0].node, 'echo');
        assert.deepEqual(upd[0].values.messages.map((m) => m.content), ['hello v2']);
        const tasks = d('tasks');
        assert.equal(tasks.length, 2);
        assert.equal(tasks[0].name, 'echo');
        assert.ok('input' in tasks[0] && 'result' in tasks[1]);
        // The node's message streams in its namespace, opened and closed by lifecycle events.
        const msgs = f.filter((x) => x.event === 'messages');
        const ns = msgs[0].data.params.namespace;
        assert.equal(ns.length, 1);
        assert.match(ns[0], /^echo:[0-9a-f-]{36}$/);
        assert.deepEqual(msgs.map((x) => x.data.params.data.event),
            ['message-start', 'content-block-start', 'content-block-delta', 'content-block-finish', 'message-finish']);
        assert.equal(msgs[0].data.params.data.role, 'ai');
        assert.deepEqual(msgs[2].data.params.data.delta, { type: 'text-delta', text: 'hello v2' });
        assert.deepEqual(msgs[3].data.params.data.content, { type: 'text', text: 'hello v2' });
        const nsLife = f.filter((x) => x.event === 'lifecycle' && x.data.params.namespace.length === 1);
        assert.deepEqual(nsLife.map((x) => x.data.params.data.event), ['started', 'completed']);
        assert.ok(nsLife[0].data.seq < msgs[0].data.seq && nsLife[1].data.seq > msgs.at(-1).data.seq);
        // Every event is in Postgres with its seq; last_seq covers them.
        const rows = (await sql(`SELECT sum(json_array_length(events::json)), max(last_seq) FROM thread_events WHERE thread_id = '${tid}'`)).split('|');
        assert.equal(Number(rows[0]), f.length);
        assert.equal(Number(rows[1]), last);
        assert.ok(Number(await sql(`SELECT last_seq FROM threads WHERE thread_id = '${tid}'`)) >= last);
    });

    it('two streams with different channel sets each get all of theirs, with the same seq', async () => {
        const tid = await newThread();
        const a = await stream(tid, { channels: ['lifecycle', 'input'] });
        const b = await stream(tid, { channels: ['values', 'lifecycle'] });
        await command(tid, 1, 'run.start', { assistant_id: 'echo', input: human('two') });
        await a.waitFor(isRootEnd, 'the end on a');
        await b.waitFor(isRootEnd, 'the end on b');
        a.close();
        b.close();
        assert.ok(a.frames.every((x) => x.event === 'lifecycle'));
        assert.ok(b.frames.every((x) => x.event === 'lifecycle' || x.event === 'values'));
        const life = (s) => s.frames.filter((x) => x.event === 'lifecycle').map((x) => x.data.seq);
        assert.deepEqual(life(a), life(b));
        assert.equal(b.frames.filter((x) => x.event === 'values').length, 2);
    });

    it('human in the loop on one open stream: input.requested, input.respond, the resumed run', async () => {
        const tid = await newThread();
        const s = await stream(tid, { channels: ['lifecycle', 'input', 'values', 'messages'] });
        await command(tid, 1, 'run.start', { assistant_id: 'interrupt', input: human('q') });
        const req = await s.waitFor((x) => x.event === 'input.requested', 'input.requested');
        const { interrupt_id: iid, payload, value } = req.data.params.data;
        assert.match(iid, /^[0-9a-f]{32}$/);
        assert.deepEqual(payload, { question: 'what now?' });
        assert.deepEqual(value, payload);
        await s.waitFor((x) => x.event === 'lifecycle' && x.data.params.data.event === 'interrupted', 'interrupted');
        // Wrong answers are envelopes, not HTTP errors.
        const bad = await command(tid, 2, 'input.respond', { interrupt_id: 'nope', response: 'x' });
        assert.deepEqual([bad.type, bad.error], ['error', 'no_such_interrupt']);
        const other = await command(tid, 3, 'input.respond', { interrupt_id: 'a'.repeat(32), response: 'x' });
        assert.equal(other.error, 'no_such_interrupt');
        const ok = await command(tid, 4, 'input.respond', { interrupt_id: iid, response: 'yes', namespace: [] });
        assert.equal(ok.type, 'success', JSON.stringify(ok));
        const end = await s.waitFor((x) => isRootEnd(x) && x.data.params.data.event === 'completed', 'the resumed run ending');
        const lastValues = s.frames.filter((x) => x.event === 'values' && x.data.seq < end.data.seq).at(-1);
        assert.deepEqual(lastValues.data.params.data.messages.map((m) => m.content), ['q', 'you said: yes']);
        assert.deepEqual(s.frames.filter((x) => x.event === 'lifecycle' && x.data.params.namespace.length === 0)
            .map((x) => x.data.params.data.event), ['running', 'interrupted', 'running', 'completed']);
        s.close();
        const late = await command(tid, 5, 'input.respond', { response: 'again' });
        assert.deepEqual([late.type, late.error], ['error', 'invalid_argument']);
        assert.match(late.message, /only be used while the run is interrupted/);
    });

    it('run.start on an interrupted thread answers the interrupt with its input', async () => {
        const tid = await newThread();
        const s = await stream(tid, { channels: ['lifecycle', 'values'] });
        await command(tid, 1, 'run.start', { assistant_id: 'interrupt', input: human('q') });
        await s.waitFor((x) => x.event === 'lifecycle' && x.data.params.data.event === 'interrupted', 'interrupted');
        await command(tid, 2, 'run.start', { assistant_id: 'interrupt', input: 'sure' });
        await s.waitFor((x) => isRootEnd(x) && x.data.params.data.event === 'completed', 'completed');
        s.close();
        const st = await command(tid, 3, 'state.get', { namespace: [] });
        assert.deepEqual(st.result.values.messages.map((m) => m.content), ['q', 'you said: sure']);
        assert.match(st.result.checkpoint.id, /^[0-9a-f-]{36}$/);
    });

    it('since: a reconnect mid-run resumes exactly after the last seq seen; a replay from 0 has it all', async () => {
        const tid = await newThread();
        const s1 = await stream(tid, { channels: ALL });
        await command(tid, 1, 'run.start', {
            assistant_id: 'stress', input: human('go'), config: { configurable: { tokens: 40, delay_ms: 5 } },
        });
        await s1.waitFor((x) => x.event === 'custom' && x.data.params.data.payload.index === 5, 'token 5');
        s1.close(); // the client goes away mid-run
        await s1.ended;
        const seen = s1.frames.at(-1).data.seq;
        const s2 = await stream(tid, { channels: ALL, since: seen });
        await s2.waitFor(isRootEnd, 'the end after reconnecting');
        s2.close();
        assert.ok(s2.frames.every((x) => x.data.seq > seen));
        const full = await stream(tid, { channels: ALL, since: 0 });
        await full.waitFor(isRootEnd, 'the end of a full replay');
        full.close();
        assert.deepEqual([...s1.frames, ...s2.frames].map((x) => x.data.seq), full.frames.map((x) => x.data.seq));
        assert.deepEqual(full.frames.filter((x) => x.event === 'custom').map((x) => x.data.params.data.payload.index),
            [...Array(40).keys()]);
        // The replay comes from Postgres byte for byte in content (data re-read as jsonb).
        assert.deepEqual(full.frames.slice(0, s1.frames.length).map((x) => x.data.params.data),
            s1.frames.map((x) => x.data.params.data));
    });

    it('namespace and depth filters: the root always passes; prefixes match node names', async () => {
        const tid = await newThread();
        await command(tid, 1, 'run.start', { assistant_id: 'echo', input: human('ns') });
        const done = await stream(tid, { channels: ['lifecycle'] });
        await done.waitFor(isRootEnd, 'the run end');
        done.close();
        const depth0 = await stream(tid, { channels: ['lifecycle', 'messages'], depth: 0 });
        await depth0.waitFor(isRootEnd, 'end (depth 0)');
        depth0.close();
        assert.ok(depth0.frames.every((x) => x.data.params.namespace.length === 0));
        const byNode = await stream(tid, { channels: ['messages', 'lifecycle'], namespaces: [['echo']] });
        await byNode.waitFor(isRootEnd, 'end (namespaces echo)');
        byNode.close();
        assert.equal(byNode.frames.filter((x) => x.event === 'messages').length, 5);
        const other = await stream(tid, { channels: ['messages', 'lifecycle'], namespaces: [['nope']] });
        await other.waitFor(isRootEnd, 'end (namespaces nope)');
        other.close();
        assert.equal(other.frames.filter((x) => x.event === 'messages').length, 0);
        assert.equal(other.frames.filter((x) => x.event === 'lifecycle').length, 2, 'root lifecycle only');
        const named = await stream(tid, { channels: ['custom:other', 'lifecycle'] });
        await named.waitFor(isRootEnd, 'end (custom:other)');
        named.close();
        assert.equal(named.frames.filter((x) => x.event === 'custom').length, 0, 'the echo event has no name');
    });

    it('input.inject queues the message as the next run behind the active one', async () => {
        const tid = await newThread();
        const s = await stream(tid, { channels: ['lifecycle', 'values'] });
        await command(tid, 1, 'run.start', {
            assistant_id: 'stress', input: human('first'), config: { configurable: { tokens: 20, delay_ms: 10 } },
        });
        const inj = await command(tid, 2, 'input.inject', { namespace: [], message: { role: 'user', content: 'later' } });
        assert.equal(inj.type, 'success', JSON.stringify(inj));
        await s.waitFor((x) => isRootEnd(x) && s.frames.filter(isRootEnd).length === 2, 'both runs ending');
        s.close();
        assert.deepEqual(s.frames.filter((x) => x.event === 'lifecycle' && x.data.params.namespace.length === 0)
            .map((x) => x.data.params.data.event), ['running', 'completed', 'running', 'completed']);
        const last = s.frames.filter((x) => x.event === 'values').at(-1).data.params.data.messages;
        assert.equal(last.filter((m) => m.type === 'human').map((m) => m.content).join(','), 'first,later');
    });

    it('state.listCheckpoints, state.fork and agent.getTree', async () => {
        const tid = await newThread();
        const s = await stream(tid, { channels: ['lifecycle'] });
        await command(tid, 1, 'run.start', { assistant_id: 'echo', input: human('first') });
        await s.waitFor(isRootEnd, 'end');
        const list = await command(tid, 2, 'state.listCheckpoints', { limit: 10 });
        assert.deepEqual(list.result.checkpoints.map((c) => c.step), [1, 0, -1]);
        assert.ok(list.result.checkpoints.every((c) => typeof c.id === 'string' && typeof c.timestamp === 'string'));
        const tree = await command(tid, 3, 'agent.getTree', {});
        assert.deepEqual(tree.result.tree, { namespace: [], status: 'completed', graph_name: 'echo' });
        const fork = await command(tid, 4, 'state.fork', { checkpoint_id: list.result.checkpoints[1].id, input: human('second') });
        assert.equal(fork.type, 'success', JSON.stringify(fork));
        assert.equal(fork.result.thread_id, tid);
        await s.waitFor((x) => isRootEnd(x) && x.data.seq > s.frames.find(isRootEnd).data.seq, 'the fork run ending');
        s.close();
        const st = await command(tid, 5, 'state.get', { namespace: [], keys: ['messages'] });
        assert.deepEqual(st.result.values.messages.map((m) => m.content), ['first', 'second', 'second']);
    });

    it('errors: 400 for channels, 422 for shapes, 404 for unknown threads, envelopes for command errors', async () => {
        const tid = await newThread();
        const post = (path, body) => api('POST', path, body);
        let r = await post(`/threads/${tid}/stream/events`, { channels: [] });
        assert.equal(r.status, 400);
        assert.equal(r.json.message, 'Unsupported channels: channels must be a non-empty array');
        r = await post(`/threads/${tid}/stream/events`, { channels: ['values', 'bogus', 'custom:'] });
        assert.equal(r.status, 400);
        assert.equal(r.json.message, 'Unsupported channels: bogus, custom:');
        expect422(assert, await post(`/threads/${tid}/stream/events`, {}), ['body', 'channels'], 'missing');
        expect422(assert, await post(`/threads/${tid}/stream/events`, { channels: 'values' }), ['body', 'channels']);
        expect422(assert, await post(`/threads/${tid}/stream/events`, { channels: [1] }), ['body', 'channels', 0]);
        expect422(assert, await post(`/threads/${tid}/stream/events`, { channels: ['values'], since: -1 }), ['body', 'since']);
        expect422(assert, await post(`/threads/${tid}/stream/events`, { channels: ['values'], namespaces: [[1]] }),
            ['body', 'namespaces', 0, 0]);
        // A field the route does not know is ignored: the stream opens.
        const opened = await fetch(`http://127.0.0.1:${srv.port}/threads/${tid}/stream/events`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ channels: ['values'], extra: 1 }),
        });
        assert.equal(opened.status, 200);
        await opened.body.cancel();
        // Someone else's thread is not there for this caller.
        const theirs = randomUUID();
        await sql(`INSERT INTO threads (thread_id, owner) VALUES ('${theirs}', 'someone-else')`);
        r = await post(`/threads/${theirs}/stream/events`, { channels: ['values'] });
        assert.equal(r.status, 404);
        assert.match(r.json.message, /not found/);
        const st = await command(theirs, 9, 'state.get', {});
        assert.deepEqual([st.type, st.error], ['error', 'no_such_run']);
        expect422(assert, await post(`/threads/${tid}/commands`, { method: 'run.start' }), ['body', 'id'], 'missing');
        expect422(assert, await post(`/threads/${tid}/commands`, { id: 'x', method: 'run.start' }), ['body', 'id']);
        expect422(assert, await post(`/threads/${tid}/commands`, { id: 1, method: 'run.start', params: [] }), ['body', 'params']);
        const e = async (method, params, code, re) => {
            const x = await command(tid, 9, method, params);
            assert.deepEqual([x.type, x.error], ['error', code], JSON.stringify(x));
            if (re) assert.match(x.message, re);
        };
        await e('nope.nope', {}, 'unknown_command', /Unknown command 'nope.nope'/);
        await e('run.start', {}, 'invalid_argument', /requires a string assistant_id/);
        await e('run.start', { assistant_id: 'echo', input: human('x'), stream_mode: 'values' }, 'invalid_argument', /stream_mode/);
        await e('run.start', { assistant_id: 'echo', input: human('x'), multitask_strategy: 'sometimes' }, 'invalid_argument',
            /multitask_strategy/);
        await e('run.start', { assistant_id: 'no-such-graph', input: human('x') }, 'no_such_run', /not found/);
        await e('input.inject', { namespace: [], message: { role: 'user', content: 'x' } }, 'no_such_run', /No run/);
        await e('input.inject', { namespace: [], message: { role: 'robot', content: 'x' } }, 'invalid_argument');
        await e('subscription.subscribe', { channels: ['values'] }, 'not_supported');
        await e('state.get', { namespace: ['child:1'] }, 'no_such_namespace');
        await e('input.respond', { response: 1 }, 'invalid_argument', /interrupted/);
    });

    it('a stream opened before the thread exists waits for run.start to create it', async () => {
        const tid = randomUUID();
        const s = await stream(tid, { channels: ['lifecycle', 'values'] });
        assert.equal(s.status, 200);
        await command(tid, 1, 'run.start', { assistant_id: 'echo', input: human('early') });
        await s.waitFor(isRootEnd, 'the run on the new thread');
        s.close();
        assert.equal(s.frames[0].data.params.data.event, 'running');
        assert.deepEqual(s.frames.filter((x) => x.event === 'values').at(-1).data.params.data.messages.map((m) => m.content),
            ['early', 'early']);
    });

    it('run.start creates a missing thread; a second run while one is active is rejected', async () => {
        const tid = randomUUID();
        const first = await command(tid, 1, 'run.start', {
            assistant_id: 'stress', input: human('go'), config: { configurable: { tokens: 50, delay_ms: 20 } },
        });
        assert.equal(first.type, 'success');
        const second = await command(tid, 2, 'run.start', { assistant_id: 'echo', input: human('x') });
        assert.deepEqual([second.type, second.error], ['error', 'invalid_argument'], JSON.stringify(second));
        const third = await command(tid, 3, 'run.start', { assistant_id: 'echo', input: human('y'), multitask_strategy: 'interrupt' });
        assert.equal(third.type, 'success', JSON.stringify(third));
        const s = await stream(tid, { channels: ['lifecycle'] });
        await s.waitFor((x) => isRootEnd(x) && x.data.params.data.event === 'completed', 'the second run ending');
        s.close();
        assert.deepEqual(s.frames.filter((x) => x.data.params.namespace.length === 0).map((x) => x.data.params.data.event),
            ['running', 'interrupted', 'running', 'completed']);
    });
});

describe('protocol v2: durability, retention, idle close', { timeout: 180000 }, () => {
    it('seq keeps growing across an agentd restart and since resumes from Postgres', async (t) => {
        const db = await freshDatabase({ t });
        let srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        const tid = randomUUID();
        const cmd = (s, body) => call(s.port, 'POST', `/threads/${tid}/commands`, body);
        let r = await cmd(srv, { id: 1, method: 'run.start', params: { assistant_id: 'echo', input: human('before') } });
        assert.equal(r.json.type, 'success');
        const s1 = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ALL });
        await s1.waitFor(isRootEnd, 'the first run ending');
        s1.close();
        const lastBefore = s1.frames.at(-1).data.seq;
        assert.equal(await srv.stop('SIGTERM'), 0);
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        t.after(() => srv.dispose());
        const s2 = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ALL, since: 3 });
        r = await cmd(srv, { id: 2, method: 'run.start', params: { assistant_id: 'echo', input: human('after') } });
        assert.equal(r.json.type, 'success');
        await s2.waitFor((x) => isRootEnd(x) && x.data.seq > lastBefore, 'the second run ending');
        s2.close();
        const seqs = s2.frames.map((x) => x.data.seq);
        assert.deepEqual(seqs.filter((q) => q <= lastBefore), s1.frames.map((x) => x.data.seq).filter((q) => q > 3),
            'the old events replayed from Postgres');
        assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]), 'seq grows across the restart');
        const firstAfter = s2.frames.find((x) => x.data.seq > lastBefore);
        assert.deepEqual(firstAfter.data.params.data, { event: 'running', graph_name: 'echo' });
    });

    it('runs/wait after a restart: events of a run written once at its end go on from the stored seq', async (t) => {
        const db = await freshDatabase({ t });
        let srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        const tid = (await call(srv.port, 'POST', '/threads', {})).json.thread_id;
        const wait = (s, content) => call(s.port, 'POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human(content) });
        assert.equal((await wait(srv, 'before')).status, 200);
        const stored = Number(await psql(db.url, `SELECT max(last_seq) FROM thread_events WHERE thread_id = '${tid}'`));
        assert.ok(stored > 0);
        assert.equal(await srv.stop('SIGTERM'), 0);
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        t.after(() => srv.dispose());
        const s = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ALL, since: stored });
        const w = await wait(srv, 'after');
        assert.equal(w.status, 200, w.text);
        await s.waitFor(isRootEnd, 'the run after the restart ending');
        s.close();
        const seqs = s.frames.map((x) => x.data.seq);
        assert.ok(seqs[0] > stored && seqs.every((q, i) => i === 0 || q > seqs[i - 1]), `seqs ${seqs}`);
        assert.deepEqual(s.frames[0].data.params.data, { event: 'running', graph_name: 'echo' });
        const kept = await psql(db.url, `SELECT max(e.last_seq), bool_and(e.last_seq <= t.last_seq) FROM thread_events e ` +
            `JOIN threads t USING (thread_id) WHERE thread_id = '${tid}'`);
        assert.equal(kept, `${seqs.at(-1)}|t`);
    });

    it('retention: old events are deleted; a resume from before them says so, then starts at the oldest kept', async (t) => {
        const db = await freshDatabase({ t });
        const config = writeTempFile('agentd.json', { events: { retain_per_thread: 16 } });
        const srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '1', '--config', config], t });
        const tid = randomUUID();
        const r = await call(srv.port, 'POST', `/threads/${tid}/commands`, {
            id: 1, method: 'run.start', params: { assistant_id: 'stress', input: human('go'), config: { configurable: { tokens: 30, delay_ms: 2 } } },
        });
        assert.equal(r.json.type, 'success');
        const live = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ['lifecycle'] });
        const end = await live.waitFor(isRootEnd, 'the end');
        live.close();
        // The retention runs with the writes: poll until the last write is in.
        let kept;
        for (let i = 0; i < 200; i++) {
            kept = (await psql(db.url, `SELECT sum(json_array_length(events::json)), min(first_seq), max(last_seq) FROM thread_events WHERE thread_id = '${tid}'`)).split('|').map(Number);
            if (kept[2] === end.data.seq) break;
            await new Promise((res) => setImmediate(res));
        }
        assert.ok(kept[0] >= 16 && kept[0] <= 16 + 16, `about retain_per_thread events kept, in whole batches (got ${kept[0]})`);
        const s = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ALL, since: 2 });
        await s.waitFor(isRootEnd, 'the end of the replay');
        s.close();
        assert.equal(s.frames[0].event, 'lifecycle');
        assert.equal(s.frames[0].data.params.data.event, 'truncated');
        assert.equal(s.frames[0].data.params.data.oldest_seq, kept[1]);
        assert.equal(s.frames[1].data.seq, kept[1]);
    });

    it('retention on threads written together (one statement, its trims per thread)', async (t) => {
        const db = await freshDatabase({ t });
        const config = writeTempFile('agentd.json', { events: { retain_per_thread: 16 } });
        const srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '1', '--config', config], t });
        const tids = Array.from({ length: 6 }, () => randomUUID());
        const ends = await Promise.all(tids.map(async (tid) => {
            const live = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ['lifecycle'] });
            const r = await call(srv.port, 'POST', `/threads/${tid}/commands`, {
                id: 1, method: 'run.start', params: { assistant_id: 'stress', input: human('go'), config: { configurable: { tokens: 40, delay_ms: 1 } } },
            });
            assert.equal(r.json.type, 'success');
            const end = await live.waitFor(isRootEnd, 'the end');
            live.close();
            return end.data.seq;
        }));
        // The retention runs with the writes: poll until the last write of every thread is in.
        let rows;
        for (let i = 0; i < 400; i++) {
            rows = (await psql(db.url, `SELECT e.thread_id, sum(json_array_length(e.events::json)), min(e.first_seq), max(e.last_seq), t.events_trimmed_seq, min(e.last_seq) FROM thread_events e JOIN threads t USING (thread_id) WHERE e.thread_id IN (${tids.map((x) => `'${x}'`).join(',')}) GROUP BY e.thread_id, t.events_trimmed_seq`))
                .split('\n').filter(Boolean).map((l) => l.split('|'));
            if (rows.length === tids.length && rows.every((r) => Number(r[3]) === ends[tids.indexOf(r[0])])) break;
            await new Promise((res) => setImmediate(res));
        }
        assert.equal(rows.length, tids.length);
        for (const [tid, n, first, last, trimmed, oldestLast] of rows) {
            assert.equal(Number(last), ends[tids.indexOf(tid)], `thread ${tid}: its last event is in`);
            // Whole batches: at least retain_per_thread events, and none whose events are all older.
            assert.ok(Number(n) >= 16, `thread ${tid}: ${n} events kept`);
            assert.ok(Number(oldestLast) > Number(last) - 16, `thread ${tid}: its oldest batch (to seq ${oldestLast}) was due to go (last ${last})`);
            assert.equal(Number(trimmed), Number(first) - 1, `thread ${tid}: events_trimmed_seq is the last seq deleted`);
        }
    });

    it('a run that ends in its turn writes its events with its run row, in one statement, retention included', async (t) => {
        const db = await freshDatabase({ t });
        const config = writeTempFile('agentd.json', { events: { retain_per_thread: 16 } });
        const srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '1', '--config', config], t });
        const tid = (await call(srv.port, 'POST', '/threads', {})).json.thread_id;
        for (let i = 0; i < 4; i++) {
            const w = await call(srv.port, 'POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human(`m${i}`) });
            assert.equal(w.status, 200, w.text);
            const rid = w.headers['content-location'].split('/').pop();
            // The batch holding the run's events was inserted by the statement that inserted the run: same
            // transaction and same command in it (writes coalesced into one transaction differ in cmin).
            const same = await psql(db.url, `SELECT e.xmin = r.xmin AND e.cmin = r.cmin FROM thread_events e, runs r WHERE r.run_id = '${rid}' ` +
                `AND e.thread_id = '${tid}' AND strpos(e.events, '${rid}') > 0 ORDER BY e.last_seq LIMIT 1`);
            assert.equal(same, 't', `run ${i}: its events and its row in one statement`);
        }
        const [n, first, last, trimmed, oldestLast, threadLast] = (await psql(db.url,
            `SELECT sum(json_array_length(e.events::json)), min(e.first_seq), max(e.last_seq), t.events_trimmed_seq, min(e.last_seq), t.last_seq ` +
            `FROM thread_events e JOIN threads t USING (thread_id) WHERE e.thread_id = '${tid}' GROUP BY t.events_trimmed_seq, t.last_seq`)).split('|').map(Number);
        assert.ok(n >= 16 && oldestLast > last - 16, `whole batches past retention went: ${n} events kept, oldest batch to ${oldestLast}, last ${last}`);
        assert.equal(trimmed, first - 1, 'events_trimmed_seq is the last seq deleted');
        assert.ok(threadLast >= last, 'the thread\'s last_seq covers every stored event');
    });

    it('a stream with nothing to send and no run closes after events.idle_close_ms; one on an active run stays', async (t) => {
        const db = await freshDatabase({ t });
        const config = writeTempFile('agentd.json', { events: { idle_close_ms: 300 } });
        const srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2', '--config', config], t });
        const tid = (await call(srv.port, 'POST', '/threads', {})).json.thread_id;
        const idle = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ['lifecycle'] });
        const t0 = Date.now();
        await idle.ended;
        assert.ok(Date.now() - t0 >= 250, 'not before the idle period');
        const busy = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ['lifecycle', 'custom'] });
        const r = await call(srv.port, 'POST', `/threads/${tid}/commands`, {
            id: 1, method: 'run.start', params: { assistant_id: 'stress', input: human('go'), config: { configurable: { tokens: 3, delay_ms: 400 } } },
        });
        assert.equal(r.json.type, 'success');
        await busy.ended;
        assert.ok(busy.frames.some(isRootEnd), 'the stream stayed open through a run with long quiet gaps');
        assert.equal(busy.frames.filter((x) => x.event === 'custom').length, 3);
    });
});
