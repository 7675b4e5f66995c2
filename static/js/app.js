// The page: one state object; controls edit its request, the latest request wins, and every
// word, number and picture is computed from the response on screen. Pixel maths lives in
// heatmap.js, sentences in story.js, pure state helpers in state.js.

import { decodeBase64, difference, fmt, fromMask, fromValues, greyLut, paintChannel, relu, scaleFor } from "./heatmap.js";
import {
  MATRIX,
  buildControls,
  clearErrors,
  el,
  hideGrid,
  parseNumber,
  rememberDefaults,
  showError,
  showGrid,
  showParams,
  showRequest,
} from "./controls.js";
import { ApiError, VIEWS } from "./experiments.js";
import * as panels from "./panels.js";
import { COMPARE, adaptMatrix, curlCommand, fromQuery, networkWeights, premiseHolds, requestToSend, scenarioById, toQuery } from "./state.js";
import { bnName, describe, headline, layer, layerNote, layerOption, listingText, networkResult, num, ownLayer, pct, truthLabel } from "./story.js";

const $ = (id) => document.getElementById(id);
const GRID_MAX = 16; // weight grids up to 16 × 16 are editable cell by cell

/** Everything the page knows. `request` is what the controls say now; `shown` is on screen. */
const state = {
  catalogue: null,
  luts: null,
  available: [],
  scenario: "",
  request: {},
  view: { scale: "shared", extra: false },
  files: { input: null, weights: null },
  seq: 0,
  controller: null,
  timer: 0,
  status: "loading",
  error: null,
  /**
   * "Your own network": whether it is in use (its layer, not the preset, is sent), the weights
   * file's listing of 1×1 layers (or one being read), the layer picked, its batch norm and ε.
   */
  network: freshNetwork(),
  /** @type {null|{scenario: string, endpoint: string, request: object, files: object, names: object, own: object|null, response: object}} */
  shown: null,
  matrixNote: "",
  /** W as it was before C edits padded or cut it, so typing "16" over "4" loses no column on the way. */
  matrixBase: null,
  /** Whether a weight cell was edited (on a phone, a link to the result appears under the grid). */
  editedCell: false,
  /** Which drop zone brought the input file: "drop" (Your own activations) or "net" (Your own network). */
  inputFrom: "drop",
  /** Values typed that cannot be sent ("abc", 3.5 for an integer): field → {control, detail}. */
  invalid: new Map(),
};

function freshNetwork() {
  return { on: false, reading: null, seq: 0, controller: null, listing: null, layer: null, batchnorm: null, eps: undefined, note: "" };
}

const current = () => scenarioById(state.catalogue, state.scenario);
/** The weights spec "Your own network" sends, or null when it is not in use. */
const own = () => (state.network.on ? networkWeights(state.network, state.catalogue.checkpoint) : null);
const endpoint = () => current().endpoint;
const fileNames = (files) => ({ input: files.input ? files.input.name : undefined, weights: files.weights ? files.weights.name : undefined });

// ---------------------------------------------------------------- requests

function body(request, files, mine) {
  const spec = requestToSend(request, files, mine);
  if (!files.input && !files.weights) {
    return { body: JSON.stringify(spec), headers: { "Content-Type": "application/json" }, spec };
  }
  const form = new FormData();
  if (files.input) form.append("input", files.input);
  if (files.weights) form.append("weights", files.weights);
  form.append("spec", JSON.stringify(spec));
  return { body: form, headers: {}, spec };
}

async function post(path, req, signal) {
  const r = await fetch(path, { method: "POST", body: req.body, headers: req.headers, signal });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({ detail: r.statusText })));
  return r;
}

function schedule(delay) {
  clearTimeout(state.timer);
  state.timer = setTimeout(run, delay);
}

/** Send the current request; a newer one aborts it, and a stale answer is ignored. */
async function run() {
  clearTimeout(state.timer);
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const seq = ++state.seq;
  const snap = {
    scenario: state.scenario,
    endpoint: endpoint(),
    request: structuredClone(state.request),
    files: { ...state.files },
    names: fileNames(state.files),
    own: own(),
  };
  const hold = holding();
  if (hold) {
    setStatus(hold);
    return;
  }
  setStatus("pending");
  try {
    const req = body(snap.request, snap.files, snap.own);
    const view = VIEWS[snap.endpoint];
    let response;
    if (view && view.run) {
      // A streamed experiment draws its progress as it comes: show its view now.
      $("compare-view").hidden = true;
      $("experiment").hidden = false;
      response = await view.run($("experiment"), req, { signal: controller.signal, endpoint: snap.endpoint, request: snap.request, luts: state.luts });
    } else {
      const query = snap.endpoint === COMPARE ? "?format=json" : "";
      response = await (await post(snap.endpoint + query, req, controller.signal)).json();
    }
    if (seq !== state.seq) return;
    performance.mark("onebyone:response");
    state.shown = { ...snap, response };
    state.error = null;
    clearErrors();
    render();
    setStatus("ready");
  } catch (err) {
    if (seq !== state.seq || err.name === "AbortError") return; // a newer request owns the page
    state.error = err instanceof ApiError ? err : { status: 0, detail: `The server could not be reached: ${err.message}`, field: null, code: null };
    renderError();
    setStatus("error");
  }
}

