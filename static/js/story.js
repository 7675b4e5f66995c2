// Every sentence the page states, computed from a response (and the request that produced
// it). Pure functions, no DOM. Only the wording lives here; which facts a scenario leads
// with comes from the catalogue (scenario.headline).

import { fmt } from "./heatmap.js";

/** @param {number} x a share 0..1 @returns {string} e.g. "88.9%" */
export const pct = (x) => `${(100 * x).toFixed(1)}%`;
/** @param {number} x @returns {string} e.g. "1,204,224" */
export const num = (x) => Number(x).toLocaleString("en-US");
const dims = (shape) => shape.join("×");

/**
 * A checkpoint's layer name, quoted: nn.Sequential names layers "0", "1", which would read as counts.
 * @param {string} name e.g. "0", "layer1.0.conv1"
 * @returns {string} e.g. "layer ‘0’"
 */
export const layer = (name) => `layer ‘${name}’`;
/** @param {string} name a batch norm's name @returns {string} e.g. "batch norm ‘1’" */
export const bnName = (name) => `batch norm ‘${name}’`;
const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many}`;

// What each ground-truth mask the server may send means, in words.
const TRUTH_LABELS = { cat_over_dog: "more cat than dog", edge: "an edge" };

/**
 * A mask's name in words.
 * @param {string} name e.g. "cat_over_dog"
 * @returns {string}
 */
export function truthLabel(name) {
  return TRUTH_LABELS[name] || name.replace(/_/g, " ");
}

/**
 * A loss or error in words: values that are float rounding noise next to `ref` read
 * "0 (float precision)".
 * @param {number} v
 * @param {number} ref a typical size of the quantity (e.g. the first loss)
 * @returns {string}
 */
export function tiny(v, ref) {
  return Math.abs(v) <= Math.abs(ref) * 1e-9 ? "0 (float precision)" : fmt(v);
}

/**
 * A learned weight to 3 decimals, with magnitudes below 0.0005 as "0.000" (no "-0.00").
 * @param {number} v
 * @returns {string}
 */
export function weightText(v) {
  // One format for every weight and the bias: three decimals ("1.000", "−1.000", "0.000").
  if (Math.abs(v) < 5e-4) return "0.000";
  return Math.abs(v) < 1000 ? `${v < 0 ? "−" : ""}${Math.abs(v).toFixed(3)}` : fmt(v, 3);
}

/**
 * One row of W and its bias as a formula over named channels, e.g. "relu(cat evidence − dog evidence)".
 * @param {number[]} row
 * @param {number} bias
 * @param {string[]} names channel names
 * @param {number} limit terms shown before "…"
 * @returns {string}
 */
export function symbolic(row, bias, names, limit = 6) {
  const terms = row.map((w, j) => [w, names[j] || `c${j}`]).filter(([w]) => w !== 0);
  const parts = terms.slice(0, limit).map(([w, name], i) => {
    const mag = Math.abs(w) === 1 ? name : `${fmt(Math.abs(w))}·${name}`;
    if (i === 0) return w < 0 ? `−${mag}` : mag;
    return `${w < 0 ? "−" : "+"} ${mag}`;
  });
  if (terms.length > limit) parts.push(`+ … (${terms.length - limit} more terms)`);
  if (!parts.length) parts.push("0");
  if (bias) parts.push(`${bias < 0 ? "−" : "+"} ${fmt(Math.abs(bias))}`);
  return `relu(${parts.join(" ")})`;
}

function agreementVerdict(conv, relu, zero) {
  const [a, b] = [pct(conv), pct(relu)];
  if (a === b) return "Both paths agree equally well.";
  const points = Math.abs(100 * (conv - relu)).toFixed(1);
  const lead = conv > relu ? `The 1×1 conv + ReLU is ahead by ${points} points` : `ReLU-only is ahead by ${points} points with these weights`;
  const behind = conv > relu ? relu : conv;
  return behind <= zero ? `${lead}; the other is no better than the all-zero map.` : `${lead}.`;
}

/**
 * The facts a compare response supports, each one sentence, keyed by the names scenarios use
 * in their `headline` list. Only facts the response has numbers for are present.
 * @param {object} r the CompareReport
 * @returns {Record<string, string>}
 */
export function facts(r) {
  const out = {};
  const s = r.summary;
  const [c, h, w] = r.shapes.input;
  const k = r.shapes.weight[0];
  const truth = Object.entries(r.truth || {});
  if (truth.length) {
    const [name, t] = truth[0];
    const zero = 1 - t.fraction_true;
    out.truth =
      `Marking "${truthLabel(name)}" (true on ${pct(t.fraction_true)} of pixels): ` +
      `1×1 conv + ReLU ${pct(t.conv_relu.agreement)} agreement (output ${t.conv_relu.best_channel}), ` +
      `best ReLU-only channel (${t.relu_only.best_channel}) ${pct(t.relu_only.agreement)}, ` +
      `an all-zero map ${pct(zero)}. ${agreementVerdict(t.conv_relu.agreement, t.relu_only.agreement, zero)}`;
  }
  const nonNegative = r.stats.input.min.every((v) => v >= 0);
  const conv = `the ReLU after the 1×1 conv changed ${num(s.conv_relu_changed)} of ${num(s.conv_relu_values)} (${pct(s.conv_relu_changed / s.conv_relu_values)})`;
  out.changed =
    s.relu_only_changed === 0 && nonNegative
      ? `The input is already non-negative, so ReLU-only changed nothing: 0 of ${num(s.relu_only_values)} values; ${conv}.`
      : `ReLU-only changed ${num(s.relu_only_changed)} of ${num(s.relu_only_values)} values (${pct(s.relu_only_changed / s.relu_only_values)}); ${conv}.`;
  if (k === c) {
    out.shape = s.paths_identical
      ? `Both paths give exactly the same ${dims(r.shapes.relu_only)} output: all ${num(s.relu_only_values)} values identical.`
      : `Same shape (${dims(r.shapes.relu_only)}), different values: the two outputs differ by up to ${fmt(s.paths_max_abs_difference)}.`;
  } else {
    out.shape = `${plural(k, "filter turns", "filters turn")} ${c} channels into ${k}: ${dims(r.shapes.conv_relu)} against ReLU-only's ${dims(r.shapes.relu_only)}.`;
  }
  const v = r.layer.variance_kept;
  if (v !== null && v !== undefined) {
    const best = r.layer.component_variance ? `, the most any ${k} filters can keep on these maps` : "";
    out.variance = `The ${plural(k, "output keeps", "outputs keep")} ${pct(v)} of the input's variance (the share a best linear read-out of them recovers)${best}.`;
  }
  const c1 = r.cost.conv1x1;
  const c3 = r.cost.conv3x3;
  out.cost = `The 1×1 layer (${c} → ${k} channels on ${h}×${w}) costs ${num(c1.parameters)} parameters and ${num(c1.macs)} multiply-adds; a 3×3 layer with the same channels ${num(c3.parameters)} and ${num(c3.macs)}.`;
  return out;
}

