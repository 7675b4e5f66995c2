// The experiment views, keyed by the endpoint a scenario sends its request to: fit (streamed
// progress, cancel), the bottleneck curve, 1×1 vs 3×3. DOM code; chart maths in plot.js and
// every sentence in story.js.

import { fromValues, heatmapOf, paintChannel, scaleFor } from "./heatmap.js";
import { el } from "./controls.js";
import { decadeLabel, drawChart, logTicks, niceTicks, parseSSE } from "./plot.js";
import { bottleneckHeadline, fitHeadline, neighboursHeadline, num, pct } from "./story.js";

const COLOURS = { conv: "#2a5db0", relu: "#c2410c", floor: "#6b21a8" };

/** An error with the API's fields, so the page can place it by `field`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.detail = body.detail || `HTTP ${status}`;
    this.field = body.field ?? null;
    this.code = body.code ?? null;
  }
}

function legend(items) {
  return el(
    "ul",
    { className: "legend" },
    ...items.map(([colour, text, dashed]) => {
      const swatch = el("span", { className: dashed ? "swatch dashed" : "swatch", "aria-hidden": "true" });
      swatch.style.borderColor = colour;
      return el("li", {}, swatch, text);
    }),
  );
}

function drawMap(canvas, hm, c, luts, mode = "channel") {
  const scale = scaleFor(hm.lo, hm.hi, mode, c);
  canvas.width = hm.width;
  canvas.height = hm.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(hm.width, hm.height);
  paintChannel(img.data, hm, c, scale, scale.diverging ? luts.diverging : luts.sequential);
  ctx.putImageData(img, 0, 0);
}

function maskMap(h, w, pixels, centre) {
  // Drawn 8× so the changed input pixel can be outlined on top of the outputs that moved.
  const s = 8;
  const canvas = el("canvas", { className: "exp-map", width: w * s, height: h * s });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#eceef1";
  ctx.fillRect(0, 0, w * s, h * s);
  ctx.fillStyle = "#d1495b";
  for (const [y, x] of pixels) ctx.fillRect(x * s, y * s, s, s);
  ctx.strokeStyle = "#1c1f24";
  ctx.lineWidth = 2;
  ctx.strokeRect(centre[1] * s + 1, centre[0] * s + 1, s - 2, s - 2);
  return canvas;
}

function figure(canvas, caption, label) {
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label || caption);
  return el("figure", { className: "exp-fig" }, canvas, el("figcaption", { textContent: caption }));
}

function neighbours(root, r, ctx) {
  const { height: h, width: w } = r.heatmaps;
  const all = fromValues(r.heatmaps.maps).values; // (3, H, W): input channel 0, 3×3 edge layer, truth
  const n = h * w;
  // Each map on its own scale: signed ones diverging, the two 0/1 masks alike.
  const one = (values) => heatmapOf(values, 1, h, w);
  const layers = [0, 1, 2].map((c) => one(all.subarray(c * n, (c + 1) * n)));
  // What the agreement counts: where the 3×3 layer's output is above 0.
  const lit = one(Float32Array.from(layers[1].values, (v) => (v > 0 ? 1 : 0)));
  const maps = [0, 1, 2].map((c) => {
    const canvas = el("canvas", { className: "exp-map", dataset: { name: r.heatmaps.names[c] } });
    drawMap(canvas, layers[c], 0, ctx.luts);
    return [canvas, r.heatmaps.names[c]];
  });
  const litCanvas = el("canvas", { className: "exp-map", dataset: { name: "3×3 > 0" } });
  drawMap(litCanvas, lit, 0, ctx.luts);
  root.replaceChildren(
    el(
      "div",
      { className: "exp-row" },
      figure(maskMap(h, w, r.changed.conv1x1, r.pixel), `outputs the 1×1 conv changed (${r.changed.conv1x1.length}); outlined: the input pixel changed`),
      figure(maskMap(h, w, r.changed.conv3x3, r.pixel), `outputs the 3×3 conv changed (${r.changed.conv3x3.length})`),
      figure(...maps[0]),
      figure(...maps[1]),
      figure(litCanvas, "where the 3×3 edge layer > 0: what its agreement counts"),
      figure(...maps[2]),
    ),
  );
}

function lossSpec(conv, relu, xs, steps, floor) {
  const all = conv.concat(relu, floor ? [floor] : []).filter((v) => v > 0);
  const top = Math.max(...all);
  const lower = Math.max(Math.min(...all), top * 1e-10);
  const ticks = logTicks(lower, top);
  return {
    series: [
      { values: conv, xs, colour: COLOURS.conv },
      { values: relu, xs, colour: COLOURS.relu },
    ],
    lines: floor ? [{ value: Math.max(floor, ticks[0]), colour: COLOURS.floor }] : [],
    x: { n: steps, ticks: niceTicks(1, steps, 5).filter((t) => t >= 1), first: 1 },
    y: { min: ticks[0], max: ticks[ticks.length - 1], ticks, log: true, label: decadeLabel },
    xlabel: "training step",
  };
}

function fitFrame(root, steps) {
  const progress = el("progress", { max: steps, value: 0, id: "fit-progress", "aria-label": "training progress" });
  const cancel = el("button", { type: "button", id: "fit-cancel", textContent: "Cancel" });
  const status = el("p", { className: "note", id: "fit-status", role: "status", textContent: "Training…" });
  const chart = el("canvas", { className: "exp-chart", id: "fit-chart", role: "img", "aria-label": "Mean squared error of both models against the training step, log scale" });
  root.replaceChildren(
    el("div", { className: "exp-bar" }, progress, cancel),
    status,
    el("figure", { className: "exp-figure" }, chart, el("figcaption", {}, "Mean squared error (log scale) against the training step; values under 10⁻¹⁰ of the largest are float rounding and sit on the bottom line.", legend([
      [COLOURS.conv, "1×1 conv + ReLU"],
      [COLOURS.relu, "best ReLU-only model (scale and bias per channel)"],
      [COLOURS.floor, "floor no per-channel model can beat", true],
    ]))),
  );
  return { progress, cancel, status, chart };
}

/**
 * Run the fit as a stream, drawing progress as it comes; resolves with the FitResult, or with
 * {cancelled, step, conv_loss, relu_only_loss} when the learner cancels.
 */
