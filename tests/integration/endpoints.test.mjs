// Built-in endpoints (/ok /live /ready /info /metrics), 404/405, CORS, x-request-id, request logs.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { checkJson, getMetrics, metricSum, rawConnect, buildRequest, request, startAgentd } from './lib/harness.mjs';

const METRICS = [
    'agentd_requests_total',
    'agentd_connections_accepted_total',
    'agentd_connections_open',
    'agentd_bytes_received_total',
    'agentd_bytes_sent_total',
    'agentd_loop_iterations_total',
    'agentd_submit_calls_total',
    'agentd_submitted_sqes_total',
    'agentd_allocations_total',
];

function tokens(v) {
    return (v ?? '')
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);
}

describe('endpoints (--shards 2, --log-level info)', { timeout: 60000 }, () => {
    let srv;
    before(async () => {
        // waitReady: GET /ready is 200 only once the schema is migrated and the shards are connected.
        srv = await startAgentd({ args: ['--shards', '2', '--log-level', 'info'], waitReady: true });
    });
    after(async () => {
        await srv.dispose();
    });

    it('GET /ok → 200 {"ok":true} with application/json and an exact content-length', async () => {
        const res = await request(srv.port, { path: '/ok' });
        checkJson(assert, res, 200, { ok: true });
    });

    it('GET /ok also works through fetch', async () => {
        const res = await fetch(`${srv.url}/ok`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^application\/json/);
        assert.deepEqual(await res.json(), { ok: true });
    });

    it('GET /live → 200 {"status":"alive"}', async () => {
        checkJson(assert, await request(srv.port, { path: '/live' }), 200, { status: 'alive' });
    });

    it('GET /ready → 200 {"status":"ready"}', async () => {
        checkJson(assert, await request(srv.port, { path: '/ready' }), 200, { status: 'ready' });
    });

    it('GET /ok?x=1 (query string) still routes to /ok', async () => {
        // Reading: routes match on the path; the query string is not part of it.
        checkJson(assert, await request(srv.port, { path: '/ok?x=1&y=2' }), 200, { ok: true });
    });

    it('GET /info → name, version, shards (= --shards), flags object', async () => {
        const info = checkJson(assert, await request(srv.port, { path: '/info' }), 200).json();
        assert.equal(info.name, 'agentd');
        assert.equal(typeof info.version, 'string');
        assert.ok(info.version.length > 0, 'version is non-empty');
        assert.equal(info.shards, 2);
        assert.equal(typeof info.flags, 'object');
        assert.ok(info.flags !== null && !Array.isArray(info.flags), `flags is an object: ${JSON.stringify(info.flags)}`);
    });

    it('GET /metrics → text/plain Prometheus text with a line per shard for every counter', async () => {
        // Make sure each shard has served something is not required: every shard must export every series.
        const { res, samples } = await getMetrics(srv.port);
        assert.match(res.headers['content-type'] ?? '', /^text\/plain/);
        assert.equal(Number(res.headers['content-length'] ?? res.body.length), res.body.length);
        for (const name of METRICS) {
            for (const shard of ['0', '1']) {
                const found = samples.filter((s) => s.name === name && s.labels.shard === shard);
                assert.ok(found.length > 0, `${name}{shard="${shard}"} is missing from /metrics:\n${res.text}`);
                for (const s of found) assert.ok(Number.isFinite(s.value) && s.value >= 0, `${name} value ${s.value}`);
            }
        }
        for (const s of samples.filter((x) => x.name === 'agentd_requests_total')) {
            assert.match(s.labels.class ?? '', /^[1-5]xx$/, `agentd_requests_total has a class label: ${JSON.stringify(s.labels)}`);
        }
        assert.ok(metricSum(samples, 'agentd_loop_iterations_total') > 0, 'loop iterations counted');
        assert.ok(metricSum(samples, 'agentd_submit_calls_total') > 0, 'submit calls counted');
        assert.ok(metricSum(samples, 'agentd_submitted_sqes_total') > 0, 'submitted SQEs counted');
        assert.ok(metricSum(samples, 'agentd_connections_open') >= 1, 'the /metrics connection itself is open');
    });

    it('request, byte and connection counters increase after requests', async () => {
        const before1 = (await getMetrics(srv.port)).samples;
        for (let i = 0; i < 5; i++) assert.equal((await request(srv.port, { path: '/ok' })).status, 200);
        assert.equal((await request(srv.port, { path: '/definitely-not-here' })).status, 404);
        const after1 = (await getMetrics(srv.port)).samples;
        const d = (name, match) => (metricSum(after1, name, match) ?? 0) - (metricSum(before1, name, match) ?? 0);
        assert.ok(d('agentd_requests_total', { class: '2xx' }) >= 5, `2xx increased by ${d('agentd_requests_total', { class: '2xx' })}`);
        assert.ok(d('agentd_requests_total', { class: '4xx' }) >= 1, `4xx increased by ${d('agentd_requests_total', { class: '4xx' })}`);
        assert.ok(d('agentd_connections_accepted_total', {}) >= 6, `accepted increased by ${d('agentd_connections_accepted_total', {})}`);
        assert.ok(d('agentd_bytes_received_total', {}) >= 6 * 20, `bytes received increased by ${d('agentd_bytes_received_total', {})}`);
        assert.ok(d('agentd_bytes_sent_total', {}) >= 6 * 20, `bytes sent increased by ${d('agentd_bytes_sent_total', {})}`);
        assert.ok(d('agentd_loop_iterations_total', {}) > 0, 'loop iterations increased');
        // Each shard publishes its count before it waits, so the answered requests are in it.
        assert.ok(d('agentd_allocations_total', {}) > 0, `allocations increased by ${d('agentd_allocations_total', {})}`);
    });

    it('a body field or query parameter the server does not know is ignored, and counted', async () => {
        const count = async () => metricSum((await getMetrics(srv.port)).samples, 'agentd_unknown_fields_total') ?? 0;
        const before = await count();
        const res = await request(srv.port, {
            method: 'POST',
            path: '/threads?trace=1',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ metadata: { a: 1 }, threadId: 'not-even-a-uuid' }),
        });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.json().metadata, { a: 1 });
        assert.equal(res.json().threadId, undefined);
        assert.equal((await count()) - before, 2, 'trace and threadId counted');
    });

    it('unknown path → 404 {"detail":"Not Found"}', async () => {
        for (const p of ['/nope', '/ok/extra', '/', '/threads-not-a-route']) {
            checkJson(assert, await request(srv.port, { path: p }), 404, { detail: 'Not Found' });
        }
    });

    it('known path, wrong method → 405 {"detail":"Method Not Allowed"} with Allow listing GET', async () => {
        for (const [method, p] of [
            ['POST', '/ok'],
            ['DELETE', '/info'],
            ['PUT', '/metrics'],
            ['PATCH', '/live'],
        ]) {
            const res = await request(srv.port, { method, path: p, body: method === 'DELETE' ? null : '{}' });
            checkJson(assert, res, 405, { detail: 'Method Not Allowed' });
            assert.ok(tokens(res.headers.allow).includes('get'), `${method} ${p}: Allow header lists GET: ${res.headers.allow}`);
        }
    });

    it('CORS: a request with Origin gets allow-origin * and exposes Content-Location, Location and the pagination headers', async () => {
        const res = await request(srv.port, { path: '/ok', headers: { Origin: 'http://example.com' } });
        assert.equal(res.status, 200);
        assert.equal(res.headers['access-control-allow-origin'], '*');
        const exposed = tokens(res.headers['access-control-expose-headers']);
        assert.ok(exposed.includes('content-location'), `expose-headers: ${res.headers['access-control-expose-headers']}`);
        assert.ok(exposed.includes('location'), `expose-headers: ${res.headers['access-control-expose-headers']}`);
        // The SDK pages searches with X-Pagination-Next; a browser only lets it read exposed headers.
        assert.ok(exposed.includes('x-pagination-total') && exposed.includes('x-pagination-next'), `expose-headers: ${res.headers['access-control-expose-headers']}`);
    });

    it('CORS: also on error responses (404) when Origin is sent', async () => {
        const res = await request(srv.port, { path: '/nope', headers: { Origin: 'http://example.com' } });
        assert.equal(res.status, 404);
        assert.equal(res.headers['access-control-allow-origin'], '*');
    });

    it('CORS preflight OPTIONS /threads → 200/204 with allow-origin, allow-methods ⊇ POST, allow-headers echoed', async () => {
        const res = await request(srv.port, {
            method: 'OPTIONS',
            path: '/threads',
            headers: {
                Origin: 'http://example.com',
                'Access-Control-Request-Method': 'POST',
                'Access-Control-Request-Headers': 'content-type,x-api-key',
            },
        });
        assert.ok(res.status === 200 || res.status === 204, `preflight status ${res.status}: ${res.text}`);
        assert.ok(['*', 'http://example.com'].includes(res.headers['access-control-allow-origin']), `allow-origin: ${res.headers['access-control-allow-origin']}`);
        assert.ok(tokens(res.headers['access-control-allow-methods']).includes('post'), `allow-methods: ${res.headers['access-control-allow-methods']}`);
        const allowed = tokens(res.headers['access-control-allow-headers']);
        assert.ok(allowed.includes('content-type') && allowed.includes('x-api-key'), `allow-headers: ${res.headers['access-control-allow-headers']}`);
    });

    it('x-request-id is echoed when the client sends one', async () => {
        const res = await request(srv.port, { path: '/ok', headers: { 'X-Request-ID': 'abc-123' } });
        assert.equal(res.status, 200);
        assert.equal(res.headers['x-request-id'], 'abc-123');
    });

    it('x-request-id is generated otherwise: non-empty and different per request', async () => {
        const c = await rawConnect(srv.port);
        try {
            await c.write(buildRequest({ path: '/ok' }));
            const a = await c.readResponse();
            await c.write(buildRequest({ path: '/live' }));
            const b = await c.readResponse();
            const d = await request(srv.port, { path: '/ok' });
            for (const r of [a, b, d]) assert.ok((r.headers['x-request-id'] ?? '').length > 0, 'x-request-id present');
            assert.equal(new Set([a, b, d].map((r) => r.headers['x-request-id'])).size, 3, 'ids differ');
        } finally {
            c.destroy();
        }
    });

    it('x-request-id is present on 404 and 405 responses', async () => {
        const r404 = await request(srv.port, { path: '/nope' });
        assert.equal(r404.status, 404);
        assert.ok((r404.headers['x-request-id'] ?? '').length > 0, 'x-request-id on 404');
        const r405 = await request(srv.port, { method: 'POST', path: '/ok', body: '', headers: { 'X-Request-ID': 'echo-405' } });
        assert.equal(r405.status, 405);
        assert.equal(r405.headers['x-request-id'], 'echo-405');
    });

    it('each request is logged on stderr as one line with its request id and status', async () => {
        const id = `logline-${process.pid}-${Date.now()}`;
        const from = srv.stderr().length;
        const res = await request(srv.port, { path: '/ok', headers: { 'X-Request-ID': id } });
        assert.equal(res.status, 200);
        const m = await srv.waitForStderr(new RegExp(`^.*${id}.*$`, 'm'), { from, timeoutMs: 10000, what: `a log line with ${id}` });
        assert.match(m[0], /\b200\b/, `log line carries the status: ${m[0]}`);

        const id404 = `${id}-404`;
        assert.equal((await request(srv.port, { path: '/nope', headers: { 'X-Request-ID': id404 } })).status, 404);
        const m404 = await srv.waitForStderr(new RegExp(`^.*${id404}.*$`, 'm'), { from, timeoutMs: 10000 });
        assert.match(m404[0], /\b404\b/, `log line carries the status: ${m404[0]}`);
    });

    it('the logged id is the generated x-request-id when the client sends none', async () => {
        const from = srv.stderr().length;
        const res = await request(srv.port, { path: '/live' });
        const id = res.headers['x-request-id'];
        assert.ok(id, 'x-request-id present');
        const esc = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const m = await srv.waitForStderr(new RegExp(`^.*${esc}.*$`, 'm'), { from, timeoutMs: 10000 });
        assert.match(m[0], /\b200\b/);
    });
});

