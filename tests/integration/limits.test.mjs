// limits.*: max_header_bytes (431), max_body_bytes (413, also with Expect: 100-continue),
// max_conns_per_shard (503 + Retry-After), idle_timeout_ms, header_timeout_ms (408).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { buildRequest, checkJson, rawConnect, request, startAgentd } from './lib/harness.mjs';

const H = 'Host: 127.0.0.1\r\n';

/** Reads one response, expects `status`, then expects the server to close the connection. */
async function expectStatusThenClose(c, status) {
    const res = await c.readResponse();
    assert.equal(res.status, status, `expected ${status}, got ${res.status} ${res.text}`);
    await c.closed();
    return res;
}

describe('header and body size limits (max_header_bytes 1024, max_body_bytes 1024)', { timeout: 60000 }, () => {
    let srv;
    const conns = [];
    const open = async () => {
        const c = await rawConnect(srv.port);
        conns.push(c);
        return c;
    };
    before(async () => {
        srv = await startAgentd({
            args: ['--shards', '1'],
            config: { limits: { max_header_bytes: 1024, max_body_bytes: 1024 } },
            waitReady: true, // the last test checks GET /ready, which needs the database
        });
    });
    after(async () => {
        for (const c of conns) c.destroy();
        await srv.dispose();
    });

    it('a request head under the limit is served', async () => {
        const res = await request(srv.port, { path: '/ok', headers: { 'X-Pad': 'p'.repeat(600) } });
        checkJson(assert, res, 200, { ok: true });
    });

    it('one oversized header → 431, then close', async () => {
        const c = await open();
        await c.write(buildRequest({ path: '/ok', headers: { 'X-Big': 'b'.repeat(2000) } }));
        await expectStatusThenClose(c, 431);
    });

    it('many small headers adding up past the limit → 431, then close', async () => {
        const c = await open();
        const headers = [];
        for (let i = 0; i < 60; i++) headers.push([`X-H${i}`, 'v'.repeat(20)]);
        await c.write(buildRequest({ path: '/ok', headers }));
        await expectStatusThenClose(c, 431);
    });

    it('an oversized request line (long URL) → 431, then close', async () => {
        // Reading: the request line is part of the request head that max_header_bytes bounds.
        const c = await open();
        await c.write(buildRequest({ path: `/ok?q=${'u'.repeat(2000)}` }));
        await expectStatusThenClose(c, 431);
    });

    it('a head that grows past the limit over several writes without ever ending → 431', async () => {
        const c = await open();
        await c.write(`GET /ok HTTP/1.1\r\n${H}X-A: ${'a'.repeat(500)}\r\n`);
        await c.write(`X-B: ${'b'.repeat(500)}\r\n`);
        await c.write(`X-C: ${'c'.repeat(500)}\r\n`);
        await expectStatusThenClose(c, 431);
    });

    it('the server is still healthy after 431s', async () => {
        checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
    });

    it('a Content-Length body of exactly max_body_bytes is accepted and consumed', async () => {
        const c = await open();
        await c.write(Buffer.concat([buildRequest({ method: 'POST', path: '/ok', body: 'z'.repeat(1024) }), buildRequest({ path: '/ok' })]));
        checkJson(assert, await c.readResponse(), 405);
        checkJson(assert, await c.readResponse(), 200, { ok: true });
    });

    it('Content-Length over max_body_bytes → 413, then close', async () => {
        const c = await open();
        // Only the head is sent: the declared length alone must trigger the 413.
        await c.write(`POST /ok HTTP/1.1\r\n${H}Content-Length: 1025\r\n\r\n`);
        await expectStatusThenClose(c, 413);
    });

    it('a chunked body of exactly max_body_bytes is accepted and consumed', async () => {
        const c = await open();
        const chunk = `200\r\n${'y'.repeat(512)}\r\n`;
        await c.write(Buffer.concat([Buffer.from(`POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunk}${chunk}0\r\n\r\n`), buildRequest({ path: '/live' })]));
        checkJson(assert, await c.readResponse(), 405);
        checkJson(assert, await c.readResponse(), 200, { status: 'alive' });
    });

    it('a chunked body growing past max_body_bytes → 413, then close', async () => {
        const c = await open();
        const chunk = `258\r\n${'y'.repeat(600)}\r\n`;
        await c.write(`POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunk}`);
        await c.write(chunk); // 1200 bytes so far, no last chunk
        await expectStatusThenClose(c, 413);
    });

    it('Expect: 100-continue with Content-Length over the limit → 413 without 100 Continue, then close', async () => {
        const c = await open();
        await c.write(`POST /ok HTTP/1.1\r\n${H}Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n`);
        const res = await c.readResponse();
        assert.notEqual(res.status, 100, 'must not invite a body that is over the limit');
        assert.equal(res.status, 413);
        await c.closed();
        assert.equal(c.pending().length, 0);
    });

    it('Expect: 100-continue with Content-Length within the limit → 100 Continue', async () => {
        const c = await open();
        await c.write(`POST /ok HTTP/1.1\r\n${H}Content-Length: 1024\r\nExpect: 100-continue\r\n\r\n`);
        assert.equal((await c.readResponse()).status, 100);
        await c.write(Buffer.concat([Buffer.alloc(1024, 'q'), buildRequest({ path: '/ok' })]));
        checkJson(assert, await c.readResponse(), 405);
        checkJson(assert, await c.readResponse(), 200);
    });

    it('the server is still healthy after 413s', async () => {
        checkJson(assert, await request(srv.port, { path: '/ready' }), 200, { status: 'ready' });
    });
});

