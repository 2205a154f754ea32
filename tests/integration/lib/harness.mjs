// Test harness for agentd integration tests: start the real binary, talk raw HTTP/1.1 to it.
//
// Everything synchronizes on events (the readiness line on stderr, socket data, 'end'/'close',
// process exit). Every wait has a generous upper bound that fails the test instead of hanging.
//
// Only Node built-ins are used.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const AGENTD_BIN = process.env.AGENTD_BIN;

const READY_RE = /listening on http:\/\/(\[[^\]]+\]|[^\s:/]+):(\d+)/;
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer/;

// Variables a developer's shell or CI might export that would change what agentd does. They are
// removed from the child's environment unless the test sets them explicitly. DATABASE_URL is the
// exception by default: see `db` below.
const SCRUBBED_ENV = ['HOST', 'PORT', 'AGENTD_SHARDS', 'AGENTD_LOG_LEVEL', 'DATABASE_URL', 'AGENTD_GRAPHS'];

/** The shared test database (tools/test.sh starts a throwaway cluster and exports it), or undefined. */
export const DATABASE_URL = process.env.DATABASE_URL || undefined;

/** Returns DATABASE_URL, or throws (a test that needs the database fails without one; it is never skipped). */
export function requireDatabaseUrl() {
    if (!DATABASE_URL) throw new Error('DATABASE_URL is not set: this test needs PostgreSQL (tools/test.sh starts a throwaway cluster)');
    return DATABASE_URL;
}

const live = new Set();
let tmpDir = null;