const GENERIC = ["truth", "shape", "variance", "changed"];

/**
 * The headline for what is on screen: the scenario's facts while its premise holds, else the
 * facts that fit any settings.
 * @param {string[]} lead the scenario's headline list
 * @param {boolean} holds whether the request is still the scenario's
 * @param {object} r the CompareReport shown
 * @returns {string}
 */
export function headline(lead, holds, r) {
  const f = facts(r);
  const order = holds && lead.length ? lead : GENERIC;
  return order
    .map((name) => f[name])
    .filter(Boolean)
    .slice(0, 3)
    .join(" ");
}

const COMMON = ["height", "width", "channels", "seed"];

/**
 * What the settings on screen are, in words: the description that replaces a scenario's point
 * once the learner's edits leave its premise.
 * @param {object} request the request the shown response answers
 * @param {string} endpoint where it was sent
 * @param {object|null} r the response (compare report, or an experiment's result)
 * @param {object} catalogue
 * @param {{input?: string, weights?: string}} files names of uploaded files
 * @returns {string}
 */
export function describe(request, endpoint, r, catalogue, files) {
  const parts = [];
  const input = request.input || {};
  if (files.input) {
    parts.push(`Input: your file ${files.input}${r && r.shapes ? `, ${dims(r.shapes.input)} (C×H×W)` : ""}.`);
  } else if (input.generator) {
    const g = catalogue.generators[input.generator];
    const own = g
      ? Object.keys(g.params)
          .filter((p) => !COMMON.includes(p))
          .map((p) => `${p} ${input[p] ?? g.params[p].default}`)
      : [];
    // The sizes the server used (a blank field is its default), not the fields as typed.
    const def = (key) => (g && g.params[key] ? g.params[key].default : undefined);
    const size = r && r.shapes ? dims(r.shapes.input) : ["channels", "height", "width"].map((key) => input[key] ?? def(key)).join("×");
    parts.push(
      `Input: ${size} maps (C×H×W) from the ${input.generator} generator, seed ${input.seed ?? def("seed") ?? 0}${own.length ? `, ${own.join(", ")}` : ""}.` +
        (g ? ` ${g.description}` : ""),
    );
  }
  const wts = request.weights;
  const yours = r && r.layer ? ownLayer(r, files) : "";
  if (yours) {
    parts.push(`Weights: ${yours}.`);
  } else if (files.weights) {
    parts.push(`Weights: your 1×1 layer ${files.weights}.`);
  } else if (wts && wts.matrix) {
    const names = (r && r.channel_names) || [];
    const bias = Array.isArray(wts.bias) ? wts.bias : wts.matrix.map(() => Number(wts.bias || 0));
    parts.push(
      wts.matrix.length <= 4
        ? `Weights you set: ${wts.matrix.map((row, i) => `output ${i} = ${symbolic(row, bias[i], names)}`).join("; ")}.`
        : `Weights you set: an explicit ${wts.matrix.length}×${wts.matrix[0].length} matrix W and its bias.`,
    );
  } else if (wts) {
    // No preset named (the one-click fix sends {}): the one the server says it used.
    const served = r && typeof r.weights_source === "string" && r.weights_source.startsWith("preset:") ? r.weights_source.slice(7) : "";
    const name = wts.preset || served || "default";
    const p = catalogue.weight_presets[name];
    const k = r && r.shapes ? r.shapes.weight[0] : wts.out_channels;
    const params = p
      ? Object.keys(p.params)
          .filter((key) => key !== "out_channels" && wts[key] !== undefined)
          .map((key) => `${key} ${JSON.stringify(wts[key])}`)
      : [];
    parts.push(
      `Weights: the ${name} preset with K = ${k}${params.length ? `, ${params.join(", ")}` : ""}.` + (p ? ` ${p.description}` : ""),
    );
  }
  const own = Object.keys((catalogue.experiments || {})[endpoint] || {});
  const given = own.filter((key) => request[key] !== undefined).map((key) => `${key} ${JSON.stringify(request[key])}`);
  if (given.length) parts.push(`Experiment settings: ${given.join(", ")}.`);
  return parts.join(" ");
}