/**
 * A control holds a value the page cannot send: nothing is sent, the message sits next to
 * the control, and what is on screen is marked as not updated, as for a refusal.
 * @param {string} field e.g. "input.height", "weights.matrix.0.1"
 * @param {HTMLElement} control
 * @param {string} detail
 */
function markInvalid(field, control, detail) {
  state.invalid.set(field, { control, detail });
  edited(0);
}

/** A control's value is fine again. */
function markValid(field, control) {
  state.invalid.delete(field);
  if (control) control.removeAttribute("aria-invalid");
}

/** Show the latest value that cannot be sent, and cancel any run of the settings before it. */
function showInvalid() {
  for (const [field, v] of state.invalid) if (!v.control.isConnected) state.invalid.delete(field);
  const last = [...state.invalid].pop();
  if (!last) return false;
  const [field, { control, detail }] = last;
  clearTimeout(state.timer);
  if (state.controller) state.controller.abort();
  state.seq++; // an answer for the settings before this edit must not cover it
  state.error = { status: 0, detail, field, code: "not_sent" };
  renderError();
  for (const v of state.invalid.values()) v.control.setAttribute("aria-invalid", "true");
  control.setAttribute("aria-invalid", "true");
  setStatus("error");
  return true;
}

/** Why the current settings cannot be sent yet: a checkpoint being read, or no activations for its layer. */
function holding() {
  const net = state.network;
  if (!net.on || endpoint() !== COMPARE) return "";
  if (net.reading) return "pending";
  return state.files.weights && !state.files.input ? "waiting" : "";
}

function setStatus(status) {
  state.status = status;
  document.body.dataset.status = status === "pending" ? "loading" : status;
  $("results").dataset.state = status;
  const words = {
    pending: state.network.reading ? `Reading the layers of ${state.network.reading}…` : "Computing your new settings…",
    waiting: "Waiting for the activations that feed your layer (step 2 under “Your own network”). What you see is from the previous settings.",
    error:
      state.error && state.error.code === "not_sent"
        ? "Not updated: a value you typed cannot be sent (the message is next to the control). What you see is from the previous settings."
        : "Not updated: the server refused the current settings (the message is next to the control). What you see is from the previous settings.",
    ready: "",
  };
  $("status").textContent = words[status];
  $("see-result").textContent = status === "ready" ? resultLink() : status === "error" ? "Not updated: see why ↓" : "Computing… the result is below ↓";
  if (status === "ready") {
    document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
  }
}

/** The see-result link's words: the main number now on screen. */
function resultLink() {
  const r = state.shown && state.shown.endpoint === COMPARE ? state.shown.response : null;
  if (!r) return "See the result ↓";
  const t = Object.values(r.truth || {})[0];
  const what = t
    ? `1×1 conv + ReLU ${pct(t.conv_relu.agreement)}, ReLU-only ${pct(t.relu_only.agreement)} agreement`
    : `the ReLU after the 1×1 conv changed ${pct(r.summary.conv_relu_changed / r.summary.conv_relu_values)} of values`;
  return `Updated: ${what}. See the result ↓`;
}

// ---------------------------------------------------------------- edits

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  const last = keys[keys.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
}

/** A parameter input changed: parse it, and send unless it is half typed. */
function onParam(path, text, type) {
  const input = document.querySelector(`#controls input[data-path="${CSS.escape(path)}"]`);
  const label = (input && input.labels && input.labels[0] ? input.labels[0].textContent : path).replace(/ \(.*\)$/, "");
  // A number field holding text it cannot parse ("3e", "-") reports "" and badInput.
  const bad = [...document.querySelectorAll(`#controls input[data-path="${CSS.escape(path)}"]`)].some((i) => i.validity && i.validity.badInput);
  let value;
  if (type === "ints") {
    const parts = text.split(",");
    if (parts.every((p) => p.trim() === "") && !bad) value = undefined;
    else {
      value = parts.map((p) => parseNumber(p, "int"));
      if (bad || value.some((v) => v === null)) {
        markInvalid(path, input, `${path.split(".").pop()}: two whole numbers [y, x], or both empty for the centre`);
        return;
      }
    }
  } else if (text.trim() === "" && !bad) {
    value = undefined; // the server's default
  } else {
    value = parseNumber(text, type === "int" ? "int" : "float");
    if (value === null) {
      // Never round what was typed: 3.5 for H is refused here, not run as 3.
      const whole = type === "int" && parseNumber(text, "float") !== null;
      markInvalid(path, input, `${label}: ${whole ? `${text.trim()} is not a whole number` : "not a number"}; nothing was sent.`);
      return;
    }
  }
  markValid(path, input);
  setPath(state.request, path, value);
  if (path === "input.channels" && state.request.weights && state.request.weights.matrix && Number.isInteger(value)) {
    fitMatrixTo(value);
  }
  edited(300);
}

