// Every field the SDK line's own type definitions let a user pass, checked against agentd.
//
// sdkSurface (lib.mjs) reads the line's installed .d.ts with its TypeScript compiler and lists, for
// each public method of client.assistants, .threads, .runs, .crons and .store, every property of
// every object-typed parameter (payload, options, query; RunsCreatePayload, CronsCreatePayload and
// the like resolved through inheritance and aliases). FIELDS below says, for each
// `Class.method.param.property`, what happens to it:
//
//   wire(sample, check?)          sent through that method: the server must accept it (no 4xx), and
//                                 check(ctx, result) sees its effect where that is cheap;
//   refused(sample, key, why)     sent: the server refuses it on purpose with a 422 at
//                                 ["body" or "query", key] (when this line's SDK puts `key` on the
//                                 wire at all: a dropped field is reported, not failed);
//   local(why, sample?, check?)   not sent on the wire (an AbortSignal, a callback, a client-side
//                                 reconnect knob); with a sample it is still passed, and checked.
//
// An entry's `with` adds other properties its sample needs to the same parameter.
//
// CALLS says how each method is called. A method or a property the tables do not know fails with a
// message saying what to add: a field a new SDK release adds fails here, not in a user's request.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CLIENT_CLASSES, Client, SDK_LINES, SDK_VERSION, sdkSurface, sdkSurfaceOf, useSdk } from './lib.mjs';

const human = (content) => ({ messages: [{ role: 'user', content }] });
const contents = (values) => values.messages.map((m) => m.content);

// --- the kinds of table entries ---

const COMPUTED = Symbol('computed sample');
/** A sample computed for each call (it may set the call's context up, e.g. a thread with a run). */
const at = (fn) => ({ [COMPUTED]: fn });
const wire = (sample, check, more) => ({ kind: 'wire', sample, check, ...more });
const refused = (sample, key, why) => ({ kind: 'refused', sample, key, why });
const local = (why, sample, check) => ({ kind: 'local', why, sample, check });

/** Entries shared by several methods (the RunCreate fields, paging): each is tagged with `name`. */
const shared = (name, entries) => Object.fromEntries(Object.entries(entries).map(([k, e]) => [k, { ...e, shared: name }]));

const SIGNAL = local('an AbortSignal: it aborts the request on the client', at(() => new AbortController().signal));

/** A spy for callback options: calls records each call's arguments. */
function spy() {
  const f = (...args) => {
    f.calls.push(args);
  };
  f.calls = [];
  return f;
}

// --- the calls ---

// The per-call context: a thread made on first use, a thread with one finished run, a long run to
// cancel, what the call left behind for the checks (run, thread), cleanups.
function context(c) {
  const ctx = {
    c,
    assistant: 'echo', // the graph a run call uses (a sample may switch it)
    stateless: false, // a run call without a thread (a sample may ask for it)
    threadId: null,
    firstRun: null,
    run: null, // the Run record a run call made, when it can be read back
    cleanups: [],
    async thread() {
      if (!ctx.threadId) ctx.threadId = (await c.threads.create()).thread_id;
      return ctx.threadId;
    },
    async ranThread() {
      const t = await ctx.thread();
      if (!ctx.firstRun) {
        ctx.firstRun = await c.runs.create(t, 'echo', { input: human('first') });
        await c.runs.join(t, ctx.firstRun.run_id);
      }
      return t;
    },
    async checkpoint() {
      return (await c.threads.getState(await ctx.ranThread())).checkpoint;
    },
    // A run that goes on until cancelled (one token every 50 ms, up to 1000).
    async longRun() {
      const t = await ctx.thread();
      if (!ctx.long) {
        ctx.long = await c.runs.create(t, 'stress', {
          input: human('long'),
          streamMode: ['custom'],
          config: { configurable: { tokens: 1000, delay_ms: 50, mode: 'custom' } },
        });
        ctx.cleanups.push(async () => {
          const r = await c.runs.get(t, ctx.long.run_id);
          if (r.status === 'pending' || r.status === 'running') await c.runs.cancel(t, r.run_id, true);
        });
      }
      return ctx.long;
    },
  };
  return ctx;
}

async function collect(iterable) {
  const out = [];
  for await (const p of iterable) out.push(p);
  return out;
}

/** The RunCreate-like body of a run call: an input unless the payload carries a command. */
function runBody(ctx, payload = {}) {
  const body = { input: human('x'), ...payload };
  if ('command' in payload) delete body.input;
  return body;
}

/** After a run call on a thread: the run's record (the thread's newest run) for the checks. */
async function readBack(ctx, runId) {
  if (ctx.stateless) return;
  const t = ctx.threadId;
  ctx.run = runId ? await ctx.c.runs.get(t, runId) : (await ctx.c.runs.list(t, { limit: 1 }))[0];
}

/** The cron a create answered: a Cron, or (an enabled cron's first firing) a Run naming it. */
const cronId = (r) => r.cron_id ?? r.metadata?.cron_id;

