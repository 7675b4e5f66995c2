// The page: controls -> POST /api/v1/compare -> heatmaps drawn on canvases.
// Pixel maths lives in heatmap.js and view state in state.js; this module is the DOM.

import {
  decodeBase64,
  difference,
  fmt,
  fromMask,
  fromValues,
  paintChannel,
  relu,
  scaleFor,
  valueAt,
} from "./heatmap.js";
import { EXPERIMENTS, runExperiment } from "./experiments.js";
import { EXPERIMENT_IDS, SCENARIOS, curlCommand, fromQuery, toQuery, viewFor } from "./state.js";

const $ = (id) => document.getElementById(id);
const SMALL_LAYER = 16; // up to 16 × 16 weights are editable cells
const COLUMNS = {
  input: "Input",
  relu_only: "ReLU-only",
  conv_relu: "1×1 conv + ReLU",
  pre_activation: "Pre-activation W·x + b",
  difference: "Difference (1×1 + ReLU) − ReLU-only",
  "truth:cat_over_dog": "Truth: more cat than dog",
  "truth:edge": "Truth: edges",
};

/** Everything the page knows; `view` is what the URL restores. */
const app = {
  view: viewFor(null),
  files: { input: null, weights: null },
  luts: { sequential: null, diverging: null },
  presets: null,
  devices: [],
  result: null,
  maps: {},
  runs: 0,
  controller: null,
  timer: 0,
  observer: null,
};

// ---------------------------------------------------------------- requests

/** The spec as the server should get it: upload-only fields only with an upload. */
function specToSend() {
  const spec = structuredClone(app.view.spec);
  if (!app.files.input) {
    delete spec.input.layout;
    delete spec.input.features;
  }
  if (app.files.weights) spec.weights = {}; // the file holds the layer
  return spec;
}

function requestBody() {
  const spec = specToSend();
  if (!app.files.input) {
    return { body: JSON.stringify(spec), headers: { "Content-Type": "application/json" } };
  }
  const form = new FormData();
  form.append("input", app.files.input);
  if (app.files.weights) form.append("weights", app.files.weights);
  form.append("spec", JSON.stringify(spec));
  return { body: form, headers: {} };
}

async function fetchCompare(format, signal) {
  const { body, headers } = requestBody();
  const query = format === "json" ? "format=json" : `format=${format}`;
  return fetch(`/api/v1/compare?${query}`, { method: "POST", body, headers, signal });
}

function schedule(delay = 250) {
  clearTimeout(app.timer);
  app.timer = setTimeout(run, delay);
}

async function run() {
  if (app.controller) app.controller.abort();
  const controller = new AbortController();
  app.controller = controller;
  document.body.dataset.status = "loading";
  updateShare();
  let response;
  try {
    response = await fetchCompare("json", controller.signal);
  } catch (err) {
    if (err.name === "AbortError") return;
    showError(0, `The server could not be reached: ${err.message}`);
    document.body.dataset.status = "error";
    return;
  }
  const payload = await response.json().catch(() => ({ detail: response.statusText }));
  if (controller !== app.controller) return;
  if (!response.ok) {
    showError(response.status, payload.detail);
    document.body.dataset.status = "error";
    return;
  }
  performance.mark("onebyone:response");
  clearErrors();
  app.result = payload;
  render();
  app.runs += 1;
  document.body.dataset.runs = String(app.runs);
  document.body.dataset.status = "ready";
}

// ---------------------------------------------------------------- errors

const ERROR_TARGETS = [
  [/device/i, "device-error"],
  [/weights|matrix|bias|preset|out_channels|filters|K = |difference|identity|pca/i, "weights-error"],
  [/input|layout|ambiguous|generator|height|width|channels|file|image|NaN|values/i, "input-error"],
];

function clearErrors() {
  for (const id of ["error", "input-error", "weights-error", "device-error"]) {
    $(id).hidden = true;
    $(id).textContent = "";
  }
}

