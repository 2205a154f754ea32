// GET /threads/{thread_id}/stream: every run of the thread in turn (each in its own stream modes),
// ids "<run id>:<n>", Last-Event-ID resuming inside the active run, the query it accepts, and the end
// of the stream when the thread is deleted. Against the real binary on 2 shards and a fresh database.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startAgentd } from './lib/harness.mjs';
import { freshDatabase } from './lib/pg.mjs';
import { openSse } from './lib/sse.mjs';
import { call, expect422 } from './lib/threads-util.mjs';

const human = (content) => ({ messages: [{ role: 'user', content }] });

/** GET the thread stream (frames parsed as they come; lib/sse.mjs openSse). */
async function openThreadStream(base, tid, headers = {}, query = '') {
    const s = await openSse(`${base}/threads/${tid}/stream${query}`, undefined, { headers });
    assert.equal(s.status, 200, s.text);
    assert.match(s.headers.get('content-type'), /^text\/event-stream/);
    return s;
}

describe('GET /threads/{thread_id}/stream', { timeout: 120000 }, () => {
    let db;
    let srv;
    let base;
    const api = (method, path, body) => call(srv.port, method, path, body);
    const thread = async () => (await api('POST', '/threads', {})).json.thread_id;

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        base = `http://127.0.0.1:${srv.port}`;
    });
    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('opened on an idle thread, it follows each run that starts later, in order, with run-scoped ids', async () => {
        const tid = await thread();
        const s = await openThreadStream(base, tid);
        const r1 = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human('one') });
        assert.equal(r1.status, 200);
        const r2 = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human('two'), stream_mode: ['updates'] });
        assert.equal(r2.status, 200);
        const ends = () => s.frames.filter((f) => f.event === 'end').length;
        await s.waitFor(() => ends() === 2, 'two ends');
        s.close();
        const metas = s.frames.filter((f) => f.event === 'metadata').map((f) => f.data.run_id);
        assert.equal(metas.length, 2);
        // Each run in its own modes: values for the first, updates for the second.
        const byRun = (rid) => s.frames.filter((f) => f.id.startsWith(`${rid}:`)).map((f) => f.event);
        assert.deepEqual(byRun(metas[0]), ['metadata', 'values', 'values', 'end']);
        assert.deepEqual(byRun(metas[1]), ['metadata', 'updates', 'end']);
        for (const f of s.frames) assert.match(f.id, /^[0-9a-f-]{36}:\d+$/);
        assert.equal(s.frames.at(-1).event, 'end');
    });

    it('Last-Event-ID inside the active run resumes after that event, then goes on to the next run', async () => {
        const tid = await thread();
        const run = await api('POST', `/threads/${tid}/runs`, {
            assistant_id: 'stress', input: human('go'), stream_mode: ['custom'], config: { configurable: { tokens: 30, delay_ms: 10 } },
        });
        assert.equal(run.status, 200);
        const s1 = await openThreadStream(base, tid);
        const seen = await s1.waitFor((f) => f.event === 'custom' && f.data.index === 4, 'token 4');
        s1.close();
        await s1.ended;
        const last = s1.frames.at(-1).id;
        assert.ok(s1.frames.indexOf(seen) >= 0);
        const s2 = await openThreadStream(base, tid, { 'last-event-id': last });
        await s2.waitFor((f) => f.event === 'end', 'the end of the stress run');
        const got = [...s1.frames, ...s2.frames].filter((f) => f.event === 'custom').map((f) => f.data.index);
        assert.deepEqual(got, [...Array(30).keys()], 'every token once');
        assert.ok(!s2.frames.some((f) => f.event === 'metadata'), 'the run is not replayed from its start');
        // The same stream follows the next run.
        const next = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human('next') });
        assert.equal(next.status, 200);
        await s2.waitFor((f) => f.event === 'end' && !f.id.startsWith(run.json.run_id), 'the next run');
        s2.close();
    });

    it('stream_mode lifecycle sends each run\'s start and end; state_update its values; both: their union', async () => {
        const tid = await thread();
        const life = await openThreadStream(base, tid, {}, '?stream_mode=lifecycle');
        const state = await openThreadStream(base, tid, {}, '?stream_mode=state_update');
        const both = await openThreadStream(base, tid, {}, `?stream_mode=${encodeURIComponent('["lifecycle","state_update"]')}`);
        const r1 = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human('one'), stream_mode: ['values', 'updates', 'debug'] });
        assert.equal(r1.status, 200);
        const r2 = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human('two'), stream_mode: ['updates', 'values'] });
        assert.equal(r2.status, 200);
        const ends = (s) => () => s.frames.filter((f) => f.event === 'end').length === 2;
        await life.waitFor(ends(life), 'two ends');
        await both.waitFor(ends(both), 'two ends');
        await state.waitFor(() => state.frames.filter((f) => f.event === 'values').length === 4, 'four values');
        for (const s of [life, state, both]) s.close();
        assert.deepEqual(life.frames.map((f) => f.event), ['metadata', 'end', 'metadata', 'end']);
        assert.deepEqual(state.frames.map((f) => f.event), ['values', 'values', 'values', 'values']);
        assert.deepEqual(state.frames.at(-1).data.messages.map((m) => m.content), ['one', 'one', 'two', 'two']);
        assert.deepEqual(both.frames.map((f) => f.event), ['metadata', 'values', 'values', 'end', 'metadata', 'values', 'values', 'end']);
        for (const f of both.frames) assert.match(f.id, /^[0-9a-f-]{36}:\d+$/);
    });

    it('refuses stream modes it does not know; ignores query parameters it does not know', async () => {
        const tid = await thread();
        expect422(assert, await api('GET', `/threads/${tid}/stream?stream_mode=values`), ['query', 'stream_mode'], 'literal_error');
        const ok = await fetch(`${base}/threads/${tid}/stream?stream_mode=run_modes`);
        assert.equal(ok.status, 200);
        await ok.body.cancel();
        // A query parameter the route does not know is ignored.
        const unknown = await fetch(`${base}/threads/${tid}/stream?stream_mode=run_modes&foo=1`);
        assert.equal(unknown.status, 200);
        await unknown.body.cancel();
    });

    it('ends when the thread is deleted', async () => {
        const tid = await thread();
        const s = await openThreadStream(base, tid);
        const del = await api('DELETE', `/threads/${tid}`);
        assert.equal(del.status, 204);
        await s.ended;
        assert.equal(s.frames.length, 0);
    });
});