// `Class.method` → (ctx, args) => result; args holds, by parameter name, the object the entry under
// test fills (one property); the call supplies the rest.
const CALLS = {
  'AssistantsClient.get': (ctx, a) => ctx.c.assistants.get('echo', a.options),
  'AssistantsClient.getGraph': (ctx, a) => ctx.c.assistants.getGraph('echo', a.options),
  'AssistantsClient.getSchemas': (ctx, a) => ctx.c.assistants.getSchemas('echo', a.options),
  'AssistantsClient.getSubgraphs': (ctx, a) => ctx.c.assistants.getSubgraphs('echo', a.options),
  'AssistantsClient.create': (ctx, a) => ctx.c.assistants.create({ graphId: 'echo', ...a.payload }),
  'AssistantsClient.update': async (ctx, a) => {
    const x = await ctx.c.assistants.create({ graphId: 'echo', metadata: { v: 1 } });
    return ctx.c.assistants.update(x.assistant_id, { ...a.payload });
  },
  'AssistantsClient.delete': async (ctx, a) => {
    ctx.assistantId = (await ctx.c.assistants.create({ graphId: 'echo' })).assistant_id;
    return ctx.c.assistants.delete(ctx.assistantId, a.options);
  },
  'AssistantsClient.search': (ctx, a) => ctx.c.assistants.search({ ...a.query }),
  'AssistantsClient.count': (ctx, a) => ctx.c.assistants.count(a.query),
  'AssistantsClient.getVersions': async (ctx, a) => {
    const x = await ctx.c.assistants.create({ graphId: 'echo', metadata: { v: 1 } });
    await ctx.c.assistants.update(x.assistant_id, { metadata: { v: 2 } });
    return ctx.c.assistants.getVersions(x.assistant_id, a.payload);
  },
  'AssistantsClient.setLatest': async (ctx, a) => {
    const x = await ctx.c.assistants.create({ graphId: 'echo', name: 'one' });
    await ctx.c.assistants.update(x.assistant_id, { name: 'two' });
    return ctx.c.assistants.setLatest(x.assistant_id, 1, a.options);
  },

  'ThreadsClient.get': async (ctx, a) => ctx.c.threads.get(await ctx.thread(), a.options),
  'ThreadsClient.create': (ctx, a) => ctx.c.threads.create(a.payload),
  'ThreadsClient.copy': async (ctx, a) => ctx.c.threads.copy(await ctx.ranThread(), a.options),
  'ThreadsClient.update': async (ctx, a) => ctx.c.threads.update(await ctx.thread(), { ...a.payload }),
  'ThreadsClient.delete': async (ctx, a) => ctx.c.threads.delete(await ctx.thread(), a.options),
  'ThreadsClient.prune': async (ctx, a) => ctx.c.threads.prune([await ctx.thread()], a.options),
  'ThreadsClient.search': async (ctx, a) => {
    await ctx.thread();
    return ctx.c.threads.search(a.query);
  },
  'ThreadsClient.count': (ctx, a) => ctx.c.threads.count(a.query),
  'ThreadsClient.getState': async (ctx, a) => {
    const t = await ctx.ranThread();
    const cp = a.checkpoint && { checkpoint_id: (await ctx.checkpoint()).checkpoint_id, ...a.checkpoint };
    return ctx.c.threads.getState(t, cp, a.options);
  },
  'ThreadsClient.updateState': async (ctx, a) =>
    ctx.c.threads.updateState(await ctx.ranThread(), { values: human('u'), asNode: 'echo', ...a.options }),
  'ThreadsClient.patchState': async (ctx, a) => {
    const t = await ctx.ranThread();
    const target = a.threadIdOrConfig ? { configurable: { thread_id: t }, ...a.threadIdOrConfig } : t;
    return ctx.c.threads.patchState(target, a.metadata ?? { reviewed: true }, a.options);
  },
  'ThreadsClient.getHistory': async (ctx, a) => ctx.c.threads.getHistory(await ctx.ranThread(), a.options),
  'ThreadsClient.joinStream': async (ctx, a) => {
    await ctx.longRun();
    const seen = [];
    // Up to the first token of the long run: the stream follows the thread's active run.
    for await (const p of ctx.c.threads.joinStream(ctx.threadId, a.options)) {
      seen.push(p);
      if (p.event === 'custom') break;
    }
    return seen;
  },
  'ThreadsClient.stream': async (ctx, a) => {
    const thread = ctx.c.threads.stream({ assistantId: 'echo', ...a.options });
    try {
      await thread.run.start({ input: human('v2') });
      return await thread.output;
    } finally {
      await thread.close();
    }
  },

  'RunsClient.stream': async (ctx, a) => {
    const t = ctx.stateless ? null : await ctx.thread();
    const parts = await collect(ctx.c.runs.stream(t, ctx.assistant, runBody(ctx, a.payload)));
    await readBack(ctx, parts.find((p) => p.event === 'metadata')?.data.run_id);
    return parts;
  },
  'RunsClient.create': async (ctx, a) => {
    const t = ctx.stateless ? null : await ctx.thread();
    const run = await ctx.c.runs.create(t, ctx.assistant, runBody(ctx, a.payload));
    ctx.output = await ctx.c.runs.join(run.thread_id, run.run_id);
    await readBack(ctx, run.run_id);
    return run;
  },
  'RunsClient.createBatch': async (ctx, a) => {
    const runs = await ctx.c.runs.createBatch([{ assistantId: 'echo', ...runBody(ctx, a.payloads) }], a.options);
    assert.equal(runs.length, 1);
    return runs;
  },
  'RunsClient.wait': async (ctx, a) => {
    const t = ctx.stateless ? null : await ctx.thread();
    const out = await ctx.c.runs.wait(t, ctx.assistant, runBody(ctx, a.payload));
    ctx.output = out;
    await readBack(ctx);
    return out;
  },
  'RunsClient.list': async (ctx, a) => ctx.c.runs.list(await ctx.ranThread(), a.options),
  'RunsClient.get': async (ctx, a) => ctx.c.runs.get(await ctx.ranThread(), ctx.firstRun.run_id, a.options),
  'RunsClient.cancel': async (ctx, a) => {
    const run = await ctx.longRun();
    await ctx.c.runs.cancel(ctx.threadId, run.run_id, true, 'interrupt', a.options);
    ctx.run = await ctx.c.runs.get(ctx.threadId, run.run_id);
  },
  'RunsClient.cancelMany': async (ctx, a) => {
    const run = await ctx.longRun();
    const opts = a.options ?? {};
    const base = 'status' in opts ? { threadId: ctx.threadId } : { threadId: ctx.threadId, runIds: [run.run_id] };
    await ctx.c.runs.cancelMany({ ...base, ...opts });
    await ctx.c.runs.join(ctx.threadId, run.run_id);
    ctx.run = await ctx.c.runs.get(ctx.threadId, run.run_id);
  },
  'RunsClient.join': async (ctx, a) => ctx.c.runs.join(await ctx.ranThread(), ctx.firstRun.run_id, a.options),
  'RunsClient.joinStream': async (ctx, a) =>
    collect(ctx.c.runs.joinStream(await ctx.ranThread(), ctx.firstRun.run_id, a.options)),
  'RunsClient.delete': async (ctx, a) => ctx.c.runs.delete(await ctx.ranThread(), ctx.firstRun.run_id, a.options),

  'CronsClient.createForThread': async (ctx, a) => {
    const r = await ctx.c.crons.createForThread(await ctx.thread(), 'echo', { schedule: '0 0 1 1 *', enabled: false, ...a.payload });
    ctx.cleanups.push(() => ctx.c.crons.delete(cronId(r)));
    return r;
  },
  'CronsClient.create': async (ctx, a) => {
    const r = await ctx.c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false, ...a.payload });
    ctx.cleanups.push(() => ctx.c.crons.delete(cronId(r)));
    return r;
  },
  'CronsClient.update': async (ctx, a) => {
    const r = await ctx.c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false, input: human('c') });
    ctx.cleanups.push(() => ctx.c.crons.delete(r.cron_id));
    return ctx.c.crons.update(r.cron_id, a.payload);
  },
  'CronsClient.delete': async (ctx, a) => {
    const r = await ctx.c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false });
    ctx.cronId = r.cron_id;
    return ctx.c.crons.delete(r.cron_id, a.options);
  },
  'CronsClient.search': async (ctx, a) => {
    const r = await ctx.c.crons.create('echo', { schedule: '0 0 1 1 *', enabled: false });
    ctx.cleanups.push(() => ctx.c.crons.delete(r.cron_id));
    return ctx.c.crons.search(a.query);
  },
  'CronsClient.count': (ctx, a) => ctx.c.crons.count(a.query),

  'StoreClient.putItem': async (ctx, a) => {
    ctx.ns = ['fields', randomUUID()];
    return ctx.c.store.putItem(ctx.ns, 'k', { v: 1 }, a.options);
  },
  'StoreClient.getItem': async (ctx, a) => {
    await ctx.c.store.putItem(['fields', 'get'], 'k', { v: 2 });
    return ctx.c.store.getItem(['fields', 'get'], 'k', a.options);
  },
  'StoreClient.deleteItem': async (ctx, a) => {
    await ctx.c.store.putItem(['fields', 'del'], 'k', { v: 3 });
    return ctx.c.store.deleteItem(['fields', 'del'], 'k', a.options);
  },
  'StoreClient.searchItems': async (ctx, a) => {
    await ctx.c.store.putItem(['fields', 'search'], 'k', { v: 4 });
    return ctx.c.store.searchItems(['fields'], a.options);
  },
  'StoreClient.listNamespaces': async (ctx, a) => {
    await ctx.c.store.putItem(['fields', 'ns', 'deep'], 'k', { v: 5 });
    return ctx.c.store.listNamespaces(a.options);
  },
};

