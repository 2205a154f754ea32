// Runs over time and across process lifetimes: the run timeout, a delayed start (after_seconds), a
// fork from a past checkpoint, a graceful stop with a run in flight, and a crash (SIGKILL) whose
// active run the next process ends as error once its lease has expired, while a live process keeps
// renewing the leases of its own long runs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { call } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const human = (content) => ({ messages: [{ role: 'user', content }] });
const slow = (tokens, delay) => ({ assistant_id: STRESS, input: human('s'), config: { configurable: { tokens, delay_ms: delay, mode: 'custom' } } });

describe('runs over time', { timeout: 120000 }, () => {
    let db;
    const sql = (text) => psql(db.url, text);

    before(async () => {
        db = await freshDatabase();
    });
    after(async () => {
        if (db) await db.drop();
    });

    const start = (config = {}) =>
        startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'], config: { database_url: db.url, ...config } });
    const thread = async (srv) => (await call(srv.port, 'POST', '/threads', {})).json.thread_id;

    it('a run past runs.timeout_ms ends timeout, with an error event, and its thread error', async () => {
        const srv = await start({ runs: { timeout_ms: 300 } });
        try {
            const tid = await thread(srv);
            const res = await fetch(`${srv.url}/threads/${tid}/runs/stream`, {
                method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...slow(100, 50), stream_mode: 'custom' }),
            });
            const text = await res.text();
            assert.match(text, /event: error\ndata: \{"error":"TimeoutError"/);
            assert.match(text, /event: end\ndata: \{"status":"error"\}/);
            const rid = res.headers.get('content-location').split('/').pop();
            const run = await call(srv.port, 'GET', `/threads/${tid}/runs/${rid}`);
            assert.equal(run.json.status, 'timeout');
            assert.equal((await call(srv.port, 'GET', `/threads/${tid}`)).json.status, 'error');
        } finally {
            await srv.dispose();
        }
    });

    it('after_seconds delays the start; a fork runs from a past checkpoint', async () => {
        const srv = await start();
        try {
            const tid = await thread(srv);
            const t0 = Date.now();
            const res = await call(srv.port, 'POST', `/threads/${tid}/runs`, { assistant_id: ECHO, input: human('later'), after_seconds: 0.4 });
            assert.equal(res.status, 200, res.text);
            assert.equal(res.json.kwargs.after_seconds, 0.4);
            const join = await call(srv.port, 'GET', `/threads/${tid}/runs/${res.json.run_id}/join`);
            assert.ok(Date.now() - t0 >= 400, 'the run did not start before after_seconds');
            assert.equal(join.json.messages[1].content, 'later');

            await call(srv.port, 'POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human('second') });
            const hist = (await call(srv.port, 'POST', `/threads/${tid}/history`, { limit: 10 })).json;
            const firstEnd = hist.find((s) => s.metadata.step === 1);
            const fork = await call(srv.port, 'POST', `/threads/${tid}/runs/wait`, {
                assistant_id: ECHO, input: human('forked'), checkpoint_id: firstEnd.checkpoint.checkpoint_id,
            });
            assert.deepEqual(fork.json.messages.map((m) => m.content), ['later', 'later', 'forked', 'forked']);
            const bad = await call(srv.port, 'POST', `/threads/${tid}/runs`, { assistant_id: ECHO, input: {}, checkpoint_id: '1f000000-0000-6000-8000-000000000000' });
            assert.equal(bad.status, 404, bad.text);
        } finally {
            await srv.dispose();
        }
    });

    it('SIGTERM ends an active run as error and answers its waiter', async () => {
        const srv = await start();
        const tid = await thread(srv);
        const run = await call(srv.port, 'POST', `/threads/${tid}/runs`, slow(100, 100));
        const joining = await fetch(`${srv.url}/threads/${tid}/runs/${run.json.run_id}/join`); // its head is out
        assert.equal(await srv.stop('SIGTERM'), 0);
        const out = await joining.json();
        assert.ok(out.__error__, JSON.stringify(out));
        assert.equal(await sql(`SELECT status FROM runs WHERE run_id = '${run.json.run_id}'`), 'error');
        await srv.dispose();
    });

    it('after a crash the next process ends the dead run as error; live leases are renewed', async () => {
        const cfg = { runs: { lease_ms: 600 } };
        const a = await start(cfg);
        const tid = await thread(a);
        const dead = await call(a.port, 'POST', `/threads/${tid}/runs`, slow(1000, 100));
        await call(a.port, 'GET', `/threads/${tid}/runs/${dead.json.run_id}`);
        a.proc.kill('SIGKILL');
        await a.exited;
        assert.match(await sql(`SELECT status FROM runs WHERE run_id = '${dead.json.run_id}'`), /^(pending|running)$/);

        const b = await start(cfg);
        try {
            // A long run of the live process outlives several leases without being ended.
            const t2 = await thread(b);
            const live = await call(b.port, 'POST', `/threads/${t2}/runs`, slow(15, 100));
            const deadline = Date.now() + 10000;
            for (;;) {
                const st = await sql(`SELECT status FROM runs WHERE run_id = '${dead.json.run_id}'`);
                if (st === 'error') break;
                assert.ok(Date.now() < deadline, `the dead run is still ${st}`);
                await new Promise((r) => setTimeout(r, 100));
            }
            assert.equal((await call(b.port, 'GET', `/threads/${tid}`)).json.status, 'error');
            const joined = await call(b.port, 'GET', `/threads/${t2}/runs/${live.json.run_id}/join`);
            assert.equal(joined.status, 200);
            assert.equal((await call(b.port, 'GET', `/threads/${t2}/runs/${live.json.run_id}`)).json.status, 'success');
        } finally {
            await b.dispose();
        }
    });
});
