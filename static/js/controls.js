// The controls, built once from the server's catalogue, and the error placement by `field`.
// Controls are never rebuilt while they hold focus; values flow in through showRequest, which
// skips the element being edited.

import { fmt } from "./heatmap.js";

const $ = (id) => document.getElementById(id);

/** Element factory: el("input", {type: "number"}, child, …). */
export const el = (tag, props = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("aria-") || k === "role" || k === "for") node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...kids.filter((k) => k !== null && k !== undefined));
  return node;
};

/** The preset select's value for an explicit matrix (not a preset name). */
export const MATRIX = "__matrix";
const COMMON = ["height", "width", "channels", "seed"];
const LABELS = { height: "H (height)", width: "W (width)", channels: "C (channels)", out_channels: "K (filters)", bias: "b (bias, every filter)" };

/**
 * A number as typed: "-0.5", "2e-3", ".5" parse; "", "-", "1." with nothing after parse to null
 * unless complete ("1." is 1). A true minus sign is accepted.
 * @param {string} text
 * @param {"int"|"float"|"floats"} type
 * @returns {number|null}
 */
export function parseNumber(text, type) {
  const t = text.trim().replace("−", "-");
  const ok = type === "int" ? /^[+-]?\d+$/.test(t) : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t);
  return ok ? Number(t) : null;
}

/**
 * The error slot for a dotted `field`: the longest prefix of it that has a slot on the page.
 * @param {string|null} field e.g. "weights.matrix.0.1"
 * @param {Set<string>|string[]} known the fields that have a slot
 * @returns {string|null} e.g. "weights.matrix", or null for the general error box
 */
export function errorTarget(field, known) {
  if (!field) return null;
  const have = new Set(known);
  const parts = field.split(".");
  for (let n = parts.length; n > 0; n--) {
    const key = parts.slice(0, n).join(".");
    if (have.has(key)) return key;
  }
  return null;
}

function slot(path) {
  return el("p", { className: "field-error", hidden: true, id: `err-${path.replace(/\./g, "-")}`, dataset: { errorFor: path } });
}

/**
 * One labelled number control for a catalogue parameter, with its error slot.
 * @param {string} path the request field, e.g. "input.height"
 * @param {string} name
 * @param {{type: string, default: number|null, min: number|null, max: number|null, description: string}} p
 * @param {(path: string, text: string, type: string) => void} onEdit
 * @param {boolean} hint show the description under the control
 */
function paramField(path, name, p, onEdit, hint) {
  const id = `f-${path.replace(/\./g, "-")}`;
  const box = el("div", { className: "field", dataset: { param: name } });
  const label = el("label", { for: id, textContent: LABELS[name] || name.replace(/_/g, " ") });
  if (p.type === "ints") {
    // A pixel [y, x]: two integers, empty for the server's default.
    const pair = ["y", "x"].map((axis, i) =>
      el("input", {
        type: "number",
        step: "1",
        min: "0",
        id: i ? `${id}-x` : id,
        placeholder: "centre",
        className: "num",
        "aria-label": `${name} ${axis}`,
        dataset: { path, part: String(i), type: "int", field: path },
      }),
    );
    const fs = el("fieldset", { className: "pair" }, el("legend", { textContent: `${name} [y, x]` }), ...pair);
    for (const input of pair) {
      input.addEventListener("input", () => onEdit(path, pair.map((x) => x.value).join(","), "ints"));
    }
    box.append(fs);
  } else {
    const input = el("input", {
      type: "number",
      id,
      className: "num",
      step: p.type === "int" ? "1" : "any",
      dataset: { path, type: p.type, field: path },
    });
    if (p.min !== null && p.min !== undefined) input.min = String(p.min);
    if (p.max !== null && p.max !== undefined) input.max = String(p.max);
    // A blank field sends nothing and the server uses its default: the placeholder names it.
    input.placeholder = p.default === null || p.default === undefined ? "default" : String(p.default);
    input.addEventListener("input", () => onEdit(path, input.value, p.type));
    box.append(label, input);
  }
  if (p.description) {
    const d = el("span", { className: hint ? "hint" : "sr-only", id: `${id}-desc`, textContent: p.description });
    box.querySelector("input").setAttribute("aria-describedby", d.id);
    box.append(d);
  }
  box.append(slot(path));
  return box;
}

function fillSelect(select, entries) {
  select.replaceChildren(
    ...entries.map(([value, label, disabled, title]) => {
      const opt = el("option", { value, textContent: label, disabled: Boolean(disabled) });
      if (title) opt.title = title;
      return opt;
    }),
  );
}

/**
 * Build the controls that come from the catalogue: generators, presets, devices, layouts,
 * accepted files, formats. Parameter inputs follow with showParams.
 * @param {object} cat the catalogue
 * @param {string[]} available devices present
 */
