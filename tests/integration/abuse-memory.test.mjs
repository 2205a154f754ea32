// Issue 23, item 4: memory held for idle threads and ended runs is bounded in bytes. Long stress
// streams and many short echo runs with v2 events go through a 1-shard agentd; once everything is
// idle, the bytes it reports holding (agentd_event_log_bytes: the v2 thread logs;
// agentd_ended_run_bytes: ended runs kept for join/attach) stay within events.memory_bytes_per_shard
// and runs.recent_bytes, an idle thread's log holds no buffer, both reach 0 once quiet for
// events.idle_keep_ms / runs.recent_ms, and what replays need still comes from Postgres (v2 `since`,
// v1 join and attach of a run no longer in memory, the seq of a thread whose entry left memory).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { getMetrics, metricSum, pool, startAgentd, waitForMetrics, writeTempFile } from './lib/harness.mjs';
import { freshDatabase } from './lib/pg.mjs';
import { openSse } from './lib/sse.mjs';
import { call } from './lib/threads-util.mjs';

const BUDGET = 256 * 1024; // events.memory_bytes_per_shard and runs.recent_bytes
const IDLE_ENTRY = 512;    // an idle thread's log keeps its seq, not its buffers
const STRESS = 3;
const TOKENS = 3000;
const ECHO = 60;
const ECHO_RUNS = 2;
const KEEP_MS = 2000; // events.idle_keep_ms and runs.recent_ms

const human = (content) => ({ messages: [{ role: 'user', content }] });
const isRootEnd = (f) => f.event === 'lifecycle' && f.data.params.namespace.length === 0 &&
    ['completed', 'failed', 'interrupted'].includes(f.data.params.data.event);

