// Starts the agentd binary named by AGENTD_BIN on 127.0.0.1 with a kernel-chosen port and waits
// for its "listening on http://HOST:PORT" line on stderr. Readiness comes from that line, never
// from a sleep.
import { spawn } from 'node:child_process';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;
const LISTENING_RE = /listening on (http:\/\/[^\s)]+)/;

// Children still running when the test process exits are killed, so a failed test never leaves a
// server behind.
const live = new Set();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

/**
 * Spawns agentd and resolves once it accepts connections.
 *
 * @param {object} [opts]
 * @param {string[]} [opts.args] extra command-line arguments, after --host/--port
 * @param {Record<string, string>} [opts.env] variables added to (or overriding) process.env
 * @returns {Promise<{url: string, proc: import('node:child_process').ChildProcess,
 *                    stop: (opts?: {signal?: string, timeoutMs?: number}) => Promise<number|string>,
 *                    logs: () => string}>}
 *   url is the base URL without a trailing slash; stop() sends SIGTERM (or opts.signal) and resolves
 *   with the exit code (or the signal name when the process died of a signal); logs() returns the
 *   stderr captured so far. Rejects with the captured stderr when agentd exits before it listens or
 *   does not listen within 30 s.
 */
export async function startAgentd({ args = [], env = {} } = {}) {
  const bin = process.env.AGENTD_BIN;
  if (!bin) throw new Error('AGENTD_BIN is not set (CTest sets it to the agentd built by the preset)');

  const proc = spawn(bin, ['--host', '127.0.0.1', '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);

  let stderr = '';
  let stdout = '';
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal);
    });
  });
  proc.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk; });
  proc.stderr.setEncoding('utf8');
  // AGENTD_TEST_STDERR=1 also shows the server's log live, for debugging a test run.
  if (process.env.AGENTD_TEST_STDERR === '1') proc.stderr.on('data', (chunk) => process.stderr.write(chunk));

  const url = await new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.stderr.off('data', onData);
      if (err) reject(err); else resolve(value);
    };
    // Only complete lines are matched, so a port number split across two reads is never cut short.
    const onData = (chunk) => {
      stderr += chunk;
      const m = LISTENING_RE.exec(stderr.slice(0, stderr.lastIndexOf('\n') + 1));
      if (m) finish(null, m[1].replace(/\/$/, ''));
    };
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      finish(new Error(`agentd did not report listening within ${READY_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, READY_TIMEOUT_MS);
    proc.stderr.on('data', onData);
    proc.once('error', (err) => finish(new Error(`cannot start ${bin}: ${err.message}`)));
    exited.then((status) => finish(new Error(`agentd exited (${status}) before listening; stderr:\n${stderr}\nstdout:\n${stdout}`)));
  });
  // Keep draining stderr after readiness: a full pipe would block the server.
  proc.stderr.on('data', (chunk) => { stderr += chunk; });

  let stopping = null;
  const stop = ({ signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS } = {}) => {
    stopping ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => {
          proc.kill('SIGKILL');
          reject(new Error(`agentd did not exit within ${timeoutMs} ms of ${signal}; stderr:\n${stderr}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    })();
    return stopping;
  };

  return { url, proc, stop, logs: () => stderr };
}