describe('default limits (max_header_bytes 16384, max_body_bytes 10485760)', { timeout: 60000 }, () => {
    let srv;
    before(async () => {
        srv = await startAgentd({ args: ['--shards', '1'] });
    });
    after(async () => {
        await srv.dispose();
    });

    it('a 15000-byte head is served, a 17000-byte head gets 431', async () => {
        checkJson(assert, await request(srv.port, { path: '/ok', headers: { 'X-Pad': 'p'.repeat(15000) } }), 200);
        const c = await rawConnect(srv.port);
        try {
            await c.write(buildRequest({ path: '/ok', headers: { 'X-Pad': 'p'.repeat(17000) } }));
            await expectStatusThenClose(c, 431);
        } finally {
            c.destroy();
        }
    });

    it('Content-Length 10485760 is invited with 100 Continue; 10485761 gets 413', async () => {
        const a = await rawConnect(srv.port);
        const b = await rawConnect(srv.port);
        try {
            await a.write(`POST /ok HTTP/1.1\r\n${H}Content-Length: 10485760\r\nExpect: 100-continue\r\n\r\n`);
            assert.equal((await a.readResponse()).status, 100);
            await b.write(`POST /ok HTTP/1.1\r\n${H}Content-Length: 10485761\r\nExpect: 100-continue\r\n\r\n`);
            await expectStatusThenClose(b, 413);
        } finally {
            a.destroy();
            b.destroy();
        }
    });
});

describe('max_conns_per_shard (3, --shards 1)', { timeout: 60000 }, () => {
    it('an extra connection gets 503 with Retry-After and is closed; the others keep working', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '1'], config: { limits: { max_conns_per_shard: 3 } } });
        const held = [];
        t.after(() => held.forEach((c) => c.destroy()));
        for (let i = 0; i < 3; i++) {
            const c = await rawConnect(srv.port);
            held.push(c);
            await c.write(buildRequest({ path: '/ok' }));
            assert.equal((await c.readResponse()).status, 200, `connection ${i}`);
        }

        const extra = await rawConnect(srv.port);
        held.push(extra);
        await extra.write(buildRequest({ path: '/ok' }));
        const res = await extra.readResponse();
        assert.equal(res.status, 503, `4th connection: ${res.status} ${res.text}`);
        assert.ok((res.headers['retry-after'] ?? '').length > 0, `Retry-After header: ${JSON.stringify(res.headers)}`);
        await extra.closed();

        for (const [i, c] of held.slice(0, 3).entries()) {
            await c.write(buildRequest({ path: '/live' }));
            assert.equal((await c.readResponse()).status, 200, `held connection ${i} still works`);
        }

        // Freeing a slot lets a new connection in. The server releases the slot when it sees the
        // close, so retry (bounded) until it does.
        held[0].end();
        await held[0].closed();
        const deadline = Date.now() + 10000;
        let last;
        for (;;) {
            const c = await rawConnect(srv.port);
            try {
                await c.write(buildRequest({ path: '/ok' }));
                last = await c.readResponse();
            } finally {
                c.destroy();
            }
            if (last.status === 200) break;
            assert.equal(last.status, 503);
            assert.ok(Date.now() < deadline, 'a slot was freed by closing a connection');
        }
    });
});

describe('idle_timeout_ms (300)', { timeout: 30000 }, () => {
    it('an idle keep-alive connection is closed by the server', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '1'], config: { limits: { idle_timeout_ms: 300 } } });
        const c = await rawConnect(srv.port);
        t.after(() => c.destroy());
        await c.write(buildRequest({ path: '/ok' }));
        assert.equal((await c.readResponse()).status, 200);
        const t0 = Date.now();
        await c.closed({ timeoutMs: 10000 });
        const elapsed = Date.now() - t0;
        assert.ok(elapsed >= 200, `closed after ${elapsed} ms: too early for a 300 ms idle timeout`);
    });
});

describe('header_timeout_ms (300)', { timeout: 30000 }, () => {
    let srv;
    before(async () => {
        srv = await startAgentd({ args: ['--shards', '1'], config: { limits: { header_timeout_ms: 300 } } });
    });
    after(async () => {
        await srv.dispose();
    });

    it('a partial request head gets 408, then close', async () => {
        const c = await rawConnect(srv.port);
        try {
            await c.write(`GET /ok HTTP/1.1\r\n${H}X-Partial: yes\r\n`);
            const t0 = Date.now();
            const res = await c.readResponse({ timeoutMs: 10000 });
            const elapsed = Date.now() - t0;
            assert.equal(res.status, 408);
            assert.ok(elapsed >= 200, `408 after ${elapsed} ms: too early for a 300 ms header timeout`);
            await c.closed();
        } finally {
            c.destroy();
        }
    });

    it('a head trickled one byte every 50 ms still times out (deadline covers the whole head)', async () => {
        // Reading: header_timeout_ms bounds the time to receive the complete head, not the gap between reads.
        const c = await rawConnect(srv.port);
        await c.write(`GET /ok HTTP/1.1\r\n${H}X-Slow: `);
        const trickle = setInterval(() => {
            if (!c.gotEnd && !c.isClosed) c.write('a').catch(() => {});
        }, 50);
        try {
            const res = await c.readResponse({ timeoutMs: 10000 });
            assert.equal(res.status, 408);
            await c.closed();
        } finally {
            clearInterval(trickle);
            c.destroy();
        }
    });

    it('the server is still healthy after 408s', async () => {
        checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
    });
});
