// Command line, config file and environment: --version/--help, bad flags and bad config (exit 2),
// the readiness line, and the precedence defaults < config file < env < CLI flags.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertNoSanitizerReport, checkJson, freePort, request, runAgentd, startAgentd, writeTempFile } from './lib/harness.mjs';

function describeRun(r) {
    return `command: ${r.command}\nexit code=${r.code} signal=${r.signal} started=${r.started} timedOut=${r.timedOut}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/** Expects agentd to refuse to start: exit code 2, no crash, a message matching `re` on stderr. */
function expectUsageError(r, re) {
    assert.equal(r.started, false, `agentd started instead of failing\n${describeRun(r)}`);
    assert.equal(r.signal, null, `agentd died by a signal\n${describeRun(r)}`);
    assert.equal(r.code, 2, `exit code\n${describeRun(r)}`);
    assert.ok(r.stderr.trim().length > 0, `an error message on stderr\n${describeRun(r)}`);
    if (re) assert.match(r.stderr, re, `stderr names the problem\n${describeRun(r)}`);
    assertNoSanitizerReport(r.stderr);
}

describe('command line', { timeout: 60000 }, () => {
    it('--version prints a version and exits 0', async () => {
        const r = await runAgentd({ args: ['--version'] });
        assert.equal(r.started, false, describeRun(r));
        assert.equal(r.code, 0, describeRun(r));
        assert.match(r.stdout + r.stderr, /\d+\.\d+/, describeRun(r));
    });

    it('--version agrees with GET /info', async (t) => {
        const r = await runAgentd({ args: ['--version'] });
        const srv = await startAgentd({ t, args: ['--shards', '1'] });
        const info = (await request(srv.port, { path: '/info' })).json();
        assert.ok((r.stdout + r.stderr).includes(info.version), `--version output ${JSON.stringify(r.stdout + r.stderr)} vs /info version ${info.version}`);
    });

    it('--help prints usage naming every flag and exits 0', async () => {
        // Reading: --help is a successful invocation (exit 0); the usage may go to stdout or stderr.
        const r = await runAgentd({ args: ['--help'] });
        assert.equal(r.started, false, describeRun(r));
        assert.equal(r.code, 0, describeRun(r));
        const out = r.stdout + r.stderr;
        for (const flag of ['--config', '--host', '--port', '--shards', '--log-level', '--version']) {
            assert.ok(out.includes(flag), `--help mentions ${flag}:\n${out}`);
        }
    });

    const badFlags = [
        [['--bogus'], /--bogus|bogus/],
        [['--port', 'abc'], /port|abc/i],
        [['--shards', 'x'], /shards|x/i],
        [['--log-level', 'loud'], /log.level|loud/i],
        [['--port'], /port/i],
        [['extra-positional'], /extra-positional|argument/i],
    ];
    for (const [args, re] of badFlags) {
        it(`bad flag ${JSON.stringify(args)} → exit 2 with a message`, async () => {
            expectUsageError(await runAgentd({ args: ['--host', '127.0.0.1', ...args] }), re);
        });
    }
});

describe('config file errors → exit 2 naming the problem', { timeout: 60000 }, () => {
    const cases = [
        ['unknown top-level key', { port: 0, bogus_key: 1 }, /bogus_key/],
        ['unknown key in limits', { limits: { max_header_bytes: 4096, max_bogus: 1 } }, /max_bogus/],
        ['port is a string', { port: '8080' }, /port/],
        ['host is a number', { host: 127 }, /host/],
        ['shards is a string', { shards: '2' }, /shards/],
        ['log_level is a number', { log_level: 3 }, /log_level/],
        ['log_level is not a level', { log_level: 'loud' }, /log_level|loud/],
        ['database_url is a number', { database_url: 42 }, /database_url/],
        ['shutdown_timeout_ms is a boolean', { shutdown_timeout_ms: true }, /shutdown_timeout_ms/],
        ['limits is an array', { limits: [1, 2] }, /limits/],
        ['limits.max_body_bytes is a string', { limits: { max_body_bytes: 'big' } }, /max_body_bytes/],
        ['limits.idle_timeout_ms is null', { limits: { idle_timeout_ms: null } }, /idle_timeout_ms/],
        ['limits.max_conns_per_shard is an object', { limits: { max_conns_per_shard: {} } }, /max_conns_per_shard/],
        ['invalid JSON', '{"port": 0,', /json|pars|syntax|invalid|unexpected/i],
        ['empty file', '', null],
        ['top-level array', '[1, 2, 3]', null],
        ['trailing garbage after the object', '{"port": 0} xyz', null],
    ];
    for (const [name, content, re] of cases) {
        it(name, async () => {
            const file = writeTempFile('bad.json', content);
            expectUsageError(await runAgentd({ config: file, host: '127.0.0.1', port: 0 }), re);
        });
    }

    it('missing file → exit 2 naming the path', async () => {
        const missing = `/nonexistent-dir-${process.pid}/agentd.json`;
        expectUsageError(await runAgentd({ config: missing, host: '127.0.0.1', port: 0 }), new RegExp(missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    });
});

describe('readiness line and config keys', { timeout: 60000 }, () => {
    it('prints "agentd: listening on http://127.0.0.1:PORT (N shards)" with a kernel-chosen port', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '2'] });
        assert.match(srv.readyLine, /^agentd: listening on http:\/\/127\.0\.0\.1:\d+ \(2 shards\)$/, JSON.stringify(srv.readyLine));
        assert.ok(srv.port > 0 && srv.port < 65536);
        checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
        const info = (await request(srv.port, { path: '/info' })).json();
        assert.equal(info.shards, 2);
    });

    it('without --shards, the readiness line and /info agree on the shard count', async (t) => {
        const srv = await startAgentd({ t });
        const info = (await request(srv.port, { path: '/info' })).json();
        assert.ok(Number.isInteger(info.shards) && info.shards >= 1, `shards: ${info.shards}`);
        assert.equal(srv.shards, info.shards, srv.readyLine);
    });

    it('a config file with every documented key is accepted', async (t) => {
        const srv = await startAgentd({
            t,
            host: null,
            port: null,
            config: {
                host: '127.0.0.1',
                port: 0,
                shards: 1,
                database_url: process.env.DATABASE_URL ?? 'postgresql://agentd@127.0.0.1:5432/agentd',
                log_level: 'info',
                shutdown_timeout_ms: 5000,
                limits: { max_header_bytes: 8192, max_body_bytes: 65536, max_conns_per_shard: 100, idle_timeout_ms: 30000, header_timeout_ms: 5000 },
            },
        });
        assert.equal(srv.host, '127.0.0.1');
        assert.equal(srv.shards, 1);
        checkJson(assert, await request(srv.port, { path: '/ok' }), 200, { ok: true });
    });
});

describe('precedence: defaults < config file < env < CLI flags', { timeout: 60000 }, () => {
    // 127.0.0.0/8 is loopback on Linux, so distinct addresses make the winning source visible.
    const base = { host: '127.0.0.2', shards: 3, log_level: 'warn' };

    async function loggedAfterExit(srv, id) {
        assert.equal((await request(srv.port, { path: '/ok', connectHost: srv.host, headers: { 'X-Request-ID': id } })).status, 200);
        assert.equal(await srv.stop(), 0);
        return srv.stderr().includes(id);
    }

    it('config file values apply when nothing overrides them', async (t) => {
        const p1 = await freePort('127.0.0.2');
        const srv = await startAgentd({ t, host: null, port: null, config: { ...base, port: p1 } });
        assert.equal(srv.host, '127.0.0.2', srv.readyLine);
        assert.equal(srv.port, p1, srv.readyLine);
        assert.equal(srv.shards, 3, srv.readyLine);
        const info = (await request(srv.port, { path: '/info', connectHost: srv.host })).json();
        assert.equal(info.shards, 3);
        assert.equal(await loggedAfterExit(srv, `prec-config-${p1}`), false, 'log_level "warn" from the config file hides request lines');
    });

    it('env (HOST, PORT, AGENTD_SHARDS, AGENTD_LOG_LEVEL) beats the config file', async (t) => {
        const p1 = await freePort('127.0.0.2');
        const p2 = await freePort('127.0.0.3');
        const srv = await startAgentd({
            t,
            host: null,
            port: null,
            config: { ...base, port: p1 },
            env: { HOST: '127.0.0.3', PORT: p2, AGENTD_SHARDS: 2, AGENTD_LOG_LEVEL: 'info' },
        });
        assert.equal(srv.host, '127.0.0.3', srv.readyLine);
        assert.equal(srv.port, p2, srv.readyLine);
        assert.equal(srv.shards, 2, srv.readyLine);
        const info = (await request(srv.port, { path: '/info', connectHost: srv.host })).json();
        assert.equal(info.shards, 2);
        assert.equal(await loggedAfterExit(srv, `prec-env-${p2}`), true, 'AGENTD_LOG_LEVEL=info shows request lines');
    });

    it('CLI flags beat env and the config file', async (t) => {
        const p1 = await freePort('127.0.0.2');
        const p2 = await freePort('127.0.0.3');
        const p3 = await freePort('127.0.0.4');
        const srv = await startAgentd({
            t,
            host: '127.0.0.4',
            port: p3,
            args: ['--shards', '1', '--log-level', 'warn'],
            config: { ...base, port: p1, log_level: 'info' },
            env: { HOST: '127.0.0.3', PORT: p2, AGENTD_SHARDS: 2, AGENTD_LOG_LEVEL: 'info' },
        });
        assert.equal(srv.host, '127.0.0.4', srv.readyLine);
        assert.equal(srv.port, p3, srv.readyLine);
        assert.equal(srv.shards, 1, srv.readyLine);
        const info = (await request(srv.port, { path: '/info', connectHost: srv.host })).json();
        assert.equal(info.shards, 1);
        assert.equal(await loggedAfterExit(srv, `prec-cli-${p3}`), false, '--log-level warn hides request lines');
    });

    it('config limits apply (max_header_bytes from the file) — defaults are overridden', async (t) => {
        const srv = await startAgentd({ t, args: ['--shards', '1'], config: { limits: { max_header_bytes: 2048 } } });
        // 4000 bytes is fine under the 16384 default, so a 431 proves the file's value is used.
        const res = await request(srv.port, { path: '/ok', headers: { 'X-Pad': 'p'.repeat(4000) } });
        assert.equal(res.status, 431);
    });
});
