// What the SDK tests share: agentd started for the real LangGraph SDK (optionally on a fresh database)
// with a Client for it, and the check of the SDK's HTTP errors.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client } from '@langchain/langgraph-sdk';
import { startAgentd } from '../integration/lib/harness.mjs';
import { freshDatabase } from '../integration/lib/pg.mjs';

/**
 * Starts agentd (waiting until it is ready) with `args` and a LangGraph SDK Client for it; with
 * `fresh`, on a new empty database (freshDatabase), else on DATABASE_URL. With `t` (a node:test
 * context) the server is disposed and the database dropped in t.after.
 * Returns { server, client, db (null unless fresh), dispose() }: dispose stops the server (it must
 * exit 0 with no sanitizer report) and drops the database.
 */
export async function startSdk({ t = null, fresh = false, args = [] } = {}) {
  const db = fresh ? await freshDatabase() : null;
  let server;
  try {
    server = await startAgentd({ ...(db ? { db: db.url } : {}), args, waitReady: true });
  } catch (e) {
    if (db) await db.drop();
    throw e;
  }
  // apiKey: null keeps LANGGRAPH_API_KEY and friends from the environment out of the requests;
  // maxRetries: 0 makes a 5xx fail the test at once instead of after backoff.
  const client = new Client({ apiUrl: server.url, apiKey: null, callerOptions: { maxRetries: 0 } });
  const sdk = {
    server,
    client,
    db,
    async dispose() {
      try {
        await server.dispose();
      } finally {
        if (db) await db.drop();
      }
    },
  };
  if (t) t.after(() => sdk.dispose());
  return sdk;
}

/**
 * For a describe block: registers before/after hooks that start agentd and its Client (startSdk
 * options) and dispose them. Returns the object that holds server, client and db once before has run.
 */
export function useSdk(opts) {
  const sdk = {};
  before(async () => {
    Object.assign(sdk, await startSdk(opts));
  });
  after(async () => {
    if (sdk.dispose) await sdk.dispose();
  });
  return sdk;
}

/** Asserts that promise rejects with the SDK's HTTP error of `status`; returns the parsed body. */
export async function rejectsWith(promise, status) {
  let body;
  await assert.rejects(promise, (err) => {
    assert.equal(err.status, status, `unexpected error: ${err.stack}`);
    body = JSON.parse(err.text);
    return true;
  });
  return body;
}
