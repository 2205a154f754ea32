// Checkpoint storage (migration 009): a checkpoint names the version of each channel, a value is stored
// once per version, and a step that appends to `messages` stores only what it appended. What clients
// read does not change: state, history, forks from a past checkpoint, thread copy, keep_latest prune,
// rollback, durability "exit", a run's output read back after a restart, and a database written by the
// previous schema (the upgrade converts its rows).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { getMetrics, metricSum, startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql, REPO_ROOT, storeCheckpointsSql } from './lib/pg.mjs';
import { openSse } from './lib/sse.mjs';
import { call } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const human = (content) => ({ messages: [{ role: 'user', content }] });
const contents = (values) => values.messages.map((m) => `${m.type}:${m.content}`);
const isRootEnd = (f) => f.event === 'lifecycle' && f.data.params.namespace.length === 0 &&
    ['completed', 'failed', 'interrupted'].includes(f.data.params.data.event);

describe('checkpoint storage', { timeout: 120000 }, () => {
    let db;
    let srv;
    const sql = (text) => psql(db.url, text);
    const api = (method, p, body) => call(srv.port, method, p, body);
    const thread = async () => (await api('POST', '/threads', {})).json.thread_id;
    const wait = async (tid, content, extra = {}) => {
        const res = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human(content), ...extra });
        assert.equal(res.status, 200, res.text);
        return res;
    };
    const state = async (tid, cid = '') => {
        const res = await api('GET', `/threads/${tid}/state${cid ? `/${cid}` : ''}`);
        assert.equal(res.status, 200, res.text);
        return res.json;
    };
    const history = async (tid, limit = 100) => (await api('GET', `/threads/${tid}/history?limit=${limit}`)).json;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
    });
    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('a turn stores the messages it appended, not the conversation; every checkpoint reads back whole', async () => {
        const tid = await thread();
        const answers = [];
        for (let i = 0; i < 6; i++) answers.push((await wait(tid, `m${i}`)).json);
        const last = answers.at(-1);
        assert.deepEqual(contents(last), [0, 1, 2, 3, 4, 5].flatMap((i) => [`human:m${i}`, `ai:m${i}`]));
        assert.deepEqual((await state(tid)).values, last);
        assert.deepEqual((await api('GET', `/threads/${tid}`)).json.values, last);
        // Each stored value of messages is one message: the whole value once (empty), then one per step.
        const blobs = (await sql(`SELECT coalesce(base, '-') || '|' || json_array_length(value::json) FROM checkpoint_blobs ` +
            `WHERE thread_id = '${tid}' AND channel = 'messages' ORDER BY version`)).split('\n');
        assert.equal(blobs.length, 13, blobs.join(','));
        assert.equal(blobs[0], '-|0');
        assert.ok(blobs.slice(1).every((b) => /^[0-9a-f-]{36}\|1$/.test(b)), blobs.join(','));
        // Checkpoints without a step of their own (the input ones) name the version before them.
        const noNew = await sql(`SELECT count(*) FROM checkpoints c WHERE thread_id = '${tid}' AND channel_versions->>'messages' <> checkpoint_id`);
        assert.equal(noNew, '5');
        // History: every checkpoint's values, newest first, each the conversation up to it.
        const h = await history(tid);
        assert.equal(h.length, 18);
        for (let k = 0; k < h.length; k++) {
            const turn = Math.floor((h.length - 1 - k) / 3);
            const pos = (h.length - 1 - k) % 3; // 0 input, 1 the human message in, 2 the answer
            const expect = answers[turn] ? contents(answers[turn]).slice(0, 2 * turn + (pos === 0 ? 0 : pos)) : [];
            assert.deepEqual(contents(h[k].values), expect, `history[${k}]`);
            assert.deepEqual((await state(tid, h[k].checkpoint_id)).values, h[k].values);
        }
    });

    it('a fork from a past checkpoint appends to that version; both branches read back', async () => {
        const tid = await thread();
        await wait(tid, 'a');
        const mid = (await state(tid)).checkpoint_id;
        await wait(tid, 'b');
        const before = (await state(tid)).values;
        const fork = (await wait(tid, 'c', { checkpoint_id: mid })).json;
        assert.deepEqual(contents(fork), ['human:a', 'ai:a', 'human:c', 'ai:c']);
        assert.deepEqual((await state(tid)).values, fork);
        const h = await history(tid);
        const old = h.find((s) => s.values.messages.length === 4 && s.values.messages[2].content === 'b');
        assert.deepEqual(old.values, before, 'the branch forked from still reads back');
        // And a branch may be continued from its own tip.
        const more = (await wait(tid, 'd', { checkpoint_id: old.checkpoint_id })).json;
        assert.deepEqual(contents(more), ['human:a', 'ai:a', 'human:b', 'ai:b', 'human:d', 'ai:d']);
    });

    it('copy, then keep_latest prune: the state is unchanged and only its whole values stay', async () => {
        const tid = await thread();
        for (const m of ['x', 'y', 'z']) await wait(tid, m);
        const first = (await api('GET', `/threads/${tid}/runs`)).json.at(-1);
        const values = (await state(tid)).values;
        const copy = (await api('POST', `/threads/${tid}/copy`)).json;
        assert.deepEqual(copy.values, values);
        assert.deepEqual((await state(copy.thread_id)).values, values);
        assert.deepEqual((await wait(copy.thread_id, 'w')).json.messages.length, 8, 'a copy goes on from the copied state');
        const pruned = await api('POST', '/threads/prune', { thread_ids: [tid], strategy: 'keep_latest' });
        assert.equal(pruned.status, 200, pruned.text);
        assert.deepEqual((await state(tid)).values, values);
        assert.equal((await history(tid)).length, 1);
        assert.equal(await sql(`SELECT count(*) || '|' || count(*) FILTER (WHERE base IS NULL) FROM checkpoint_blobs WHERE thread_id = '${tid}'`), '1|1');
        // A run whose output named a checkpoint that went keeps its output.
        assert.equal(await sql(`SELECT output IS NOT NULL, output_checkpoint IS NULL FROM runs WHERE run_id = '${first.run_id}'`), 't|t');
        const join = await api('GET', `/threads/${tid}/runs/${first.run_id}/join`);
        assert.deepEqual(contents(join.json), ['human:x', 'ai:x']);
        // The copy kept its own.
        assert.equal((await history(copy.thread_id)).length, 12);
        assert.deepEqual(contents((await wait(tid, 'after')).json).slice(-2), ['human:after', 'ai:after']);
    });

    it('a rolled-back run leaves no values behind; durability "exit" stores one checkpoint that reads back', async () => {
        const tid = await thread();
        await wait(tid, 'keep');
        const before = await sql(`SELECT count(*) FROM checkpoint_blobs WHERE thread_id = '${tid}'`);
        const slow = await api('POST', `/threads/${tid}/runs`, {
            assistant_id: 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b', input: human('gone'), config: { configurable: { tokens: 200, delay_ms: 20 } },
        });
        assert.equal(slow.status, 200, slow.text);
        const next = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human('instead'), multitask_strategy: 'rollback' });
        assert.equal(next.status, 200, next.text);
        assert.deepEqual(contents(next.json), ['human:keep', 'ai:keep', 'human:instead', 'ai:instead']);
        assert.equal(await sql(`SELECT count(*) FROM checkpoint_blobs b WHERE thread_id = '${tid}' AND NOT EXISTS (` +
            `SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id AND c.checkpoint_id = b.version)`), '0', 'every value has its checkpoint');
        assert.ok(Number(await sql(`SELECT count(*) FROM checkpoint_blobs WHERE thread_id = '${tid}'`)) > Number(before));
        const exit = (await wait(tid, 'once', { durability: 'exit' })).json;
        assert.deepEqual((await state(tid)).values, exit);
        assert.equal(await sql(`SELECT count(*) FROM checkpoints WHERE thread_id = '${tid}' AND run_id = (SELECT run_id FROM runs WHERE thread_id = '${tid}' ORDER BY created_at DESC LIMIT 1)`), '1');
    });

    it('the v2 log names a state by its versions; a replay from Postgres has the events a replay from memory has', async () => {
        const tid = await thread();
        for (const m of ['p', 'q', 'r']) await wait(tid, m);
        const replay = async () => {
            const s = await openSse(`${srv.url}/threads/${tid}/stream/events`, { channels: ['values', 'tasks', 'lifecycle', 'checkpoints'], since: 0 });
            assert.equal(s.status, 200, s.text);
            await s.waitFor(() => s.frames.filter(isRootEnd).length === 3, 'the three runs');
            s.close();
            return s.frames.map((f) => f.data);
        };
        const memory = await replay();
        const states = memory.filter((e) => e.method === 'values').map((e) => e.params.data.messages.map((m) => m.content));
        assert.deepEqual(states.at(-1), ['p', 'p', 'q', 'q', 'r', 'r']);
        const inputs = memory.filter((e) => e.method === 'tasks' && e.params.data.input).map((e) => e.params.data.input.messages.length);
        assert.deepEqual(inputs, [1, 3, 5]);
        // Stored: a state is named, never copied. Runs after the first do not hold its message again.
        const later = await sql(`SELECT count(*) FILTER (WHERE events LIKE '%"content":"p"%') || '|' || count(*) FILTER (WHERE events LIKE '%"$agentd.state":{"messages":"%') ` +
            `FROM thread_events WHERE thread_id = '${tid}' AND first_seq > (SELECT min(last_seq) FROM thread_events WHERE thread_id = '${tid}')`);
        assert.equal(later, '0|2');
        await srv.dispose();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        assert.deepEqual(await replay(), memory, 'the same events, read back from Postgres');
        // A keep_latest prune drops the states of the older checkpoints: their events read back with {}.
        await api('POST', '/threads/prune', { thread_ids: [tid], strategy: 'keep_latest' });
        await srv.dispose();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        const pruned = (await replay()).filter((e) => e.method === 'values').map((e) => e.params.data);
        assert.deepEqual(pruned[0], {});
        assert.deepEqual(pruned.at(-1).messages.map((m) => m.content), ['p', 'p', 'q', 'q', 'r', 'r']);
    });

    it('an idle thread\'s latest checkpoint stays in memory, and is used only while Postgres says it is the latest', async () => {
        const tid = await thread();
        await wait(tid, 'one');
        const { samples } = await getMetrics(srv.port);
        assert.ok(metricSum(samples, 'agentd_idle_checkpoint_bytes') > 0, 'kept after the run');
        assert.deepEqual(contents((await wait(tid, 'two')).json), ['human:one', 'ai:one', 'human:two', 'ai:two']);
        // Another writer (another process, a hand) adds a checkpoint behind this process's back: the next
        // run starts from it, not from what was kept.
        const latest = (await state(tid)).checkpoint_id;
        await sql(storeCheckpointsSql(
            `SELECT '${tid}' AS thread_id, '' AS checkpoint_ns, '${latest}z' AS checkpoint_id, '${latest}' AS parent_checkpoint_id, ` +
                `99 AS step, 'update' AS source, '{"messages":[{"type":"human","content":"elsewhere","id":"e1"}]}'::jsonb AS v`,
            ['thread_id', 'checkpoint_ns', 'checkpoint_id', 'parent_checkpoint_id', 'step', 'source'],
        ));
        assert.deepEqual(contents((await wait(tid, 'three')).json), ['human:elsewhere', 'human:three', 'ai:three']);
        // A thread deleted and made again under the same id starts empty.
        assert.equal((await api('DELETE', `/threads/${tid}`)).status, 204);
        assert.equal((await api('POST', '/threads', { thread_id: tid })).status, 200);
        assert.deepEqual(contents((await wait(tid, 'anew')).json), ['human:anew', 'ai:anew']);
    });

    it('a run joined after a restart answers its output from the checkpoint it names', async () => {
        const tid = await thread();
        await wait(tid, 'one');
        const res = await wait(tid, 'two');
        const rid = res.headers['content-location'].split('/').pop();
        await srv.dispose();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        const join = await api('GET', `/threads/${tid}/runs/${rid}/join`);
        assert.equal(join.status, 200, join.text);
        assert.deepEqual(join.json, res.json);
        // A new run on a thread this process has not seen builds on the stored versions.
        assert.deepEqual(contents((await wait(tid, 'three')).json).slice(-4), ['human:two', 'ai:two', 'human:three', 'ai:three']);
    });
});