function showError(status, detail) {
  clearErrors();
  const text = `${status ? `${status}: ` : ""}${detail}`;
  const target = ERROR_TARGETS.find(([re]) => re.test(detail || ""));
  const el = $(target ? target[1] : "error");
  el.textContent = text;
  el.hidden = false;
}

// ---------------------------------------------------------------- controls

function fillSelect(select, entries) {
  select.replaceChildren(
    ...entries.map(([value, label, disabled, title]) => {
      const opt = document.createElement("option");
      opt.value = value;
      opt.textContent = label;
      opt.disabled = Boolean(disabled);
      if (title) opt.title = title;
      return opt;
    }),
  );
}

function setupControls() {
  fillSelect(
    $("generator"),
    Object.entries(app.presets.generators).map(([k, g]) => [k, k, false, g.description]),
  );
  const presets = Object.entries(app.presets.weight_presets).map(([k, p]) => [k, k, false, p.description]);
  presets.push(["matrix", "explicit matrix (edit below)", false, "The weights in the grid below"]);
  fillSelect($("preset"), presets);
  fillSelect(
    $("device"),
    ["auto", "cpu", "cuda", "mps"].map((d) => {
      const ok = d === "auto" || app.devices.includes(d);
      return [d, ok ? d : `${d} — not available on this server`, !ok, ok ? "" : "This server has no such device"];
    }),
  );
  for (const id of ["generator", "height", "width", "channels", "seed", "layout", "filterbank"]) {
    $(id).addEventListener("change", () => onControl("input"));
  }
  for (const id of ["preset", "out-channels", "wseed", "positive", "negative"]) {
    $(id).addEventListener("change", () => onControl(id === "preset" ? "preset" : "weights"));
  }
  $("device").addEventListener("change", () => onControl("device"));
  for (const radio of document.querySelectorAll("input[name=scale]")) {
    radio.addEventListener("change", () => {
      app.view.scale = radio.value;
      updateShare();
      if (app.result) render();
    });
  }
  $("extra").addEventListener("change", () => {
    app.view.extra = $("extra").checked;
    updateShare();
    if (app.result) render();
  });
  for (const button of document.querySelectorAll("button.scenario[data-scenario]")) {
    button.addEventListener("click", () => selectScenario(button.dataset.scenario));
  }
  $("input-file").addEventListener("change", () => setFile("input", $("input-file").files[0]));
  $("weights-file").addEventListener("change", () => setFile("weights", $("weights-file").files[0]));
  $("clear-input").addEventListener("click", () => setFile("input", null));
  $("clear-weights").addEventListener("click", () => setFile("weights", null));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) setFile("input", e.dataTransfer.files[0]);
  });
  $("copy-link").addEventListener("click", () => copy(location.href, "Link copied."));
  $("copy-curl").addEventListener("click", () => copy($("curl").textContent, "curl command copied."));
  $("download-png").addEventListener("click", () => download("png"));
  $("download-npz").addEventListener("click", () => download("npz"));
  $("panels").addEventListener("mousemove", onHover);
  $("panels").addEventListener("click", onCellClick);
  $("panels").addEventListener("keydown", onCellKey);
  $("panels").addEventListener("focusin", (e) => {
    if (e.target.classList.contains("cell")) showCursor(e.target);
  });
}

function showControls() {
  const { input, weights, device } = app.view.spec;
  $("generator").value = input.generator;
  $("height").value = input.height;
  $("width").value = input.width;
  $("channels").value = input.channels;
  $("seed").value = input.seed ?? 0;
  $("layout").value = input.layout || "auto";
  $("filterbank").checked = input.features === "filterbank";
  $("preset").value = weights.matrix ? "matrix" : weights.preset || "random";
  $("out-channels").value = weights.out_channels ?? "";
  $("wseed").value = weights.seed ?? 0;
  $("positive").value = weights.positive ?? 0;
  $("negative").value = weights.negative ?? 1;
  $("device").value = device || "auto";
  for (const radio of document.querySelectorAll("input[name=scale]")) {
    radio.checked = radio.value === app.view.scale;
  }
  $("extra").checked = app.view.extra;
  for (const b of document.querySelectorAll("button.scenario[data-scenario]")) {
    b.setAttribute("aria-pressed", String(b.dataset.scenario === app.view.scenario));
  }
  const usesParams = { random: ["out-channels", "wseed"], pca: ["out-channels"], difference: ["positive", "negative"] };
  const active = usesParams[$("preset").value] || [];
  for (const id of ["out-channels", "wseed", "positive", "negative"]) {
    $(id).disabled = !active.includes(id) || Boolean(app.files.weights);
  }
  $("preset").disabled = Boolean(app.files.weights);
  for (const id of ["generator", "height", "width", "channels", "seed"]) $(id).disabled = Boolean(app.files.input);
  $("layout").disabled = !app.files.input;
  $("filterbank").disabled = !app.files.input;
  $("clear-input").hidden = !app.files.input;
  $("clear-weights").hidden = !app.files.weights;
}

