// HTTP/1.1 connection handling: keep-alive, close, HTTP/1.0, pipelining, partial writes, request
// bodies (Content-Length and chunked), Expect: 100-continue, case-insensitive header names.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { buildRequest, checkJson, rawConnect, startAgentd } from './lib/harness.mjs';

const H = 'Host: 127.0.0.1\r\n';

describe('HTTP/1.1 parsing and connection handling', { timeout: 60000 }, () => {
    let srv;
    const conns = [];
    const open = async () => {
        const c = await rawConnect(srv.port);
        conns.push(c);
        return c;
    };
    before(async () => {
        // Some requests below are GET /ready, which is 200 only with a migrated, connected database.
        srv = await startAgentd({ args: ['--shards', '1'], waitReady: true });
    });
    after(async () => {
        for (const c of conns) c.destroy();
        await srv.dispose();
    });

    it('keep-alive is the default: 50 requests on one socket', async () => {
        const c = await open();
        for (let i = 0; i < 50; i++) {
            const p = i % 2 ? '/live' : '/ok';
            await c.write(buildRequest({ path: p }));
            const res = await c.readResponse();
            assert.equal(res.status, 200, `request ${i}`);
            assert.deepEqual(res.json(), i % 2 ? { status: 'alive' } : { ok: true });
        }
        assert.equal(c.gotEnd || c.isClosed, false, 'connection still open');
        assert.equal(c.pending().length, 0, 'no stray bytes');
    });

    it('Connection: close → one response, then the server closes', async () => {
        const c = await open();
        await c.write(buildRequest({ path: '/ok', headers: { Connection: 'close' } }));
        checkJson(assert, await c.readResponse(), 200, { ok: true });
        const r = await c.closed();
        assert.equal(r.gotEnd || c.isClosed, true);
        assert.equal(c.pending().length, 0, 'nothing after the response');
    });

    it('HTTP/1.0 without keep-alive → response, then close', async () => {
        const c = await open();
        await c.write(buildRequest({ path: '/ok', version: '1.0' }));
        const res = await c.readResponse();
        assert.equal(res.status, 200);
        assert.deepEqual(res.json(), { ok: true });
        await c.closed();
        assert.equal(c.pending().length, 0);
    });

    it('pipelining: 16 mixed requests in one write → 16 responses in order', async () => {
        const c = await open();
        const paths = [];
        for (let i = 0; i < 16; i++) paths.push(['/ok', '/live', '/nope', '/ready'][(i * 7) % 4]);
        await c.write(Buffer.concat(paths.map((p, i) => buildRequest({ path: p, headers: { 'X-Request-ID': `pipe-${i}` } }))));
        const expect = { '/ok': [200, { ok: true }], '/live': [200, { status: 'alive' }], '/nope': [404, { detail: 'Not Found' }], '/ready': [200, { status: 'ready' }] };
        for (let i = 0; i < paths.length; i++) {
            const res = await c.readResponse();
            const [status, body] = expect[paths[i]];
            assert.equal(res.status, status, `response ${i} (${paths[i]})`);
            assert.deepEqual(res.json(), body, `response ${i} (${paths[i]})`);
            assert.equal(res.headers['x-request-id'], `pipe-${i}`, `response ${i} is for request ${i}`);
        }
        // still usable afterwards
        await c.write(buildRequest({ path: '/ok' }));
        assert.equal((await c.readResponse()).status, 200);
    });

    it('pipelining ending in Connection: close → all responses, then close', async () => {
        const c = await open();
        const reqs = [
            buildRequest({ path: '/ok' }),
            buildRequest({ path: '/nope' }),
            buildRequest({ path: '/live', headers: { Connection: 'close' } }),
            buildRequest({ path: '/ok' }), // after close: must not be answered
        ];
        await c.write(Buffer.concat(reqs));
        assert.equal((await c.readResponse()).status, 200);
        assert.equal((await c.readResponse()).status, 404);
        assert.equal((await c.readResponse()).status, 200);
        await c.closed();
        assert.equal(c.pending().length, 0, `no response after the Connection: close one: ${c.pending().toString('latin1')}`);
    });

    it('a request written byte by byte still works (GET, POST with body, chunked POST)', async () => {
        const c = await open();
        await c.writeSlowly(buildRequest({ path: '/ok' }), 1);
        checkJson(assert, await c.readResponse(), 200, { ok: true });
        await c.writeSlowly(buildRequest({ method: 'POST', path: '/ok', body: 'GET /nope HTTP/1.1\r\n\r\n' }), 1);
        checkJson(assert, await c.readResponse(), 405, { detail: 'Method Not Allowed' });
        await c.writeSlowly(`POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`, 1);
        checkJson(assert, await c.readResponse(), 405);
        await c.writeSlowly(buildRequest({ path: '/live' }), 1);
        checkJson(assert, await c.readResponse(), 200, { status: 'alive' });
    });

    it('request boundaries split across writes at awkward places', async () => {
        const c = await open();
        const all = Buffer.concat([
            buildRequest({ path: '/ok' }),
            buildRequest({ path: '/live', headers: { 'X-Request-ID': 'split-2' } }),
            buildRequest({ method: 'POST', path: '/ok', body: 'x'.repeat(300) }),
            buildRequest({ path: '/ready' }),
        ]);
        // Pieces of varying length, so cuts land inside tokens, CRLFs and the body.
        const sizes = [3, 1, 17, 2, 5, 29, 1, 1, 64, 7, 11, 128, 2];
        let i = 0;
        for (let k = 0; i < all.length; k++) {
            const n = sizes[k % sizes.length];
            await c.write(all.subarray(i, i + n));
            i += n;
        }
        assert.equal((await c.readResponse()).status, 200);
        const r2 = await c.readResponse();
        assert.equal(r2.status, 200);
        assert.equal(r2.headers['x-request-id'], 'split-2');
        assert.equal((await c.readResponse()).status, 405);
        checkJson(assert, await c.readResponse(), 200, { status: 'ready' });
    });

    it('Content-Length body on a GET-only route: 405, body consumed, next pipelined request answered', async () => {
        const c = await open();
        // The body looks like a request: if it were not consumed, a 404 would come next instead of 200.
        const body = 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n';
        await c.write(Buffer.concat([buildRequest({ method: 'POST', path: '/ok', body }), buildRequest({ path: '/ok' })]));
        checkJson(assert, await c.readResponse(), 405, { detail: 'Method Not Allowed' });
        checkJson(assert, await c.readResponse(), 200, { ok: true });
        assert.equal(c.gotEnd, false, 'connection still open');
    });

    it('a large Content-Length body (256 KiB) arriving after the 405 is still consumed', async () => {
        const c = await open();
        const body = Buffer.alloc(256 * 1024, 'GET /nope HTTP/1.1\r\n\r\n');
        await c.write(Buffer.concat([buildRequest({ method: 'POST', path: '/ok', body }), buildRequest({ path: '/live' })]));
        checkJson(assert, await c.readResponse(), 405);
        checkJson(assert, await c.readResponse(), 200, { status: 'alive' });
    });

    it('chunked body on a GET-only route: 405, body consumed, next pipelined request answered', async () => {
        const c = await open();
        const inner = 'GET /nope HTTP/1.1\r\n\r\n';
        const chunked =
            `POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n` +
            `5\r\nhello\r\n` +
            `${inner.length.toString(16)};ext=1\r\n${inner}\r\n` +
            `1A\r\n${'abcdefghijklmnopqrstuvwxyz'}\r\n` +
            `0\r\n\r\n`;
        await c.write(Buffer.concat([Buffer.from(chunked), buildRequest({ path: '/ok' })]));
        checkJson(assert, await c.readResponse(), 405, { detail: 'Method Not Allowed' });
        checkJson(assert, await c.readResponse(), 200, { ok: true });
    });

    it('chunked body with trailer fields is consumed too', async () => {
        const c = await open();
        const chunked = `POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n`;
        await c.write(Buffer.concat([Buffer.from(chunked), buildRequest({ path: '/ready' })]));
        checkJson(assert, await c.readResponse(), 405);
        checkJson(assert, await c.readResponse(), 200, { status: 'ready' });
    });

    it('Expect: 100-continue (within limits) → 100 Continue before the body, then the final response', async () => {
        const c = await open();
        const body = '{"hello":"world"}';
        await c.write(`POST /ok HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
        const interim = await c.readResponse();
        assert.equal(interim.status, 100, `expected 100 Continue before sending the body, got ${interim.status} ${interim.text}`);
        assert.equal(interim.version, '1.1');
        await c.write(Buffer.concat([Buffer.from(body), buildRequest({ path: '/ok' })]));
        checkJson(assert, await c.readResponse(), 405, { detail: 'Method Not Allowed' });
        checkJson(assert, await c.readResponse(), 200, { ok: true });
    });

    it('header names are case-insensitive: cOnNeCtIoN: close', async () => {
        const c = await open();
        await c.write(`GET /ok HTTP/1.1\r\nhOsT: 127.0.0.1\r\ncOnNeCtIoN: close\r\n\r\n`);
        checkJson(assert, await c.readResponse(), 200, { ok: true });
        await c.closed();
    });

    it('header names are case-insensitive: content-LENGTH and transfer-ENCODING bodies are consumed', async () => {
        const c = await open();
        await c.write(
            `POST /ok HTTP/1.1\r\n${H}content-LENGTH: 22\r\n\r\nGET /nope HTTP/1.1\r\n\r\n` +
                `POST /ok HTTP/1.1\r\n${H}TRANSFER-encoding: chunked\r\n\r\n16\r\nGET /nope HTTP/1.1\r\n\r\n\r\n0\r\n\r\n` +
                `GET /live HTTP/1.1\r\n${H}x-REQUEST-id: Mixed-Case-1\r\n\r\n`,
        );
        checkJson(assert, await c.readResponse(), 405);
        checkJson(assert, await c.readResponse(), 405);
        const res = await c.readResponse();
        checkJson(assert, res, 200, { status: 'alive' });
        assert.equal(res.headers['x-request-id'], 'Mixed-Case-1');
    });

    it('responses are HTTP/1.1 with exactly one Content-Length', async () => {
        const c = await open();
        await c.write(buildRequest({ path: '/ok' }));
        const res = await c.readResponse();
        assert.equal(res.version, '1.1');
        assert.equal(res.status, 200);
        // Only one framing header, never both.
        assert.ok(!(res.headers['content-length'] !== undefined && res.headers['transfer-encoding'] !== undefined));
        const cl = res.rawHeaders.filter(([k]) => k.toLowerCase() === 'content-length');
        assert.equal(cl.length, 1, 'exactly one content-length');
    });
});
