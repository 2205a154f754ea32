// What the SDK tests share: the LangGraph SDK line under test (AGENTD_SDK_LINE), agentd started for
// it (optionally on a fresh database) with a Client, the check of the SDK's HTTP errors, why a test
// cannot run on this line (lacks, lacksOption), and what the line's type definitions say its client
// methods take (sdkSurface).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
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
 * Starts agentd (waiting until it is ready) with `args` (`bin`: another agentd binary than AGENTD_BIN)
 * and a LangGraph SDK Client for it; with
 * `fresh`, on a new empty database (freshDatabase), else on DATABASE_URL. With `t` (a node:test
 * context) the server is disposed and the database dropped in t.after.
 * Returns { server, client, db (null unless fresh), dispose() }: dispose stops the server (it must
 * exit 0 with no sanitizer report) and drops the database.
 */
export async function startSdk({ t = null, fresh = false, args = [], bin = null } = {}) {
  const db = fresh ? await freshDatabase() : null;
  let server;
  try {
    server = await startAgentd({ ...(db ? { db: db.url } : {}), args, bin, waitReady: true });
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

// A Client that never connects: what the line's client has, for skip reasons.
const probe = new Client({ apiUrl: 'http://127.0.0.1:9', apiKey: null });

/**
 * For a test's skip option: when this line's Client lacks one of the methods named ('runs.cancelMany',
 * 'threads.prune', ...), a reason saying which; else false.
 */
export function lacks(...methods) {
  const missing = methods.filter((m) => {
    const [ns, name] = m.split('.');
    return typeof probe[ns]?.[name] !== 'function';
  });
  return missing.length ? `@langchain/langgraph-sdk ${SDK_VERSION} has no client.${missing.join(', client.')}` : false;
}

/**
 * For a test's skip option: when this line's type definitions give a method no such option
 * ('ThreadsClient.get.options.include': class, method, parameter, property; see sdkSurface), a
 * reason saying which; else false. Loads the type definitions on first use (a second or two).
 */
export function lacksOption(...keys) {
  const surface = sdkSurface();
  const missing = keys.filter((k) => {
    const [cls, method, param, prop] = k.split('.');
    return !surface.get(`${cls}.${method}`)?.get(param)?.includes(prop);
  });
  return missing.length ? `@langchain/langgraph-sdk ${SDK_VERSION} has no ${missing.join(', ')} in its types` : false;
}

/** The client classes sdkSurface reads, by their property on Client. */
export const CLIENT_CLASSES = { assistants: 'AssistantsClient', threads: 'ThreadsClient', runs: 'RunsClient', crons: 'CronsClient', store: 'StoreClient' };

/** Every SDK line the e2e tier knows: the names of the tests/e2e/sdk-<line>/ directories with a client.mjs. */
export const SDK_LINES = fs.readdirSync(new URL('.', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name.startsWith('sdk-') && fs.existsSync(new URL(`./${d.name}/client.mjs`, import.meta.url)))
  .map((d) => d.name.slice(4));

const surfaces = new Map();

/**
 * What this line's own type definitions (the .d.ts its package.json names, read with the line's
 * TypeScript compiler) say the public methods of client.assistants, .threads, .runs, .crons and
 * .store take. Returns a Map from 'Class.method' (AssistantsClient.create, ...) to a Map from each
 * parameter's name to the names of its properties when it is object-typed (the union over the
 * method's overloads and over the members of the parameter's union type; an array's element type;
 * inherited and aliased types resolved by the checker), [] for other parameters. An AbortSignal,
 * a function or a primitive has no properties here. Computed once per process.
 */
export function sdkSurface() {
  if (!surfaces.has(SDK_LINE)) surfaces.set(SDK_LINE, readSurface(line, sdkPackage));
  return surfaces.get(SDK_LINE);
}

/**
 * sdkSurface of another installed line (a name from SDK_LINES); resolves to null when that line is
 * not installed (no npm ci in its directory).
 */
export async function sdkSurfaceOf(name) {
  if (name === SDK_LINE) return sdkSurface();
  if (!surfaces.has(name)) {
    let other;
    try {
      other = await import(new URL(`./sdk-${name}/client.mjs`, import.meta.url));
    } catch (e) {
      if (e.code === 'ERR_MODULE_NOT_FOUND') return null;
      throw e;
    }
    surfaces.set(name, readSurface(other, JSON.parse(fs.readFileSync(other.sdkPackageJson, 'utf8'))));
  }
  return surfaces.get(name);
}

function readSurface(lineMod, pkg) {
  const ts = lineMod.loadTypeScript();
  const entry = path.join(path.dirname(lineMod.sdkPackageJson), pkg.exports['.'].import.types);
  const program = ts.createProgram([entry], {
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (!source) throw new Error(`TypeScript cannot read ${entry}`);
  let client = checker.getExportsOfModule(checker.getSymbolAtLocation(source)).find((s) => s.name === 'Client');
  if (!client) throw new Error(`${entry} exports no Client`);
  if (client.flags & ts.SymbolFlags.Alias) client = checker.getAliasedSymbol(client);
  const clientType = checker.getDeclaredTypeOfSymbol(client);

  const propertiesOf = (type, seen = new Set()) => {
    if (!type || seen.has(type)) return [];
    seen.add(type);
    if (type.isUnion()) return type.types.flatMap((m) => propertiesOf(m, seen));
    if (checker.isArrayType(type)) return propertiesOf(checker.getTypeArguments(type)[0], seen);
    if (!(type.flags & ts.TypeFlags.Object) && !type.isIntersection()) return [];
    if (type.getCallSignatures().length || type.getSymbol()?.name === 'AbortSignal') return [];
    return checker.getPropertiesOfType(type).map((p) => p.name);
  };

  const surface = new Map();
  for (const [ns, cls] of Object.entries(CLIENT_CLASSES)) {
    const member = clientType.getProperty(ns);
    if (!member) throw new Error(`Client has no ${ns} in ${entry}`);
    const type = checker.getTypeOfSymbolAtLocation(member, member.valueDeclaration);
    if (type.getSymbol()?.name !== cls) throw new Error(`Client.${ns} is a ${type.getSymbol()?.name}, not a ${cls}`);
    for (const method of checker.getPropertiesOfType(type)) {
      const decl = method.valueDeclaration ?? method.declarations?.[0];
      if (!decl || ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      const signatures = checker.getTypeOfSymbolAtLocation(method, decl).getCallSignatures();
      if (!signatures.length) continue;
      const params = new Map();
      for (const sig of signatures) {
        for (const p of sig.parameters) {
          const props = params.get(p.name) ?? [];
          for (const name of propertiesOf(checker.getTypeOfSymbolAtLocation(p, p.valueDeclaration))) {
            if (!props.includes(name)) props.push(name);
          }
          params.set(p.name, props);
        }
      }
      surface.set(`${cls}.${method.name}`, params);
    }
  }
  return surface;
}
