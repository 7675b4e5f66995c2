// The settings' form controls: built once from the server's catalogue, parameter inputs per
// generator, preset or experiment, the request's values shown in them, and the weight grid.
// Controls are never rebuilt while they hold focus; values flow in through showRequest, which
// skips the element being edited.

import { $, el } from "./dom.js";
import { fmt } from "./heatmap.js";
import { gridText, networkText, paramLabel, settingsText } from "./story.js";

/** The preset select's value for an explicit matrix (not a preset name). */
export const MATRIX = "__matrix";
/** The preset select's value for a trained network's own layer (not a preset name). */
export const TRAINED = "__trained";
const COMMON = ["height", "width", "channels", "seed"];

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

function slot(path) {
  return el("p", { className: "field-error", hidden: true, id: `err-${path.replace(/\./g, "-")}`, dataset: { errorFor: path } });
}

/**
 * What a parameter input reports on every edit: its path, the text in it, its type, and the
 * control, its label and whether the browser holds text it cannot parse.
 * @typedef {(path: string, text: string, type: string, typed: {control: HTMLInputElement, label: string, bad: boolean}) => void} ParamEdit
 */

/**
 * One labelled number control for a catalogue parameter, with its error slot.
 * @param {string} path the request field, e.g. "input.height"
 * @param {string} name
 * @param {{type: string, default: number|null, min: number|null, max: number|null, description: string}} p
 * @param {ParamEdit} onEdit
 * @param {boolean} hint show the description under the control
 * @param {(name: string, value: string) => [string, boolean, string]} [choice] a choice's text, whether it is
 *   disabled, and its title (for parameters of type "choice")
 */