function intOr(id, fallback) {
  const v = parseInt($(id).value, 10);
  return Number.isFinite(v) ? v : fallback;
}

function onControl(kind) {
  const spec = app.view.spec;
  spec.input = {
    generator: $("generator").value,
    height: intOr("height", 28),
    width: intOr("width", 28),
    channels: intOr("channels", 4),
    seed: intOr("seed", 0),
    layout: $("layout").value,
    features: $("filterbank").checked ? "filterbank" : "raw",
  };
  spec.device = $("device").value;
  const preset = $("preset").value;
  if (preset !== "matrix") {
    const weights = { preset };
    if (preset === "random" || preset === "pca") {
      const k = parseInt($("out-channels").value, 10);
      if (Number.isFinite(k) && kind !== "preset") weights.out_channels = k;
    }
    if (preset === "random") weights.seed = intOr("wseed", 0);
    if (preset === "difference") {
      weights.positive = intOr("positive", 0);
      weights.negative = intOr("negative", 1);
    }
    spec.weights = weights;
  } else if (!spec.weights.matrix && app.result && app.result.layer.weight) {
    spec.weights = { matrix: app.result.layer.weight, bias: app.result.layer.bias };
  }
  app.view.scenario = null;
  showMode();
  showControls();
  schedule(kind === "weights" ? 250 : 50);
}

/** Compare mode shows the numbers and panels; an experiment scenario shows its own view. */
function showMode() {
  const experiment = EXPERIMENT_IDS.includes(app.view.scenario);
  for (const id of ["numbers", "panel-bar", "panels"]) $(id).hidden = experiment;
  $("experiment").hidden = !experiment;
  document.querySelector("main.layout").classList.toggle("experiment-mode", experiment);
  return experiment;
}

async function startExperiment() {
  if (app.controller) app.controller.abort();
  clearTimeout(app.timer);
  const controller = new AbortController();
  app.controller = controller;
  const exp = EXPERIMENTS[app.view.scenario];
  $("point").textContent = exp.point;
  $("headline").textContent = "";
  document.body.dataset.status = "loading";
  updateShare();
  try {
    await runExperiment(app.view.scenario, $("experiment"), { signal: controller.signal, luts: app.luts });
  } catch (err) {
    if (err.name === "AbortError") return;
    showError(0, err.message);
    document.body.dataset.status = "error";
    return;
  }
  if (controller !== app.controller) return;
  clearErrors();
  app.runs += 1;
  document.body.dataset.runs = String(app.runs);
  document.body.dataset.status = "ready";
}

function selectScenario(id) {
  app.view = { ...viewFor(id), scale: app.view.scale, extra: app.view.extra };
  setFile("input", null, false);
  setFile("weights", null, false);
  showControls();
  if (showMode()) startExperiment();
  else schedule(0);
}

function setFile(kind, file, rerun = true) {
  app.files[kind] = file || null;
  if (!file) $(`${kind}-file`).value = "";
  if (file) app.view.scenario = null;
  // A matrix typed for the old input rarely fits new activations: start from random weights.
  if (file && kind === "input" && app.view.spec.weights.matrix) {
    app.view.spec.weights = { preset: "random", seed: 0 };
  }
  showControls();
  if (rerun) schedule(0);
}

