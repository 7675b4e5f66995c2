// The results follow what is on screen (state.shown): the story, the numbers, the panels, the
// weight picture or an experiment's view; and the page's status and error. Reads the state,
// never changes it.

import { $, el } from "./dom.js";
import { showError } from "./errors.js";
import { VIEWS } from "./experiments.js";
import { fmt, fromValues, greyLut, layerCounts, paintChannel, panelMaps, scaleFor } from "./heatmap.js";
import * as panels from "./panels.js";
import { syncSettings } from "./settings.js";
import { COMPARE, networkMissing, premiseHolds, scenarioById, shownReport } from "./state.js";
import {
  changedPoint,
  describe,
  fixes,
  headline,
  layerTitles,
  mapsSource,
  matrixText,
  mixText,
  networkName,
  networkText,
  numbers,
  ownLayer,
  pictureCaption,
  resultLink,
  statusLine,
  trainedTitles,
} from "./story.js";

/** The photos endpoint: GET PHOTOS + name + "?view=crop" is the 224×224 crop a network sees. */
const PHOTOS = "/api/v1/photos/";

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
  const m = compare ? panelMaps(s.response.heatmaps) : null;
  // What a trained network's layer did, counted once from the maps it sent.
  const counts = compare && s.response.layer.network ? layerCounts(m, fromValues(s.response.heatmaps.weight), s.response.heatmaps.stride) : null;
  renderStory(state, counts);
  renderNetwork(state, m, counts, on);
  if (compare) {
    const r = s.response;
    // The server's panels in its order: those it draws by default, the ground truth, then with
    // "extra" the others this response has maps for (the difference needs K = C).
    const names = Object.keys(state.panels);
    const cols = [...names.filter((k) => state.panels[k].default), ...Object.keys(m).filter((k) => k.startsWith("truth:"))];
    if (state.view.extra) cols.push(...names.filter((k) => !state.panels[k].default && m[k]));
    panels.show($("panels"), {
      maps: m,
      cols,
      // A network's channels have no names beyond their index ("features.7.conv.0.0 in 3").
      names: r.network ? [] : r.channel_names,
      stride: r.heatmaps.stride,
      height: r.heatmaps.height,
      width: r.heatmaps.width,
      scale: state.view.scale,
      luts: state.luts,
      weight: fromValues(r.heatmaps.weight),
      bias: fromValues(r.heatmaps.bias),
      titles: s.own ? layerTitles(r.layer) : trainedTitles(r.layer),
    });
    renderNumbers(r, s, counts);
    renderWeightPicture(r, state.luts);
    syncSettings(state, on);
    performance.mark("onebyone:drawn");
    const t = performance.measure("onebyone:render", "onebyone:response", "onebyone:drawn");
    document.body.dataset.renderMs = t.duration.toFixed(2);
  } else {
    VIEWS[s.endpoint].show($("experiment"), s.response, { request: s.request, luts: state.luts });
  }
}