function paramField(path, name, p, onEdit, hint, choice) {
  const id = `f-${path.replace(/\./g, "-")}`;
  const box = el("div", { className: name === "layer" ? "field wide" : "field", dataset: { param: name } });
  const label = el("label", { for: id, textContent: paramLabel(name) });
  if (p.type === "choice") {
    const select = el("select", { id, dataset: { path, type: "choice", field: path } });
    fillSelect(
      select,
      (p.choices || []).map((value) => {
        const [text, disabled, title] = choice ? choice(name, value) : [value, false, ""];
        return [value, text, disabled, title];
      }),
    );
    select.addEventListener("change", () => onEdit(path, select.value, "choice", { control: select, label: label.textContent, bad: false }));
    box.append(label, select);
  } else if (p.type === "ints") {
    // A pixel [y, x]: two integers, empty for the server's default.
    const pair = ["y", "x"].map((axis, i) =>
      el("input", {
        type: "number",
        step: "1",
        min: "0",
        id: i ? `${id}-x` : id,
        placeholder: settingsText.centre,
        className: "num",
        "aria-label": settingsText.pairAxis(name, axis),
        dataset: { path, part: String(i), type: "int", field: path },
      }),
    );
    const fs = el("fieldset", { className: "pair" }, el("legend", { textContent: settingsText.pairLegend(name) }), ...pair);
    for (const input of pair) {
      // A number field holding text it cannot parse ("3e", "-") reports "" and badInput.
      const typed = () => ({ control: pair[0], label: path, bad: pair.some((x) => x.validity.badInput) });
      input.addEventListener("input", () => onEdit(path, pair.map((x) => x.value).join(","), "ints", typed()));
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
    input.placeholder = p.default === null || p.default === undefined ? settingsText.serverDefault : String(p.default);
    const typed = () => ({ control: input, label: label.textContent.replace(/ \(.*\)$/, ""), bad: input.validity.badInput });
    input.addEventListener("input", () => onEdit(path, input.value, p.type, typed()));
    box.append(label, input);
  }
  if (p.description) {
    const d = el("span", { className: hint ? "hint" : "sr-only", id: `${id}-desc`, textContent: p.description });
    box.querySelector("input, select").setAttribute("aria-describedby", d.id);
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
 */
export function buildControls(cat) {
  const available = cat.devices.available;
  fillSelect(
    $("generator"),
    Object.entries(cat.generators).map(([k, g]) => [k, k, false, g.description]),
  );
  fillSelect($("preset"), [
    ...Object.entries(cat.weight_presets).map(([k, p]) => [k, k, false, p.description]),
    [MATRIX, settingsText.explicitMatrix, false, settingsText.explicitMatrixHint],
    [TRAINED, networkText.trainedChoice, false, networkText.trainedChoiceHint],
  ]);
  fillSelect(
    $("device"),
    cat.devices.choices.map((d) => {
      const present = available.includes(d);
      if (d === cat.devices.default) return [d, settingsText.autoDevice(d, available[0]), false, settingsText.autoDeviceHint];
      return present
        ? [d, settingsText.device(d, cat.devices.names[d]), false, ""]
        : [d, settingsText.absentDevice(d), true, settingsText.absentDeviceHint];
    }),
  );
  fillSelect($("layout"), cat.layouts.values.map((v) => [v.id, v.label, false, v.id === cat.layouts.values[0].id ? cat.layouts.auto_rule : ""]));
  $("layout-rule").textContent = cat.layouts.auto_rule;
  $("input-file").accept = cat.files.input.extensions.join(",");
  $("weights-file").accept = cat.files.weights.extensions.join(",");
  $("drop-hint").textContent = settingsText.accepted(cat.files.input.description, cat.files.input.extensions);
  $("weights-hint").textContent = settingsText.accepted(cat.files.weights.description, cat.files.weights.extensions);
  fillSelect($("curl-format"), cat.formats.map((f) => [f, f]));
  const cp = cat.checkpoint;
  $("net-file").accept = cat.files.weights.extensions.join(",");
  $("net-acts-file").accept = cat.files.input.extensions.join(",");
  $("net-ckpt-hint").textContent = settingsText.checkpointHint(cat.files.weights.extensions);
  $("net-acts-hint").textContent = settingsText.activationsHint(cat.files.input.extensions);
  $("net-bn-box").replaceChildren(
    el("legend", { id: "net-bn-legend", textContent: settingsText.batchnormLegend }),
    ...cp.batchnorm.map((c, i) =>
      el("label", {}, el("input", { type: "radio", name: "net-bn", value: c.id, checked: i === 0 }), ` ${c.label}`),
    ),
  );
  fillSelect($("trained-bn"), cp.batchnorm.map((c) => [c.id, c.label, false, ""]));
  $("photo-hint").textContent = networkText.photoHint;
  // Every class the network's classifier knows, for the class fields to offer as one types.
  const names = Object.values(cat.networks || {}).flatMap((n) => n.classes);
  $("class-names").replaceChildren(...names.map((value) => el("option", { value })));
  $("classes-hint").textContent = networkText.classHint(names.length);
  $("class-a-label").textContent = networkText.classA;
  $("class-b-label").textContent = networkText.classB;
  $("trained-bn-label").textContent = networkText.batchnorm;
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
 * @param {ParamEdit} onEdit
 * @param {{skip?: string[], hints?: boolean, fixed?: Record<string, number>, choice?: (name: string, value: string) => [string, boolean, string]}} opts
 *   `choice` gives the text of each choice of a "choice" parameter
 */
export function showParams(root, prefix, params, onEdit, opts = {}) {
  const key = JSON.stringify([prefix, Object.keys(params), opts.fixed || {}]);
  if (root.dataset.key === key) return;
  root.dataset.key = key;
  const fields = Object.entries(params)
    .filter(([name]) => !(opts.skip || []).includes(name))
    .map(([name, p]) => paramField(prefix ? `${prefix}.${name}` : name, name, p, onEdit, opts.hints && !COMMON.includes(name), opts.choice));
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
  for (const input of document.querySelectorAll("#controls :is(input, select)[data-path]")) {
    if (input === document.activeElement || input.disabled) continue;
    const value = getPath(request, input.dataset.path);
    if (input.tagName === "SELECT") {
      const def = input.closest(".field") && input.closest(".field").dataset.default;
      input.value = value === undefined || value === null ? def || "" : String(value);
    } else if (input.dataset.part !== undefined) {
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

/**
 * The weight grid: one labelled text input per weight and bias, wrapped per filter, so any
 * width shows every column without scrolling sideways. Rebuilt only when K or C changes.
 * @param {number[][]} matrix (K, C)
 * @param {number[]} bias (K,)
 * @param {(k: number, c: number|"bias", text: string, input: HTMLInputElement, rows: number) => void} onEdit
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
          input.addEventListener("input", () => onEdit(i, j === "bias" ? "bias" : j, input.value, input, k));
          return el("span", { className: "wbox" }, el("label", { for: input.id, textContent: gridText.column(j) }), input);
        });
        return el("div", { className: "wrow", role: "group", "aria-label": gridText.filter(i) }, el("span", { className: "wname", textContent: gridText.row(i) }), ...cells);
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
