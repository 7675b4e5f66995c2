// The page's one state object and pure functions of it: the request it sends, whether a
// scenario's premise still holds, the URL that restores it, the curl line. No DOM, so the
// browser tests call them directly. Every name (generators, presets, devices, layouts,
// scenarios) comes from the server's catalogue; none is written here.

import { weightsOf } from "./heatmap.js";
import { matrixFitted } from "./story.js";

/** @typedef {{id: string, title: string, point: string, endpoint: string, request: object, headline: string[]}} Scenario */
/** @typedef {{scenarios: Scenario[], generators: object, weight_presets: object, experiments: object}} Catalogue */
/** @typedef {{scale: "shared"|"channel", extra: boolean}} View */

/** Where a comparison goes; every other endpoint a scenario names is an experiment. */
export const COMPARE = "/api/v1/compare";
/** Weight grids up to GRID_MAX × GRID_MAX are editable cell by cell. */
export const GRID_MAX = 16;

/**
 * The network section's state: whether it is in use (its layer, not the preset, is sent), the
 * weights file being read, its listing of 1×1 layers, the layer picked, its batch norm and ε,
 * and a note about the file.
 * @returns {{on: boolean, reading: string|null, listing: object|null, layer: string|null, batchnorm: string|null, eps: number|undefined, note: string}}
 */
export function freshNetwork() {
  return { on: false, reading: null, listing: null, layer: null, batchnorm: null, eps: undefined, note: "" };
}

/**
 * Everything the page knows. `request` is what the controls say now; `shown` is on screen.
 * @param {{catalogue: Catalogue, luts: {sequential: Uint8Array, diverging: Uint8Array}, panels: Record<string, {title: string, short: string, default: boolean}>}} server
 * @param {string} search location.search, which may restore a view
 */
export function createState(server, search) {
  return {
    ...server,
    ...fromQuery(search, server.catalogue), // scenario, request, view
    /** input: your activations; weights: your 1×1 layer or checkpoint; photo: a photo for the network's maps */
    files: { input: null, weights: null, photo: null },
    /** "loading" (before the first answer), "pending", "waiting", "ready" or "error" */
    status: "loading",
    /** @type {null|{status: number, detail: string, field: string|null, code: string|null}} */
    error: null,
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
    /** What the class fields say while the text in them is part of a class name, not one. */
    classHints: { a: "", b: "" },
  };
}

/** @param {ReturnType<typeof createState>} state @returns {Scenario} the scenario picked */
export const scenarioOf = (state) => scenarioById(state.catalogue, state.scenario);
/** @param {ReturnType<typeof createState>} state @returns {string} where the request goes */
export const endpointOf = (state) => scenarioOf(state).endpoint;

/**
 * The weights spec "Your own network" sends, or null when it is not in use.
 * @param {ReturnType<typeof createState>} state
 * @returns {object|null}
 */
export function ownWeights(state) {
  return state.network.on ? networkWeights(state.network, state.catalogue.checkpoint) : null;
}

/**
 * The files a request sends: a photo only in place of a built-in one, so never beside
 * activations of your own (those are the input then).
 * @param {{input?: File|null, weights?: File|null, photo?: File|null}} files
 * @returns {{input: File|null, weights: File|null, photo: File|null}}
 */
export function sentFiles(files) {
  const input = (files && files.input) || null;
  return { input, weights: (files && files.weights) || null, photo: (!input && files && files.photo) || null };
}

/**
 * @param {{input?: File|null, weights?: File|null, photo?: File|null}} files
 * @returns {{input?: string, weights?: string, photo?: string}} the names of those sent
 */
export function fileNames(files) {
  const sent = sentFiles(files);
  const name = (f) => (f ? f.name : undefined);
  return { input: name(sent.input), weights: name(sent.weights), photo: name(sent.photo) };
}

/**
 * Whether a generator is a trained network's (its parameters name the network and a layer).
 * @param {Catalogue} catalogue
 * @param {string|undefined} name
 * @returns {boolean}
 */