// ---------------------------------------------------------------- share and export

function updateShare() {
  history.replaceState(null, "", toQuery(app.view));
  const names = app.files.input
    ? { input: app.files.input.name, weights: app.files.weights ? app.files.weights.name : undefined }
    : {};
  $("curl").textContent = curlCommand(location.origin, specToSend(), names);
}

async function copy(text, done) {
  try {
    await navigator.clipboard.writeText(text);
    $("copied").textContent = done;
  } catch {
    // Clipboard needs a secure context or a permission; select the text for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("copied").textContent = "Press Ctrl+C to copy.";
  }
}

async function download(format) {
  const response = await fetchCompare(format);
  if (!response.ok) {
    const payload = await response.json().catch(() => ({ detail: response.statusText }));
    showError(response.status, payload.detail);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = `onebyone.${format}`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---------------------------------------------------------------- rendering

function render() {
  const r = app.result;
  const hm = r.heatmaps;
  app.maps = {};
  app.maps.input = fromValues(hm.input);
  app.maps.pre_activation = fromValues(hm.pre_activation);
  app.maps.relu_only = relu(app.maps.input);
  app.maps.conv_relu = relu(app.maps.pre_activation);
  for (const [name, mask] of Object.entries(hm.masks)) {
    app.maps[`truth:${name}`] = fromMask(mask, hm.height, hm.width);
  }
  if (r.shapes.relu_only[0] === r.shapes.conv_relu[0]) {
    app.maps.difference = difference(app.maps.conv_relu, app.maps.relu_only);
  }
  renderStory();
  renderNumbers();
  renderPanels();
  renderMatrix();
  showControls();
}

function renderStory() {
  const s = SCENARIOS.find((x) => x.id === app.view.scenario);
  $("point").textContent = s ? s.point : "Your own settings: pick a scenario above to start again.";
  $("headline").textContent = s ? s.headline(app.result) : "";
}

function renderNumbers() {
  const r = app.result;
  const s = r.summary;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  const n = (x) => Number(x).toLocaleString("en-US");
  $("n-relu-changed").textContent = `${n(s.relu_only_changed)} of ${n(s.relu_only_values)} values`;
  $("n-conv-changed").textContent = `${n(s.conv_relu_changed)} of ${n(s.conv_relu_values)} values`;
  $("n-zeros").textContent = `${pct(mean(r.stats.relu_only.zero_fraction))} / ${pct(mean(r.stats.conv_relu.zero_fraction))}`;
  $("n-cost1").textContent = `${n(r.cost.conv1x1.parameters)} / ${n(r.cost.conv1x1.macs)}`;
  $("n-cost3").textContent = `${n(r.cost.conv3x3.parameters)} / ${n(r.cost.conv3x3.macs)}`;
  $("n-variance").textContent =
    r.layer.variance_kept === undefined ? "— (no reduction: K ≥ C)" : pct(r.layer.variance_kept);
  const t = r.timings_ms;
  $("n-device").textContent = `${r.device} / ${t.compute.toFixed(2)} ms compute, ${(t.decode + t.prepare + t.compute + t.encode).toFixed(1)} ms in all`;
}

function columns() {
  const cols = ["input", "relu_only", "conv_relu"];
  cols.push(...Object.keys(app.maps).filter((n) => n.startsWith("truth:")));
  if (app.view.extra) {
    cols.push("pre_activation");
    if (app.maps.difference) cols.push("difference");
  }
  return cols;
}

function lutFor(scale) {
  return scale.diverging ? app.luts.diverging : app.luts.sequential;
}

function drawBar(canvas, scale) {
  const lut = lutFor(scale);
  canvas.width = 256;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(256, 1);
  for (let i = 0; i < 256; i++) img.data.set([lut[3 * i], lut[3 * i + 1], lut[3 * i + 2], 255], 4 * i);
  ctx.putImageData(img, 0, 0);
}

function drawCell(canvas) {
  const hm = app.maps[canvas.dataset.col];
  const c = Number(canvas.dataset.ch);
  const scale = scaleFor(hm.lo, hm.hi, app.view.scale, c);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(hm.width, hm.height);
  paintChannel(img.data, hm, c, scale, lutFor(scale));
  ctx.putImageData(img, 0, 0);
  canvas.dataset.drawn = "1";
}

function renderPanels() {
  const panels = $("panels");
  if (app.observer) app.observer.disconnect();
  const cols = columns();
  const { height, width, stride } = app.result.heatmaps;
  const rows = Math.max(...cols.map((c) => app.maps[c].channels));
  // Cells fill the width for a few channels and stay compact when there are many.
  const avail = panels.clientWidth - 90 - 10 * cols.length;
  const cap = rows > 8 ? 100 : 150;
  const cell = Math.max(64, Math.min(cap, Math.floor(avail / cols.length)));
  panels.style.setProperty("--cols", String(cols.length));
  panels.style.setProperty("--cell", `${cell}px`);
  panels.style.setProperty("--aspect", `${width} / ${height}`);
  const frag = document.createDocumentFragment();
  const head = document.createElement("div");
  head.className = "prow head";
  head.append(document.createElement("span"));
  for (const col of cols) {
    const hm = app.maps[col];
    const box = document.createElement("div");
    box.className = "colhead";
    const shared = scaleFor(hm.lo, hm.hi, "shared", 0);
    const bar = document.createElement("canvas");
    bar.className = "bar";
    drawBar(bar, shared);
    const ticks = document.createElement("div");
    ticks.className = "ticks";
    const labels = app.view.scale === "shared" ? [fmt(shared.min), shared.diverging ? "0" : "", fmt(shared.max)] : ["per-channel", "", "scales"];
    for (const t of labels) {
      const s = document.createElement("span");
      s.textContent = t;
      ticks.append(s);
    }
    const title = document.createElement("strong");
    title.textContent = `${COLUMNS[col]} · ${hm.channels} ch`;
    box.append(title, bar, ticks);
    box.dataset.col = col;
    head.append(box);
  }
  frag.append(head);
  const names = app.result.channel_names;
  for (let i = 0; i < rows; i++) {
    const row = document.createElement("div");
    row.className = "prow";
    const label = document.createElement("span");
    label.className = "rowlabel";
    label.textContent = rows <= 16 && names[i] ? `${i} ${names[i]}` : String(i);
    label.title = names[i] || `channel ${i}`;
    row.append(label);
    for (const col of cols) {
      if (i >= app.maps[col].channels) {
        row.append(document.createElement("span"));
        continue;
      }
      const canvas = document.createElement("canvas");
      canvas.className = "cell";
      canvas.width = width;
      canvas.height = height;
      canvas.dataset.col = col;
      canvas.dataset.ch = String(i);
      canvas.tabIndex = 0;
      const nm = col === "input" || col === "relu_only" ? names[i] || `channel ${i}` : `output ${i}`;
      canvas.setAttribute("aria-label", `${COLUMNS[col]}, ${nm}`);
      row.append(canvas);
    }
    frag.append(row);
  }
  panels.replaceChildren(frag);
  $("scale-note").textContent =
    (app.view.scale === "shared"
      ? "One colour scale per panel: colours compare across channels."
      : "Per-channel scales: each map uses its full colour range, which hides differences in magnitude.") +
    (stride > 1 ? ` Maps subsampled by ${stride} for display; the .npz has every value.` : "");
  // Draw what is on screen now; the rest as it scrolls into view.
  const viewport = window.innerHeight;
  const observer = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          drawCell(e.target);
          observer.unobserve(e.target);
        }
      }
    },
    { rootMargin: "400px 0px" },
  );
  for (const canvas of panels.querySelectorAll("canvas.cell")) {
    if (canvas.getBoundingClientRect().top < viewport) drawCell(canvas);
    else observer.observe(canvas);
  }
  app.observer = observer;
  performance.mark("onebyone:drawn");
  const m = performance.measure("onebyone:render", "onebyone:response", "onebyone:drawn");
  document.body.dataset.renderMs = m.duration.toFixed(2);
}