describe('upgrade from the previous schema', { timeout: 120000 }, () => {
    it('checkpoints, thread values and run outputs written by migration 008 read back the same', async (t) => {
        const db = await freshDatabase({ t });
        const sql = (text) => psql(db.url, text);
        // The schema as agentd before migration 009 left it.
        const dir = path.join(REPO_ROOT, 'persist', 'migrations');
        const old = fs.readdirSync(dir).filter((f) => /^\d{3}_.*\.sql$/.test(f) && Number(f.slice(0, 3)) <= 8).sort();
        await sql('CREATE TABLE schema_version (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
        for (const f of old) {
            await sql(fs.readFileSync(path.join(dir, f), 'utf8'));
            await sql(`INSERT INTO schema_version (version, name) VALUES (${Number(f.slice(0, 3))}, '${f}')`);
        }
        const tid = '3f0c0a1e-0000-4000-8000-000000000001';
        const msgs = (n) => Array.from({ length: n }, (_, i) => ({ type: i % 2 ? 'ai' : 'human', content: `m${i}`, id: `id${i}` }));
        const v = (n) => JSON.stringify({ messages: msgs(n), topic: 'old' });
        await sql(
            `INSERT INTO assistants (assistant_id, owner, graph_id, name) VALUES ('${ECHO}', 'system', 'echo', 'echo'); ` +
            `INSERT INTO threads (thread_id, status, metadata, "values") VALUES ('${tid}', 'idle', ` +
                `'{"graph_id":"echo","assistant_id":"${ECHO}"}', '${v(2)}'); ` +
                `INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, step, source, "values", metadata) VALUES ` +
                `('${tid}', '', '1f000000-0000-6000-8000-000000000001', NULL, 'r0', -1, 'input', '{"messages":[]}', '{"step":-1,"source":"input"}'), ` +
                `('${tid}', '', '1f000000-0000-6000-8000-000000000002', '1f000000-0000-6000-8000-000000000001', 'r0', 0, 'loop', '${v(1)}', '{"step":0}'), ` +
                `('${tid}', '', '1f000000-0000-6000-8000-000000000003', '1f000000-0000-6000-8000-000000000002', 'r0', 1, 'loop', '${v(2)}', '{"step":1}'), ` +
                `('${tid}', 'sub:1', '1f000000-0000-6000-8000-000000000004', NULL, 'r0', 0, 'loop', '{"inner":[1,2]}', '{"step":0}'); ` +
                `INSERT INTO runs (run_id, thread_id, assistant_id, status, output) VALUES ` +
                `('1f000000-0000-4000-8000-0000000000aa', '${tid}', '${ECHO}', 'success', '${v(2)}')`,
        );
        const srv = await startAgentd({ db: db.url, waitReady: true });
        t.after(() => srv.dispose());
        const api = (method, p, body) => call(srv.port, method, p, body);
        const newest = Math.max(...fs.readdirSync(dir).filter((f) => /^\d{3}_.*\.sql$/.test(f)).map((f) => Number(f.slice(0, 3))));
        assert.equal(await sql('SELECT max(version) FROM schema_version'), String(newest), 'every later migration applied');
        const st = (await api('GET', `/threads/${tid}/state`)).json;
        assert.deepEqual(st.values, JSON.parse(v(2)));
        assert.equal(st.checkpoint_id, '1f000000-0000-6000-8000-000000000003');
        assert.deepEqual((await api('GET', `/threads/${tid}`)).json.values, JSON.parse(v(2)));
        const h = (await api('GET', `/threads/${tid}/history`)).json;
        assert.deepEqual(h.map((s) => s.values), [JSON.parse(v(2)), JSON.parse(v(1)), { messages: [] }]);
        const sub = (await api('GET', `/threads/${tid}/state?checkpoint_ns=sub:1`)).json;
        assert.deepEqual(sub.values, { inner: [1, 2] });
        const join = await api('GET', `/threads/${tid}/runs/1f000000-0000-4000-8000-0000000000aa/join`);
        assert.deepEqual(join.json, JSON.parse(v(2)));
        // A run goes on from the converted state and stores only what it appends.
        const res = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human('new') });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.json.messages.map((m) => m.content), ['m0', 'm1', 'new', 'new']);
        assert.equal(res.json.topic, 'old');
        const fresh = (await sql(`SELECT coalesce(base, '-') || ':' || json_array_length(value::json) FROM checkpoint_blobs ` +
            `WHERE thread_id = '${tid}' AND channel = 'messages' AND version > '1f000000-0000-6000-8000-000000000004' ORDER BY version`)).split('\n');
        assert.equal(fresh.length, 2, fresh.join(','));
        assert.equal(fresh[0], '1f000000-0000-6000-8000-000000000003:1');
        assert.match(fresh[1], /^[0-9a-f-]{36}:1$/);
    });
});
