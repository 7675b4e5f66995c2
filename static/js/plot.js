// Charts for the experiment views: axis ticks and chart geometry (pure), and one function that
// draws a chart on a canvas. Legends are HTML, next to the canvas.

/**
 * Canvas coordinates of a series on a chart box; y on a log scale if asked.
 * @param {number[]} ys values
 * @param {{x0: number, y0: number, w: number, h: number, ymin: number, ymax: number, log?: boolean, n?: number}} box
 * @returns {[number, number][]}
 */
export function chartPoints(ys, box) {
  const n = Math.max(box.n ?? ys.length, 2);
  const f = box.log ? (v) => Math.log10(Math.max(v, box.ymin)) : (v) => v;
  const lo = f(box.ymin);
  const hi = f(box.ymax);
  const span = hi > lo ? hi - lo : 1;
  return ys.map((v, i) => [box.x0 + (i / (n - 1)) * box.w, box.y0 + box.h - ((f(v) - lo) / span) * box.h]);
}

/**
 * Whole decades covering [min, max], at most `most` of them (every 2nd, 3rd … decade).
 * @param {number} min > 0
 * @param {number} max > min
 * @param {number} most
 * @returns {number[]} e.g. [1e-4, 1e-3, 1e-2, 1e-1, 1]
 */
export function logTicks(min, max, most = 6) {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const step = Math.max(1, Math.ceil((hi - lo) / (most - 1)));
  const out = [];
  for (let e = lo; e < hi + step; e += step) out.push(10 ** e);
  return out;
}

/**
 * Round-numbered ticks (1, 2 or 5 × 10^k apart) covering [min, max].
 * @param {number} min
 * @param {number} max
 * @param {number} count about how many
 * @returns {number[]}
 */
export function niceTicks(min, max, count = 5) {
  const span = max - min || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

/**
 * A decade as a label: 1, 10, 0.1 stay plain; others read 10⁻⁴, 10⁵.
 * @param {number} v a power of ten
 * @returns {string}
 */
export function decadeLabel(v) {
  const e = Math.round(Math.log10(v));
  if (e >= -1 && e <= 1) return String(10 ** e);
  return `10${String(e).replace(/./g, (ch) => SUPERSCRIPT[ch])}`;
}

/**
 * Draw a line chart: axes with ticks and labels, a light grid, the series, dashed reference
 * lines. Sized to the canvas's CSS width at the screen's pixel ratio.
 * @param {HTMLCanvasElement} canvas
 * @param {{series: {values: number[], xs?: number[], colour: string}[], lines?: {value: number, colour: string}[],
 *   x: {n: number, ticks: number[], first?: number}, y: {min: number, max: number, ticks: number[], log?: boolean, label: (v: number) => string},
 *   points?: {x: number, value: number, colour: string}[], xlabel: string}} spec x ticks are 1-based indices into the series
 *   (steps or K); each point is a dot with a dashed line down to the axis
 */
export function drawChart(canvas, spec) {
  const ratio = window.devicePixelRatio || 1;
  const cssW = Math.max(240, canvas.clientWidth || 640);
  const cssH = cssW < 480 ? 200 : 240;
  canvas.width = Math.round(cssW * ratio);
  canvas.height = Math.round(cssH * ratio);
  canvas.style.height = `${cssH}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssW, cssH);
  g.font = "12px system-ui, sans-serif";
  const box = { x0: 52, y0: 8, w: cssW - 52 - 14, h: cssH - 8 - 40, ymin: spec.y.min, ymax: spec.y.max, log: spec.y.log, n: spec.x.n };
  const yOf = (v) => chartPoints([v], box)[0][1];
  const first = spec.x.first ?? 1;
  const xOf = (i) => box.x0 + ((i - first) / Math.max(spec.x.n - 1, 1)) * box.w;
  g.strokeStyle = "#e3e6ea";
  g.fillStyle = "#3d434d";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const t of spec.y.ticks) {
    if (t < spec.y.min * (1 - 1e-9) || t > spec.y.max * (1 + 1e-9)) continue;
    const y = Math.round(yOf(t)) + 0.5;
    g.beginPath();
    g.moveTo(box.x0, y);
    g.lineTo(box.x0 + box.w, y);
    g.stroke();
    g.fillText(spec.y.label(t), box.x0 - 6, y);
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  for (const t of spec.x.ticks) {
    const x = Math.round(xOf(t)) + 0.5;
    g.beginPath();
    g.moveTo(x, box.y0);
    g.lineTo(x, box.y0 + box.h);
    g.stroke();
    g.fillText(String(t), x, box.y0 + box.h + 5);
  }
  g.fillText(spec.xlabel, box.x0 + box.w / 2, box.y0 + box.h + 22);
  g.strokeStyle = "#8a919c";
  g.strokeRect(box.x0 + 0.5, box.y0 + 0.5, box.w, box.h);
  for (const { values, xs, colour } of spec.series) {
    const pts = chartPoints(values, box).map(([, y], i) => [xOf(xs ? xs[i] : first + i), y]);
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.stroke();
  }
  for (const p of spec.points || []) {
    const [x, y] = [xOf(p.x), yOf(p.value)];
    g.setLineDash([4, 3]);
    g.strokeStyle = p.colour;
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(x, box.y0 + box.h);
    g.lineTo(x, y);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = p.colour;
    g.beginPath();
    g.arc(x, y, 5, 0, 2 * Math.PI);
    g.fill();
  }
  for (const line of spec.lines || []) {
    const y = yOf(line.value);
    g.setLineDash([6, 4]);
    g.strokeStyle = line.colour;
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(box.x0, y);
    g.lineTo(box.x0 + box.w, y);
    g.stroke();
    g.setLineDash([]);
  }
}
