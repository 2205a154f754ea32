// The store (PUT/GET/DELETE /store/items, POST /store/items/search, POST /store/namespaces): item
// shape, namespaces echoed exactly as written (LangGraph Platform, no Aegra scoping), search filters
// with operators and a real total, namespace listing, TTL refresh, expiry and the sweeper, and the
// 422 answers with their field paths. Every server here runs on its own fresh database.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { checkJson, request, startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';
import { expectIgnored } from './lib/threads-util.mjs';

const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)$/;

function send(port, method, path, body, headers = {}) {
    const opts = { method, path, headers: { 'Content-Type': 'application/json', ...headers } };
    if (body !== undefined) opts.body = typeof body === 'string' ? body : JSON.stringify(body);
    return request(port, opts);
}

const put = (port, item) => send(port, 'PUT', '/store/items', item);
const get = (port, ns, key, extra = '') =>
    send(port, 'GET', `/store/items?namespace=${encodeURIComponent(ns.join('.'))}&key=${encodeURIComponent(key)}${extra}`);
const del = (port, ns, key) => send(port, 'DELETE', '/store/items', { namespace: ns, key });
const search = (port, body) => send(port, 'POST', '/store/items/search', body);
const namespaces = (port, body) => send(port, 'POST', '/store/namespaces', body);

async function putOk(port, item) {
    const res = await put(port, item);
    assert.equal(res.status, 204, `PUT ${JSON.stringify(item).slice(0, 200)} → ${res.status} ${res.text}`);
    assert.equal(res.text, '');
    // RFC 9110 §8.6: a 204 carries no Content-Length (nor a content type for a body it does not have).
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['content-type'], undefined);
}

/** A GET of an item that is not there (or expired): 200 with the body null. */
function expectMissing(res) {
    checkJson(assert, res, 200);
    assert.equal(res.text, 'null');
}

/** Expects a 422 whose detail has an item at `loc` (and of `type`, when given); returns that item. */
function expect422(res, loc, type) {
    assert.equal(res.status, 422, `expected 422 at ${JSON.stringify(loc)}, got ${res.status} ${res.text}`);
    const body = res.json();
    assert.ok(Array.isArray(body.detail), `422 body without a detail list: ${res.text}`);
    const hit = body.detail.find((d) => JSON.stringify(d.loc) === JSON.stringify(loc) && (!type || d.type === type));
    assert.ok(hit, `no ${type ?? 'problem'} at ${JSON.stringify(loc)} in ${res.text}`);
    return hit;
}

/**
 * agentd (2 shards) on a new empty database. Resolves with { srv, url, stop() }; stop() disposes of
 * the server and drops the database. With `t` (a test context) stop runs in t.after.
 */
async function startOnFreshDb(t = null) {
    const db = await freshDatabase();
    let srv;
    try {
        srv = await startAgentd({ db: db.url, args: ['--shards', '2'], waitReady: true });
    } catch (e) {
        await db.drop();
        throw e;
    }
    const stop = async () => {
        try {
            await srv.dispose();
        } finally {
            await db.drop();
        }
    };
    if (t) t.after(stop);
    return { srv, url: db.url, stop };
}

/** The row's columns (psql unaligned, '|'-separated), or null when it is gone. */
async function row(url, ns, key, cols) {
    const nsLit = `ARRAY[${ns.map((l) => `'${l.replaceAll("'", "''")}'`).join(',')}]::text[]`;
    const out = await psql(url, `SELECT ${cols} FROM store_items WHERE namespace = ${nsLit} AND key = '${key}'`);
    return out === '' ? null : out.split('|');
}