// --- the fields ---

const threadStatus = async (ctx) => (await ctx.c.threads.get(ctx.threadId)).status;

// The RunCreate fields, as runs.create, .stream and .wait send them (each method's own entries below
// override these where they differ).
const RUN_FIELDS = shared('RUN_FIELDS', {
  input: wire(human('in'), async (ctx) => {
    if (ctx.output) assert.equal(contents(ctx.output).at(-1), 'in');
    assert.deepEqual(ctx.run.kwargs.input, human('in'));
  }),
  command: wire(
    at(async (ctx) => {
      // A resume needs an interrupted thread: the interrupt graph's question, answered.
      await ctx.c.runs.wait(await ctx.thread(), 'interrupt', { input: human('q') });
      ctx.assistant = 'interrupt';
      return { resume: 'fine' };
    }),
    async (ctx) => {
      const state = await ctx.c.threads.getState(ctx.threadId);
      assert.deepEqual(contents(state.values), ['q', 'you said: fine']);
    },
  ),
  config: wire({ tags: ['fields'], recursion_limit: 10, configurable: { who: 'config' } }, (ctx) => {
    assert.deepEqual(ctx.run.kwargs.config.tags, ['fields']);
    assert.equal(ctx.run.kwargs.config.configurable.who, 'config');
  }),
  context: wire({ who: 'context' }, (ctx) => assert.deepEqual(ctx.run.kwargs.context, { who: 'context' })),
  metadata: wire({ fields: 'yes' }, (ctx) => assert.equal(ctx.run.metadata.fields, 'yes')),
  streamMode: wire(['values', 'updates']),
  streamSubgraphs: wire(true),
  streamResumable: wire(true),
  streamNamespaces: wire(['echo']),
  streamIdleReconnect: local('how the client reconnects a stream that went quiet', 60000),
  feedbackKeys: refused(['score'], 'feedback_keys', 'feedback keys need LangSmith, which agentd does not use'),
  checkpointId: wire(
    at(async (ctx) => (await ctx.checkpoint()).checkpoint_id),
    async (ctx) => assert.deepEqual(contents((await ctx.c.threads.getState(ctx.threadId)).values), ['first', 'first', 'x', 'x']),
  ),
  checkpoint: wire(at(async (ctx) => ({ checkpoint_id: (await ctx.checkpoint()).checkpoint_id, checkpoint_ns: '' }))),
  checkpointDuring: wire(false),
  durability: wire('sync'),
  interruptBefore: wire(['echo'], async (ctx) => assert.equal(await threadStatus(ctx), 'interrupted')),
  interruptAfter: wire(['echo'], async (ctx) => assert.equal(await threadStatus(ctx), 'interrupted')),
  signal: SIGNAL,
  webhook: refused('https://example.com/hook', 'webhook', 'webhooks are not delivered yet'),
  onDisconnect: wire('continue'),
  afterSeconds: wire(1),
  ifNotExists: wire(
    at((ctx) => {
      ctx.threadId = randomUUID(); // a thread nobody made: the run creates it
      return 'create';
    }),
    async (ctx) => assert.equal((await ctx.c.threads.get(ctx.threadId)).thread_id, ctx.threadId),
  ),
  strictResume: wire(true), // every resume is strict here (runs.test covers a refused one)
  onRunCreated: local(
    'a callback: the client calls it with the ids in the answer\'s Content-Location',
    at((ctx) => (ctx.onRunCreated = spy())),
    (ctx) => assert.deepEqual(ctx.onRunCreated.calls, [[{ run_id: ctx.run.run_id, thread_id: ctx.threadId }]]),
  ),
  _langsmithTracer: refused({ projectName: 'p', exampleId: randomUUID() }, 'langsmith_tracer', 'agentd does not trace to LangSmith'),
  multitaskStrategy: wire('enqueue', (ctx) => assert.equal(ctx.run.multitask_strategy, 'enqueue')),
  onCompletion: wire(
    at((ctx) => {
      ctx.stateless = true; // on_completion is for runs without a thread
      return 'keep';
    }),
  ),
});

