// Issue 23, defect 2: limits.stream_backlog_bytes holds wherever the streaming client sits. Many
// subscribers to one thread's stream stop reading while a large run streams; about half of them are
// on the shard that does not own the thread. The owner must hold no more than the backlog for each
// (it used to copy every piece into an unbounded list while the way to the other shard was full:
// gigabytes for 200 clients) and every one of them is cut off (closed without the stream's end, so
// it resumes with Last-Event-ID).
// Labelled tsan as well (xshard-*): the tsan preset runs it against the ThreadSanitizer binary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { request, startAgentd } from './lib/harness.mjs';
import { allClosed, openStream, procMemory } from './lib/load.mjs';
import { call, uuidOwnedBy } from './lib/threads-util.mjs';

const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const BACKLOG = 64 * 1024;
const SUBSCRIBERS = 160;
const TOKENS = 4000;
const MiB = 1024 * 1024;

function stressRun(port, thread) {
    return request(port, {
        method: 'POST',
        path: `/threads/${thread}/runs/wait`,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
            assistant_id: STRESS,
            input: { messages: [{ role: 'user', content: 'x' }] },
            stream_mode: ['values', 'updates', 'messages-tuple', 'custom'],
            config: { configurable: { tokens: TOKENS } },
        }),
        timeoutMs: 120000,
    });
}

describe('streaming clients that stop reading, on either shard', { timeout: 240000 }, () => {
    it('cost the owner shard no more than the backlog each, and are cut off', async (t) => {
        const srv = await startAgentd({
            t,
            args: ['--shards', '2'],
            config: { limits: { stream_backlog_bytes: BACKLOG } },
            // ASan keeps freed memory in a quarantine (256 MiB by default) before reusing it: that
            // would show in RSS whatever agentd holds. A small one lets RSS measure what is held.
            env: { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=16` },
            waitReady: true,
        });
        const thread = uuidOwnedBy(0, 2);
        const warm = uuidOwnedBy(0, 2);
        for (const id of [thread, warm]) assert.equal((await call(srv.port, 'POST', '/threads', { thread_id: id })).status, 200);
        // The same run twice with nobody listening: what the run itself costs is in the peak before
        // the subscribers come.
        for (let i = 0; i < 2; i++) {
            const w = await stressRun(srv.port, warm);
            assert.equal(w.status, 200, `warm-up run: ${w.status} ${w.text.slice(0, 300)}`);
        }
        const subs = [];
        for (let i = 0; i < SUBSCRIBERS; i++) subs.push(await openStream(srv.port, { path: `/threads/${thread}/stream`, read: false }));
        const before = procMemory(srv.proc.pid);

        const run = await stressRun(srv.port, thread);
        assert.equal(run.status, 200, `the run: ${run.status} ${run.text.slice(0, 300)}`);
        const peak = procMemory(srv.proc.pid).hwm;
        // Each client may hold the backlog on the owner and again in its connection's output queue;
        // the rest is slack for the allocator and the sanitizers.
        const bound = 2 * SUBSCRIBERS * BACKLOG + 96 * MiB;
        t.diagnostic(`peak RSS ${(before.hwm / MiB).toFixed(1)} → ${(peak / MiB).toFixed(1)} MiB (allowed growth ${(bound / MiB).toFixed(1)} MiB)`);
        assert.ok(
            peak - before.hwm <= bound,
            `peak RSS grew by ${((peak - before.hwm) / MiB).toFixed(1)} MiB while ${SUBSCRIBERS} clients did not read ` +
                `(${(before.hwm / MiB).toFixed(1)} → ${(peak / MiB).toFixed(1)} MiB); allowed ${(bound / MiB).toFixed(1)} MiB`,
        );

        for (const s of subs) s.resume();
        const ends = await allClosed(subs, 60000, 'clients past their backlog are cut off');
        const ended = ends.filter((e) => e.tail.toString('latin1').endsWith('0\r\n\r\n')).length;
        assert.equal(ended, 0, `${ended} of ${SUBSCRIBERS} streams ended cleanly instead of being cut off`);
        const cut = srv.stderr().match(/streaming client (on shard \d+ )?cut off/g) ?? [];
        assert.ok(cut.length >= SUBSCRIBERS, `${cut.length} cut-off lines in the log for ${SUBSCRIBERS} clients`);
    });
});