function renderStory(state, counts) {
  const s = state.shown;
  const sc = scenarioById(state.catalogue, s.scenario);
  const holds = premiseHolds(sc, s.request, s.files, state.catalogue);
  $("story-name").textContent = sc.title;
  $("story-badge").hidden = holds;
  $("point").textContent = holds ? sc.point : changedPoint(describe(s.request, s.endpoint, s.response, state.catalogue, s.names));
  const view = VIEWS[s.endpoint];
  const body = view ? view.headline(s.response, s.request) : headline(sc.headline, holds, s.response, counts);
  // Every headline first says whose maps these are: generated, yours, or a trained network's.
  $("headline").textContent = [mapsSource(s.request, s.names, state.catalogue, s.response), body].filter(Boolean).join(" ");
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

function renderNumbers(r, shown, counts) {
  const out = numbers(r, counts);
  for (const [id, text] of Object.entries(out)) $(id).textContent = text;
  $("n-truth-box").hidden = !Object.keys(r.truth || {}).length;
  $("n-network-box").hidden = !out["n-network"];
  $("n-relu6-box").hidden = !out["n-relu6"];
  $("n-classes-box").hidden = !out["n-classes"];
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

/** The dropped photo whose crop is on screen, so a re-run does not decode it again. */
let cropped = null;

/**
 * The network's part of the story: the photo it sees (the server's crop of a built-in one, or
 * the page's of a photo sent) with the class map over it, its words and licence, the layer,
 * the top 5, and what each output mixes.
 * @param {object} state
 * @param {Record<string, object>|null} m the panel maps of a compare report
 * @param {object|null} counts heatmap.js layerCounts
 * @param {import("./settings.js").Handlers} on
 */
function renderNetwork(state, m, counts, on) {
  const s = state.shown;
  const r = s.response;
  const net = r.network;
  $("net-info").hidden = !net;
  renderMixes(state, counts);
  if (!net) return;
  const entry = (state.catalogue.networks || {})[net.network];
  const sent = s.names.photo ? s.files.photo : null;
  const img = $("net-photo-img");
  const canvas = $("net-photo-canvas");
  img.hidden = Boolean(sent);
  canvas.hidden = !sent;
  if (sent) {
    if (cropped !== sent) {
      cropped = sent;
      drawCrop(canvas, sent);
    }
    $("net-photo-caption").textContent = networkText.cropSent;
    $("net-photo-text").textContent = networkText.sentPhoto(sent.name);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", networkText.cropAlt(sent.name));
  } else {
    const src = `${PHOTOS}${encodeURIComponent(net.photo)}?view=crop`;
    if (img.getAttribute("src") !== src) img.src = src;
    img.alt = networkText.cropAlt(net.photo);
    $("net-photo-caption").textContent = networkText.crop;
    const p = (state.catalogue.photos || {})[net.photo];
    $("net-photo-text").textContent = p ? networkText.photo(p) : "";
  }
  const l = entry ? entry.layers.find((x) => x.name === net.layer) : null;
  $("net-layer-text").textContent = l ? networkText.layer(l, networkName(entry)) : "";
  const classes = r.layer && r.layer.classes && r.layer.classes.length === 1 && m;
  $("net-map").hidden = !classes;
  $("net-map-legend").hidden = !classes;
  if (classes) drawClassMap(r, m.pre_activation, state.luts);
  const useClass = Boolean(r.layer && r.layer.network && r.layer.checkpoint_layer === net.layer && l && l.role === "classifier");
  $("net-top5").replaceChildren(
    ...net.top5.map((t) => {
      const li = el("li", { textContent: networkText.topItem(t) });
      if (useClass && on.useClass) {
        const b = el("button", { type: "button", className: "use-class", textContent: networkText.useClass, "aria-label": networkText.useClassLabel(t.name), dataset: { name: t.name } });
        b.addEventListener("click", () => on.useClass(t.name));
        li.append(" ", b);
      }
      return li;
    }),
  );
}

/** The 224×224 crop of a photo sent, as the server makes it: shorter side to 256, centre 224. */
async function drawCrop(canvas, file) {
  const bitmap = await createImageBitmap(file);
  const side = (Math.min(bitmap.width, bitmap.height) * 224) / 256;
  canvas.width = 224;
  canvas.height = 224;
  canvas.getContext("2d").drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, 224, 224);
  bitmap.close();
}

/** W[a] − W[b] · x + b at each pixel, on a diverging scale centred at 0, over the photo. */
function drawClassMap(r, pre, luts) {
  const l = r.layer;
  const canvas = $("net-map");
  canvas.width = pre.width;
  canvas.height = pre.height;
  const scale = scaleFor([Math.min(pre.lo[0], -1e-9)], [pre.hi[0]], "shared", 0);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(pre.width, pre.height);
  paintChannel(img.data, pre, 0, scale, luts.diverging);
  ctx.putImageData(img, 0, 0);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", networkText.mapAlt(l.classes[0], l.minus, pre.height, pre.width));
  $("net-map-title").textContent = networkText.mapTitle(l.classes[0], l.minus);
  const bar = $("net-map-bar");
  bar.width = 256;
  bar.height = 1;
  const bctx = bar.getContext("2d");
  const strip = bctx.createImageData(256, 1);
  for (let i = 0; i < 256; i++) strip.data.set([luts.diverging[3 * i], luts.diverging[3 * i + 1], luts.diverging[3 * i + 2], 255], 4 * i);
  bctx.putImageData(strip, 0, 0);
  const [lo, mid, hi] = networkText.mapLegend(l.classes[0], l.minus);
  const ticks = $("net-map-legend").querySelectorAll(".ticks span");
  [`${fmt(scale.min, 3)} ${lo}`, mid, `${hi} ${fmt(scale.max, 3)}`].forEach((t, i) => (ticks[i].textContent = t));
}

/** The list of what each output mixes, built when it is opened (a layer may have 1280). */
let mixesShown = null;
function renderMixes(state, counts) {
  const box = $("mixes-box");
  const list = $("mixes");
  const r = state.shown.response;
  const show = Boolean(counts && !r.layer.classes);
  box.hidden = !show;
  if (!show) {
    list.replaceChildren();
    mixesShown = null;
    return;
  }
  $("mixes-title").textContent = networkText.mixesTitle(counts.mixes.length);
  const fill = () => {
    if (mixesShown === counts) return;
    mixesShown = counts;
    list.replaceChildren(...counts.mixes.map((mix, k) => el("li", { textContent: networkText.mixesItem(k, mixText(mix)) })));
  };
  box.ontoggle = () => box.open && fill();
  if (box.open) fill();
  else if (mixesShown !== counts) {
    list.replaceChildren();
    mixesShown = null;
  }
}

/**
 * A scenario that cannot run here (no trained network): its title and point, and no result
 * of another scenario's left to look like its answer.
 * @param {object} state
 */
export function renderUnavailable(state) {
  const sc = scenarioById(state.catalogue, state.scenario);
  $("story-name").textContent = sc.title;
  $("story-badge").hidden = true;
  $("point").textContent = sc.point;
  $("headline").textContent = "";
  $("story-figure").hidden = true;
  $("net-info").hidden = true;
  $("compare-view").hidden = true;
  $("experiment").hidden = true;
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
  $("status").textContent = statusLine(status, {
    reading: state.network.reading,
    notSent: Boolean(state.error && state.error.code === "not_sent"),
    detail: status === "unavailable" ? networkMissing(state.request, state.files, state.catalogue) : "",
  });
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
