// Crons: the endpoints (validation with field paths, 404s, the Cron a create answers with its first run's
// fields, PATCH,
// DELETE, search, count) and the scheduler firing real runs on seconds-level schedules against real
// Postgres: stateless crons (threads kept or deleted), thread-bound ones (multitask strategy obeyed,
// deleted with their thread), enabled and end_time stopping them, firings missed while agentd was
// down collapsing into one, and two agentd processes on one database firing each occurrence once.
//
// Every group runs on a fresh database (lib/pg.mjs freshDatabase): any agentd on a database fires its
// crons, so crons here must not be visible to other test files' servers. Waits poll for a condition
// with a deadline; "it stopped firing" is shown by a second cron firing twice meanwhile.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql, rows } from './lib/pg.mjs';
import { call, expect422, expectIgnored } from './lib/threads-util.mjs';

const CRON_KEYS = ['cron_id', 'assistant_id', 'thread_id', 'on_run_completed', 'end_time', 'schedule', 'timezone', 'created_at', 'updated_at', 'payload', 'user_id', 'next_run_date', 'metadata', 'enabled'].sort();
/** The fields of its first run that an enabled cron's create answer adds to the Cron's. */
const FIRST_RUN_KEYS = ['run_id', 'status', 'kwargs', 'multitask_strategy', 'cancel_reason'];
const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';

