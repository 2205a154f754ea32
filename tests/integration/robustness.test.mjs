// Malformed requests → 400 JSON then close, server stays healthy; a seeded junk blaster.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { buildRequest, checkJson, parseResponse, pool, prng, rawConnect, request, startAgentd } from './lib/harness.mjs';

const H = 'Host: 127.0.0.1\r\n';

// [name, bytes, headError]: headError means the error is in the request line or headers, so the
// 400 must be the only response. For body errors a response to the head may precede it.
const MALFORMED = [
    ['garbage bytes (TLS ClientHello)', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]), true],
    ['text garbage', 'hello world, this is not http\r\n\r\n', true],
    ['binary noise with NULs', Buffer.from([0x00, 0x00, 0xff, 0xfe, 0x47, 0x45, 0x54, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]), true],
    ['request line without version', `GET /ok\r\n${H}\r\n`, true],
    ['request line with an extra token', `GET /ok HTTP/1.1 extra\r\n${H}\r\n`, true],
    ['bad protocol name', `GET /ok HTTX/1.1\r\n${H}\r\n`, true],
    ['invalid character in the method', `G@T /ok HTTP/1.1\r\n${H}\r\n`, true],
    ['NUL in the request target', `GET /o\x00k HTTP/1.1\r\n${H}\r\n`, true],
    ['space inside a header name', `GET /ok HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`, true],
    ['control char in a header name', `GET /ok HTTP/1.1\r\n${H}X-\x01Bad: x\r\n\r\n`, true],
    ['control char in a header value', `GET /ok HTTP/1.1\r\n${H}X-Ctl: a\x01b\r\n\r\n`, true],
    ['header line without a colon', `GET /ok HTTP/1.1\r\n${H}NoColonHere\r\n\r\n`, true],
    ['empty header name', `GET /ok HTTP/1.1\r\n${H}: value\r\n\r\n`, true],
    ['Content-Length and Transfer-Encoding together', `POST /ok HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, true],
    ['negative Content-Length', `POST /ok HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, true],
    ['non-numeric Content-Length', `POST /ok HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`, true],
    ['two different Content-Lengths', `POST /ok HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, true],
    ['bad chunk size', `POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, false],
    ['chunk data not followed by CRLF', `POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n`, false],
];

/**
 * Reads responses until a 400 arrives, then expects the close. A response that is not an error
 * (or, for head errors, any response before the 400) fails at once: the request was accepted.
 */
async function readUntil400ThenClose(c, name, headError) {
    const out = [];
    for (;;) {
        let r;
        try {
            r = await c.readResponse({ timeoutMs: 10000 });
        } catch (e) {
            if ((c.isClosed || c.gotEnd) && c.pending().length === 0) break;
            throw new Error(`${name}: after responses [${out.map((x) => x.status)}]: ${e.message}`);
        }
        out.push(r);
        if (r.status === 400) break;
        if (headError || r.status < 400 || r.status >= 500) {
            assert.fail(`${name}: server answered ${r.status} ${r.text} instead of 400 (the malformed request was accepted)`);
        }
    }
    await c.closed({ timeoutMs: 10000 });
    assert.equal(c.pending().length, 0, `${name}: bytes after the 400: ${JSON.stringify(c.pending().toString('latin1'))}`);
    return out;
}

function checkBadRequest(res, name) {
    assert.equal(res.status, 400, `${name}: status ${res.status} ${res.text}`);
    checkJson(assert, res, 400);
    const body = res.json();
    assert.equal(body.error, 'bad_request', `${name}: ${res.text}`);
    assert.equal(typeof body.message, 'string', `${name}: message is a string`);
    assert.ok(body.message.length > 0, `${name}: message is non-empty`);
    assert.equal(body.details, null, `${name}: details is null`);
    assert.deepEqual(Object.keys(body).sort(), ['details', 'error', 'message'], `${name}: ${res.text}`);
}

describe('malformed requests', { timeout: 60000 }, () => {
    let srv;
    before(async () => {
        srv = await startAgentd({ args: ['--shards', '1'] });
    });
    after(async () => {
        await srv.dispose();
    });

    for (const [name, bytes, headError] of MALFORMED) {
        it(`${name} → 400 bad_request JSON, then close; server stays healthy`, async () => {
            const c = await rawConnect(srv.port);
            try {
                await c.write(bytes);
                const rs = await readUntil400ThenClose(c, name, headError);
                assert.ok(rs.length >= 1, `${name}: no response before close`);
                if (headError) assert.equal(rs.length, 1, `${name}: exactly one response, got ${rs.map((r) => r.status)}`);
                for (const r of rs.slice(0, -1)) assert.ok(r.status >= 400 && r.status < 500, `${name}: earlier response ${r.status}`);
                checkBadRequest(rs.at(-1), name);
            } finally {
                c.destroy();
            }
            checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
        });
    }

    it('a malformed request after valid pipelined ones: valid ones answered, then 400, then close', async () => {
        const c = await rawConnect(srv.port);
        try {
            await c.write(Buffer.concat([buildRequest({ path: '/ok' }), buildRequest({ path: '/live' }), Buffer.from(`GET /ok HTTP/1.1\r\n${H}X-\x01Bad: x\r\n\r\n`)]));
            const rs = [await c.readResponse(), await c.readResponse(), ...(await readUntil400ThenClose(c, 'pipelined', true))];
            assert.deepEqual(
                rs.map((r) => r.status),
                [200, 200, 400],
            );
            checkBadRequest(rs[2], 'pipelined');
        } finally {
            c.destroy();
        }
    });

    it('400 responses from the HTTP layer carry x-request-id too', async () => {
        const c = await rawConnect(srv.port);
        try {
            await c.write(`GET /ok HTTP/1.1\r\n${H}X-\x01Bad: x\r\n\r\n`);
            const [res] = await readUntil400ThenClose(c, 'x-request-id', true);
            assert.equal(res.status, 400);
            assert.ok((res.headers['x-request-id'] ?? '').length > 0, `x-request-id on 400: ${JSON.stringify(res.headers)}`);
        } finally {
            c.destroy();
        }
    });
});