function renderMatrix() {
  const r = app.result;
  const [k, c] = r.shapes.weight;
  const canvas = $("matrix-canvas");
  const w = fromValues(r.heatmaps.weight);
  const scale = scaleFor(w.lo, w.hi, "shared", 0);
  canvas.width = c;
  canvas.height = k;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(c, k);
  paintChannel(img.data, w, 0, scale, lutFor(scale));
  ctx.putImageData(img, 0, 0);
  canvas.style.aspectRatio = `${c} / ${k}`;
  canvas.style.width = `${Math.min(300, Math.max(c, k) * 24, c * Math.max(2, Math.floor(160 / k)))}px`;
  $("matrix-note").textContent = `${k} × ${c}, ${fmt(scale.min)} … ${fmt(scale.max)}`;
  const grid = $("matrix-grid");
  const weights = r.layer.weight;
  if (!weights || k > SMALL_LAYER || c > SMALL_LAYER || app.files.weights) {
    grid.replaceChildren();
    grid.hidden = true;
    return;
  }
  grid.hidden = false;
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (let j = 0; j < c; j++) {
    const th = document.createElement("th");
    th.textContent = `c${j}`;
    head.append(th);
  }
  const bh = document.createElement("th");
  bh.textContent = "bias";
  head.append(bh);
  const rows = [head];
  for (let i = 0; i < k; i++) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = `k${i}`;
    tr.append(th);
    for (let j = 0; j <= c; j++) {
      const td = document.createElement("td");
      const input = document.createElement("input");
      input.type = "number";
      input.step = "0.1";
      input.value = String(j < c ? weights[i][j] : r.layer.bias[i]);
      input.dataset.k = String(i);
      input.dataset.c = j < c ? String(j) : "bias";
      input.setAttribute("aria-label", j < c ? `weight of channel ${j} in filter ${i}` : `bias of filter ${i}`);
      input.addEventListener("input", onWeightEdit);
      td.append(input);
      tr.append(td);
    }
    rows.push(tr);
  }
  grid.replaceChildren(...rows);
}

