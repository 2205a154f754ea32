// Postgres persistence: /health and /ready, start-up without a database, Postgres restarted and
// agentd's sessions terminated under load, concurrent migrations (agentd migrate and two servers),
// and the bounded per-shard queue.
//
// The shared DATABASE_URL cluster is only ever read and written; every scenario that stops Postgres,
// kills sessions or needs a fresh database uses a private cluster from lib/pg.mjs.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
    buildRequest,
    checkJson,
    dbConnectionsUp,
    getMetrics,
    metricSum,
    rawConnect,
    request,
    requireDatabaseUrl,
    runAgentd,
    startAgentd,
    waitForMetrics,
    waitForStatus,
    withTimeout,
    writeTempFile,
} from './lib/harness.mjs';
import { psql, rows, startCluster } from './lib/pg.mjs';

const DB_METRICS = [
    'agentd_db_connections_up',
    'agentd_db_queries_total',
    'agentd_db_errors_total',
    'agentd_db_pipeline_groups_total',
    'agentd_db_rejected_total',
    'agentd_db_queue',
];

// Tables the migrations create (a sample of the schema that later features rely on).
const TABLES = ['assistants', 'threads', 'runs', 'checkpoints', 'thread_events', 'store_items', 'crons', 'schema_version'];

const HEALTHY = { status: 'healthy', database: 'connected' };

/** A 503 from /health: {"error":"service_unavailable","message":"Service unhealthy","details":{"database":"<why>"}} + retry-after. */
function expectUnhealthy(res, why = undefined) {
    checkJson(assert, res, 503);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['details', 'error', 'message'], `503 body: ${res.text}`);
    assert.equal(body.error, 'service_unavailable', res.text);
    assert.equal(body.message, 'Service unhealthy', res.text);
    assert.ok(body.details !== null && typeof body.details === 'object', `details is an object: ${res.text}`);
    assert.equal(typeof body.details.database, 'string', `details.database is a string: ${res.text}`);
    assert.ok(body.details.database.length > 0, `details.database says why: ${res.text}`);
    if (why !== undefined) assert.equal(body.details.database, why, res.text);
    assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/, `retry-after on a 503: ${JSON.stringify(res.headers['retry-after'])}`);
    return body;
}

/** A 503 from /ready: {"error":"service_unavailable","message":"Service not ready - <why>","details":null} + retry-after. */
function expectNotReady(res) {
    checkJson(assert, res, 503);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['details', 'error', 'message'], `503 body: ${res.text}`);
    assert.equal(body.error, 'service_unavailable', res.text);
    assert.match(body.message, /^Service not ready - \S/, res.text);
    assert.equal(body.details, null, res.text);
    assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/, `retry-after on a 503: ${JSON.stringify(res.headers['retry-after'])}`);
    return body;
}

const delta = (a, b, name, match) => (metricSum(b, name, match) ?? 0) - (metricSum(a, name, match) ?? 0);

function allUp(n) {
    return (samples) => dbConnectionsUp(samples).every((v) => v === n);
}

