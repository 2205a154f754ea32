// Assistants through the real LangGraph SDK (client.assistants.*): create, get, update, delete,
// search, count, getGraph, getSchemas, getSubgraphs, getVersions and setLatest, with every option the
// SDK sends, against agentd (two shards) on a fresh database.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWith, useSdk } from './lib.mjs';

const ECHO = '046b5dc7-2108-582c-9c6c-31d556d138f0';
const STRESS = 'a2613945-cc44-5b9d-b20b-aa8f8497bb3b';
const INTERRUPT = '2e6b29d1-4009-5fcc-9319-4cffb1865dfe';

describe('LangGraph SDK: assistants', { timeout: 120000 }, () => {
  const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });

  test('the system assistants are found by graph id and by their UUID5', async () => {
    for (const [graph, id] of [['echo', ECHO], ['stress', STRESS], ['interrupt', INTERRUPT]]) {
      const found = await sdk.client.assistants.search({ graphId: graph, metadata: { created_by: 'system' } });
      assert.equal(found.length, 1);
      assert.equal(found[0].assistant_id, id);
      assert.equal(found[0].name, graph);
      assert.equal(found[0].version, 1);
      assert.deepEqual(await sdk.client.assistants.get(graph), found[0]);
      assert.deepEqual(await sdk.client.assistants.get(id), found[0]);
    }
  });

  test('create with every option, then get', async () => {
    const a = await sdk.client.assistants.create({
      graphId: 'stress',
      assistantId: 'sdk-one',
      name: 'Fast stress',
      description: 'three tokens',
      config: { configurable: { tokens: 3 }, tags: ['sdk'] },
      metadata: { owner: 'e2e', n: 1 },
      ifExists: 'raise',
    });
    assert.equal(a.assistant_id, 'sdk-one');
    assert.equal(a.graph_id, 'stress');
    assert.equal(a.name, 'Fast stress');
    assert.equal(a.description, 'three tokens');
    assert.deepEqual(a.config, { configurable: { tokens: 3 }, tags: ['sdk'] });
    assert.deepEqual(a.context, { tokens: 3 });
    assert.deepEqual(a.metadata, { owner: 'e2e', n: 1 });
    assert.equal(a.version, 1);
    assert.ok(!Number.isNaN(Date.parse(a.created_at)));
    assert.deepEqual(await sdk.client.assistants.get('sdk-one'), a);

    const same = await sdk.client.assistants.create({ graphId: 'echo', assistantId: 'sdk-one', ifExists: 'do_nothing' });
    assert.deepEqual(same, a);
    const body = await rejectsWith(sdk.client.assistants.create({ graphId: 'echo', assistantId: 'sdk-one' }), 409);
    assert.match(body.message, /already exists/);

    const withContext = await sdk.client.assistants.create({ graphId: 'echo', context: { user: 'u1' } });
    assert.match(withContext.assistant_id, /^[0-9a-f-]{36}$/);
    assert.equal(withContext.name, 'Untitled');
    assert.deepEqual(withContext.config, { configurable: { user: 'u1' } });
    assert.deepEqual(withContext.context, { user: 'u1' });
  });

  test('create errors surface as SDK HTTP errors', async () => {
    const nf = await rejectsWith(sdk.client.assistants.create({ graphId: 'missing-graph' }), 404);
    assert.equal(nf.message, "Graph 'missing-graph' not found");
    await rejectsWith(sdk.client.assistants.create({ graphId: 'echo', config: { configurable: { a: 1 } }, context: { b: 2 } }), 400);
    const v = await rejectsWith(sdk.client.assistants.create({ graphId: 'echo', ifExists: 'update' }), 422);
    assert.deepEqual(v.detail[0].loc, ['body', 'if_exists']);
    await rejectsWith(sdk.client.assistants.get('no-such-assistant'), 404);
  });

  test('update changes only what it is given; getVersions lists and filters; setLatest re-pins', async () => {
    const a = await sdk.client.assistants.create({ graphId: 'echo', name: 'v1', metadata: { stage: 'one', keep: true } });
    const b = await sdk.client.assistants.update(a.assistant_id, { name: 'v2', metadata: { stage: 'two' } });
    assert.equal(b.version, 2);
    assert.equal(b.name, 'v2');
    assert.deepEqual(b.metadata, { stage: 'two', keep: true });
    assert.equal(b.graph_id, 'echo');
    const c = await sdk.client.assistants.update(a.assistant_id, { graphId: 'interrupt', description: 'd', config: { tags: ['x'] }, context: { k: 1 } });
    assert.equal(c.version, 3);
    assert.equal(c.graph_id, 'interrupt');
    assert.equal(c.description, 'd');
    assert.equal(c.name, 'v2');
    assert.deepEqual(c.config, { tags: ['x'], configurable: { k: 1 } });
    assert.deepEqual(c.context, { k: 1 });

    const versions = await sdk.client.assistants.getVersions(a.assistant_id);
    assert.deepEqual(versions.map((v) => v.version), [3, 2, 1]);
    assert.deepEqual(versions.map((v) => v.name), ['v2', 'v2', 'v1']);
    const paged = await sdk.client.assistants.getVersions(a.assistant_id, { limit: 1, offset: 1 });
    assert.deepEqual(paged.map((v) => v.version), [2]);
    const filtered = await sdk.client.assistants.getVersions(a.assistant_id, { metadata: { stage: 'one' } });
    assert.deepEqual(filtered.map((v) => v.version), [1]);

    const pinned = await sdk.client.assistants.setLatest(a.assistant_id, 1);
    assert.equal(pinned.version, 1);
    assert.equal(pinned.name, 'v1');
    assert.equal(pinned.graph_id, 'echo');
    assert.deepEqual(pinned.metadata, { stage: 'one', keep: true });
    assert.deepEqual(await sdk.client.assistants.get(a.assistant_id), pinned);

    await rejectsWith(sdk.client.assistants.setLatest(a.assistant_id, 42), 404);
    await rejectsWith(sdk.client.assistants.update('no-such-assistant', { name: 'x' }), 404);
    await rejectsWith(sdk.client.assistants.getVersions('no-such-assistant'), 404);
    await rejectsWith(sdk.client.assistants.update('echo', { name: 'x' }), 403);
    await rejectsWith(sdk.client.assistants.setLatest('echo', 1), 403);
    await rejectsWith(sdk.client.assistants.delete('echo'), 403);
  });

  test('search with every option, includePagination, and count', async () => {
    const tag = { suite: 'search' };
    for (const [id, name] of [['q1', 'Query Alpha'], ['q2', 'query beta'], ['q3', 'other']]) {
      await sdk.client.assistants.create({ graphId: 'echo', assistantId: id, name, metadata: tag });
    }
    const all = await sdk.client.assistants.search({ metadata: tag });
    assert.deepEqual(all.map((a) => a.assistant_id), ['q3', 'q2', 'q1']);
    const named = await sdk.client.assistants.search({ metadata: tag, name: 'QUERY', sortBy: 'name', sortOrder: 'asc' });
    assert.deepEqual(named.map((a) => a.assistant_id), ['q1', 'q2']);
    const selected = await sdk.client.assistants.search({ graphId: 'echo', metadata: tag, limit: 2, offset: 1, sortBy: 'assistant_id', sortOrder: 'desc', select: ['assistant_id', 'name'] });
    assert.deepEqual(selected, [
      { assistant_id: 'q2', name: 'query beta' },
      { assistant_id: 'q1', name: 'Query Alpha' },
    ]);

    const byCreated = await sdk.client.assistants.search({ metadata: tag, sortBy: 'created_at', sortOrder: 'asc' });
    assert.deepEqual(byCreated.map((a) => a.assistant_id), ['q1', 'q2', 'q3']);
    await sdk.client.assistants.update('q1', { description: 'touched' });
    const byUpdated = await sdk.client.assistants.search({ metadata: tag, sortBy: 'updated_at', sortOrder: 'desc' });
    assert.deepEqual(byUpdated.map((a) => a.assistant_id), ['q1', 'q3', 'q2']);
    const byGraph = await sdk.client.assistants.search({ metadata: { created_by: 'system' }, sortBy: 'graph_id', sortOrder: 'asc' });
    assert.deepEqual(byGraph.map((a) => a.graph_id), ['echo', 'interrupt', 'stress']);

    const page1 = await sdk.client.assistants.search({ metadata: tag, limit: 2, includePagination: true });
    assert.deepEqual(page1.assistants.map((a) => a.assistant_id), ['q3', 'q2']);
    assert.equal(page1.next, '2');
    const page2 = await sdk.client.assistants.search({ metadata: tag, limit: 2, offset: Number(page1.next), includePagination: true });
    assert.deepEqual(page2.assistants.map((a) => a.assistant_id), ['q1']);
    assert.equal(page2.next, null);

    assert.equal(await sdk.client.assistants.count({ metadata: tag }), 3);
    assert.equal(await sdk.client.assistants.count({ metadata: tag, name: 'query' }), 2);
    assert.equal(await sdk.client.assistants.count({ graphId: 'stress', metadata: tag }), 0);
    assert.ok((await sdk.client.assistants.count()) >= 6);

    const bad = await rejectsWith(sdk.client.assistants.search({ limit: 5000 }), 422);
    assert.deepEqual(bad.detail[0].loc, ['body', 'limit']);
    await rejectsWith(sdk.client.assistants.search({ select: ['nope'] }), 422);
  });

  test('getGraph, getSchemas and getSubgraphs', async () => {
    const g = await sdk.client.assistants.getGraph('echo');
    assert.deepEqual(g.nodes.map((n) => n.id), ['__start__', 'echo', '__end__']);
    assert.deepEqual(g.edges.map((e) => [e.source, e.target]), [['__start__', 'echo'], ['echo', '__end__']]);
    const x = await sdk.client.assistants.getGraph(STRESS, { xray: true });
    assert.deepEqual(x.nodes.map((n) => n.id), ['__start__', 'emit', '__end__']);
    assert.deepEqual((await sdk.client.assistants.getGraph('interrupt', { xray: 3 })).nodes.map((n) => n.id), ['__start__', 'ask', '__end__']);
    await rejectsWith(sdk.client.assistants.getGraph('echo', { xray: 0 }), 422);

    const mine = await sdk.client.assistants.create({ graphId: 'stress' });
    const s = await sdk.client.assistants.getSchemas(mine.assistant_id);
    assert.equal(s.graph_id, 'stress');
    for (const k of ['input_schema', 'output_schema', 'state_schema', 'config_schema', 'context_schema']) assert.equal(s[k].type, 'object', k);
    assert.equal(s.config_schema.properties.tokens.default, 10);
    assert.ok(s.state_schema.properties.messages);

    assert.deepEqual(await sdk.client.assistants.getSubgraphs('echo'), {});
    assert.deepEqual(await sdk.client.assistants.getSubgraphs('echo', { recurse: true }), {});
    assert.deepEqual(await sdk.client.assistants.getSubgraphs('echo', { namespace: 'child', recurse: false }), {});

    await rejectsWith(sdk.client.assistants.getGraph('no-such-assistant'), 404);
    await rejectsWith(sdk.client.assistants.getSchemas('no-such-assistant'), 404);
    await rejectsWith(sdk.client.assistants.getSubgraphs('no-such-assistant'), 404);
  });

  test('delete, with and without deleteThreads', async () => {
    const a = await sdk.client.assistants.create({ graphId: 'echo' });
    const b = await sdk.client.assistants.create({ graphId: 'echo' });
    const ta = await sdk.client.threads.create({ metadata: { assistant_id: a.assistant_id } });
    const tb = await sdk.client.threads.create({ metadata: { assistant_id: b.assistant_id } });

    assert.equal(await sdk.client.assistants.delete(b.assistant_id), undefined);
    await rejectsWith(sdk.client.assistants.get(b.assistant_id), 404);
    assert.equal((await sdk.client.threads.get(tb.thread_id)).thread_id, tb.thread_id);

    assert.equal(await sdk.client.assistants.delete(a.assistant_id, { deleteThreads: true }), undefined);
    await rejectsWith(sdk.client.assistants.get(a.assistant_id), 404);
    await rejectsWith(sdk.client.threads.get(ta.thread_id), 404);

    await rejectsWith(sdk.client.assistants.delete(a.assistant_id), 404);
  });
});
