// The real LangGraph JS SDK against agentd: the wiring. The SDK reaches the server, a missing resource
// surfaces as the SDK's HTTP error with status 404 and a JSON error body, and the server stays healthy
// and exits 0 on SIGTERM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startSdk } from './lib.mjs';

describe('LangGraph SDK smoke', () => {
  let server;
  let client;

  before(async () => {
    ({ server, client } = await startSdk()); // on DATABASE_URL: the thread lookup needs the database
  });

  after(async () => {
    if (server) await server.stop();
  });

  test('the server answers GET /ok', async () => {
    const res = await fetch(`${server.url}/ok`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
  });

  test('a missing thread rejects with the SDK HTTP error, status 404', async () => {
    const id = randomUUID();
    await assert.rejects(client.threads.get(id), (err) => {
      // The SDK's HTTPError: message "HTTP <status>: <body>", .status, .text (the body), .response.
      assert.equal(err.status, 404, `unexpected error: ${err.stack}`);
      assert.match(err.message, /^HTTP 404: /);
      const body = JSON.parse(err.text);
      assert.deepEqual(body, { error: 'not_found', message: `Thread '${id}' not found`, details: null });
      return true;
    });
  });

  test('the server stays healthy after the 404', async () => {
    const res = await fetch(`${server.url}/ok`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
  });

  test('SIGTERM drains and exits 0', async () => {
    const code = await server.stop();
    assert.equal(code, 0, `agentd exited with ${code}; stderr:\n${server.stderr()}`);
    assert.doesNotMatch(server.stderr(), /Sanitizer|runtime error:/, 'sanitizer report in the server log');
  });
});