process.on('exit', () => {
    for (const p of live) {
        try {
            p.kill('SIGKILL');
        } catch {
            // already gone
        }
    }
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** The binary to run: `bin` when given (an installed agentd, say), else AGENTD_BIN. */
function requireBin(bin = null) {
    if (bin) {
        if (!fs.existsSync(bin)) throw new Error(`bin=${bin} does not exist`);
        return bin;
    }
    if (!AGENTD_BIN) throw new Error('AGENTD_BIN is not set (path to the agentd binary)');
    if (!fs.existsSync(AGENTD_BIN)) throw new Error(`AGENTD_BIN=${AGENTD_BIN} does not exist`);
    return AGENTD_BIN;
}

/** Writes `content` (a string, or an object serialized as JSON) to a fresh temp file; returns its path. */
export function writeTempFile(name, content) {
    if (!tmpDir) tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-it-'));
    const dir = fs.mkdtempSync(path.join(tmpDir, 'f-'));
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return file;
}

/**
 * The child's environment: the parent's minus SCRUBBED_ENV, then DATABASE_URL according to `db`
 * (true: the parent's DATABASE_URL, if any; false: none; a string: that URL), then `env` on top
 * (undefined/null removes a variable, so env: {DATABASE_URL: undefined} also means no database).
 */
function childEnv(env, db = true) {
    const out = { ...process.env };
    for (const k of SCRUBBED_ENV) delete out[k];
    if (db === true) {
        if (DATABASE_URL) out.DATABASE_URL = DATABASE_URL;
    } else if (typeof db === 'string' && db) {
        out.DATABASE_URL = db;
    } else if (db !== false) {
        throw new Error(`db must be true, false or a URL, not ${JSON.stringify(db)}`);
    }
    for (const [k, v] of Object.entries(env)) {
        if (v === undefined || v === null) delete out[k];
        else out[k] = String(v);
    }
    return out;
}

function buildArgv({ args = [], config = null, host = '127.0.0.1', port = 0 }) {
    const argv = [];
    if (host !== null && host !== undefined) argv.push('--host', String(host));
    if (port !== null && port !== undefined) argv.push('--port', String(port));
    if (config !== null && config !== undefined) {
        const file = typeof config === 'string' ? config : writeTempFile('agentd.json', config);
        argv.push('--config', file);
    }
    argv.push(...args);
    return argv;
}

/** Rejects after `ms` with `message()` unless `promise` settles first; the timer never outlives it. */
export function withTimeout(promise, ms, message) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(typeof message === 'function' ? message() : message)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Output watcher: accumulates text and lets callers wait for a pattern to appear. */
class OutputWatch {
    constructor(stream) {
        this.text = '';
        this.waiters = new Set();
        this.ended = false;
        stream.setEncoding('utf8');
        stream.on('data', (s) => {
            this.text += s;
            this.#notify();
        });
        stream.on('end', () => {
            this.ended = true;
            this.#notify();
        });
    }

    #notify() {
        for (const w of [...this.waiters]) w();
    }

    /** Resolves with the first match of `re` in the text (searched from `from`); rejects on end or timeout. */
    waitFor(re, { timeoutMs = 10000, from = 0, what = String(re) } = {}) {
        return new Promise((resolve, reject) => {
            const check = () => {
                const m = re.exec(this.text.slice(from));
                if (m) {
                    done();
                    resolve(m);
                } else if (this.ended) {
                    done();
                    reject(new Error(`output ended before ${what} appeared; output:\n${this.text}`));
                }
            };
            const timer = setTimeout(() => {
                done();
                reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output:\n${this.text}`));
            }, timeoutMs);
            const done = () => {
                clearTimeout(timer);
                this.waiters.delete(check);
            };
            this.waiters.add(check);
            check();
        });
    }
}

/**
 * Starts agentd with `--host 127.0.0.1 --port 0` plus `args` (pass host/port null to omit those
 * flags, e.g. for precedence tests). `config`: an object written to a temp JSON file (or a path
 * string) passed as `--config FILE`. `env` is merged over the scrubbed parent environment
 * (undefined/null removes a variable). If `t` (a node:test context) is given, the process is
 * stopped and checked for sanitizer reports in t.after. `prefix`: a command that runs agentd as its
 * last arguments (e.g. ['prlimit', '--nofile=64:64', '--']); signals go to that command, which must
 * exec agentd.
 *
 * `bin`: the binary to run instead of AGENTD_BIN (an installed agentd).
 *
 * Database: `db` (default true) passes the parent's DATABASE_URL through; false starts agentd
 * without one; a string uses that URL. `waitReady: true` additionally waits (polling GET /ready,
 * bounded by `timeoutMs`) until the server answers 200, i.e. the schema is migrated and every
 * shard polled has a live database connection; it fails at once when there is no DATABASE_URL.
 *
 * Resolves once stderr shows `listening on http://HOST:PORT`, with
 * { url, host, port, shards, proc, stderr(), waitForStderr(re, opts), stop(signal) → exit code,
 *   exited: Promise<{code, signal}>, dispose() }.
 * Rejects with the captured stderr if the process exits first or `timeoutMs` passes.
 */
export async function startAgentd({
    args = [],
    env = {},
    config = null,
    host = '127.0.0.1',
    port = 0,
    t = null,
    timeoutMs = 30000,
    db = true,
    waitReady = false,
    prefix = [],
    bin: binPath = null,
} = {}) {
    const bin = requireBin(binPath);
    const argv = buildArgv({ args, config, host, port });
    const childenv = childEnv(env, db);
    if (waitReady && !childenv.DATABASE_URL && config === null) {
        throw new Error('waitReady: agentd gets no DATABASE_URL, so /ready can never be 200 (tools/test.sh starts a throwaway PostgreSQL cluster and exports DATABASE_URL)');
    }
    const proc = prefix.length
        ? spawn(prefix[0], [...prefix.slice(1), bin, ...argv], { env: childenv, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(bin, argv, { env: childenv, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const err = new OutputWatch(proc.stderr);
    const out = new OutputWatch(proc.stdout);
    let exitInfo = null;
    const exited = new Promise((resolve) => {
        proc.on('close', (code, signal) => {
            exitInfo = { code, signal };
            live.delete(proc);
            resolve(exitInfo);
        });
    });
    proc.on('error', () => {}); // spawn failures surface through 'close' and the readiness wait

    const cmdline = [...prefix, bin, ...argv].join(' ');
    let m;
    try {
        m = await Promise.race([
            err.waitFor(READY_RE, { timeoutMs, what: 'the readiness line' }),
            exited.then(({ code, signal }) => {
                throw new Error(`agentd exited early (code=${code} signal=${signal})`);
            }),
        ]);
    } catch (e) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`${e.message.split('\n')[0]}\ncommand: ${cmdline}\nstderr:\n${err.text}\nstdout:\n${out.text}`);
    }
    const readyLine = err.text.split('\n').find((l) => READY_RE.test(l));
    const sm = /\((\d+) shards?\)/.exec(readyLine);
    const srvHost = m[1].replace(/^\[|\]$/g, '');
    const srvPort = Number(m[2]);

    const stop = async (signal = 'SIGTERM', { timeoutMs: stopTimeout = 15000 } = {}) => {
        if (!exitInfo) proc.kill(signal);
        try {
            const r = await withTimeout(exited, stopTimeout, () => `agentd did not exit within ${stopTimeout} ms after ${signal}`);
            return r.code;
        } catch (e) {
            proc.kill('SIGKILL');
            await exited;
            throw new Error(`${e.message}\nstderr:\n${err.text}`);
        }
    };

    const srv = {
        url: `http://${m[1]}:${srvPort}`,
        host: srvHost,
        port: srvPort,
        shards: sm ? Number(sm[1]) : null,
        readyLine,
        argv,
        proc,
        exited,
        stderr: () => err.text,
        stdout: () => out.text,
        waitForStderr: (re, opts) => err.waitFor(re, opts),
        get alive() {
            return exitInfo === null;
        },
        stop,
        /**
         * Stops the server if still running (it must exit 0 on SIGTERM within 15 s) and fails if
         * a sanitizer reported anything.
         */
        async dispose() {
            let stopError = null;
            if (!exitInfo) {
                try {
                    const code = await stop('SIGTERM');
                    if (code !== 0) stopError = new Error(`agentd exited with code ${code} (signal ${exitInfo.signal}) on SIGTERM at cleanup; stderr:\n${err.text.slice(-4000)}`);
                } catch (e) {
                    stopError = e;
                }
            }
            assertNoSanitizerReport(err.text);
            if (stopError) throw stopError;
        },
    };
    if (t) t.after(() => srv.dispose());
    if (waitReady) {
        try {
            // /ready speaks for the shard that took the connection; the metrics show every shard.
            await waitForStatus(srvPort, '/ready', 200, { timeoutMs, exited });
            await waitForMetrics(srvPort, (samples) => dbConnectionsUp(samples).every((n) => n >= 1), {
                timeoutMs,
                exited,
                what: 'a database connection up on every shard (agentd_db_connections_up)',
            });
        } catch (e) {
            proc.kill('SIGKILL');
            await exited;
            throw new Error(`${e.message}\ncommand: ${cmdline}\nstderr:\n${err.text}`);
        }
    }
    return srv;
}

/**
 * Polls GET `path` (a fresh connection each time, `intervalMs` apart) until it answers `status`;
 * resolves with that response. Rejects after `timeoutMs` with the last answer, on a connection
 * error, or as soon as `exited` (a process's exit promise) settles.
 */
export async function waitForStatus(port, path, status, { timeoutMs = 20000, intervalMs = 25, exited = null } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last = null;
    let gone = false;
    if (exited) exited.then(() => (gone = true));
    for (let polls = 1; ; polls++) {
        if (gone) throw new Error(`agentd exited while waiting for GET ${path} → ${status}`);
        last = await request(port, { path });
        if (last.status === status) return last;
        if (Date.now() > deadline) {
            throw new Error(`GET ${path} still answers ${last.status} ${JSON.stringify(last.text)} after ${timeoutMs} ms (${polls} polls); expected ${status}`);
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
}

/** Throws if `stderr` holds an ASan/UBSan/LSan/TSan report. */
export function assertNoSanitizerReport(stderr) {
    const m = SANITIZER_RE.exec(stderr);
    if (m) {
        const start = Math.max(0, m.index - 200);
        throw new Error(`sanitizer report in agentd stderr:\n${stderr.slice(start, start + 4000)}`);
    }
}

/**
 * Runs agentd expecting it to exit on its own (--version, --help, config errors, `migrate`; `db` and
 * `env` as for startAgentd; note that `config` puts --config before `args`, so for
 * `agentd migrate --config FILE` pass them all in `args`). Resolves with
 * { code, signal, stdout, stderr, started } where `started` is true if it printed the readiness
 * line instead (it is then killed). Bounded by `timeoutMs` (then killed, timedOut: true).
 */
export async function runAgentd({ args = [], env = {}, config = null, host = null, port = null, timeoutMs = 15000, db = true, bin: binPath = null } = {}) {
    const bin = requireBin(binPath);
    const argv = buildArgv({ args, config, host, port });
    const proc = spawn(bin, argv, { env: childEnv(env, db), stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const err = new OutputWatch(proc.stderr);
    const out = new OutputWatch(proc.stdout);
    const exited = new Promise((resolve) => {
        proc.on('close', (code, signal) => {
            live.delete(proc);
            resolve({ code, signal });
        });
    });
    proc.on('error', () => {});
    let started = false;
    let timedOut = false;
    const startedP = err.waitFor(READY_RE, { timeoutMs }).then(
        () => {
            started = true;
            proc.kill('SIGKILL');
        },
        () => {},
    );
    const timer = setTimeout(() => {
        timedOut = true;
        proc.kill('SIGKILL');
    }, timeoutMs);
    const r = await exited;
    clearTimeout(timer);
    await startedP;
    return { ...r, stdout: out.text, stderr: err.text, started, timedOut, command: [bin, ...argv].join(' ') };
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 client

/**
 * A raw TCP connection with an incremental HTTP/1.1 response parser.
 *   write(bytes) → Promise (resolved when handed to the kernel)
 *   writeSlowly(bytes, pieceLen=1) → writes piece by piece, each piece awaited (Nagle off)
 *   readResponse({timeoutMs, method}) → { version, status, reason, headers (lower-cased names,
 *       repeated headers joined with ", "), rawHeaders: [[name, value]], body: Buffer, text, json() }
 *   closed({timeoutMs}) → resolves { error } once the socket is fully closed (peer FIN or RST)
 *   gotEnd: true once the server sent FIN; error: a socket error (e.g. ECONNRESET), if any
 *   pending(): bytes received but not parsed yet; received(): every byte received so far
 */
export class RawConn {
    constructor(sock) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.all = [];
        this.gotEnd = false;
        this.isClosed = false;
        this.error = null;
        this.waiters = new Set();
        sock.setNoDelay(true);
        sock.on('data', (d) => {
            this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
            this.all.push(d);
            this.#notify();
        });
        sock.on('end', () => {
            this.gotEnd = true;
            this.#notify();
        });
        sock.on('error', (e) => {
            this.error = e;
            this.#notify();
        });
        sock.on('close', () => {
            this.isClosed = true;
            this.#notify();
        });
    }

    #notify() {
        for (const w of [...this.waiters]) w();
    }

    /** Waits until `pred()` is true; rejects with `what` after timeoutMs. */
    #waitUntil(pred, timeoutMs, what) {
        return new Promise((resolve, reject) => {
            const check = () => {
                let v;
                try {
                    v = pred();
                } catch (e) {
                    done();
                    reject(e);
                    return;
                }
                if (v !== undefined && v !== false) {
                    done();
                    resolve(v);
                }
            };
            const timer = setTimeout(() => {
                done();
                reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unparsed bytes: ${show(this.buf)}`));
            }, timeoutMs);
            const done = () => {
                clearTimeout(timer);
                this.waiters.delete(check);
            };
            this.waiters.add(check);
            check();
        });
    }

    write(data) {
        return new Promise((resolve, reject) => {
            if (this.sock.destroyed || this.sock.writableEnded) {
                reject(new Error('write on a closed connection'));
                return;
            }
            this.sock.write(data, (e) => (e ? reject(e) : resolve()));
        });
    }

    async writeSlowly(data, pieceLen = 1) {
        const b = Buffer.from(data);
        for (let i = 0; i < b.length; i += pieceLen) await this.write(b.subarray(i, i + pieceLen));
    }

    /** Half-closes (sends FIN); the server should then finish and close. */
    end() {
        this.sock.end();
    }

    destroy() {
        this.sock.destroy();
    }

    pending() {
        return this.buf;
    }

    received() {
        return Buffer.concat(this.all);
    }

    /** Reads and removes one response. `method` matters only for HEAD (no body). */
    readResponse({ timeoutMs = 10000, method = 'GET' } = {}) {
        return this.#waitUntil(
            () => {
                const closedNow = this.isClosed || this.gotEnd;
                const r = parseResponse(this.buf, { method, eof: closedNow });
                if (r === null) {
                    if (closedNow) {
                        const why = this.error ? ` (${this.error.code || this.error.message})` : '';
                        throw new Error(`connection closed${why} before a complete response; unparsed bytes: ${show(this.buf)}`);
                    }
                    return undefined;
                }
                this.buf = this.buf.subarray(r.consumed);
                return r.response;
            },
            timeoutMs,
            'a response',
        );
    }

    /** Resolves when the server has closed the connection (FIN seen or socket closed/reset). */
    closed({ timeoutMs = 10000 } = {}) {
        return this.#waitUntil(
            () => (this.isClosed || this.gotEnd ? { error: this.error, gotEnd: this.gotEnd } : undefined),
            timeoutMs,
            'the server to close the connection',
        );
    }
}

function show(buf) {
    const s = buf.subarray(0, 600).toString('latin1');
    return JSON.stringify(s) + (buf.length > 600 ? `… (${buf.length} bytes)` : '');
}

/**
 * Parses one HTTP/1.x response from the start of `buf`. Returns null if more bytes are needed,
 * else { response, consumed }. Throws on a malformed response. `eof`: no more bytes will come
 * (completes a close-delimited body).
 */
export function parseResponse(buf, { method = 'GET', eof = false } = {}) {
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) {
        if (buf.length > 65536) throw new Error(`response head too long: ${show(buf)}`);
        return null;
    }
    const head = buf.subarray(0, headEnd).toString('latin1');
    const lines = head.split('\r\n');
    const sl = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!sl) throw new Error(`bad status line: ${JSON.stringify(lines[0])} in ${show(buf)}`);
    const headers = {};
    const rawHeaders = [];
    for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) throw new Error(`bad response header line: ${JSON.stringify(line)}`);
        const name = line.slice(0, i);
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new Error(`bad response header name: ${JSON.stringify(name)}`);
        const value = line.slice(i + 1).trim();
        rawHeaders.push([name, value]);
        const k = name.toLowerCase();
        headers[k] = k in headers ? `${headers[k]}, ${value}` : value;
    }
    const status = Number(sl[2]);
    let pos = headEnd + 4;
    let body;
    const noBody = method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
    if (noBody) {
        body = Buffer.alloc(0);
    } else if (headers['transfer-encoding'] !== undefined) {
        if (!/(^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'])) throw new Error(`unsupported transfer-encoding ${headers['transfer-encoding']}`);
        const parts = [];
        for (;;) {
            const le = buf.indexOf('\r\n', pos);
            if (le < 0) return null;
            const sizeLine = buf.subarray(pos, le).toString('latin1');
            const sm = /^([0-9a-fA-F]+)(;.*)?$/.exec(sizeLine);
            if (!sm) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
            const size = parseInt(sm[1], 16);
            pos = le + 2;
            if (size === 0) {
                // trailers, then an empty line
                for (;;) {
                    const te = buf.indexOf('\r\n', pos);
                    if (te < 0) return null;
                    const empty = te === pos;
                    pos = te + 2;
                    if (empty) break;
                }
                break;
            }
            if (buf.length < pos + size + 2) return null;
            parts.push(buf.subarray(pos, pos + size));
            if (buf.subarray(pos + size, pos + size + 2).toString('latin1') !== '\r\n') throw new Error('chunk not followed by CRLF');
            pos += size + 2;
        }
        body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
        if (!/^\d+$/.test(headers['content-length'])) throw new Error(`bad content-length ${JSON.stringify(headers['content-length'])}`);
        const n = Number(headers['content-length']);
        if (buf.length < pos + n) return null;
        body = buf.subarray(pos, pos + n);
        pos += n;
    } else {
        // close-delimited
        if (!eof) return null;
        body = buf.subarray(pos);
        pos = buf.length;
    }
    const text = body.toString('utf8');
    const response = {
        version: sl[1],
        status,
        reason: sl[3] ?? '',
        headers,
        rawHeaders,
        body: Buffer.from(body),
        text,
        json() {
            try {
                return JSON.parse(text);
            } catch (e) {
                throw new Error(`response body is not JSON (${e.message}): ${JSON.stringify(text)}`);
            }
        },
    };
    return { response, consumed: pos };
}

/** Opens a raw connection to 127.0.0.1:`port` (rejects on connect error or timeout). */
export function rawConnect(port, { host = '127.0.0.1', timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host });
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        sock.once('connect', () => {
            clearTimeout(timer);
            sock.removeListener('error', onError);
            resolve(new RawConn(sock));
        });
        const onError = (e) => {
            clearTimeout(timer);
            reject(e);
        };
        sock.once('error', onError);
    });
}

/** Builds request bytes. `headers` is an array of [name, value] or an object; adds Host unless present. */
export function buildRequest({ method = 'GET', path: p = '/', version = '1.1', headers = {}, body = null } = {}) {
    const hs = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    if (!hs.some(([k]) => k.toLowerCase() === 'host')) hs.unshift(['Host', '127.0.0.1']);
    if (body !== null && !hs.some(([k]) => ['content-length', 'transfer-encoding'].includes(k.toLowerCase()))) {
        hs.push(['Content-Length', String(Buffer.byteLength(body))]);
    }
    const head = `${method} ${p} HTTP/${version}\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    return body === null ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

/** One request (buildRequest options) on a fresh connection to `opts.connectHost` (default 127.0.0.1):`port`;
 * returns the response (the connection is then destroyed). */
export async function request(port, opts = {}) {
    const c = await rawConnect(port, { host: opts.connectHost ?? '127.0.0.1' });
    try {
        await c.write(buildRequest(opts));
        return await c.readResponse({ method: opts.method, timeoutMs: opts.timeoutMs ?? 10000 });
    } finally {
        c.destroy();
    }
}

/** Expects one response: the given status and (if given) an exact JSON body. Returns the response. */
export function checkJson(assert, res, status, body) {
    assert.equal(res.status, status, `status ${res.status} (expected ${status}); body: ${res.text}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/json\b/i, `content-type of the ${status} response`);
    assert.equal(Number(res.headers['content-length']), res.body.length, 'content-length matches the body');
    if (body !== undefined) assert.deepEqual(res.json(), body);
    return res;
}

/** Tries to connect until the connection is refused; resolves with the number of attempts. */
export async function waitUntilRefused(port, { timeoutMs = 10000, host = '127.0.0.1' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let attempts = 0;
    for (;;) {
        attempts++;
        const r = await new Promise((resolve) => {
            const s = net.connect({ port, host });
            s.once('connect', () => {
                s.destroy();
                resolve('connected');
            });
            s.once('error', (e) => resolve(e.code || e.message));
        });
        if (r === 'ECONNREFUSED') return attempts;
        if (Date.now() > deadline) throw new Error(`connections to port ${port} still accepted ${timeoutMs} ms later (last: ${r}, ${attempts} attempts)`);
        // Each attempt is a full connect round-trip, so this loop waits on socket events, not timers.
        await new Promise((resolve) => setImmediate(resolve));
    }
}

/** Parses Prometheus text: returns [{ name, labels: {k: v}, value }]. */
export function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
        if (!m) throw new Error(`bad metrics line: ${JSON.stringify(line)}`);
        const labels = {};
        if (m[2]) {
            const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
            let lm;
            let consumed = 0;
            while ((lm = re.exec(m[2])) !== null) {
                labels[lm[1]] = lm[2];
                consumed = re.lastIndex;
                if (re.lastIndex >= m[2].length) break;
            }
            if (consumed !== m[2].length) throw new Error(`bad labels in metrics line: ${JSON.stringify(line)}`);
        }
        out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
}

/** Sums the samples of `name` whose labels include all of `match`. */
export function metricSum(samples, name, match = {}) {
    let sum = 0;
    let found = 0;
    for (const s of samples) {
        if (s.name !== name) continue;
        if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) {
            sum += s.value;
            found++;
        }
    }
    return found ? sum : undefined;
}

export async function getMetrics(port) {
    const res = await request(port, { path: '/metrics' });
    if (res.status !== 200) throw new Error(`GET /metrics → ${res.status}: ${res.text}`);
    return { res, samples: parseMetrics(res.text) };
}

/** agentd_db_connections_up per shard, as an array indexed by shard number. */
export function dbConnectionsUp(samples) {
    const up = [];
    for (const s of samples) if (s.name === 'agentd_db_connections_up') up[Number(s.labels.shard)] = s.value;
    if (up.length === 0) throw new Error('agentd_db_connections_up is missing from /metrics');
    return Array.from(up, (v) => v ?? 0);
}

/**
 * Polls /metrics (`intervalMs` apart) until `pred(samples)` is true; resolves with the samples.
 * Rejects after `timeoutMs` (with `what` and the last values of the agentd_db_* series), or when
 * `exited` (a process's exit promise) settles first.
 */
export async function waitForMetrics(port, pred, { timeoutMs = 20000, intervalMs = 25, what = 'a metrics condition', exited = null } = {}) {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    if (exited) exited.then(() => (gone = true));
    for (;;) {
        if (gone) throw new Error(`agentd exited while waiting for ${what}`);
        const { samples } = await getMetrics(port);
        if (pred(samples)) return samples;
        if (Date.now() > deadline) {
            const db = samples.filter((x) => x.name.startsWith('agentd_db_')).map((x) => `${x.name}{shard="${x.labels.shard}"} ${x.value}`);
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last agentd_db_* values:\n${db.join('\n')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let x = a;
        x = Math.imul(x ^ (x >>> 15), x | 1);
        x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
        return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` in flight; rejects on the first failure. */
export async function pool(n, limit, fn) {
    let next = 0;
    const workers = [];
    for (let w = 0; w < Math.min(limit, n); w++) {
        workers.push(
            (async () => {
                while (next < n) await fn(next++);
            })(),
        );
    }
    await Promise.all(workers);
}

/** A TCP port that was free on `host` a moment ago (bind to 0, read, close). */
export function freePort(host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen({ port: 0, host, exclusive: true }, () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}