describe('store items: put, get, delete', { timeout: 120000 }, () => {
    let srv;
    let url;
    let stop;
    before(async () => {
        ({ srv, url, stop } = await startOnFreshDb());
    });
    after(async () => {
        await stop?.();
    });

    it('PUT → 204 without a body; GET returns the item in the LangGraph shape', async () => {
        await putOk(srv.port, { namespace: ['users', 'u1'], key: 'prefs', value: { theme: 'dark', n: 1 } });
        const res = checkJson(assert, await get(srv.port, ['users', 'u1'], 'prefs'), 200);
        const item = res.json();
        assert.deepEqual(Object.keys(item).sort(), ['created_at', 'key', 'namespace', 'updated_at', 'value']);
        assert.deepEqual(item.namespace, ['users', 'u1'], 'the namespace comes back exactly as written');
        assert.equal(item.key, 'prefs');
        assert.deepEqual(item.value, { theme: 'dark', n: 1 });
        assert.match(item.created_at, TS_RE);
        assert.equal(item.created_at, item.updated_at);
    });

    it('PUT on an existing item replaces the value, keeps created_at and moves updated_at', async () => {
        await putOk(srv.port, { namespace: ['upd'], key: 'k', value: { v: 1, old: true } });
        const first = (await get(srv.port, ['upd'], 'k')).json();
        await putOk(srv.port, { namespace: ['upd'], key: 'k', value: { v: 2 } });
        const second = checkJson(assert, await get(srv.port, ['upd'], 'k'), 200).json();
        assert.deepEqual(second.value, { v: 2 }, 'the value is replaced, not merged');
        assert.equal(second.created_at, first.created_at);
        assert.ok(Date.parse(second.updated_at) >= Date.parse(first.updated_at));
        assert.notEqual(second.updated_at, first.updated_at);
    });

    it('values keep their numbers exactly as sent, and nested structure', async () => {
        const text = '{"namespace":["exact"],"key":"k","value":{"a":0.1,"b":1.00000000000000000001,"c":{"d":[1,"x",null,true]},"e":-0.5e-3}}';
        const res = await put(srv.port, text);
        assert.equal(res.status, 204, res.text);
        const got = checkJson(assert, await get(srv.port, ['exact'], 'k'), 200);
        assert.match(got.text, /"b": ?1\.00000000000000000001\b/, `precision lost: ${got.text}`);
        assert.deepEqual(got.json().value.c, { d: [1, 'x', null, true] });
    });

    it('labels with quotes, backslashes, braces, commas, spaces, "*", "NULL" and non-ASCII round-trip', async () => {
        const ns = ['we"ird', 'back\\slash', '{x,y}', 'sp ace', '*', 'NULL', 'ünï✓'];
        await putOk(srv.port, { namespace: ns, key: 'odd key/?&=', value: { ok: 1 } });
        const item = checkJson(assert, await get(srv.port, ns, 'odd key/?&='), 200).json();
        assert.deepEqual(item.namespace, ns);
        assert.equal(item.key, 'odd key/?&=');
        const found = checkJson(assert, await search(srv.port, { namespace_prefix: ns.slice(0, 3) }), 200).json();
        assert.deepEqual(found.items.map((i) => i.namespace), [ns]);
        const listed = checkJson(assert, await namespaces(srv.port, { prefix: ['we"ird'] }), 200).json();
        assert.deepEqual(listed.namespaces, [ns]);
        assert.equal((await del(srv.port, ns, 'odd key/?&=')).status, 204);
        expectMissing(await get(srv.port, ns, 'odd key/?&='));
    });

    it('GET of a missing item → 200 null (the SDK\'s getItem returns null); the namespace is part of the address', async () => {
        expectMissing(await get(srv.port, ['users', 'nobody'], 'prefs'));
        expectMissing(await get(srv.port, ['users'], 'prefs')); // a prefix of the namespace is another address
        expectMissing(await get(srv.port, ['users', 'u1', 'x'], 'prefs'));
    });

    it('DELETE → 204, the item is gone, and deleting again is still 204', async () => {
        await putOk(srv.port, { namespace: ['gone'], key: 'k', value: {} });
        const res = await del(srv.port, ['gone'], 'k');
        assert.equal(res.status, 204, res.text);
        assert.equal(res.text, '');
        expectMissing(await get(srv.port, ['gone'], 'k'));
        assert.equal((await del(srv.port, ['gone'], 'k')).status, 204);
        assert.equal(await row(url, ['gone'], 'k', 'key'), null);
    });

    it('a value of several megabytes is stored; a body over the limit is 413', async () => {
        const big = 'x'.repeat(6 << 20);
        await putOk(srv.port, { namespace: ['big'], key: 'k', value: { big } });
        const got = checkJson(assert, await get(srv.port, ['big'], 'k'), 200).json();
        assert.equal(got.value.big.length, big.length);
        const res = await put(srv.port, { namespace: ['big'], key: 'k2', value: { big: 'y'.repeat(11 << 20) } });
        assert.equal(res.status, 413, res.text.slice(0, 200));
    });

    it('PUT validation: 422 with the field path for every kind of bad input', async () => {
        const ok = { namespace: ['a'], key: 'k', value: {} };
        const cases = [
            [{ key: 'k', value: {} }, ['body', 'namespace'], 'missing'],
            [{ namespace: ['a'], value: {} }, ['body', 'key'], 'missing'],
            [{ namespace: ['a'], key: 'k' }, ['body', 'value'], 'missing'],
            [{ ...ok, namespace: [] }, ['body', 'namespace'], 'too_short'],
            [{ ...ok, namespace: 'a' }, ['body', 'namespace'], 'list_type'],
            [{ ...ok, namespace: ['a', 'b.c'] }, ['body', 'namespace', 1], 'value_error'],
            [{ ...ok, namespace: ['a', ''] }, ['body', 'namespace', 1], 'value_error'],
            [{ ...ok, namespace: ['a', 7] }, ['body', 'namespace', 1], 'string_type'],
            [{ ...ok, namespace: ['x'.repeat(600), 'y'.repeat(600)] }, ['body', 'namespace'], 'value_error'],
            [{ ...ok, key: '' }, ['body', 'key'], 'string_too_short'],
            [{ ...ok, key: 5 }, ['body', 'key'], 'string_type'],
            [{ ...ok, key: 'k'.repeat(1025) }, ['body', 'key'], 'string_too_long'],
            [{ ...ok, value: [1, 2] }, ['body', 'value'], 'dict_type'],
            [{ ...ok, value: 'text' }, ['body', 'value'], 'dict_type'],
            [{ ...ok, value: 3 }, ['body', 'value'], 'dict_type'],
            [{ ...ok, value: null }, ['body', 'value'], 'dict_type'],
            [{ ...ok, ttl: 0 }, ['body', 'ttl'], 'greater_than'],
            [{ ...ok, ttl: -5 }, ['body', 'ttl'], 'greater_than'],
            [{ ...ok, ttl: '5' }, ['body', 'ttl'], 'float_type'],
            [{ ...ok, ttl: 3e9 }, ['body', 'ttl'], 'less_than_equal'],
            [{ ...ok, index: true }, ['body', 'index'], 'value_error'],
            [{ ...ok, index: 'text' }, ['body', 'index'], 'value_error'],
            [[ok], ['body'], 'model_attributes_type'],
        ];
        for (const [body, loc, type] of cases) expect422(await put(srv.port, body), loc, type);
        expect422(await put(srv.port, '{"namespace": ["a"], "key": '), ['body', 28], 'json_invalid');
        expect422(await send(srv.port, 'PUT', '/store/items'), ['body'], 'missing');
        const deep = `{"namespace":["a"],"key":"k","value":${'{"a":'.repeat(300)}1${'}'.repeat(300)}}`;
        const res = await put(srv.port, deep);
        assert.equal(res.status, 422, res.text.slice(0, 300));
        assert.equal(res.json().detail[0].type, 'json_invalid');
        assert.equal(await row(url, ['a'], 'k', 'key'), null, 'nothing was written');
        await expectIgnored(assert, () => put(srv.port, { ...ok, metadata: {} }), () => put(srv.port, ok));
    });

    it('index: fields to embed; without an embedding index the item is stored unembedded; not a list of paths is 422', async () => {
        for (const index of [false, null, [], ['$'], ['text', 'meta.title']]) await putOk(srv.port, { namespace: ['ix'], key: 'k', value: { index }, index });
        assert.deepEqual(JSON.parse((await row(url, ['ix'], 'k', 'value'))[0]), { index: ['text', 'meta.title'] });
        for (const index of [true, 'text', [1]]) expect422(await put(srv.port, { namespace: ['ix'], key: 'k', value: {}, index }), ['body', 'index'], 'value_error');
    });

    it('GET validation: query parameters with their path', async () => {
        const q = (s) => send(srv.port, 'GET', `/store/items?${s}`);
        expect422(await q('key=k'), ['query', 'namespace'], 'missing');
        expect422(await send(srv.port, 'GET', '/store/items'), ['query', 'key'], 'missing');
        expect422(await q('namespace=a'), ['query', 'key'], 'missing');
        expect422(await q('namespace=a&key='), ['query', 'key'], 'string_too_short');
        expect422(await q('namespace=&key=k'), ['query', 'namespace', 0], 'value_error');
        expect422(await q('namespace=a..b&key=k'), ['query', 'namespace', 1], 'value_error');
        expect422(await q('namespace=a&key=k&refresh_ttl=maybe'), ['query', 'refresh_ttl'], 'bool_parsing');
        await expectIgnored(assert, () => q('namespace=a&key=k&limit=1'), () => q('namespace=a&key=k'));
        expect422(await q('namespace=a&key=k&key=j'), ['query', 'key'], 'value_error');
        expect422(await q('namespace=a&key=%zz'), ['query', 'key'], 'value_error');
        expect422(await q('namespace=a&key=%00'), ['query', 'key'], 'value_error');
        expect422(await q('namespace=a%ff&key=k'), ['query', 'namespace'], 'string_unicode');
        for (const v of ['true', 'false', '1', '0', 'YES', 'off']) {
            expectMissing(await q(`namespace=nope&key=k&refresh_ttl=${v}`));
        }
    });

    it('DELETE validation: a JSON body {namespace, key} is required', async () => {
        expect422(await send(srv.port, 'DELETE', '/store/items'), ['body'], 'missing');
        expect422(await send(srv.port, 'DELETE', '/store/items', { namespace: ['a'] }), ['body', 'key'], 'missing');
        expect422(await send(srv.port, 'DELETE', '/store/items', { key: 'k' }), ['body', 'namespace'], 'missing');
        expect422(await send(srv.port, 'DELETE', '/store/items', { namespace: [], key: 'k' }), ['body', 'namespace'], 'too_short');
        expect422(await send(srv.port, 'DELETE', '/store/items', { namespace: ['a.b'], key: 'k' }), ['body', 'namespace', 0], 'value_error');
        await expectIgnored(assert, () => send(srv.port, 'DELETE', '/store/items', { namespace: ['a'], key: 'k', x: 1 }), () => send(srv.port, 'DELETE', '/store/items', { namespace: ['a'], key: 'k' }));
        expect422(await send(srv.port, 'DELETE', '/store/items', '{"namespace":'), ['body', 13], 'json_invalid');
    });

    it('query parameters on the body routes are ignored (the body is the input)', async () => {
        const body = JSON.stringify({ namespace: ['q'], key: 'k', value: {} });
        await expectIgnored(assert, () => send(srv.port, 'PUT', '/store/items?ttl=5', body), () => send(srv.port, 'PUT', '/store/items', body));
        await expectIgnored(assert, () => send(srv.port, 'DELETE', '/store/items?key=k', { namespace: ['q'], key: 'k' }), () => send(srv.port, 'DELETE', '/store/items', { namespace: ['q'], key: 'k' }));
        await expectIgnored(assert, () => send(srv.port, 'POST', '/store/items/search?limit=1', { namespace_prefix: [] }), () => send(srv.port, 'POST', '/store/items/search', { namespace_prefix: [] }));
        await expectIgnored(assert, () => send(srv.port, 'POST', '/store/namespaces?x', {}), () => send(srv.port, 'POST', '/store/namespaces', {}));
    });

    it('other methods on the store paths → 405', async () => {
        assert.equal((await send(srv.port, 'POST', '/store/items', {})).status, 405);
        assert.equal((await send(srv.port, 'GET', '/store/items/search')).status, 405);
        assert.equal((await send(srv.port, 'GET', '/store/namespaces')).status, 405);
    });
});