/** Polls fn (async, returns a truthy value when done) every 50 ms until it is truthy; returns that value. */
async function waitFor(fn, { timeoutMs = 20000, what = 'a condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        last = await fn();
        if (last) return last;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

/** Runs a cron created, by cron id (run metadata carries it), with their thread and times. */
async function cronRuns(url, cronId) {
    const out = await psql(
        url,
        `SELECT run_id, thread_id, status, extract(epoch FROM created_at), coalesce(extract(epoch FROM ended_at), 0)
           FROM runs WHERE metadata->>'cron_id' = '${cronId}' ORDER BY created_at`,
    );
    return rows(out).map(([runId, threadId, status, created, ended]) => ({ runId, threadId, status, created: Number(created), ended: Number(ended) }));
}

async function count(url, sql) {
    return Number(await psql(url, sql));
}

/** Waits until cron `id` has created at least n runs; returns them. */
function firedAtLeast(url, id, n, timeoutMs = 30000) {
    return waitFor(
        async () => {
            const r = await cronRuns(url, id);
            return r.length >= n ? r : null;
        },
        { timeoutMs, what: `${n} runs of cron ${id}` },
    );
}

/** A sentinel cron firing every second: once it fired twice more, the scheduler has ticked past anything due before. */
async function schedulerTickedPast(port, url) {
    const s = await call(port, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '* * * * * *', input: {}, on_run_completed: 'keep' });
    assert.equal(s.status, 200, s.text);
    const id = s.json.cron_id;
    await firedAtLeast(url, id, 3);
    assert.equal((await call(port, 'DELETE', `/runs/crons/${id}`)).status, 204);
}

describe('crons: the endpoints', () => {
    let srv, db, thread;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, args: ['--shards', '2'], waitReady: true });
        thread = (await call(srv.port, 'POST', '/threads', {})).json.thread_id;
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('refuses bad fields with 422 naming each one', async () => {
        const p = srv.port;
        assert.equal((await call(p, 'GET', '/info')).json.flags.crons, true);
        const base = { assistant_id: 'echo', schedule: '*/5 * * * *', input: {} };
        const bad = async (patch, loc, type, path = '/runs/crons') => {
            const res = await call(p, 'POST', path, { ...base, ...patch });
            return expect422(assert, res, loc, type);
        };
        let res0;
        let hit = await bad({ schedule: '61 * * * *' }, ['body', 'schedule'], 'value_error');
        assert.match(hit.msg, /Invalid cron schedule: minute field: '61' is out of range 0-59/);
        hit = await bad({ schedule: '* * *' }, ['body', 'schedule'], 'value_error');
        assert.match(hit.msg, /expected 5 fields/);
        hit = await bad({ schedule: '0 0 30 2 *' }, ['body', 'schedule'], 'value_error');
        assert.match(hit.msg, /day-of-month/);
        await bad({ schedule: 'x'.repeat(257) }, ['body', 'schedule'], 'string_too_long');
        await bad({ schedule: 5 }, ['body', 'schedule'], 'string_type');
        await bad({ assistant_id: 'a'.repeat(257) }, ['body', 'assistant_id'], 'string_too_long');
        hit = await bad({ timezone: 'Mars/Olympus_Mons' }, ['body', 'timezone'], 'value_error');
        assert.match(hit.msg, /Invalid timezone: Mars\/Olympus_Mons/);
        await bad({ timezone: 'A'.repeat(65) }, ['body', 'timezone'], 'string_too_long');
        await bad({ end_time: 'next tuesday' }, ['body', 'end_time'], 'datetime_from_date_parsing');
        hit = await bad({ end_time: '2001-01-01T00:00:00Z' }, ['body', 'end_time'], 'value_error');
        assert.match(hit.msg, /future/);
        await bad({ enabled: 'yes' }, ['body', 'enabled'], 'bool_type');
        await bad({ on_run_completed: 'archive' }, ['body', 'on_run_completed'], 'literal_error');
        // A thread's cron has no on_run_completed (it keeps the caller's thread): ignored, not stored.
        const tc = await call(p, 'POST', `/threads/${thread}/runs/crons`, { ...base, enabled: false, on_run_completed: 'delete' });
        assert.equal(tc.status, 200, tc.text);
        assert.equal(tc.json.on_run_completed, null);
        await call(p, 'DELETE', `/runs/crons/${tc.json.cron_id}`);
        hit = await bad({ webhook: 'https://example.com/hook' }, ['body', 'webhook'], 'value_error');
        assert.match(hit.msg, /not supported/);
        await bad({ webhook: 'x'.repeat(3000) }, ['body', 'webhook']);
        await bad({ multitask_strategy: 'sometimes' }, ['body', 'multitask_strategy'], 'literal_error');
        await bad({ interrupt_before: 5 }, ['body', 'interrupt_before'], 'value_error');
        await bad({ stream_mode: 'everything' }, ['body', 'stream_mode'], 'literal_error');
        await bad({ stream_subgraphs: 'no' }, ['body', 'stream_subgraphs'], 'bool_type');
        await bad({ input: [1, 2] }, ['body', 'input'], 'dict_type');
        await bad({ metadata: 'm' }, ['body', 'metadata'], 'dict_type');
        await bad({ config: { configurable: 3 } }, ['body', 'config', 'configurable'], 'value_error');
        await bad({ durability: 'sometimes' }, ['body', 'durability'], 'literal_error');
        // An unknown field is ignored: the same body with a bad schedule is refused for the schedule only.
        res0 = await call(p, 'POST', '/runs/crons', { ...base, schedule: '61 * * * *', surprise: 1 });
        expect422(assert, res0, ['body', 'schedule'], 'value_error');
        assert.equal(res0.json.detail.length, 1, res0.text);
        let res = await call(p, 'POST', '/runs/crons', { input: {} });
        expect422(assert, res, ['body', 'assistant_id'], 'missing');
        expect422(assert, res, ['body', 'schedule'], 'missing');
        res = await call(p, 'POST', '/runs/crons', '[1]');
        assert.equal(res.status, 422);
        res = await call(p, 'POST', '/threads/not-a-uuid/runs/crons', base);
        expect422(assert, res, ['path', 'thread_id'], 'uuid_parsing');
        // Several problems at once, each with its path.
        res = await call(p, 'POST', '/runs/crons', { assistant_id: 7, schedule: '@never', timezone: 'Nowhere' });
        expect422(assert, res, ['body', 'assistant_id'], 'string_type');
        expect422(assert, res, ['body', 'schedule'], 'value_error');
        expect422(assert, res, ['body', 'timezone'], 'value_error');
        assert.equal(await count(db.url, 'SELECT count(*) FROM crons'), 0, 'nothing was stored');
    });

    it('404 for an unknown assistant or thread, and for unknown crons', async () => {
        const p = srv.port;
        let res = await call(p, 'POST', '/runs/crons', { assistant_id: 'no-such-assistant', schedule: '* * * * *', input: {} });
        assert.equal(res.status, 404, res.text);
        assert.match(res.json.message, /Assistant 'no-such-assistant' not found/);
        const ghost = randomUUID();
        res = await call(p, 'POST', `/threads/${ghost}/runs/crons`, { assistant_id: 'echo', schedule: '* * * * *', input: {} });
        assert.equal(res.status, 404, res.text);
        assert.match(res.json.message, new RegExp(`Thread '${ghost}' not found`));
        res = await call(p, 'PATCH', `/runs/crons/${ghost}`, { enabled: false });
        assert.equal(res.status, 404, res.text);
        res = await call(p, 'DELETE', `/runs/crons/${ghost}`);
        assert.equal(res.status, 404, res.text);
        res = await call(p, 'DELETE', '/runs/crons/nope');
        expect422(assert, res, ['path', 'cron_id'], 'uuid_parsing');
        assert.equal(await count(db.url, 'SELECT count(*) FROM crons'), 0);
    });

    it('enabled:false answers the Cron and fires nothing; search, count, PATCH, DELETE', async () => {
        const p = srv.port;
        const res = await call(p, 'POST', `/threads/${thread}/runs/crons`, {
            assistant_id: 'echo',
            schedule: '0 9 * * MON-FRI',
            timezone: 'Asia/Kolkata',
            input: { messages: [] },
            metadata: { team: 'a' },
            config: { configurable: { x: 1 } },
            multitask_strategy: 'enqueue',
            stream_mode: ['values', 'updates'],
            interrupt_before: '*',
            enabled: false,
            end_time: '2099-01-01T00:00:00Z',
        });
        assert.equal(res.status, 200, res.text);
        const c = res.json;
        assert.deepEqual(Object.keys(c).sort(), CRON_KEYS);
        assert.equal(c.enabled, false);
        assert.equal(c.thread_id, thread);
        assert.equal(c.user_id, 'anonymous');
        assert.equal(c.timezone, 'Asia/Kolkata');
        assert.deepEqual(c.metadata, { team: 'a' });
        assert.deepEqual(c.payload, {
            input: { messages: [] },
            config: { configurable: { x: 1 } },
            multitask_strategy: 'enqueue',
            stream_mode: ['values', 'updates'],
            interrupt_before: '*',
            timezone: 'Asia/Kolkata',
        });
        // 09:00 in Kolkata is 03:30 UTC, on a weekday.
        const next = new Date(c.next_run_date);
        assert.equal(next.getUTCHours() * 60 + next.getUTCMinutes(), 3 * 60 + 30, c.next_run_date);
        assert.ok(next.getUTCDay() >= 1 && next.getUTCDay() <= 5);
        assert.ok(next > new Date());
        assert.equal(new Date(c.end_time).toISOString(), '2099-01-01T00:00:00.000Z');
        assert.equal(await count(db.url, 'SELECT count(*) FROM runs'), 0, 'a disabled cron does not fire');

        const s = await call(p, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false, on_run_completed: 'keep' });
        assert.equal(s.status, 200, s.text);
        assert.equal(s.json.thread_id, null);
        assert.equal(s.json.on_run_completed, 'keep');
        assert.equal(s.json.timezone, 'UTC');

        let r = await call(p, 'POST', '/runs/crons/count', {});
        assert.equal(r.status, 200);
        assert.equal(r.json, 2);
        r = await call(p, 'POST', '/runs/crons/count', { thread_id: thread });
        assert.equal(r.json, 1);
        r = await call(p, 'POST', '/runs/crons/count', { assistant_id: 'echo', metadata: { team: 'a' } });
        assert.equal(r.json, 1);
        r = await call(p, 'POST', '/runs/crons/search', { thread_id: thread });
        assert.equal(r.status, 200);
        assert.equal(r.json.length, 1);
        assert.equal(r.json[0].cron_id, c.cron_id);
        assert.deepEqual(Object.keys(r.json[0]).sort(), CRON_KEYS);
        r = await call(p, 'POST', '/runs/crons/search', { assistant_id: 'echo', sort_by: 'created_at', sort_order: 'asc', limit: 1, offset: 1 });
        assert.deepEqual(r.json.map((x) => x.cron_id), [s.json.cron_id]);
        r = await call(p, 'POST', '/runs/crons/search', { enabled: true });
        assert.deepEqual(r.json, []);
        r = await call(p, 'POST', '/runs/crons/search', { select: ['cron_id', 'next_run_date'], sort_by: 'next_run_date' });
        assert.deepEqual(Object.keys(r.json[0]).sort(), ['cron_id', 'next_run_date']);
        expect422(assert, await call(p, 'POST', '/runs/crons/search', { select: ['password'] }), ['body', 'select', 0], 'literal_error');
        expect422(assert, await call(p, 'POST', '/runs/crons/search', { limit: 0 }), ['body', 'limit']);
        expect422(assert, await call(p, 'POST', '/runs/crons/search', { sort_by: 'schedule' }), ['body', 'sort_by'], 'literal_error');
        await expectIgnored(assert, () => call(p, 'POST', '/runs/crons/count', { limit: 3 }), () => call(p, 'POST', '/runs/crons/count', {}));

        // PATCH: payload fields merge (null removes), schedule and timezone move next_run_date.
        r = await call(p, 'PATCH', `/runs/crons/${c.cron_id}`, {
            schedule: '30 6 * * *',
            timezone: 'America/New_York',
            input: { messages: [{ role: 'user', content: 'hi' }] },
            interrupt_before: null,
            metadata: { team: 'b' },
            end_time: null,
        });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.schedule, '30 6 * * *');
        assert.equal(r.json.timezone, 'America/New_York');
        assert.equal(r.json.end_time, null);
        assert.deepEqual(r.json.metadata, { team: 'b' });
        assert.deepEqual(r.json.payload.input, { messages: [{ role: 'user', content: 'hi' }] });
        assert.equal('interrupt_before' in r.json.payload, false);
        assert.deepEqual(r.json.payload.stream_mode, ['values', 'updates']);
        const nyHour = new Date(r.json.next_run_date).getUTCHours();
        assert.ok(nyHour === 10 || nyHour === 11, `06:30 in New York is 10:30 or 11:30 UTC: ${r.json.next_run_date}`);
        assert.equal(r.json.enabled, false);
        expect422(assert, await call(p, 'PATCH', `/runs/crons/${c.cron_id}`, { schedule: '0 25 * * *' }), ['body', 'schedule'], 'value_error');
        expect422(assert, await call(p, 'PATCH', `/runs/crons/${c.cron_id}`, { timezone: 'Europe/Atlantis' }), ['body', 'timezone'], 'value_error');
        await expectIgnored(assert, () => call(p, 'PATCH', `/runs/crons/${c.cron_id}`, { on_run_completed: 'delete' }), () => call(p, 'PATCH', `/runs/crons/${c.cron_id}`, {}));
        assert.equal((await call(p, 'PATCH', `/runs/crons/${c.cron_id}`, {})).json.on_run_completed, null);
        await expectIgnored(assert, () => call(p, 'PATCH', `/runs/crons/${c.cron_id}`, { assistant_id: 'echo' }), () => call(p, 'PATCH', `/runs/crons/${c.cron_id}`, {}));
        expect422(assert, await call(p, 'PATCH', `/runs/crons/${c.cron_id}`, { webhook: 'https://x.example' }), ['body', 'webhook'], 'value_error');
        r = await call(p, 'PATCH', `/runs/crons/${s.json.cron_id}`, { on_run_completed: 'delete' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.on_run_completed, 'delete');
        r = await call(p, 'PATCH', `/runs/crons/${s.json.cron_id}`, {});
        assert.equal(r.status, 200, r.text);

        r = await call(p, 'DELETE', `/runs/crons/${s.json.cron_id}`);
        assert.equal(r.status, 204);
        assert.equal(r.text, '');
        assert.equal((await call(p, 'DELETE', `/runs/crons/${s.json.cron_id}`)).status, 404);
        // Deleting the thread deletes its crons.
        assert.equal((await call(p, 'DELETE', `/threads/${thread}`)).status < 300, true);
        assert.equal((await call(p, 'POST', '/runs/crons/count', {})).json, 0);
    });

    it('a create answers the Cron; enabled, with the run_id, status, kwargs and multitask_strategy of its first run (stateless and on a thread)', async () => {
        const p = srv.port;
        const own = (await call(p, 'POST', '/threads', {})).json.thread_id;
        // Schedules that fire once a year: only the first run (create's own) happens during the test.
        const body = { assistant_id: 'echo', schedule: '0 0 1 1 *', input: { messages: [] }, metadata: { team: 'c' }, multitask_strategy: 'enqueue', stream_mode: 'updates' };
        const cases = [
            { what: 'stateless, enabled', path: '/runs/crons', body: { ...body, on_run_completed: 'keep' }, thread: null },
            { what: 'stateless, disabled', path: '/runs/crons', body: { ...body, enabled: false }, thread: null },
            { what: 'thread, enabled', path: `/threads/${own}/runs/crons`, body, thread: own },
            { what: 'thread, disabled', path: `/threads/${own}/runs/crons`, body: { ...body, enabled: false }, thread: own },
        ];
        for (const c of cases) {
            const enabled = c.body.enabled !== false;
            const res = await call(p, 'POST', c.path, c.body);
            assert.equal(res.status, 200, `${c.what}: ${res.text}`);
            const a = res.json;
            assert.deepEqual(Object.keys(a).sort(), [...CRON_KEYS, ...(enabled ? FIRST_RUN_KEYS : [])].sort(), `${c.what}: ${res.text}`);
            // Every Cron field, as search shows the cron.
            const found = (await call(p, 'POST', '/runs/crons/search', { metadata: { team: 'c' }, limit: 100 })).json.find((x) => x.cron_id === a.cron_id);
            assert.ok(found, `${c.what}: the cron is stored`);
            for (const k of CRON_KEYS) assert.deepEqual(a[k], found[k], `${c.what}: Cron field ${k}`);
            assert.equal(a.assistant_id, ECHO, c.what);
            assert.equal(a.thread_id, c.thread, `${c.what}: the Cron's thread_id`);
            assert.equal(a.user_id, 'anonymous');
            assert.equal(a.schedule, '0 0 1 1 *');
            assert.deepEqual(a.payload, { input: { messages: [] }, multitask_strategy: 'enqueue', stream_mode: 'updates' });
            assert.deepEqual(a.metadata, { team: 'c' }, `${c.what}: the Cron's metadata`);
            assert.equal(a.enabled, enabled);
            assert.equal(a.end_time, null);
            assert.equal(a.on_run_completed, c.body.on_run_completed ?? null);
            // Enabled: the first occurrence (next New Year) fired now, so next_run_date is the one after it.
            const year = new Date().getUTCFullYear() + (enabled ? 2 : 1);
            assert.equal(new Date(a.next_run_date).toISOString(), `${year}-01-01T00:00:00.000Z`, `${c.what}: ${a.next_run_date}`);
            assert.ok(a.created_at && a.updated_at);
            if (!enabled) {
                assert.equal(await count(db.url, `SELECT count(*) FROM runs WHERE metadata->>'cron_id' = '${a.cron_id}'`), 0, `${c.what}: nothing fired`);
                continue;
            }
            // The run fields are the first run's.
            assert.equal(a.status, 'pending');
            assert.equal(a.multitask_strategy, 'enqueue');
            const tid = a.kwargs.config.configurable.thread_id;
            if (c.thread) assert.equal(tid, c.thread);
            else assert.notEqual(tid, null, 'a stateless first run has a thread of its own');
            const run = await call(p, 'GET', `/threads/${tid}/runs/${a.run_id}`);
            assert.equal(run.status, 200, run.text);
            assert.equal(run.json.metadata.cron_id, a.cron_id, 'the answered run_id is the cron\'s run');
            assert.deepEqual(a.kwargs, run.json.kwargs);
            assert.deepEqual(a.kwargs.stream_mode, ['updates']);
            assert.equal(run.json.multitask_strategy, 'enqueue');
            assert.equal(await count(db.url, `SELECT count(*) FROM runs WHERE metadata->>'cron_id' = '${a.cron_id}'`), 1);
            assert.equal((await call(p, 'DELETE', `/runs/crons/${a.cron_id}`)).status, 204);
        }
    });
});