/**
 * The layer a response used when it came from the learner's own file, in words; "" otherwise.
 * @param {object} r the CompareReport
 * @param {{input?: string, weights?: string}} files names of uploaded files
 * @returns {string} e.g. "layer1.0.conv1 of your checkpoint model.pt, with layer1.0.bn1 folded in (ε 0.00001)"
 */
export function ownLayer(r, files) {
  const l = r.layer;
  const [k, c] = r.shapes.weight;
  if (r.weights_source.startsWith("input-file:")) {
    return `the ${c} → ${k} layer that came with your file ${files.input} (from onebyone capture, its batch norm already folded)`;
  }
  if (l.checkpoint_layer === null || l.checkpoint_layer === undefined) return "";
  const name = l.checkpoint_layer ? `${layer(l.checkpoint_layer)} of your checkpoint ${files.weights}` : `your 1×1 layer ${files.weights}`;
  let bn = "";
  if (l.batchnorm) bn = `, with ${bnName(l.batchnorm.name)} folded in (ε ${l.batchnorm.eps}${l.batchnorm.affine ? "" : ", no γ and β"})`;
  else if (l.batchnorm_follows) bn = `, raw: without ${bnName(l.batchnorm_follows)}, the batch norm after it`;
  return `${name} (${c} → ${k} channels)${bn}`;
}