describe('store search', { timeout: 120000 }, () => {
    let srv;
    const items = [
        // [namespace, key, value], put in this order (so updated_at grows along the list)
        [['docs', 'a'], 'd1', { type: 'article', n: 9, s: 'apple', meta: { lang: 'en', tags: ['x', 'y'] }, f: 0.1 }],
        [['docs', 'a'], 'd2', { type: 'note', n: 10, s: 'banana', meta: { lang: 'fr' } }],
        [['docs', 'b'], 'd3', { type: 'article', n: 100, s: 'cherry', meta: { lang: 'en', tags: ['y'] }, f: 0.30000000000000004 }],
        [['docs'], 'd4', { type: 'article', n: 'ten', opt: null }],
        [['docsx'], 'd5', { type: 'article', n: 50 }],
        [['other'], 'o1', { type: 'article', n: 1 }],
    ];
    let stop;
    before(async () => {
        ({ srv, stop } = await startOnFreshDb());
        for (const [namespace, key, value] of items) await putOk(srv.port, { namespace, key, value });
    });
    after(async () => {
        await stop?.();
    });

    const keys = (res) => res.json().items.map((i) => i.key);

    it('a prefix matches whole labels, newest update first, items carry score null, total counts every match', async () => {
        const res = checkJson(assert, await search(srv.port, { namespace_prefix: ['docs'] }), 200);
        const body = res.json();
        assert.deepEqual(Object.keys(body).sort(), ['items', 'total']);
        assert.deepEqual(keys(res), ['d4', 'd3', 'd2', 'd1'], '["docsx"] is not under ["docs"]');
        assert.equal(body.total, 4);
        const it0 = body.items[0];
        assert.deepEqual(Object.keys(it0).sort(), ['created_at', 'key', 'namespace', 'score', 'updated_at', 'value']);
        assert.equal(it0.score, null);
        assert.deepEqual(it0.namespace, ['docs']);
        assert.match(it0.updated_at, TS_RE);
        assert.deepEqual(keys(await search(srv.port, { namespace_prefix: ['docs', 'a'] })), ['d2', 'd1']);
        assert.deepEqual(keys(await search(srv.port, { namespace_prefix: ['docs', 'a', 'zz'] })), []);
        assert.equal((await search(srv.port, { namespace_prefix: [] })).json().total, 6, 'an empty prefix is the whole store');
    });

    it('limit and offset page through the matches; total stays the count of all of them', async () => {
        const p1 = (await search(srv.port, { namespace_prefix: ['docs'], limit: 2 })).json();
        const p2 = (await search(srv.port, { namespace_prefix: ['docs'], limit: 2, offset: 2 })).json();
        const p3 = (await search(srv.port, { namespace_prefix: ['docs'], limit: 2, offset: 10 })).json();
        assert.deepEqual(p1.items.map((i) => i.key), ['d4', 'd3']);
        assert.deepEqual(p2.items.map((i) => i.key), ['d2', 'd1']);
        assert.deepEqual(p3.items, []);
        assert.deepEqual([p1.total, p2.total, p3.total], [4, 4, 4]);
    });

    it('filter by value: exact top-level values, nested objects and arrays by containment', async () => {
        const f = async (filter, prefix = ['docs']) => keys(await search(srv.port, { namespace_prefix: prefix, filter }));
        assert.deepEqual(await f({ type: 'article' }), ['d4', 'd3', 'd1']);
        assert.deepEqual(await f({ type: 'article', n: 9 }), ['d1']);
        assert.deepEqual(await f({ meta: { lang: 'en' } }), ['d3', 'd1']);
        assert.deepEqual(await f({ meta: { tags: ['x'] } }), ['d1']);
        assert.deepEqual(await f({ opt: null }), ['d4']);
        assert.deepEqual(await f({ f: 0.1 }), ['d1'], 'decimal numbers compare exactly');
        assert.deepEqual(await f({ f: 0.30000000000000004 }), ['d3']);
        assert.deepEqual(await f({ type: 'missing' }), []);
        assert.deepEqual(await f({}), ['d4', 'd3', 'd2', 'd1']);
        assert.deepEqual(await f(null), ['d4', 'd3', 'd2', 'd1']);
        const res = (await search(srv.port, { namespace_prefix: [], filter: { type: 'article' }, limit: 1 })).json();
        assert.equal(res.items.length, 1);
        assert.equal(res.total, 5, 'total counts the filtered matches, not the page');
    });

    it('filter operators $eq $ne $gt $gte $lt $lte compare JSON values (numbers as numbers, same types only)', async () => {
        const f = async (filter) => keys(await search(srv.port, { namespace_prefix: ['docs'], filter }));
        assert.deepEqual(await f({ n: { $eq: 10 } }), ['d2']);
        assert.deepEqual(await f({ n: { $gt: 9 } }), ['d3', 'd2'], 'numeric, not text order; "ten" is not a number');
        assert.deepEqual(await f({ n: { $gte: 9 } }), ['d3', 'd2', 'd1']);
        assert.deepEqual(await f({ n: { $lt: 100 } }), ['d2', 'd1']);
        assert.deepEqual(await f({ n: { $lte: 100, $gt: 9 } }), ['d3', 'd2'], 'several operators on one field all apply');
        assert.deepEqual(await f({ n: { $ne: 10 } }), ['d4', 'd3', 'd1']);
        assert.deepEqual(await f({ s: { $lt: 'banana' } }), ['d1']);
        assert.deepEqual(await f({ s: { $gte: 'banana' } }), ['d3', 'd2']);
        assert.deepEqual(await f({ nothere: { $ne: 1 } }), ['d4', 'd3', 'd2', 'd1'], 'a missing field differs from any value');
        assert.deepEqual(await f({ meta: { $eq: { lang: 'fr' } } }), ['d2'], '$eq is equality, not containment');
        assert.deepEqual(await f({ type: 'article', n: { $gt: 50 } }), ['d3'], 'values and operators combine');
    });

    it('filter keys and values are data, never SQL', async () => {
        const evil = { "x' OR '1'='1": 1, 'y"); DROP TABLE store_items; --': { $gt: "'; SELECT 1; --" } };
        const res = checkJson(assert, await search(srv.port, { namespace_prefix: [], filter: evil }), 200);
        assert.deepEqual(res.json(), { items: [], total: 0 });
        assert.equal((await search(srv.port, { namespace_prefix: [] })).json().total, 6);
    });

    it('limit defaults to 10', async (t) => {
        const { srv: s2 } = await startOnFreshDb(t);
        for (let i = 0; i < 12; i++) await putOk(s2.port, { namespace: ['many'], key: `k${String(i).padStart(2, '0')}`, value: { i } });
        const res = (await search(s2.port, { namespace_prefix: ['many'] })).json();
        assert.equal(res.items.length, 10);
        assert.equal(res.total, 12);
        assert.equal(res.items[0].key, 'k11');
        assert.equal((await search(s2.port, { namespace_prefix: ['many'], limit: 1000 })).json().items.length, 12);
    });

    it('query ranks nothing without an embedding index: the same items as without it, score null', async () => {
        const plain = await search(srv.port, { namespace_prefix: [], limit: 5 });
        assert.equal(plain.status, 200);
        for (const query of ['fruit', '', null]) {
            const res = await search(srv.port, { namespace_prefix: [], limit: 5, query });
            assert.equal(res.status, 200);
            assert.deepEqual(res.json().items, plain.json().items);
            for (const it of res.json().items) assert.equal(it.score, null);
        }
    });

    it('search validation: 422 with the field path', async () => {
        const cases = [
            [{}, ['body', 'namespace_prefix'], 'missing'],
            [{ namespace_prefix: 'docs' }, ['body', 'namespace_prefix'], 'list_type'],
            [{ namespace_prefix: ['docs', 'a.b'] }, ['body', 'namespace_prefix', 1], 'value_error'],
            [{ namespace_prefix: [''] }, ['body', 'namespace_prefix', 0], 'value_error'],
            [{ namespace_prefix: [], limit: 0 }, ['body', 'limit'], 'greater_than_equal'],
            [{ namespace_prefix: [], limit: 1001 }, ['body', 'limit'], 'less_than_equal'],
            [{ namespace_prefix: [], limit: '5' }, ['body', 'limit'], 'int_type'],
            [{ namespace_prefix: [], offset: -1 }, ['body', 'offset'], 'greater_than_equal'],
            [{ namespace_prefix: [], filter: [] }, ['body', 'filter'], 'dict_type'],
            [{ namespace_prefix: [], filter: { n: { $in: [1] } } }, ['body', 'filter', 'n', '$in'], 'value_error'],
            [{ namespace_prefix: [], filter: { n: { $gt: 1, plain: 2 } } }, ['body', 'filter', 'n', 'plain'], 'value_error'],
            [{ namespace_prefix: [], filter: { $or: [] } }, ['body', 'filter', '$or'], 'value_error'],
            [{ namespace_prefix: [], query: 5 }, ['body', 'query'], 'string_type'],
            [{ namespace_prefix: [], refresh_ttl: 'yes' }, ['body', 'refresh_ttl'], 'bool_type'],
        ];
        for (const [body, loc, type] of cases) expect422(await search(srv.port, body), loc, type);
        await expectIgnored(assert, () => search(srv.port, { namespace_prefix: [], page: 2 }), () => search(srv.port, { namespace_prefix: [] }));
        expect422(await search(srv.port, '{"namespace_prefix":[}'), ['body', 22], 'json_invalid');
        expect422(await send(srv.port, 'POST', '/store/items/search'), ['body'], 'missing');
    });
});