describe('crons: the scheduler fires real runs', () => {
    let srv, db;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, args: ['--shards', '2'], waitReady: true });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('a stateless cron answers the Cron with its first run, then fires every second on kept threads, once per second, until deleted', async () => {
        const p = srv.port;
        const res = await call(p, 'POST', '/runs/crons', {
            assistant_id: 'echo',
            schedule: '* * * * * *',
            input: { messages: [{ role: 'user', content: 'tick' }] },
            on_run_completed: 'keep',
            metadata: { purpose: 'test' },
        });
        assert.equal(res.status, 200, res.text);
        const run = res.json;
        assert.ok(run.run_id, res.text);
        assert.equal(run.status, 'pending');
        assert.equal(run.thread_id, null, "a stateless cron's thread_id, not its run's");
        assert.deepEqual(run.metadata, { purpose: 'test' }, "the cron's metadata, not its run's");
        const id = run.cron_id;
        const runs = await firedAtLeast(db.url, id, 4);
        assert.equal(runs[0].runId, run.run_id, 'the first run is the one create answered (its metadata names the cron)');
        assert.equal(runs[0].threadId, run.kwargs.config.configurable.thread_id, "the first run's new thread is in its kwargs");
        assert.equal(new Set(runs.map((r) => r.threadId)).size, runs.length, 'each firing on a new thread');
        const slots = runs.slice(1).map((r) => Math.floor(r.created));
        assert.equal(new Set(slots).size, slots.length, `one firing per second: ${slots}`);
        await waitFor(async () => (await cronRuns(db.url, id)).slice(0, 4).every((r) => r.status === 'success'), { what: 'the runs to succeed' });
        // One statement, one snapshot: the cron keeps firing while this runs.
        assert.equal(
            await count(db.url, `SELECT count(*) FROM runs r WHERE r.metadata->>'cron_id' = '${id}' AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.thread_id = r.thread_id)`),
            0,
            'threads kept: runs of the cron whose thread is gone',
        );
        const s = await call(p, 'POST', '/runs/crons/search', {});
        const c = s.json.find((x) => x.cron_id === id);
        assert.ok(new Date(c.next_run_date) > new Date(Date.now() - 2000), `next_run_date moves on: ${c.next_run_date}`);

        assert.equal((await call(p, 'DELETE', `/runs/crons/${id}`)).status, 204);
        const n = (await cronRuns(db.url, id)).length;
        await schedulerTickedPast(p, db.url);
        assert.ok((await cronRuns(db.url, id)).length <= n + 1, 'a deleted cron stops firing (one firing may have been under way)');
        const m = (await cronRuns(db.url, id)).length;
        await schedulerTickedPast(p, db.url);
        assert.equal((await cronRuns(db.url, id)).length, m);
    });

    it('a stateless cron deletes each firing thread after its run by default', async () => {
        const p = srv.port;
        const res = await call(p, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '*/1 * * * * *', input: {} });
        assert.equal(res.status, 200, res.text);
        const id = res.json.cron_id;
        const finished = async () => {
            const m = await call(p, 'GET', '/metrics');
            return [...m.text.matchAll(/^agentd_runs_finished_total\{[^}]*status="success"[^}]*\} (\d+)/gm)].reduce((a, x) => a + Number(x[1]), 0);
        };
        const f0 = await finished();
        await waitFor(async () => (await finished()) >= f0 + 3, { what: 'three firings to finish' });
        assert.equal((await call(p, 'DELETE', `/runs/crons/${id}`)).status, 204);
        await waitFor(async () => (await count(db.url, `SELECT count(*) FROM runs WHERE metadata->>'cron_id' = '${id}'`)) === 0, {
            what: 'the firing threads (and their runs) to be deleted',
        });
    });

    it('a thread-bound cron fires on its thread with its run fields; enabled stops and restarts it; deleting the thread deletes it', async () => {
        const p = srv.port;
        const thread = (await call(p, 'POST', '/threads', {})).json.thread_id;
        const res = await call(p, 'POST', `/threads/${thread}/runs/crons`, {
            assistant_id: 'echo',
            schedule: '*/2 * * * * *',
            input: { messages: [{ role: 'user', content: 'hello' }] },
            stream_mode: 'updates',
            multitask_strategy: 'enqueue',
            config: { configurable: { knob: 7 } },
            enabled: false,
        });
        assert.equal(res.status, 200, res.text);
        const id = res.json.cron_id;
        let r = await call(p, 'PATCH', `/runs/crons/${id}`, { enabled: true });
        assert.equal(r.status, 200, r.text);
        const runs = await firedAtLeast(db.url, id, 2);
        assert.ok(runs.every((x) => x.threadId === thread));
        const got = await call(p, 'GET', `/threads/${thread}/runs/${runs[0].runId}`);
        assert.equal(got.status, 200, got.text);
        assert.deepEqual(got.json.kwargs.stream_mode, ['updates']);
        assert.equal(got.json.kwargs.config.configurable.knob, 7);
        assert.equal(got.json.multitask_strategy, 'enqueue');
        assert.deepEqual(got.json.kwargs.input, { messages: [{ role: 'user', content: 'hello' }] });
        const c = (await call(p, 'POST', '/runs/crons/search', { thread_id: thread })).json[0];
        assert.equal(new Date(c.next_run_date).getUTCSeconds() % 2, 0, `*/2 seconds: ${c.next_run_date}`);
        await waitFor(async () => (await call(p, 'GET', `/threads/${thread}/state`)).json?.values?.messages?.length >= 2, { what: 'the runs to update the thread' });

        r = await call(p, 'PATCH', `/runs/crons/${id}`, { enabled: false });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.enabled, false);
        let n = (await cronRuns(db.url, id)).length;
        await schedulerTickedPast(p, db.url);
        const m = (await cronRuns(db.url, id)).length;
        assert.ok(m <= n + 1, 'disabled: no more firings');
        await schedulerTickedPast(p, db.url);
        assert.equal((await cronRuns(db.url, id)).length, m);

        r = await call(p, 'PATCH', `/runs/crons/${id}`, { enabled: true, schedule: '* * * * * *' });
        assert.equal(r.status, 200, r.text);
        await firedAtLeast(db.url, id, m + 2);
        const del = await call(p, 'DELETE', `/threads/${thread}`);
        assert.ok(del.status < 300, del.text);
        assert.equal((await call(p, 'POST', '/runs/crons/count', { thread_id: thread })).json, 0, 'the thread took its cron along');
        n = await count(db.url, `SELECT count(*) FROM runs WHERE metadata->>'cron_id' = '${id}'`);
        assert.equal(n, 0);
        await schedulerTickedPast(p, db.url);
        assert.equal(await count(db.url, `SELECT count(*) FROM threads WHERE thread_id = '${thread}'`), 0, 'no firing brought the thread back');
    });

    it('multitask reject: a firing while the previous run is active is refused, runs never overlap', async () => {
        const p = srv.port;
        const thread = (await call(p, 'POST', '/threads', {})).json.thread_id;
        const res = await call(p, 'POST', `/threads/${thread}/runs/crons`, {
            assistant_id: 'stress',
            schedule: '* * * * * *',
            input: {},
            config: { configurable: { tokens: 6, delay_ms: 250, mode: 'custom' } },
            multitask_strategy: 'reject',
        });
        assert.equal(res.status, 200, res.text);
        const id = res.json.cron_id;
        await srv.waitForStderr(new RegExp(`cron firing refused" cron_id=${id} .*status=409`), { timeoutMs: 20000 });
        const runs = await firedAtLeast(db.url, id, 2);
        assert.equal((await call(p, 'DELETE', `/runs/crons/${id}`)).status, 204);
        await waitFor(async () => (await cronRuns(db.url, id)).every((x) => x.status !== 'pending' && x.status !== 'running'), { what: 'the runs to end' });
        const done = await cronRuns(db.url, id);
        for (let i = 1; i < done.length; i++) assert.ok(done[i].created >= done[i - 1].ended - 0.2, `run ${i} started after run ${i - 1} ended`);
        assert.ok(done.length >= runs.length);
    });

    it('end_time: the cron fires until then, then disables itself', async () => {
        const p = srv.port;
        const end = new Date(Date.now() + 3500).toISOString();
        const res = await call(p, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '* * * * * *', input: {}, on_run_completed: 'keep', end_time: end });
        assert.equal(res.status, 200, res.text);
        const id = res.json.cron_id;
        await waitFor(async () => (await call(p, 'POST', '/runs/crons/search', { enabled: false })).json.some((c) => c.cron_id === id), {
            what: 'the cron to disable itself after its end_time',
        });
        const runs = await cronRuns(db.url, id);
        assert.ok(runs.length >= 2, `it fired before its end: ${runs.length}`);
        assert.ok(runs.every((r) => r.created <= Date.parse(end) / 1000 + 0.5), 'nothing fired after end_time');
        await schedulerTickedPast(p, db.url);
        assert.equal((await cronRuns(db.url, id)).length, runs.length);
    });
});

