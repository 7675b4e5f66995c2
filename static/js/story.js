// Every sentence the page writes (the server's own words aside): what a response shows, and the
// labels, notes, hints and messages of the settings, panels and experiments. Pure functions and
// constants, no DOM. Only the wording lives here; which facts a scenario leads with comes from
// the catalogue (scenario.headline), and the panels' titles from the server.

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
 * @param {object|null} [counts] what the page counted in its maps (heatmap.js layerCounts), for a network's layer
 * @returns {Record<string, string>}
 */
export function facts(r, counts = null) {
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
  const bestV = r.layer.best_variance_kept;
  if (v !== null && v !== undefined && r.layer.network && !r.layer.classes && bestV !== null && bestV !== undefined) {
    out.variance =
      `The trained layer's ${plural(k, "output keeps", "outputs keep")} ${pct(v)} of its input's variance (the share a best linear read-out of them recovers); ` +
      `the best any ${num(k)} filters can keep on the same activations (PCA) is ${pct(bestV)}. It was trained for the network's task, not to keep variance.`;
  } else if (v !== null && v !== undefined && !r.layer.classes) {
    // (A few classes' filters are no reduction of the input: their variance says nothing.)
    const best = r.layer.component_variance ? `, the most any ${k} filters can keep on these maps` : "";
    out.variance = `The ${plural(k, "output keeps", "outputs keep")} ${pct(v)} of the input's variance (the share a best linear read-out of them recovers)${best}.`;
  }
  if (r.layer.network) Object.assign(out, networkFacts(r, counts));
  const c1 = r.cost.conv1x1;
  const c3 = r.cost.conv3x3;
  out.cost = `The 1×1 layer (${c} → ${k} channels on ${h}×${w}) costs ${num(c1.parameters)} parameters and ${num(c1.macs)} multiply-adds; a 3×3 layer with the same channels ${num(c3.parameters)} and ${num(c3.macs)}.`;
  return out;
}

const GENERIC = ["truth", "shape", "variance", "changed"];
// A trained network's layer: what matters most for the kind of layer it is comes first.
const NETWORK_GENERIC = ["classes", "variance", "linear", "changed", "mixes", "relu6"];

/**
 * The facts of a trained network's layer, counted from the report and its maps.
 * @param {object} r the CompareReport (its layer is a network's)
 * @param {object|null} counts heatmap.js layerCounts of its maps
 * @returns {Record<string, string>}
 */
function networkFacts(r, counts) {
  const out = {};
  const l = r.layer;
  const s = r.summary;
  const [c, h, w] = r.shapes.input;
  const k = r.shapes.weight[0];
  if (!counts) return out;
  const drawn = counts.stride > 1 ? ` of those drawn (one pixel in ${counts.stride * counts.stride})` : "";
  if (l.activation === "relu6") {
    const o = counts.over6;
    out.relu6 =
      o.above === 0
        ? `The network applies ReLU6, min(max(W·x + b, 0), 6), where this page applies ReLU: here no value of W·x + b${drawn} is over 6 (the largest is ${fmt(o.max)}), so the two agree on all ${num(o.total)}.`
        : `The network applies ReLU6, min(max(W·x + b, 0), 6), where this page applies ReLU: ${num(o.above)} of the ${num(o.total)} values of W·x + b${drawn} (${pct(o.above / o.total)}) are over 6, up to ${fmt(o.max)}; there ReLU keeps them and ReLU6 gives 6. Everywhere else the two agree.`;
  }
  if (l.activation === "none" && !l.classes && k < 1000) {
    out.linear =
      `MobileNetV2 puts no activation after this layer (a linear bottleneck), so the ReLU on the right is this page's, not the network's: ` +
      `it would zero ${num(s.conv_relu_changed)} of the ${num(s.conv_relu_values)} outputs (${pct(s.conv_relu_changed / s.conv_relu_values)}), every negative one, which the next block reads.`;
  }
  const mixes = counts.mixes;
  if (!l.classes && mixes.length) {
    const share = mixes.reduce((a, m) => a + m.share, 0) / mixes.length;
    const nz = mixes.map((m) => m.nonzero);
    const lo = Math.min(...nz);
    const hi = Math.max(...nz);
    const all = lo === c ? `all ${num(c)}` : lo === hi ? `${num(lo)} of the ${num(c)}` : `${num(lo)} to ${num(hi)} of the ${num(c)}`;
    out.mixes =
      `${k === 1 ? "Its output mixes" : `Each of the ${num(k)} outputs mixes`} ${all} input channels; on average its 3 largest weights carry ${pct(share)} of its total |w| ` +
      `(output 0: ${mixText(mixes[0])}). “What each output mixes” lists them all.`;
  }
  if (l.checkpoint_layer && r.network && l.activation === "none" && (l.classes || k === 1000)) {
    const n = h * w;
    const mean = counts.means[0];
    if (l.classes && l.classes.length === 1) {
      const a = l.classes[0];
      const pos = counts.positive0;
      if (l.minus) {
        const where = pos === n ? `at all ${num(n)} pixels` : pos === 0 ? `at none of the ${num(n)} pixels` : `at ${num(pos)} of the ${num(n)} pixels`;
        out.classes =
          `W[${a}] − W[${l.minus}] · x + b is positive ${where} of the ${h}×${w} map: there the network sees more ${a} than ${l.minus}. ` +
          `Its mean over the pixels, ${fmt(mean)}, is the logit of ${a} minus that of ${l.minus}.`;
      } else {
        out.classes = `W[${a}] · x + b is the score of ${a} at each of the ${num(n)} pixels of the ${h}×${w} map; its mean over them, ${fmt(mean)}, is the network's logit for ${a}.`;
      }
    } else if (l.classes) {
      out.classes = `${num(l.classes.length)} classes' filters${l.minus ? `, each minus W[${l.minus}],` : ""} at every pixel of the ${h}×${w} map; each one's mean over the pixels is ${l.minus ? "a difference of logits" : "that class's logit"}.`;
    } else {
      const top = r.network.top5[0];
      out.classes = `The classifier's ${num(k)} filters at every pixel of the ${h}×${w} map: each one's mean over the pixels is that class's logit, so the highest mean is ${top.name}'s (${pct(top.probability)} after softmax).`;
    }
  }
  return out;
}