export function isNetworkGenerator(catalogue, name) {
  const g = name ? catalogue.generators[name] : null;
  return Boolean(g && g.params.network && g.params.layer);
}

/**
 * What the request's input says about a trained network: the network's catalogue entry, the
 * layer whose input the maps are (its row of the layer table), and the built-in photo's entry;
 * null when the maps are not a network's.
 * @param {object} request
 * @param {Catalogue} catalogue
 * @returns {null|{name: string, net: object|null, layer: object|null, layerName: string, photo: string, photoEntry: object|null}}
 */
export function networkInput(request, catalogue) {
  const input = (request && request.input) || {};
  if (!isNetworkGenerator(catalogue, input.generator)) return null;
  const params = catalogue.generators[input.generator].params;
  const name = input.network ?? params.network.default;
  const net = (catalogue.networks || {})[name] || null;
  const layerName = input.layer ?? params.layer.default;
  const photo = input.photo ?? params.photo.default;
  return {
    name,
    net,
    layer: net ? net.layers.find((l) => l.name === layerName) || null : null,
    layerName,
    photo,
    photoEntry: (catalogue.photos || {})[photo] || null,
  };
}

/**
 * The layer table's row of the network layer the weights name (their own `layer`, else the
 * input's), or null when the weights are not a network's.
 * @param {object} request
 * @param {Catalogue} catalogue
 * @returns {object|null}
 */
export function networkWeightsLayer(request, catalogue) {
  const w = request.weights;
  if (!w || !w.network) return null;
  const net = (catalogue.networks || {})[w.network];
  const input = networkInput(request, catalogue);
  const name = w.layer ?? (input ? input.layerName : null);
  return net && name ? net.layers.find((l) => l.name === name) || null : null;
}

/**
 * Why a request that needs the trained network cannot be sent on this server: the catalogue's
 * detail (how to install it) when the network, or the built-in photo asked for, is missing.
 * @param {object} request
 * @param {{photo?: File|null, input?: File|null}} files
 * @param {Catalogue} catalogue
 * @returns {string} "" when nothing is missing
 */
export function networkMissing(request, files, catalogue) {
  const input = networkInput(request, catalogue);
  const w = request.weights;
  const name = input && !(files && files.input) ? input.name : w && w.network ? w.network : null;
  if (!name) return "";
  const net = (catalogue.networks || {})[name];
  if (!net || !net.available) return (net && net.detail) || "";
  if (input && !(files && (files.input || files.photo)) && input.photoEntry && !input.photoEntry.available) {
    return input.photoEntry.detail || "";
  }
  return "";
}

/**
 * The compare report on screen, or null (an experiment's result, or nothing yet).
 * @param {ReturnType<typeof createState>} state
 * @returns {object|null}
 */
export function shownReport(state) {
  return state.shown && state.shown.endpoint === COMPARE ? state.shown.response : null;
}

/**
 * What a run sends, taken when it starts: later edits do not change it.
 * @param {ReturnType<typeof createState>} state
 */
export function snapshot(state) {
  return {
    scenario: state.scenario,
    endpoint: endpointOf(state),
    request: structuredClone(state.request),
    files: { ...state.files },
    names: fileNames(state.files),
    own: ownWeights(state),
  };
}

/**
 * Why the current settings cannot be sent yet: a checkpoint being read ("pending"), no
 * activations for its layer ("waiting"), or a trained network this server lacks
 * ("unavailable"); "" when they can.
 * @param {ReturnType<typeof createState>} state
 * @returns {""|"pending"|"waiting"|"unavailable"}
 */
export function holding(state) {
  if (networkMissing(state.request, state.files, state.catalogue)) return "unavailable";
  const net = state.network;
  if (!net.on || endpointOf(state) !== COMPARE) return "";
  if (net.reading) return "pending";
  return state.files.weights && !state.files.input ? "waiting" : "";
}

/**
 * Set a dotted path in an object, making the objects on the way; undefined deletes the key.
 * @param {object} obj
 * @param {string} path e.g. "input.height"
 * @param {any} value
 */
export function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  const last = keys[keys.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
}

