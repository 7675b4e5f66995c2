// DOM helpers every view shares: find an element, make one, read the server's data block, and
// turn an element into a file drop zone. No state and no words.

/**
 * The element with this id.
 * @param {string} id
 * @returns {HTMLElement}
 */
export const $ = (id) => document.getElementById(id);

/**
 * Make an element: el("input", {type: "number", dataset: {path}}, child, …). `aria-*`, `role`
 * and `for` become attributes, `dataset` fills data-*, anything else is set as a property.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node|string|null|undefined)} kids
 * @returns {HTMLElement}
 */
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

/**
 * The JSON in a `<script type="application/json">` data block the template rendered.
 * @param {string} id
 * @returns {any}
 */
export function readData(id) {
  return JSON.parse($(id).textContent);
}

/**
 * A file drop zone: click, Enter or Space opens the chooser; a dropped file goes to onFile.
 * @param {HTMLElement} zone
 * @param {HTMLInputElement} chooser the hidden file input behind it
 * @param {(file: File) => void} onFile
 */
export function dropZone(zone, chooser, onFile) {
  const choose = () => chooser.click();
  zone.addEventListener("click", choose);
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      choose();
    }
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) onFile(e.dataTransfer.files[0]);
  });
}
