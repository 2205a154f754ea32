// Helpers for the load tests (xshard-backlog, xshard-lanes): many streaming clients that count what
// they receive without keeping it, or read nothing at all, and the server's memory as the kernel
// reports it. Only Node built-ins are used.

import fs from 'node:fs';
import net from 'node:net';

import { buildRequest, withTimeout } from './harness.mjs';

/** VmRSS and VmHWM (the peak) of process `pid`, in bytes, from /proc/<pid>/status. */
export function procMemory(pid) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) => {
        const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
        if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
        return Number(m[1]) * 1024;
    };
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/**
 * A streamed response on its own connection, whose body is counted and dropped. Resolves once the
 * response head arrived (rejects after timeoutMs, or if the status is not 200), with
 * { head, bytes, tail, firstData: Promise, closed: Promise<{bytes, tail, error}>, resume(), destroy() }:
 * bytes counts the body bytes seen so far and tail keeps the last 16 of them. With `read: false` the
 * socket is paused as soon as the head is in: the client reads nothing more (a subscriber that
 * stopped reading) until resume().
 */
export function openStream(port, { method = 'GET', path, headers = {}, body = null, read = true, timeoutMs = 20000 }) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host: '127.0.0.1' });
        let head = null;
        let pending = Buffer.alloc(0);
        let onFirst;
        const firstData = new Promise((r) => (onFirst = r));
        const s = {
            head: null,
            bytes: 0,
            tail: Buffer.alloc(0),
            error: null,
            firstData,
            closed: new Promise((r) => sock.on('close', () => r({ bytes: s.bytes, tail: s.tail, error: s.error }))),
            resume: () => sock.resume(),
            destroy: () => sock.destroy(),
        };
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`no response head for ${method} ${path} within ${timeoutMs} ms; got ${JSON.stringify(pending.subarray(0, 200).toString('latin1'))}`));
        }, timeoutMs);
        const count = (d) => {
            if (!d.length) return;
            s.bytes += d.length;
            s.tail = Buffer.concat([s.tail, d.subarray(-16)]).subarray(-16);
            onFirst();
        };
        sock.on('data', (d) => {
            if (head !== null) {
                count(d);
                return;
            }
            pending = Buffer.concat([pending, d]);
            const end = pending.indexOf('\r\n\r\n');
            if (end < 0) return;
            clearTimeout(timer);
            head = pending.subarray(0, end).toString('latin1');
            s.head = head;
            if (!/^HTTP\/1\.1 200 /.test(head)) {
                sock.destroy();
                reject(new Error(`${method} ${path} answered ${JSON.stringify(head.split('\r\n')[0])}; ${JSON.stringify(pending.toString('latin1').slice(0, 400))}`));
                return;
            }
            if (!read) sock.pause();
            count(pending.subarray(end + 4));
            pending = null;
            resolve(s);
        });
        sock.on('error', (e) => {
            s.error = e;
            if (head === null) {
                clearTimeout(timer);
                reject(e);
            }
        });
        sock.write(buildRequest({ method, path, headers, body }));
    });
}

/** Waits for every stream in `streams` to be closed by the server; rejects after timeoutMs saying how many still were open. */
export async function allClosed(streams, timeoutMs, what) {
    let done = 0;
    return withTimeout(
        Promise.all(streams.map((s) => s.closed.then((r) => (done++, r)))),
        timeoutMs,
        () => `${what}: ${streams.length - done} of ${streams.length} connections still open after ${timeoutMs} ms`,
    );
}