/**
 * W and b of a compare report to 4 significant digits: the weights on screen as a learner
 * would type them.
 * @param {object|null} r the CompareReport
 * @returns {{matrix: number[][], bias: number[]}|null}
 */
export function roundedWeights(r) {
  if (!r) return null;
  const round = (v) => Number(v.toPrecision(4));
  const { matrix, bias } = weightsOf(r);
  return { matrix: matrix.map((row) => row.map(round)), bias: bias.map(round) };
}

/**
 * W follows C: new columns are 0, removed ones are dropped, and the state's note says so.
 * @param {ReturnType<typeof createState>} state whose request has an explicit matrix
 * @param {number} c
 */
export function fitMatrix(state, c) {
  if (c < 1 || c > GRID_MAX * 64) return;
  // From W as the learner left it: typing 64 passes through 6, and 16 through 1.
  const base = (state.matrixBase ??= structuredClone(state.request.weights));
  const before = base.matrix[0].length;
  state.request.weights = { ...adaptMatrix(base, c), bias: structuredClone(base.bias) };
  state.matrixNote = matrixFitted(before, c);
}

/**
 * The scenario with this id, or the first one.
 * @param {Catalogue} catalogue
 * @param {string|null} id
 * @returns {Scenario}
 */
export function scenarioById(catalogue, id) {
  return catalogue.scenarios.find((s) => s.id === id) || catalogue.scenarios[0];
}

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((k) => value[k] !== null && value[k] !== undefined)
        .map((k) => [k, sorted(value[k])]),
    );
  }
  return value;
}

function withDefaults(given, params) {
  const out = { ...given };
  for (const [key, p] of Object.entries(params || {})) {
    if ((out[key] === undefined || out[key] === null) && p.default !== null && p.default !== undefined) {
      out[key] = p.default;
    }
  }
  return out;
}

/**
 * A request in a canonical form: defaults from the catalogue filled in, keys sorted, and the
 * device left out (it changes where the numbers are computed, not what they are).
 * @param {object} request
 * @param {string} endpoint
 * @param {Catalogue} catalogue
 * @returns {string} JSON
 */
export function canonical(request, endpoint, catalogue) {
  const r = structuredClone(request);
  delete r.device;
  if (r.input) {
    const g = catalogue.generators[r.input.generator];
    r.input = withDefaults(r.input, g ? g.params : {});
    delete r.input.layout;
    delete r.input.features;
  }
  if (r.weights && r.weights.network) {
    // A network's layer: the input's layer and its batch norm folded unless named.
    const input = networkInput(r, catalogue);
    r.weights = { layer: input ? input.layerName : undefined, batchnorm: catalogue.checkpoint.batchnorm[0].id, ...r.weights };
  } else if (r.weights && !r.weights.matrix) {
    const p = catalogue.weight_presets[r.weights.preset];
    r.weights = withDefaults(r.weights, p ? p.params : {});
  }
  if (r.weights && r.weights.matrix && r.weights.bias === undefined) {
    r.weights.bias = r.weights.matrix.map(() => 0);
  }
  Object.assign(r, withDefaults(r, (catalogue.experiments || {})[endpoint]));
  return JSON.stringify(sorted(r));
}

/**
 * Whether the current request is still the scenario's: the simple, honest rule the page
 * uses to mark a scenario as changed. Uploaded files always leave the premise.
 * @param {Scenario} scenario
 * @param {object} request
 * @param {{input?: File|null, weights?: File|null}} files
 * @param {Catalogue} catalogue
 * @returns {boolean}
 */
export function premiseHolds(scenario, request, files, catalogue) {
  if (files && (files.input || files.weights || files.photo)) return false;
  return (
    canonical(request, scenario.endpoint, catalogue) ===
    canonical(scenario.request, scenario.endpoint, catalogue)
  );
}

/**
 * The URL query that restores a view.
 * @param {{scenario: string, request: object, view: View}} s
 * @returns {string} e.g. "?scenario=identity&spec=...&scale=shared"
 */
