// Threads on two shards: a request about a thread runs on the thread's owner shard. Client-chosen
// ids owned by each shard are created, read, patched, copied and deleted over one keep-alive
// connection (which one shard accepted), so exactly the requests for the other shard's threads are
// forwarded; ids minted by POST /threads are owned by the shard that minted them and never forwarded.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { getMetrics, metricSum, rawConnect, startAgentd } from './lib/harness.mjs';
import { freshDatabase } from './lib/pg.mjs';
import { callOn, ownerShard, uuidOwnedBy } from './lib/threads-util.mjs';

describe('threads across two shards', { timeout: 120000 }, () => {
    let db;
    let srv;
    const forwarded = async () => metricSum((await getMetrics(srv.port)).samples, 'agentd_requests_forwarded_total');

    before(async () => {
        db = await freshDatabase();
        srv = await startAgentd({ db: db.url, waitReady: true, args: ['--shards', '2'] });
        assert.equal(srv.shards, 2, srv.readyLine);
    });

    after(async () => {
        if (srv) await srv.dispose();
        if (db) await db.drop();
    });

    it('client ids of both owners: create, get, patch, copy, delete each forward exactly the other shard\'s', async () => {
        // 3 ids owned by shard 0 and 2 by shard 1 (one of them in upper case: owners ignore case).
        const ids = [uuidOwnedBy(0, 2), uuidOwnedBy(0, 2), uuidOwnedBy(0, 2), uuidOwnedBy(1, 2), uuidOwnedBy(1, 2).toUpperCase()];
        const perOwner = [3, 2];
        const c = await rawConnect(srv.port);
        try {
            const step = async (what, fn) => {
                const before1 = await forwarded();
                await fn();
                const d = (await forwarded()) - before1;
                // The connection lives on one shard: the requests for the other shard's threads were forwarded.
                assert.ok(d === perOwner[0] || d === perOwner[1], `${what}: ${d} requests forwarded, expected ${perOwner[0]} or ${perOwner[1]}`);
                return d;
            };
            const dCreate = await step('create', async () => {
                for (const id of ids) {
                    const res = await callOn(c, 'POST', '/threads', { thread_id: id, metadata: { owner: ownerShard(id, 2) } });
                    assert.equal(res.status, 200, res.text);
                    assert.equal(res.json.thread_id, id.toLowerCase());
                }
            });
            // Every later step forwards the same set of requests as the first.
            const same = async (what, fn) => assert.equal(await step(what, fn), dCreate, `${what} forwards like create`);
            await same('conflict', async () => {
                for (const id of ids) assert.equal((await callOn(c, 'POST', '/threads', { thread_id: id })).status, 409);
            });
            await same('do_nothing', async () => {
                for (const id of ids) assert.equal((await callOn(c, 'POST', '/threads', { thread_id: id, if_exists: 'do_nothing' })).json.thread_id, id.toLowerCase());
            });
            await same('get', async () => {
                for (const id of ids) {
                    const res = await callOn(c, 'GET', `/threads/${id}`);
                    assert.equal(res.status, 200, res.text);
                    assert.deepEqual(res.json.metadata, { owner: ownerShard(id, 2) });
                }
            });
            await same('patch', async () => {
                for (const id of ids) assert.deepEqual((await callOn(c, 'PATCH', `/threads/${id}`, { metadata: { patched: true } })).json.metadata, { owner: ownerShard(id, 2), patched: true });
            });
            const copies = [];
            await same('copy', async () => {
                for (const id of ids) {
                    const res = await callOn(c, 'POST', `/threads/${id}/copy`);
                    assert.equal(res.status, 200, res.text);
                    // Minted on the source's owner shard, which ran the copy.
                    assert.equal(ownerShard(res.json.thread_id, 2), ownerShard(id, 2), 'the copy is owned by the source\'s shard');
                    copies.push(res.json.thread_id);
                }
            });
            await same('delete', async () => {
                for (const id of ids) assert.equal((await callOn(c, 'DELETE', `/threads/${id}`)).status, 204);
            });
            await same('get after delete', async () => {
                for (const id of ids) assert.equal((await callOn(c, 'GET', `/threads/${id}`)).status, 404);
            });
            for (const id of copies) assert.equal((await callOn(c, 'GET', `/threads/${id}`)).status, 200);
        } finally {
            c.destroy();
        }
    });

    it('minted ids belong to the accepting shard: creating and reading them forwards nothing', async () => {
        const conns = await Promise.all(Array.from({ length: 12 }, () => rawConnect(srv.port)));
        try {
            const before1 = await forwarded();
            const owners = new Set();
            for (const c of conns) {
                const made = (await callOn(c, 'POST', '/threads', { metadata: {} })).json.thread_id;
                owners.add(ownerShard(made, 2));
                assert.equal((await callOn(c, 'GET', `/threads/${made}`)).status, 200);
                assert.equal((await callOn(c, 'PATCH', `/threads/${made}`, { metadata: { x: 1 } })).status, 200);
            }
            assert.equal((await forwarded()) - before1, 0, 'no request was forwarded');
            assert.deepEqual([...owners].sort(), [0, 1], 'connections on both shards minted ids');
        } finally {
            for (const c of conns) c.destroy();
        }
    });

    it('search, count and prune see the threads of both shards from either', async () => {
        const mine = [uuidOwnedBy(0, 2), uuidOwnedBy(1, 2)];
        const c = await rawConnect(srv.port);
        try {
            for (const id of mine) assert.equal((await callOn(c, 'POST', '/threads', { thread_id: id, metadata: { group: 'xs' } })).status, 200);
            const found = (await callOn(c, 'POST', '/threads/search', { metadata: { group: 'xs' } })).json;
            assert.deepEqual(found.map((t) => t.thread_id).sort(), [...mine].sort());
            assert.equal((await callOn(c, 'POST', '/threads/count', { metadata: { group: 'xs' } })).json, 2);
            assert.deepEqual((await callOn(c, 'POST', '/threads/prune', { thread_ids: mine })).json, { pruned_count: 2 });
            assert.equal((await callOn(c, 'POST', '/threads/count', { metadata: { group: 'xs' } })).json, 0);
        } finally {
            c.destroy();
        }
    });
});