// Crons take the run fields as their run template; the cron's own fields come on top.
const { streamNamespaces: _n, streamIdleReconnect: _i, ...CRON_RUN_BASE } = RUN_FIELDS; // runs.stream only
const CRON_RUN_FIELDS = shared('CRON_RUN_FIELDS', {
  ...CRON_RUN_BASE,
  input: wire(human('cron'), (ctx, r) => assert.deepEqual(r.payload.input, human('cron'))),
  command: wire({ resume: 'x' }),
  config: wire({ tags: ['cron'] }),
  context: wire({ who: 'cron' }),
  metadata: wire({ owner: 'fields' }, (ctx, r) => assert.equal(r.metadata.owner, 'fields')),
  checkpointId: wire(randomUUID()),
  checkpoint: wire({ checkpoint_id: randomUUID(), checkpoint_ns: '' }),
  feedbackKeys: wire(['score']), // not a cron field: ignored
  strictResume: wire(true), // not a cron field: ignored
  _langsmithTracer: wire({ projectName: 'p' }), // not a cron field: ignored
  interruptBefore: wire(['echo']),
  interruptAfter: wire(['echo']),
  multitaskStrategy: wire('enqueue'),
  ifNotExists: wire('create'),
  onCompletion: wire('keep'),
  onRunCreated: local('a callback the crons client never calls', spy()),
  schedule: wire('0 12 * * *', (ctx, r) => assert.equal(r.schedule, '0 12 * * *')),
  timezone: wire('Europe/Berlin', (ctx, r) => assert.equal(r.timezone, 'Europe/Berlin')),
  enabled: wire(true),
  endTime: wire('2099-01-01T00:00:00Z', (ctx, r) => assert.equal(Date.parse(r.end_time), Date.parse('2099-01-01T00:00:00Z'))),
  onRunCompleted: wire('keep', (ctx, r) => assert.equal(r.on_run_completed, 'keep')),
});

const FIELDS = {};
function table(prefix, entries) {
  for (const [k, v] of Object.entries(entries)) FIELDS[`${prefix}.${k}`] = v;
}

table('AssistantsClient.get.options', { signal: SIGNAL });
table('AssistantsClient.getGraph.options', {
  xray: wire(true, (ctx, g) => assert.deepEqual(g.nodes.map((n) => n.id), ['__start__', 'echo', '__end__'])),
  signal: SIGNAL,
});
table('AssistantsClient.getSchemas.options', { signal: SIGNAL });
table('AssistantsClient.getSubgraphs.options', {
  namespace: wire('child', (ctx, s) => assert.deepEqual(s, {})),
  recurse: wire(true, (ctx, s) => assert.deepEqual(s, {})),
  signal: SIGNAL,
});
table('AssistantsClient.create.payload', {
  graphId: wire('stress', (ctx, a) => assert.equal(a.graph_id, 'stress')),
  config: wire({ tags: ['t'] }, (ctx, a) => assert.deepEqual(a.config, { tags: ['t'] })),
  context: wire({ user: 'u' }, (ctx, a) => assert.deepEqual(a.context, { user: 'u' })),
  metadata: wire({ m: 1 }, (ctx, a) => assert.deepEqual(a.metadata, { m: 1 })),
  assistantId: wire(at((ctx) => (ctx.expect = randomUUID())), (ctx, a) => assert.equal(a.assistant_id, ctx.expect)),
  ifExists: wire('do_nothing'),
  name: wire('Named', (ctx, a) => assert.equal(a.name, 'Named')),
  description: wire('Described', (ctx, a) => assert.equal(a.description, 'Described')),
  signal: SIGNAL,
});
table('AssistantsClient.update.payload', {
  graphId: wire('stress', (ctx, a) => assert.equal(a.graph_id, 'stress')),
  config: wire({ tags: ['u'] }, (ctx, a) => assert.deepEqual(a.config, { tags: ['u'] })),
  context: wire({ user: 'v' }, (ctx, a) => assert.deepEqual(a.context, { user: 'v' })),
  metadata: wire({ w: 2 }, (ctx, a) => assert.deepEqual(a.metadata, { v: 1, w: 2 })),
  name: wire('Renamed', (ctx, a) => assert.equal(a.name, 'Renamed')),
  description: wire('Redescribed', (ctx, a) => assert.equal(a.description, 'Redescribed')),
  signal: SIGNAL,
});
table('AssistantsClient.delete.options', {
  signal: SIGNAL,
  deleteThreads: wire(true, async (ctx) => {
    await assert.rejects(ctx.c.assistants.get(ctx.assistantId), (e) => e.status === 404);
  }),
});
const SEARCH_PAGING = shared('SEARCH_PAGING', {
  limit: wire(1, (ctx, r) => assert.equal(r.length, 1)),
  offset: wire(1, (ctx, r) => assert.ok(Array.isArray(r))),
  sortOrder: wire('asc'),
  signal: SIGNAL,
});
table('AssistantsClient.search.query', {
  ...SEARCH_PAGING,
  graphId: wire('interrupt', (ctx, r) => assert.ok(r.every((a) => a.graph_id === 'interrupt') && r.length >= 1)),
  name: wire('echo', (ctx, r) => assert.ok(r.some((a) => a.name === 'echo'))),
  metadata: wire({ created_by: 'system' }, (ctx, r) => assert.equal(r.length, 3)),
  sortBy: wire('name'),
  select: wire(['assistant_id'], (ctx, r) => assert.deepEqual(Object.keys(r[0]), ['assistant_id'])),
  includePagination: wire(true, (ctx, r) => assert.ok(Array.isArray(r.assistants) && 'next' in r)),
});
table('AssistantsClient.count.query', {
  metadata: wire({ created_by: 'system' }, (ctx, n) => assert.equal(n, 3)),
  graphId: wire('stress', (ctx, n) => assert.ok(n >= 1)),
  name: wire('interrupt', (ctx, n) => assert.ok(n >= 1)),
  signal: SIGNAL,
});
table('AssistantsClient.getVersions.payload', {
  metadata: wire({ v: 1 }, (ctx, r) => assert.deepEqual(r.map((v) => v.version), [1])),
  limit: wire(1, (ctx, r) => assert.deepEqual(r.map((v) => v.version), [2])),
  offset: wire(1, (ctx, r) => assert.deepEqual(r.map((v) => v.version), [1])),
  signal: SIGNAL,
});
table('AssistantsClient.setLatest.options', { signal: SIGNAL });

