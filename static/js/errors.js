// Where an error shows: next to the control for its `field` (the longest prefix of it that has a
// slot on show), or in the general error box, with that control marked invalid.

import { $, el } from "./dom.js";
import { errorText } from "./story.js";

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
  box.replaceChildren(el("span", { textContent: errorText(err) }), ...extra);
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
