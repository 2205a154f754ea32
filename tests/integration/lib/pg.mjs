// Private, throwaway PostgreSQL clusters for tests that stop and restart the database, and psql.
//
// Never stop the shared cluster behind DATABASE_URL: other test files use it in parallel. A test
// that needs Postgres to go away starts its own cluster here (tools/pg.sh does the work: initdb on
// first start, trust auth, user postgres, 127.0.0.1 only; as root it runs as the postgres user).
//
// Missing PostgreSQL binaries make startCluster() reject, so such a test fails; nothing is skipped.
//
// Only Node built-ins are used.

import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is tests/integration/lib/pg.mjs). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PG_SH = path.join(REPO_ROOT, 'tools', 'pg.sh');

// Clusters not destroyed yet: stopped and removed synchronously if the test process exits early.
const live = new Set();
process.on('exit', () => {
    for (const dir of live) {
        spawnSync('bash', [PG_SH, 'stop', dir], { stdio: 'ignore', timeout: 60000 });
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

/** Runs a program; resolves with { code, stdout, stderr } (never rejects unless it cannot be bounded). */
function run(file, args, { env = process.env, timeoutMs = 120000 } = {}) {
    return new Promise((resolve) => {
        execFile(file, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
            let code = 0;
            if (err) code = typeof err.code === 'number' ? err.code : err.killed ? `killed after ${timeoutMs} ms` : String(err.code ?? err.message);
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        });
    });
}

async function pgsh(...args) {
    const r = await run('bash', [PG_SH, ...args]);
    if (r.code !== 0) throw new Error(`bash tools/pg.sh ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    return r.stdout.trim();
}

/**
 * Creates a private cluster in a fresh temporary directory on a free port. With `started: true`
 * (the default) it is initialized and running when this resolves; with `started: false` only the
 * directory and port are chosen, and the URL points at a port where nothing listens until the
 * first start() (which runs initdb). Resolves with
 *   { url, port, dir, start(), stop(), running(), destroy(), urlFor(dbname) }
 * stop() is a fast shutdown (connected clients are disconnected); start() reuses the same port.
 * destroy() stops it and removes the directory; with `t` (a node:test context) it runs in t.after.
 */
export async function startCluster({ t = null, started = true } = {}) {
    // The cluster runs as the postgres user when we are root: pg.sh hands it the directory.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-pg-'));
    live.add(dir);
    let port = Number(await pgsh('free-port'));
    let destroyed = false;

    const cluster = {
        dir,
        get port() {
            return port;
        },
        get url() {
            return `postgresql://postgres@127.0.0.1:${port}/postgres`;
        },
        /** The URL of database `dbname` in this cluster. */
        urlFor(dbname) {
            return `postgresql://postgres@127.0.0.1:${port}/${encodeURIComponent(dbname)}`;
        },
        /** Starts it (creating it on first use); resolves once it accepts connections. */
        async start() {
            if (destroyed) throw new Error('cluster already destroyed');
            await pgsh('start', dir, String(port));
        },
        /** Fast shutdown; resolves once the postmaster is gone. */
        async stop() {
            await pgsh('stop', dir);
        },
        async running() {
            return (await run('bash', [PG_SH, 'status', dir])).code === 0;
        },
        async destroy() {
            if (destroyed) return;
            destroyed = true;
            try {
                await pgsh('stop', dir);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
                live.delete(dir);
            }
        },
    };
    if (t) t.after(() => cluster.destroy());

    if (started) {
        // A port can be taken between free-port and start (as in tools/test.sh): try another one.
        for (let attempt = 1; ; attempt++) {
            try {
                await cluster.start();
                break;
            } catch (e) {
                const log = fs.existsSync(path.join(dir, 'postgres.log')) ? fs.readFileSync(path.join(dir, 'postgres.log'), 'utf8') : '';
                if (attempt >= 3 || !/could not bind|Address already in use/i.test(e.message + log)) {
                    await cluster.destroy().catch(() => {});
                    throw e;
                }
                port = Number(await pgsh('free-port'));
            }
        }
    }
    return cluster;
}

/**
 * Runs `sql` with psql -X -A -t -v ON_ERROR_STOP=1 against `url`; resolves with its stdout without
 * the trailing newline (unaligned, tuples only: one row a line, columns separated by "|"). Rejects
 * with psql's stderr when it exits non-zero.
 */
export async function psql(url, sql, { timeoutMs = 30000 } = {}) {
    const env = { ...process.env, PGCONNECT_TIMEOUT: '5' };
    for (const k of ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGSERVICE', 'PGOPTIONS']) delete env[k];
    const r = await run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { env, timeoutMs });
    if (r.code !== 0) throw new Error(`psql failed (exit ${r.code}) on ${JSON.stringify(sql)} against ${url}:\n${r.stderr}`);
    return r.stdout.replace(/\n$/, '');
}

/** Splits psql -A -t output into rows of columns. */
export function rows(text) {
    return text === '' ? [] : text.split('\n').map((line) => line.split('|'));
}

/**
 * A fresh, empty database in the shared DATABASE_URL cluster, for tests whose results depend on
 * what else is stored (counts, searches, listings). Resolves with its URL; with `t` (a node:test
 * context) it is dropped in t.after (connections are terminated first). agentd migrates it on start.
 */
export async function freshDatabase({ t = null, base = process.env.DATABASE_URL } = {}) {
    if (!base) throw new Error('freshDatabase: DATABASE_URL is not set (tools/test.sh starts a throwaway cluster and exports it)');
    const name = `agentd_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    await psql(base, `CREATE DATABASE ${name}`);
    const u = new URL(base);
    u.pathname = `/${name}`;
    const url = u.toString();
    const drop = async () => {
        await psql(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    };
    if (t) t.after(drop);
    return { url, name, drop };
}

/**
 * SQL storing checkpoints as agentd does (migration 009): `source` is a SELECT with the columns
 * `cols` of checkpoints (thread_id, checkpoint_ns and checkpoint_id among them) plus `v`, the
 * checkpoint's values (jsonb). Each channel of v becomes a whole value in checkpoint_blobs at the
 * checkpoint's own version, and the checkpoint names it in channel_versions.
 */
export function storeCheckpointsSql(source, cols = ['thread_id', 'checkpoint_ns', 'checkpoint_id', 'step', 'source']) {
    return (
        `WITH s AS (${source}), b AS (INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, value) ` +
        `SELECT s.thread_id, s.checkpoint_ns, e.key, s.checkpoint_id, e.value::text FROM s, jsonb_each(s.v) e) ` +
        `INSERT INTO checkpoints (${cols.join(', ')}, channel_versions) SELECT ${cols.map((c) => `s.${c}`).join(', ')}, ` +
        `(SELECT coalesce(jsonb_object_agg(e.key, s.checkpoint_id), '{}') FROM jsonb_each(s.v) e) FROM s;`
    );
}
