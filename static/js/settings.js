// The settings follow the state: which controls show, their values, the weight grid, the
// "Your own network" section and the scenario buttons. Reads the state, never changes it;
// edits reach the controller through the handlers passed in (`on`).

import { MATRIX, TRAINED, hideGrid, rememberDefaults, showGrid, showParams, showRequest } from "./controls.js";
import { $, el } from "./dom.js";
import { weightsOf } from "./heatmap.js";
import { COMPARE, GRID_MAX, endpointOf, networkInput, networkMissing, networkWeightsLayer, premiseHolds, scenarioOf, shownReport } from "./state.js";
import {
  fileText,
  layerChoice,
  layerNote,
  layerOption,
  listingText,
  matrixText,
  networkName,
  networkResult,
  networkText,
  readingLayers,
  settingsText,
} from "./story.js";

/**
 * @typedef {{param: (path: string, text: string, type: string) => void, cell: (k: number, c: number|"bias", text: string) => void}} Handlers
 */

/**
 * The inputs of the generator in the request.
 * @param {object} state
 * @param {Handlers} on
 */
export function showInputParams(state, on) {
  const input = state.request.input || {};
  const g = state.catalogue.generators[input.generator];
  if (!g) return;
  const fixed = g.fixed_channels ? { channels: g.fixed_channels } : {};
  showParams($("input-params"), "input", g.params, on.param, { hints: true, fixed, choice: (_, value) => choiceText(state.catalogue, value) });
  rememberDefaults($("input-params"), g.params);
}

/**
 * The text of a choice of the network generator: a network's title, a photo and what it
 * shows, a layer and what it is; a photo or network this server lacks is disabled, saying why.
 * @returns {[string, boolean, string]} text, disabled, title
 */
function choiceText(catalogue, value) {
  const nets = catalogue.networks || {};
  const photo = (catalogue.photos || {})[value];
  const layer = Object.values(nets)
    .flatMap((n) => n.layers)
    .find((x) => x.name === value);
  if (nets[value]) return [nets[value].title, !nets[value].available, nets[value].detail || ""];
  if (photo) return [`${value} · ${photo.shows}`, !photo.available, photo.detail || ""];
  if (layer) return [layerChoice(layer), false, ""];
  return [value, false, ""];
}

/**
 * The inputs of the preset in the request (none for an explicit matrix).
 * @param {object} state
 * @param {Handlers} on
 */
export function showWeightParams(state, on) {
  const w = state.request.weights || {};
  const p = w.matrix ? null : state.catalogue.weight_presets[w.preset];
  showParams($("preset-params"), "weights", p ? p.params : {}, on.param, { hints: false });
  if (p) rememberDefaults($("preset-params"), p.params);
}

function showExperimentParams(state, on) {
  const params = (state.catalogue.experiments || {})[endpointOf(state)] || {};
  showParams($("experiment-params"), "", params, on.param, { hints: true });
  rememberDefaults($("experiment-params"), params);
}

/**
 * Put the state into the controls; `all` after a scenario change rebuilds the parameter sets.
 * @param {object} state
 * @param {Handlers} on
 * @param {boolean} [all]
 */