/** W follows C: new columns are 0, removed ones are dropped, and the page says so. */
function fitMatrixTo(c) {
  if (c < 1 || c > GRID_MAX * 64) return;
  // From W as the learner left it: typing 64 passes through 6, and 16 through 1.
  const base = (state.matrixBase ??= structuredClone(state.request.weights));
  const before = base.matrix[0].length;
  state.request.weights = { ...adaptMatrix(base, c), bias: structuredClone(base.bias) };
  const span = (a, b) => (a === b ? `column ${a} is` : `columns ${a}…${b} are`);
  state.matrixNote =
    c === before
      ? ""
      : c > before
        ? `W now has C = ${c} columns to match the input: ${span(before, c - 1)} 0.`
        : `W now has C = ${c} columns to match the input: ${span(c, before - 1).replace(/ (is|are)$/, "")} ${c === before - 1 ? "was" : "were"} dropped.`;
}

function onGenerator() {
  const name = $("generator").value;
  const g = state.catalogue.generators[name];
  const old = state.request.input || {};
  const input = { generator: name };
  for (const key of ["height", "width", "channels", "seed"]) if (old[key] !== undefined) input[key] = old[key];
  if (g.fixed_channels) input.channels = g.fixed_channels;
  else if ((input.channels ?? g.params.channels.default) < g.min_channels) input.channels = g.min_channels;
  state.request.input = input;
  showInputParams();
  if (state.request.weights && state.request.weights.matrix && input.channels) fitMatrixTo(input.channels);
  edited(0);
}

function roundedW() {
  const r = state.shown && state.shown.endpoint === COMPARE ? state.shown.response : null;
  if (!r) return null;
  const w = fromValues(r.heatmaps.weight);
  const b = fromValues(r.heatmaps.bias);
  const [k, c] = r.shapes.weight;
  const round = (v) => Number(v.toPrecision(4));
  return {
    matrix: Array.from({ length: k }, (_, i) => Array.from(w.values.subarray(i * c, (i + 1) * c), round)),
    bias: Array.from(b.values, round),
  };
}

function onPreset() {
  const name = $("preset").value;
  if (name === MATRIX) {
    const w = roundedW();
    if (w) {
      state.request.weights = w;
      state.matrixNote = "The weights on screen, to 4 significant digits: edit any of them.";
    }
  } else {
    state.request.weights = { preset: name };
    state.matrixNote = "";
  }
  state.matrixBase = null;
  showWeightParams();
  edited(0);
}

/** A weight cell changed: the layer becomes an explicit matrix (the one on screen) with this edit. */
function onCell(k, c, text) {
  const input = $(`w-${k}-${c}`);
  const v = parseNumber(text, "float");
  const field = c === "bias" ? `weights.bias.${k}` : `weights.matrix.${k}.${c}`;
  if (v === null) {
    const rows = $("matrix-grid").querySelectorAll(".wrow").length;
    const name = `${rows > 1 ? `out ${k} ` : ""}${c === "bias" ? "b" : `c${c}`}`;
    markInvalid(field, input, `${name}: ${text.trim() === "" ? "empty, type a number (0 for none)" : "not a number"}; nothing was sent.`);
    return;
  }
  markValid(field, input);
  state.matrixBase = null;
  state.editedCell = true;
  if (!state.request.weights.matrix) {
    const w = roundedW();
    if (!w) return;
    state.request.weights = w;
    state.matrixNote = "Now an explicit matrix: the preset's weights to 4 significant digits, with your edits.";
    $("preset").value = MATRIX;
    showWeightParams();
  }
  const wts = state.request.weights;
  if (!Array.isArray(wts.bias)) wts.bias = wts.matrix.map(() => Number(wts.bias || 0));
  if (c === "bias") wts.bias[k] = v;
  else wts.matrix[k][c] = v;
  edited(300);
}

/** After any edit: everything that follows the request at once, then the run. */
function edited(delay) {
  setStatus("pending"); // what is on screen is now older than the controls
  syncControls();
  showScenarios();
  updateShare();
  if (showInvalid()) return;
  if (state.error && state.error.code === "not_sent") {
    // The value that could not be sent is fixed: its message goes.
    state.error = null;
    clearErrors();
  }
  schedule(delay);
}

function selectScenario(id) {
  const s = scenarioById(state.catalogue, id);
  state.scenario = s.id;
  state.request = structuredClone(s.request);
  state.files = { input: null, weights: null };
  leaveNetwork();
  for (const chooser of ["input-file", "weights-file", "net-file", "net-acts-file"]) $(chooser).value = "";
  state.matrixNote = "";
  state.matrixBase = null;
  state.invalid.clear();
  state.editedCell = false;
  panels.resetCursor();
  syncControls(true);
  edited(0);
}

function setFile(kind, file) {
  state.files[kind] = file || null;
  if (!file) $(`${kind}-file`).value = "";
  if (!file && kind === "input") $("net-acts-file").value = "";
  if (kind === "weights") {
    // A weights file is read for its 1×1 layers first, whichever control brought it.
    if (file) {
      state.network.on = true;
      listLayers(file);
      return;
    }
    leaveNetwork();
  }
  if (!state.files.input && !state.files.weights) state.network.on = false;
  edited(0);
}