table('ThreadsClient.get.options', {
  signal: SIGNAL,
  include: wire(['ttl'], (ctx, t) => assert.ok('ttl' in t)),
});
table('ThreadsClient.create.payload', {
  metadata: wire({ m: 1 }, (ctx, t) => assert.deepEqual(t.metadata, { m: 1 })),
  threadId: wire(at((ctx) => (ctx.expect = randomUUID())), (ctx, t) => assert.equal(t.thread_id, ctx.expect)),
  ifExists: wire('do_nothing'),
  graphId: wire('echo', (ctx, t) => assert.equal(t.metadata.graph_id, 'echo')),
  supersteps: wire(
    [{ updates: [{ values: human('s1'), asNode: 'echo' }] }, { updates: [{ values: human('s2'), asNode: 'echo' }] }],
    async (ctx, t) => assert.deepEqual(contents((await ctx.c.threads.getState(t.thread_id)).values), ['s1', 's2']),
    { with: { graphId: 'echo' } }, // the graph whose node the updates are written as
  ),
  ttl: wire(5),
  signal: SIGNAL,
});
table('ThreadsClient.copy.options', { signal: SIGNAL });
table('ThreadsClient.update.payload', {
  metadata: wire({ up: 1 }, (ctx, t) => assert.equal(t.metadata.up, 1)),
  ttl: wire({ ttl: 10, strategy: 'delete' }),
  returnMinimal: wire(true, (ctx, r) => assert.equal(r, undefined)),
  signal: SIGNAL,
});
table('ThreadsClient.delete.options', { signal: SIGNAL });
table('ThreadsClient.prune.options', {
  strategy: wire(
    at(async (ctx) => {
      await ctx.ranThread(); // three checkpoints
      return 'keep_latest';
    }),
    async (ctx) => assert.equal((await ctx.c.threads.getHistory(ctx.threadId)).length, 1),
  ),
  signal: SIGNAL,
});
table('ThreadsClient.search.query', {
  ...SEARCH_PAGING,
  metadata: wire({ nobody: 'has this' }, (ctx, r) => assert.deepEqual(r, [])),
  ids: wire(at(async (ctx) => [await ctx.thread()]), (ctx, r) => assert.deepEqual(r.map((t) => t.thread_id), [ctx.threadId])),
  status: wire('idle', (ctx, r) => assert.ok(r.every((t) => t.status === 'idle'))),
  sortBy: wire('created_at'),
  select: wire(['thread_id'], (ctx, r) => assert.ok(r.every((t) => Object.keys(t).join() === 'thread_id'))),
  values: wire({ messages: [{ content: 'nobody said this' }] }, (ctx, r) => assert.deepEqual(r, [])),
  extract: wire({ m: 'metadata' }, (ctx, r) => assert.ok(r.every((t) => 'extracted' in t))),
});
table('ThreadsClient.count.query', {
  metadata: wire({ nobody: 'has this' }, (ctx, n) => assert.equal(n, 0)),
  values: wire({ nobody: 1 }, (ctx, n) => assert.equal(n, 0)),
  status: wire('busy'),
  signal: SIGNAL,
});
table('ThreadsClient.getState.checkpoint', {
  thread_id: wire(at((ctx) => ctx.thread())),
  checkpoint_ns: wire(''),
  checkpoint_id: wire(at(async (ctx) => (await ctx.checkpoint()).checkpoint_id), (ctx, s) => assert.deepEqual(contents(s.values), ['first', 'first'])),
  checkpoint_map: wire({}),
});
table('ThreadsClient.getState.options', {
  subgraphs: wire(true, (ctx, s) => assert.deepEqual(contents(s.values), ['first', 'first'])),
  select: wire(['values'], (ctx, s) => assert.ok('values' in s)),
  signal: SIGNAL,
});
table('ThreadsClient.updateState.options', {
  values: wire(human('updated'), async (ctx) => assert.equal(contents((await ctx.c.threads.getState(ctx.threadId)).values).at(-1), 'updated')),
  checkpoint: wire(at(async (ctx) => await ctx.checkpoint())),
  checkpointId: wire(at(async (ctx) => (await ctx.checkpoint()).checkpoint_id)),
  asNode: wire('echo', async (ctx) => assert.equal((await ctx.c.threads.getState(ctx.threadId)).metadata.source, 'update')),
  signal: SIGNAL,
});
// patchState's first parameter is a thread id or a Config naming the thread; its second is the metadata.
table('ThreadsClient.patchState.threadIdOrConfig', {
  tags: wire(['t']),
  recursion_limit: wire(5),
  configurable: wire(at(async (ctx) => ({ thread_id: await ctx.thread() }))),
});
const patched = (key, value) => async (ctx) => assert.deepEqual((await ctx.c.threads.getState(ctx.threadId)).metadata[key], value);
table('ThreadsClient.patchState.metadata', {
  source: wire('reviewed', patched('source', 'reviewed')),
  step: wire(42, patched('step', 42)),
  writes: wire({ echo: null }, patched('writes', { echo: null })),
  parents: wire({ '': 'p' }, patched('parents', { '': 'p' })),
});
table('ThreadsClient.patchState.options', { signal: SIGNAL });
table('ThreadsClient.getHistory.options', {
  limit: wire(1, (ctx, h) => assert.equal(h.length, 1)),
  before: wire(
    at(async (ctx) => ({ configurable: { checkpoint_id: (await ctx.checkpoint()).checkpoint_id } })),
    (ctx, h) => assert.equal(h.length, 2),
  ),
  checkpoint: wire({ checkpoint_ns: '' }, (ctx, h) => assert.equal(h.length, 3)),
  metadata: wire({ source: 'input' }, (ctx, h) => assert.deepEqual(h.map((s) => s.metadata.source), ['input'])),
  select: wire(['values'], (ctx, h) => assert.ok(h.length === 3 && h.every((s) => 'values' in s))),
  signal: SIGNAL,
});
table('ThreadsClient.joinStream.options', {
  lastEventId: wire(at(async (ctx) => `${(await ctx.longRun()).run_id}:0`), (ctx, parts) => assert.equal(parts.at(-1).event, 'custom')),
  streamMode: wire('run_modes', (ctx, parts) => assert.equal(parts.at(-1).event, 'custom')),
  signal: SIGNAL,
});
table('ThreadsClient.stream.options', {
  assistantId: wire('echo', (ctx, out) => assert.deepEqual(out.messages.map((m) => m.kwargs?.content ?? m.content), ['v2', 'v2'])),
  transport: local('which transport the client opens (sse or websocket)', 'sse'),
  startingCommandId: wire(100),
  fetch: local('the fetch the client uses', at(() => (...args) => fetch(...args))),
  webSocketFactory: local('how the client opens a WebSocket (transport "websocket" only)'),
  maxReconnectAttempts: local('how often the client reconnects a dropped stream', 0),
  streamIdleReconnect: local('how the client reconnects a stream that went quiet', 60000),
  reconnectDelayMs: local('the client\'s backoff between reconnects', () => 10),
  onReconnect: local('a callback for the client\'s reconnects', spy()),
  onConnected: local('a callback: the client calls it once its stream is open', at((ctx) => (ctx.spy = spy())), (ctx) =>
    assert.ok(ctx.spy.calls.length >= 1, 'onConnected was called')),
});

