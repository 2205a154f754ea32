// Every resource route without a database: a valid request is answered 503 with Retry-After and the
// error body (never a 500, a hang or a crash), a malformed one still gets its 422 (validation needs no
// database), and the server stays up and exits 0. Two shards, so thread-scoped routes are forwarded
// to their owner and answered from there too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { freePort, rawConnect, buildRequest, startAgentd } from './lib/harness.mjs';

const T = '0b5e1b7a-3c1d-4e6f-8a9b-1c2d3e4f5a6b';
const A = 'echo';

// [method, path, body]: a request each route would accept.
const VALID = [
    ['POST', '/assistants', { graph_id: 'echo' }],
    ['GET', '/assistants', null],
    ['POST', '/assistants/search', {}],
    ['POST', '/assistants/count', {}],
    ['GET', `/assistants/${A}`, null],
    ['PATCH', `/assistants/${T}`, { metadata: { a: 1 } }],
    ['DELETE', `/assistants/${T}`, null],
    ['POST', `/assistants/${A}/versions`, {}],
    ['POST', `/assistants/${T}/latest`, { version: 1 }],
    ['GET', `/assistants/${A}/schemas`, null],
    ['GET', `/assistants/${A}/graph`, null],
    ['GET', `/assistants/${A}/subgraphs`, null],
    ['PUT', '/store/items', { namespace: ['a'], key: 'k', value: { v: 1 } }],
    ['GET', '/store/items?namespace=a&key=k', null],
    ['DELETE', '/store/items', { namespace: ['a'], key: 'k' }],
    ['POST', '/store/items/search', { namespace_prefix: ['a'] }],
    ['POST', '/store/namespaces', {}],
    ['POST', '/threads', {}],
    ['GET', '/threads', null],
    ['POST', '/threads/search', {}],
    ['POST', '/threads/count', {}],
    ['POST', '/threads/prune', { thread_ids: [T] }],
    ['GET', `/threads/${T}`, null],
    ['PATCH', `/threads/${T}`, { metadata: { a: 1 } }],
    ['DELETE', `/threads/${T}`, null],
    ['POST', `/threads/${T}/copy`, null],
];

// Bodies that are wrong whatever the database holds.
const INVALID = [
    ['POST', '/assistants', { graph_id: 5 }],
    ['POST', '/assistants/search', { limit: 0 }],
    ['PUT', '/store/items', { namespace: ['a'], key: 'k', value: [1] }],
    ['POST', '/store/items/search', { namespace_prefix: ['a'], query: 5 }],
    ['POST', '/threads', { metadata: [] }],
    ['POST', '/threads/search', { status: 'sleeping' }],
    ['GET', '/threads/not-a-uuid', null],
];

async function send(c, method, path, body) {
    const b = body === null ? null : JSON.stringify(body);
    await c.write(buildRequest({ method, path, headers: b === null ? {} : { 'Content-Type': 'application/json' }, body: b }));
    return c.readResponse({ method, timeoutMs: 10000 });
}

describe('resource routes without a database', () => {
    let server;

    before(async () => {
        // A port where nothing listens: the bootstrap keeps retrying, no connection ever comes up.
        const port = await freePort();
        server = await startAgentd({ args: ['--shards', '2'], db: `postgresql://postgres@127.0.0.1:${port}/none` });
    });

    after(async () => {
        if (server) assert.equal(await server.stop(), 0, server.stderr());
    });

    it('a valid request gets 503 with Retry-After on every route, from both shards', async () => {
        for (let k = 0; k < 4; k++) {
            const c = await rawConnect(server.port);
            for (const [method, path, body] of VALID) {
                const res = await send(c, method, path, body);
                assert.equal(res.status, 503, `${method} ${path} → ${res.status} ${res.text}`);
                assert.equal(res.headers['retry-after'], '1', `${method} ${path}: Retry-After`);
                const j = JSON.parse(res.text);
                assert.equal(j.error, 'service_unavailable', `${method} ${path}: ${res.text}`);
                assert.equal(typeof j.message, 'string');
            }
            c.destroy();
        }
    });

    it('a malformed request still gets its 422', async () => {
        const c = await rawConnect(server.port);
        for (const [method, path, body] of INVALID) {
            const res = await send(c, method, path, body);
            assert.equal(res.status, 422, `${method} ${path} → ${res.status} ${res.text}`);
            assert.ok(Array.isArray(JSON.parse(res.text).detail), `${method} ${path}: ${res.text}`);
        }
        c.destroy();
    });
});