export function syncSettings(state, on, all = false) {
  const compare = endpointOf(state) === COMPARE;
  const req = state.request;
  const hasInput = Boolean(state.files.input);
  const hasWeights = Boolean(state.files.weights);
  if (req.input && document.activeElement !== $("generator")) $("generator").value = req.input.generator;
  if (all || !$("input-params").dataset.key) showInputParams(state, on);
  $("input-params").hidden = hasInput;
  $("generator-field").hidden = hasInput;
  $("file-options").hidden = !hasInput;
  $("clear-input").hidden = !hasInput;
  $("drop-label").textContent = fileText.input(state.files.input, state.inputFrom === "net");
  showPhoto(state);
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
      $("preset").value = w.matrix ? MATRIX : w.network ? TRAINED : w.preset || served;
    }
    if (all || !$("preset-params").dataset.key || (w.matrix && $("preset-params").childElementCount)) showWeightParams(state, on);
    $("preset").disabled = state.network.on;
    $("preset-field").hidden = state.network.on;
    $("preset-params").hidden = state.network.on;
    showTrained(state);
    $("clear-weights").hidden = !hasWeights;
    $("weights-hint").hidden = state.network.on; // the network section says what the file may be
    $("weights-label").textContent = fileText.weights(state.files.weights);
    showMatrix(state, on);
    showNetwork(state);
  } else if (all || !$("experiment-params").dataset.key) {
    showExperimentParams(state, on);
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

/** The photo drop zone and the catalogue's word on a missing network follow the request. */
function showPhoto(state) {
  const input = networkInput(state.request, state.catalogue);
  const photo = state.files.photo;
  $("photo-box").hidden = !input || Boolean(state.files.input);
  $("photo-label").textContent = networkText.photoDrop(photo);
  $("clear-photo").hidden = !photo;
  const missing = networkMissing(state.request, state.files, state.catalogue);
  $("net-missing").hidden = !missing;
  $("net-missing").textContent = missing ? networkText.missing(missing) : "";
}

/** The trained layer's own settings: its batch norm, and for the classifier the classes. */
function showTrained(state) {
  const w = state.request.weights || {};
  const input = networkInput(state.request, state.catalogue);
  const trained = Boolean(w.network) && !state.network.on;
  $("preset").querySelector(`option[value="${TRAINED}"]`).disabled = !input && !w.network;
  $("trained-box").hidden = !trained;
  if (!trained) return;
  const l = networkWeightsLayer(state.request, state.catalogue);
  const net = state.catalogue.networks[w.network];
  $("trained-layer").textContent = l && net ? networkText.layer(l, networkName(net)) : "";
  $("trained-bn-field").hidden = !(l && l.batchnorm);
  if (document.activeElement !== $("trained-bn")) $("trained-bn").value = w.batchnorm || state.catalogue.checkpoint.batchnorm[0].id;
  const classes = Boolean(l && l.role === "classifier");
  $("classes-box").hidden = !classes;
  if (!classes) return;
  for (const [which, value] of [
    ["a", w.classes ? w.classes[0] : ""],
    ["b", w.minus || ""],
  ]) {
    const field = $(`class-${which}`);
    if (document.activeElement !== field) field.value = value;
    // The hint is about text that is still in the field; once the field shows what is sent, it goes.
    const hint = field.value !== value ? state.classHints[which] : "";
    const note = $(`class-${which}-note`);
    note.textContent = hint;
    note.hidden = !hint;
  }
}

/** The network section follows its state: files, the listing, the layer, batch norm and ε. */
function showNetwork(state) {
  const net = state.network;
  const { input, weights } = state.files;
  $("weights-errors").hidden = net.on;
  $("net-drop-label").textContent = fileText.checkpoint(weights);
  // Each drop zone shows its own file; the network's shows one from the other zone only while the network is in use, and says so.
  $("net-acts-label").textContent = fileText.activations(input, state.inputFrom, net.on);
  $("net-listing").textContent = net.reading ? readingLayers(net.reading) : net.listing ? listingText(net.listing, weights.name) : net.note;
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
      $("net-bn-legend").textContent = settingsText.batchnormAfter(bn.name);
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

/** The weight grid (W as sent, or as the server used it) and the notes under it. */
function showMatrix(state, on) {
  const w = state.request.weights || {};
  const r = shownReport(state);
  if (state.network.on) hideGrid();
  else if (w.matrix && w.matrix.length <= GRID_MAX && w.matrix[0].length <= GRID_MAX) {
    const bias = Array.isArray(w.bias) ? w.bias : w.matrix.map(() => Number(w.bias || 0));
    showGrid(w.matrix, bias, on.cell, true);
  } else if (!w.matrix && r && r.shapes.weight[0] <= GRID_MAX && r.shapes.weight[1] <= GRID_MAX) {
    const shown = weightsOf(r);
    showGrid(shown.matrix, shown.bias, on.cell, false);
  } else hideGrid();
  const bn = state.network.on && r && r.layer.batchnorm;
  const [k, c] = w.matrix ? [w.matrix.length, w.matrix[0].length] : r ? r.shapes.weight : [0, 0];
  // Say why the grid is gone, and what to do instead.
  const big = !state.network.on && !state.files.weights && (k > GRID_MAX || c > GRID_MAX) ? matrixText.tooBig(k, c, GRID_MAX) : "";
  $("matrix-note").textContent = bn ? matrixText.folded(r.layer.checkpoint_layer, bn.name) : [state.matrixNote, big].filter(Boolean).join(" ");
  // On a phone the result is far below the grid: after an edit there, a link to it.
  $("see-result").hidden = !(state.editedCell && window.matchMedia("(max-width: 700px)").matches);
}

/**
 * The scenario buttons: the one picked is pressed, and marked "changed" once the settings leave it.
 * @param {object} state
 */
export function showScenarios(state) {
  const holds = premiseHolds(scenarioOf(state), state.request, state.files, state.catalogue);
  for (const b of document.querySelectorAll("button.scenario[data-scenario]")) {
    const on = b.dataset.scenario === state.scenario;
    b.setAttribute("aria-pressed", String(on));
    b.classList.toggle("changed", on && !holds);
    b.querySelector(".badge").hidden = !(on && !holds);
  }
  $("reset").hidden = holds;
  $("reset").textContent = settingsText.resetTo(scenarioOf(state).title);
}

/**
 * Empty these file choosers, so choosing the same file again is a change.
 * @param {...string} ids
 */
export function clearChoosers(...ids) {
  for (const id of ids) $(id).value = "";
}