async function fitRun(root, req, ctx) {
  const steps = Number(ctx.request.steps);
  const f = fitFrame(root, steps);
  const local = new AbortController();
  ctx.signal.addEventListener("abort", () => local.abort());
  f.cancel.addEventListener("click", () => local.abort());
  const conv = [];
  const relu = [];
  const xs = [];
  // Events can come faster than frames: draw at most once a frame, so the page stays responsive.
  let frame = 0;
  const redraw = () => {
    frame = 0;
    drawChart(f.chart, lossSpec(conv, relu, xs, steps, null));
  };
  let response;
  try {
    response = await fetch(`${ctx.endpoint}?stream=true`, { method: "POST", body: req.body, headers: { ...req.headers, Accept: "text/event-stream" }, signal: local.signal });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const parsed = parseSSE(buffer + value);
      buffer = parsed.rest;
      for (const { event, data } of parsed.events) {
        if (event === "progress") {
          f.progress.value = data.step;
          conv.push(data.conv_loss);
          relu.push(data.relu_only_loss);
          xs.push(data.step);
          f.status.textContent = `Step ${num(data.step)} of ${num(data.steps)}.`;
          if (!frame) frame = requestAnimationFrame(redraw);
        } else if (event === "result") {
          cancelAnimationFrame(frame);
          f.cancel.disabled = true;
          return data;
        } else if (event === "error") {
          throw new ApiError(data.status, data);
        }
      }
    }
    throw new ApiError(0, { detail: "The stream ended without a result." });
  } catch (err) {
    cancelAnimationFrame(frame);
    if (err.name === "AbortError" && !ctx.signal.aborted) {
      f.status.textContent = `Cancelled at step ${num(f.progress.value)}.`;
      f.status.dataset.cancelled = "1";
      f.cancel.disabled = true;
      return { cancelled: true, step: f.progress.value, conv_loss: conv, relu_only_loss: relu, xs };
    }
    throw err;
  }
}

