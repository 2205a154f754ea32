// Server-sent events as agentd frames them (event, data, id lines; comments are heartbeats).

/** Splits an SSE body into {event, data, id} frames (data parsed as JSON). */
export function parseSse(text) {
    const frames = [];
    for (const block of text.split('\n\n')) {
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
