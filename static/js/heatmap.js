// Pixel maths for the page: decoding the API's compact heatmaps and colouring them.
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
 * One heatmap array from the API, with its channels' codes and scales.
 * @typedef {{codes: Uint8Array, lo: number[], hi: number[], channels: number, height: number, width: number}} Heatmap
 */

/**
 * Unpack one `heatmaps.arrays[name]` entry of a compare response.
 * @param {{data: string, lo: number[], hi: number[]}} entry
 * @param {number} height
 * @param {number} width
 * @returns {Heatmap}
 */
export function unpack(entry, height, width) {
  return {
    codes: decodeBase64(entry.data),
    lo: entry.lo,
    hi: entry.hi,
    channels: entry.lo.length,
    height,
    width,
  };
}

/**
 * The value a code stands for: lo + code * (hi - lo) / 255, exact at lo and hi.
 * @param {number} code 0..255
 * @param {number} lo
 * @param {number} hi
 * @returns {number}
 */
export function dequantise(code, lo, hi) {
  if (code === 0) return lo;
  if (code === 255) return hi;
  return lo + (code * (hi - lo)) / 255;
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
  const code = hm.codes[(c * hm.height + y) * hm.width + x];
  return dequantise(code, hm.lo[c], hm.hi[c]);
}

/**
 * Half the quantisation step of channel c: how far a shown value can be from the exact one.
 * @param {Heatmap} hm
 * @param {number} c
 * @returns {number}
 */
export function precision(hm, c) {
  return (hm.hi[c] - hm.lo[c]) / 510;
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
 * Each of the 256 codes is coloured once, then pixels are a table lookup.
 * @param {Uint8ClampedArray} rgba destination, height * width * 4 bytes
 * @param {Heatmap} hm
 * @param {number} c
 * @param {{min: number, max: number}} scale
 * @param {Uint8Array} lut colour map, 256 * 3 bytes
 */
export function paintChannel(rgba, hm, c, scale, lut) {
  const table = new Uint32Array(256);
  const bytes = new Uint8Array(table.buffer);
  for (let code = 0; code < 256; code++) {
    const i = colourIndex(dequantise(code, hm.lo[c], hm.hi[c]), scale.min, scale.max) * 3;
    bytes.set([lut[i], lut[i + 1], lut[i + 2], 255], code * 4);
  }
  const n = hm.height * hm.width;
  const src = hm.codes.subarray(c * n, (c + 1) * n);
  const out = new Uint32Array(rgba.buffer, rgba.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = table[src[i]];
}

/**
 * Element-wise difference of two heatmaps with the same shape, as a new heatmap.
 * @param {Heatmap} a
 * @param {Heatmap} b
 * @returns {Heatmap} a - b, re-quantised per channel
 */
export function difference(a, b) {
  const n = a.height * a.width;
  const codes = new Uint8Array(a.codes.length);
  const lo = [];
  const hi = [];
  const vals = new Float64Array(n);
  for (let c = 0; c < a.channels; c++) {
    let mn = Infinity;
    let mx = -Infinity;
    for (let i = 0; i < n; i++) {
      const j = c * n + i;
      const v = dequantise(a.codes[j], a.lo[c], a.hi[c]) - dequantise(b.codes[j], b.lo[c], b.hi[c]);
      vals[i] = v;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    lo.push(mn);
    hi.push(mx);
    const s = mx > mn ? 255 / (mx - mn) : 0;
    for (let i = 0; i < n; i++) codes[c * n + i] = Math.round((vals[i] - mn) * s);
  }
  return { codes, lo, hi, channels: a.channels, height: a.height, width: a.width };
}

/**
 * Format a number for a readout: 4 significant digits, no exponent for ordinary sizes.
 * @param {number} v
 * @returns {string}
 */
export function fmt(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}
