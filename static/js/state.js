// Pure helpers for the page's one state object: the request it sends, whether a scenario's
// premise still holds, the URL that restores it, and the curl line. No DOM, so the browser
// tests call them directly. Every name (generators, presets, devices, layouts, scenarios)
// comes from the server's catalogue; none is written here.

/** @typedef {{id: string, title: string, point: string, endpoint: string, request: object, headline: string[]}} Scenario */
/** @typedef {{scenarios: Scenario[], generators: object, weight_presets: object, experiments: object}} Catalogue */
/** @typedef {{scale: "shared"|"channel", extra: boolean}} View */

export const COMPARE = "/api/v1/compare";

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
  if (r.weights && !r.weights.matrix) {
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
  if (files && (files.input || files.weights)) return false;
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
 * The curl command that sends the same request as the page, writing the answer to a file
 * (the JSON without the heatmaps the page draws, which are hundreds of KB of base64).
 * @param {string} origin e.g. "http://127.0.0.1:8000"
 * @param {string} endpoint e.g. "/api/v1/compare"
 * @param {object} request the request as sent (requestToSend)
 * @param {{input?: string, weights?: string}} files names of uploaded files, if any
 * @param {string} format json, png or npz (compare only)
 * @returns {string}
 */
export function curlCommand(origin, endpoint, request, files, format = "json") {
  const compare = endpoint === COMPARE;
  const query = compare ? (format === "json" ? "?format=json&heatmaps=false" : `?format=${format}`) : "";
  const url = shellQuote(`${origin}${endpoint}${query}`);
  const name = compare ? `onebyone.${format}` : `onebyone-${endpoint.split("/").pop()}.json`;
  const out = ` -o ${name}`;
  if (files && (files.input || files.weights)) {
    const parts = [];
    if (files.input) parts.push(`-F ${shellQuote(`input=@${files.input}`)}`);
    if (files.weights) parts.push(`-F ${shellQuote(`weights=@${files.weights}`)}`);
    // --form-string: curl would read ";type=" or ";headers=@FILE" inside a -F value (a layer
    // name from someone's checkpoint can hold them); files stay -F, to be read.
    parts.push(`--form-string ${shellQuote(`spec=${JSON.stringify(request)}`)}`);
    return `curl -sS -X POST ${url} ${parts.join(" ")}${out}`;
  }
  return `curl -sS -X POST ${url} -H 'Content-Type: application/json' -d ${shellQuote(JSON.stringify(request))}${out}`;
}