describe('memory for idle threads and ended runs is bounded in bytes (1 shard)', { timeout: 180000 }, () => {
    let db;
    let srv;
    const api = (method, path, body) => call(srv.port, method, path, body);
    const newThread = async () => {
        const res = await api('POST', '/threads', {});
        assert.equal(res.status, 200, res.text);
        return res.json.thread_id;
    };
    const v2 = (tid, body) => openSse(`${srv.url}/threads/${tid}/stream/events`, body);
    const figures = (samples) => ({
        event_log_bytes: metricSum(samples, 'agentd_event_log_bytes'),
        ended_run_bytes: metricSum(samples, 'agentd_ended_run_bytes'),
        runs_active: metricSum(samples, 'agentd_runs_active'),
        subscribers: metricSum(samples, 'agentd_stream_subscribers'),
    });
    const stress = []; // { tid, runId, frames }
    const echo = [];

    before(async () => {
        db = await freshDatabase();
        const config = writeTempFile('agentd-memory.json', {
            events: { memory_bytes_per_shard: BUDGET, idle_keep_ms: KEEP_MS },
            runs: { recent_bytes: BUDGET, recent_ms: KEEP_MS },
        });
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '1', '--config', config] });
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it(`load: ${STRESS} stress streams of ${TOKENS} tokens watched over v2, ${ECHO} threads × ${ECHO_RUNS} echo runs`, async () => {
        for (let i = 0; i < STRESS; i++) {
            const tid = await newThread();
            const live = await v2(tid, { channels: ['lifecycle', 'custom'] });
            assert.equal(live.status, 200, live.text);
            const s = await openSse(`${srv.url}/threads/${tid}/runs/stream`, {
                assistant_id: 'stress', input: human('go'), stream_mode: ['custom'],
                config: { configurable: { tokens: TOKENS } },
            }, { timeoutMs: 60000 });
            assert.equal(s.status, 200, s.text);
            const runId = /\/runs\/([0-9a-f-]{36})/.exec(s.headers.get('content-location'))?.[1];
            assert.ok(runId, `content-location: ${s.headers.get('content-location')}`);
            await s.ended;
            const custom = s.frames.filter((f) => f.event === 'custom').length;
            assert.equal(custom, TOKENS, `v1 custom frames of run ${runId}`);
            await live.waitFor(isRootEnd, 'the v2 root end', 60000);
            live.close();
            await live.ended;
            stress.push({ tid, runId });
        }
        await pool(ECHO, 8, async (i) => {
            const tid = await newThread();
            for (let k = 0; k < ECHO_RUNS; k++) {
                const res = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human(`echo ${i}.${k}`) });
                assert.equal(res.status, 200, res.text);
            }
            echo.push(tid);
        });
    });

    it('idle: the v2 logs and the ended runs hold no more than their byte budgets', async (t) => {
        const threads = STRESS + ECHO;
        const idleMax = Math.min(BUDGET, threads * IDLE_ENTRY);
        let last = null;
        try {
            await waitForMetrics(srv.port, (samples) => {
                last = figures(samples);
                return last.runs_active === 0 && last.subscribers === 0 && last.event_log_bytes <= idleMax &&
                    last.ended_run_bytes <= BUDGET;
            }, { timeoutMs: 15000, what: 'idle memory within its bounds' });
        } catch (e) {
            assert.fail(`idle, ${threads} threads: expected agentd_event_log_bytes <= ${idleMax} (${IDLE_ENTRY} per idle ` +
                `thread, at most ${BUDGET}) and agentd_ended_run_bytes <= ${BUDGET}; saw ${JSON.stringify(last)} (${e.message.split('\n')[0]})`);
        }
        t.diagnostic(`idle figures: ${JSON.stringify(last)}`);
    });

    it('a v2 replay from seq 0 still has every event (from Postgres)', async () => {
        const { tid } = stress[0];
        const full = await v2(tid, { channels: ['lifecycle', 'custom'], since: 0 });
        assert.equal(full.status, 200, full.text);
        await full.waitFor(isRootEnd, 'the end of the replay', 60000);
        full.close();
        const idx = full.frames.filter((f) => f.event === 'custom').map((f) => f.data.params.data.payload.index);
        assert.equal(idx.length, TOKENS, `custom events replayed: ${idx.length}`);
        assert.deepEqual(idx, [...Array(TOKENS).keys()]);
    });

    it('join and attach of an ended run no longer in memory answer from the stored run', async () => {
        const { tid, runId } = stress[0];
        const join = await api('GET', `/threads/${tid}/runs/${runId}/join`);
        assert.equal(join.status, 200, join.text);
        assert.ok(join.json && typeof join.json === 'object' && !('__error__' in join.json), `join: ${join.text}`);
        const att = await openSse(`${srv.url}/threads/${tid}/runs/${runId}/stream`, undefined, { headers: { 'last-event-id': '5' } });
        assert.equal(att.status, 200, att.text);
        await att.ended;
        assert.deepEqual(att.frames.map((f) => [f.event, f.data]), [['end', { status: 'success' }]]);
    });

    it(`quiet for ${KEEP_MS} ms: nothing is held for idle threads and ended runs any more`, async () => {
        let last = null;
        try {
            await waitForMetrics(srv.port, (samples) => {
                last = figures(samples);
                return last.event_log_bytes === 0 && last.ended_run_bytes === 0;
            }, { timeoutMs: KEEP_MS + 15000, what: 'the idle entries and ended runs to expire' });
        } catch (e) {
            assert.fail(`expected agentd_event_log_bytes and agentd_ended_run_bytes to reach 0 after ${KEEP_MS} ms; ` +
                `saw ${JSON.stringify(last)} (${e.message.split('\n')[0]})`);
        }
    });

    it('a thread whose log entry left memory goes on with growing seqs', async () => {
        const tid = echo[0];
        const before = await v2(tid, { channels: ['lifecycle'], since: 0 });
        await before.waitFor((f) => isRootEnd(f) && before.frames.filter(isRootEnd).length === ECHO_RUNS, 'the earlier runs');
        before.close();
        const lastSeq = before.frames.at(-1).data.seq;
        const res = await api('POST', `/threads/${tid}/runs/wait`, { assistant_id: 'echo', input: human('again') });
        assert.equal(res.status, 200, res.text);
        const all = await v2(tid, { channels: ['lifecycle'], since: 0 });
        await all.waitFor(() => all.frames.filter(isRootEnd).length === ECHO_RUNS + 1, 'the new run in the replay');
        all.close();
        const seqs = all.frames.map((f) => f.data.seq);
        assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `seqs grow: ${seqs}`);
        assert.ok(seqs.at(-1) > lastSeq, `the new run's seqs come after ${lastSeq}: ${seqs}`);
        const { samples } = await getMetrics(srv.port);
        assert.equal(metricSum(samples, 'agentd_runs_active'), 0);
    });
});