describe('store namespaces', { timeout: 120000 }, () => {
    let srv;
    const all = [['a'], ['a', 'b'], ['a', 'b', 'c'], ['a', 'x', 'c'], ['ab'], ['b', 'c'], ['z', 'b', 'c', 'd']];
    let stop;
    before(async () => {
        ({ srv, stop } = await startOnFreshDb());
        for (const ns of all) {
            await putOk(srv.port, { namespace: ns, key: 'k1', value: {} });
            await putOk(srv.port, { namespace: ns, key: 'k2', value: {} });
        }
    });
    after(async () => {
        await stop?.();
    });

    const list = async (body) => checkJson(assert, await namespaces(srv.port, body), 200).json().namespaces;

    it('lists every namespace once, sorted label by label', async () => {
        assert.deepEqual(await list({}), all);
        assert.deepEqual(await list({ prefix: null, suffix: null, max_depth: null }), all);
    });

    it('prefix and suffix match whole labels; "*" matches any label', async () => {
        assert.deepEqual(await list({ prefix: ['a'] }), [['a'], ['a', 'b'], ['a', 'b', 'c'], ['a', 'x', 'c']]);
        assert.deepEqual(await list({ prefix: ['a', 'b'] }), [['a', 'b'], ['a', 'b', 'c']]);
        assert.deepEqual(await list({ suffix: ['c'] }), [['a', 'b', 'c'], ['a', 'x', 'c'], ['b', 'c']]);
        assert.deepEqual(await list({ suffix: ['b', 'c'] }), [['a', 'b', 'c'], ['b', 'c']]);
        assert.deepEqual(await list({ prefix: ['a'], suffix: ['c'] }), [['a', 'b', 'c'], ['a', 'x', 'c']]);
        assert.deepEqual(await list({ prefix: ['a', '*', 'c'] }), [['a', 'b', 'c'], ['a', 'x', 'c']]);
        assert.deepEqual(await list({ prefix: ['*', 'b'] }), [['a', 'b'], ['a', 'b', 'c'], ['z', 'b', 'c', 'd']]);
        assert.deepEqual(await list({ suffix: ['*', 'c', '*'] }), [['z', 'b', 'c', 'd']]);
        assert.deepEqual(await list({ prefix: ['nothing'] }), []);
    });

    it('max_depth cuts namespaces to that many labels and removes the duplicates', async () => {
        assert.deepEqual(await list({ max_depth: 1 }), [['a'], ['ab'], ['b'], ['z']]);
        assert.deepEqual(await list({ max_depth: 2, prefix: ['a'] }), [['a'], ['a', 'b'], ['a', 'x']]);
        assert.deepEqual(await list({ max_depth: 2, suffix: ['c'] }), [['a', 'b'], ['a', 'x'], ['b', 'c']]);
    });

    it('limit and offset page through the sorted list; limit defaults to 100', async (t) => {
        assert.deepEqual(await list({ limit: 2 }), all.slice(0, 2));
        assert.deepEqual(await list({ limit: 3, offset: 2 }), all.slice(2, 5));
        assert.deepEqual(await list({ offset: 100 }), []);
        const { srv: s2 } = await startOnFreshDb(t);
        for (let i = 0; i < 105; i++) await putOk(s2.port, { namespace: ['n', String(i).padStart(3, '0')], key: 'k', value: {} });
        const got = checkJson(assert, await namespaces(s2.port, {}), 200).json().namespaces;
        assert.equal(got.length, 100);
        assert.deepEqual(got[99], ['n', '099']);
        assert.equal(checkJson(assert, await namespaces(s2.port, { limit: 1000 }), 200).json().namespaces.length, 105);
    });

    it('namespaces validation: 422 with the field path', async () => {
        const cases = [
            [{ prefix: 'a' }, ['body', 'prefix'], 'list_type'],
            [{ prefix: ['a.b'] }, ['body', 'prefix', 0], 'value_error'],
            [{ suffix: ['c', ''] }, ['body', 'suffix', 1], 'value_error'],
            [{ suffix: [1] }, ['body', 'suffix', 0], 'string_type'],
            [{ max_depth: 0 }, ['body', 'max_depth'], 'greater_than_equal'],
            [{ max_depth: 'x' }, ['body', 'max_depth'], 'int_type'],
            [{ limit: 0 }, ['body', 'limit'], 'greater_than_equal'],
            [{ limit: 1001 }, ['body', 'limit'], 'less_than_equal'],
            [{ offset: -1 }, ['body', 'offset'], 'greater_than_equal'],
            [[], ['body'], 'model_attributes_type'],
        ];
        for (const [body, loc, type] of cases) expect422(await namespaces(srv.port, body), loc, type);
        await expectIgnored(assert, () => namespaces(srv.port, { depth: 1 }), () => namespaces(srv.port, {}));
        expect422(await namespaces(srv.port, '{"prefix"'), ['body', 9], 'json_invalid');
    });
});

