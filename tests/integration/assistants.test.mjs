// Assistants: every route of protocol.md §3 against a real Postgres, success and error statuses.
//
// Each group runs its own agentd on a fresh database (lib/pg.mjs freshDatabase), so counts and
// searches see only what the group wrote. The last group runs two shards.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { checkJson, request, startAgentd } from './lib/harness.mjs';
import { freshDatabase, psql } from './lib/pg.mjs';

const SYSTEM = {
    echo: '046b5dc7-2108-582c-9c6c-31d556d138f0',
    stress: 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b',
    interrupt: '2e6b29d1-4009-5fcc-9319-4cffb1865dfe',
};
const FIELDS = ['assistant_id', 'graph_id', 'config', 'context', 'created_at', 'updated_at', 'metadata', 'version', 'name', 'description'];
const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/;

/** One request; an object body is sent as JSON, a string as is. */
function api(port, method, path, body) {
    const opts = { method, path, headers: {} };
    if (body !== undefined) {
        opts.body = typeof body === 'string' ? body : JSON.stringify(body);
        opts.headers['Content-Type'] = 'application/json';
    }
    return request(port, opts);
}

/** Expects a 422 whose detail has an item at `loc` (and of `type`, if given). Returns the item. */
function check422(res, loc, type) {
    checkJson(assert, res, 422);
    const items = res.json().detail;
    assert.ok(Array.isArray(items), res.text);
    const item = items.find((d) => JSON.stringify(d.loc) === JSON.stringify(loc) && (!type || d.type === type));
    assert.ok(item, `no ${type ?? 'problem'} at ${JSON.stringify(loc)} in ${res.text}`);
    return item;
}

/** Expects a 422 for a body that is not JSON: json_invalid at ["body", <offset>]. */
function checkBadJson(res) {
    checkJson(assert, res, 422);
    const items = res.json().detail;
    assert.ok(items.some((d) => d.type === 'json_invalid' && d.loc[0] === 'body' && Number.isInteger(d.loc[1])), res.text);
}

/** A request with a field or parameter the server does not know: it is ignored (clients add fields), so the
 * answer is the one without it. Returns the parsed body. */
function ignored(res, status) {
    assert.equal(res.status, status, `unknown fields are ignored: expected ${status}, got ${res.status} ${res.text}`);
    return res.json();
}

/** Expects {"error": code, "message": matching msg}. */
function checkError(res, status, msg) {
    checkJson(assert, res, status);
    const b = res.json();
    assert.equal(typeof b.error, 'string');
    assert.match(b.message, msg);
    return b;
}

function assertAssistant(a) {
    assert.deepEqual(Object.keys(a).sort(), [...FIELDS].sort(), JSON.stringify(a));
    assert.match(a.created_at, TS);
    assert.match(a.updated_at, TS);
}

/**
 * Registers before/after hooks of the enclosing describe: agentd (with `args`) on a fresh database.
 * Returns an object that holds { srv, db, port } once the before hook ran.
 */
function server(args = []) {
    const ctx = {};
    const cleanups = [];
    const t = { after: (fn) => cleanups.push(fn) };
    before(async () => {
        const { url } = await freshDatabase({ t });
        ctx.srv = await startAgentd({ db: url, args, t, waitReady: true });
        ctx.db = url;
        ctx.port = ctx.srv.port;
    });
    after(async () => {
        for (const fn of cleanups.reverse()) await fn();
    });
    return ctx;
}

describe('system assistants', () => {
    const ctx = server();

    it('every registered graph has one, addressed by its UUID5 or by its graph id', async () => {
        for (const [graph, id] of Object.entries(SYSTEM)) {
            for (const path of [`/assistants/${id}`, `/assistants/${graph}`]) {
                const a = checkJson(assert, await api(ctx.port, 'GET', path), 200).json();
                assertAssistant(a);
                assert.equal(a.assistant_id, id);
                assert.equal(a.graph_id, graph);
                assert.equal(a.name, graph);
                assert.equal(a.description, null);
                assert.equal(a.version, 1);
                assert.deepEqual(a.config, {});
                assert.deepEqual(a.context, {});
                assert.deepEqual(a.metadata, { created_by: 'system' });
            }
        }
        const owners = await psql(ctx.db, "SELECT string_agg(owner || ':' || version, ',' ORDER BY graph_id) FROM assistants");
        assert.equal(owners, 'system:1,system:1,system:1');
    });

    it('they cannot be changed, re-pinned or deleted (403)', async () => {
        for (const path of ['/assistants/echo', `/assistants/${SYSTEM.stress}`]) {
            checkError(await api(ctx.port, 'PATCH', path, { name: 'x' }), 403, /system assistant/);
            checkError(await api(ctx.port, 'POST', `${path}/latest`, { version: 1 }), 403, /system assistant/);
            checkError(await api(ctx.port, 'DELETE', path), 403, /system assistant/);
        }
        const a = checkJson(assert, await api(ctx.port, 'GET', '/assistants/echo'), 200).json();
        assert.equal(a.name, 'echo');
        assert.equal(a.version, 1);
    });

    it('the seed is idempotent: a restart on the same database adds nothing', async (t) => {
        const again = await startAgentd({ db: ctx.db, t, waitReady: true });
        checkJson(assert, await api(again.port, 'GET', '/assistants/interrupt'), 200);
        assert.equal(await psql(ctx.db, 'SELECT count(*) FROM assistants'), '3');
        assert.equal(await psql(ctx.db, 'SELECT count(*) FROM assistant_versions WHERE version = 1'), '3');
        await again.stop();
    });

    it('GET /info advertises the assistants API', async () => {
        assert.equal(checkJson(assert, await api(ctx.port, 'GET', '/info'), 200).json().flags.assistants, true);
    });

    it('their versions can be listed', async () => {
        const v = checkJson(assert, await api(ctx.port, 'POST', '/assistants/echo/versions', {}), 200).json();
        assert.equal(v.length, 1);
        assert.equal(v[0].assistant_id, SYSTEM.echo);
        assert.equal(v[0].version, 1);
        assert.deepEqual(v[0].metadata, { created_by: 'system' });
        assert.equal(v[0].updated_at, undefined);
    });
});