/**
 * One output's largest weights as a sum over input channels, e.g. "0.83·c5 − 0.61·c12 + 0.44·c30 + …".
 * @param {{top: {c: number, w: number}[], nonzero: number}} m heatmap.js largestWeights
 * @returns {string}
 */
export function mixText(m) {
  const parts = m.top.map((t, i) => {
    const mag = `${fmt(Math.abs(t.w), 3)}·c${t.c}`;
    return i === 0 ? `${t.w < 0 ? "−" : ""}${mag}` : `${t.w < 0 ? "−" : "+"} ${mag}`;
  });
  if (m.nonzero > m.top.length) parts.push("+ …");
  return parts.join(" ") || "0";
}

/**
 * The headline for what is on screen: the scenario's facts while its premise holds, else the
 * facts that fit any settings (a trained network's layer has its own).
 * @param {string[]} lead the scenario's headline list
 * @param {boolean} holds whether the request is still the scenario's
 * @param {object} r the CompareReport shown
 * @param {object|null} [counts] heatmap.js layerCounts of its maps, for a network's layer
 * @returns {string}
 */
export function headline(lead, holds, r, counts = null) {
  const f = facts(r, counts);
  const order = holds && lead.length ? lead : r.layer.network ? NETWORK_GENERIC : GENERIC;
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
 * @param {{input?: string, weights?: string, photo?: string}} files names of uploaded files
 * @returns {string}
 */
export function describe(request, endpoint, r, catalogue, files) {
  const parts = [];
  const input = request.input || {};
  const net = input.generator ? (catalogue.networks || {})[input.network ?? (catalogue.generators[input.generator]?.params.network || {}).default] : null;
  if (files.input) {
    parts.push(`Input: your file ${files.input}${r && r.shapes ? `, ${dims(r.shapes.input)} (C×H×W)` : ""}.`);
  } else if (net && catalogue.generators[input.generator].params.layer) {
    const params = catalogue.generators[input.generator].params;
    const name = input.layer ?? params.layer.default;
    const l = net.layers.find((x) => x.name === name);
    const size = r && r.shapes ? `${dims(r.shapes.input)} maps (C×H×W): ` : "";
    parts.push(`Input: ${size}a trained network's activations, what ${networkName(net)} feeds ${l ? layerRef(l) : `‘${name}’`} when it sees ${photoRef(input.photo ?? params.photo.default, files.photo)}.`);
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
  const yours = r && r.layer && !(wts && wts.network) ? ownLayer(r, files) : "";
  if (wts && wts.network) {
    const entry = (catalogue.networks || {})[wts.network];
    parts.push(`Weights: ${trainedWeights(wts, r, entry ? networkName(entry) : wts.network)}.`);
  } else if (yours) {
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

/**
 * The fit experiment's headline, finished or cancelled.
 * @param {object} r FitResult, or {cancelled, step, conv_loss, relu_only_loss}
 * @param {object} request the request sent (its `steps`)
 * @returns {string}
 */
export function fitViewHeadline(r, request) {
  return r.cancelled
    ? `Cancelled at step ${num(r.step)}. ${r.conv_loss.length ? fitHeadline(r, r.step) : ""}`
    : fitHeadline(r, r.conv_loss.length || Number(request.steps));
}

// ---------------------------------------------------------------- status and errors

/**
 * A request that got no answer, in words.
 * @param {string} why the browser's message
 * @returns {string}
 */
export const unreachable = (why) => `The server could not be reached: ${why}`;

/**
 * The status line under the headline.
 * @param {"pending"|"waiting"|"error"|"ready"|"unavailable"} status
 * @param {{reading: string|null, notSent: boolean, detail?: string}} on the checkpoint being read; whether the error is a value
 *   that was not sent; why the network is unavailable (the catalogue's detail)
 * @returns {string}
 */
export function statusLine(status, on) {
  if (status === "unavailable") return `Not computed: this server has no trained network to run. ${on.detail || ""}`.trim();
  if (status === "pending") return on.reading ? readingLayers(on.reading) : "Computing your new settings…";
  if (status === "waiting") {
    return "Waiting for the activations that feed your layer (step 2 under “Your own network”). What you see is from the previous settings.";
  }
  if (status === "error") {
    return on.notSent
      ? "Not updated: a value you typed cannot be sent (the message is next to the control). What you see is from the previous settings."
      : "Not updated: the server refused the current settings (the message is next to the control). What you see is from the previous settings.";
  }
  return "";
}

/**
 * The words of the link from the weight grid to the result (on a phone): the main number on screen.
 * @param {"pending"|"waiting"|"error"|"ready"} status
 * @param {object|null} r the CompareReport on screen, if any
 * @returns {string}
 */
export function resultLink(status, r) {
  if (status === "error") return "Not updated: see why ↓";
  if (status !== "ready") return "Computing… the result is below ↓";
  if (!r) return "See the result ↓";
  const t = Object.values(r.truth || {})[0];
  const what = t
    ? `1×1 conv + ReLU ${pct(t.conv_relu.agreement)}, ReLU-only ${pct(t.relu_only.agreement)} agreement`
    : `the ReLU after the 1×1 conv changed ${pct(r.summary.conv_relu_changed / r.summary.conv_relu_values)} of values`;
  return `Updated: ${what}. See the result ↓`;
}

/**
 * An error as the page shows it.
 * @param {{status: number, detail: string}} err
 * @returns {string}
 */
export const errorText = (err) => `${err.status ? `${err.status}: ` : ""}${err.detail}`;

/** What a value typed into a control that cannot be sent says. */
export const invalid = {
  /** @param {string} name the field's last part, e.g. "pixel" */
  pair: (name) => `${name}: two whole numbers [y, x], or both empty for the centre`,
  /** @param {string} label @param {string} text as typed @param {boolean} whole it is a number, not a whole one */
  number: (label, text, whole) => `${label}: ${whole ? `${text.trim()} is not a whole number` : "not a number"}; nothing was sent.`,
  /** @param {string} name e.g. "out 1 c2", "b" @param {boolean} empty */
  cell: (name, empty) => `${name}: ${empty ? "empty, type a number (0 for none)" : "not a number"}; nothing was sent.`,
};

/** The one-click fixes offered next to a weights error. */
export const fixes = {
  /** @param {number} c */
  fitW: (c) => `Fit W to C = ${c} (pad with 0 or drop columns)`,
  defaultWeights: "Use the default weights (one filter per input channel)",
};

// ---------------------------------------------------------------- the settings

/** A parameter's label, by its name in the catalogue. */
export function paramLabel(name) {
  const labels = { height: "H (height)", width: "W (width)", channels: "C (channels)", out_channels: "K (filters)", bias: "b (bias, every filter)" };
  return labels[name] || name.replace(/_/g, " ");
}

/** Words on the settings that do not depend on the response. */
export const settingsText = {
  explicitMatrix: "explicit matrix (edit W below)",
  explicitMatrixHint: "The weights you set in the grid below",
  autoDevice: (d, first) => `${d} (picks ${first})`,
  autoDeviceHint: "The best device present",
  device: (d, name) => `${d} — ${name || d}`,
  absentDevice: (d) => `${d} — not available on this server`,
  absentDeviceHint: "This server has no such device",
  accepted: (description, extensions) => `${description} Accepted: ${extensions.join(" ")}`,
  checkpointHint: (extensions) =>
    `A state dict as torch.save writes it (read with weights_only=True; {"state_dict": …} and module. prefixes are fine), ` +
    `or a file from onebyone capture. Accepted: ${extensions.join(" ")}`,
  activationsHint: (extensions) =>
    `What goes into that layer for one image, (C, H, W): from a forward hook, or from onebyone capture, whose file holds the layer too (then it is all you need). ` +
    `Accepted: ${extensions.join(" ")}`,
  batchnormLegend: "The batch norm after it",
  /** @param {string} name */
  batchnormAfter: (name) => `The batch norm after it, ‘${name}’`,
  centre: "centre",
  serverDefault: "default",
  pairLegend: (name) => `${name} [y, x]`,
  pairAxis: (name, axis) => `${name} ${axis}`,
  resetTo: (title) => `Back to “${title}” as it was`,
  /** The badge on a scenario button whose settings were changed. */
  changed: "changed",
};

/** The weight grid's labels. */
export const gridText = {
  filter: (i) => `filter ${i}: weights of each input channel, then its bias`,
  row: (i) => `out ${i}`,
  column: (j) => (j === "bias" ? "b" : `c${j}`),
  /** A cell's name in messages: the row only where there are several. */
  cell: (k, c, rows) => `${rows > 1 ? `out ${k} ` : ""}${c === "bias" ? "b" : `c${c}`}`,
};

/** Notes under the weight grid. */
export const matrixText = {
  fromScreen: "The weights on screen, to 4 significant digits: edit any of them.",
  nowExplicit: "Now an explicit matrix: the preset's weights to 4 significant digits, with your edits.",
  /** @param {number} k @param {number} c @param {number} max the largest grid */
  tooBig: (k, c, max) =>
    `No grid to edit: W is ${k} × ${c}, and the grid edits W cell by cell only up to ${max} × ${max}. ` +
    "Pick a preset above, upload a weights file (“Your own 1×1 layer…”), or send the matrix through the API (the curl command under “Share and export”).",
  /** @param {string} conv the layer's name @param {string} bn its batch norm's */
  folded: (conv, bn) => `W′ and b′: ${layer(conv)} with ${bnName(bn)} folded in.`,
  /** @param {number} k @param {number} c @param {number} lo @param {number} hi */
  range: (k, c, lo, hi) => `W: ${k} × ${c}, values ${fmt(lo)} … ${fmt(hi)}`,
};

/**
 * The note when W's columns follow a new C.
 * @param {number} before columns W had
 * @param {number} c columns it has now
 * @returns {string}
 */
export function matrixFitted(before, c) {
  const span = (a, b) => (a === b ? `column ${a} is` : `columns ${a}…${b} are`);
  if (c === before) return "";
  return c > before
    ? `W now has C = ${c} columns to match the input: ${span(before, c - 1)} 0.`
    : `W now has C = ${c} columns to match the input: ${span(c, before - 1).replace(/ (is|are)$/, "")} ${c === before - 1 ? "was" : "were"} dropped.`;
}

/** The labels of the file choosers, saying which file each holds. */
export const fileText = {
  /** @param {File|null} file @param {boolean} fromNetwork chosen under “Your own network” */
  input: (file, fromNetwork) =>
    !file
      ? "Your own activations: choose or drop a file…"
      : fromNetwork
        ? `Your file: ${file.name}, chosen under “Your own network” (choose another…)`
        : `Your file: ${file.name} (choose another…)`,
  weights: (file) => (file ? `Your weights file: ${file.name} (choose another…)` : "Your own 1×1 layer…"),
  checkpoint: (file) => (file ? `Checkpoint: ${file.name} (choose another…)` : "Choose or drop a checkpoint, or a file from onebyone capture…"),
  /** @param {File|null} file @param {"drop"|"net"} from which zone brought it @param {boolean} on the network is in use */
  activations: (file, from, on) =>
    file && from === "net"
      ? `Activations: ${file.name} (choose another…)`
      : file && on
        ? `Activations: ${file.name}, the file under “Your own activations” above (choose another…)`
        : "Choose or drop the activations…",
};

/** @param {string} file @returns {string} */
export const readingLayers = (file) => `Reading the layers of ${file}…`;

/**
 * A file from `onebyone capture` given as a checkpoint: it becomes the input.
 * @param {string} file
 * @param {number[]} shape its activations' shape
 * @param {string|undefined} replaced the input file it takes the place of
 * @returns {string}
 */
export function capturedNote(file, shape, replaced) {
  return `${file} came from onebyone capture: it holds the activations (${shape.join("×")}) and the layer, so it is the input${replaced ? ` in place of ${replaced}` : ""}, and the layer comes with it.`;
}

// ---------------------------------------------------------------- share and export

/**
 * Why a link cannot carry the files in use.
 * @param {{input?: string, weights?: string, photo?: string}} names
 * @param {string} [builtIn] the built-in photo the link names in place of a photo sent
 * @returns {string}
 */
export function linkNote(names, builtIn = "") {
  const files = [names.input, names.weights].filter(Boolean);
  const photo = names.photo
    ? `A photo cannot travel in a link: whoever opens it sees the built-in photo ‘${builtIn}’ instead of ${names.photo}. The curl command below sends the photo.`
    : "";
  const others = files.length
    ? `Files cannot travel in a link: the link keeps your settings, but whoever opens it gets the scenario's generated maps${names.weights ? " and preset weights" : ""} instead of ${files.join(" and ")}. The curl command below sends the files.`
    : "";
  return [photo, others].filter(Boolean).join(" ");
}

/** What copying says. */
export const copyText = {
  link: (withFiles) => (withFiles ? "Link copied, without the files (see the note)." : "Link copied."),
  curl: "curl command copied.",
  select: "Press Ctrl+C to copy the selected command.",
};

// ---------------------------------------------------------------- the story and the numbers

/** @param {string} description what the settings are now (describe) @returns {string} */
export const changedPoint = (description) => `Changed from the scenario. ${description}`;

/** @param {string} name channel 0's name @returns {string} */
export const pictureCaption = (name) => `Input channel 0 (${name || "channel 0"}) in grey: the picture these feature maps were computed from.`;

/**
 * "The numbers behind the headline", each as the page shows it.
 * @param {object} r the CompareReport
 * @param {object|null} [counts] heatmap.js layerCounts of its maps, for a network's layer
 * @returns {Record<string, string>} keyed by the id of the element that shows it
 */
export function numbers(r, counts = null) {
  const s = r.summary;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [c] = r.shapes.input;
  const k = r.shapes.weight[0];
  const v = r.layer.variance_kept;
  const t = r.timings_ms;
  const out = {
    "n-relu-changed": `${num(s.relu_only_changed)} of ${num(s.relu_only_values)} values`,
    "n-conv-changed": `${num(s.conv_relu_changed)} of ${num(s.conv_relu_values)} values`,
    "n-zeros": `${pct(mean(r.stats.relu_only.zero_fraction))} / ${pct(mean(r.stats.conv_relu.zero_fraction))}`,
    "n-cost1-label": `1×1 layer, ${c} → ${k} channels: parameters / multiply-adds`,
    "n-cost1": `${num(r.cost.conv1x1.parameters)} / ${num(r.cost.conv1x1.macs)}`,
    "n-cost3": `${num(r.cost.conv3x3.parameters)} / ${num(r.cost.conv3x3.macs)}`,
    "n-variance": v === null || v === undefined ? `— (K = ${k} ≥ C = ${c}: nothing is reduced)` : `${pct(v)} (what a best linear read-out from W·x recovers)`,
    "n-device": `${r.device} / ${t.compute.toFixed(2)} ms compute, ${Object.values(t).reduce((a, b) => a + b, 0).toFixed(1)} ms in all`,
  };
  const best = r.layer.best_variance_kept;
  const both = Boolean(r.layer.network) && !r.layer.classes && v !== null && v !== undefined && best !== null && best !== undefined;
  out["n-variance-label"] = both ? `Input variance kept: the trained layer / PCA's best ${num(k)} filters` : "Input variance the K outputs keep";
  if (both) out["n-variance"] = `${pct(v)} / ${pct(best)}`;
  if (r.layer.classes) out["n-variance"] = "— (classes' filters, not a reduction)";
  if (r.network) {
    const top = r.network.top5[0];
    out["n-network"] = `${top.name} ${pct(top.probability)}`;
  }
  if (counts && r.layer.activation === "relu6") {
    out["n-relu6"] = `${num(counts.over6.above)} of ${num(counts.over6.total)} values${counts.stride > 1 ? ` (one pixel in ${counts.stride * counts.stride})` : ""}`;
  }
  if (counts && r.layer.network && r.layer.classes && r.layer.classes.length === 1) {
    const [, h, w] = r.shapes.input;
    out["n-classes-label"] = r.layer.minus ? `Pixels where W[a] − W[b] · x + b > 0 / its mean (logit a − logit b)` : "Pixels where W[a] · x + b > 0 / its mean (the logit of a)";
    out["n-classes"] = `${num(counts.positive0)} of ${num(h * w)} / ${fmt(counts.means[0])}`;
  }
  const truth = Object.entries(r.truth || {});
  if (truth.length) {
    const [name, tr] = truth[0];
    out["n-truth-label"] = `Marking "${truthLabel(name)}": 1×1 + ReLU / ReLU-only / all-zero map`;
    out["n-truth"] = `${pct(tr.conv_relu.agreement)} / ${pct(tr.relu_only.agreement)} / ${pct(1 - tr.fraction_true)}`;
  }
  return out;
}

// ---------------------------------------------------------------- the panels

/**
 * A column's title: the server's panel title, or a ground-truth mask's.
 * @param {string} col e.g. "conv_relu", "truth:edge"
 * @param {Record<string, {title: string}>} panels the server's panel definitions
 * @returns {string}
 */
export function columnTitle(col, panels) {
  if (panels[col]) return panels[col].title;
  return col.startsWith("truth:") ? `Truth: ${truthLabel(col.slice(6))}` : col;
}

/**
 * The column titles when a trained network's layer made the maps: its name (or the classes it
 * picks), the batch norm folded in, and whether the ReLU is the network's.
 * @param {object} l the report's `layer`
 * @returns {Record<string, string>|undefined}
 */
export function trainedTitles(l) {
  if (!l.network || !l.checkpoint_layer) return undefined;
  const bn = l.batchnorm ? " + BN" : "";
  const name = l.classes ? `${l.classes.length === 1 ? `W[${l.classes[0]}]` : `${l.classes.length} classes`}${l.minus ? ` − W[${l.minus}]` : ""}` : `‘${l.checkpoint_layer}’${bn}`;
  const relu = l.activation === "relu6" ? "ReLU (the network: ReLU6)" : l.activation === "none" ? "ReLU (not in the network)" : "ReLU";
  return { conv_relu: `${name} → ${relu}`, pre_activation: `${name}, before the ReLU` };
}

/**
 * The column titles when a network's layer made the maps: its name, the batch norm folded in.
 * @param {object} l the report's `layer`
 * @returns {Record<string, string>|undefined}
 */
export function layerTitles(l) {
  if (!l.checkpoint_layer) return undefined;
  // The batch norm's full name is in the numbers and the story; a column title stays short.
  const bn = l.batchnorm ? " + BN" : "";
  const name = layer(l.checkpoint_layer);
  return { conv_relu: `${name}${bn} → ReLU`, pre_activation: `${name}${bn}, before the ReLU` };
}

/** Words on and around the panels. */
export const panelText = {
  head: (title, channels) => `${title} · ${channels} ch`,
  caption: (short, i) => `${short} · ${i}`,
  row: (i, name) => (name ? `${i} ${name}` : `channel ${i}`),
  channel: (i) => `channel ${i}`,
  cell: (title, what) => `${title}, ${what}`,
  perChannel: ["per-channel", "", "scales"],
  /** @param {"shared"|"channel"} scale @param {number} stride */
  scaleNote: (scale, stride) =>
    (scale === "shared"
      ? "One colour scale per panel: colours compare across channels."
      : "Per-channel scales: each map uses its full colour range, which hides differences in magnitude.") +
    (stride > 1 ? ` Maps subsampled every ${stride} pixels for display; the .npz has every value.` : ""),
};

/** The readout of the values at a pixel. */
export const readoutText = {
  hint: "Hover, tap or focus a map to read the exact values at a pixel.",
  /** @param {number[]} values @param {string[]} names @param {number} shown how many to list */
  vector(values, names, shown) {
    const out = values.slice(0, shown).map((v, i) => `${names[i] ? `${i} ${names[i]}` : `c${i}`} ${fmt(v)}`);
    if (values.length > shown) out.push(`… ${values.length - shown} more (the .npz has all)`);
    return out.join(" · ");
  },
  where: (y, x, stride, title, ch) => `Pixel (${y}, ${x})${stride > 1 ? ` (every ${stride}th pixel shown)` : ""}, ${title}, channel ${ch}`,
  output: (k) => `output ${k}: `,
  /** @param {string} sum the written sum @param {number} pre @param {number} conv */
  sum: (sum, pre, conv) => `W·x + b = ${sum} = ${fmt(pre)}; relu → ${fmt(conv)}`,
  input: (c) => `x (input, ${c} channels): `,
  relu: "ReLU-only, relu(x): ",
  yesNo: (v) => (v ? "yes" : "no"),
  truth: (title, v) => `${title}: ${v ? "yes" : "no"}`,
};

/** The enlarged channel's words. */
export const zoomText = {
  /** @param {string} title @param {number} c @param {string} name the channel's name where the column has one */
  title: (title, c, name) => `${title} · channel ${c}${name ? ` (${name})` : ""}`,
  range: (lo, hi, scale) =>
    `values ${fmt(lo)} … ${fmt(hi)}; colour scale ${fmt(scale.min)} … ${fmt(scale.max)} (${scale.diverging ? "diverging, 0 at the centre" : "sequential from 0"})`,
  hint: "Hover over or tap the map to read the value at a pixel.",
  value: (y, x, c, name, shown) =>
    `Pixel (${y}, ${x}), channel ${c}${name ? ` (${name})` : ""}: ${shown}. The full channel vector and W·x + b are in the readout above the maps.`,
};

// ---------------------------------------------------------------- a trained network

/**
 * What a layer of the network is, in words, from its row of the catalogue's layer table.
 * @param {{role: string, block: number|null}} l
 * @returns {string} e.g. "block 7's expand"
 */
export function roleText(l) {
  const roles = {
    expand: `block ${l.block}'s expand`,
    project: `block ${l.block}'s projection`,
    last: "the last 1×1 conv, before pooling",
    classifier: "the classifier, at every pixel",
  };
  return roles[l.role] || (l.block !== null && l.block !== undefined ? `block ${l.block}'s ${l.role}` : l.role);
}

/** What follows a layer in the network, in words. */
const ACTIVATION = { relu6: "batch norm + ReLU6", none: "batch norm, no activation (linear)" };

/**
 * A layer as the text of its choice in the layer select.
 * @param {{name: string, in_channels: number, out_channels: number, size: number[], role: string, block: number|null}} l
 * @returns {string} e.g. "features.7.conv.0.0 · block 7's expand · 32 → 192 · 28×28"
 */
export function layerChoice(l) {
  return `${l.name} · ${roleText(l)} · ${l.in_channels} → ${l.out_channels} · ${dims(l.size)}`;
}

/**
 * A network's short name: its catalogue title up to the first comma.
 * @param {{name: string, title?: string}} entry
 * @returns {string} e.g. "MobileNetV2"
 */
export function networkName(entry) {
  return entry.title ? entry.title.split(",")[0] : entry.name;
}

/**
 * A layer named in a sentence.
 * @param {{name: string, in_channels: number, out_channels: number, role: string, block: number|null}} l
 * @returns {string} e.g. "its layer ‘features.7.conv.0.0’ (block 7's expand, 32 → 192)"
 */
export function layerRef(l) {
  return `its layer ‘${l.name}’ (${roleText(l)}, ${l.in_channels} → ${l.out_channels})`;
}

/**
 * The photo the network sees, named in a sentence.
 * @param {string} name the built-in photo's name
 * @param {string|undefined} sent the name of a photo sent in its place
 * @returns {string}
 */
export function photoRef(name, sent) {
  return sent ? `your photo ${sent}` : `the photo ‘${name}’`;
}

/**
 * The trained weights a request names, in words.
 * @param {{network: string, layer?: string, batchnorm?: string, classes?: string[], minus?: string}} w
 * @param {object|null} r the CompareReport, which says what the server used
 * @param {string} network the network's short name
 * @returns {string}
 */
export function trainedWeights(w, r, network) {
  const l = r && r.layer ? r.layer : null;
  const name = (l && l.checkpoint_layer) || w.layer || "the input's layer";
  const classes = w.classes ? `, only ${w.classes.map((c) => `W[${c}]`).join(", ")}${w.minus ? ` minus W[${w.minus}]` : ""}` : "";
  const bn = l && l.batchnorm ? `, ${bnName(l.batchnorm.name)} folded in` : w.batchnorm === "none" ? ", raw: its batch norm left out (not what the network computes)" : "";
  return `${network}'s trained layer ‘${name}’${bn}${classes}`;
}

/**
 * The first sentence of every headline: whose maps these are.
 * @param {object} request the request the shown response answers
 * @param {{input?: string, photo?: string}} names names of the files sent
 * @param {object} catalogue
 * @param {object|null} r the response (its `network`, where the maps are a network's)
 * @returns {string}
 */
export function mapsSource(request, names, catalogue, r) {
  const input = request.input || {};
  if (names.input) return `Your own maps (${names.input}).`;
  const net = r && r.network;
  if (net) {
    const entry = (catalogue.networks || {})[net.network];
    return `A trained network's maps: ${entry ? networkName(entry) : net.network}'s own activations at ‘${net.layer}’, for ${photoRef(net.photo, names.photo)}.`;
  }
  return input.generator ? `Generated maps (the ${input.generator} generator).` : "";
}

/** Words of the network's section in the story, and of its settings. */
export const networkText = {
  /** @param {{name: string, shows: string, licence: string, credit: string, source: string}} p */
  photo: (p) => `The photo ‘${p.name}’: ${p.shows}. ${p.licence}; ${p.credit} (${p.source}).`,
  /** @param {string} file */
  sentPhoto: (file) => `Your photo ${file}, sent with each request and never kept in a link.`,
  crop: "What the network sees: the shorter side resized to 256, the centre 224×224 cropped.",
  cropSent: "About what the network sees: the centre of your photo, cropped here as the server crops it (shorter side to 256, centre 224×224).",
  cropAlt: (name) => `The 224×224 crop of ${name} the network sees`,
  top5: "The network's top 5 for this photo",
  /** @param {{name: string, probability: number}} t */
  topItem: (t) => `${t.name} ${pct(t.probability)}`,
  useClass: "use as a",
  useClassLabel: (name) => `Use ${name} as class a`,
  /** @param {object} l the layer's row @param {string} network its short name */
  layer: (l, network) =>
    `${network}'s ‘${l.name}’: ${roleText(l)}, ${l.in_channels} → ${l.out_channels} channels on ${dims(l.size)}, then ${l.batchnorm ? ACTIVATION[l.activation] || l.activation : l.activation === "none" ? "no activation: its mean over the pixels is the logits" : l.activation}.`,
  mixesTitle: (k) => `What each output mixes: the 3 largest of its input weights, for all ${num(k)} outputs`,
  /** @param {number} k @param {string} text */
  mixesItem: (k, text) => `out ${k}: ${text}`,
  mapTitle: (a, b) => (b ? `W[${a}] − W[${b}] · x + b at each pixel, over the photo` : `W[${a}] · x + b at each pixel, over the photo`),
  mapLegend: (a, b) => (b ? [`more ${b}`, "0", `more ${a}`] : ["lower", "0", `higher ${a} score`]),
  mapAlt: (a, b, h, w) => `The ${h}×${w} map of ${b ? `W[${a}] − W[${b}]` : `W[${a}]`} · x + b laid over the photo`,
  missing: (detail) => `The trained network is not installed on this server. ${detail || ""}`.trim(),
  trainedChoice: "the network's own layer, as trained",
  trainedChoiceHint: "The weights the network learned for the layer whose input the maps are",
  classA: "Class a",
  classB: "minus class b (empty: W[a] alone)",
  classHint: (n) => `Any of the ${num(n)} ImageNet classes, by name: type to search the list. The filter is W[a] − W[b]; both empty: all ${num(n)} classes.`,
  /** @param {string} text @param {string[]} matches names containing it */
  partial: (text, matches) =>
    matches.length === 1
      ? `‘${text}’ is part of one class name: ${matches[0]}. Pick it from the list or type it in full.`
      : `‘${text}’ is part of ${num(matches.length)} class names${matches.length <= 5 ? `: ${matches.join(", ")}` : ` (${matches.slice(0, 5).join(", ")}, …)`}. Pick one from the list or type it in full.`,
  /** @param {string} text */
  noClass: (text) => `No ImageNet class name contains ‘${text.trim()}’; nothing was sent. Type part of a name (cat, retriever, …) and pick one from the list.`,
  minusAlone: "minus class b needs a class a; nothing was sent.",
  needA: "Type class a (b stays): until then the maps are of the last a.",
  batchnorm: "The batch norm after it",
  photoDrop: (file) => (file ? `Your photo: ${file.name} (choose another…)` : "Your own photo (PNG or JPEG): choose or drop one…"),
  photoHint: "It stands in for the built-in photo; it is sent with each request, and a link cannot carry it.",
  clearPhoto: "Use the built-in photo again",
};

/**
 * The bottleneck curve of a trained network's activations, against the generated one.
 * @param {object} r BottleneckResult of the network's maps
 * @param {object|null} generated BottleneckResult of the smooth generator at the same C (or 1024 at most)
 * @returns {string}
 */
export function trainedBottleneckHeadline(r, generated) {
  const reach = (res, share) => {
    const hit = res.rows.find((x) => x.variance_kept >= share);
    return hit ? hit.k : null;
  };
  const k90 = reach(r, 0.9);
  const k99 = reach(r, 0.99);
  const out = [
    `On these real activations (${num(r.channels)} channels), ${k90 ? `${plural(k90, "filter keeps", "filters keep")} 90% of the variance` : "no K keeps 90%"}` +
      (k99 ? ` and ${k99} keep 99%.` : "."),
  ];
  if (generated) {
    const g90 = reach(generated, 0.9);
    out.push(
      `The generated maps of “Bottleneck curve” at C = ${num(generated.channels)} reach 90% ${g90 ? `with ${plural(g90, "filter", "filters")}` : "with no K"}: ` +
        `their spectrum was made to decay, these activations' was learned.`,
    );
  }
  const t = r.trained;
  if (t && t.k < r.channels) {
    const best = r.rows[t.k - 1].variance_kept;
    out.push(`The trained layer ‘${t.layer}’ reduces to K = ${t.k} and keeps ${pct(t.variance_kept)} through its own weights, where the best ${t.k} filters keep ${pct(best)}.`);
  } else if (t) {
    out.push(`The trained layer ‘${t.layer}’ has K = ${t.k} outputs for ${r.channels} channels: it reduces nothing, so it has no point on this curve.`);
  }
  return out.join(" ");
}

// ---------------------------------------------------------------- the experiments

/** Words of the experiment views. */
export const experimentText = {
  fitChart: "Mean squared error of both models against the training step, log scale",
  fitCaption: "Mean squared error (log scale) against the training step; values under 10⁻¹⁰ of the largest are float rounding and sit on the bottom line.",
  fitLegend: { conv: "1×1 conv + ReLU", relu: "best ReLU-only model (scale and bias per channel)", floor: "floor no per-channel model can beat" },
  fitAxis: "training step",
  progress: "training progress",
  cancel: "Cancel",
  training: "Training…",
  step: (step, steps) => `Step ${num(step)} of ${num(steps)}.`,
  cancelled: (step) => `Cancelled at step ${num(step)}.`,
  done: (device, steps) => `Done on ${device}: ${num(steps)} steps.`,
  noResult: "The stream ended without a result.",
  changed1x1: (n) => `outputs the 1×1 conv changed (${n}); outlined: the input pixel changed`,
  changed3x3: (n) => `outputs the 3×3 conv changed (${n})`,
  litName: "3×3 > 0",
  lit: "where the 3×3 edge layer > 0: what its agreement counts",
  bottleneckChart: "Variance kept and relative multiply-adds against K",
  /** @param {object} r BottleneckResult @param {string} n e.g. "3×3" */
  bottleneckCaption: (r, n) =>
    `For every K from 1 to ${r.channels}: the input variance the best 1×1 reduction to K channels keeps, and the multiply-adds of the 1×1 reduce + ${n} conv to ${r.out_channels} channels relative to the ${n} conv alone.`,
  bottleneckLegend: (n) => ({ kept: "variance kept", cost: `multiply-adds relative to ${n} alone (capped at 100%)` }),
  bottleneckTable: (n, out) => `Cost of 1×1 reduce to K, then ${n} to ${out}`,
  bottleneckHead: (n) => ["K", "variance kept", "params", "mult-adds", `vs ${n} alone`],
  alone: (n) => `${n} alone`,
  bottleneckAxis: "K, channels after the 1×1 reduction",
  trainedLegend: { real: "variance kept, these real activations", generated: (c) => `variance kept, generated maps (smooth, C = ${c})`, trained: (k) => `the trained layer, K = ${k}` },
  /** @param {object} r @param {object|null} g @param {string} n e.g. "5×5" */
  trainedCaption: (r, g, n) =>
    `For every K from 1 to ${r.channels}: the input variance the best 1×1 reduction to K channels keeps, on the network's activations` +
    (g ? ` and on the smooth generator's maps of the same size (a second request, shown below)` : "") +
    `; and the multiply-adds of the 1×1 reduce + ${n} conv to ${r.out_channels} channels relative to the ${n} conv alone. The dot is the trained layer's own reduction.`,
  generatedRequest: () => "The generated curve's request (the curl command sends the network's): ",
  generatedHead: "generated maps",
  /** @param {number} k @param {number} v the trained layer's share */
  trainedRow: (k, v) => `; in bold the trained layer's K = ${k}, which keeps ${pct(v)} through its own weights`,
  generatedCapped: (c, max) => `(The generators make at most ${max} channels, so the generated curve has C = ${max}, not ${c}.)`,
};