function fitShow(root, r, ctx) {
  const chart = root.querySelector("#fit-chart") || fitFrame(root, Number(ctx.request.steps)).chart;
  const steps = r.cancelled ? Number(ctx.request.steps) : r.conv_loss.length;
  if (!r.cancelled) {
    root.querySelector("#fit-status").textContent = `Done on ${r.device}: ${num(steps)} steps.`;
    root.querySelector("#fit-progress").value = steps;
    root.querySelector("#fit-cancel").disabled = true;
  }
  if (r.conv_loss.length) drawChart(chart, lossSpec(r.conv_loss, r.relu_only_loss, r.xs, steps, r.relu_only_floor ?? null));
}

function bottleneck(root, r) {
  const chart = el("canvas", { className: "exp-chart", id: "bottleneck-chart", role: "img", "aria-label": "Variance kept and relative multiply-adds against K" });
  const kept = r.rows.map((row) => row.variance_kept);
  const costs = r.rows.map((row) => Math.min(row.macs / r.direct.macs, 1));
  const n = `${r.kernel}×${r.kernel}`;
  const pick = [1, 4, 8, 16, 32, 64, 96, 128, 192].filter((k) => k <= r.channels);
  const th = (t) => el("th", { scope: "col", textContent: t });
  const head = el("tr", {}, th("K"), th("variance kept"), th("params"), th("mult-adds"), th(`vs ${n} alone`));
  const rows = pick.map((k) => {
    const row = r.rows[k - 1];
    return el("tr", {}, ...[k, pct(row.variance_kept), num(row.parameters), num(row.macs), `${((100 * row.macs) / r.direct.macs).toFixed(0)}%`].map((t) => el("td", { textContent: String(t) })));
  });
  const direct = el("tr", {}, ...[`${n} alone`, "—", num(r.direct.parameters), num(r.direct.macs), "100%"].map((t) => el("td", { textContent: t })));
  root.replaceChildren(
    el("figure", { className: "exp-figure" }, chart, el("figcaption", {}, `For every K from 1 to ${r.channels}: the input variance the best 1×1 reduction to K channels keeps, and the multiply-adds of the 1×1 reduce + ${n} conv to ${r.out_channels} channels relative to the ${n} conv alone.`, legend([
      [COLOURS.conv, "variance kept"],
      [COLOURS.relu, `multiply-adds relative to ${n} alone (capped at 100%)`],
    ]))),
    el("div", { className: "table-wrap" }, el("table", { className: "exp-table", id: "bottleneck-table" }, el("caption", { textContent: `Cost of 1×1 reduce to K, then ${n} to ${r.out_channels}` }), el("thead", {}, head), el("tbody", {}, ...rows, direct))),
  );
  // Drawn once the canvas is in the page and has its width.
  drawChart(chart, {
    series: [
      { values: kept, colour: COLOURS.conv },
      { values: costs, colour: COLOURS.relu },
    ],
    x: { n: r.channels, ticks: niceTicks(1, r.channels, 5).filter((t) => t >= 1), first: 1 },
    y: { min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 1], label: (v) => `${Math.round(100 * v)}%` },
    xlabel: "K, channels after the 1×1 reduction",
  });
}

/** The experiment views, keyed by endpoint: how to run (default: POST JSON), show and say. */
export const VIEWS = {
  "/api/v1/experiments/receptive-field": { show: neighbours, headline: (r) => neighboursHeadline(r) },
  "/api/v1/experiments/fit": {
    run: fitRun,
    show: fitShow,
    headline: (r, request) =>
      r.cancelled
        ? `Cancelled at step ${num(r.step)}. ${r.conv_loss.length ? fitHeadline(r, r.step) : ""}`
        : fitHeadline(r, r.conv_loss.length || Number(request.steps)),
  },
  "/api/v1/experiments/bottleneck": { show: bottleneck, headline: (r) => bottleneckHeadline(r) },
};