describe('crons: firings missed while agentd was down fire once at start', () => {
    it('36 missed occurrences make one firing, and next_run_date moves to the future', async (t) => {
        const db = await freshDatabase({ t });
        let srv = await startAgentd({ db: db.url, args: ['--shards', '2'], waitReady: true });
        const res = await call(srv.port, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '*/5 * * * *', input: {}, on_run_completed: 'keep', enabled: false });
        assert.equal(res.status, 200, res.text);
        const id = res.json.cron_id;
        assert.equal(await srv.stop(), 0);
        await psql(db.url, `UPDATE crons SET enabled = true, next_run_date = now() - interval '3 hours' WHERE cron_id = '${id}'`);
        srv = await startAgentd({ db: db.url, args: ['--shards', '2'], waitReady: true });
        t.after(() => srv.dispose());
        await firedAtLeast(db.url, id, 1);
        await schedulerTickedPast(srv.port, db.url);
        assert.equal((await cronRuns(db.url, id)).length, 1, 'one firing for all the missed occurrences');
        const next = new Date((await call(srv.port, 'POST', '/runs/crons/search', {})).json.find((c) => c.cron_id === id).next_run_date);
        assert.ok(next > new Date(), `next_run_date is in the future: ${next.toISOString()}`);
        assert.equal(next.getUTCMinutes() % 5, 0);
        assert.equal(next.getUTCSeconds(), 0);
    });
});