/** Back to the preset: no weights file, the network's choices forgotten (an input file stays). */
function leaveNetwork() {
  const net = state.network;
  if (net.controller) net.controller.abort();
  state.network = { ...freshNetwork(), seq: net.seq + 1 };
  state.files.weights = null;
  $("weights-file").value = "";
  $("net-file").value = "";
}

/** Ask the server for the weights file's 1×1 layers; the latest file wins. */
async function listLayers(file) {
  const net = state.network;
  if (net.controller) net.controller.abort();
  const controller = new AbortController();
  const seq = ++net.seq;
  Object.assign(net, { controller, reading: file.name, listing: null, note: "" });
  edited(0);
  const form = new FormData();
  form.append("weights", file);
  try {
    const r = await post(state.catalogue.checkpoint.layers_endpoint, { body: form, headers: {} }, controller.signal);
    const listing = await r.json();
    if (seq !== state.network.seq) return;
    net.reading = null;
    if (state.error && state.error.field && state.error.field.startsWith("weights")) {
      // The refusal was about the weights file this one replaces.
      state.error = null;
      clearErrors();
    }
    if (listing.input) {
      // A file from `onebyone capture`: activations and layer in one, so it is the input.
      const replaced = state.files.input ? ` in place of ${state.files.input.name}` : "";
      state.files.weights = null;
      state.files.input = file;
      state.inputFrom = "net";
      net.note = `${file.name} came from onebyone capture: it holds the activations (${listing.input.join("×")}) and the layer, so it is the input${replaced}, and the layer comes with it.`;
    } else {
      net.listing = listing;
      if (!listing.layers.some((l) => l.name === net.layer)) net.layer = listing.layers[0].name;
    }
    edited(0);
  } catch (err) {
    if (seq !== state.network.seq || err.name === "AbortError") return;
    net.reading = null;
    clearTimeout(state.timer);
    if (state.controller) state.controller.abort();
    state.seq++; // a compare in flight must not cover this refusal
    const e = err instanceof ApiError ? err : { status: 0, detail: `The server could not be reached: ${err.message}`, field: null, code: null };
    // Only the checkpoint went with this request: an error without a field is about it.
    state.error = { status: e.status, detail: e.detail, field: e.field || "weights", code: e.code };
    syncControls();
    renderError();
    setStatus("error");
  }
}

function onLayer() {
  state.network.layer = $("net-layer").value;
  edited(0);
}

function onBatchnorm(value) {
  state.network.batchnorm = value;
  edited(0);
}

function onEps() {
  const input = $("net-eps");
  const text = input.value;
  const v = text.trim() === "" ? undefined : parseNumber(text, "float");
  if (v === null) {
    input.setAttribute("aria-invalid", "true");
    return;
  }
  input.removeAttribute("aria-invalid");
  state.network.eps = v;
  edited(300);
}

// ---------------------------------------------------------------- controls follow the state

function showInputParams() {
  const input = state.request.input || {};
  const g = state.catalogue.generators[input.generator];
  if (!g) return;
  const fixed = g.fixed_channels ? { channels: g.fixed_channels } : {};
  showParams($("input-params"), "input", g.params, onParam, { hints: true, fixed });
  rememberDefaults($("input-params"), g.params);
}

function showWeightParams() {
  const w = state.request.weights || {};
  const p = w.matrix ? null : state.catalogue.weight_presets[w.preset];
  showParams($("preset-params"), "weights", p ? p.params : {}, onParam, { hints: false });
  if (p) rememberDefaults($("preset-params"), p.params);
}

function showExperimentParams() {
  const params = (state.catalogue.experiments || {})[endpoint()] || {};
  showParams($("experiment-params"), "", params, onParam, { hints: true });
  rememberDefaults($("experiment-params"), params);
}