/** { version: count } from schema_version, and the tables of the public schema. */
async function schemaState(url) {
    const counts = {};
    for (const [v, n] of rows(await psql(url, 'SELECT version, count(*) FROM schema_version GROUP BY version ORDER BY version'))) counts[v] = Number(n);
    const tables = rows(await psql(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")).map((r) => r[0]);
    return { counts, tables };
}

function expectFullSchema({ counts, tables }, latest) {
    const versions = Object.keys(counts).map(Number);
    assert.ok(versions.length > 0, 'schema_version has rows');
    for (const [v, n] of Object.entries(counts)) assert.equal(n, 1, `schema_version has version ${v} ${n} times: ${JSON.stringify(counts)}`);
    if (latest !== undefined) assert.equal(Math.max(...versions), latest, `schema_version is at the version agentd reports: ${JSON.stringify(counts)}`);
    for (const name of TABLES) assert.ok(tables.includes(name), `table ${name} exists (tables: ${tables.join(', ')})`);
}

/** Versions named by `msg="migration applied" version=N` lines in some logs. */
function appliedVersions(...logs) {
    return logs.flatMap((text) => [...text.matchAll(/msg="migration applied" version=(\d+)/g)].map((m) => Number(m[1])));
}

describe('with the shared database', { timeout: 60000 }, () => {
    it('/health and /ready are 200; db metrics per shard; /health runs a counted query', async (t) => {
        requireDatabaseUrl();
        const srv = await startAgentd({ t, args: ['--shards', '2'], waitReady: true });
        // database.connections_per_shard defaults to 2.
        await waitForMetrics(srv.port, allUp(2), { what: 'agentd_db_connections_up = 2 on both shards', exited: srv.exited });

        const { res, samples: m0 } = await getMetrics(srv.port);
        for (const name of DB_METRICS) {
            for (const shard of ['0', '1']) {
                assert.ok(m0.some((s) => s.name === name && s.labels.shard === shard), `${name}{shard="${shard}"} is missing from /metrics:\n${res.text}`);
            }
        }

        const N = 24; // each on a fresh connection (the kernel spreads them over the shards)
        for (let i = 0; i < N; i++) checkJson(assert, await request(srv.port, { path: '/health' }), 200, HEALTHY);
        for (let i = 0; i < 6; i++) checkJson(assert, await request(srv.port, { path: '/ready' }), 200, { status: 'ready' });

        const m1 = (await getMetrics(srv.port)).samples;
        assert.deepEqual(dbConnectionsUp(m1), [2, 2], 'still 2 connections per shard');
        assert.equal(delta(m0, m1, 'agentd_db_queries_total'), N, 'one query (SELECT 1) per /health; /ready and /metrics run none');
        assert.ok(delta(m0, m1, 'agentd_db_pipeline_groups_total') >= 1, 'pipeline groups counted');
        assert.ok(delta(m0, m1, 'agentd_db_pipeline_groups_total') <= N, 'no more groups than queries');
        assert.equal(delta(m0, m1, 'agentd_db_errors_total'), 0, 'no database errors');
        assert.equal(delta(m0, m1, 'agentd_db_rejected_total'), 0, 'nothing rejected');
        assert.equal(metricSum(m1, 'agentd_db_queue'), 0, 'nothing queued or in flight afterwards');
    });

    it('database.connections_per_shard sets the number of connections each shard opens', async (t) => {
        requireDatabaseUrl();
        const srv = await startAgentd({ t, args: ['--shards', '1'], config: { database: { connections_per_shard: 3 } }, waitReady: true });
        await waitForMetrics(srv.port, allUp(3), { what: 'agentd_db_connections_up = 3', exited: srv.exited });
        checkJson(assert, await request(srv.port, { path: '/health' }), 200, HEALTHY);
    });
});

describe('Postgres down at start-up', { timeout: 60000 }, () => {
    it('agentd starts and answers 503, then becomes ready once Postgres comes up — without a restart', async (t) => {
        // Created, then stopped: nothing listens on its port until start(), which is then quick.
        const cluster = await startCluster({ t });
        await cluster.stop();
        const srv = await startAgentd({ t, args: ['--shards', '2'], db: cluster.url });
        const pid = srv.proc.pid;

        for (let i = 0; i < 4; i++) {
            expectUnhealthy(await request(srv.port, { path: '/health' }));
            expectNotReady(await request(srv.port, { path: '/ready' }));
        }
        checkJson(assert, await request(srv.port, { path: '/live' }), 200, { status: 'alive' });
        assert.deepEqual(dbConnectionsUp((await getMetrics(srv.port)).samples), [0, 0], 'no database connection yet');

        await cluster.start();
        // Bootstrap retries back off up to 5 s, then the shards connect: bounded polling, no sleeps.
        await waitForStatus(srv.port, '/ready', 200, { timeoutMs: 20000, exited: srv.exited });
        await waitForMetrics(srv.port, allUp(2), { timeoutMs: 20000, what: 'agentd_db_connections_up = 2 on both shards', exited: srv.exited });
        for (let i = 0; i < 6; i++) {
            checkJson(assert, await request(srv.port, { path: '/ready' }), 200, { status: 'ready' });
            checkJson(assert, await request(srv.port, { path: '/health' }), 200, HEALTHY);
        }

        assert.ok(srv.alive, 'agentd is still running');
        assert.equal(srv.proc.pid, pid);
        assert.equal(srv.stderr().match(/listening on http:/g)?.length, 1, 'started once');
        // The bootstrap thread applied the migrations once Postgres was there.
        expectFullSchema(await schemaState(cluster.url));
    });
});

/** agentd's stderr without the request lines: the sanitizer report if there is one, else the last lines. */
function serverLog(srv) {
    const other = srv.stderr().split('\n').filter((l) => !/ req=\S+ method=/.test(l));
    const sanitizer = other.findIndex((l) => /ERROR: (Address|Leak)Sanitizer|runtime error:/.test(l));
    const lines = sanitizer >= 0 ? other.slice(Math.max(0, sanitizer - 5), sanitizer + 60) : other.slice(-40);
    return `agentd ${srv.alive ? 'is running' : 'has exited'}; its stderr without request lines:\n${lines.join('\n')}`;
}

/**
 * Keep-alive clients sending GET /health back to back on their own connections until finish().
 * Every answer must be a 200 {"status":"healthy",...} or a well-formed 503 (else the client, and
 * so finish() or the next wait, fails); no answer within 5 s counts as a hang. Answers are
 * attributed to the phase in which their request was sent (setPhase(name, round)).
 * wait(status, name, round, ms) resolves once every client has had a `status` ('200' or '503')
 * answer to a request sent in that phase; wait('warm', ...) once every client has had three 200s.
 */
function loadClients(srv, conns, { maxPerClient = 50000 } = {}) {
    let phase = { name: 'before', round: 0 };
    const seen = { 200: 0, 503: 0 };
    const reasons = new Map();
    const latches = new Map();
    const latch = (key, i) => {
        if (!latches.has(key)) {
            latches.set(
                key,
                conns.map(() => {
                    let resolve;
                    const p = new Promise((r) => (resolve = r));
                    return { p, resolve };
                }),
            );
        }
        return latches.get(key)[i];
    };
    const failure = async (e, i, id, p, sent) => {
        // A crashed agentd resets the connections: wait briefly for its exit so its report is complete.
        if (!/timed out/.test(e.message)) await Promise.race([srv.exited, new Promise((r) => setTimeout(r, 3000))]);
        const logged = srv.stderr().split('\n').filter((l) => l.includes(`req=${id} `));
        return new Error(
            `client ${i}, request ${id} sent in phase ${p.name} ${p.round} (now ${phase.name} ${phase.round}) at ${new Date(sent).toISOString()}: ${e.message}\n` +
                `agentd's request log for ${id}: ${JSON.stringify(logged)}\nresponses so far ${JSON.stringify(seen)}\n${serverLog(srv)}`,
        );
    };
    const client = async (i) => {
        const c = conns[i];
        let ok = 0;
        for (let n = 0; n < maxPerClient && phase.name !== 'done'; n++) {
            const p = phase;
            const id = `load-${i}-${n}`;
            const sent = Date.now();
            let res;
            try {
                await c.write(buildRequest({ path: '/health', headers: { 'X-Request-ID': id } }));
                res = await c.readResponse({ timeoutMs: 5000 }); // /health never waits for a reconnect
            } catch (e) {
                throw await failure(e, i, id, p, sent);
            }
            if (res.status === 200) {
                checkJson(assert, res, 200, HEALTHY);
                seen[200]++;
                if (++ok === 3) latch('warm:0', i).resolve();
                latch(`200:${p.name}:${p.round}`, i).resolve();
            } else {
                assert.equal(res.status, 503, `client ${i} request ${id} (phase ${p.name} ${p.round}): only 200 or 503; got ${res.status} ${res.text}`);
                const body = expectUnhealthy(res);
                seen[503]++;
                reasons.set(body.details.database, (reasons.get(body.details.database) ?? 0) + 1);
                latch(`503:${p.name}:${p.round}`, i).resolve();
            }
            // Pacing, not synchronization: leaves CPU for Postgres on a small machine.
            await new Promise((r) => setTimeout(r, 2));
        }
    };
    const running = Promise.all(conns.map((_, i) => client(i)));
    return {
        seen,
        reasons,
        setPhase(name, round) {
            phase = { name, round };
        },
        /** Every client has had a `status` ('200' | '503' | 'warm') for a request sent in phase (name, round). */
        wait(status, name, round, ms) {
            const key = status === 'warm' ? 'warm:0' : `${status}:${name}:${round}`;
            const what = status === 'warm' ? 'three 200s on every client' : `a ${status} on every client for a request sent in phase ${name} ${round}`;
            return withTimeout(
                Promise.race([Promise.all(conns.map((_, i) => latch(key, i).p)), running.then(() => Promise.reject(new Error(`the clients ended before ${what}`)))]),
                ms,
                () => `timed out after ${ms} ms waiting for ${what}; responses so far ${JSON.stringify(seen)}; 503 reasons ${JSON.stringify([...reasons])}`,
            );
        },
        async finish() {
            phase = { name: 'done', round: 0 };
            await withTimeout(running, 15000, 'the clients to finish');
        },
    };
}

/** After a load: every connection still answers 200, same process, every db connection up, queue empty. */
async function expectRecovered(t, srv, conns, load, { pid, shards, perShard }) {
    for (const c of conns) {
        await c.write(buildRequest({ path: '/health' }));
        checkJson(assert, await c.readResponse(), 200, HEALTHY);
    }
    t.diagnostic(`responses: ${JSON.stringify(load.seen)}; 503 reasons: ${JSON.stringify([...load.reasons])}`);
    assert.ok(srv.alive, 'agentd is still running');
    assert.equal(srv.proc.pid, pid);
    assert.equal(srv.stderr().match(/listening on http:/g)?.length, 1, 'started once');
    const m = (await getMetrics(srv.port)).samples;
    assert.deepEqual(dbConnectionsUp(m), Array(shards).fill(perShard), `every database connection is back; ${serverLog(srv)}`);
    // The background statements (run leases, crons, TTL sweeps) may be in flight at any one moment:
    // nothing is left over once the queue has drained.
    await waitForMetrics(srv.port, (s) => metricSum(s, 'agentd_db_queue') === 0, { timeoutMs: 10000, what: `nothing left queued or in flight; ${serverLog(srv)}`, exited: srv.exited });
}

describe('database connections dropped under load', { timeout: 120000 }, () => {
    it('8 clients on keep-alive connections get only 200s and well-formed 503s; all recover without an agentd restart', async (t) => {
        const SHARDS = 2;
        const PER_SHARD = 2; // the default database.connections_per_shard
        const CLIENTS = 8;
        const CYCLES = 2; // stop + start; what is caught in flight differs each time
        const cluster = await startCluster({ t });
        const srv = await startAgentd({ t, args: ['--shards', String(SHARDS)], db: cluster.url, waitReady: true });
        await waitForMetrics(srv.port, allUp(PER_SHARD), { what: `agentd_db_connections_up = ${PER_SHARD} on every shard`, exited: srv.exited });
        const pid = srv.proc.pid;
        const conns = await Promise.all(Array.from({ length: CLIENTS }, () => rawConnect(srv.port)));
        t.after(() => conns.forEach((c) => c.destroy()));

        const load = loadClients(srv, conns);
        await load.wait('warm', 'before', 0, 15000);
        const timings = [];
        for (let cycle = 1; cycle <= CYCLES; cycle++) {
            const t0 = Date.now();
            const step = [];
            const mark = () => step.push(Date.now() - t0);
            await cluster.stop(); // fast shutdown: the server disconnects agentd's sessions
            load.setPhase('down', cycle);
            mark();
            await load.wait('503', 'down', cycle, 15000);
            await waitForMetrics(srv.port, allUp(0), { timeoutMs: 15000, what: `agentd_db_connections_up 0 on every shard while Postgres is down (cycle ${cycle})`, exited: srv.exited });
            mark();
            await cluster.start();
            load.setPhase('up', cycle);
            mark();
            await load.wait('200', 'up', cycle, 20000);
            mark();
            await waitForMetrics(srv.port, allUp(PER_SHARD), { timeoutMs: 20000, what: `agentd_db_connections_up back to ${PER_SHARD} on every shard (cycle ${cycle})`, exited: srv.exited });
            mark();
            timings.push(step.join('/'));
        }
        t.diagnostic(`ms after each stop for stopped/503s/started/200s/all up: ${timings.join(', ')}`);
        await load.finish();
        await expectRecovered(t, srv, conns, load, { pid, shards: SHARDS, perShard: PER_SHARD });
    });

    it("all of agentd's sessions terminated 15 times under load (pg_terminate_backend): only 200s and well-formed 503s; all recover", async (t) => {
        // Cheaper than a restart, so it can be repeated: every round cuts every connection, some
        // of them mid-query, while Postgres stays up and agentd reconnects after its first backoff.
        const SHARDS = 2;
        const PER_SHARD = 4; // more connections: more of them caught mid-query
        const CLIENTS = 8;
        const ROUNDS = 15;
        const cluster = await startCluster({ t });
        const srv = await startAgentd({ t, args: ['--shards', String(SHARDS)], config: { database: { connections_per_shard: PER_SHARD } }, db: cluster.url, waitReady: true });
        await waitForMetrics(srv.port, allUp(PER_SHARD), { what: `agentd_db_connections_up = ${PER_SHARD} on every shard`, exited: srv.exited });
        const pid = srv.proc.pid;
        const conns = await Promise.all(Array.from({ length: CLIENTS }, () => rawConnect(srv.port)));
        t.after(() => conns.forEach((c) => c.destroy()));

        const load = loadClients(srv, conns);
        await load.wait('warm', 'before', 0, 15000);
        const sessions = `FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`;
        for (let round = 1; round <= ROUNDS; round++) {
            // The private cluster has no other clients: every other client backend is agentd's.
            const cut = rows(await psql(cluster.url, `SELECT pid, pg_terminate_backend(pid) ${sessions}`));
            assert.equal(cut.length, SHARDS * PER_SHARD, `round ${round}: one session per agentd connection: ${JSON.stringify(cut)}`);
            assert.ok(cut.every(([, ok]) => ok === 't'), `round ${round}: every session terminated: ${JSON.stringify(cut)}`);
            load.setPhase('cut', round);
            // agentd's metrics may still count a connection whose loss it has not read yet, so first
            // wait (polling Postgres) until the old sessions are gone and as many new ones exist.
            const old = cut.map(([pid]) => pid).join(',');
            const deadline = Date.now() + 20000;
            for (;;) {
                const [[gone, fresh]] = rows(await psql(cluster.url, `SELECT count(*) FILTER (WHERE pid IN (${old})), count(*) FILTER (WHERE pid NOT IN (${old})) ${sessions}`));
                if (gone === '0' && Number(fresh) === SHARDS * PER_SHARD) break;
                assert.ok(srv.alive && Date.now() < deadline, `round ${round}: ${gone} old sessions remain and ${fresh} new ones exist (want ${SHARDS * PER_SHARD}); ${serverLog(srv)}`);
                await new Promise((r) => setTimeout(r, 20));
            }
            await waitForMetrics(srv.port, allUp(PER_SHARD), { timeoutMs: 20000, what: `agentd_db_connections_up back to ${PER_SHARD} on every shard (round ${round})`, exited: srv.exited });
            load.setPhase('up', round);
            await load.wait('200', 'up', round, 20000);
        }
        await load.finish();
        await expectRecovered(t, srv, conns, load, { pid, shards: SHARDS, perShard: PER_SHARD });
    });
});

describe('migrations', { timeout: 90000 }, () => {
    let cluster;
    let latest;
    before(async () => {
        cluster = await startCluster();
    });
    after(async () => {
        await cluster?.destroy();
    });

    it('two `agentd migrate` at the same time: both exit 0, each version applied and recorded once, every table exists', async () => {
        const rs = await Promise.all([0, 1].map(() => runAgentd({ args: ['migrate'], db: cluster.url, timeoutMs: 30000 })));
        const versions = [];
        for (const r of rs) {
            const out = r.stdout + r.stderr;
            assert.equal(r.started, false, `migrate started a server: ${out}`);
            assert.equal(r.code, 0, `${r.command} → exit ${r.code} (signal ${r.signal}, timedOut ${r.timedOut}):\n${out}`);
            const m = /schema is at version (\d+)/.exec(out);
            assert.ok(m, `migrate says which version the schema is at:\n${out}`);
            versions.push(Number(m[1]));
        }
        assert.equal(versions[0], versions[1], 'both report the same version');
        latest = versions[0];
        const state = await schemaState(cluster.url);
        expectFullSchema(state, latest);
        // The advisory lock serializes them: every migration ran in exactly one of the two processes.
        const applied = appliedVersions(rs[0].stderr, rs[1].stderr).sort((a, b) => a - b);
        assert.deepEqual(applied, Object.keys(state.counts).map(Number), `"migration applied" lines across both processes:\n${rs[0].stderr}\n---\n${rs[1].stderr}`);
    });

    it('`agentd migrate --config FILE` (database_url from the file) on a migrated database: exit 0, applies nothing', async () => {
        assert.ok(latest, 'the previous test migrated');
        const before1 = await psql(cluster.url, 'SELECT version, name, applied_at FROM schema_version ORDER BY version');
        const file = writeTempFile('migrate.json', { database_url: cluster.url });
        const r = await runAgentd({ args: ['migrate', '--config', file], db: false, timeoutMs: 30000 });
        const out = r.stdout + r.stderr;
        assert.equal(r.code, 0, `${r.command} → exit ${r.code}:\n${out}`);
        assert.match(out, new RegExp(`schema is at version ${latest}\\b`));
        assert.deepEqual(appliedVersions(r.stderr), [], `nothing to apply:\n${out}`);
        assert.equal(await psql(cluster.url, 'SELECT version, name, applied_at FROM schema_version ORDER BY version'), before1, 'schema_version unchanged');
    });

    it('two servers started at the same moment on one fresh database both become ready', async (t) => {
        await psql(cluster.url, 'CREATE DATABASE twins');
        const url = cluster.urlFor('twins');
        const [a, b] = await Promise.all([0, 1].map(() => startAgentd({ t, args: ['--shards', '1'], db: url, waitReady: true })));
        for (const srv of [a, b]) {
            checkJson(assert, await request(srv.port, { path: '/ready' }), 200, { status: 'ready' });
            checkJson(assert, await request(srv.port, { path: '/health' }), 200, HEALTHY);
        }
        const state = await schemaState(url);
        expectFullSchema(state, latest);
        const applied = appliedVersions(a.stderr(), b.stderr()).sort((x, y) => x - y);
        assert.deepEqual(applied, Object.keys(state.counts).map(Number), `each migration applied by exactly one server:\n${a.stderr()}\n---\n${b.stderr()}`);
    });

    it('`agentd migrate` against a stopped cluster exits 1 with the connection error', async () => {
        await cluster.stop();
        const r = await runAgentd({ args: ['migrate'], db: cluster.url, timeoutMs: 30000 });
        const out = r.stdout + r.stderr;
        assert.equal(r.started, false);
        assert.equal(r.code, 1, `${r.command} → exit ${r.code} (signal ${r.signal}, timedOut ${r.timedOut}):\n${out}`);
        assert.match(r.stderr, /agentd migrate: .*\S/, `an error message:\n${out}`);
        assert.match(r.stderr, new RegExp(`${cluster.port}|refused|connect`, 'i'), `the message names the connection problem:\n${out}`);
        assert.doesNotMatch(out, /schema is at version/);
    });

    it('`agentd migrate` without DATABASE_URL exits 2 with a message', async () => {
        const r = await runAgentd({ args: ['migrate'], db: false });
        const out = r.stdout + r.stderr;
        assert.equal(r.started, false);
        assert.equal(r.code, 2, `${r.command} → exit ${r.code}:\n${out}`);
        assert.match(r.stderr, /DATABASE_URL|database_url/, `the message says what is missing:\n${out}`);
    });
});

describe('back-pressure: database.queue_max 1, --shards 1', { timeout: 60000 }, () => {
    it('200 concurrent /health over 50 connections: 200s and 503 "database queue full" with Retry-After, nothing else', async (t) => {
        requireDatabaseUrl();
        const srv = await startAgentd({ t, args: ['--shards', '1'], config: { database: { queue_max: 1 } }, waitReady: true });
        const m0 = (await getMetrics(srv.port)).samples;

        const CONNS = 50;
        const PER_CONN = 4;
        const conns = await Promise.all(Array.from({ length: CONNS }, () => rawConnect(srv.port)));
        t.after(() => conns.forEach((c) => c.destroy()));
        let ok = 0;
        let full = 0;
        await Promise.all(
            conns.map(async (c, i) => {
                for (let n = 0; n < PER_CONN; n++) {
                    await c.write(buildRequest({ path: '/health' }));
                    const res = await c.readResponse({ timeoutMs: 10000 });
                    if (res.status === 200) {
                        checkJson(assert, res, 200, HEALTHY);
                        ok++;
                    } else {
                        assert.equal(res.status, 503, `connection ${i} request ${n}: only 200 or 503; got ${res.status} ${res.text}`);
                        expectUnhealthy(res, 'database queue full');
                        full++;
                    }
                }
            }),
        );
        const m1 = (await getMetrics(srv.port)).samples;
        t.diagnostic(`200: ${ok}, 503 queue full: ${full}`);
        assert.equal(ok + full, CONNS * PER_CONN);
        assert.ok(ok > 0, 'some requests got through');
        assert.ok(full > 0, `no request was refused with queue_max 1 (${ok} × 200)`);
        assert.equal(delta(m0, m1, 'agentd_requests_total', { class: '5xx' }), full, '5xx counted');
        assert.equal(delta(m0, m1, 'agentd_db_queries_total'), ok, 'a query per 200, none for the refused ones');
        assert.equal(delta(m0, m1, 'agentd_db_errors_total'), 0, 'no database errors');
        assert.equal(metricSum(m1, 'agentd_db_queue'), 0, 'queue empty afterwards');
        assert.equal(delta(m0, m1, 'agentd_db_rejected_total'), full, 'agentd_db_rejected_total counts every 503 "database queue full"');
    });
});