table('RunsClient.stream.payload', {
  ...RUN_FIELDS,
  streamMode: wire(['values', 'updates'], (ctx, parts) => {
    assert.ok(parts.some((p) => p.event === 'values'));
    assert.ok(parts.some((p) => p.event === 'updates'));
  }),
});
table('RunsClient.create.payload', {
  ...RUN_FIELDS,
  afterSeconds: wire(1, (ctx, run) => assert.equal(run.status, 'pending')),
});
table('RunsClient.wait.payload', {
  ...RUN_FIELDS,
  raiseError: local('whether the client throws when the answer carries __error__', false),
});
// createBatch sends each payload as given plus assistant_id: camelCase keys reach the server as
// they are (and are ignored), the runs are stateless. No checks: their threads go when they end.
table('RunsClient.createBatch.payloads', {
  ...Object.fromEntries(Object.entries(RUN_FIELDS).map(([k, e]) => [k, { ...e, check: undefined }])),
  assistantId: wire('echo'),
  command: wire({ update: human('cmd') }),
  checkpointId: wire(randomUUID()),
  checkpoint: wire({ checkpoint_ns: '' }), // a run without a thread has no checkpoint to start from
  interruptBefore: wire(['echo']),
  interruptAfter: wire(['echo']),
  ifNotExists: wire('create'),
  onCompletion: wire('keep'),
  onRunCreated: local('a function: JSON leaves it out, and createBatch calls no callback', spy()),
  // Sent as they are named here, which the server does not know (ignored): not feedback_keys,
  // strict_resume or langsmith_tracer.
  feedbackKeys: wire(['score']),
  strictResume: wire(true),
  _langsmithTracer: wire({ projectName: 'p' }),
});
table('RunsClient.createBatch.options', { signal: SIGNAL });
table('RunsClient.list.options', {
  limit: wire(1, (ctx, r) => assert.equal(r.length, 1)),
  offset: wire(1, (ctx, r) => assert.deepEqual(r, [])),
  status: wire('success', (ctx, r) => assert.deepEqual(r.map((x) => x.run_id), [ctx.firstRun.run_id])),
  select: wire(['run_id', 'status'], (ctx, r) => assert.deepEqual(r, [{ run_id: ctx.firstRun.run_id, status: 'success' }])),
  signal: SIGNAL,
});
table('RunsClient.get.options', { signal: SIGNAL });
table('RunsClient.cancel.options', {
  signal: SIGNAL,
  reason: wire('taken', (ctx) => assert.match(ctx.run.cancel_reason ?? '', /^taken:/)),
});
table('RunsClient.cancelMany.options', {
  threadId: wire(at((ctx) => ctx.thread()), (ctx) => assert.equal(ctx.run.status, 'interrupted')),
  runIds: wire(at(async (ctx) => [(await ctx.longRun()).run_id]), (ctx) => assert.equal(ctx.run.status, 'interrupted')),
  status: wire('all', (ctx) => assert.equal(ctx.run.status, 'interrupted')),
  action: wire('interrupt', (ctx) => assert.equal(ctx.run.status, 'interrupted')),
  signal: SIGNAL,
});
table('RunsClient.join.options', {
  cancelOnDisconnect: wire(true, (ctx, out) => assert.deepEqual(contents(out), ['first', 'first'])),
  signal: SIGNAL,
});
table('RunsClient.joinStream.options', {
  signal: SIGNAL,
  cancelOnDisconnect: wire(true, (ctx, parts) => assert.equal(parts.at(-1).event, 'end')),
  lastEventId: wire('1', (ctx, parts) => assert.equal(parts.at(-1).event, 'end')),
  checkpointId: wire(at(async (ctx) => (await ctx.checkpoint()).checkpoint_id)),
  streamMode: wire(['values', 'updates'], (ctx, parts) => assert.equal(parts.at(-1).event, 'end')),
  streamNamespaces: wire(['echo']),
  streamIdleReconnect: local('how the client reconnects a stream that went quiet', 60000),
});
table('RunsClient.delete.options', { signal: SIGNAL });