/** Put the state into the controls; `all` after a scenario change rebuilds the parameter sets. */
function syncControls(all = false) {
  const compare = endpoint() === COMPARE;
  const req = state.request;
  const hasInput = Boolean(state.files.input);
  const hasWeights = Boolean(state.files.weights);
  if (req.input && document.activeElement !== $("generator")) $("generator").value = req.input.generator;
  if (all || !$("input-params").dataset.key) showInputParams();
  $("input-params").hidden = hasInput;
  $("generator-field").hidden = hasInput;
  $("file-options").hidden = !hasInput;
  $("clear-input").hidden = !hasInput;
  $("drop-label").textContent = !hasInput
    ? "Your own activations: choose or drop a file…"
    : state.inputFrom === "net"
      ? `Your file: ${state.files.input.name}, chosen under “Your own network” (choose another…)`
      : `Your file: ${state.files.input.name} (choose another…)`;
  if (req.input) {
    $("layout").value = req.input.layout || state.catalogue.layouts.values[0].id;
    $("filterbank").checked = req.input.features === "filterbank";
  }
  $("weights-box").hidden = !compare;
  $("network-box").hidden = !compare;
  $("experiment-box").hidden = compare;
  if (compare) {
    const w = req.weights || {};
    if (document.activeElement !== $("preset")) {
      const fromServer = state.shown && state.shown.response.weights_source;
      const served = fromServer && fromServer.startsWith("preset:") ? fromServer.slice(7) : "";
      $("preset").value = w.matrix ? MATRIX : w.preset || served;
    }
    if (all || !$("preset-params").dataset.key || (w.matrix && $("preset-params").childElementCount)) showWeightParams();
    $("preset").disabled = state.network.on;
    $("preset-field").hidden = state.network.on;
    $("preset-params").hidden = state.network.on;
    $("clear-weights").hidden = !hasWeights;
    $("weights-hint").hidden = state.network.on; // the network section says what the file may be
    $("weights-label").textContent = hasWeights ? `Your weights file: ${state.files.weights.name} (choose another…)` : "Your own 1×1 layer…";
    showMatrix();
    syncNetwork();
  } else if (all || !$("experiment-params").dataset.key) {
    showExperimentParams();
  }
  $("device").value = req.device || state.catalogue.devices.default;
  for (const radio of document.querySelectorAll("input[name=scale]")) radio.checked = radio.value === state.view.scale;
  $("extra").checked = state.view.extra;
  $("extra-field").hidden = !compare;
  $("scale-field").hidden = !compare;
  $("curl-format-field").hidden = !compare;
  $("download-png").hidden = !compare;
  $("download-npz").hidden = !compare;
  $("download-json").hidden = compare;
  showRequest(req);
}

/** The network section follows its state: files, the listing, the layer, batch norm and ε. */
function syncNetwork() {
  const net = state.network;
  const { input, weights } = state.files;
  $("weights-errors").hidden = net.on;
  $("net-drop-label").textContent = weights ? `Checkpoint: ${weights.name} (choose another…)` : "Choose or drop a checkpoint, or a file from onebyone capture…";
  // Each drop zone shows its own file; the network's shows one from the other zone only while the network is in use, and says so.
  $("net-acts-label").textContent =
    input && state.inputFrom === "net"
      ? `Activations: ${input.name} (choose another…)`
      : input && net.on
        ? `Activations: ${input.name}, the file under “Your own activations” above (choose another…)`
        : "Choose or drop the activations…";
  $("net-listing").textContent = net.reading ? `Reading the layers of ${net.reading}…` : net.listing ? listingText(net.listing, weights.name) : net.note;
  const layers = net.listing ? net.listing.layers : [];
  const entry = layers.find((l) => l.name === net.layer);
  // A one-layer file has nothing to pick: the listing's sentence says what it holds.
  $("net-layer-box").hidden = !entry || !entry.name;
  if (entry && entry.name) {
    const select = $("net-layer");
    const key = JSON.stringify(layers.map((l) => layerOption(l)));
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      select.replaceChildren(...layers.map((l) => el("option", { value: l.name, textContent: layerOption(l) })));
    }
    if (document.activeElement !== select) select.value = net.layer;
    $("net-layer-note").textContent = layerNote(entry);
    const bn = entry.batchnorm;
    $("net-bn-box").hidden = !bn;
    $("net-eps-field").hidden = !bn;
    if (bn) {
      $("net-bn-legend").textContent = `The batch norm after it, ‘${bn.name}’`;
      const choice = net.batchnorm || state.catalogue.checkpoint.batchnorm[0].id;
      for (const radio of document.querySelectorAll("input[name=net-bn]")) radio.checked = radio.value === choice;
      const eps = $("net-eps");
      if (document.activeElement !== eps) eps.value = String(net.eps ?? state.catalogue.checkpoint.eps.default);
    }
  }
  const s = state.shown;
  $("net-result").textContent = net.on && s && s.own && s.endpoint === COMPARE ? networkResult(s.response, s.names) : "";
  $("net-leave").hidden = !net.on;
}

function showMatrix() {
  const w = state.request.weights || {};
  const r = state.shown && state.shown.endpoint === COMPARE ? state.shown.response : null;
  if (state.network.on) hideGrid();
  else if (w.matrix && w.matrix.length <= GRID_MAX && w.matrix[0].length <= GRID_MAX) {
    const bias = Array.isArray(w.bias) ? w.bias : w.matrix.map(() => Number(w.bias || 0));
    showGrid(w.matrix, bias, onCell, true);
  } else if (!w.matrix && r && r.shapes.weight[0] <= GRID_MAX && r.shapes.weight[1] <= GRID_MAX) {
    const wm = fromValues(r.heatmaps.weight);
    const [k, c] = r.shapes.weight;
    const matrix = Array.from({ length: k }, (_, i) => Array.from(wm.values.subarray(i * c, (i + 1) * c)));
    showGrid(matrix, Array.from(fromValues(r.heatmaps.bias).values), onCell, false);
  } else hideGrid();
  const bn = state.network.on && r && r.layer.batchnorm;
  const [k, c] = w.matrix ? [w.matrix.length, w.matrix[0].length] : r ? r.shapes.weight : [0, 0];
  // Say why the grid is gone, and what to do instead.
  const big =
    !state.network.on && !state.files.weights && (k > GRID_MAX || c > GRID_MAX)
      ? `No grid to edit: W is ${k} × ${c}, and the grid edits W cell by cell only up to ${GRID_MAX} × ${GRID_MAX}. ` +
        "Pick a preset above, upload a weights file (“Your own 1×1 layer…”), or send the matrix through the API (the curl command under “Share and export”)."
      : "";
  $("matrix-note").textContent = bn ? `W′ and b′: ${layer(r.layer.checkpoint_layer)} with ${bnName(bn.name)} folded in.` : [state.matrixNote, big].filter(Boolean).join(" ");
  // On a phone the result is far below the grid: after an edit there, a link to it.
  $("see-result").hidden = !(state.editedCell && window.matchMedia("(max-width: 700px)").matches);
}

