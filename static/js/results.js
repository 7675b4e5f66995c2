// The results follow what is on screen (state.shown): the story, the numbers, the panels, the
// weight picture or an experiment's view; and the page's status and error. Reads the state,
// never changes it.

import { $, el } from "./dom.js";
import { showError } from "./errors.js";
import { VIEWS } from "./experiments.js";
import { fromValues, greyLut, paintChannel, panelMaps, scaleFor } from "./heatmap.js";
import * as panels from "./panels.js";
import { syncSettings } from "./settings.js";
import { COMPARE, premiseHolds, scenarioById, shownReport } from "./state.js";
import { changedPoint, describe, fixes, headline, layerTitles, matrixText, numbers, ownLayer, pictureCaption, resultLink, statusLine } from "./story.js";

/**
 * Draw what is on screen; the settings follow (the grid shows the weights the server used).
 * @param {object} state
 * @param {import("./settings.js").Handlers} on
 */
export function render(state, on) {
  const s = state.shown;
  const compare = s.endpoint === COMPARE;
  $("compare-view").hidden = !compare;
  $("experiment").hidden = compare;
  renderStory(state);
  if (compare) {
    const r = s.response;
    const m = panelMaps(r.heatmaps);
    // The server's panels in its order: those it draws by default, the ground truth, then with
    // "extra" the others this response has maps for (the difference needs K = C).
    const names = Object.keys(state.panels);
    const cols = [...names.filter((k) => state.panels[k].default), ...Object.keys(m).filter((k) => k.startsWith("truth:"))];
    if (state.view.extra) cols.push(...names.filter((k) => !state.panels[k].default && m[k]));
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
      titles: s.own ? layerTitles(r.layer) : undefined,
    });
    renderNumbers(r, s);
    renderWeightPicture(r, state.luts);
    syncSettings(state, on);
    performance.mark("onebyone:drawn");
    const t = performance.measure("onebyone:render", "onebyone:response", "onebyone:drawn");
    document.body.dataset.renderMs = t.duration.toFixed(2);
  } else {
    VIEWS[s.endpoint].show($("experiment"), s.response, { request: s.request, luts: state.luts });
  }
}

function renderStory(state) {
  const s = state.shown;
  const sc = scenarioById(state.catalogue, s.scenario);
  const holds = premiseHolds(sc, s.request, s.files, state.catalogue);
  $("story-name").textContent = sc.title;
  $("story-badge").hidden = holds;
  $("point").textContent = holds ? sc.point : changedPoint(describe(s.request, s.endpoint, s.response, state.catalogue, s.names));
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
    $("story-caption").textContent = pictureCaption(r.channel_names[0]);
  }
}

function renderNumbers(r, shown) {
  for (const [id, text] of Object.entries(numbers(r))) $(id).textContent = text;
  $("n-truth-box").hidden = !Object.keys(r.truth || {}).length;
  const mine = shown.own ? ownLayer(r, shown.names) : "";
  $("n-layer-box").hidden = !mine;
  $("n-layer").textContent = mine;
}

function renderWeightPicture(r, luts) {
  const [k, c] = r.shapes.weight;
  const w = fromValues(r.heatmaps.weight);
  const scale = scaleFor(w.lo, w.hi, "shared", 0);
  const canvas = $("matrix-canvas");
  canvas.width = c;
  canvas.height = k;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(c, k);
  paintChannel(img.data, w, 0, scale, scale.diverging ? luts.diverging : luts.sequential);
  ctx.putImageData(img, 0, 0);
  canvas.style.aspectRatio = `${c} / ${k}`;
  canvas.style.width = `${Math.min(280, Math.max(c, k) * 24, c * Math.max(2, Math.floor(160 / k)))}px`;
  $("matrix-range").textContent = matrixText.range(k, c, w.lo[0], w.hi[0]);
}

/**
 * Show the experiment's view before its result comes (a streamed one draws as it runs).
 * @returns {HTMLElement} where it draws
 */
export function experimentRoot() {
  $("compare-view").hidden = true;
  $("experiment").hidden = false;
  return $("experiment");
}

/**
 * Show state.status: on the body and the results (what the tests and the CSS read), in the
 * status line, and in the link from the weight grid to the result.
 * @param {object} state
 */
export function showStatus(state) {
  const status = state.status;
  document.body.dataset.status = status === "pending" ? "loading" : status;
  $("results").dataset.state = status;
  $("status").textContent = statusLine(status, { reading: state.network.reading, notSent: Boolean(state.error && state.error.code === "not_sent") });
  $("see-result").textContent = resultLink(status, shownReport(state));
  if (status === "ready") {
    document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
  }
}

/**
 * Show state.error next to its control; a weights matrix that does not fit the input gets a
 * button that fixes it.
 * @param {object} state
 * @param {(c: number|undefined) => void} fix what the button does, given the input's C when the error came
 */
export function showFailure(state, fix) {
  const err = state.error;
  const extra = [];
  if (err.field && err.field.startsWith("weights.matrix") && err.code === "shape_mismatch") {
    const c = state.request.input && state.request.input.channels;
    const text = !state.files.input && c ? fixes.fitW(c) : fixes.defaultWeights;
    const button = el("button", { type: "button", className: "fix", textContent: text });
    button.addEventListener("click", () => fix(c));
    extra.push(button);
  }
  showError(err, extra);
}