describe('store TTL: refresh, expiry, sweep', { timeout: 120000 }, () => {
    let srv;
    let url;
    let stop;
    before(async () => {
        ({ srv, url, stop } = await startOnFreshDb());
    });
    after(async () => {
        await stop?.();
    });

    /** Seconds from now until the item expires (null: no TTL), and its ttl_minutes. */
    async function ttlOf(ns, key) {
        const r = await row(url, ns, key, "extract(epoch from expires_at - now()), coalesce(ttl_minutes::text, '')");
        assert.ok(r, `no row for ${ns}/${key}`);
        return { left: r[0] === '' ? null : Number(r[0]), minutes: r[1] === '' ? null : Number(r[1]) };
    }
    const setLeft = (ns, key, seconds) =>
        psql(url, `UPDATE store_items SET expires_at = now() + interval '${seconds} seconds' WHERE namespace = ARRAY['${ns.join("','")}']::text[] AND key = '${key}'`);

    it('ttl (minutes) sets the expiry; a fractional ttl is honoured; a put without ttl clears it', async () => {
        await putOk(srv.port, { namespace: ['ttl'], key: 'a', value: {}, ttl: 2 });
        let t = await ttlOf(['ttl'], 'a');
        assert.equal(t.minutes, 2);
        assert.ok(t.left > 110 && t.left <= 120, `expires in ${t.left} s`);
        await putOk(srv.port, { namespace: ['ttl'], key: 'b', value: {}, ttl: 0.5 });
        t = await ttlOf(['ttl'], 'b');
        assert.ok(t.left > 20 && t.left <= 30, `expires in ${t.left} s`);
        await putOk(srv.port, { namespace: ['ttl'], key: 'a', value: {}, ttl: null });
        t = await ttlOf(['ttl'], 'a');
        assert.deepEqual(t, { left: null, minutes: null });
    });

    it('GET refreshes the TTL by default, not with refresh_ttl=false', async () => {
        await putOk(srv.port, { namespace: ['ttl'], key: 'g', value: {}, ttl: 1 });
        await setLeft(['ttl'], 'g', 10);
        assert.equal((await get(srv.port, ['ttl'], 'g', '&refresh_ttl=false')).status, 200);
        assert.ok((await ttlOf(['ttl'], 'g')).left <= 10, 'refresh_ttl=false leaves it');
        assert.equal((await get(srv.port, ['ttl'], 'g')).status, 200);
        assert.ok((await ttlOf(['ttl'], 'g')).left > 50, 'the default refreshes it to a full minute');
        await setLeft(['ttl'], 'g', 10);
        assert.equal((await get(srv.port, ['ttl'], 'g', '&refresh_ttl=true')).status, 200);
        assert.ok((await ttlOf(['ttl'], 'g')).left > 50);
    });

    it('search refreshes the TTL of the items it returns, unless refresh_ttl is false', async () => {
        await putOk(srv.port, { namespace: ['ttls'], key: 's', value: {}, ttl: 1 });
        await setLeft(['ttls'], 's', 10);
        assert.equal((await search(srv.port, { namespace_prefix: ['ttls'], refresh_ttl: false })).json().total, 1);
        assert.ok((await ttlOf(['ttls'], 's')).left <= 10);
        assert.equal((await search(srv.port, { namespace_prefix: ['ttls'] })).json().total, 1);
        assert.ok((await ttlOf(['ttls'], 's')).left > 50);
    });

    it('an expired item disappears from get, search and namespaces at once, and the sweeper deletes it', async () => {
        await putOk(srv.port, { namespace: ['exp', 'x'], key: 'dead', value: { k: 1 }, ttl: 5 });
        await putOk(srv.port, { namespace: ['exp', 'y'], key: 'alive', value: { k: 1 }, ttl: 5 });
        await psql(url, "UPDATE store_items SET expires_at = now() - interval '1 second' WHERE key = 'dead'");
        expectMissing(await get(srv.port, ['exp', 'x'], 'dead'));
        const found = (await search(srv.port, { namespace_prefix: ['exp'], filter: { k: 1 } })).json();
        assert.deepEqual(found.items.map((i) => i.key), ['alive']);
        assert.equal(found.total, 1);
        assert.deepEqual((await namespaces(srv.port, { prefix: ['exp'] })).json().namespaces, [['exp', 'y']]);
        assert.equal((await get(srv.port, ['exp', 'y'], 'alive')).status, 200);
        // The sweeper runs every few seconds on shard 0: poll the table until the row is gone.
        const deadline = Date.now() + 30000;
        while ((await row(url, ['exp', 'x'], 'dead', 'key')) !== null) {
            assert.ok(Date.now() < deadline, 'the expired row was not swept within 30 s');
            await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(await row(url, ['exp', 'y'], 'alive', 'key'), 'a live item is not swept');
    });
});

describe('store under concurrent writes to the same items', { timeout: 120000 }, () => {
    it('puts and deletes racing on a few items across 4 shards all succeed, with no deadlock', async (t) => {
        const db = await freshDatabase();
        t.after(() => db.drop());
        const srv = await startAgentd({ db: db.url, args: ['--shards', '4'], waitReady: true, t });
        // Writes of one loop turn share a transaction, so without the per-item gate (sql_store.def)
        // groups writing the same items in different orders deadlock (Postgres detects it after 1 s).
        const ops = [];
        for (let i = 0; i < 400; i++) {
            const key = `k${(i * 7919) % 4}`;
            const h = { 'content-type': 'application/json' };
            ops.push(
                i % 3 === 2
                    ? fetch(`${srv.url}/store/items`, { method: 'DELETE', headers: h, body: JSON.stringify({ namespace: ['hot'], key }) })
                    : fetch(`${srv.url}/store/items`, { method: 'PUT', headers: h, body: JSON.stringify({ namespace: ['hot'], key, value: { i }, ttl: 5 }) }),
            );
            if (i % 5 === 0) ops.push(fetch(`${srv.url}/store/items?namespace=hot&key=${key}`));
            if (i % 7 === 0) ops.push(fetch(`${srv.url}/store/items/search`, { method: 'POST', headers: h, body: JSON.stringify({ namespace_prefix: ['hot'] }) }));
        }
        const statuses = {};
        for (const res of await Promise.all(ops)) {
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
            await res.arrayBuffer();
        }
        assert.deepEqual(Object.keys(statuses).filter((s) => !['200', '204', '404'].includes(s)), [], JSON.stringify(statuses));
        assert.equal(await psql(db.url, 'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()'), '0');
        // Every key ends as its last applied write left it: present with a value, or absent.
        for (let k = 0; k < 4; k++) {
            const res = await get(srv.port, ['hot'], `k${k}`);
            assert.ok([200, 404].includes(res.status), res.text);
        }
    });
});

describe('store without a database', { timeout: 60000 }, () => {
    it('answers 503 with Retry-After, and still validates first', async (t) => {
        const srv = await startAgentd({ db: false, t });
        const res = await put(srv.port, { namespace: ['a'], key: 'k', value: {} });
        assert.equal(res.status, 503, res.text);
        assert.equal(res.headers['retry-after'], '1');
        expect422(await put(srv.port, { namespace: ['a'], key: 'k', value: 1 }), ['body', 'value'], 'dict_type');
    });
});
