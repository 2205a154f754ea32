// What the SDK tests share: the LangGraph SDK line under test (AGENTD_SDK_LINE), agentd started for
// it (optionally on a fresh database) with a Client, and the check of the SDK's HTTP errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before } from 'node:test';
import { startAgentd } from '../integration/lib/harness.mjs';
import { freshDatabase } from '../integration/lib/pg.mjs';

/**
 * The SDK line under test: AGENTD_SDK_LINE names a directory tests/e2e/sdk-<line>/ (package.json,
 * package-lock.json and client.mjs, installed there with `npm ci`); default 1.15.
 */
export const SDK_LINE = process.env.AGENTD_SDK_LINE || '1.15';
const lineModule = new URL(`./sdk-${SDK_LINE}/client.mjs`, import.meta.url);
if (!fs.existsSync(lineModule)) throw new Error(`AGENTD_SDK_LINE=${SDK_LINE}: no ${lineModule.pathname}`);
let line;
try {
  line = await import(lineModule);
} catch (e) {
  if (e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  throw new Error(`SDK line ${SDK_LINE} is not installed: run npm ci in tests/e2e/sdk-${SDK_LINE} (${e.message})`, { cause: e });
}
const sdkPackage = JSON.parse(fs.readFileSync(line.sdkPackageJson, 'utf8'));

/** The line's `@langchain/langgraph-sdk` module, its Client class, and the installed version ("1.15.0"). */
export const sdkModule = line.sdk;
export const { Client } = line.sdk;
export const SDK_VERSION = sdkPackage.version;

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

