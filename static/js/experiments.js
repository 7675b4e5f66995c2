// The experiment views: fit (streamed), bottleneck curve, 1×1 vs 3×3. DOM code; maths in plot.js.

import { fmt, fromValues, paintChannel, scaleFor } from "./heatmap.js";
import { chartPoints, parseSSE } from "./plot.js";

const el = (tag, props = {}, ...kids) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...kids);
  return node;
};

/** The experiment scenarios, keyed by the scenario id the URL carries. */
export const EXPERIMENTS = {
  neighbours: {
    title: "1×1 vs 3×3: who sees the neighbours?",
    point:
      "A 1×1 conv mixes the channels of one pixel and never looks at its neighbours: change one input pixel and exactly one output pixel moves. A 3×3 conv moves a 3×3 patch, and can find the edges between flat regions, which no 1×1 layer can.",
    run: neighbours,
  },
  fit: {
    title: "Learn the mixing",
    point:
      "Train both with gradient descent towards \"how much more cat than dog\", relu(cat − dog): a 1×1 conv + ReLU, and the best model without channel mixing (a scale and bias per channel, then ReLU). Monotone per-channel functions have a floor they cannot go under.",
    run: fit,
  },
  bottleneck: {
    title: "The bottleneck curve",
    point:
      "How many filters does a reduction need? For every K, the variance the best 1×1 reduction to K channels keeps, and what a 1×1 reduce + 5×5 conv costs against the 5×5 conv alone (GoogLeNet's 192 → 16 → 5×5 → 32).",
    run: bottleneck,
  },
};

async function postJSON(path, body, signal) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  const payload = await r.json().catch(() => ({ detail: r.statusText }));
  if (!r.ok) throw new Error(`${r.status}: ${payload.detail}`);
  return payload;
}

function drawHeat(canvas, hm, c, luts) {
  const scale = scaleFor(hm.lo, hm.hi, "channel", c);
  canvas.width = hm.width;
  canvas.height = hm.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(hm.width, hm.height);
  paintChannel(img.data, hm, c, scale, scale.diverging ? luts.diverging : luts.sequential);
  ctx.putImageData(img, 0, 0);
}

function maskCanvas(h, w, pixels, centre) {
  const canvas = el("canvas", { className: "exp-map", width: w, height: h });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#eceef1";
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#d1495b";
  for (const [y, x] of pixels) ctx.fillRect(x, y, 1, 1);
  ctx.fillStyle = "#1c1f24";
  ctx.fillRect(centre[1], centre[0], 1, 1);
  return canvas;
}

function figure(canvas, caption) {
  return el("figure", { className: "exp-fig" }, canvas, el("figcaption", { textContent: caption }));
}

async function neighbours(root, ctx) {
  const r = await postJSON("/api/v1/experiments/receptive-field", {}, ctx.signal);
  const { height: h, width: w } = r.heatmaps;
  const hm = fromValues(r.heatmaps.maps);
  const maps = r.heatmaps.names.map((name, c) => {
    const canvas = el("canvas", { className: "exp-map" });
    drawHeat(canvas, hm, c, ctx.luts);
    canvas.dataset.name = name;
    return figure(canvas, name);
  });
  const e = r.edges;
  const c1 = r.cost.conv1x1;
  const c3 = r.cost.conv3x3;
  root.append(
    el("p", {
      className: "headline",
      id: "exp-headline",
      textContent: `Pixel (${r.pixel.join(", ")}) changed: the 1×1 output changed at ${r.changed.conv1x1.length} pixel, the 3×3 output at ${r.changed.conv3x3.length}. The 3×3 edge layer marks the edges with ${(100 * e.conv3x3_agreement).toFixed(1)}% agreement; no 1×1 layer, of any depth, can pass ${(100 * e.best_1x1_agreement).toFixed(1)}%, because pixels with the same channel vector sit on both sides of an edge. Cost per layer: 1×1 ${c1.parameters} parameters / ${c1.macs.toLocaleString("en-US")} multiply-adds, 3×3 ${c3.parameters} / ${c3.macs.toLocaleString("en-US")}.`,
    }),
    el(
      "div",
      { className: "exp-row" },
      figure(maskCanvas(h, w, r.changed.conv1x1, r.pixel), "outputs changed by the 1×1 conv"),
      figure(maskCanvas(h, w, r.changed.conv3x3, r.pixel), "outputs changed by the 3×3 conv"),
      ...maps,
    ),
  );
}