function onWeightEdit() {
  const r = app.result;
  const [k, c] = r.shapes.weight;
  const matrix = Array.from({ length: k }, () => new Array(c).fill(0));
  const bias = new Array(k).fill(0);
  for (const input of $("matrix-grid").querySelectorAll("input")) {
    const v = parseFloat(input.value);
    if (!Number.isFinite(v)) return; // half-typed number: wait for the rest
    const i = Number(input.dataset.k);
    if (input.dataset.c === "bias") bias[i] = v;
    else matrix[i][Number(input.dataset.c)] = v;
  }
  app.view.spec.weights = { matrix, bias };
  $("preset").value = "matrix";
  schedule(250);
}

// ---------------------------------------------------------------- hover, keyboard, zoom

function readoutAt(row, y, x) {
  const r = app.result;
  const { stride } = r.heatmaps;
  const values = { y: y * stride, x: x * stride, row };
  const parts = [`pixel (${y * stride}, ${x * stride}), row ${row}:`];
  for (const col of ["input", "relu_only", "pre_activation", "conv_relu"]) {
    const hm = app.maps[col];
    if (row >= hm.channels) continue;
    const v = valueAt(hm, row, y, x);
    values[col] = v;
    parts.push(`${COLUMNS[col]} ${fmt(v)}`);
  }
  const weights = r.layer.weight;
  if (weights && row < weights.length) {
    const terms = weights[row]
      .map((w, j) => [w, j])
      .filter(([w]) => w !== 0)
      .sort((a, b) => Math.abs(b[0]) - Math.abs(a[0]));
    const shown = terms.slice(0, 6).map(([w, j]) => `${w >= 0 ? "+" : "−"}${fmt(Math.abs(w))}·c${j}`);
    parts.push(`output ${row} = relu(${shown.join(" ")}${terms.length > 6 ? " …" : ""} ${r.layer.bias[row] >= 0 ? "+" : "−"} ${fmt(Math.abs(r.layer.bias[row]))})`);
  }
  const out = $("readout");
  out.textContent = parts.join(" · ");
  out.dataset.values = JSON.stringify(values);
  markRow(row, y, x);
}

