// One LangGraph JS SDK line for the e2e tests (tests/e2e/lib.mjs loads the client.mjs of the line
// AGENTD_SDK_LINE names). Its imports resolve in this directory's node_modules, installed from
// this directory's package-lock.json (`npm ci` here).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The SDK's module: Client and whatever else this line exports. */
export * as sdk from '@langchain/langgraph-sdk';

/** The path of the installed SDK's package.json (its version, and where its type definitions are). */
export const sdkPackageJson = require.resolve('@langchain/langgraph-sdk/package.json');

/** Loads this line's TypeScript compiler (the `typescript` module) on first use: only the type check needs it. */
export const loadTypeScript = () => require('typescript');