/**
 * What a checkpoint's listing offers, in words.
 * @param {object} listing CheckpointLayers
 * @param {string} file its name
 * @returns {string}
 */
export function listingText(listing, file) {
  const ones = listing.layers;
  if (ones.length === 1 && !ones[0].name) {
    const l = ones[0];
    return `${file}: one 1×1 layer, ${l.in_channels} → ${l.out_channels} channels${l.bias ? ", with a bias" : ""}.`;
  }
  const wrap = listing.wrappers.length ? `; ${listing.wrappers.map((w) => `“${w}”`).join(", ")} unwrapped` : "";
  const other = listing.other_convs ? ` ${plural(listing.other_convs, "larger conv is", "larger convs are")} not offered.` : "";
  return `${file} (${listing.format}${wrap}): ${plural(ones.length, "1×1 conv", "1×1 convs")} and ${plural(listing.batchnorms, "batch norm", "batch norms")}.${other}`;
}

/**
 * One layer of a listing, for its option in the layer select.
 * @param {object} l CheckpointLayer
 * @returns {string} e.g. "layer1.0.conv1 · 16 → 8 · then layer1.0.bn1"
 */
export function layerOption(l) {
  return `‘${l.name}’ · ${l.in_channels} → ${l.out_channels}${l.bias ? " + bias" : ""}${l.batchnorm ? ` · then ‘${l.batchnorm.name}’` : ""}`;
}

/**
 * The chosen layer in a sentence: its sizes and the batch norm after it.
 * @param {object} l CheckpointLayer
 * @returns {string}
 */
export function layerNote(l) {
  const size = `${plural(l.out_channels, "filter", "filters")} over ${plural(l.in_channels, "channel", "channels")}, ${l.bias ? "with" : "no"} bias.`;
  if (!l.batchnorm) return `${size} No batch norm follows it by name: the conv is the layer.`;
  const bn = l.batchnorm;
  const mismatch = bn.channels !== l.out_channels ? ` It has ${bn.channels} channels, not ${l.out_channels}, so it cannot be folded.` : "";
  return `${size} ${bnName(bn.name)} follows it${bn.affine ? "" : " (no γ and β)"}.${mismatch}`;
}

/**
 * What the maps of a network's layer show, from the response on screen.
 * @param {object} r the CompareReport
 * @param {{input?: string, weights?: string}} files names of uploaded files
 * @returns {string}
 */
export function networkResult(r, files) {
  const l = r.layer;
  if (r.weights_source.startsWith("input-file:")) {
    return `The layer came with ${files.input}, with its batch norm folded by onebyone capture: the right column is what your network computes after that ReLU.`;
  }
  if (l.checkpoint_layer === null || l.checkpoint_layer === undefined) {
    return files.input ? `${files.input} holds activations only, no layer: choose the checkpoint above. Until then the maps use the ${r.weights_source.replace("preset:", "")} preset.` : "";
  }
  const name = l.checkpoint_layer ? layer(l.checkpoint_layer) : files.weights;
  if (l.batchnorm) {
    return `${name} with ${bnName(l.batchnorm.name)} folded in: W′ = γ/√(σ² + ε)·W and b′ = γ(b − μ)/√(σ² + ε) + β, so relu(W′·x + b′) is what your network computes after that ReLU.`;
  }
  if (l.batchnorm_follows) {
    return `The raw conv ${name}, without ${bnName(l.batchnorm_follows)}: relu(W·x + b) is not what your network computes, which normalises before its ReLU.`;
  }
  return `${l.checkpoint_layer ? `The ${name}` : name} as the file has it: no batch norm follows it by name.`;
}

