// The view's state: scenarios, the request it sends, the URL that restores it, the curl line.
// Pure functions (no DOM), so the browser tests can check them directly.

/** @typedef {{generator: string, height: number, width: number, channels: number, seed: number, layout?: string}} InputSpec */
/** @typedef {{preset?: string, out_channels?: number|null, seed?: number, positive?: number, negative?: number, matrix?: number[][], bias?: number[]|number}} WeightsSpec */
/** @typedef {{input: InputSpec, weights: WeightsSpec, device: string}} Spec */
/** @typedef {{scenario: string|null, spec: Spec, scale: "shared"|"channel", extra: boolean}} View */

/**
 * The one-click scenarios: what each sends, and the point it makes.
 * `headline(result)` states that point with the numbers measured in the response.
 */
export const SCENARIOS = [
  {
    id: "relu-enough",
    title: "Is ReLU alone enough?",
    point:
      "Channel 0 is cat evidence, channel 1 dog evidence. The 1×1 conv computes cat − dog at every pixel, so its ReLU lights exactly where there is more cat than dog; a ReLU sees one value at a time and cannot.",
    spec: {
      input: { generator: "catdog", height: 64, width: 64, channels: 4, seed: 0 },
      weights: { matrix: [[1, -1, 0, 0]], bias: [0] },
      device: "auto",
    },
    headline: (r) => {
      const t = r.truth && r.truth.cat_over_dog;
      if (!t) return "";
      return `1×1 conv + ReLU marks "more cat than dog" with ${pct(t.conv_relu.agreement)} agreement; the best ReLU-only channel (${t.relu_only.best_channel}) reaches only ${pct(t.relu_only.agreement)}.`;
    },
  },
  {
    id: "relu-on-relu",
    title: "ReLU on ReLU output does nothing",
    point:
      "These maps come from an earlier ReLU, so they are already non-negative: relu(relu(x)) = relu(x). The 1×1 conv still mixes them into something new.",
    spec: {
      input: { generator: "nonnegative", height: 28, width: 28, channels: 8, seed: 0 },
      weights: { preset: "random", out_channels: 8, seed: 0 },
      device: "auto",
    },
    headline: (r) =>
      `ReLU-only changed ${r.summary.relu_only_changed} of ${r.summary.relu_only_values} values; the ReLU after the 1×1 conv changed ${r.summary.conv_relu_changed} of ${r.summary.conv_relu_values}.`,
  },
  {
    id: "keep192",
    title: "Keep 192 channels",
    point:
      "The question's case: 28×28×192 in, 192 filters out. The shape stays the same, but every output channel is a new mixture of all 192 input channels (try the identity preset to see the difference vanish).",
    spec: {
      input: { generator: "smooth", height: 28, width: 28, channels: 192, seed: 0 },
      weights: { preset: "random", out_channels: 192, seed: 0 },
      device: "auto",
    },
    headline: (r) => {
      const d = r.summary.paths_max_abs_difference;
      return `Same shape, ${r.shapes.relu_only.join("×")} and ${r.shapes.conv_relu.join("×")}, different content: the outputs differ by up to ${d === null ? "—" : d.toFixed(3)}. Cost: ${num(r.cost.conv1x1.parameters)} parameters, ${num(r.cost.conv1x1.macs)} multiply-adds.`;
    },
  },
  {
    id: "reduce64",
    title: "Reduce 192 → 64",
    point:
      "As in GoogLeNet's first inception block: 64 filters project 192 channels onto the 64 directions that carry the most variance (PCA), the best linear reduction.",
    spec: {
      input: { generator: "smooth", height: 28, width: 28, channels: 192, seed: 0 },
      weights: { preset: "pca", out_channels: 64 },
      device: "auto",
    },
    headline: (r) => {
      const v = r.layer.variance_kept;
      const c3 = r.cost.conv3x3;
      return `64 of 192 channels keep ${v === undefined ? "—" : pct(v)} of the variance, with ${num(r.cost.conv1x1.parameters)} parameters and ${num(r.cost.conv1x1.macs)} multiply-adds (a 3×3 layer to 64 channels: ${num(c3.parameters)} and ${num(c3.macs)}).`;
    },
  },
  {
    id: "identity",
    title: "Identity weights",
    point:
      "With W = I and b = 0, the 1×1 conv + ReLU is exactly ReLU-only: the sanity check that ties the two paths together.",
    spec: {
      input: { generator: "gaussian", height: 28, width: 28, channels: 8, seed: 0 },
      weights: { preset: "identity" },
      device: "auto",
    },
    headline: (r) =>
      r.summary.paths_identical
        ? `Both paths match exactly: all ${r.summary.relu_only_values} values are identical (max |difference| = 0).`
        : `The paths differ by up to ${fmtNum(r.summary.paths_max_abs_difference)}.`,
  },
  {
    id: "photo",
    title: "A real photo",
    point:
      "Real pictures work too: this photo, drawn by the project at run time, becomes 9 signed early-vision feature maps (luminance, colour opponents, oriented edges, centre-surround). A 1×1 conv mixes them; PCA to 3 shows how much they share.",
    spec: {
      input: { generator: "photo", height: 96, width: 128, channels: 9, seed: 0 },
      weights: { preset: "pca", out_channels: 3 },
      device: "auto",
    },
    headline: (r) =>
      `${r.shapes.input[0]} feature maps of the photo reduced to 3 keep ${r.layer.variance_kept === undefined ? "—" : pct(r.layer.variance_kept)} of the variance; ReLU-only zeroed ${r.summary.relu_only_changed.toLocaleString("en-US")} of ${r.summary.relu_only_values.toLocaleString("en-US")} values.`,
  },
];