describe('create and get', () => {
    const ctx = server();

    it('creates with defaults: a UUID id, name Untitled, version 1, empty config/context/metadata', async () => {
        const a = checkJson(assert, await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo' }), 200).json();
        assertAssistant(a);
        assert.match(a.assistant_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.equal(a.name, 'Untitled');
        assert.equal(a.description, null);
        assert.equal(a.version, 1);
        assert.equal(a.created_at, a.updated_at);
        assert.deepEqual([a.config, a.context, a.metadata], [{}, {}, {}]);
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'GET', `/assistants/${a.assistant_id}`), 200).json(), a);
        assert.equal(await psql(ctx.db, `SELECT owner || ':' || count(*) FROM assistant_versions v JOIN assistants USING (assistant_id) WHERE assistant_id = '${a.assistant_id}' GROUP BY owner`), 'anonymous:1');
    });

    it('keeps every given field; configurable is mirrored into context', async () => {
        const body = {
            assistant_id: 'client-chosen-1',
            graph_id: 'stress',
            name: 'fast',
            description: 'ten tokens',
            config: { configurable: { tokens: 3 }, tags: ['a'], recursion_limit: 5 },
            metadata: { team: 'x', n: 1 },
            if_exists: 'raise',
        };
        const a = checkJson(assert, await api(ctx.port, 'POST', '/assistants', body), 200).json();
        assert.equal(a.assistant_id, 'client-chosen-1');
        assert.equal(a.graph_id, 'stress');
        assert.equal(a.name, 'fast');
        assert.equal(a.description, 'ten tokens');
        assert.deepEqual(a.config, body.config);
        assert.deepEqual(a.context, { tokens: 3 });
        assert.deepEqual(a.metadata, body.metadata);
    });

    it('context alone is mirrored into config.configurable; both non-empty is a 400', async () => {
        const a = checkJson(assert, await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', context: { k: 1 }, config: { tags: ['t'] } }), 200).json();
        assert.deepEqual(a.config, { tags: ['t'], configurable: { k: 1 } });
        assert.deepEqual(a.context, { k: 1 });
        checkError(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', context: { k: 1 }, config: { configurable: { j: 2 } } }), 400, /both configurable and context/);
    });

    it('if_exists: raise answers 409, do_nothing returns the stored assistant unchanged', async () => {
        const first = checkJson(assert, await api(ctx.port, 'POST', '/assistants', { assistant_id: 'dup', graph_id: 'echo', name: 'one' }), 200).json();
        checkError(await api(ctx.port, 'POST', '/assistants', { assistant_id: 'dup', graph_id: 'echo', name: 'two' }), 409, /Assistant 'dup' already exists/);
        checkError(await api(ctx.port, 'POST', '/assistants', { assistant_id: 'dup', graph_id: 'echo', if_exists: 'raise' }), 409, /already exists/);
        const again = checkJson(assert, await api(ctx.port, 'POST', '/assistants', { assistant_id: 'dup', graph_id: 'stress', name: 'two', if_exists: 'do_nothing' }), 200).json();
        assert.deepEqual(again, first);
    });

    it('a graph id or a system UUID as assistant_id names the system assistant (409, or it with do_nothing)', async () => {
        checkError(await api(ctx.port, 'POST', '/assistants', { assistant_id: 'echo', graph_id: 'echo' }), 409, new RegExp(SYSTEM.echo));
        checkError(await api(ctx.port, 'POST', '/assistants', { assistant_id: SYSTEM.stress, graph_id: 'stress' }), 409, /already exists/);
        const a = checkJson(assert, await api(ctx.port, 'POST', '/assistants', { assistant_id: 'echo', graph_id: 'echo', if_exists: 'do_nothing' }), 200).json();
        assert.equal(a.assistant_id, SYSTEM.echo);
        assert.deepEqual(a.metadata, { created_by: 'system' });
    });

    it('an unknown graph is a 404 naming it', async () => {
        const b = checkError(await api(ctx.port, 'POST', '/assistants', { graph_id: 'nope' }), 404, /^Graph 'nope' not found$/);
        assert.equal(b.error, 'not_found');
    });

    it('ids are arbitrary strings of 1..256 characters, percent-encoded in paths', async () => {
        const odd = 'a/b c?é%';
        checkJson(assert, await api(ctx.port, 'POST', '/assistants', { assistant_id: odd, graph_id: 'echo' }), 200);
        const a = checkJson(assert, await api(ctx.port, 'GET', `/assistants/${encodeURIComponent(odd)}`), 200).json();
        assert.equal(a.assistant_id, odd);
        const long = 'x'.repeat(256);
        checkJson(assert, await api(ctx.port, 'POST', '/assistants', { assistant_id: long, graph_id: 'echo' }), 200);
        checkJson(assert, await api(ctx.port, 'GET', `/assistants/${long}`), 200);
        check422(await api(ctx.port, 'POST', '/assistants', { assistant_id: `${long}y`, graph_id: 'echo' }), ['body', 'assistant_id'], 'string_too_long');
        check422(await api(ctx.port, 'POST', '/assistants', { assistant_id: '', graph_id: 'echo' }), ['body', 'assistant_id'], 'string_too_short');
        for (const [m, p] of [['GET', ''], ['PATCH', ''], ['DELETE', ''], ['POST', '/versions'], ['POST', '/latest'], ['GET', '/schemas'], ['GET', '/graph'], ['GET', '/subgraphs']]) {
            const res = await api(ctx.port, m, `/assistants/${long}y${p}`, m === 'GET' || m === 'DELETE' ? undefined : { version: 1 });
            check422(res, ['path', 'assistant_id'], 'string_too_long');
        }
        check422(await api(ctx.port, 'GET', '/assistants/%ff%fe'), ['path', 'assistant_id'], 'string_unicode');
        check422(await api(ctx.port, 'GET', '/assistants/a%00b'), ['path', 'assistant_id']);
    });

    it('an unknown id is a 404 naming it', async () => {
        const b = checkError(await api(ctx.port, 'GET', '/assistants/missing-1'), 404, /^Assistant 'missing-1' not found$/);
        assert.equal(b.error, 'not_found');
        checkError(await api(ctx.port, 'GET', '/assistants/missing-1?x=1'), 404, /^Assistant 'missing-1' not found$/); // x: unknown, ignored
    });

    it("another owner's assistant is invisible: 404 on read and change, 409 on create", async () => {
        await psql(ctx.db, "INSERT INTO assistants (assistant_id, owner, graph_id, name) VALUES ('theirs', 'someone', 'echo', 'x')");
        checkError(await api(ctx.port, 'GET', '/assistants/theirs'), 404, /not found/);
        checkError(await api(ctx.port, 'PATCH', '/assistants/theirs', { name: 'y' }), 404, /not found/);
        checkError(await api(ctx.port, 'DELETE', '/assistants/theirs'), 404, /not found/);
        checkError(await api(ctx.port, 'POST', '/assistants/theirs/versions', {}), 404, /not found/);
        checkError(await api(ctx.port, 'GET', '/assistants/theirs/schemas'), 404, /not found/);
        checkError(await api(ctx.port, 'POST', '/assistants', { assistant_id: 'theirs', graph_id: 'echo', if_exists: 'do_nothing' }), 409, /already exists/);
        const all = checkJson(assert, await api(ctx.port, 'POST', '/assistants/search', { limit: 1000 }), 200).json();
        assert.ok(!all.some((a) => a.assistant_id === 'theirs'));
        assert.equal(await psql(ctx.db, "SELECT name FROM assistants WHERE assistant_id = 'theirs'"), 'x');
    });

    it('bad bodies are 422 with the field path', async () => {
        check422(await api(ctx.port, 'POST', '/assistants', {}), ['body', 'graph_id'], 'missing');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 7 }), ['body', 'graph_id'], 'string_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', name: 1 }), ['body', 'name'], 'string_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', metadata: [] }), ['body', 'metadata'], 'dict_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', config: 'x' }), ['body', 'config'], 'dict_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', context: 3 }), ['body', 'context'], 'dict_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', config: { configurable: 1 } }), ['body', 'config', 'configurable'], 'dict_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', config: { tags: [1] } }), ['body', 'config', 'tags', 0], 'string_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', config: { recursion_limit: 'x' } }), ['body', 'config', 'recursion_limit'], 'int_type');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', if_exists: 'error' }), ['body', 'if_exists'], 'literal_error');
        check422(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', assistant_id: 5 }), ['body', 'assistant_id'], 'string_type');
        assert.equal(ignored(await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', bogus: true }), 200).bogus, undefined);
        checkBadJson(await api(ctx.port, 'POST', '/assistants', '{"graph_id": "echo"'));
        check422(await api(ctx.port, 'POST', '/assistants', ''), ['body'], 'missing');
        check422(await api(ctx.port, 'POST', '/assistants', '[]'), ['body'], 'model_attributes_type');
        ignored(await api(ctx.port, 'POST', '/assistants?force=1', { graph_id: 'echo' }), 200);
        // Optional fields may be null (the SDK never sends them otherwise).
        checkJson(assert, await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', name: null, config: null, context: null, metadata: null, description: null, if_exists: null, assistant_id: null }), 200);
    });
});