table('CronsClient.createForThread.payload', {
  ...CRON_RUN_FIELDS,
  onRunCompleted: wire('delete', (ctx, r) => assert.equal(r.on_run_completed, null)), // a thread's cron keeps its thread: ignored
});
table('CronsClient.create.payload', CRON_RUN_FIELDS);
table('CronsClient.update.payload', {
  ...CRON_RUN_FIELDS,
  enabled: wire(false, (ctx, r) => assert.equal(r.enabled, false)),
  endTime: wire('2099-01-01T00:00:00Z', (ctx, r) => assert.equal(Date.parse(r.end_time), Date.parse('2099-01-01T00:00:00Z'))),
  metadata: wire({ owner: 'fields' }, (ctx, r) => assert.equal(r.metadata.owner, 'fields')),
});
table('CronsClient.delete.options', { signal: SIGNAL });
table('CronsClient.search.query', {
  ...SEARCH_PAGING,
  assistantId: wire('echo'),
  threadId: wire(at((ctx) => ctx.thread()), (ctx, r) => assert.deepEqual(r, [])),
  enabled: wire(true),
  sortBy: wire('created_at'),
  select: wire(['cron_id'], (ctx, r) => assert.ok(r.every((x) => Object.keys(x).join() === 'cron_id'))),
  metadata: wire({ nobody: 'has this' }, (ctx, r) => assert.deepEqual(r, [])),
});
table('CronsClient.count.query', {
  assistantId: wire('echo'),
  threadId: wire(at((ctx) => ctx.thread()), (ctx, n) => assert.equal(n, 0)),
  metadata: wire({ nobody: 'has this' }, (ctx, n) => assert.equal(n, 0)),
  signal: SIGNAL,
});

table('StoreClient.putItem.options', {
  index: wire(['v'], async (ctx) => assert.deepEqual((await ctx.c.store.getItem(ctx.ns, 'k')).value, { v: 1 })),
  ttl: wire(5),
  signal: SIGNAL,
});
table('StoreClient.getItem.options', {
  refreshTtl: wire(true, (ctx, item) => assert.deepEqual(item.value, { v: 2 })),
  signal: SIGNAL,
});
table('StoreClient.deleteItem.options', { signal: SIGNAL });
table('StoreClient.searchItems.options', {
  filter: wire({ v: 4 }, (ctx, r) => assert.deepEqual(r.items.map((i) => i.value), [{ v: 4 }])),
  limit: wire(1, (ctx, r) => assert.equal(r.items.length, 1)),
  offset: wire(0),
  query: wire('semantic', (ctx, r) => assert.ok(Array.isArray(r.items))),
  refreshTtl: wire(false),
  signal: SIGNAL,
});
table('StoreClient.listNamespaces.options', {
  prefix: wire(['fields', 'ns'], (ctx, r) => assert.deepEqual(r.namespaces, [['fields', 'ns', 'deep']])),
  suffix: wire(['deep'], (ctx, r) => assert.ok(r.namespaces.some((n) => n.join('/') === 'fields/ns/deep'))),
  maxDepth: wire(1, (ctx, r) => assert.ok(r.namespaces.every((n) => n.length === 1))),
  limit: wire(1, (ctx, r) => assert.equal(r.namespaces.length, 1)),
  offset: wire(0),
  signal: SIGNAL,
});

// --- the check ---

/** Where a request put `key`: its JSON body (top level, or in each element of an array) or its query. */
function onWire(req, key) {
  if (!req) return false;
  if (req.url.searchParams.has(key)) return true;
  let body;
  try {
    body = req.body ? JSON.parse(req.body) : null;
  } catch {
    return false;
  }
  const objs = Array.isArray(body) ? body : [body];
  return objs.some((o) => o && typeof o === 'object' && o[key] !== undefined && o[key] !== null);
}