function showScenarios() {
  const holds = premiseHolds(current(), state.request, state.files, state.catalogue);
  for (const b of document.querySelectorAll("button.scenario[data-scenario]")) {
    const on = b.dataset.scenario === state.scenario;
    b.setAttribute("aria-pressed", String(on));
    b.classList.toggle("changed", on && !holds);
    b.querySelector(".badge").hidden = !(on && !holds);
  }
  $("reset").hidden = holds;
  $("reset").textContent = `Back to “${current().title}” as it was`;
}

// ---------------------------------------------------------------- rendering

function maps(r) {
  const hm = r.heatmaps;
  const m = { input: fromValues(hm.input), pre_activation: fromValues(hm.pre_activation) };
  m.relu_only = relu(m.input);
  m.conv_relu = relu(m.pre_activation);
  for (const [name, mask] of Object.entries(hm.masks)) m[`truth:${name}`] = fromMask(mask, hm.height, hm.width);
  if (m.relu_only.channels === m.conv_relu.channels) m.delta = difference(m.conv_relu, m.relu_only);
  return m;
}

function render() {
  const s = state.shown;
  const compare = s.endpoint === COMPARE;
  $("compare-view").hidden = !compare;
  $("experiment").hidden = compare;
  renderStory();
  if (compare) {
    const r = s.response;
    const m = maps(r);
    const cols = ["input", "relu_only", "conv_relu", ...Object.keys(m).filter((k) => k.startsWith("truth:"))];
    if (state.view.extra) cols.push("pre_activation", ...(m.delta ? ["delta"] : []));
    panels.show($("panels"), {
      maps: m,
      cols,
      names: r.channel_names,
      stride: r.heatmaps.stride,
      height: r.heatmaps.height,
      width: r.heatmaps.width,
      scale: state.view.scale,
      luts: state.luts,
      weight: fromValues(r.heatmaps.weight),
      bias: fromValues(r.heatmaps.bias),
      titles: s.own ? layerTitles(r) : undefined,
    });
    renderNumbers(r);
    renderWeightPicture(r);
    syncControls();
    performance.mark("onebyone:drawn");
    const t = performance.measure("onebyone:render", "onebyone:response", "onebyone:drawn");
    document.body.dataset.renderMs = t.duration.toFixed(2);
  } else {
    VIEWS[s.endpoint].show($("experiment"), s.response, { request: s.request, luts: state.luts });
  }
}

/** A network's layer names its columns: the conv, the batch norm folded into it, the ReLU. */
function layerTitles(r) {
  const l = r.layer;
  if (!l.checkpoint_layer) return undefined;
  // The batch norm's full name is in the numbers and the story; a column title stays short.
  const bn = l.batchnorm ? " + BN" : "";
  const name = layer(l.checkpoint_layer);
  return { conv_relu: `${name}${bn} → ReLU`, pre_activation: `${name}${bn}, before the ReLU` };
}

function renderStory() {
  const s = state.shown;
  const sc = scenarioById(state.catalogue, s.scenario);
  const holds = premiseHolds(sc, s.request, s.files, state.catalogue);
  $("story-name").textContent = sc.title;
  $("story-badge").hidden = holds;
  $("point").textContent = holds ? sc.point : `Changed from the scenario. ${describe(s.request, s.endpoint, s.response, state.catalogue, s.names)}`;
  const view = VIEWS[s.endpoint];
  $("headline").textContent = view ? view.headline(s.response, s.request) : headline(sc.headline, holds, s.response);
  const picture = holds && sc.headline.includes("picture") && s.endpoint === COMPARE;
  $("story-figure").hidden = !picture;
  if (picture) {
    const r = s.response;
    const hm = fromValues(r.heatmaps.input);
    const canvas = $("story-picture");
    canvas.width = hm.width;
    canvas.height = hm.height;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(hm.width, hm.height);
    paintChannel(img.data, hm, 0, scaleFor(hm.lo, hm.hi, "channel", 0), greyLut());
    ctx.putImageData(img, 0, 0);
    $("story-caption").textContent = `Input channel 0 (${r.channel_names[0] || "channel 0"}) in grey: the picture these feature maps were computed from.`;
  }
}