describe('request logging with --log-level warn', { timeout: 30000 }, () => {
    it('no request lines are written', async (t) => {
        const srv = await startAgentd({ t, args: ['--log-level', 'warn', '--shards', '1'] });
        const id = `quiet-${process.pid}-${Date.now()}`;
        assert.equal((await request(srv.port, { path: '/ok', headers: { 'X-Request-ID': id } })).status, 200);
        assert.equal((await request(srv.port, { path: '/nope', headers: { 'X-Request-ID': `${id}-b` } })).status, 404);
        // The process has exited (and flushed stderr) before we look, so absence is meaningful.
        assert.equal(await srv.stop('SIGTERM'), 0);
        assert.ok(!srv.stderr().includes(id), `request was logged at warn level:\n${srv.stderr()}`);
    });
});

describe('without a database (no DATABASE_URL, no database_url)', { timeout: 30000 }, () => {
    it('GET /ready → 503 "Service not ready - database not configured…" with Retry-After; /ok and /live still 200', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '2'], db: false });
        // Both shards: each answers for itself.
        for (let i = 0; i < 6; i++) {
            const res = checkJson(assert, await request(srv.port, { path: '/ready' }), 503);
            const body = res.json();
            assert.deepEqual(Object.keys(body).sort(), ['details', 'error', 'message'], res.text);
            assert.equal(body.error, 'service_unavailable', res.text);
            assert.match(body.message, /^Service not ready - database not configured\b/, res.text);
            assert.equal(body.details, null, res.text);
            assert.match(res.headers['retry-after'] ?? '', /^\d+$/, `retry-after header: ${JSON.stringify(res.headers['retry-after'])}`);
        }
        checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
        checkJson(assert, await request(srv.port, { path: '/live' }), 200, { status: 'alive' });
    });

    it('GET /health → 503 service_unavailable with details.database saying it is not configured', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '1'], env: { DATABASE_URL: undefined } });
        const res = checkJson(assert, await request(srv.port, { path: '/health' }), 503);
        const body = res.json();
        assert.equal(body.error, 'service_unavailable', res.text);
        assert.equal(body.message, 'Service unhealthy', res.text);
        assert.match(body.details?.database ?? '', /^database not configured\b/, res.text);
        assert.match(res.headers['retry-after'] ?? '', /^\d+$/, `retry-after header: ${JSON.stringify(res.headers['retry-after'])}`);
    });
});