describe(`LangGraph SDK ${SDK_VERSION}: every field of the client's types is known and accepted`, { timeout: 300000 }, () => {
  const sdk = useSdk({ fresh: true, args: ['--shards', '2'] });
  const surface = sdkSurface();

  test('the type definitions list the five client classes', () => {
    for (const cls of Object.values(CLIENT_CLASSES)) {
      assert.ok([...surface.keys()].some((k) => k.startsWith(`${cls}.`)), `no methods of ${cls} in the types of ${SDK_VERSION}`);
    }
    assert.ok(surface.get('RunsClient.create').get('payload').includes('input'), 'RunsCreatePayload resolved through RunsInvokePayload');
    assert.ok(surface.get('CronsClient.create').get('payload').includes('schedule'));
  });

  test('every table entry names a field some SDK line declares', async (t) => {
    const declared = new Set();
    const methods = new Set();
    for (const name of SDK_LINES) {
      const s = await sdkSurfaceOf(name);
      if (!s) {
        t.skip(`SDK line ${name} is not installed (npm ci in tests/e2e/sdk-${name}): cannot tell a stale entry from one of its fields`);
        return;
      }
      for (const [m, params] of s) {
        methods.add(m);
        for (const [p, props] of params) for (const prop of props) declared.add(`${m}.${p}.${prop}`);
      }
    }
    // An entry of a shared set (RUN_FIELDS, ...) is stale when no method it is given to declares it.
    const used = new Set();
    for (const [k, e] of Object.entries(FIELDS)) if (e.shared && declared.has(k)) used.add(`${e.shared}.${k.split('.').at(-1)}`);
    const stale = Object.entries(FIELDS)
      .filter(([k, e]) => !declared.has(k) && (!e.shared || !used.has(`${e.shared}.${k.split('.').at(-1)}`)))
      .map(([k, e]) => (e.shared ? `${e.shared}.${k.split('.').at(-1)}` : k));
    assert.deepEqual([...new Set(stale)], [], `table entries no SDK line (${SDK_LINES.join(', ')}) declares: remove them from sdk-fields.test.mjs`);
    const staleCalls = Object.keys(CALLS).filter((k) => !methods.has(k));
    assert.deepEqual(staleCalls, [], 'CALLS entries for methods no SDK line has: remove them');
  });

  for (const [method, params] of surface) {
    test(method, async (t) => {
      const call = CALLS[method];
      assert.ok(call, `${method} (in the types of @langchain/langgraph-sdk ${SDK_VERSION}) has no entry in CALLS in sdk-fields.test.mjs: add how the test calls it, and its fields to FIELDS`);
      const unknown = [];
      for (const [param, props] of params) {
        for (const prop of props) if (!FIELDS[`${method}.${param}.${prop}`]) unknown.push(`${method}.${param}.${prop}`);
      }
      assert.deepEqual(unknown, [], `fields of @langchain/langgraph-sdk ${SDK_VERSION} this test does not know: add each to FIELDS in sdk-fields.test.mjs, with a sample the server must accept (wire), the 422 it answers on purpose (refused) or why it never reaches the server (local)`);

      // One call without any of the fields first: the base call must work.
      await runOne(sdk, method, call, null, null, null);
      for (const [param, props] of params) {
        for (const prop of props) {
          const key = `${method}.${param}.${prop}`;
          const entry = FIELDS[key];
          await t.test(`${param}.${prop}: ${entry.kind}`, async (st) => {
            await runOne(sdk, method, call, param, prop, entry, st);
          });
        }
      }
    });
  }

  test('SIGTERM drains and exits 0 with no sanitizer report', async () => {
    const code = await sdk.server.stop();
    assert.equal(code, 0, `agentd exited with ${code}; stderr:\n${sdk.server.stderr()}`);
    assert.doesNotMatch(sdk.server.stderr(), /Sanitizer|runtime error:/, 'sanitizer report in the server log');
  });
});

/** Calls `method` with `param.prop` set from entry (none: the base call) and checks what entry says. */
async function runOne(sdk, method, call, param, prop, entry, t) {
  const requests = [];
  const c = new Client({
    apiUrl: sdk.server.url,
    apiKey: null,
    callerOptions: { maxRetries: 0 },
    onRequest: (url, init) => {
      requests.push({ url, body: typeof init.body === 'string' ? init.body : null });
      return init;
    },
  });
  const ctx = context(c);
  const args = {};
  try {
    if (entry && (entry.kind !== 'local' || entry.sample !== undefined)) {
      let sample = entry.sample;
      if (sample && typeof sample === 'object' && COMPUTED in sample) sample = await sample[COMPUTED](ctx);
      args[param] = { ...entry.with, [prop]: sample };
    }
    if (entry?.kind === 'refused') {
      const before = requests.length;
      let err = null;
      try {
        await call(ctx, args);
      } catch (e) {
        err = e;
      }
      const sent = requests.slice(before).some((r) => onWire(r, entry.key));
      if (!sent) {
        if (err) throw err;
        t.diagnostic(`${SDK_VERSION} does not send ${prop} (${entry.key}) from ${method}: nothing to refuse`);
        return;
      }
      assert.ok(err, `${method} with ${prop}: expected a 422 (${entry.why}), got a success`);
      assert.equal(err.status, 422, `${method} with ${prop}: ${err.stack}`);
      const body = JSON.parse(err.text);
      assert.ok(body.detail.some((d) => d.loc.at(-1) === entry.key), `the 422 names ${entry.key}: ${err.text}`);
      return;
    }
    let result;
    try {
      result = await call(ctx, args);
    } catch (e) {
      const what = param ? `${method} with ${param}.${prop}` : `${method} (the base call)`;
      throw new Error(`${what} failed: ${e.status ? `HTTP ${e.status} ${e.text}` : e.stack}`, { cause: e });
    }
    if (entry?.check) await entry.check(ctx, result);
    if (entry?.kind === 'local') t.diagnostic(`not sent: ${entry.why}`);
  } finally {
    for (const f of ctx.cleanups.reverse()) await f();
  }
}
