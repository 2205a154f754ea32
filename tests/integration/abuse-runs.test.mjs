// Issue 23, items 7 and 9: run admission order and runs orphaned by a crash.
//
// (7) Runs enqueued on one thread start in the order the server accepted them (their run ids, uuid
//     v7 minted in order on the thread's shard), created_at is the acceptance time, and started_at
//     is stored when a run starts.
// (9) After kill -9, a new agentd on the same database settles the dead process's runs before it
//     takes work (status error, a message saying what happened), a thread whose stored active run
//     belongs to a live claimant this process does not know refuses a reject run, and a thread's
//     status follows its latest run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql, rows } from './lib/pg.mjs';
import { call } from './lib/threads-util.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const human = (content) => ({ messages: [{ role: 'user', content }] });
const slow = (tokens, delay) => ({ assistant_id: STRESS, input: human('s'), config: { configurable: { tokens, delay_ms: delay, mode: 'custom' } } });

describe('run admission order and orphaned runs', { timeout: 120000 }, () => {
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

    it('concurrent enqueue runs start in acceptance order; created_at and started_at say so', async () => {
        const srv = await start();
        try {
            const tid = await thread(srv);
            const N = 20;
            for (let round = 0; round < 3; round++) {
                // The thread is idle: every run of the round arrives at once.
                const answers = await Promise.all(Array.from({ length: N }, async (_, i) => {
                    const res = await fetch(`${srv.url}/threads/${tid}/runs/wait`, {
                        method: 'POST',
                        headers: { 'content-type': 'application/json' },
                        body: JSON.stringify({ assistant_id: ECHO, input: human(`r${round}-${i}`), multitask_strategy: 'enqueue' }),
                    });
                    const text = await res.text();
                    assert.equal(res.status, 200, `run ${i} of round ${round}: ${text}`);
                    return { content: `r${round}-${i}`, run_id: res.headers.get('content-location').split('/').pop() };
                }));
                const accepted = answers.map((a) => a.run_id).sort(); // uuid v7: minted in acceptance order
                const byContent = new Map(answers.map((a) => [a.content, a.run_id]));
                // The order they ran: each echo run appends its input and the echo to the thread.
                const state = (await call(srv.port, 'GET', `/threads/${tid}/state`)).json;
                const ran = state.values.messages
                    .filter((m) => m.type === 'human' && m.content.startsWith(`r${round}-`))
                    .map((m) => byContent.get(m.content));
                assert.deepEqual(ran, accepted, `round ${round}: the runs ran in this order (first accepted ran at ${ran.indexOf(accepted[0])})`);
                assert.equal((await call(srv.port, 'GET', `/threads/${tid}`)).json.status, 'idle');
            }
            // created_at is the acceptance time (ordered like the ids); started_at is set, after it,
            // and in the same order.
            const stored = rows(await sql(`SELECT run_id, to_char(created_at, 'YYYYMMDDHH24MISSUS'), coalesce(to_char(started_at, 'YYYYMMDDHH24MISSUS'), ''),
                to_char(ended_at, 'YYYYMMDDHH24MISSUS') FROM runs WHERE thread_id = '${tid}' ORDER BY run_id`));
            assert.equal(stored.length, 3 * N);
            for (let i = 0; i < stored.length; i++) {
                const [rid, created, started, ended] = stored[i];
                assert.ok(started !== '', `run ${rid} has no started_at`);
                assert.ok(started >= created, `run ${rid} started ${started} before it was created ${created}`);
                assert.ok(ended >= started, `run ${rid} ended ${ended} before it started ${started}`);
                if (i > 0) {
                    const [prid, pcreated, pstarted, pended] = stored[i - 1];
                    assert.ok(created >= pcreated, `run ${rid} created_at ${created} is before that of the earlier run ${prid} (${pcreated})`);
                    assert.ok(started >= pended, `run ${rid} started ${started} before the earlier run ${prid} ended ${pended}`);
                    assert.ok(started > pstarted, `run ${rid} started ${started}, not after the earlier run ${prid} (${pstarted})`);
                }
            }
        } finally {
            await srv.dispose();
        }
    });

    it('after kill -9 the next process settles the orphans at start-up; the thread follows its latest run', async () => {
        const a = await start();
        const threads = [await thread(a), await thread(a)];
        const orphans = [];
        for (const tid of threads) {
            const run = await call(a.port, 'POST', `/threads/${tid}/runs`, slow(1000, 100));
            assert.equal(run.status, 200, run.text);
            orphans.push(run.json.run_id);
        }
        // One more queued behind the first (enqueue): an orphan that never started.
        const queued = await call(a.port, 'POST', `/threads/${threads[0]}/runs`, { ...slow(1, 0), multitask_strategy: 'enqueue' });
        assert.equal(queued.status, 200, queued.text);
        orphans.push(queued.json.run_id);
        const pid = a.proc.pid;
        a.proc.kill('SIGKILL');
        await a.exited;
        const list = orphans.map((r) => `'${r}'`).join(',');
        assert.match(await sql(`SELECT string_agg(DISTINCT status, ',') FROM runs WHERE run_id IN (${list})`), /^(pending|running)(,running)?$/);

        // Default lease (30 s): nothing but the start-up can have settled them by the time it is ready.
        const b = await start();
        try {
            const settled = rows(await sql(`SELECT run_id, status, coalesce(error, '') FROM runs WHERE run_id IN (${list})`));
            for (const [rid, status, error] of settled) {
                assert.equal(status, 'error', `orphan ${rid} is ${status} once the new process is ready`);
                assert.match(error, new RegExp(`stopped \\(pid ${pid} on host [^)]+\\)`), `orphan ${rid}: error ${JSON.stringify(error)}`);
            }
            for (const tid of threads)
                assert.equal((await call(b.port, 'GET', `/threads/${tid}`)).json.status, 'error', `thread ${tid} of a settled orphan`);
            // join tells what happened.
            const joined = await call(b.port, 'GET', `/threads/${threads[1]}/runs/${orphans[1]}/join`);
            assert.equal(joined.status, 200, joined.text);
            assert.match(joined.json.__error__?.message ?? '', /stopped \(pid \d+ on host/, joined.text);

            // The default strategy (reject) is accepted now that nothing runs there, and the thread
            // follows its newest run.
            const next = await call(b.port, 'POST', `/threads/${threads[0]}/runs/wait`, { assistant_id: ECHO, input: human('after') });
            assert.equal(next.status, 200, next.text);
            assert.equal((await call(b.port, 'GET', `/threads/${threads[0]}`)).json.status, 'idle');
        } finally {
            await b.dispose();
        }
    });

    it('an active run of a process this one cannot check blocks the thread until its lease ends it', async () => {
        const a = await start();
        const tid = await thread(a);
        const orphan = await call(a.port, 'POST', `/threads/${tid}/runs`, slow(1000, 100));
        assert.equal(orphan.status, 200, orphan.text);
        const rid = orphan.json.run_id;
        a.proc.kill('SIGKILL');
        await a.exited;
        // As if it had run on another host (a pid there cannot be checked from here).
        await sql(`DO $$ BEGIN IF to_regclass('agentd_processes') IS NOT NULL THEN
            UPDATE agentd_processes SET host = 'elsewhere.invalid' WHERE boot_id = (SELECT claimed_by FROM runs WHERE run_id = '${rid}');
            END IF; END $$`);

        const b = await start({ runs: { lease_ms: 600 } });
        try {
            assert.match(await sql(`SELECT status FROM runs WHERE run_id = '${rid}'`), /^(pending|running)$/);
            // Its lease (30 s, the default of the dead process) still holds: no strategy may act as if
            // the thread were idle.
            for (const multitask_strategy of ['reject', 'enqueue', 'interrupt']) {
                const res = await call(b.port, 'POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human(multitask_strategy), multitask_strategy });
                assert.equal(res.status, 409, `${multitask_strategy}: ${res.text}`);
                assert.match(res.json.message, new RegExp(`run ${rid} is active on another agentd process`), res.text);
            }
            const queued = await call(b.port, 'POST', `/threads/${tid}/runs`, { assistant_id: ECHO, input: human('bg'), multitask_strategy: 'enqueue' });
            assert.equal(queued.status, 409, queued.text);

            // Its lease runs out: the sweep ends it, saying what happened, and the thread takes work.
            await sql(`UPDATE runs SET lease_expires_at = now() - interval '1 second' WHERE run_id = '${rid}'`);
            await b.waitForStderr(/runs of a stopped process ended as error/, { timeoutMs: 10000 });
            const [[status, error]] = rows(await sql(`SELECT status, coalesce(error, '') FROM runs WHERE run_id = '${rid}'`));
            assert.equal(status, 'error');
            assert.match(error, /\(pid \d+ on host elsewhere\.invalid\) stopped renewing its lease/, error);
            assert.equal((await call(b.port, 'GET', `/threads/${tid}`)).json.status, 'error');
            const next = await call(b.port, 'POST', `/threads/${tid}/runs/wait`, { assistant_id: ECHO, input: human('after') });
            assert.equal(next.status, 200, next.text);
            assert.equal((await call(b.port, 'GET', `/threads/${tid}`)).json.status, 'idle');
        } finally {
            await b.dispose();
        }
    });
});
