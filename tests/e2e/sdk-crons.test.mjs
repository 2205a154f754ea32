// The real LangGraph JS SDK (each SDK line) against agentd: client.crons (create, createForThread, update,
// delete, search, count) with every option they send, with seconds-level schedules firing real runs
// seen through client.runs, and the answer of create: one object with every Cron field.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lacksOption, rejectsWith, useSdk } from './lib.mjs';

const human = (content) => ({ messages: [{ role: 'user', content }] });
const contents = (values) => values.messages.map((m) => m.content);
const CRON_FIELDS = ['cron_id', 'assistant_id', 'thread_id', 'user_id', 'payload', 'schedule', 'next_run_date', 'end_time',
    'created_at', 'updated_at', 'metadata'];

// The thread a create's first run went to (the answer is the Cron, whose thread_id is the cron's).
const runThreadOf = (r) => r.kwargs.config.configurable.thread_id;

async function waitFor(fn, { timeoutMs = 30000, what = 'a condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
    }
}

describe('LangGraph SDK: client.crons', { timeout: 120000 }, () => {
    // A fresh database: every agentd on a database fires its crons.
    const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

    test('createForThread fires runs on the thread; update, search, count, delete', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const first = await c.crons.createForThread(t.thread_id, 'echo', {
            schedule: '* * * * * *',
            input: human('tick'),
            metadata: { owner: 'sdk' },
            multitaskStrategy: 'enqueue',
            streamMode: ['values'],
        });
        // The Cron (CronCreateResponse), with its first run's fields.
        assert.equal(first.thread_id, t.thread_id);
        assert.deepEqual(first.metadata, { owner: 'sdk' });
        assert.equal(first.schedule, '* * * * * *');
        assert.equal(first.enabled, true);
        assert.equal(first.status, 'pending');
        assert.equal(first.multitask_strategy, 'enqueue');
        const cronId = first.cron_id;
        assert.ok(cronId);
        assert.equal((await c.runs.get(t.thread_id, first.run_id)).metadata.cron_id, cronId);
        const runs = await waitFor(async () => {
            const r = await c.runs.list(t.thread_id, { limit: 100 });
            return r.filter((x) => x.status === 'success').length >= 3 ? r : null;
        }, { what: 'three successful runs on the thread' });
        assert.ok(runs.every((r) => r.metadata.cron_id === cronId));
        const state = await c.threads.getState(t.thread_id);
        assert.ok(state.values.messages.length >= 6);

        let found = await c.crons.search({ threadId: t.thread_id });
        assert.equal(found.length, 1);
        assert.equal(found[0].cron_id, cronId);
        assert.equal(found[0].enabled, true);
        assert.deepEqual(found[0].metadata, { owner: 'sdk' });
        assert.ok(found[0].next_run_date);
        assert.equal(await c.crons.count({ threadId: t.thread_id }), 1);
        assert.equal(await c.crons.count({ assistantId: 'echo' }), 1);

        const updated = await c.crons.update(cronId, { enabled: false, schedule: '0 12 * * *', metadata: { owner: 'sdk', v: 2 } });
        assert.equal(updated.enabled, false);
        assert.equal(updated.schedule, '0 12 * * *');
        assert.equal(updated.timezone, 'UTC');
        assert.deepEqual(updated.metadata, { owner: 'sdk', v: 2 });
        assert.equal(new Date(updated.next_run_date).getUTCHours(), 12);
        found = await c.crons.search({ enabled: false, select: ['cron_id', 'enabled'] });
        assert.deepEqual(found, [{ cron_id: cronId, enabled: false }]);

        await c.crons.delete(cronId);
        assert.equal(await c.crons.count(), 0);
        await rejectsWith(c.crons.delete(cronId), 404);
        await rejectsWith(c.crons.update(cronId, { enabled: true }), 404);
    });

    test('create (stateless) answers the Cron and its first run, on a new thread kept with onRunCompleted keep', async () => {
        const c = sdk.client;
        const created = await c.crons.create('echo', { schedule: '*/2 * * * * *', input: human('hi'), onRunCompleted: 'keep' });
        assert.ok(created.run_id);
        assert.equal(created.thread_id, null, "the Cron's thread_id: a stateless cron has none");
        const cronId = created.cron_id;
        const threadId = created.kwargs.config.configurable.thread_id; // the first run's new thread
        await waitFor(async () => (await c.runs.get(threadId, created.run_id)).status === 'success', { what: 'the first run to succeed' });
        assert.equal((await c.runs.get(threadId, created.run_id)).metadata.cron_id, cronId);
        assert.deepEqual(contents((await c.threads.getState(threadId)).values), ['hi', 'hi']);
        const [cron] = await c.crons.search({ assistantId: 'echo' });
        assert.equal(cron.cron_id, cronId);
        assert.equal(cron.thread_id, null);
        assert.equal(cron.on_run_completed, 'keep');
        assert.equal(new Date(cron.next_run_date).getUTCSeconds() % 2, 0);
        await c.crons.delete(cronId);
    });

    test('enabled false answers the Cron; bad input is refused with 422, unknown ids with 404', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const cron = await c.crons.createForThread(t.thread_id, 'echo', { schedule: '@hourly', input: {}, enabled: false, endTime: '2099-12-31T00:00:00Z' });
        assert.equal(cron.enabled, false);
        assert.equal(cron.thread_id, t.thread_id);
        assert.equal('run_id' in cron, false, 'nothing fired');
        assert.equal(new Date(cron.next_run_date).getUTCMinutes(), 0);
        assert.equal((await c.runs.list(t.thread_id)).length, 0);
        let body = await rejectsWith(c.crons.create('echo', { schedule: '0 0 * * 9', input: {} }), 422);
        assert.deepEqual(body.detail[0].loc, ['body', 'schedule']);
        body = await rejectsWith(c.crons.create('echo', { schedule: '@daily', input: {}, webhook: 'https://example.com/h' }), 422);
        assert.deepEqual(body.detail[0].loc, ['body', 'webhook']);
        await rejectsWith(c.crons.create('no-such-graph', { schedule: '@daily', input: {} }), 404);
        await rejectsWith(c.crons.createForThread('00000000-0000-4000-8000-000000000000', 'echo', { schedule: '@daily', input: {} }), 404);
        await c.threads.delete(t.thread_id);
        assert.equal(await c.crons.count({ threadId: t.thread_id }), 0);
    });

    test('timezone: update moves the schedule to local time; an unknown zone is a 422', { skip: lacksOption('CronsClient.update.payload.timezone', 'CronsClient.create.payload.timezone') }, async () => {
        const c = sdk.client;
        const cron = await c.crons.create('echo', { schedule: '0 12 * * *', input: {}, enabled: false, timezone: 'UTC' });
        assert.equal(cron.timezone, 'UTC');
        const updated = await c.crons.update(cron.cron_id, { timezone: 'Europe/Berlin' });
        assert.equal(updated.timezone, 'Europe/Berlin');
        const h = new Date(updated.next_run_date).getUTCHours();
        assert.ok(h === 10 || h === 11, `noon in Berlin is 10:00 or 11:00 UTC: ${updated.next_run_date}`);
        const body = await rejectsWith(c.crons.create('echo', { schedule: '@daily', input: {}, timezone: 'Moon/Base' }), 422);
        assert.deepEqual(body.detail[0].loc, ['body', 'timezone']);
        await c.crons.delete(cron.cron_id);
    });

    test('create and createForThread answer one Cron with every field, plus the fired run\'s', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const fired = await c.crons.createForThread(t.thread_id, 'echo', { schedule: '0 0 1 1 *', input: human('x'), metadata: { m: 1 } });
        try {
            for (const k of CRON_FIELDS) assert.ok(k in fired, `createForThread answered no ${k}: ${JSON.stringify(fired)}`);
            assert.equal(fired.thread_id, t.thread_id);
            assert.equal(fired.schedule, '0 0 1 1 *');
            assert.deepEqual(fired.metadata, { m: 1 });
            assert.deepEqual(fired.payload.input, human('x'));
            assert.equal(fired.end_time, null);
            assert.equal(new Date(fired.next_run_date).getUTCMonth(), 0);
            assert.ok(fired.run_id, 'the fired run');
            assert.ok(['pending', 'running', 'success'].includes(fired.status), fired.status);
            assert.deepEqual(fired.kwargs.input, human('x'));
            assert.equal(fired.multitask_strategy, 'reject');
            const run = await c.runs.get(t.thread_id, fired.run_id);
            assert.equal(run.metadata.cron_id, fired.cron_id);
            const [stored] = await c.crons.search({ threadId: t.thread_id });
            for (const k of ['cron_id', 'assistant_id', 'thread_id', 'user_id', 'payload', 'schedule', 'end_time', 'created_at', 'metadata']) {
                assert.deepEqual(fired[k], stored[k], k);
            }
        } finally {
            await c.crons.delete(fired.cron_id);
        }

        const free = await c.crons.create('echo', { schedule: '0 0 1 1 *', input: human('y') });
        try {
            for (const k of CRON_FIELDS) assert.ok(k in free, `create answered no ${k}: ${JSON.stringify(free)}`);
            assert.equal(free.thread_id, null);
            assert.ok(free.run_id);
            assert.ok(runThreadOf(free));
        } finally {
            await c.crons.delete(free.cron_id);
        }

        const off = await c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false });
        for (const k of CRON_FIELDS) assert.ok(k in off, `a disabled cron's answer has no ${k}`);
        assert.ok(!('run_id' in off), 'nothing fired');
        await c.crons.delete(off.cron_id);
    });

    test('the run template reaches the fired run: config, context, interruptBefore, multitaskStrategy', async () => {
        const c = sdk.client;
        const t = await c.threads.create();
        const r = await c.crons.createForThread(t.thread_id, 'echo', {
            schedule: '0 0 1 1 *',
            input: human('tpl'),
            config: { tags: ['cron'], configurable: { k: 'v' } },
            context: { who: 'cron' },
            interruptBefore: ['echo'],
            multitaskStrategy: 'enqueue',
            streamMode: ['values', 'updates'],
        });
        try {
            const [run] = await c.runs.list(t.thread_id);
            assert.equal(run.run_id, r.run_id);
            await c.runs.join(t.thread_id, run.run_id);
            const got = await c.runs.get(t.thread_id, run.run_id);
            assert.deepEqual(got.kwargs.config.tags, ['cron']);
            assert.equal(got.kwargs.config.configurable.k, 'v');
            assert.deepEqual(got.kwargs.context, { who: 'cron' });
            assert.equal(got.multitask_strategy, 'enqueue');
            assert.equal(got.metadata.cron_id, r.cron_id);
            assert.equal(got.status, 'interrupted');
            const state = await c.threads.getState(t.thread_id);
            assert.deepEqual(state.next, ['echo']);
            assert.deepEqual(contents(state.values), ['tpl']);
        } finally {
            await c.crons.delete(r.cron_id);
        }
    });

    test('update: endTime, input, config, context, interrupts, onRunCompleted and enabled', async () => {
        const c = sdk.client;
        const cron = await c.crons.create('echo', { schedule: '0 0 1 1 *', input: human('old'), enabled: false });
        const u = await c.crons.update(cron.cron_id, {
            endTime: '2099-06-01T00:00:00Z',
            input: human('new'),
            config: { tags: ['u'] },
            context: { c: 1 },
            interruptBefore: ['echo'],
            interruptAfter: '*',
            onRunCompleted: 'keep',
        });
        assert.equal(Date.parse(u.end_time), Date.parse('2099-06-01T00:00:00Z'));
        assert.deepEqual(u.payload.input, human('new'));
        assert.deepEqual(u.payload.config, { tags: ['u'] });
        assert.deepEqual(u.payload.context, { c: 1 });
        assert.deepEqual(u.payload.interrupt_before, ['echo']);
        assert.equal(u.payload.interrupt_after, '*');
        assert.equal(u.on_run_completed, 'keep');
        assert.equal(u.enabled, false);
        assert.equal(u.schedule, '0 0 1 1 *');
        const [found] = await c.crons.search({ select: ['cron_id', 'end_time', 'on_run_completed'], assistantId: 'echo', enabled: false });
        assert.equal(found.cron_id, cron.cron_id);
        assert.equal(found.on_run_completed, 'keep');
        const on = await c.crons.update(cron.cron_id, { enabled: true });
        assert.equal(on.enabled, true);
        const body = await rejectsWith(c.crons.update(cron.cron_id, { endTime: '2000-01-01T00:00:00Z' }), 422);
        assert.deepEqual(body.detail[0].loc, ['body', 'end_time']);
        await c.crons.delete(cron.cron_id);
    });

    test('update of 1.15\'s own fields: streamMode, streamSubgraphs, timezone, endTime null', { skip: lacksOption('CronsClient.update.payload.streamMode', 'CronsClient.update.payload.timezone') }, async () => {
        const c = sdk.client;
        const cron = await c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false, endTime: '2099-01-01T00:00:00Z' });
        const u = await c.crons.update(cron.cron_id, { streamMode: ['updates'], streamSubgraphs: true, streamResumable: true, timezone: 'Asia/Tokyo', endTime: null });
        assert.deepEqual(u.payload.stream_mode, ['updates']);
        assert.equal(u.payload.stream_subgraphs, true);
        assert.equal(u.payload.stream_resumable, true);
        assert.equal(u.timezone, 'Asia/Tokyo');
        assert.equal(u.end_time, null);
        assert.equal(new Date(u.next_run_date).getUTCHours(), 15, `midnight in Tokyo is 15:00 UTC: ${u.next_run_date}`);
        await c.crons.delete(cron.cron_id);
    });

    test('search: limit, offset, sortBy, sortOrder and select; count by assistant and thread', async () => {
        const c = sdk.client;
        const a = await c.assistants.create({ graphId: 'echo' });
        const made = [];
        for (const s of ['0 0 1 3 *', '0 0 1 1 *', '0 0 1 2 *']) made.push(await c.crons.create(a.assistant_id, { schedule: s, enabled: false }));
        const ids = made.map((m) => m.cron_id);
        const q = { assistantId: a.assistant_id };
        assert.deepEqual((await c.crons.search({ ...q, sortBy: 'created_at', sortOrder: 'asc' })).map((x) => x.cron_id), ids);
        assert.deepEqual((await c.crons.search({ ...q, sortBy: 'created_at', sortOrder: 'desc' })).map((x) => x.cron_id), [...ids].reverse());
        assert.deepEqual((await c.crons.search({ ...q, sortBy: 'created_at', sortOrder: 'desc', limit: 2, offset: 1 })).map((x) => x.cron_id), [ids[1], ids[0]]);
        assert.deepEqual((await c.crons.search({ ...q, sortBy: 'cron_id', sortOrder: 'asc' })).map((x) => x.cron_id), [...ids].sort());
        const byNext = await c.crons.search({ ...q, sortBy: 'next_run_date', sortOrder: 'asc' });
        const dates = byNext.map((x) => Date.parse(x.next_run_date));
        assert.deepEqual(dates, [...dates].sort((x, y) => x - y));
        assert.deepEqual(await c.crons.search({ ...q, limit: 1, select: ['cron_id', 'schedule'], sortBy: 'created_at', sortOrder: 'asc' }), [{ cron_id: ids[0], schedule: '0 0 1 3 *' }]);
        assert.equal(await c.crons.count(q), 3);
        assert.equal(await c.crons.count({ ...q, threadId: (await c.threads.create()).thread_id }), 0);
        const bad = await rejectsWith(c.crons.search({ sortBy: 'nope' }), 422);
        assert.deepEqual(bad.detail[0].loc, ['body', 'sort_by']);
        for (const id of ids) await c.crons.delete(id);
        assert.equal(await c.crons.count(q), 0);
    });

    test('search and count by metadata', { skip: lacksOption('CronsClient.search.query.metadata', 'CronsClient.count.query.metadata') }, async () => {
        const c = sdk.client;
        const tag = `m-${Date.now()}`;
        const one = await c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false, metadata: { tag, n: 1 } });
        const two = await c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false, metadata: { tag, n: 2 } });
        assert.deepEqual((await c.crons.search({ metadata: { tag }, sortBy: 'created_at', sortOrder: 'asc' })).map((x) => x.cron_id), [one.cron_id, two.cron_id]);
        assert.deepEqual((await c.crons.search({ metadata: { tag, n: 2 } })).map((x) => x.cron_id), [two.cron_id]);
        assert.equal(await c.crons.count({ metadata: { tag } }), 2);
        assert.equal(await c.crons.count({ metadata: { tag, n: 3 } }), 0);
        await c.crons.delete(one.cron_id);
        await c.crons.delete(two.cron_id);
    });
});
