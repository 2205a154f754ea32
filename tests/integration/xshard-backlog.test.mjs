// Issue 23, defect 2: limits.stream_backlog_bytes holds wherever the streaming client sits. Many
// subscribers to one thread's stream stop reading while a large run streams; about half of them are
// on the shard that does not own the thread. The owner must hold no more than the backlog for each
// (it used to copy every piece into an unbounded list while the way to the other shard was full:
// gigabytes for 200 clients) and every one of them is cut off (closed without the stream's end, so
// it resumes with Last-Event-ID).
// Labelled tsan as well (xshard-*): the tsan preset runs it against the ThreadSanitizer binary.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { request, startAgentd } from './lib/harness.mjs';
import { allClosed, openStream, procMemory } from './lib/load.mjs';
import { call, uuidOwnedBy } from './lib/threads-util.mjs';

const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const BACKLOG = 64 * 1024;
const SUBSCRIBERS = 160;
const MiB = 1024 * 1024;
// A client that does not read is cut off only once its bytes no longer fit the kernel's buffers (the
// server's send buffer grows up to tcp_wmem's maximum, the client's receive buffer stays at tcp_rmem's
// default while it reads nothing) plus the backlog. With 4,000 tokens (3.4 MB per client) some clients'
// whole stream could sit in the kernel, uncut. The run is sized for twice what the kernel may hold, at
// about 850 bytes per token on the thread stream.
function kernelBuffers() {
    const field = (path, i, dflt) => {
        try {
            return Number(readFileSync(path, 'latin1').trim().split(/\s+/)[i]) || dflt;
        } catch {
            return dflt;
        }
    };
    return field('/proc/sys/net/ipv4/tcp_wmem', 2, 4 * MiB) + field('/proc/sys/net/ipv4/tcp_rmem', 1, 128 * 1024);
}
const TOKENS = Math.min(60000, Math.max(4000, Math.ceil((2 * (kernelBuffers() + BACKLOG)) / 800)));

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

    // One piece larger than the backlog (a /wait output, a values event) went to a client that reads:
    // it used to be cut off on the spot, since its queue held more than the backlog right after the write.
    it('a client that reads gets an answer larger than the backlog, on either shard', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '2'], config: { limits: { stream_backlog_bytes: BACKLOG } }, waitReady: true });
        const big = 30000; // tokens: a final output of about 170 KiB
        for (const owner of [0, 1]) {
            const thread = uuidOwnedBy(owner, 2);
            assert.equal((await call(srv.port, 'POST', '/threads', { thread_id: thread })).status, 200);
            const body = (mode) =>
                JSON.stringify({
                    assistant_id: STRESS,
                    input: { messages: [{ role: 'user', content: 'x' }] },
                    stream_mode: mode,
                    config: { configurable: { tokens: big } },
                });
            const headers = { 'Content-Type': 'application/json' };
            const wait = await request(srv.port, { method: 'POST', path: `/threads/${thread}/runs/wait`, headers, body: body(['values']), timeoutMs: 120000 });
            assert.equal(wait.status, 200, `wait on a thread of shard ${owner}: ${wait.status} ${wait.text.slice(0, 200)}`);
            assert.ok(wait.body.length > 2 * BACKLOG, `the wait output is ${wait.body.length} bytes, meant to exceed twice the backlog`);
            const out = JSON.parse(wait.text.trim());
            assert.ok(Array.isArray(out.messages) && out.messages.length >= 2, `wait output: ${wait.text.slice(0, 200)}`);
            const stream = await request(srv.port, { method: 'POST', path: `/threads/${thread}/runs/stream`, headers, body: body(['values']), timeoutMs: 120000 });
            assert.equal(stream.status, 200, `stream on a thread of shard ${owner}: ${stream.status}`);
            const events = stream.text.match(/^event: \w+/gm) ?? [];
            assert.equal(events.at(-1), 'event: end', `the stream ends with its end event, not cut off: ${JSON.stringify(events.slice(-3))}`);
        }
        const cut = srv.stderr().match(/streaming client (on shard \d+ )?cut off/g) ?? [];
        assert.equal(cut.length, 0, `clients that read were cut off:\n${srv.stderr().slice(-2000)}`);
    });
});