export function buildControls(cat, available) {
  fillSelect(
    $("generator"),
    Object.entries(cat.generators).map(([k, g]) => [k, k, false, g.description]),
  );
  fillSelect($("preset"), [
    ...Object.entries(cat.weight_presets).map(([k, p]) => [k, k, false, p.description]),
    [MATRIX, "explicit matrix (edit W below)", false, "The weights you set in the grid below"],
  ]);
  fillSelect(
    $("device"),
    cat.devices.choices.map((d) => {
      const present = available.includes(d);
      if (d === cat.devices.default) return [d, `${d} (picks ${available[0]})`, false, "The best device present"];
      return present
        ? [d, `${d} — ${cat.devices.names[d] || d}`, false, ""]
        : [d, `${d} — not available on this server`, true, "This server has no such device"];
    }),
  );
  fillSelect($("layout"), cat.layouts.values.map((v) => [v.id, v.label, false, v.id === cat.layouts.values[0].id ? cat.layouts.auto_rule : ""]));
  $("layout-rule").textContent = cat.layouts.auto_rule;
  $("input-file").accept = cat.files.input.extensions.join(",");
  $("weights-file").accept = cat.files.weights.extensions.join(",");
  $("drop-hint").textContent = `${cat.files.input.description} Accepted: ${cat.files.input.extensions.join(" ")}`;
  $("weights-hint").textContent = `${cat.files.weights.description} Accepted: ${cat.files.weights.extensions.join(" ")}`;
  fillSelect($("curl-format"), cat.formats.map((f) => [f, f]));
  const cp = cat.checkpoint;
  $("net-file").accept = cat.files.weights.extensions.join(",");
  $("net-acts-file").accept = cat.files.input.extensions.join(",");
  $("net-ckpt-hint").textContent =
    `A state dict as torch.save writes it (read with weights_only=True; {"state_dict": …} and module. prefixes are fine), ` +
    `or a file from onebyone capture. Accepted: ${cat.files.weights.extensions.join(" ")}`;
  $("net-acts-hint").textContent =
    `What goes into that layer for one image, (C, H, W): from a forward hook, or from onebyone capture, whose file holds the layer too (then it is all you need). ` +
    `Accepted: ${cat.files.input.extensions.join(" ")}`;
  $("net-bn-box").replaceChildren(
    el("legend", { id: "net-bn-legend", textContent: "The batch norm after it" }),
    ...cp.batchnorm.map((c, i) =>
      el("label", {}, el("input", { type: "radio", name: "net-bn", value: c.id, checked: i === 0 }), ` ${c.label}`),
    ),
  );
  const eps = $("net-eps");
  eps.placeholder = String(cp.eps.default);
  if (cp.eps.max !== null) eps.max = String(cp.eps.max);
  $("net-eps-hint").textContent = cp.eps.description;
}

/**
 * (Re)build the parameter inputs of a generator, a preset or an experiment, when that choice
 * changes (the learner is on the select then, never on these inputs).
 * @param {HTMLElement} root
 * @param {string} prefix e.g. "input", "weights", "" for an experiment's top-level fields
 * @param {Record<string, object>} params
 * @param {(path: string, text: string, type: string) => void} onEdit
 * @param {{skip?: string[], hints?: boolean, fixed?: Record<string, number>}} opts
 */
export function showParams(root, prefix, params, onEdit, opts = {}) {
  const key = JSON.stringify([prefix, Object.keys(params), opts.fixed || {}]);
  if (root.dataset.key === key) return;
  root.dataset.key = key;
  const fields = Object.entries(params)
    .filter(([name]) => !(opts.skip || []).includes(name))
    .map(([name, p]) => paramField(prefix ? `${prefix}.${name}` : name, name, p, onEdit, opts.hints && !COMMON.includes(name)));
  root.replaceChildren(...fields);
  for (const [name, value] of Object.entries(opts.fixed || {})) {
    const input = root.querySelector(`[data-param="${name}"] input`);
    if (input) {
      input.disabled = true;
      input.value = String(value);
    }
  }
}

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

/**
 * Show the request's values in the controls, leaving alone the element being edited and any
 * input whose text is a half-typed number.
 * @param {object} request
 */
export function showRequest(request) {
  for (const input of document.querySelectorAll("#controls input[data-path]")) {
    if (input === document.activeElement || input.disabled) continue;
    const value = getPath(request, input.dataset.path);
    if (input.dataset.part !== undefined) {
      input.value = Array.isArray(value) ? String(value[Number(input.dataset.part)]) : "";
    } else if (input.dataset.type === "floats" && Array.isArray(value)) {
      input.value = value.length ? String(value[0]) : "";
    } else {
      const p = input.closest(".field");
      const def = p && p.dataset.default;
      input.value = value === undefined || value === null ? def || "" : String(value);
    }
  }
}