export function toQuery(s) {
  const q = new URLSearchParams();
  q.set("scenario", s.scenario);
  q.set("spec", JSON.stringify(s.request));
  q.set("scale", s.view.scale);
  if (s.view.extra) q.set("extra", "1");
  return `?${q.toString()}`;
}

/**
 * The scenario, request and view a URL query describes; anything missing or malformed falls
 * back to the scenario's own request (or the first scenario).
 * @param {string} search location.search
 * @param {Catalogue} catalogue
 * @returns {{scenario: string, request: object, view: View}}
 */
export function fromQuery(search, catalogue) {
  const q = new URLSearchParams(search);
  const scenario = scenarioById(catalogue, q.get("scenario"));
  let request = structuredClone(scenario.request);
  try {
    const spec = JSON.parse(q.get("spec") || "null");
    const fits = scenario.endpoint === COMPARE ? spec && spec.input && spec.weights : spec;
    if (fits && typeof spec === "object" && !Array.isArray(spec)) request = spec;
  } catch {
    // A hand-edited link with broken JSON: keep the scenario's request.
  }
  return {
    scenario: scenario.id,
    request,
    view: { scale: q.get("scale") === "channel" ? "channel" : "shared", extra: q.get("extra") === "1" },
  };
}

/**
 * The request as the server should get it: upload-only fields only with an uploaded input, and
 * with one, none of the generator's,
 * and with a weights file or "Your own network" in use, the weights it names (`own`) in place
 * of the preset.
 * @param {object} request
 * @param {{input?: File|null, weights?: File|null}} files
 * @param {object|null} own the network's weights spec (networkWeights), or null when not in use
 * @returns {object}
 */
export function requestToSend(request, files, own = null) {
  const r = structuredClone(request);
  // A photo sent stands in for the built-in one, which the API then refuses to be named too.
  if (sentFiles(files).photo && r.input) delete r.input.photo;
  if (r.input && !(files && files.input)) {
    delete r.input.layout;
    delete r.input.features;
  } else if (r.input) {
    // A file is the input: the generator's settings mean nothing next to it.
    const { layout, features } = r.input;
    r.input = Object.fromEntries(Object.entries({ layout, features }).filter(([, v]) => v !== undefined));
    if (!Object.keys(r.input).length) delete r.input;
  }
  if (own) r.weights = structuredClone(own);
  else if (files && files.weights && r.weights) r.weights = {};
  return r;
}

/**
 * What "Your own network" sends as `weights`: the layer picked from the checkpoint's listing
 * (no name for a one-layer file), and where a batch norm follows it, the choice about it and
 * its ε. Without a listing (a file from `onebyone capture` as the input) nothing: the layer
 * comes with the activations.
 * @param {{listing: object|null, layer: string|null, batchnorm: string|null, eps: number|undefined}} network
 * @param {{batchnorm: {id: string}[], eps: {default: number}}} controls the catalogue's checkpoint entry
 * @returns {object}
 */
export function networkWeights(network, controls) {
  const out = {};
  const entry = network.listing ? network.listing.layers.find((l) => l.name === network.layer) : null;
  if (!entry) return out;
  if (entry.name) out.layer = entry.name;
  if (entry.batchnorm) {
    out.batchnorm = network.batchnorm || controls.batchnorm[0].id;
    out.eps = network.eps ?? controls.eps.default;
  }
  return out;
}

/**
 * W with its columns padded with zeros or cut to C input channels.
 * @param {{matrix: number[][], bias?: number[]|number}} weights
 * @param {number} c
 * @returns {{matrix: number[][], bias?: number[]|number}}
 */
export function adaptMatrix(weights, c) {
  const matrix = weights.matrix.map((row) => Array.from({ length: c }, (_, j) => (j < row.length ? row[j] : 0)));
  return { ...weights, matrix };
}

/**
 * Quote a string for a POSIX shell.
 * @param {string} s
 * @returns {string}
 */
export function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A file's name as curl's -F takes it after `@`: in double quotes where it holds `;`, `,`, a
 * quote or a backslash, so that `;type=` or `;headers=@FILE` in someone's file name
 * are part of the name, not curl's options.
 * @param {string} name
 * @returns {string}
 */
