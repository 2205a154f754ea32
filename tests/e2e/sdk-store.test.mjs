// The store through the real LangGraph SDK (client.store.*): putItem, getItem, deleteItem,
// searchItems and listNamespaces, with every option the SDK sends, against agentd on a fresh database.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { psql } from '../integration/lib/pg.mjs';
import { rejectsWith, useSdk } from './lib.mjs';

describe('LangGraph SDK: store', { timeout: 120000 }, () => {
  const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

  test('putItem then getItem returns the item with its namespace exactly as written', async () => {
    assert.equal(await sdk.client.store.putItem(['users', 'u1', 'prefs'], 'theme', { color: 'dark', size: 14 }), undefined);
    const item = await sdk.client.store.getItem(['users', 'u1', 'prefs'], 'theme');
    assert.deepEqual(item.namespace, ['users', 'u1', 'prefs']);
    assert.equal(item.key, 'theme');
    assert.deepEqual(item.value, { color: 'dark', size: 14 });
    assert.equal(typeof item.createdAt, 'string');
    assert.equal(item.createdAt, item.created_at);
    assert.equal(item.updatedAt, item.updated_at);
    assert.ok(!Number.isNaN(Date.parse(item.updatedAt)));
  });

  test('putItem with ttl and index: false; getItem with refreshTtl true and false', async () => {
    await sdk.client.store.putItem(['ttl'], 'k', { v: 1 }, { ttl: 1, index: false });
    const where = "namespace = ARRAY['ttl']::text[] AND key = 'k'";
    assert.equal(await psql(sdk.db.url, `SELECT ttl_minutes FROM store_items WHERE ${where}`), '1');
    await psql(sdk.db.url, `UPDATE store_items SET expires_at = now() + interval '10 seconds' WHERE ${where}`);
    const left = async () => Number(await psql(sdk.db.url, `SELECT extract(epoch FROM expires_at - now()) FROM store_items WHERE ${where}`));
    assert.deepEqual((await sdk.client.store.getItem(['ttl'], 'k', { refreshTtl: false })).value, { v: 1 });
    assert.ok((await left()) <= 10, 'refreshTtl: false leaves the expiry');
    assert.deepEqual((await sdk.client.store.getItem(['ttl'], 'k', { refreshTtl: true })).value, { v: 1 });
    assert.ok((await left()) > 50, 'refreshTtl: true restarts the minute');
    await sdk.client.store.putItem(['ttl'], 'k', { v: 2 }, { ttl: null, index: null });
    assert.equal(await psql(sdk.db.url, `SELECT expires_at IS NULL FROM store_items WHERE ${where}`), 't');
  });

  test('putItem with index fields stores the item (without an embedding index nothing is embedded)', async () => {
    await sdk.client.store.putItem(['ix'], 'k', { text: 'hello' }, { index: ['text'] });
    assert.deepEqual((await sdk.client.store.getItem(['ix'], 'k')).value, { text: 'hello' });
  });

  test('getItem of a missing item returns null (as on LangGraph Platform); deleteItem removes an item', async () => {
    assert.equal(await sdk.client.store.getItem(['nobody'], 'nothing'), null);
    await sdk.client.store.putItem(['del'], 'k', { v: 1 });
    assert.equal(await sdk.client.store.deleteItem(['del'], 'k'), undefined);
    assert.equal(await sdk.client.store.getItem(['del'], 'k'), null);
    assert.equal(await sdk.client.store.deleteItem(['del'], 'k'), undefined, 'deleting a missing item is fine');
  });

  test('searchItems: prefix, filter with operators, limit/offset, refreshTtl; items carry createdAt', async () => {
    for (const [ns, key, value] of [
      [['docs', 'a'], 'd1', { type: 'article', n: 1 }],
      [['docs', 'b'], 'd2', { type: 'article', n: 2 }],
      [['docs', 'b'], 'd3', { type: 'note', n: 3 }],
      [['docsx'], 'd4', { type: 'article', n: 4 }],
    ]) {
      await sdk.client.store.putItem(ns, key, value);
    }
    const all = await sdk.client.store.searchItems(['docs']);
    assert.deepEqual(all.items.map((i) => i.key), ['d3', 'd2', 'd1']);
    assert.equal(all.items[0].createdAt, all.items[0].created_at);
    assert.equal(all.items[0].score, null);
    const articles = await sdk.client.store.searchItems(['docs'], { filter: { type: 'article' } });
    assert.deepEqual(articles.items.map((i) => i.key), ['d2', 'd1']);
    const ops = await sdk.client.store.searchItems(['docs'], { filter: { n: { $gte: 2, $lt: 3 } } });
    assert.deepEqual(ops.items.map((i) => i.key), ['d2']);
    const page = await sdk.client.store.searchItems(['docs'], { limit: 1, offset: 1, refreshTtl: false });
    assert.deepEqual(page.items.map((i) => i.key), ['d2']);
    const raw = await (await fetch(`${sdk.server.url}/store/items/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_prefix: ['docs'], limit: 1 }),
    })).json();
    assert.equal(raw.total, 3, 'the response also carries the total number of matches');
  });

  test('searchItems with a query: no embedding index ranks them, so the items come as without it', async () => {
    const plain = await sdk.client.store.searchItems(['docs']);
    const queried = await sdk.client.store.searchItems(['docs'], { query: 'what about articles?' });
    assert.deepEqual(queried.items, plain.items);
    assert.ok(queried.items.length > 0);
  });

  test('listNamespaces: prefix, suffix, maxDepth, limit, offset', async () => {
    const { namespaces } = await sdk.client.store.listNamespaces({ prefix: ['docs'] });
    assert.deepEqual(namespaces, [['docs', 'a'], ['docs', 'b']]);
    assert.deepEqual((await sdk.client.store.listNamespaces({ suffix: ['b'] })).namespaces, [['docs', 'b']]);
    assert.deepEqual((await sdk.client.store.listNamespaces({ prefix: ['*', 'a'] })).namespaces, [['docs', 'a']]);
    assert.deepEqual((await sdk.client.store.listNamespaces({ prefix: ['docs'], maxDepth: 1 })).namespaces, [['docs']]);
    assert.deepEqual((await sdk.client.store.listNamespaces({ prefix: ['docs'], limit: 1, offset: 1 })).namespaces, [['docs', 'b']]);
    const everything = (await sdk.client.store.listNamespaces()).namespaces;
    assert.ok(everything.some((ns) => ns.join('/') === 'users/u1/prefs'), JSON.stringify(everything));
  });

  test('SIGTERM drains and exits 0 with no sanitizer report', async () => {
    const code = await sdk.server.stop();
    assert.equal(code, 0, `agentd exited with ${code}; stderr:\n${sdk.server.stderr()}`);
    assert.doesNotMatch(sdk.server.stderr(), /Sanitizer|runtime error:/, 'sanitizer report in the server log');
  });
});