/**
 * Remember the catalogue default of each parameter input, shown when the request leaves it out.
 * @param {HTMLElement} root
 * @param {Record<string, object>} params
 */
export function rememberDefaults(root, params) {
  for (const [name, p] of Object.entries(params)) {
    const box = root.querySelector(`[data-param="${name}"]`);
    if (box && p.default !== null && p.default !== undefined) box.dataset.default = String(p.default);
  }
}

/** Hide every error and clear aria-invalid. */
export function clearErrors() {
  for (const s of document.querySelectorAll("[data-error-for]")) {
    s.hidden = true;
    s.replaceChildren();
  }
  $("error").hidden = true;
  $("error").replaceChildren();
  for (const c of document.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  for (const c of document.querySelectorAll("[data-described-error]")) {
    const ids = c.getAttribute("aria-describedby").split(" ").filter((id) => id !== c.dataset.describedError);
    if (ids.length) c.setAttribute("aria-describedby", ids.join(" "));
    else c.removeAttribute("aria-describedby");
    delete c.dataset.describedError;
  }
}

/**
 * Put an error next to the control for its field (longest matching prefix among the slots on
 * show), mark that control invalid, and return the slot used.
 * @param {{status: number, detail: string, field: string|null}} err
 * @param {HTMLElement[]} extra elements to add after the message (e.g. a fix button)
 * @returns {HTMLElement}
 */
export function showError(err, extra = []) {
  clearErrors();
  const slots = [...document.querySelectorAll("[data-error-for]")].filter((s) => !s.parentElement.closest("[hidden]"));
  const target = errorTarget(err.field, slots.map((s) => s.dataset.errorFor));
  const box = target ? slots.find((s) => s.dataset.errorFor === target) : $("error");
  box.replaceChildren(el("span", { textContent: `${err.status ? `${err.status}: ` : ""}${err.detail}` }), ...extra);
  box.hidden = false;
  box.dataset.field = err.field || "";
  // The control beside the slot first: two controls may send the same field (a weights file).
  const near = (f) => (box.closest("fieldset") || document).querySelector(`[data-field="${CSS.escape(f)}"]`) || document.querySelector(`[data-field="${CSS.escape(f)}"]`);
  const control = near(err.field || "") || (target && near(target));
  if (control) {
    control.setAttribute("aria-invalid", "true");
    const ids = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    control.setAttribute("aria-describedby", [...ids, box.id].join(" "));
    control.dataset.describedError = box.id;
  }
  const closed = box.closest("details:not([open])");
  if (closed) closed.open = true;
  return box;
}

/**
 * The weight grid: one labelled text input per weight and bias, wrapped per filter, so any
 * width shows every column without scrolling sideways. Rebuilt only when K or C changes.
 * @param {number[][]} matrix (K, C)
 * @param {number[]} bias (K,)
 * @param {(k: number, c: number|"bias", text: string) => void} onEdit
 * @param {boolean} exact whether the values are the learner's own (shown as typed) or a preset's
 */
export function showGrid(matrix, bias, onEdit, exact) {
  const grid = $("matrix-grid");
  const k = matrix.length;
  const c = matrix[0].length;
  const key = `${k}x${c}`;
  if (grid.dataset.key !== key) {
    grid.dataset.key = key;
    grid.replaceChildren(
      ...matrix.map((row, i) => {
        const cells = [...row.map((_, j) => j), "bias"].map((j) => {
          const input = el("input", {
            type: "text",
            inputMode: "decimal",
            autocomplete: "off",
            spellcheck: false,
            className: "wcell",
            id: `w-${i}-${j}`,
            dataset: { k: String(i), c: String(j), field: j === "bias" ? "weights.bias" : `weights.matrix.${i}.${j}` },
          });
          input.addEventListener("input", () => onEdit(i, j === "bias" ? "bias" : j, input.value));
          return el("span", { className: "wbox" }, el("label", { for: input.id, textContent: j === "bias" ? "b" : `c${j}` }), input);
        });
        return el("div", { className: "wrow", role: "group", "aria-label": `filter ${i}: weights of each input channel, then its bias` }, el("span", { className: "wname", textContent: `out ${i}` }), ...cells);
      }),
    );
  }
  for (const input of grid.querySelectorAll("input")) {
    if (input === document.activeElement) continue;
    const i = Number(input.dataset.k);
    const v = input.dataset.c === "bias" ? bias[i] : matrix[i][Number(input.dataset.c)];
    const text = exact ? String(v) : fmt(v).replace("−", "-");
    if (parseNumber(input.value, "float") !== v || !exact) input.value = text;
  }
  grid.hidden = false;
}

/** Remove the weight grid (too large to edit cell by cell, or a weights file holds the layer). */
export function hideGrid() {
  const grid = $("matrix-grid");
  grid.hidden = true;
  grid.replaceChildren();
  delete grid.dataset.key;
}