export function curlFileName(name) {
  if (!/[;,"\\]/.test(name)) return name;
  return `"${name.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The curl command that sends the same request as the page, writing the answer to a file
 * (the JSON without the heatmaps the page draws, which are hundreds of KB of base64).
 * @param {string} origin e.g. "http://127.0.0.1:8000"
 * @param {string} endpoint e.g. "/api/v1/compare"
 * @param {object} request the request as sent (requestToSend)
 * @param {{input?: string, weights?: string, photo?: string}} files names of uploaded files, if any
 * @param {string} format json, png or npz (compare only)
 * @returns {string}
 */
export function curlCommand(origin, endpoint, request, files, format = "json") {
  const compare = endpoint === COMPARE;
  const query = compare ? (format === "json" ? "?format=json&heatmaps=false" : `?format=${format}`) : "";
  const url = shellQuote(`${origin}${endpoint}${query}`);
  const name = compare ? `onebyone.${format}` : `onebyone-${endpoint.split("/").pop()}.json`;
  const out = ` -o ${name}`;
  if (files && (files.input || files.weights || files.photo)) {
    const parts = [];
    for (const part of ["input", "weights", "photo"]) {
      if (files[part]) parts.push(`-F ${shellQuote(`${part}=@${curlFileName(files[part])}`)}`);
    }
    // --form-string: curl would read ";type=" or ";headers=@FILE" inside a -F value (a layer
    // name from someone's checkpoint can hold them); files stay -F, to be read.
    parts.push(`--form-string ${shellQuote(`spec=${JSON.stringify(request)}`)}`);
    return `curl -sS -X POST ${url} ${parts.join(" ")}${out}`;
  }
  return `curl -sS -X POST ${url} -H 'Content-Type: application/json' -d ${shellQuote(JSON.stringify(request))}${out}`;
}

/** A class name as looked up: case folded, `_` as a space, spaces collapsed (as the API does). */
const normalName = (s) => s.replace(/_/g, " ").toLowerCase().split(/\s+/).filter(Boolean).join(" ");

/**
 * The class a typed name picks: "" for nothing typed, the class's shown name for a name typed
 * in full (any case), null for anything else (part of a name, or no name at all).
 * @param {string[]} names the network's class names
 * @param {string} text as typed
 * @returns {string|null}
 */
export function findClass(names, text) {
  const key = normalName(text);
  if (!key) return "";
  return names.find((n) => normalName(n) === key) ?? null;
}

/**
 * The class names that contain what was typed (any case), in the classifier's order.
 * @param {string[]} names
 * @param {string} text
 * @returns {string[]}
 */
export function classMatches(names, text) {
  const key = normalName(text);
  return key ? names.filter((n) => normalName(n).includes(key)) : [];
}

/**
 * The generated twin of a request for the bottleneck curve of a network's activations: the
 * generated scenario of the same endpoint, at the layer's C (at most the generators' limit)
 * and map size, so the two curves can be compared. Null when the maps are not a network's.
 * @param {object} request
 * @param {string} endpoint
 * @param {Catalogue} catalogue
 * @returns {null|{request: object, channels: number, capped: boolean}}
 */
export function generatedTwin(request, endpoint, catalogue) {
  const input = networkInput(request, catalogue);
  if (!input || !input.layer) return null;
  const base = catalogue.scenarios.find(
    (s) => s.endpoint === endpoint && s.request.input && !isNetworkGenerator(catalogue, s.request.input.generator),
  );
  if (!base) return null;
  const max = catalogue.limits.max_channels;
  const channels = Math.min(input.layer.in_channels, max);
  const [height, width] = input.layer.size;
  const twin = { ...structuredClone(base.request), input: { ...base.request.input, channels, height, width } };
  for (const key of Object.keys((catalogue.experiments || {})[endpoint] || {})) {
    if (request[key] !== undefined) twin[key] = request[key];
  }
  if (request.device) twin.device = request.device;
  return { request: twin, channels, capped: input.layer.in_channels > max };
}