function lossChart(canvas, curves, steps, floor) {
  const ctx = canvas.getContext("2d");
  const W = (canvas.width = 640);
  const H = (canvas.height = 260);
  ctx.clearRect(0, 0, W, H);
  const all = curves.flatMap((c) => c.values).concat(floor ? [floor] : []).filter((v) => v > 0);
  if (!all.length) return;
  const box = { x0: 60, y0: 10, w: W - 80, h: H - 50, ymin: Math.min(...all), ymax: Math.max(...all), log: true, n: steps };
  ctx.strokeStyle = "#888";
  ctx.strokeRect(box.x0, box.y0, box.w, box.h);
  ctx.fillStyle = "#333";
  ctx.font = "12px sans-serif";
  ctx.fillText(fmt(box.ymax), 4, box.y0 + 10);
  ctx.fillText(fmt(box.ymin), 4, box.y0 + box.h);
  ctx.fillText("mean squared error (log scale) against training step", box.x0, H - 8);
  if (floor) {
    const [[, y]] = chartPoints([floor], box);
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = "#d1495b";
    ctx.beginPath();
    ctx.moveTo(box.x0, y);
    ctx.lineTo(box.x0 + box.w, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#d1495b";
    ctx.fillText("floor for every per-channel model", box.x0 + 6, y + 14);
  }
  for (const { values, colour, label } of curves) {
    const pts = chartPoints(values, box);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    if (pts.length) {
      ctx.fillStyle = colour;
      ctx.fillText(label, Math.min(pts[pts.length - 1][0] + 4, W - 120), pts[pts.length - 1][1] - 4);
    }
  }
}

async function fit(root, ctx) {
  const steps = 500;
  const progress = el("progress", { max: steps, value: 0, id: "fit-progress" });
  const cancel = el("button", { type: "button", id: "fit-cancel", textContent: "Cancel" });
  const status = el("p", { className: "note", id: "fit-status", textContent: "Training…" });
  const chart = el("canvas", { className: "exp-chart", id: "fit-chart" });
  const headline = el("p", { className: "headline", id: "exp-headline" });
  root.append(el("div", { className: "row" }, progress, cancel), status, headline, chart);
  const local = new AbortController();
  ctx.signal.addEventListener("abort", () => local.abort());
  cancel.addEventListener("click", () => local.abort());
  const conv = [];
  const relu = [];
  let floor = null;
  const draw = () =>
    lossChart(
      chart,
      [
        { values: conv, colour: "#2a5db0", label: "1×1 conv + ReLU" },
        { values: relu, colour: "#d1495b", label: "best ReLU-only" },
      ],
      steps,
      floor,
    );
  let response;
  try {
    response = await fetch("/api/v1/experiments/fit?stream=true", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ steps, every: 5 }),
      signal: local.signal,
    });
    if (!response.ok) {
      const payload = await response.json();
      throw new Error(`${response.status}: ${payload.detail}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const parsed = parseSSE(buffer + value);
      buffer = parsed.rest;
      for (const { event, data } of parsed.events) {
        if (event === "progress") {
          progress.value = data.step;
          conv.push(data.conv_loss);
          relu.push(data.relu_only_loss);
          status.textContent = `step ${data.step} of ${data.steps}: 1×1 ${fmt(data.conv_loss)}, ReLU-only ${fmt(data.relu_only_loss)}`;
          draw();
        } else if (event === "result") {
          floor = data.relu_only_floor;
          conv.splice(0, conv.length, ...data.conv_loss);
          relu.splice(0, relu.length, ...data.relu_only_loss);
          draw();
          const w = data.conv_weight[0].map((v) => v.toFixed(2)).join(", ");
          headline.textContent = `${data.conclusion} Learned 1×1 weights: (${w}), bias ${data.conv_bias[0].toFixed(3)} — cat − dog.`;
          headline.dataset.result = JSON.stringify(data.final);
          status.textContent = `Done on ${data.device}.`;
          cancel.disabled = true;
        } else if (event === "error") {
          throw new Error(`${data.status}: ${data.detail}`);
        }
      }
    }
  } catch (err) {
    if (err.name === "AbortError") {
      status.textContent = `Cancelled at step ${progress.value}.`;
      status.dataset.cancelled = "1";
      cancel.disabled = true;
      return;
    }
    throw err;
  }
}

async function bottleneck(root, ctx) {
  const r = await postJSON("/api/v1/experiments/bottleneck", {}, ctx.signal);
  const chart = el("canvas", { className: "exp-chart", id: "bottleneck-chart", width: 640, height: 260 });
  const g = chart.getContext("2d");
  const box = { x0: 50, y0: 10, w: 570, h: 200, ymin: 0, ymax: 1 };
  g.strokeStyle = "#888";
  g.strokeRect(box.x0, box.y0, box.w, box.h);
  const kept = r.rows.map((row) => row.variance_kept);
  const costs = r.rows.map((row) => row.macs / r.direct.macs);
  for (const [values, colour] of [[kept, "#2a5db0"], [costs, "#d1495b"]]) {
    const pts = chartPoints(values.map((v) => Math.min(v, 1)), box);
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.stroke();
  }
  g.fillStyle = "#333";
  g.font = "12px sans-serif";
  g.fillText("1", 30, box.y0 + 10);
  g.fillText("0", 30, box.y0 + box.h);
  g.fillText(`K = 1 … ${r.channels}`, box.x0, 236);
  g.fillStyle = "#2a5db0";
  g.fillText("variance kept", box.x0 + 8, box.y0 + 16);
  g.fillStyle = "#d1495b";
  g.fillText(`multiply-adds of 1×1 + ${r.kernel}×${r.kernel}, relative to ${r.kernel}×${r.kernel} alone (capped at 1)`, box.x0 + 8, box.y0 + 32);
  const pick = [4, 8, 16, 32, 64, 96, 128].filter((k) => k <= r.channels);
  const head = el("tr", {}, ...["K", "variance kept", "parameters", "multiply-adds", "vs direct"].map((t) => el("th", { textContent: t })));
  const rows = pick.map((k) => {
    const row = r.rows[k - 1];
    return el(
      "tr",
      {},
      ...[k, `${(100 * row.variance_kept).toFixed(1)}%`, row.parameters.toLocaleString("en-US"), row.macs.toLocaleString("en-US"), `${((100 * row.macs) / r.direct.macs).toFixed(0)}%`].map((t) => el("td", { textContent: String(t) })),
    );
  });
  const direct = el("tr", {}, ...[`${r.kernel}×${r.kernel} alone`, "100%", r.direct.parameters.toLocaleString("en-US"), r.direct.macs.toLocaleString("en-US"), "100%"].map((t) => el("td", { textContent: String(t) })));
  const k16 = r.rows[Math.min(16, r.channels) - 1];
  root.append(
    el("p", {
      className: "headline",
      id: "exp-headline",
      textContent: `Reducing ${r.channels} channels to 16 before the ${r.kernel}×${r.kernel} conv keeps ${(100 * k16.variance_kept).toFixed(1)}% of the variance and costs ${((100 * k16.macs) / r.direct.macs).toFixed(0)}% of the multiply-adds of the ${r.kernel}×${r.kernel} conv alone.`,
    }),
    chart,
    el("table", { className: "exp-table", id: "bottleneck-table" }, head, ...rows, direct),
  );
}

/**
 * Run an experiment scenario into `root`, replacing what was there.
 * @param {string} id a key of EXPERIMENTS
 * @param {HTMLElement} root
 * @param {{signal: AbortSignal, luts: {sequential: Uint8Array, diverging: Uint8Array}}} ctx
 */
export async function runExperiment(id, root, ctx) {
  root.replaceChildren();
  await EXPERIMENTS[id].run(root, ctx);
}