/**
 * The 1×1 vs 3×3 experiment in words.
 * @param {object} r ReceptiveFieldResult
 * @returns {string}
 */
export function neighboursHeadline(r) {
  const e = r.edges;
  const n1 = r.changed.conv1x1.length;
  const n3 = r.changed.conv3x3.length;
  const c1 = r.cost.conv1x1;
  const c3 = r.cost.conv3x3;
  return (
    `Changing input pixel (${r.pixel.join(", ")}) moved the 1×1 output at ${plural(n1, "pixel", "pixels")} and the 3×3 output at ${plural(n3, "pixel", "pixels")}. ` +
    `Marking edges (true on ${pct(e.fraction)} of pixels): the 3×3 edge layer reaches ${pct(e.conv3x3_agreement)} agreement; ` +
    `no stack of 1×1 layers can pass ${pct(e.best_1x1_agreement)}, because pixels with the same channel vector lie on both sides of an edge; an all-zero map scores ${pct(1 - e.fraction)}. ` +
    `Cost per layer: 1×1 ${num(c1.parameters)} parameters and ${num(c1.macs)} multiply-adds, 3×3 ${num(c3.parameters)} and ${num(c3.macs)}.`
  );
}

/**
 * The fit experiment in words, from its result (or the progress so far).
 * @param {{conv_loss: number[], relu_only_loss: number[], relu_only_floor?: number|null, conv_weight?: number[][], conv_bias?: number[]}} r
 * @param {number} steps steps run
 * @returns {string}
 */
export function fitHeadline(r, steps) {
  const conv = r.conv_loss[r.conv_loss.length - 1];
  const relu = r.relu_only_loss[r.relu_only_loss.length - 1];
  const ref = Math.max(r.conv_loss[0], r.relu_only_loss[0]);
  const floor = r.relu_only_floor ?? null;
  const bound = floor ?? relu;
  const out = [
    `After ${plural(steps, "step", "steps")} the 1×1 conv + ReLU reaches a mean squared error of ${tiny(conv, ref)}; ` +
      `the best ReLU-only model ${tiny(relu, ref)}` +
      (floor !== null ? `, and no per-channel model relu(a·x_c + b) can go below ${tiny(floor, ref)}.` : "."),
    conv < bound
      ? "Mixing channels fits what no ReLU of single channels can."
      : "With these settings the 1×1 conv + ReLU has not gone below the per-channel bound.",
  ];
  if (r.conv_weight && r.conv_weight.length === 1) {
    out.push(`Learned weights W = (${r.conv_weight[0].map(weightText).join(", ")}), b = ${weightText(r.conv_bias[0])}.`);
  }
  return out.join(" ");
}

/**
 * The bottleneck experiment in words.
 * @param {object} r BottleneckResult
 * @returns {string}
 */
export function bottleneckHeadline(r) {
  const k = Math.min(16, r.channels);
  const row = r.rows[k - 1];
  const reach = (share) => {
    const hit = r.rows.find((x) => x.variance_kept >= share);
    return hit ? hit.k : null;
  };
  const k90 = reach(0.9);
  const k99 = reach(0.99);
  const n = `${r.kernel}×${r.kernel}`;
  return (
    `Reducing ${r.channels} channels to ${k} before the ${n} conv keeps ${pct(row.variance_kept)} of these maps' variance and costs ` +
    `${((100 * row.macs) / r.direct.macs).toFixed(0)}% of the multiply-adds of the ${n} conv alone (${num(row.macs)} against ${num(r.direct.macs)}). ` +
    (k90 ? `${k90} filters keep 90%` : "") +
    (k99 ? `, ${k99} keep 99%.` : ".")
  );
}