function renderNumbers(r) {
  const s = r.summary;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [c, , ] = r.shapes.input;
  const k = r.shapes.weight[0];
  $("n-relu-changed").textContent = `${num(s.relu_only_changed)} of ${num(s.relu_only_values)} values`;
  $("n-conv-changed").textContent = `${num(s.conv_relu_changed)} of ${num(s.conv_relu_values)} values`;
  $("n-zeros").textContent = `${pct(mean(r.stats.relu_only.zero_fraction))} / ${pct(mean(r.stats.conv_relu.zero_fraction))}`;
  $("n-cost1-label").textContent = `1×1 layer, ${c} → ${k} channels: parameters / multiply-adds`;
  $("n-cost1").textContent = `${num(r.cost.conv1x1.parameters)} / ${num(r.cost.conv1x1.macs)}`;
  $("n-cost3").textContent = `${num(r.cost.conv3x3.parameters)} / ${num(r.cost.conv3x3.macs)}`;
  const v = r.layer.variance_kept;
  $("n-variance").textContent =
    v === null || v === undefined ? `— (K = ${k} ≥ C = ${c}: nothing is reduced)` : `${pct(v)} (what a best linear read-out from W·x recovers)`;
  const truth = Object.entries(r.truth || {});
  $("n-truth-box").hidden = !truth.length;
  if (truth.length) {
    const [name, t] = truth[0];
    $("n-truth-label").textContent = `Marking "${truthLabel(name)}": 1×1 + ReLU / ReLU-only / all-zero map`;
    $("n-truth").textContent = `${pct(t.conv_relu.agreement)} / ${pct(t.relu_only.agreement)} / ${pct(1 - t.fraction_true)}`;
  }
  const mine = state.shown.own ? ownLayer(r, state.shown.names) : "";
  $("n-layer-box").hidden = !mine;
  $("n-layer").textContent = mine;
  const t = r.timings_ms;
  $("n-device").textContent = `${r.device} / ${t.compute.toFixed(2)} ms compute, ${Object.values(t).reduce((a, b) => a + b, 0).toFixed(1)} ms in all`;
}

function renderWeightPicture(r) {
  const [k, c] = r.shapes.weight;
  const w = fromValues(r.heatmaps.weight);
  const scale = scaleFor(w.lo, w.hi, "shared", 0);
  const canvas = $("matrix-canvas");
  canvas.width = c;
  canvas.height = k;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(c, k);
  paintChannel(img.data, w, 0, scale, scale.diverging ? state.luts.diverging : state.luts.sequential);
  ctx.putImageData(img, 0, 0);
  canvas.style.aspectRatio = `${c} / ${k}`;
  canvas.style.width = `${Math.min(280, Math.max(c, k) * 24, c * Math.max(2, Math.floor(160 / k)))}px`;
  $("matrix-range").textContent = `W: ${k} × ${c}, values ${fmt(w.lo[0])} … ${fmt(w.hi[0])}`;
}

function renderError() {
  const err = state.error;
  const extra = [];
  if (err.field && err.field.startsWith("weights.matrix") && err.code === "shape_mismatch") {
    const c = state.request.input && state.request.input.channels;
    const fix = !state.files.input && c
      ? el("button", { type: "button", className: "fix", textContent: `Fit W to C = ${c} (pad with 0 or drop columns)` })
      : el("button", { type: "button", className: "fix", textContent: "Use the default weights (one filter per input channel)" });
    fix.addEventListener("click", () => {
      if (!state.files.input && c) fitMatrixTo(c);
      else {
        state.request.weights = {};
        state.matrixBase = null;
      }
      showWeightParams();
      edited(0);
    });
    extra.push(fix);
  }
  showError(err, extra);
}

// ---------------------------------------------------------------- share and export

function updateShare() {
  history.replaceState(null, "", toQuery({ scenario: state.scenario, request: state.request, view: state.view }));
  const names = fileNames(state.files);
  const spec = requestToSend(state.request, state.files, own());
  $("curl").textContent = curlCommand(location.origin, endpoint(), spec, names, $("curl-format").value || "json");
  const files = [names.input, names.weights].filter(Boolean);
  $("link-note").textContent = files.length
    ? `Files cannot travel in a link: the link keeps your settings, but whoever opens it gets the scenario's generated maps${names.weights ? " and preset weights" : ""} instead of ${files.join(" and ")}. The curl command below sends the files.`
    : "";
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
    $("copied").textContent = "Press Ctrl+C to copy the selected command.";
  }
}

/**
 * Download what is shown in a format; `picture` ({panel, channel}) asks for one channel's PNG.
 * @param {string} format
 * @param {{panel: string, channel: string}} [picture]
 */