// ---------------------------------------------------------------------------------------------

const TEMPLATES = [
    buildRequest({ path: '/ok' }),
    buildRequest({ path: '/live', headers: { Connection: 'keep-alive', 'X-Request-ID': 'junk' } }),
    buildRequest({ method: 'POST', path: '/ok', body: '{"a":1}', headers: { 'Content-Type': 'application/json' } }),
    Buffer.from(`POST /ok HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`),
    buildRequest({ method: 'OPTIONS', path: '/threads', headers: { Origin: 'http://x', 'Access-Control-Request-Method': 'POST' } }),
    buildRequest({ path: '/ok', version: '1.0' }),
];
const SPICE = ['\r\n', '\r', '\n', ':', ' ', '\t', '\x00', '\x7f', '\xff', 'HTTP/1.1', 'chunked', 'Content-Length: ', 'Transfer-Encoding: ', '-1', '99999999999999999999', 'ffffffffffffffff', '%00', '/../'];

function makePayload(rnd) {
    const pick = (a) => a[Math.floor(rnd() * a.length)];
    const kind = rnd();
    if (kind < 0.25) {
        const n = 1 + Math.floor(rnd() * 512);
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
        return b;
    }
    if (kind < 0.35) {
        // printable lines
        let s = '';
        const lines = 1 + Math.floor(rnd() * 8);
        for (let l = 0; l < lines; l++) {
            const len = Math.floor(rnd() * 40);
            for (let i = 0; i < len; i++) s += String.fromCharCode(32 + Math.floor(rnd() * 95));
            s += '\r\n';
        }
        return Buffer.from(s + '\r\n', 'latin1');
    }
    // mutated valid requests, sometimes several back to back
    const parts = [];
    const count = 1 + Math.floor(rnd() * 3);
    for (let p = 0; p < count; p++) parts.push(pick(TEMPLATES));
    let b = Buffer.concat(parts);
    const muts = Math.floor(rnd() * 6);
    for (let m = 0; m < muts; m++) {
        const at = Math.floor(rnd() * (b.length + 1));
        const op = rnd();
        if (op < 0.3 && b.length) {
            b[Math.min(at, b.length - 1)] = Math.floor(rnd() * 256);
        } else if (op < 0.55) {
            b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(SPICE), 'latin1'), b.subarray(at)]);
        } else if (op < 0.75) {
            const len = Math.floor(rnd() * 16);
            b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        } else if (op < 0.9) {
            const len = Math.floor(rnd() * 32);
            b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        } else {
            b = b.subarray(0, at); // truncate
        }
    }
    return b;
}

describe('junk blaster', { timeout: 120000 }, () => {
    it('2000 seeded random payloads: every reply is well-formed HTTP, the server stays up', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '2'] });
        const rnd = prng(0x5eed1234);
        const payloads = Array.from({ length: 2000 }, () => makePayload(rnd));
        let answered = 0;
        await pool(payloads.length, 16, async (i) => {
            const c = await rawConnect(srv.port);
            try {
                // Split some payloads in two writes to exercise resumption too.
                const p = payloads[i];
                const cut = i % 3 === 0 ? Math.floor(p.length / 2) : p.length;
                await c.write(p.subarray(0, cut));
                if (cut < p.length) await c.write(p.subarray(cut));
                c.end(); // half-close: the server must finish and close
                await c.closed({ timeoutMs: 15000 }).catch((e) => {
                    throw new Error(`payload ${i} (${JSON.stringify(p.toString('latin1'))}): ${e.message}`);
                });
                let buf = c.pending();
                if (buf.length) {
                    answered++;
                    assert.ok(buf.subarray(0, 7).toString('latin1') === 'HTTP/1.', `payload ${i}: reply does not start with a status line: ${JSON.stringify(buf.subarray(0, 80).toString('latin1'))}`);
                }
                while (buf.length) {
                    let r;
                    try {
                        r = parseResponse(buf, { eof: true });
                    } catch (e) {
                        throw new Error(`payload ${i}: malformed reply: ${e.message}`);
                    }
                    if (r === null) {
                        // Only a reset may cut a reply short.
                        assert.ok(c.error, `payload ${i}: truncated reply without a reset: ${JSON.stringify(buf.toString('latin1'))}`);
                        break;
                    }
                    assert.ok(r.response.status >= 100 && r.response.status < 600);
                    buf = buf.subarray(r.consumed);
                }
            } finally {
                c.destroy();
            }
        });
        assert.ok(srv.alive, `agentd died:\n${srv.stderr().slice(-4000)}`);
        assert.ok(answered > 100, `only ${answered} payloads got a reply`);
        checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
        assert.equal(await srv.stop(), 0);
    });
});