function markRow(row, y, x) {
  const { height, width } = app.result.heatmaps;
  for (const m of document.querySelectorAll(".marker")) m.remove();
  for (const canvas of document.querySelectorAll(`canvas.cell[data-ch="${row}"]`)) {
    const marker = document.createElement("span");
    marker.className = "marker";
    const w = canvas.clientWidth / width;
    const h = canvas.clientHeight / height;
    marker.style.left = `${canvas.offsetLeft + x * w}px`;
    marker.style.top = `${canvas.offsetTop + y * h}px`;
    marker.style.width = `${Math.max(w, 3)}px`;
    marker.style.height = `${Math.max(h, 3)}px`;
    canvas.parentElement.append(marker);
  }
}

function pixelOf(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * canvas.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * canvas.height);
  return [Math.min(Math.max(y, 0), canvas.height - 1), Math.min(Math.max(x, 0), canvas.width - 1)];
}

function onHover(event) {
  const canvas = event.target;
  if (!(canvas instanceof HTMLCanvasElement) || !canvas.classList.contains("cell")) return;
  const [y, x] = pixelOf(canvas, event);
  canvas.dataset.cursor = `${y},${x}`;
  readoutAt(Number(canvas.dataset.ch), y, x);
}

function showCursor(canvas) {
  const [y, x] = (canvas.dataset.cursor || `${canvas.height >> 1},${canvas.width >> 1}`).split(",").map(Number);
  canvas.dataset.cursor = `${y},${x}`;
  readoutAt(Number(canvas.dataset.ch), y, x);
}

function onCellKey(event) {
  const canvas = event.target;
  if (!canvas.classList || !canvas.classList.contains("cell")) return;
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    zoom(canvas);
  } else if (moves[event.key]) {
    event.preventDefault();
    const [y, x] = canvas.dataset.cursor.split(",").map(Number);
    const [dy, dx] = moves[event.key];
    const ny = Math.min(Math.max(y + dy, 0), canvas.height - 1);
    const nx = Math.min(Math.max(x + dx, 0), canvas.width - 1);
    canvas.dataset.cursor = `${ny},${nx}`;
    readoutAt(Number(canvas.dataset.ch), ny, nx);
  }
}

function onCellClick(event) {
  const canvas = event.target;
  if (canvas instanceof HTMLCanvasElement && canvas.classList.contains("cell")) zoom(canvas);
}

function zoom(canvas) {
  const col = canvas.dataset.col;
  const c = Number(canvas.dataset.ch);
  const hm = app.maps[col];
  if (!canvas.dataset.drawn) drawCell(canvas);
  const big = $("zoom-canvas");
  big.width = canvas.width;
  big.height = canvas.height;
  big.getContext("2d").drawImage(canvas, 0, 0);
  big.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
  const scale = scaleFor(hm.lo, hm.hi, app.view.scale, c);
  $("zoom-title").textContent = `${COLUMNS[col]} · channel ${c}`;
  $("zoom-range").textContent = `values ${fmt(hm.lo[c])} … ${fmt(hm.hi[c])}; colour scale ${fmt(scale.min)} … ${fmt(scale.max)} (${scale.diverging ? "diverging, 0 at the centre" : "sequential from 0"})`;
  $("zoom").showModal();
}

// ---------------------------------------------------------------- start

async function start() {
  const [maps, presets, health] = await Promise.all(
    ["/api/v1/colormaps", "/api/v1/catalogue", "/healthz"].map((u) => fetch(u).then((r) => r.json())),
  );
  app.luts.sequential = decodeBase64(maps.sequential.rgb);
  app.luts.diverging = decodeBase64(maps.diverging.rgb);
  app.presets = presets;
  app.devices = health.devices;
  app.view = fromQuery(location.search);
  setupControls();
  showControls();
  if (showMode()) await startExperiment();
  else await run();
}

start();
