// The experiment views, keyed by the endpoint a scenario sends its request to: fit (streamed
// progress, cancel), the bottleneck curve, 1×1 vs 3×3. DOM code; chart maths in plot.js and
// every sentence in story.js.

import { ApiError, events, post } from "./api.js";
import { el } from "./dom.js";
import { fromValues, heatmapOf, paintChannel, scaleFor } from "./heatmap.js";
import { decadeLabel, drawChart, logTicks, niceTicks } from "./plot.js";
import { bottleneckHeadline, experimentText as T, fitViewHeadline, neighboursHeadline, num, pct, trainedBottleneckHeadline } from "./story.js";

const COLOURS = { conv: "#2a5db0", relu: "#c2410c", floor: "#6b21a8", generated: "#15803d", trained: "#1c1f24" };

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
  const litCanvas = el("canvas", { className: "exp-map", dataset: { name: T.litName } });
  drawMap(litCanvas, lit, 0, ctx.luts);
  root.replaceChildren(
    el(
      "div",
      { className: "exp-row" },
      figure(maskMap(h, w, r.changed.conv1x1, r.pixel), T.changed1x1(r.changed.conv1x1.length)),
      figure(maskMap(h, w, r.changed.conv3x3, r.pixel), T.changed3x3(r.changed.conv3x3.length)),
      figure(...maps[0]),
      figure(...maps[1]),
      figure(litCanvas, T.lit),
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
    xlabel: T.fitAxis,
  };
}

