// Pixel maths for the page: decoding the API's exact values and colouring them.
// Pure functions with no DOM access, so the browser tests can call them directly.

/**
 * Decode base64 into bytes.
 * @param {string} b64
 * @returns {Uint8Array}
 */
export function decodeBase64(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * One array the page draws: exact float32 values, channel by channel, with each channel's range.
 * @typedef {{values: Float32Array, lo: number[], hi: number[], channels: number, height: number, width: number}} Heatmap
 */

/**
 * A Heatmap from float32 values of shape (C, H, W), computing each channel's lo and hi.
 * @param {Float32Array} values
 * @param {number} channels
 * @param {number} height
 * @param {number} width
 * @returns {Heatmap}
 */
export function heatmapOf(values, channels, height, width) {
  const n = height * width;
  const lo = [];
  const hi = [];
  for (let c = 0; c < channels; c++) {
    let mn = Infinity;
    let mx = -Infinity;
    for (let i = c * n; i < (c + 1) * n; i++) {
      const v = values[i];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    lo.push(mn);
    hi.push(mx);
  }
  return { values, lo, hi, channels, height, width };
}

/**
 * Unpack a report's `Values` entry ({shape, data}: little-endian float32, base64).
 * 1-D and 2-D shapes become one channel.
 * @param {{shape: number[], data: string}} entry
 * @returns {Heatmap}
 */
export function fromValues(entry) {
  const bytes = decodeBase64(entry.data);
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const s = entry.shape;
  if (s.length === 3) return heatmapOf(values, s[0], s[1], s[2]);
  if (s.length === 2) return heatmapOf(values, 1, s[0], s[1]);
  return heatmapOf(values, 1, 1, s[0]);
}

/**
 * A mask from the report (H * W bytes, base64, 1 where true) as a one-channel Heatmap of 0 and 1.
 * @param {string} b64
 * @param {number} height
 * @param {number} width
 * @returns {Heatmap}
 */
export function fromMask(b64, height, width) {
  return heatmapOf(Float32Array.from(decodeBase64(b64)), 1, height, width);
}

/**
 * max(0, v) element by element: the ReLU of a Heatmap, exact.
 * @param {Heatmap} hm
 * @returns {Heatmap}
 */
export function relu(hm) {
  const out = new Float32Array(hm.values.length);
  for (let i = 0; i < out.length; i++) out[i] = hm.values[i] > 0 ? hm.values[i] : 0;
  return heatmapOf(out, hm.channels, hm.height, hm.width);
}

/**
 * The value of channel c at pixel (y, x) of a heatmap.
 * @param {Heatmap} hm
 * @param {number} c
 * @param {number} y
 * @param {number} x
 * @returns {number}
 */
export function valueAt(hm, c, y, x) {
  return hm.values[(c * hm.height + y) * hm.width + x];
}

/**
 * The colour scale of one channel: a diverging scale centred at 0 for signed data,
 * a sequential one from 0 for non-negative data.
 * @param {number[]} lo per-channel minima
 * @param {number[]} hi per-channel maxima
 * @param {"shared"|"channel"} mode one scale for the whole panel, or one per channel
 * @param {number} c the channel
 * @returns {{min: number, max: number, diverging: boolean}}
 */
export function scaleFor(lo, hi, mode, c) {
  const panelMin = Math.min(...lo);
  const panelMax = Math.max(...hi);
  // Whether the panel is signed is decided for the whole panel, so its colour map is one.
  const diverging = panelMin < 0;
  const a = mode === "channel" ? lo[c] : panelMin;
  const b = mode === "channel" ? hi[c] : panelMax;
  if (diverging) {
    const m = Math.max(Math.abs(a), Math.abs(b));
    return { min: -m, max: m, diverging };
  }
  return { min: 0, max: b, diverging };
}

/**
 * Index 0..255 into a colour map for a value on a scale.
 * @param {number} v
 * @param {number} min
 * @param {number} max
 * @returns {number}
 */
export function colourIndex(v, min, max) {
  if (!(max > min)) return 0;
  const t = Math.round(((v - min) / (max - min)) * 255);
  return t < 0 ? 0 : t > 255 ? 255 : t;
}

/**
 * Write channel c of a heatmap as RGBA pixels through a colour map.
 * @param {Uint8ClampedArray} rgba destination, height * width * 4 bytes
 * @param {Heatmap} hm
 * @param {number} c
 * @param {{min: number, max: number}} scale
 * @param {Uint8Array} lut colour map, 256 * 3 bytes
 */
export function paintChannel(rgba, hm, c, scale, lut) {
  const table = new Uint32Array(256);
  const bytes = new Uint8Array(table.buffer);
  for (let i = 0; i < 256; i++) bytes.set([lut[3 * i], lut[3 * i + 1], lut[3 * i + 2], 255], i * 4);
  const n = hm.height * hm.width;
  const src = hm.values.subarray(c * n, (c + 1) * n);
  const out = new Uint32Array(rgba.buffer, rgba.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = table[colourIndex(src[i], scale.min, scale.max)];
}

/**
 * Element-wise difference of two heatmaps with the same shape, as a new heatmap.
 * @param {Heatmap} a
 * @param {Heatmap} b
 * @returns {Heatmap} a - b
 */
export function difference(a, b) {
  const out = new Float32Array(a.values.length);
  for (let i = 0; i < out.length; i++) out[i] = a.values[i] - b.values[i];
  return heatmapOf(out, a.channels, a.height, a.width);
}

/**
 * Format a number for a readout: 4 significant digits (or `digits`), no exponent for ordinary
 * sizes, a true minus sign, and never "-0".
 * @param {number} v
 * @param {number} [digits]
 * @returns {string}
 */
export function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (v === 0) return "0";
  const a = Math.abs(v);
  const text = a >= 1e5 || a < 1e-3 ? a.toExponential(digits - 1) : Number(a.toPrecision(digits)).toString();
  return v < 0 ? `−${text}` : text;
}

/**
 * A grey colour map (256 × 3 bytes), for showing one channel as a picture.
 * @returns {Uint8Array}
 */
export function greyLut() {
  const lut = new Uint8Array(768);
  for (let i = 0; i < 256; i++) lut.set([i, i, i], 3 * i);
  return lut;
}

/**
 * What the readout shows at pixel (y, x): the input's channel vector, and for output k the
 * row of W, its bias, W·x + b and its ReLU, all exact float32 values from the maps.
 * @param {{input: Heatmap, pre_activation: Heatmap}} maps
 * @param {Heatmap} weight W as one (K, C) channel
 * @param {Heatmap} bias b as one (1, K) channel
 * @param {number} y
 * @param {number} x
 * @param {number} k the output channel
 * @returns {{x: number[], relu: number[], w: number[], b: number, pre: number, conv: number}}
 */
export function pixelValues(maps, weight, bias, y, x, k) {
  const c = maps.input.channels;
  const xs = [];
  for (let i = 0; i < c; i++) xs.push(valueAt(maps.input, i, y, x));
  const pre = valueAt(maps.pre_activation, k, y, x);
  return {
    x: xs,
    relu: xs.map((v) => (v > 0 ? v : 0)),
    w: Array.from(weight.values.subarray(k * c, (k + 1) * c)),
    b: bias.values[k],
    pre,
    conv: pre > 0 ? pre : 0,
  };
}

/**
 * W·x + b written out as terms a person can add up: the largest |w·x| first when there are
 * more than `limit` non-zero terms, with the rest summed. Each factor gets as many significant
 * digits (4 to 8) as it takes for the sum of the terms *as written* to give `result` as
 * fmt shows it, so a hand check comes out right; where none does, it says "(terms rounded)".
 * @param {number[]} w one row of W
 * @param {number[]} x the channel vector
 * @param {number} b the bias
 * @param {number} limit
 * @param {number} [result] W·x + b as the page shows it next to the sum
 * @returns {string} e.g. "1 × 0.5234 − 1 × 0.3112 + 0"
 */
export function writtenSum(w, x, b, limit = 8, result = undefined) {
  let terms = w.map((wi, i) => ({ i, wi, xi: x[i], p: wi * x[i] })).filter((t) => t.wi !== 0);
  let rest = null;
  if (terms.length > limit) {
    terms = [...terms].sort((a, b2) => Math.abs(b2.p) - Math.abs(a.p));
    const dropped = terms.slice(limit);
    rest = { n: dropped.length, sum: dropped.reduce((s, t) => s + t.p, 0) };
    terms = terms.slice(0, limit);
  }
  const shown = (text) => Number(text.replace("−", "-"));
  const write = (digits) => {
    const parts = [];
    let total = 0;
    for (const t of terms) {
      const coeff = fmt(Math.abs(t.wi), digits);
      const xi = fmt(t.xi, digits);
      total += (t.wi < 0 ? -1 : 1) * shown(coeff) * shown(xi);
      const text = `${coeff} × ${t.xi < 0 ? `(${xi})` : xi}`;
      parts.push(parts.length === 0 ? (t.wi < 0 ? `−${text}` : text) : `${t.wi < 0 ? "−" : "+"} ${text}`);
    }
    if (rest) {
      const r = fmt(Math.abs(rest.sum), digits);
      total += (rest.sum < 0 ? -1 : 1) * shown(r);
      parts.push(`${rest.sum < 0 ? "−" : "+"} ${r} (${rest.n} smaller terms)`);
    }
    if (!parts.length) parts.push("0");
    const bias = fmt(Math.abs(b), digits);
    total += (b < 0 ? -1 : 1) * shown(bias);
    parts.push(`${b < 0 ? "−" : "+"} ${bias}`);
    return { text: parts.join(" "), total };
  };
  if (result === undefined) return write(4).text;
  for (let digits = 4; digits <= 8; digits++) {
    const out = write(digits);
    if (fmt(out.total) === fmt(result)) return out.text;
  }
  return `${write(4).text} (terms rounded)`;
}

/**
 * W and b of a compare report, exact, from its heatmaps.
 * @param {{shapes: {weight: number[]}, heatmaps: {weight: object, bias: object}}} r the CompareReport
 * @returns {{matrix: number[][], bias: number[]}} matrix (K, C), bias (K,)
 */
export function weightsOf(r) {
  const w = fromValues(r.heatmaps.weight).values; // (K·C,)
  const [k, c] = r.shapes.weight;
  return {
    matrix: Array.from({ length: k }, (_, i) => Array.from(w.subarray(i * c, (i + 1) * c))),
    bias: Array.from(fromValues(r.heatmaps.bias).values),
  };
}

/**
 * Every map the panels can show, keyed by panel name: the input and pre-activation as sent,
 * both ReLU outputs derived from them exactly, each ground-truth mask as `truth:NAME`, and
 * where K = C the difference conv_relu − relu_only.
 * @param {{input: object, pre_activation: object, masks: Record<string, string>, height: number, width: number}} heatmaps the report's `heatmaps`
 * @returns {Record<string, Heatmap>}
 */
export function panelMaps(heatmaps) {
  const m = { input: fromValues(heatmaps.input), pre_activation: fromValues(heatmaps.pre_activation) };
  m.relu_only = relu(m.input);
  m.conv_relu = relu(m.pre_activation);
  for (const [name, mask] of Object.entries(heatmaps.masks)) m[`truth:${name}`] = fromMask(mask, heatmaps.height, heatmaps.width);
  if (m.relu_only.channels === m.conv_relu.channels) m.difference = difference(m.conv_relu, m.relu_only);
  return m;
}

/**
 * How many values of a heatmap are above a threshold, of how many, and the largest value.
 * @param {Heatmap} hm
 * @param {number} t
 * @returns {{above: number, total: number, max: number}}
 */
export function countAbove(hm, t) {
  let above = 0;
  let max = -Infinity;
  for (const v of hm.values) {
    if (v > t) above++;
    if (v > max) max = v;
  }
  return { above, total: hm.values.length, max };
}

/**
 * Each channel's mean over its pixels, in float64.
 * @param {Heatmap} hm
 * @returns {number[]}
 */
export function channelMeans(hm) {
  const n = hm.height * hm.width;
  const out = [];
  for (let c = 0; c < hm.channels; c++) {
    let sum = 0;
    for (let i = c * n; i < (c + 1) * n; i++) sum += hm.values[i];
    out.push(sum / n);
  }
  return out;
}

/**
 * What one output of a 1×1 layer mixes: its `n` largest weights by magnitude, the share of the
 * row's total |w| they carry, and how many of its weights are not zero.
 * @param {Float32Array|number[]} row one row of W, (C,)
 * @param {number} n
 * @returns {{top: {c: number, w: number}[], share: number, nonzero: number}}
 */
export function largestWeights(row, n) {
  const all = Array.from(row, (w, c) => ({ c, w }));
  const total = all.reduce((s, t) => s + Math.abs(t.w), 0);
  const top = all
    .filter((t) => t.w !== 0)
    .sort((a, b) => Math.abs(b.w) - Math.abs(a.w) || a.c - b.c)
    .slice(0, n);
  const kept = top.reduce((s, t) => s + Math.abs(t.w), 0);
  return { top, share: total > 0 ? kept / total : 0, nonzero: all.filter((t) => t.w !== 0).length };
}

/**
 * What a trained network's layer did, counted from the maps the report sends: values of
 * W·x + b over 6 (where ReLU6 differs from ReLU), each output's mean over the pixels (the
 * classifier's logits), the pixels where output 0 is above 0, and what each output mixes
 * (its 3 largest input weights).
 * @param {{pre_activation: Heatmap}} maps the panel maps (panelMaps)
 * @param {Heatmap} weight W as one (K, C) channel
 * @param {number} stride the report's display stride (1: every value)
 * @returns {{over6: {above: number, total: number, max: number}, positive0: number, means: number[], mixes: {top: {c: number, w: number}[], share: number, nonzero: number}[], stride: number}}
 */
export function layerCounts(maps, weight, stride) {
  const [k, c] = [weight.height, weight.width]; // W as one (K, C) channel
  const mixes = [];
  for (let i = 0; i < k; i++) mixes.push(largestWeights(weight.values.subarray(i * c, (i + 1) * c), 3));
  const pre = maps.pre_activation;
  const first = heatmapOf(pre.values.subarray(0, pre.height * pre.width), 1, pre.height, pre.width);
  return { over6: countAbove(pre, 6), positive0: countAbove(first, 0).above, means: channelMeans(pre), mixes, stride };
}