async function download(format, picture) {
  const path = endpoint();
  const params = new URLSearchParams({ format });
  if (picture) {
    params.set("panel", picture.panel);
    params.set("channel", picture.channel);
    params.set("scale", state.view.scale);
  }
  const query = path === COMPARE ? `?${params}` : "";
  try {
    const r = await post(path + query, body(state.request, state.files, own()));
    const url = URL.createObjectURL(await r.blob());
    const name = picture ? `onebyone-${picture.panel}-${picture.channel}.png` : `onebyone.${format}`;
    const a = el("a", { href: url, download: path === COMPARE ? name : `onebyone-${path.split("/").pop()}.json` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    if (err instanceof ApiError) showError(err);
    else throw err;
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("generator").addEventListener("change", onGenerator);
  $("preset").addEventListener("change", onPreset);
  $("device").addEventListener("change", () => {
    state.request.device = $("device").value;
    edited(0);
  });
  $("layout").addEventListener("change", () => {
    state.request.input.layout = $("layout").value;
    edited(0);
  });
  $("filterbank").addEventListener("change", () => {
    state.request.input.features = $("filterbank").checked ? "filterbank" : "raw";
    edited(0);
  });
  for (const radio of document.querySelectorAll("input[name=scale]")) {
    radio.addEventListener("change", () => {
      state.view.scale = radio.value;
      updateShare();
      if (state.shown && state.shown.endpoint === COMPARE) render();
    });
  }
  $("extra").addEventListener("change", () => {
    state.view.extra = $("extra").checked;
    updateShare();
    if (state.shown && state.shown.endpoint === COMPARE) render();
  });
  for (const b of document.querySelectorAll("button.scenario[data-scenario]")) {
    b.append(el("span", { className: "badge", textContent: "changed", hidden: true }));
    b.addEventListener("click", () => selectScenario(b.dataset.scenario));
  }
  $("reset").addEventListener("click", () => selectScenario(state.scenario));
  $("input-file").addEventListener("change", () => ownInput($("input-file").files[0]));
  $("weights-file").addEventListener("change", () => setFile("weights", $("weights-file").files[0]));
  $("net-file").addEventListener("change", () => setFile("weights", $("net-file").files[0]));
  const networkInput = (file) => {
    state.network.on = true;
    state.inputFrom = "net";
    setFile("input", file);
  };
  const ownInput = (file) => {
    state.inputFrom = "drop";
    setFile("input", file);
  };
  $("net-acts-file").addEventListener("change", () => networkInput($("net-acts-file").files[0]));
  $("clear-input").addEventListener("click", () => setFile("input", null));
  $("clear-weights").addEventListener("click", () => setFile("weights", null));
  $("net-leave").addEventListener("click", () => setFile("weights", null));
  dropZone($("drop"), $("input-file"), ownInput);
  dropZone($("net-drop"), $("net-file"), (f) => setFile("weights", f));
  dropZone($("net-acts"), $("net-acts-file"), networkInput);
  $("weights-choose").addEventListener("click", () => $("weights-file").click());
  $("net-layer").addEventListener("change", onLayer);
  $("net-bn-box").addEventListener("change", (e) => onBatchnorm(e.target.value));
  $("net-eps").addEventListener("input", onEps);
  $("copy-link").addEventListener("click", () => copy(location.href, state.files.input || state.files.weights ? "Link copied, without the files (see the note)." : "Link copied."));
  $("copy-curl").addEventListener("click", () => copy($("curl").textContent, "curl command copied."));
  $("curl-format").addEventListener("change", updateShare);
  $("download-png").addEventListener("click", () => download("png"));
  $("download-npz").addEventListener("click", () => download("npz"));
  $("download-json").addEventListener("click", () => download("json"));
  $("zoom-png").addEventListener("click", () => download("png", { panel: $("zoom").dataset.col, channel: $("zoom").dataset.ch }));
  panels.setup($("panels"));
  let width = window.innerWidth;
  window.addEventListener("resize", () => {
    // Cell sizes follow the width; a height change (a phone's toolbar) needs nothing.
    if (window.innerWidth === width || !state.shown || state.shown.endpoint !== COMPARE) return;
    width = window.innerWidth;
    render();
  });
}

/** A file drop zone: click, Enter or Space opens the chooser; a dropped file goes to onFile. */
function dropZone(zone, chooser, onFile) {
  const choose = () => chooser.click();
  zone.addEventListener("click", choose);
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      choose();
    }
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) onFile(e.dataTransfer.files[0]);
  });
}

async function start() {
  const get = (u) => fetch(u).then((r) => r.json());
  const [colormaps, catalogue, health] = await Promise.all([get("/api/v1/colormaps"), get("/api/v1/catalogue"), get("/healthz")]);
  state.luts = { sequential: decodeBase64(colormaps.sequential.rgb), diverging: decodeBase64(colormaps.diverging.rgb) };
  state.catalogue = catalogue;
  state.available = health.devices;
  const restored = fromQuery(location.search, catalogue);
  Object.assign(state, restored);
  buildControls(catalogue, health.devices);
  // On a phone the settings start folded, so the maps come first.
  if (window.matchMedia("(max-width: 700px)").matches) {
    $("settings").open = false;
    $("numbers-box").open = false;
  }
  wire();
  syncControls(true);
  showScenarios();
  updateShare();
  await run();
}

start();