/** Scenarios that run an experiment endpoint instead of /api/v1/compare (experiments.js). */
export const EXPERIMENT_IDS = ["neighbours", "fit", "bottleneck"];

function pct(x) {
  return `${(100 * x).toFixed(1)}%`;
}

function num(x) {
  return Number(x).toLocaleString("en-US");
}

function fmtNum(x) {
  return x === null || x === undefined ? "—" : Number(x).toPrecision(3);
}

/**
 * A deep copy of a scenario's spec, or of the default view.
 * @param {string|null} id
 * @returns {View}
 */
export function viewFor(id) {
  const s = SCENARIOS.find((x) => x.id === id) || SCENARIOS[0];
  const scenario = EXPERIMENT_IDS.includes(id) ? id : s.id;
  return { scenario, spec: structuredClone(s.spec), scale: "shared", extra: false };
}

/**
 * The URL query that restores a view.
 * @param {View} view
 * @returns {string} e.g. "?scenario=identity&spec=...&scale=shared"
 */
export function toQuery(view) {
  const q = new URLSearchParams();
  if (view.scenario) q.set("scenario", view.scenario);
  q.set("spec", JSON.stringify(view.spec));
  q.set("scale", view.scale);
  if (view.extra) q.set("extra", "1");
  return `?${q.toString()}`;
}

/**
 * The view a URL query describes; anything missing or malformed falls back to the default.
 * @param {string} search location.search
 * @returns {View}
 */
export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const view = viewFor(q.get("scenario"));
  if (!q.get("scenario")) view.scenario = q.get("spec") ? null : view.scenario;
  try {
    const spec = JSON.parse(q.get("spec") || "null");
    if (spec && typeof spec === "object" && spec.input && spec.weights) {
      view.spec = { input: spec.input, weights: spec.weights, device: spec.device || "auto" };
    }
  } catch {
    // A hand-edited link with broken JSON: keep the scenario's spec.
  }
  view.scale = q.get("scale") === "channel" ? "channel" : "shared";
  view.extra = q.get("extra") === "1";
  return view;
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
 * The curl command that sends the same request as the page.
 * @param {string} origin e.g. "http://127.0.0.1:8000"
 * @param {Spec} spec the spec as sent (without the weights a weights file replaces)
 * @param {{input?: string, weights?: string}} files names of uploaded files, if any
 * @param {string} format json, png or npz
 * @returns {string}
 */
export function curlCommand(origin, spec, files, format = "json") {
  const url = shellQuote(`${origin}/api/v1/compare?format=${format}`);
  const out = format === "json" ? "" : ` -o onebyone.${format}`;
  if (files && files.input) {
    const parts = [`-F ${shellQuote(`input=@${files.input}`)}`];
    if (files.weights) parts.push(`-F ${shellQuote(`weights=@${files.weights}`)}`);
    parts.push(`-F ${shellQuote(`spec=${JSON.stringify(spec)}`)}`);
    return `curl -sS -X POST ${url} ${parts.join(" ")}${out}`;
  }
  return `curl -sS -X POST ${url} -H 'Content-Type: application/json' -d ${shellQuote(JSON.stringify(spec))}${out}`;
}