describe('update, versions, latest, delete', () => {
    const ctx = server();

    const create = async (body) => checkJson(assert, await api(ctx.port, 'POST', '/assistants', { graph_id: 'echo', ...body }), 200).json();

    it('PATCH writes a new version changing only the given fields; metadata is merged', async () => {
        const a = await create({ name: 'n1', description: 'd1', config: { tags: ['t'], configurable: { x: 1 } }, metadata: { a: 1, b: 2 } });
        const b = checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { metadata: { b: 3, c: 4 } }), 200).json();
        assertAssistant(b);
        assert.equal(b.version, 2);
        assert.deepEqual(b.metadata, { a: 1, b: 3, c: 4 });
        assert.equal(b.name, 'n1');
        assert.equal(b.description, 'd1');
        assert.deepEqual(b.config, a.config);
        assert.deepEqual(b.context, { x: 1 });
        assert.equal(b.graph_id, 'echo');
        assert.equal(b.created_at, a.created_at);
        assert.notEqual(b.updated_at, a.updated_at);
        const c = checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { name: 'n2', graph_id: 'stress', description: 'd2' }), 200).json();
        assert.deepEqual([c.version, c.name, c.graph_id, c.description], [3, 'n2', 'stress', 'd2']);
        assert.deepEqual(c.metadata, b.metadata);
        const d = checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, {}), 200).json();
        assert.equal(d.version, 4);
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'GET', `/assistants/${a.assistant_id}`), 200).json(), d);
    });

    it('PATCH keeps config.configurable and context in sync', async () => {
        const a = await create({ config: { tags: ['keep'], configurable: { x: 1 } } });
        const b = checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { context: { y: 2 } }), 200).json();
        assert.deepEqual(b.context, { y: 2 });
        assert.deepEqual(b.config, { tags: ['keep'], configurable: { y: 2 } });
        const c = checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { config: { configurable: { z: 3 } } }), 200).json();
        assert.deepEqual(c.config, { configurable: { z: 3 } });
        assert.deepEqual(c.context, { z: 3 });
        checkError(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { config: { configurable: { z: 3 } }, context: { y: 1 } }), 400, /both configurable and context/);
    });

    it('PATCH errors: 404 unknown id, 404 unknown graph, 422 bad body', async () => {
        const a = await create({});
        checkError(await api(ctx.port, 'PATCH', '/assistants/nope', { name: 'x' }), 404, /^Assistant 'nope' not found$/);
        checkError(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { graph_id: 'nope' }), 404, /^Graph 'nope' not found$/);
        check422(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { name: 3 }), ['body', 'name'], 'string_type');
        check422(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { metadata: 'x' }), ['body', 'metadata'], 'dict_type');
        checkBadJson(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, '{'));
        check422(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, ''), ['body'], 'missing');
        const now = checkJson(assert, await api(ctx.port, 'GET', `/assistants/${a.assistant_id}`), 200).json();
        assert.equal(now.version, 1);
        // A field PATCH does not know is ignored: the update changes nothing but the version.
        const same = ignored(await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { if_exists: 'raise' }), 200);
        assert.equal(same.if_exists, undefined);
        assert.equal(same.version, 2);
        assert.equal(same.name, now.name);
    });

    it('versions: newest first, paged, filtered by metadata; 404 and 422', async () => {
        const a = await create({ metadata: { v: 1 } });
        for (let i = 2; i <= 4; i++) checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { metadata: { v: i } }), 200);
        const all = checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, {}), 200).json();
        assert.deepEqual(all.map((v) => v.version), [4, 3, 2, 1]);
        for (const v of all) {
            assert.deepEqual(Object.keys(v).sort(), FIELDS.filter((f) => f !== 'updated_at').sort());
            assert.equal(v.assistant_id, a.assistant_id);
            assert.deepEqual(v.metadata, { v: v.version });
        }
        const page = checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { limit: 2, offset: 1 }), 200).json();
        assert.deepEqual(page.map((v) => v.version), [3, 2]);
        const f = checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { metadata: { v: 2 } }), 200).json();
        assert.deepEqual(f.map((v) => v.version), [2]);
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { offset: 10 }), 200).json(), []);
        assert.equal(checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, ''), 200).json().length, 4);
        checkError(await api(ctx.port, 'POST', '/assistants/nope/versions', {}), 404, /not found/);
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { limit: 0 }), ['body', 'limit'], 'greater_than_equal');
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { limit: 1001 }), ['body', 'limit'], 'less_than_equal');
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { offset: -1 }), ['body', 'offset'], 'greater_than_equal');
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { limit: 'x' }), ['body', 'limit'], 'int_type');
        assert.ok(Array.isArray(ignored(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, { select: [] }), 200)));
        checkBadJson(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, '{x'));
    });

    it('latest pins an older version (its fields come back); 404 unknown version or id; 422', async () => {
        const a = await create({ name: 'v1', config: { configurable: { k: 1 } }, metadata: { m: 1 } });
        checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { name: 'v2', graph_id: 'stress', config: { configurable: { k: 2 } }, metadata: { m: 2 } }), 200);
        const p = checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, { version: 1 }), 200).json();
        assertAssistant(p);
        assert.deepEqual([p.version, p.name, p.graph_id], [1, 'v1', 'echo']);
        assert.deepEqual(p.config, { configurable: { k: 1 } });
        assert.deepEqual(p.context, { k: 1 });
        assert.deepEqual(p.metadata, { m: 1 });
        assert.equal(p.created_at, a.created_at);
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'GET', `/assistants/${a.assistant_id}`), 200).json(), p);
        // Versions stay; the next PATCH still takes a new number.
        const v = checkJson(assert, await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/versions`, {}), 200).json();
        assert.deepEqual(v.map((x) => x.version), [2, 1]);
        const n = checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { name: 'v3' }), 200).json();
        assert.deepEqual([n.version, n.name, n.graph_id, n.metadata], [3, 'v3', 'echo', { m: 1 }]);

        checkError(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, { version: 99 }), 404, /Version 99 of assistant/);
        checkError(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, { version: 0 }), 404, /Version 0/);
        checkError(await api(ctx.port, 'POST', '/assistants/nope/latest', { version: 1 }), 404, /^Assistant 'nope' not found$/);
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, {}), ['body', 'version'], 'missing');
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, { version: '1' }), ['body', 'version'], 'int_type');
        assert.equal(ignored(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, { version: 1, x: 1 }), 200).version, 1);
        checkBadJson(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, 'nope'));
        check422(await api(ctx.port, 'POST', `/assistants/${a.assistant_id}/latest`, ''), ['body'], 'missing');
    });

    it('DELETE answers 204 and removes the assistant and its versions; 404 after', async () => {
        const a = await create({});
        checkJson(assert, await api(ctx.port, 'PATCH', `/assistants/${a.assistant_id}`, { name: 'x' }), 200);
        const res = await api(ctx.port, 'DELETE', `/assistants/${a.assistant_id}`);
        assert.equal(res.status, 204, res.text);
        assert.equal(res.body.length, 0);
        checkError(await api(ctx.port, 'GET', `/assistants/${a.assistant_id}`), 404, /not found/);
        assert.equal(await psql(ctx.db, `SELECT count(*) FROM assistant_versions WHERE assistant_id = '${a.assistant_id}'`), '0');
        checkError(await api(ctx.port, 'DELETE', `/assistants/${a.assistant_id}`), 404, /not found/);
    });

    it('DELETE ?delete_threads=true also deletes the threads whose metadata.assistant_id is the assistant', async () => {
        const a = await create({});
        const b = await create({});
        await psql(ctx.db, `INSERT INTO threads (thread_id, metadata) VALUES ('t-a', '{"assistant_id":"${a.assistant_id}"}'), ('t-b', '{"assistant_id":"${b.assistant_id}"}'), ('t-other', '{}')`);
        assert.equal((await api(ctx.port, 'DELETE', `/assistants/${b.assistant_id}?delete_threads=false`)).status, 204);
        assert.equal(await psql(ctx.db, "SELECT count(*) FROM threads WHERE thread_id = 't-b'"), '1');
        assert.equal((await api(ctx.port, 'DELETE', `/assistants/${a.assistant_id}?delete_threads=true`)).status, 204);
        assert.equal(await psql(ctx.db, 'SELECT string_agg(thread_id, \',\' ORDER BY thread_id) FROM threads'), 't-b,t-other');
        check422(await api(ctx.port, 'DELETE', '/assistants/whatever?delete_threads=maybe'), ['query', 'delete_threads'], 'bool_parsing');
        checkError(await api(ctx.port, 'DELETE', '/assistants/whatever?force=1'), 404, /^Assistant 'whatever' not found$/); // force: unknown, ignored
    });
});

describe('search, count and list', () => {
    const ctx = server();
    const made = [];
    before(async () => {
        // One per request so created_at orders them.
        const specs = [
            { assistant_id: 'k1', graph_id: 'echo', name: 'Alpha bot', metadata: { team: 'red', tier: 1 } },
            { assistant_id: 'k2', graph_id: 'stress', name: 'beta', metadata: { team: 'red', tier: 2 } },
            { assistant_id: 'k3', graph_id: 'echo', name: 'Gamma BOT', metadata: { team: 'blue' } },
            { assistant_id: 'k4', graph_id: 'interrupt', name: 'delta', metadata: { team: 'blue', nested: { a: [1, 2] } } },
            { assistant_id: 'k5', graph_id: 'echo', name: 'epsilon', metadata: {} },
        ];
        for (const s of specs) made.push(checkJson(assert, await api(ctx.port, 'POST', '/assistants', s), 200).json());
    });

    const search = async (body, status = 200) => checkJson(assert, await api(ctx.port, 'POST', '/assistants/search', body), status);
    const ids = (res) => res.json().map((a) => a.assistant_id);

    it('default: newest first, limit 10, own and system rows, X-Pagination-Total', async () => {
        const res = await search({});
        assert.deepEqual(ids(res).slice(0, 5), ['k5', 'k4', 'k3', 'k2', 'k1']);
        assert.deepEqual(ids(res).slice(5).sort(), Object.values(SYSTEM).sort());
        res.json().forEach(assertAssistant);
        assert.equal(res.headers['x-pagination-total'], '8');
        assert.equal(res.headers['x-pagination-next'], undefined);
        assert.deepEqual(ids(await api(ctx.port, 'POST', '/assistants/search', '')), ids(res));
    });

    it('filters: graph_id, name (case-insensitive substring), metadata containment', async () => {
        assert.deepEqual(ids(await search({ graph_id: 'echo' })).sort(), ['k1', 'k3', 'k5', SYSTEM.echo].sort());
        assert.deepEqual(ids(await search({ name: 'bot' })), ['k3', 'k1']);
        assert.deepEqual(ids(await search({ metadata: { team: 'red' } })), ['k2', 'k1']);
        assert.deepEqual(ids(await search({ metadata: { nested: { a: [2] } } })), ['k4']);
        assert.deepEqual(ids(await search({ metadata: { created_by: 'system' }, graph_id: 'stress' })), [SYSTEM.stress]);
        assert.deepEqual(ids(await search({ graph_id: 'echo', name: 'alpha', metadata: { tier: 1 } })), ['k1']);
        assert.deepEqual(ids(await search({ name: 'no such' })), []);
        checkError(await api(ctx.port, 'POST', '/assistants/search', { graph_id: 'nope' }), 404, /^Graph 'nope' not found$/);
    });

    it('limit/offset paging with X-Pagination-Next and X-Pagination-Total', async () => {
        const p1 = await search({ metadata: { team: 'red' }, limit: 1 });
        assert.deepEqual(ids(p1), ['k2']);
        assert.equal(p1.headers['x-pagination-next'], '1');
        assert.equal(p1.headers['x-pagination-total'], '2');
        const p2 = await search({ metadata: { team: 'red' }, limit: 1, offset: 1 });
        assert.deepEqual(ids(p2), ['k1']);
        assert.equal(p2.headers['x-pagination-next'], undefined);
        assert.equal(p2.headers['x-pagination-total'], '2');
        const p3 = await search({ limit: 3, offset: 6 });
        assert.equal(p3.json().length, 2);
        assert.equal(p3.headers['x-pagination-total'], '8');
        assert.deepEqual((await search({ offset: 100 })).json(), []);
    });

    it('sort_by and sort_order (names compare case-insensitively; sort_by alone is descending)', async () => {
        const mine = { metadata: { team: 'red' } };
        assert.deepEqual(ids(await search({ graph_id: 'echo', name: 'a', sort_by: 'name', sort_order: 'asc' })), ['k1', 'k3']);
        assert.deepEqual(ids(await search({ name: 'a', sort_by: 'name', sort_order: 'desc' })), ['k3', 'k4', 'k2', 'k1']);
        assert.deepEqual(ids(await search({ ...mine, sort_by: 'assistant_id', sort_order: 'asc' })), ['k1', 'k2']);
        assert.deepEqual(ids(await search({ ...mine, sort_by: 'assistant_id' })), ['k2', 'k1']);
        assert.deepEqual(ids(await search({ ...mine, sort_by: 'created_at', sort_order: 'asc' })), ['k1', 'k2']);
        assert.deepEqual(ids(await search({ ...mine, sort_by: 'graph_id', sort_order: 'asc' })), ['k1', 'k2']);
        checkJson(assert, await api(ctx.port, 'PATCH', '/assistants/k1', { name: 'Alpha bot' }), 200);
        assert.deepEqual(ids(await search({ ...mine, sort_by: 'updated_at', sort_order: 'desc' })), ['k1', 'k2']);
    });

    it('select returns only the named fields, in the usual order', async () => {
        const res = await search({ metadata: { team: 'red' }, select: ['name', 'assistant_id'] });
        assert.deepEqual(res.json(), [
            { assistant_id: 'k2', name: 'beta' },
            { assistant_id: 'k1', name: 'Alpha bot' },
        ]);
        assert.deepEqual(Object.keys((await search({ select: [] })).json()[0]).sort(), [...FIELDS].sort());
    });

    it('bad search bodies are 422 with the field path', async () => {
        const bad = async (body, loc, type) => check422(await api(ctx.port, 'POST', '/assistants/search', body), loc, type);
        await bad({ limit: 0 }, ['body', 'limit'], 'greater_than_equal');
        await bad({ limit: 1001 }, ['body', 'limit'], 'less_than_equal');
        await bad({ limit: 1.5 }, ['body', 'limit'], 'int_type');
        await bad({ offset: -1 }, ['body', 'offset'], 'greater_than_equal');
        await bad({ sort_by: 'version' }, ['body', 'sort_by'], 'literal_error');
        await bad({ sort_order: 'up' }, ['body', 'sort_order'], 'literal_error');
        await bad({ select: ['name', 'owner'] }, ['body', 'select', 1], 'literal_error');
        await bad({ select: 'name' }, ['body', 'select'], 'list_type');
        await bad({ metadata: 1 }, ['body', 'metadata'], 'dict_type');
        await bad({ graph_id: 1 }, ['body', 'graph_id'], 'string_type');
        assert.ok(Array.isArray(ignored(await api(ctx.port, 'POST', '/assistants/search', { description: 'x' }), 200)));
        checkBadJson(await api(ctx.port, 'POST', '/assistants/search', '{"limit": }'));
        await bad('3', ['body'], 'model_attributes_type');
        checkJson(assert, await api(ctx.port, 'POST', '/assistants/search', { limit: 1000, offset: 0 }), 200);
    });

    it('count takes the same filters and answers a bare integer', async () => {
        const count = async (body) => checkJson(assert, await api(ctx.port, 'POST', '/assistants/count', body), 200).json();
        assert.equal(await count({}), 8);
        assert.equal(await count(''), 8);
        assert.equal(await count({ graph_id: 'echo' }), 4);
        assert.equal(await count({ name: 'BOT' }), 2);
        assert.equal(await count({ metadata: { team: 'blue' } }), 2);
        assert.equal(await count({ graph_id: 'echo', metadata: { team: 'blue' }, name: 'gamma' }), 1);
        assert.equal(await count({ graph_id: 'nope' }), 0);
        assert.equal(typeof ignored(await api(ctx.port, 'POST', '/assistants/count', { limit: 1 }), 200), 'number');
        check422(await api(ctx.port, 'POST', '/assistants/count', { metadata: 'x' }), ['body', 'metadata'], 'dict_type');
        checkBadJson(await api(ctx.port, 'POST', '/assistants/count', '{'));
    });

    it('GET /assistants lists them all with the total', async () => {
        const l = checkJson(assert, await api(ctx.port, 'GET', '/assistants'), 200).json();
        assert.equal(l.total, 8);
        assert.equal(l.assistants.length, 8);
        assert.deepEqual(l.assistants.slice(0, 5).map((a) => a.assistant_id).sort(), ['k1', 'k2', 'k3', 'k4', 'k5']);
        const p = checkJson(assert, await api(ctx.port, 'GET', '/assistants?limit=2&offset=1'), 200).json();
        assert.equal(p.total, 8);
        assert.deepEqual(p.assistants.map((a) => a.assistant_id), l.assistants.slice(1, 3).map((a) => a.assistant_id));
        check422(await api(ctx.port, 'GET', '/assistants?limit=0'), ['query', 'limit'], 'greater_than_equal');
        check422(await api(ctx.port, 'GET', '/assistants?limit=x'), ['query', 'limit'], 'int_parsing');
        check422(await api(ctx.port, 'GET', '/assistants?offset=-2'), ['query', 'offset'], 'greater_than_equal');
        assert.equal(ignored(await api(ctx.port, 'GET', '/assistants?sort=1'), 200).total, 8);
    });
});

describe('schemas, graph and subgraphs', () => {
    const ctx = server();

    it('schemas: graph_id and the five JSON Schemas of the graph', async () => {
        for (const graph of Object.keys(SYSTEM)) {
            const s = checkJson(assert, await api(ctx.port, 'GET', `/assistants/${graph}/schemas`), 200).json();
            assert.deepEqual(Object.keys(s), ['graph_id', 'input_schema', 'output_schema', 'state_schema', 'config_schema', 'context_schema']);
            assert.equal(s.graph_id, graph);
            assert.equal(s.input_schema.type, 'object');
            assert.equal(s.state_schema.properties.messages.type, 'array');
            assert.equal(s.config_schema.type, 'object');
        }
        const mine = checkJson(assert, await api(ctx.port, 'POST', '/assistants', { graph_id: 'stress' }), 200).json();
        const s = checkJson(assert, await api(ctx.port, 'GET', `/assistants/${mine.assistant_id}/schemas`), 200).json();
        assert.equal(s.graph_id, 'stress');
        assert.deepEqual(Object.keys(s.config_schema.properties).sort(), ['delay_ms', 'mode', 'tokens']);
        assert.deepEqual(s.context_schema, s.config_schema);
        checkError(await api(ctx.port, 'GET', '/assistants/nope/schemas'), 404, /^Assistant 'nope' not found$/);
        assert.equal(ignored(await api(ctx.port, 'GET', '/assistants/echo/schemas?xray=1'), 200).graph_id, 'echo');
    });

    it('graph: the drawable nodes and edges', async () => {
        const g = checkJson(assert, await api(ctx.port, 'GET', '/assistants/echo/graph'), 200).json();
        assert.deepEqual(g, {
            nodes: [
                { id: '__start__', type: 'schema', data: '__start__' },
                { id: 'echo', type: 'runnable', data: { name: 'echo' }, metadata: {} },
                { id: '__end__', type: 'schema', data: '__end__' },
            ],
            edges: [
                { source: '__start__', target: 'echo', conditional: false },
                { source: 'echo', target: '__end__', conditional: false },
            ],
        });
        const nodes = async (p) => checkJson(assert, await api(ctx.port, 'GET', p), 200).json().nodes.map((n) => n.id);
        assert.deepEqual(await nodes(`/assistants/${SYSTEM.stress}/graph`), ['__start__', 'emit', '__end__']);
        assert.deepEqual(await nodes('/assistants/interrupt/graph?xray=true'), ['__start__', 'ask', '__end__']);
        assert.deepEqual(await nodes('/assistants/interrupt/graph?xray=2'), ['__start__', 'ask', '__end__']);
        assert.deepEqual(await nodes('/assistants/interrupt/graph?xray=False'), ['__start__', 'ask', '__end__']);
        check422(await api(ctx.port, 'GET', '/assistants/echo/graph?xray=0'), ['query', 'xray']);
        check422(await api(ctx.port, 'GET', '/assistants/echo/graph?xray=-1'), ['query', 'xray']);
        check422(await api(ctx.port, 'GET', '/assistants/echo/graph?xray=lots'), ['query', 'xray']);
        checkError(await api(ctx.port, 'GET', '/assistants/nope/graph'), 404, /not found/);
    });

    it('subgraphs: the built-in graphs have none', async () => {
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'GET', '/assistants/echo/subgraphs'), 200).json(), {});
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'GET', '/assistants/echo/subgraphs?recurse=true'), 200).json(), {});
        assert.deepEqual(checkJson(assert, await api(ctx.port, 'GET', '/assistants/echo/subgraphs/child?recurse=false'), 200).json(), {});
        check422(await api(ctx.port, 'GET', '/assistants/echo/subgraphs?recurse=deep'), ['query', 'recurse'], 'bool_parsing');
        checkError(await api(ctx.port, 'GET', '/assistants/nope/subgraphs'), 404, /not found/);
        checkError(await api(ctx.port, 'GET', '/assistants/nope/subgraphs/child'), 404, /not found/);
    });

    it('an assistant whose graph is no longer registered answers 404 for its graph views', async () => {
        await psql(ctx.db, "INSERT INTO assistants (assistant_id, graph_id, name) VALUES ('orphan', 'retired', 'x')");
        checkJson(assert, await api(ctx.port, 'GET', '/assistants/orphan'), 200);
        for (const p of ['schemas', 'graph', 'subgraphs']) checkError(await api(ctx.port, 'GET', `/assistants/orphan/${p}`), 404, /^Graph 'retired' not found$/);
    });
});

describe('two shards', () => {
    const ctx = server(['--shards', '2']);

    it('every route works from connections served by either shard', async () => {
        assert.equal(ctx.srv.shards, 2);
        const created = await Promise.all(
            Array.from({ length: 16 }, (_, i) => api(ctx.port, 'POST', '/assistants', { assistant_id: `s${i}`, graph_id: 'echo', metadata: { shard_test: true } })),
        );
        created.forEach((r) => checkJson(assert, r, 200));
        const got = await Promise.all(Array.from({ length: 16 }, (_, i) => api(ctx.port, 'GET', `/assistants/s${i}`)));
        got.forEach((r, i) => assert.equal(checkJson(assert, r, 200).json().assistant_id, `s${i}`));
        assert.equal(checkJson(assert, await api(ctx.port, 'POST', '/assistants/count', { metadata: { shard_test: true } }), 200).json(), 16);
        const views = await Promise.all(['schemas', 'graph', 'subgraphs'].flatMap((v) => Array.from({ length: 4 }, () => api(ctx.port, 'GET', `/assistants/s1/${v}`))));
        views.forEach((r) => checkJson(assert, r, 200));
        const deleted = await Promise.all(Array.from({ length: 8 }, (_, i) => api(ctx.port, 'DELETE', `/assistants/s${i}`)));
        deleted.forEach((r) => assert.equal(r.status, 204, r.text));
        assert.equal(checkJson(assert, await api(ctx.port, 'POST', '/assistants/count', { metadata: { shard_test: true } }), 200).json(), 8);
    });

    it('concurrent PATCHes of one assistant each get their own version', async () => {
        checkJson(assert, await api(ctx.port, 'POST', '/assistants', { assistant_id: 'busy', graph_id: 'echo' }), 200);
        const n = 24;
        const res = await Promise.all(Array.from({ length: n }, (_, i) => api(ctx.port, 'PATCH', '/assistants/busy', { metadata: { [`k${i}`]: i } })));
        const versions = res.map((r) => checkJson(assert, r, 200).json().version).sort((a, b) => a - b);
        assert.deepEqual(versions, Array.from({ length: n }, (_, i) => i + 2));
        const a = checkJson(assert, await api(ctx.port, 'GET', '/assistants/busy'), 200).json();
        assert.equal(a.version, n + 1);
        assert.equal(Object.keys(a.metadata).length, n);
        const v = checkJson(assert, await api(ctx.port, 'POST', '/assistants/busy/versions', { limit: 1000 }), 200).json();
        assert.equal(v.length, n + 1);
    });
});
