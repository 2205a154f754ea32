// Server-sent events as agentd frames them (event, data, id lines; comments are heartbeats).

/** Splits an SSE body into {event, data, id} frames (data parsed as JSON). Lines may end in CRLF (the
 * heartbeat comments do). */
export function parseSse(text) {
    const frames = [];
    for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
        if (!block.trim() || block.startsWith(':')) continue;
        const f = {};
        for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(': ');
            const k = i < 0 ? line : line.slice(0, i);
            const v = i < 0 ? '' : line.slice(i + 2);
            if (k === 'data') f.data = v === '' ? null : JSON.parse(v);
            else f[k] = v;
        }
        if (f.event) frames.push(f);
    }
    return frames;
}

/**
 * Opens an SSE response with fetch and parses it as it arrives: POST with body as JSON, or GET when
 * body is undefined; headers are added to the request's. Returns
 * { status, headers, frames (grows), waitFor(pred, what, ms) → the first frame matching pred,
 *   ended: Promise (the server ended the body or the stream was closed), close() }.
 * A non-200 answer resolves with { status, text } and no frames.
 */
export async function openSse(url, body, { timeoutMs = 20000, headers = {} } = {}) {
    const ac = new AbortController();
    const res = await fetch(url, body === undefined
        ? { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal }
        : {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
            body: JSON.stringify(body),
            signal: ac.signal,
        });
    if (res.status !== 200) return { status: res.status, text: await res.text() };
    const frames = [];
    const waiters = [];
    let buf = '';
    const wake = () => {
        for (const w of [...waiters]) {
            const f = frames.find(w.pred);
            if (f) {
                waiters.splice(waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                w.resolve(f);
            }
        }
    };
    const ended = (async () => {
        const dec = new TextDecoder();
        try {
            for await (const chunk of res.body) {
                buf += dec.decode(chunk, { stream: true });
                let i;
                while ((i = buf.indexOf('\n\n')) >= 0) {
                    frames.push(...parseSse(buf.slice(0, i + 2)));
                    buf = buf.slice(i + 2);
                }
                wake();
            }
        } catch (e) {
            if (e.name !== 'AbortError') throw e;
        }
        for (const w of waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(new Error(`the stream ended before ${w.what}`));
        }
    })();
    return {
        status: res.status,
        headers: res.headers,
        frames,
        ended,
        close: () => ac.abort(),
        waitFor(pred, what = 'a matching frame', ms = timeoutMs) {
            const f = frames.find(pred);
            if (f) return Promise.resolve(f);
            return new Promise((resolve, reject) => {
                const w = { pred, what, resolve, reject };
                w.timer = setTimeout(() => {
                    waiters.splice(waiters.indexOf(w), 1);
                    reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(frames.map((x) => x.event))}`));
                }, ms);
                waiters.push(w);
            });
        },
    };
}
