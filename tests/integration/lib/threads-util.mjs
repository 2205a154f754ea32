// Helpers shared by the threads integration tests (threads*.test.mjs).
import { randomUUID } from 'node:crypto';

import { buildRequest, request } from './harness.mjs';

/** The owner shard of a thread id, as protocol/owner.c computes it: FNV-1a 64 of the bytes, ASCII case folded. */
export function ownerShard(id, n) {
    let h = 0xcbf29ce484222325n;
    for (const b of Buffer.from(id)) {
        h ^= BigInt(b >= 0x41 && b <= 0x5a ? b + 32 : b);
        h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    return Number(h % BigInt(n));
}

/** A random UUID owned by `shard` of `n`. */
export function uuidOwnedBy(shard, n) {
    for (;;) {
        const id = randomUUID();
        if (ownerShard(id, n) === shard) return id;
    }
}

/**
 * One JSON request on a fresh connection: body (an object, or a raw string) is sent with
 * Content-Type application/json. Resolves with { status, headers, text, json } (json: parsed body
 * or null when empty).
 */
export async function call(port, method, path, body, headers = {}) {
    const b = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
    const h = b === null ? { ...headers } : { 'Content-Type': 'application/json', ...headers };
    const res = await request(port, { method, path, headers: h, body: b });
    return wrap(res);
}

/** The same over an open RawConn (keep-alive). */
export async function callOn(conn, method, path, body, headers = {}) {
    const b = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
    const h = b === null ? { ...headers } : { 'Content-Type': 'application/json', ...headers };
    await conn.write(buildRequest({ method, path, headers: h, body: b }));
    return wrap(await conn.readResponse({ method, timeoutMs: 20000 }));
}

function wrap(res) {
    let json = null;
    if (res.text) {
        try {
            json = JSON.parse(res.text);
        } catch {
            json = undefined;
        }
    }
    return { status: res.status, headers: res.headers, text: res.text, json };
}

/** Asserts a 422 Pydantic-shaped body holding a problem of `type` at `loc` (other problems may be there too;
 * '*' in loc matches any segment, e.g. the offset of a JSON syntax error). */
export function expect422(assert, res, loc, type) {
    assert.equal(res.status, 422, `expected 422 at ${JSON.stringify(loc)}, got ${res.status}: ${res.text}`);
    assert.ok(Array.isArray(res.json?.detail), `422 body has a detail array: ${res.text}`);
    const same = (a, b) => a.length === b.length && a.every((x, i) => b[i] === '*' || x === b[i]);
    const hit = res.json.detail.find((d) => same(d.loc, loc));
    assert.ok(hit, `no problem at ${JSON.stringify(loc)} in ${res.text}`);
    if (type) assert.equal(hit.type, type, `problem type at ${JSON.stringify(loc)}: ${res.text}`);
    for (const d of res.json.detail) {
        assert.equal(typeof d.msg, 'string');
        assert.ok('input' in d, `every problem carries input: ${res.text}`);
    }
    return hit;
}

/** The keys every Thread object has. */
export const THREAD_KEYS = ['thread_id', 'created_at', 'updated_at', 'state_updated_at', 'metadata', 'status', 'config', 'values', 'interrupts', 'error'].sort();

/** Asserts that t is a Thread object as the endpoints return it. */
export function assertThread(assert, t, extraKeys = []) {
    assert.deepEqual(Object.keys(t).sort(), [...THREAD_KEYS, ...extraKeys].sort(), `thread keys: ${JSON.stringify(t)}`);
    assert.match(t.thread_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    for (const k of ['created_at', 'updated_at', 'state_updated_at']) {
        assert.match(t[k], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/, `${k} is ISO-8601 UTC: ${t[k]}`);
    }
    assert.ok(['idle', 'busy', 'interrupted', 'error'].includes(t.status));
    assert.equal(typeof t.metadata, 'object');
    assert.equal(t.error, null);
}

/** The unknown-field rule: a body field or query parameter the server does not know is ignored (clients
 * add fields), so a request with one answers as the same request without it: the same status, and no
 * problem about the field. Both are functions making the request (run one after the other). */
export async function expectIgnored(assert, withUnknown, without) {
    const a = await withUnknown();
    const b = await without();
    assert.equal(a.status, b.status, `an unknown field changed the answer: ${a.status} ${a.text}; without it: ${b.status} ${b.text}`);
    assert.ok(!a.text.includes('extra_forbidden'), `an unknown field was refused: ${a.text}`);
    return a;
}