describe('crons: two agentd processes on one database', () => {
    it('each occurrence fires exactly once', async (t) => {
        const db = await freshDatabase({ t });
        const a = await startAgentd({ db: db.url, args: ['--shards', '2', '--log-level', 'debug'], waitReady: true });
        t.after(() => a.dispose());
        const b = await startAgentd({ db: db.url, args: ['--shards', '2', '--log-level', 'debug'], waitReady: true });
        t.after(() => b.dispose());
        const ids = [];
        for (let i = 0; i < 6; i++) {
            const srv = i % 2 ? b : a;
            const res = await call(srv.port, 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '* * * * * *', input: { i }, on_run_completed: 'keep', enabled: false });
            assert.equal(res.status, 200, res.text);
            ids.push(res.json.cron_id);
        }
        const thread = (await call(a.port, 'POST', '/threads', {})).json.thread_id;
        const tb = await call(b.port, 'POST', `/threads/${thread}/runs/crons`, { assistant_id: 'echo', schedule: '* * * * * *', input: {}, multitask_strategy: 'enqueue', enabled: false });
        assert.equal(tb.status, 200, tb.text);
        ids.push(tb.json.cron_id);
        // Enable them all at once, due at the same instant for both processes.
        await psql(db.url, `UPDATE crons SET enabled = true, next_run_date = date_trunc('second', now()) + interval '1 second'`);
        for (const id of ids) await firedAtLeast(db.url, id, 5, 40000);
        await psql(db.url, 'UPDATE crons SET enabled = false');
        const firedBy = (srv) => (srv.stderr().match(/msg="cron fired"/g) || []).length;
        const runCount = () => count(db.url, "SELECT count(*) FROM runs WHERE metadata ? 'cron_id'");
        // Firings under way when the crons were disabled finish; then every run is one logged firing.
        const total = await waitFor(async () => {
            const n = await runCount();
            return n === firedBy(a) + firedBy(b) ? n : null;
        }, { what: 'every run to match one firing of one process' });
        const dup = rows(
            await psql(
                db.url,
                `SELECT metadata->>'cron_id', date_trunc('second', created_at), count(*) FROM runs
                  WHERE metadata ? 'cron_id' GROUP BY 1, 2 HAVING count(*) > 1`,
            ),
        );
        assert.deepEqual(dup, [], 'no occurrence fired twice');
        assert.ok(total >= ids.length * 5);
        t.diagnostic(`firings: process a ${firedBy(a)}, process b ${firedBy(b)}`);
    });
});