function fitFrame(root, steps) {
  const progress = el("progress", { max: steps, value: 0, id: "fit-progress", "aria-label": T.progress });
  const cancel = el("button", { type: "button", id: "fit-cancel", textContent: T.cancel });
  const status = el("p", { className: "note", id: "fit-status", role: "status", textContent: T.training });
  const chart = el("canvas", { className: "exp-chart", id: "fit-chart", role: "img", "aria-label": T.fitChart });
  root.replaceChildren(
    el("div", { className: "exp-bar" }, progress, cancel),
    status,
    el("figure", { className: "exp-figure" }, chart, el("figcaption", {}, T.fitCaption, legend([
      [COLOURS.conv, T.fitLegend.conv],
      [COLOURS.relu, T.fitLegend.relu],
      [COLOURS.floor, T.fitLegend.floor, true],
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
  try {
    const response = await post(`${ctx.endpoint}?stream=true`, req, { signal: local.signal, accept: "text/event-stream" });
    for await (const { event, data } of events(response)) {
      if (event === "progress") {
        f.progress.value = data.step;
        conv.push(data.conv_loss);
        relu.push(data.relu_only_loss);
        xs.push(data.step);
        f.status.textContent = T.step(data.step, data.steps);
        if (!frame) frame = requestAnimationFrame(redraw);
      } else if (event === "result") {
        cancelAnimationFrame(frame);
        f.cancel.disabled = true;
        return data;
      } else if (event === "error") {
        throw new ApiError(data.status, data);
      }
    }
    throw new ApiError(0, { detail: T.noResult });
  } catch (err) {
    cancelAnimationFrame(frame);
    if (err.name === "AbortError" && !ctx.signal.aborted) {
      f.status.textContent = T.cancelled(f.progress.value);
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
    root.querySelector("#fit-status").textContent = T.done(r.device, steps);
    root.querySelector("#fit-progress").value = steps;
    root.querySelector("#fit-cancel").disabled = true;
  }
  if (r.conv_loss.length) drawChart(chart, lossSpec(r.conv_loss, r.relu_only_loss, r.xs, steps, r.relu_only_floor ?? null));
}

/**
 * The bottleneck curve; for a network's activations, with the curve of generated maps of the
 * same size beside it (a second request, `ctx.twin`) and the trained layer's own reduction.
 */
async function bottleneckRun(root, req, ctx) {
  const main = post(ctx.endpoint, req, { signal: ctx.signal }).then((r) => r.json());
  if (!ctx.twin) return main;
  const twin = post(ctx.endpoint, { body: JSON.stringify(ctx.twin.request), headers: { "Content-Type": "application/json" } }, { signal: ctx.signal }).then((r) => r.json());
  const [r, generated] = await Promise.all([main, twin]);
  return { ...r, generated, twin: ctx.twin };
}

function bottleneck(root, r) {
  const chart = el("canvas", { className: "exp-chart", id: "bottleneck-chart", role: "img", "aria-label": T.bottleneckChart });
  const kept = r.rows.map((row) => row.variance_kept);
  const costs = r.rows.map((row) => Math.min(row.macs / r.direct.macs, 1));
  const g = r.generated || null;
  const t = r.trained && r.trained.k < r.channels ? r.trained : null;
  const n = `${r.kernel}×${r.kernel}`;
  const pick = [1, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 960, 1024, 1280, ...(t ? [t.k] : [])]
    .filter((k, i, all) => k <= r.channels && all.indexOf(k) === i)
    .sort((a, b) => a - b);
  const th = (text) => el("th", { scope: "col", textContent: text });
  const heads = T.bottleneckHead(n);
  if (g) heads.splice(2, 0, T.generatedHead);
  const head = el("tr", {}, ...heads.map(th));
  const rows = pick.map((k) => {
    const row = r.rows[k - 1];
    const cells = [k, pct(row.variance_kept), num(row.parameters), num(row.macs), `${((100 * row.macs) / r.direct.macs).toFixed(0)}%`];
    if (g) cells.splice(2, 0, k <= g.channels ? pct(g.rows[k - 1].variance_kept) : "—");
    const tr = el("tr", {}, ...cells.map((text) => el("td", { textContent: String(text) })));
    if (t && k === t.k) tr.className = "trained";
    return tr;
  });
  const direct = el("tr", {}, ...[T.alone(n), "—", ...(g ? ["—"] : []), num(r.direct.parameters), num(r.direct.macs), "100%"].map((text) => el("td", { textContent: text })));
  const items = [
    [COLOURS.conv, g ? T.trainedLegend.real : T.bottleneckLegend(n).kept],
    ...(g ? [[COLOURS.generated, T.trainedLegend.generated(g.channels)]] : []),
    [COLOURS.relu, T.bottleneckLegend(n).cost],
    ...(t ? [[COLOURS.trained, T.trainedLegend.trained(t.k), true]] : []),
  ];
  const notes = [];
  if (r.twin) {
    notes.push(el("p", { className: "note", id: "bottleneck-twin" }, T.generatedRequest(""), el("code", { textContent: JSON.stringify(r.twin.request) })));
    if (r.twin.capped) notes.push(el("p", { className: "note", textContent: T.generatedCapped(r.channels, r.twin.channels) }));
  }
  root.replaceChildren(
    el("figure", { className: "exp-figure" }, chart, el("figcaption", {}, g || t ? T.trainedCaption(r, g, n) : T.bottleneckCaption(r, n), legend(items))),
    el("div", { className: "table-wrap" }, el("table", { className: g ? "exp-table with-generated" : "exp-table", id: "bottleneck-table" }, el("caption", { textContent: T.bottleneckTable(n, r.out_channels) + (t ? T.trainedRow(t.k, t.variance_kept) : "") }), el("thead", {}, head), el("tbody", {}, ...rows, direct))),
    ...notes,
  );
  // Drawn once the canvas is in the page and has its width.
  drawChart(chart, {
    series: [
      { values: kept, colour: COLOURS.conv },
      ...(g ? [{ values: g.rows.map((row) => row.variance_kept), colour: COLOURS.generated }] : []),
      { values: costs, colour: COLOURS.relu },
    ],
    points: t ? [{ x: t.k, value: t.variance_kept, colour: COLOURS.trained }] : [],
    x: { n: r.channels, ticks: niceTicks(1, r.channels, 5).filter((k) => k >= 1), first: 1 },
    y: { min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 1], label: (v) => `${Math.round(100 * v)}%` },
    xlabel: T.bottleneckAxis,
  });
}

/** The experiment views, keyed by endpoint: how to run (default: POST JSON), show and say. */
export const VIEWS = {
  "/api/v1/experiments/receptive-field": { show: neighbours, headline: (r) => neighboursHeadline(r) },
  "/api/v1/experiments/fit": { run: fitRun, show: fitShow, headline: fitViewHeadline },
  "/api/v1/experiments/bottleneck": {
    run: bottleneckRun,
    show: bottleneck,
    headline: (r) => (r.network ? trainedBottleneckHeadline(r, r.generated || null) : bottleneckHeadline(r)),
  },
};
