// The real LangGraph JS SDK (each SDK line) against agentd: client.crons (create, createForThread, update,
// delete, search, count), with seconds-level schedules firing real runs seen through client.runs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lacksOption, rejectsWith, useSdk } from './lib.mjs';

const human = (content) => ({ messages: [{ role: 'user', content }] });

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
        assert.equal(first.thread_id, t.thread_id);
        assert.equal(first.status, 'pending');
        const cronId = first.metadata.cron_id;
        assert.ok(cronId);
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

    test('create (stateless) answers the first Run on a new thread, kept with onRunCompleted keep', async () => {
        const c = sdk.client;
        const run = await c.crons.create('echo', { schedule: '*/2 * * * * *', input: human('hi'), onRunCompleted: 'keep' });
        assert.ok(run.run_id && run.thread_id);
        const cronId = run.metadata.cron_id;
        await waitFor(async () => (await c.runs.get(run.thread_id, run.run_id)).status === 'success', { what: 'the first run to succeed' });
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
});
