// Small pure helpers for the experiment views: SSE parsing and chart geometry.

/**
 * Split Server-Sent Events text into complete events and the unfinished rest.
 * @param {string} buffer text received so far
 * @returns {{events: {event: string, data: any}[], rest: string}}
 */
export function parseSSE(buffer) {
  const events = [];
  const blocks = buffer.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) events.push({ event, data: JSON.parse(data.join("\n")) });
  }
  return { events, rest };
}

/**
 * Canvas coordinates of a series on a chart box; y on a log scale if asked.
 * @param {number[]} ys values
 * @param {{x0: number, y0: number, w: number, h: number, ymin: number, ymax: number, log?: boolean, n?: number}} box
 * @returns {[number, number][]}
 */
export function chartPoints(ys, box) {
  const n = Math.max(box.n ?? ys.length, 2);
  const f = box.log ? (v) => Math.log10(Math.max(v, 1e-12)) : (v) => v;
  const lo = f(box.ymin);
  const hi = f(box.ymax);
  const span = hi > lo ? hi - lo : 1;
  return ys.map((v, i) => [box.x0 + (i / (n - 1)) * box.w, box.y0 + box.h - ((f(v) - lo) / span) * box.h]);
}
